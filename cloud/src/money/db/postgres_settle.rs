//! PostgreSQL's statements for settling records by the batch: the settlement loop's reads
//! of a pass (the records' orders and meter readings, `= ANY` of one array) and the writer's
//! settlement rows (`UNNEST` of column arrays): one round trip per list, where they were
//! three per settled record and two reads.

use super::rows::{check_settled, order_costs, PayerRow, ReadingRow};
use crate::money::writer::SettlementRow;
use crate::money::MoneyError;
use crate::store::types::{DbMoney, DbTime};

/// The columns of settlement rows, as arrays.
#[derive(Default)]
struct SettlementColumns {
    pile: Vec<String>,
    serial: Vec<String>,
    key: Vec<String>,
    order: Vec<Option<String>>,
    account: Vec<String>,
    money: [Vec<DbMoney>; 11],
    mismatch: Vec<bool>,
    breakdown: Vec<String>,
    operator: Vec<String>,
    site: Vec<String>,
    started: Vec<Option<DbTime>>,
    ended: Vec<Option<DbTime>>,
    energy: Vec<i64>,
    export: Vec<i64>,
    rule_version: Vec<Option<i64>>,
}

fn columns(rows: &[&SettlementRow]) -> SettlementColumns {
    let mut c = SettlementColumns::default();
    for r in rows {
        let s = &r.share;
        c.pile.push(r.pile.clone());
        c.serial.push(r.serial.clone());
        c.key.push(r.key.clone());
        c.order.push(r.order.clone());
        c.account.push(r.account.clone());
        let amounts = [
            r.cost,
            r.charger_total,
            r.difference,
            r.from_hold,
            r.released,
            r.from_wallet,
            r.receivable,
            r.operator_share,
            r.platform_fee,
            s.v2g_driver_credit,
            s.v2g_operator_share,
        ];
        for (column, amount) in c.money.iter_mut().zip(amounts) {
            column.push(DbMoney(amount));
        }
        c.mismatch.push(r.mismatch);
        c.breakdown.push(r.breakdown.to_string());
        c.operator.push(s.operator.clone());
        c.site.push(s.site.clone());
        c.started.push(s.started_at.map(DbTime::from));
        c.ended.push(s.ended_at.map(DbTime::from));
        c.energy.push(s.energy_mwh);
        c.export.push(s.export_mwh);
        c.rule_version.push(s.rule_version.map(i64::from));
    }
    c
}

/// Records the batch's settlements, flips their transactions to settled and writes cost and
/// mismatch on their orders: one statement, in the caller's transaction, which must change as
/// many rows as it was given (see `rows::check_settled`).
pub async fn insert_settlements(
    conn: &mut sqlx::PgConnection,
    rows: &[&SettlementRow],
    now: DbTime,
) -> Result<(), MoneyError> {
    if rows.is_empty() {
        return Ok(());
    }
    let c = columns(rows);
    let orders = order_costs(rows);
    let with_order = orders.len();
    let order_id: Vec<&str> = orders.iter().map(|(o, _, _)| *o).collect();
    let order_cost: Vec<DbMoney> = orders.iter().map(|(_, c, _)| DbMoney(*c)).collect();
    let order_mismatch: Vec<bool> = orders.iter().map(|(_, _, m)| *m).collect();
    let [cost, charger_total, difference, from_hold, released, from_wallet, receivable, operator_share, platform_fee, v2g_credit, v2g_share] =
        c.money;
    let (inserted, records, updated): (i64, i64, i64) = sqlx::query_as(
        "WITH v AS (SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::text[], \
         $6::numeric[], $7::numeric[], $8::bool[], $9::numeric[], $10::numeric[], $11::numeric[], $12::numeric[], \
         $13::numeric[], $14::numeric[], $15::numeric[], $16::text[], $17::text[], $18::text[], $19::timestamptz[], \
         $20::timestamptz[], $21::int8[], $22::int8[], $23::numeric[], $24::numeric[], $25::int8[]) \
         AS u (pile, serial, idem_key, order_id, account_id, cost, charger_total, mismatch, difference, from_hold, \
         released, from_wallet, receivable, operator_share, platform_fee, breakdown, operator_id, site_id, \
         started_at, ended_at, energy_mwh, export_mwh, v2g_driver_credit, v2g_operator_share, rule_version)), \
         ins AS (INSERT INTO settlements (pile_code, serial, idem_key, order_id, account_id, cost, charger_total, \
         mismatch, difference, from_hold, released, from_wallet, receivable, operator_share, platform_fee, breakdown, \
         settled_at, operator_id, site_id, started_at, ended_at, energy_mwh, export_mwh, v2g_driver_credit, \
         v2g_operator_share, rule_version) \
         SELECT pile, serial, idem_key, order_id, account_id, cost, charger_total, mismatch, difference, from_hold, \
         released, from_wallet, receivable, operator_share, platform_fee, breakdown::jsonb, $26, operator_id, site_id, \
         started_at, ended_at, energy_mwh, export_mwh, v2g_driver_credit, v2g_operator_share, rule_version FROM v \
         RETURNING 1), \
         tx AS (UPDATE transactions AS t SET settled = TRUE, settled_at = $26 FROM v \
         WHERE t.pile_code = v.pile AND t.serial = v.serial RETURNING 1), \
         ord AS (UPDATE orders AS o SET settled_cost = w.cost, cost_mismatch = w.mismatch, version = o.version + 1, \
         updated_at = $26, state = CASE WHEN o.state IN ('charging', 'discharging', 'stopping', 'completed') \
         THEN 'settled' ELSE o.state END FROM UNNEST($27::text[], $28::numeric[], $29::bool[]) AS w (order_id, cost, mismatch) \
         WHERE o.id = w.order_id RETURNING 1) \
         SELECT (SELECT count(*) FROM ins), (SELECT count(*) FROM tx), (SELECT count(*) FROM ord)",
    )
    .bind(c.pile)
    .bind(c.serial)
    .bind(c.key)
    .bind(c.order)
    .bind(c.account)
    .bind(cost)
    .bind(charger_total)
    .bind(c.mismatch)
    .bind(difference)
    .bind(from_hold)
    .bind(released)
    .bind(from_wallet)
    .bind(receivable)
    .bind(operator_share)
    .bind(platform_fee)
    .bind(c.breakdown)
    .bind(c.operator)
    .bind(c.site)
    .bind(c.started)
    .bind(c.ended)
    .bind(c.energy)
    .bind(c.export)
    .bind(v2g_credit)
    .bind(v2g_share)
    .bind(c.rule_version)
    .bind(now)
    .bind(order_id)
    .bind(order_cost)
    .bind(order_mismatch)
    .fetch_one(&mut *conn)
    .await?;
    let count = |n: i64| u64::try_from(n).unwrap_or(0);
    check_settled(
        rows.len(),
        (count(inserted), count(records), count(updated)),
        with_order,
    )?;
    Ok(())
}

/// The payers of the orders among `ids`: (order, account, hold).
pub async fn load_payers(
    conn: &mut sqlx::PgConnection,
    ids: &[&str],
) -> Result<Vec<PayerRow>, MoneyError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    Ok(
        sqlx::query_as("SELECT id, account_id, hold_id FROM orders WHERE id = ANY($1::text[])")
            .bind(ids)
            .fetch_all(&mut *conn)
            .await?,
    )
}

/// The stored meter readings of the sessions with these serials: (pile, serial, measured
/// at, import register mWh), in no particular order.
pub async fn load_readings(
    conn: &mut sqlx::PgConnection,
    serials: &[&str],
) -> Result<Vec<ReadingRow>, MoneyError> {
    if serials.is_empty() {
        return Ok(Vec::new());
    }
    Ok(sqlx::query_as(
        "SELECT pile_code, serial, measured_at, import_mwh FROM meter_readings WHERE serial = ANY($1::text[])",
    )
    .bind(serials)
    .fetch_all(&mut *conn)
    .await?)
}
