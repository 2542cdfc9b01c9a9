//! PostgreSQL's batch statements for the writer: lists go in as arrays (`= ANY` to read,
//! `UNNEST` to write), one statement per table per batch, prepared once and reused whatever
//! the batch size. They run in a transaction opened with `Dialect::begin_batch`, which keeps
//! PostgreSQL on index probes whatever the list's length and the table's size (see there).

use sqlx::types::Json;

use super::rows::{account_from_row, pending_from_row, pending_state, AccountRow, PendingRowDb};
use crate::ledger::{Account, JournalLine, PendingTransfer, TransferSet};
use crate::money::MoneyError;
use crate::store::types::{DbMoney, DbTime};

/// Appends journal lines in one `INSERT ... SELECT FROM UNNEST(arrays)`: one statement,
/// prepared once and reused, whatever the batch size (multi-row `VALUES` made PostgreSQL
/// parse and plan thousands of parameters per chunk).
pub async fn insert_journal(
    conn: &mut sqlx::PgConnection,
    lines: &[JournalLine],
    now: DbTime,
) -> Result<(), MoneyError> {
    if lines.is_empty() {
        return Ok(());
    }
    let n = lines.len();
    let mut key = Vec::with_capacity(n);
    let mut account = Vec::with_capacity(n);
    let mut deltas: [Vec<Option<DbMoney>>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
    for line in lines {
        key.push(line.key.to_string());
        account.push(line.account.to_string());
        for (column, delta) in deltas.iter_mut().zip(line.deltas) {
            column.push(delta.map(DbMoney));
        }
    }
    let [dp, dq, cp, cq] = deltas;
    sqlx::query(
        "INSERT INTO ledger_journal (set_key, account, debits_pending, debits_posted, credits_pending, \
         credits_posted, created_at) \
         SELECT k, a, dp, dq, cp, cq, $7 FROM UNNEST($1::text[], $2::text[], $3::numeric[], \
         $4::numeric[], $5::numeric[], $6::numeric[]) WITH ORDINALITY AS u (k, a, dp, dq, cp, cq, n) \
         ORDER BY n",
    )
    .bind(key)
    .bind(account)
    .bind(dp)
    .bind(dq)
    .bind(cp)
    .bind(cq)
    .bind(now)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Inserts applied sets in one `INSERT ... SELECT FROM UNNEST(arrays)`; returns (key,
/// sequence). The sequences come from the table's own sequence (`_last`, SQLite's hint, is
/// not needed: several instances insert at once).
pub async fn insert_sets(
    conn: &mut sqlx::PgConnection,
    sets: &[&TransferSet],
    now: DbTime,
    _last: Option<i64>,
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

/// Writes each account over the version it was read at, in one `UPDATE ... FROM UNNEST`.
/// `Ok(false)`: some row had moved on (a conflict; the caller rolls back and replays).
pub async fn write_accounts(
    conn: &mut sqlx::PgConnection,
    rows: &[(&Account, i64)],
    lease_token: Option<&str>,
    now: DbTime,
) -> Result<bool, MoneyError> {
    if rows.is_empty() {
        return Ok(true);
    }
    let n = rows.len();
    let mut id = Vec::with_capacity(n);
    let mut sums: [Vec<DbMoney>; 4] = std::array::from_fn(|_| Vec::with_capacity(n));
    let mut version = Vec::with_capacity(n);
    for (a, ver) in rows {
        let b = &a.balance;
        id.push(a.id.to_string());
        for (column, value) in sums.iter_mut().zip([
            b.debits_pending,
            b.debits_posted,
            b.credits_pending,
            b.credits_posted,
        ]) {
            column.push(DbMoney(value));
        }
        version.push(*ver);
    }
    let [dp, dq, cp, cq] = sums;
    let done = sqlx::query(
        "UPDATE ledger_accounts SET debits_pending = v.dp, debits_posted = v.dq, \
         credits_pending = v.cp, credits_posted = v.cq, version = ledger_accounts.version + 1, \
         lease_token = $7, updated_at = $8 \
         FROM UNNEST($1::text[], $2::numeric[], $3::numeric[], $4::numeric[], $5::numeric[], \
         $6::int8[]) AS v (id, dp, dq, cp, cq, ver) \
         WHERE ledger_accounts.id = v.id AND ledger_accounts.version = v.ver",
    )
    .bind(id)
    .bind(dp)
    .bind(dq)
    .bind(cp)
    .bind(cq)
    .bind(version)
    .bind(lease_token)
    .bind(now)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(done == n as u64)
}

/// Inserts new holds and updates closed ones (`stored` says which), one statement each.
pub async fn write_pendings(
    conn: &mut sqlx::PgConnection,
    rows: &[(&PendingTransfer, bool)],
    now: DbTime,
) -> Result<(), MoneyError> {
    let (new, closed): (Vec<_>, Vec<_>) = rows.iter().partition(|(_, stored)| !stored);
    if !new.is_empty() {
        let n = new.len();
        let (mut id, mut key, mut debit, mut credit) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut amount, mut expires, mut state, mut posted) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (p, _) in &new {
            let (st, amt) = pending_state(p);
            id.push(p.id.to_string());
            key.push(p.id.key.to_string());
            debit.push(p.debit.to_string());
            credit.push(p.credit.to_string());
            amount.push(DbMoney(p.amount));
            expires.push(p.expires_at.map(DbTime::from));
            state.push(st);
            posted.push(amt);
        }
        sqlx::query(
            "INSERT INTO ledger_pendings (id, set_key, debit, credit, amount, expires_at, state, \
             posted_amount, updated_at) \
             SELECT i, k, d, c, a, e, s, p, $9 FROM UNNEST($1::text[], $2::text[], $3::text[], \
             $4::text[], $5::numeric[], $6::timestamptz[], $7::text[], $8::numeric[]) \
             WITH ORDINALITY AS u (i, k, d, c, a, e, s, p, n) ORDER BY n",
        )
        .bind(id)
        .bind(key)
        .bind(debit)
        .bind(credit)
        .bind(amount)
        .bind(expires)
        .bind(state)
        .bind(posted)
        .bind(now)
        .execute(&mut *conn)
        .await?;
    }
    if !closed.is_empty() {
        let n = closed.len();
        let (mut id, mut state, mut posted) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        for (p, _) in &closed {
            let (st, amt) = pending_state(p);
            id.push(p.id.to_string());
            state.push(st);
            posted.push(amt);
        }
        // The state test is written so that no index can serve it: given `state = 'open'`
        // and stale statistics, PostgreSQL read every open hold through the state index for
        // each entry of the list (half a million rows per batch), as SQLite did (see
        // `sqlite_bulk.rs`). The primary key finds the row; the state is then a filter.
        let done = sqlx::query(
            "UPDATE ledger_pendings SET state = v.st, posted_amount = v.amt, updated_at = $4 \
             FROM UNNEST($1::text[], $2::text[], $3::numeric[]) AS v (id, st, amt) \
             WHERE ledger_pendings.id = v.id AND (ledger_pendings.state = 'open') IS TRUE",
        )
        .bind(id)
        .bind(state)
        .bind(posted)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        if done != n as u64 {
            // Closed by another instance since it was read (its account versions catch that
            // too): replay the batch on fresh rows.
            return Err(MoneyError::Contended { attempts: 0 });
        }
    }
    Ok(())
}
