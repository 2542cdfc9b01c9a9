//! SQLite's statements for settling records by the batch: the settlement loop's reads of a
//! pass (the records' orders and meter readings) and the writer's settlement rows, each one
//! statement per list whatever its length (a JSON array through `json_each`, as in
//! `sqlite_bulk.rs`), where they were three statements per settled record and two reads.

use serde::Serialize;
use sqlx::SqliteConnection;

use super::rows::{check_settled, order_costs, PayerRow, ReadingRow};
use super::sqlite_bulk::{execute_list, fetch_list, money_text};
use crate::money::writer::SettlementRow;
use crate::money::MoneyError;
use crate::store::types::DbTime;

/// A settlement row as one entry of the JSON list (the columns of the insert, in order).
#[derive(Serialize)]
struct SettlementJson<'a>(
    &'a str,
    &'a str,
    &'a str,
    Option<&'a str>,
    &'a str,
    String,
    String,
    i64,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    String,
    &'a str,
    &'a str,
    Option<i64>,
    Option<i64>,
    i64,
    i64,
    String,
    String,
    Option<i64>,
);

fn micros(t: Option<jiff::Timestamp>) -> Option<i64> {
    t.map(|t| DbTime::from(t).0.as_microsecond())
}

/// Records the batch's settlements, flips their transactions to settled and writes cost and
/// mismatch on their orders: three statements, in the caller's transaction. Each must change
/// as many rows as it was given (see `rows::check_settled`).
pub async fn insert_settlements(
    conn: &mut SqliteConnection,
    rows: &[&SettlementRow],
    now: DbTime,
) -> Result<(), MoneyError> {
    if rows.is_empty() {
        return Ok(());
    }
    let list: Vec<SettlementJson<'_>> = rows
        .iter()
        .map(|r| {
            let s = &r.share;
            SettlementJson(
                &r.pile,
                &r.serial,
                &r.key,
                r.order.as_deref(),
                &r.account,
                money_text(r.cost),
                money_text(r.charger_total),
                i64::from(r.mismatch),
                money_text(r.difference),
                money_text(r.from_hold),
                money_text(r.released),
                money_text(r.from_wallet),
                money_text(r.receivable),
                money_text(r.operator_share),
                money_text(r.platform_fee),
                r.breakdown.to_string(),
                &s.operator,
                &s.site,
                micros(s.started_at),
                micros(s.ended_at),
                s.energy_mwh,
                s.export_mwh,
                money_text(s.v2g_driver_credit),
                money_text(s.v2g_operator_share),
                s.rule_version.map(i64::from),
            )
        })
        .collect();
    let inserted = execute_list(
        conn,
        "INSERT INTO settlements (pile_code, serial, idem_key, order_id, account_id, cost, charger_total, mismatch, \
         difference, from_hold, released, from_wallet, receivable, operator_share, platform_fee, breakdown, settled_at, \
         operator_id, site_id, started_at, ended_at, energy_mwh, export_mwh, v2g_driver_credit, v2g_operator_share, rule_version) \
         SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, value ->> 7, \
         value ->> 8, value ->> 9, value ->> 10, value ->> 11, value ->> 12, value ->> 13, value ->> 14, value ->> 15, $2, \
         value ->> 16, value ->> 17, value ->> 18, value ->> 19, value ->> 20, value ->> 21, value ->> 22, value ->> 23, value ->> 24 \
         FROM jsonb_each($1) ORDER BY key",
        &list,
        now,
        None,
    )
    .await?;
    let records: Vec<(&str, &str)> = rows.iter().map(|r| (&*r.pile, &*r.serial)).collect();
    let records = execute_list(
        conn,
        "UPDATE transactions SET settled = 1, settled_at = $2 \
         FROM (SELECT value ->> 0 AS pile, value ->> 1 AS serial FROM jsonb_each($1)) AS v \
         WHERE transactions.pile_code = v.pile AND transactions.serial = v.serial",
        &records,
        now,
        None,
    )
    .await?;
    let orders: Vec<(&str, String, i64)> = order_costs(rows)
        .into_iter()
        .map(|(o, cost, mismatch)| (o, money_text(cost), i64::from(mismatch)))
        .collect();
    let updated = if orders.is_empty() {
        0
    } else {
        execute_list(
            conn,
            "UPDATE orders SET settled_cost = v.cost, cost_mismatch = v.mismatch, version = orders.version + 1, \
             updated_at = $2, state = CASE WHEN orders.state IN ('charging', 'discharging', 'stopping', 'completed') \
             THEN 'settled' ELSE orders.state END \
             FROM (SELECT value ->> 0 AS id, value ->> 1 AS cost, value ->> 2 AS mismatch FROM jsonb_each($1)) AS v \
             WHERE orders.id = v.id",
            &orders,
            now,
            None,
        )
        .await?
    };
    check_settled(rows.len(), (inserted, records, updated), orders.len())
}

/// The payers of the orders among `ids`: (order, account, hold).
pub async fn load_payers(
    conn: &mut SqliteConnection,
    ids: &[&str],
) -> Result<Vec<PayerRow>, MoneyError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    fetch_list(
        conn,
        "SELECT json_group_array(json_array(id, account_id, hold_id)) \
         FROM orders WHERE id IN (SELECT value FROM json_each($1))",
        ids,
    )
    .await
}

/// The stored meter readings of the sessions with these serials: (pile, serial, measured
/// at, import register mWh), in no particular order.
pub async fn load_readings(
    conn: &mut SqliteConnection,
    serials: &[&str],
) -> Result<Vec<ReadingRow>, MoneyError> {
    if serials.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, String, i64, i64)> = fetch_list(
        conn,
        "SELECT json_group_array(json_array(pile_code, serial, measured_at, import_mwh)) \
         FROM meter_readings WHERE serial IN (SELECT value FROM json_each($1))",
        serials,
    )
    .await?;
    rows.into_iter()
        .map(|(pile, serial, us, mwh)| {
            let at = jiff::Timestamp::from_microsecond(us)
                .map_err(|e| MoneyError::Corrupt(format!("meter reading at {us} µs: {e}")))?;
            Ok((pile, serial, DbTime(at), mwh))
        })
        .collect()
}
