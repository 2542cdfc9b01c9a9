//! SQLite's batch statements for the writer: one statement per table per batch, whatever
//! the batch size (journal lines aside).
//!
//! sqlx runs SQLite on a worker thread and hands every statement and every fetched row
//! across a channel, one wakeup each; multi-row `VALUES` also make SQLite parse a new
//! statement of thousands of placeholders per chunk. So here a list goes in as **one JSON
//! array parameter** expanded by `json_each` (one prepared statement, reused), and rows come
//! back as **one row** holding a `json_group_array` of them. Money stays the exact decimal
//! text it is stored as (the same text [`DbMoney`] binds), instants integer microseconds,
//! so the values written are the ones the per-row statements wrote. Writes expand the list
//! with `jsonb_each` (each entry's fields are then read from its binary form, without
//! parsing its text again).
//!
//! The journal's lines are the exception: they go in as multi-row `VALUES` (see
//! [`insert_journal`]).
//!
//! An `UPDATE ... FROM` list must drive the join: the planner cannot count a table-valued
//! function's rows, and given an indexed condition on the table (`state = 'open'`) it scans
//! the table and runs the whole list for every row (seconds per batch). So every condition
//! but the key is written `+column` (no index), leaving the primary-key lookup per entry.

use serde::Serialize;
use sqlx::SqliteConnection;

use super::rows::{
    account_from_row, parse, pending_from_row, pending_state, AccountRow, PendingRowDb,
};
use crate::ledger::{Account, JournalLine, PendingTransfer, TransferSet};
use crate::money::MoneyError;
use crate::store::types::{DbMoney, DbTime};

/// Most list entries in one JSON parameter (bounds one statement's text, not a SQLite limit).
const JSON_CHUNK_ROWS: usize = 16_384;

/// A row of `ledger_accounts` as the JSON array of [`load_accounts`] holds it.
type AccountJson = (
    String,
    String,
    Option<String>,
    String,
    String,
    String,
    String,
    i64,
);

/// A row of `ledger_pendings` as the JSON array of [`load_pendings`] holds it.
type PendingJson = (
    String,
    String,
    String,
    String,
    Option<i64>,
    String,
    Option<String>,
);

/// The stored text of an amount (what [`DbMoney`] binds on SQLite).
pub(super) fn money_text(m: voltline_protocol::Money) -> String {
    m.yuan().to_string()
}

fn money(text: &str) -> Result<DbMoney, MoneyError> {
    parse(text, "amount").map(DbMoney)
}

/// Runs `sql` (one `$1` JSON list per chunk) and decodes its one JSON-array row.
pub(super) async fn fetch_list<T: serde::de::DeserializeOwned, K: Serialize>(
    conn: &mut SqliteConnection,
    sql: &'static str,
    list: &[K],
) -> Result<Vec<T>, MoneyError> {
    let mut out = Vec::with_capacity(list.len());
    for chunk in list.chunks(JSON_CHUNK_ROWS) {
        let (text,): (String,) = sqlx::query_as(sql)
            .bind(json_text(chunk)?)
            .fetch_one(&mut *conn)
            .await?;
        let rows: Vec<T> = serde_json::from_str(&text)
            .map_err(|e| MoneyError::Corrupt(format!("ledger rows as JSON: {e}")))?;
        out.extend(rows);
    }
    Ok(out)
}

/// A chunk of a list as the JSON text bound for `json_each`.
fn json_text<T: Serialize>(chunk: &[T]) -> Result<String, MoneyError> {
    serde_json::to_string(chunk)
        .map_err(|e| MoneyError::Corrupt(format!("ledger rows as JSON: {e}")))
}

/// The accounts among `ids` that exist, with their versions.
pub async fn load_accounts(
    conn: &mut SqliteConnection,
    ids: &[String],
) -> Result<Vec<(Account, i64)>, MoneyError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<AccountJson> = fetch_list(
        conn,
        "SELECT json_group_array(json_array(id, normal_side, lower_limit, debits_pending, debits_posted, \
         credits_pending, credits_posted, version)) \
         FROM ledger_accounts WHERE id IN (SELECT value FROM json_each($1))",
        ids,
    )
    .await?;
    rows.into_iter()
        .map(|r| {
            let row: AccountRow = (
                r.0,
                r.1,
                r.2.as_deref().map(money).transpose()?,
                money(&r.3)?,
                money(&r.4)?,
                money(&r.5)?,
                money(&r.6)?,
                r.7,
            );
            account_from_row(row)
        })
        .collect()
}

/// The holds among `ids` that exist.
pub async fn load_pendings(
    conn: &mut SqliteConnection,
    ids: &[String],
) -> Result<Vec<PendingTransfer>, MoneyError> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows: Vec<PendingJson> = fetch_list(
        conn,
        "SELECT json_group_array(json_array(id, debit, credit, amount, expires_at, state, posted_amount)) \
         FROM ledger_pendings WHERE id IN (SELECT value FROM json_each($1))",
        ids,
    )
    .await?;
    rows.into_iter()
        .map(|r| {
            let expires = match r.4 {
                Some(us) => Some(DbTime(
                    jiff::Timestamp::from_microsecond(us)
                        .map_err(|e| MoneyError::Corrupt(format!("hold expiry {us} µs: {e}")))?,
                )),
                None => None,
            };
            let row: PendingRowDb = (
                r.0,
                r.1,
                r.2,
                money(&r.3)?,
                expires,
                r.5,
                r.6.as_deref().map(money).transpose()?,
            );
            pending_from_row(row)
        })
        .collect()
}

/// The stored sets among `keys`: (key, sequence, set).
pub async fn load_sets(
    conn: &mut SqliteConnection,
    keys: &[String],
) -> Result<Vec<(String, i64, TransferSet)>, MoneyError> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    fetch_list(
        conn,
        "SELECT json_group_array(json_array(idem_key, sequence, json(content))) \
         FROM ledger_sets WHERE idem_key IN (SELECT value FROM json_each($1))",
        keys,
    )
    .await
}

/// Runs `sql` once per chunk of `list` (bound as `$1`), with `now` as `$2` and `extra` as
/// `$3` when the statement has one; returns the rows changed.
pub(super) async fn execute_list<T: Serialize>(
    conn: &mut SqliteConnection,
    sql: &'static str,
    list: &[T],
    now: DbTime,
    extra: Option<Option<&str>>,
) -> Result<u64, MoneyError> {
    let mut changed = 0;
    for chunk in list.chunks(JSON_CHUNK_ROWS) {
        let mut query = sqlx::query(sql).bind(json_text(chunk)?).bind(now);
        if let Some(extra) = extra {
            query = query.bind(extra.map(str::to_owned));
        }
        changed += query.execute(&mut *conn).await?.rows_affected();
    }
    Ok(changed)
}

/// Writes each account over the version it was read at, in one statement. `Ok(false)`: some
/// row had moved on (a conflict; the caller rolls back and replays).
pub async fn write_accounts(
    conn: &mut SqliteConnection,
    rows: &[(&Account, i64)],
    lease_token: Option<&str>,
    now: DbTime,
) -> Result<bool, MoneyError> {
    if rows.is_empty() {
        return Ok(true);
    }
    let list: Vec<_> = rows
        .iter()
        .map(|(a, ver)| {
            let b = &a.balance;
            (
                a.id.to_string(),
                money_text(b.debits_pending),
                money_text(b.debits_posted),
                money_text(b.credits_pending),
                money_text(b.credits_posted),
                *ver,
            )
        })
        .collect();
    let changed = execute_list(
        conn,
        "UPDATE ledger_accounts SET debits_pending = v.dp, debits_posted = v.dq, credits_pending = v.cp, \
         credits_posted = v.cq, version = ledger_accounts.version + 1, lease_token = $3, updated_at = $2 \
         FROM (SELECT value ->> 0 AS id, value ->> 1 AS dp, value ->> 2 AS dq, value ->> 3 AS cp, \
         value ->> 4 AS cq, value ->> 5 AS ver FROM jsonb_each($1)) AS v \
         WHERE ledger_accounts.id = v.id AND +ledger_accounts.version = v.ver",
        &list,
        now,
        Some(lease_token),
    )
    .await?;
    Ok(changed == rows.len() as u64)
}

/// Inserts new holds and updates closed ones (`stored` says which).
pub async fn write_pendings(
    conn: &mut SqliteConnection,
    rows: &[(&PendingTransfer, bool)],
    now: DbTime,
) -> Result<(), MoneyError> {
    let new: Vec<_> = rows
        .iter()
        .filter(|(_, stored)| !stored)
        .map(|(p, _)| {
            let (state, posted) = pending_state(p);
            (
                p.id.to_string(),
                p.id.key.to_string(),
                p.debit.to_string(),
                p.credit.to_string(),
                money_text(p.amount),
                p.expires_at.map(|t| DbTime::from(t).0.as_microsecond()),
                state,
                posted.map(|m| money_text(m.0)),
            )
        })
        .collect();
    if !new.is_empty() {
        execute_list(
            conn,
            "INSERT INTO ledger_pendings (id, set_key, debit, credit, amount, expires_at, state, posted_amount, updated_at) \
             SELECT value ->> 0, value ->> 1, value ->> 2, value ->> 3, value ->> 4, value ->> 5, value ->> 6, \
             value ->> 7, $2 FROM jsonb_each($1) ORDER BY key",
            &new,
            now,
            None,
        )
        .await?;
    }
    let closed: Vec<_> = rows
        .iter()
        .filter(|(_, stored)| *stored)
        .map(|(p, _)| {
            let (state, posted) = pending_state(p);
            (p.id.to_string(), state, posted.map(|m| money_text(m.0)))
        })
        .collect();
    if !closed.is_empty() {
        let changed = execute_list(
            conn,
            "UPDATE ledger_pendings SET state = v.st, posted_amount = v.amt, updated_at = $2 \
             FROM (SELECT value ->> 0 AS id, value ->> 1 AS st, value ->> 2 AS amt FROM jsonb_each($1)) AS v \
             WHERE ledger_pendings.id = v.id AND +ledger_pendings.state = 'open'",
            &closed,
            now,
            None,
        )
        .await?;
        if changed != closed.len() as u64 {
            // Closed by another instance since it was read (its account versions catch
            // that too): replay the batch on fresh rows.
            return Err(MoneyError::Contended { attempts: 0 });
        }
    }
    Ok(())
}

/// Inserts applied sets with multi-row `VALUES` (as the journal); returns (key, sequence).
/// The sequences are the next ones after the highest stored, given in order here rather than
/// read back: the writer's transaction began `IMMEDIATE`, so it holds SQLite's write lock and
/// no other connection or process can insert in between. `last` is the writer's note of the
/// highest sequence it committed; without one it is read. A stale note (sets inserted by
/// something else) makes the insert hit the primary key, a key race: the writer forgets its
/// note and replays the batch.
pub async fn insert_sets(
    conn: &mut SqliteConnection,
    sets: &[&TransferSet],
    now: DbTime,
    last: Option<i64>,
) -> Result<Vec<(String, i64)>, MoneyError> {
    if sets.is_empty() {
        return Ok(Vec::new());
    }
    let last = match last {
        Some(last) => last,
        None => {
            let (last,): (i64,) =
                sqlx::query_as("SELECT COALESCE(MAX(sequence), 0) FROM ledger_sets")
                    .fetch_one(&mut *conn)
                    .await?;
            last
        }
    };
    let mut out = Vec::with_capacity(sets.len());
    for (n, chunk) in sets
        .chunks(crate::money::limits::INSERT_CHUNK_ROWS)
        .enumerate()
    {
        let first = last + 1 + (n * crate::money::limits::INSERT_CHUNK_ROWS) as i64;
        let mut rows = Vec::with_capacity(chunk.len());
        for (i, s) in chunk.iter().enumerate() {
            let content = serde_json::to_string(*s)
                .map_err(|e| MoneyError::Corrupt(format!("transfer set {}: {e}", s.key)))?;
            rows.push((first + i as i64, s, content));
        }
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO ledger_sets (sequence, idem_key, reason, order_id, content, created_at) ",
        );
        out.extend(
            rows.iter()
                .map(|(sequence, s, _)| (s.key.to_string(), *sequence)),
        );
        qb.push_values(rows, |mut b, (sequence, s, content)| {
            b.push_bind(sequence)
                .push_bind(s.key.to_string())
                .push_bind(format!("{:?}", s.memo.reason).to_lowercase())
                .push_bind(s.memo.order.as_ref().map(|o| o.to_string()))
                .push_bind(content)
                .push_bind(now);
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(out)
}

/// Appends journal lines in their order, with multi-row `VALUES` of
/// [`INSERT_CHUNK_ROWS`](crate::money::limits::INSERT_CHUNK_ROWS) rows: the journal is the
/// longest list of a batch (four lines per settlement), and a cached multi-row statement
/// inserts a row in about half the time of a `jsonb_each` entry.
pub async fn insert_journal(
    conn: &mut SqliteConnection,
    lines: &[JournalLine],
    now: DbTime,
) -> Result<(), MoneyError> {
    for chunk in lines.chunks(crate::money::limits::INSERT_CHUNK_ROWS) {
        let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
            "INSERT INTO ledger_journal (set_key, account, debits_pending, debits_posted, \
             credits_pending, credits_posted, created_at) ",
        );
        qb.push_values(chunk.iter(), |mut b, line| {
            b.push_bind(line.key.to_string())
                .push_bind(line.account.to_string());
            for delta in line.deltas {
                b.push_bind(delta.map(DbMoney));
            }
            b.push_bind(now);
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(())
}
