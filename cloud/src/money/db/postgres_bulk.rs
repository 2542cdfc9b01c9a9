//! PostgreSQL's lookups by list for the ledger (the writer's on-demand reads, funds'
//! queries): one `= ANY` statement per table, prepared once and reused whatever the list's
//! length. In the writer they run in a transaction opened with `Dialect::begin_batch`, which
//! keeps PostgreSQL on index probes whatever the list's length and the table's size (see
//! there). The writer's batch reads and writes are in `postgres_batch.rs`.

use sqlx::types::Json;

use super::rows::{account_from_row, pending_from_row, AccountRow, PendingRowDb};
use crate::ledger::{Account, PendingTransfer, TransferSet};
use crate::money::MoneyError;

/// The accounts among `ids` that exist, with their versions, in one statement.
pub async fn load_accounts(
    conn: &mut sqlx::PgConnection,
    ids: &[String],
) -> Result<Vec<(Account, i64)>, MoneyError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<AccountRow> = sqlx::query_as(
        "SELECT id, normal_side, lower_limit, debits_pending, debits_posted, credits_pending, \
         credits_posted, version FROM ledger_accounts WHERE id = ANY($1::text[])",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(account_from_row).collect()
}

/// The holds among `ids` that exist, in one statement.
pub async fn load_pendings(
    conn: &mut sqlx::PgConnection,
    ids: &[String],
) -> Result<Vec<PendingTransfer>, MoneyError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<PendingRowDb> = sqlx::query_as(
        "SELECT id, debit, credit, amount, expires_at, state, posted_amount FROM ledger_pendings \
         WHERE id = ANY($1::text[])",
    )
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    rows.into_iter().map(pending_from_row).collect()
}

/// The stored sets among `keys`: (key, sequence, set), in one statement.
pub async fn load_sets(
    conn: &mut sqlx::PgConnection,
    keys: &[String],
) -> Result<Vec<(String, i64, TransferSet)>, MoneyError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<(String, i64, Json<TransferSet>)> = sqlx::query_as(
        "SELECT idem_key, sequence, content FROM ledger_sets WHERE idem_key = ANY($1::text[])",
    )
    .bind(keys)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(|(k, s, j)| (k, s, j.0)).collect())
}
