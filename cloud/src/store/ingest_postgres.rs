//! Bulk inserts on PostgreSQL: one `INSERT ... SELECT FROM UNNEST(arrays)` per batch, so a
//! batch of any size is one statement with twelve parameters and one round trip.

use sqlx::PgConnection;

pub(crate) use super::ingest::ReadingRow;
use super::types::{DbMoney, DbTime};
use super::StoreResult;

/// Inserts meter readings (duplicates by (site, seq) are skipped).
pub(crate) async fn insert_readings(
    conn: &mut PgConnection,
    site: &str,
    rows: &[ReadingRow],
) -> StoreResult<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let n = rows.len();
    let mut seq = Vec::with_capacity(n);
    let mut pile = Vec::with_capacity(n);
    let mut connector = Vec::with_capacity(n);
    let mut serial = Vec::with_capacity(n);
    let mut measured_at: Vec<DbTime> = Vec::with_capacity(n);
    let mut import_mwh = Vec::with_capacity(n);
    let mut export_mwh: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut power_w: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut soc_pct: Vec<Option<i64>> = Vec::with_capacity(n);
    let mut amount: Vec<Option<DbMoney>> = Vec::with_capacity(n);
    let mut recorded_at: Vec<DbTime> = Vec::with_capacity(n);
    for r in rows {
        seq.push(r.seq);
        pile.push(r.pile.clone());
        connector.push(r.connector);
        serial.push(r.serial.clone());
        measured_at.push(r.measured_at);
        import_mwh.push(r.import_mwh);
        export_mwh.push(r.export_mwh);
        power_w.push(r.power_w);
        soc_pct.push(r.soc_pct);
        amount.push(r.amount);
        recorded_at.push(r.recorded_at);
    }
    sqlx::query(
        "INSERT INTO meter_readings (site_id, seq, pile_code, connector, serial, measured_at, import_mwh, \
         export_mwh, power_w, soc_pct, amount, recorded_at) \
         SELECT $1, * FROM UNNEST($2::bigint[], $3::text[], $4::bigint[], $5::text[], $6::timestamptz[], \
         $7::bigint[], $8::bigint[], $9::bigint[], $10::bigint[], $11::numeric[], $12::timestamptz[]) \
         ON CONFLICT (site_id, seq) DO NOTHING",
    )
    .bind(site)
    .bind(seq)
    .bind(pile)
    .bind(connector)
    .bind(serial)
    .bind(measured_at)
    .bind(import_mwh)
    .bind(export_mwh)
    .bind(power_w)
    .bind(soc_pct)
    .bind(amount)
    .bind(recorded_at)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Records sequences committed above the site's ack.
pub(crate) async fn insert_pending(
    conn: &mut PgConnection,
    site: &str,
    seqs: &[i64],
) -> StoreResult<()> {
    if seqs.is_empty() {
        return Ok(());
    }
    sqlx::query(
        "INSERT INTO edge_pending_seqs (site_id, seq) SELECT $1, * FROM UNNEST($2::bigint[]) ON CONFLICT DO NOTHING",
    )
    .bind(site)
    .bind(seqs)
    .execute(&mut *conn)
    .await?;
    Ok(())
}
