//! SQLite reads and writes a batch with its per-table statements in turn (`sqlite_bulk.rs`):
//! a statement costs no network round trip here, only a hand-over to sqlx's worker thread.
//! The session starts' checks and inserts live here too; PostgreSQL folds both into its
//! batch statements (`postgres_batch.rs`).

use std::collections::BTreeMap;

use sqlx::types::Json;
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};

use super::batch::{BatchReads, BatchWrites, Loaded, Written};
use super::sqlite_bulk::{
    insert_journal, insert_sets, load_accounts, load_pendings, load_sets, write_accounts,
    write_pendings,
};
use super::starts::{StartFacts, StartKeys};
use crate::domain::CommandKind;
use crate::money::writer::StartRows;
use crate::money::MoneyError;
use crate::store::types::{DbMoney, DbTime};

/// Rows per multi-row insert of orders or commands (16 parameters each at most).
const START_CHUNK_ROWS: usize = 500;

/// Reads what the batch names: stored sets, accounts, holds, and the starts' facts.
pub async fn load_batch(
    conn: &mut SqliteConnection,
    reads: &BatchReads<'_>,
) -> Result<Loaded, MoneyError> {
    Ok(Loaded {
        sets: load_sets(conn, reads.keys).await?,
        accounts: load_accounts(conn, reads.accounts).await?,
        pendings: load_pendings(conn, reads.pendings).await?,
        refused: check_starts(conn, reads.starts).await?,
    })
}

/// Writes the batch. `Ok(None)`: an account had moved on since it was read (the caller
/// rolls back and replays).
pub async fn write_batch(
    conn: &mut SqliteConnection,
    w: &BatchWrites<'_>,
) -> Result<Option<Written>, MoneyError> {
    if !write_accounts(conn, w.accounts, w.lease_token, w.now).await? {
        return Ok(None);
    }
    write_pendings(conn, w.holds, w.now).await?;
    let sequences = insert_sets(conn, w.sets, w.now, w.last_sequence).await?;
    insert_journal(conn, w.journal, w.now).await?;
    super::sqlite::insert_settlements(conn, w.settlements, w.now).await?;
    let starts = insert_starts(conn, w.starts, w.now).await?;
    Ok(Some(Written { sequences, starts }))
}

/// Which session starts of a batch (by job index) the database refuses, with one statement
/// for the chargers and the three uniqueness checks (at most five binds per start).
async fn check_starts(
    conn: &mut SqliteConnection,
    starts: &[(usize, &StartRows)],
) -> Result<Vec<(usize, MoneyError)>, MoneyError> {
    if starts.is_empty() {
        return Ok(Vec::new());
    }
    assert!(
        starts.len() <= crate::money::limits::MAX_BATCH,
        "a batch's starts fit one statement"
    );
    let keys = StartKeys::of(starts);
    let mut qb = QueryBuilder::<Sqlite>::new(
        "SELECT 'charger', pile_code, site_id, connector_count FROM chargers WHERE pile_code IN (",
    );
    let mut sep = qb.separated(", ");
    for pile in &keys.piles {
        sep.push_bind(pile.clone());
    }
    qb.push(") UNION ALL SELECT 'id', id, NULL, NULL FROM orders WHERE id IN (");
    let mut sep = qb.separated(", ");
    for id in &keys.ids {
        sep.push_bind(id.clone());
    }
    qb.push(")");
    if !keys.keys.is_empty() {
        // Row values, so that the unique index on (account_id, idempotency_key) serves it.
        qb.push(
            " UNION ALL SELECT 'key', idempotency_key, account_id, NULL FROM orders \
             WHERE (account_id, idempotency_key) IN (VALUES ",
        );
        let mut sep = qb.separated(", ");
        for (account, key) in &keys.keys {
            sep.push("(")
                .push_bind_unseparated(account.clone())
                .push_unseparated(", ")
                .push_bind_unseparated(key.clone())
                .push_unseparated(")");
        }
        qb.push(")");
    }
    if !keys.serials.is_empty() {
        qb.push(
            " UNION ALL SELECT 'serial', transaction_serial, NULL, NULL FROM orders \
             WHERE transaction_serial IN (",
        );
        let mut sep = qb.separated(", ");
        for serial in &keys.serials {
            sep.push_bind(serial.clone());
        }
        qb.push(")");
    }
    let found: Vec<(String, String, Option<String>, Option<i64>)> =
        qb.build_query_as().fetch_all(&mut *conn).await?;
    let mut facts = StartFacts::default();
    for (what, value, text, count) in found {
        facts.record(&what, value, text, count)?;
    }
    Ok(facts.refusals(starts))
}

/// Stores the orders (state `pending`, version 1) and start commands (state `queued`) of
/// accepted starts with one multi-row statement per table and chunk. A unique key another
/// instance inserted since [`check_starts`] is a lost race: the batch is replayed, and its
/// check then refuses that start alone.
async fn insert_starts(
    conn: &mut SqliteConnection,
    starts: &[(usize, StartRows)],
    now: DbTime,
) -> Result<BTreeMap<usize, (crate::store::Order, crate::store::CommandRecord)>, MoneyError> {
    for chunk in starts.chunks(START_CHUNK_ROWS) {
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO orders (id, account_id, site_id, pile_code, connector, kind, payment_method, \
             limit_amount, limit_energy_mwh, state, hold_id, transaction_serial, idempotency_key, \
             created_at, updated_at, version) ",
        );
        qb.push_values(chunk.iter(), |mut b, (_, rows)| {
            let new = &rows.order;
            b.push_bind(new.id.to_string())
                .push_bind(new.account.to_string())
                .push_bind(new.site.to_string())
                .push_bind(new.pile.to_string())
                .push_bind(i64::from(new.connector.get()))
                .push_bind(new.kind.as_str())
                .push_bind(new.payment_method.to_text())
                .push_bind(new.limit.amount.map(DbMoney))
                .push_bind(new.limit.energy.map(|e| e.mwh()))
                .push_bind("pending")
                .push_bind(new.hold_id.clone())
                .push_bind(new.transaction_serial.map(|s| s.to_string()))
                .push_bind(new.idempotency_key.clone())
                .push_bind(now)
                .push_bind(now)
                .push_bind(1_i64);
        });
        qb.build().execute(&mut *conn).await?;
        let mut qb = QueryBuilder::<Sqlite>::new(
            "INSERT INTO commands (id, site_id, order_id, kind, payload, state, expires_at, \
             created_at, updated_at, attempts) ",
        );
        qb.push_values(chunk.iter(), |mut b, (_, rows)| {
            let cmd = &rows.start;
            b.push_bind(cmd.id.to_string())
                .push_bind(cmd.site.to_string())
                .push_bind(cmd.order.as_ref().map(|o| o.to_string()))
                .push_bind(CommandKind::of(&cmd.command).as_str())
                .push_bind(Json(cmd.command.clone()))
                .push_bind("queued")
                .push_bind(DbTime::from(cmd.expires_at))
                .push_bind(now)
                .push_bind(now)
                .push_bind(0_i64);
        });
        qb.build().execute(&mut *conn).await?;
    }
    Ok(starts
        .iter()
        .map(|(i, r)| (*i, crate::store::tx::stored_start(&r.order, &r.start, now)))
        .collect())
}
