//! PostgreSQL's bulk journal inserts: one `INSERT ... SELECT FROM UNNEST(arrays)` per list,
//! prepared once and reused whatever the batch size.

use super::rows::field_text;
use crate::ledger::{Posting, TransferSet};
use crate::money::MoneyError;
use crate::store::types::{DbMoney, DbTime};

/// Appends postings to the journal in one `INSERT ... SELECT FROM UNNEST(arrays)`: one
/// statement, prepared once and reused, whatever the batch size (multi-row `VALUES`
/// made PostgreSQL parse and plan thousands of parameters per chunk).
pub async fn insert_postings(
    conn: &mut sqlx::PgConnection,
    postings: &[Posting],
    now: DbTime,
) -> Result<(), MoneyError> {
    if postings.is_empty() {
        return Ok(());
    }
    let n = postings.len();
    let (mut transfer, mut key, mut account, mut field, mut delta) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for p in postings {
        transfer.push(p.transfer.to_string());
        key.push(p.transfer.key.to_string());
        account.push(p.account.to_string());
        field.push(field_text(p.field));
        delta.push(DbMoney(p.delta));
    }
    sqlx::query(
        "INSERT INTO ledger_postings (transfer_id, set_key, account, field, delta, created_at) \
         SELECT t, k, a, f, d, $6 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[], $5::numeric[]) \
         WITH ORDINALITY AS u (t, k, a, f, d, n) ORDER BY n",
    )
    .bind(transfer)
    .bind(key)
    .bind(account)
    .bind(field)
    .bind(delta)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts applied sets in one `INSERT ... SELECT FROM UNNEST(arrays)`; returns (key,
/// sequence).
pub async fn insert_sets(
    conn: &mut sqlx::PgConnection,
    sets: &[&TransferSet],
    now: DbTime,
) -> Result<Vec<(String, i64)>, MoneyError> {
    if sets.is_empty() {
        return Ok(Vec::new());
    }
    let n = sets.len();
    let (mut key, mut reason, mut order, mut content) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for s in sets {
        key.push(s.key.to_string());
        reason.push(format!("{:?}", s.memo.reason).to_lowercase());
        order.push(s.memo.order.as_ref().map(|o| o.to_string()));
        content.push(
            serde_json::to_string(*s)
                .map_err(|e| MoneyError::Corrupt(format!("transfer set {}: {e}", s.key)))?,
        );
    }
    Ok(sqlx::query_as(
        "INSERT INTO ledger_sets (idem_key, reason, order_id, content, created_at) \
         SELECT k, r, o, c::jsonb, $5 FROM UNNEST($1::text[], $2::text[], $3::text[], $4::text[]) \
         WITH ORDINALITY AS u (k, r, o, c, n) ORDER BY n \
         RETURNING idem_key, sequence",
    )
    .bind(key)
    .bind(reason)
    .bind(order)
    .bind(content)
    .bind(now)
    .fetch_all(&mut *conn)
    .await?)
}
