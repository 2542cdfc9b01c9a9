//! The SQL store: one API over two real backends, chosen by URL.
//!
//! - **SQLite** (`sqlite://PATH`, the embedded default): one file in the data directory, WAL
//!   journal, `synchronous = NORMAL`, a busy timeout so concurrent writers wait instead of
//!   failing, foreign keys on. With WAL + NORMAL a commit survives a crash or `kill -9` of the
//!   cloud process and the file is never corrupted, but the last commits before a *power
//!   loss or OS crash* can be lost (the WAL is fsynced at checkpoints, not at each commit).
//!   Checkpoints run in a background task (`PRAGMA wal_checkpoint(PASSIVE)` every 250 ms),
//!   not in whichever commit crosses the WAL limit, so no request waits for one.
//!   Deployments where that matters run PostgreSQL (or set `synchronous = FULL`, one fsync
//!   per batch commit).
//! - **PostgreSQL** (`postgres://...`): for production and for several cloud instances.
//!
//! Why one source for two dialects: almost every statement here is portable SQL (`$n`
//! placeholders, `ON CONFLICT`, `RETURNING` work in both), and the column types that differ
//! (instants, money) are hidden behind [`types::DbTime`] and [`types::DbMoney`], which encode
//! natively for each backend. The `with_pool!` macro expands a method body once per backend
//! with the concrete pool type, so the compiler checks both and there is no `Any` driver (which
//! would lose `NUMERIC`). The few statements that differ (bulk ingest: multi-row `VALUES` on
//! SQLite, `UNNEST` arrays on PostgreSQL; the write-transaction `BEGIN`) live in
//! `ingest_sqlite.rs` and `ingest_postgres.rs` and in [`Dialect`]; steps that run inside a
//! caller's transaction are written once in `tx.rs` and `ingest_tx.rs` and expanded per
//! backend.
//!
//! Files: [`registry`] (operators, sites, accounts), [`chargers`], [`cards`], [`tariffs`],
//! [`tokens`], [`orders`], [`commands`], [`ingest`], [`reports`] (read-only summaries for
//! checks and tests); [`model`] holds the records they return.
//! Migrations live in `cloud/migrations/{sqlite,postgres}/` and run at start-up
//! ([`Store::open`]).

use std::path::Path;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

pub mod cards;
pub mod chargers;
pub mod commands;
pub mod discharges;
pub mod error;
pub mod ingest;
mod ingest_postgres;
mod ingest_sqlite;
mod ingest_tx;
pub mod model;
pub mod orders;
pub mod registry;
pub mod reports;
mod rows;
pub mod tariffs;
pub mod tokens;
pub(crate) mod tx;
pub mod types;

pub use error::StoreError;
pub use model::*;

/// The result of a store operation.
pub type StoreResult<T> = Result<T, StoreError>;

/// The file name of the SQLite database inside the data directory.
pub const SQLITE_FILE: &str = "voltline-cloud.db";

/// How long a SQLite writer waits for another before giving up.
const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(10);
/// WAL size (pages) at which a committing SQLite connection checkpoints by itself. Only a
/// safety net: the background checkpointer keeps the WAL well below it, so a commit (and
/// the request or batch waiting on it) does not pay for a checkpoint and its fsync.
const SQLITE_AUTOCHECKPOINT_PAGES: &str = "20000";
/// Page cache per SQLite connection, in KiB (SQLite's negative form; its default is 2 MiB).
/// The ledger's unique keys and journal index are written at random places; with the default
/// cache a large batch rereads their pages from the OS on every insert.
const SQLITE_CACHE_KIB: &str = "-65536";
/// How often the background checkpointer runs `PRAGMA wal_checkpoint(PASSIVE)`, which
/// copies committed WAL frames into the database without blocking writers or readers.
/// Its fsync of the database file stalls commits for as long as it takes (on ext4 the
/// WAL's write waits for the journal), so small and frequent checkpoints make short
/// stalls. Measured at 1,000 session starts/s on SQLite, ten-second runs: 250 ms gave 4-6
/// commits over 15 ms per run and a p99 of 13-16 ms; 100 ms gave none and 6.9-10.1 ms; 50 ms
/// no better than 100 ms, and ~8 % fewer settlements/s.
const SQLITE_CHECKPOINT_EVERY: Duration = Duration::from_millis(100);

/// Most SQLite connections (one writer at a time; the others read under WAL).
const SQLITE_MAX_CONNECTIONS: u32 = 4;
/// Most PostgreSQL connections per cloud instance.
const PG_MAX_CONNECTIONS: u32 = 16;

static SQLITE_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");
static PG_MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// Which backend a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

impl Dialect {
    /// The statement that opens a write transaction. SQLite takes the write lock up front
    /// (`IMMEDIATE`) so a transaction that reads before it writes never fails to upgrade;
    /// PostgreSQL locks rows as statements touch them.
    pub(crate) const fn begin_write(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        }
    }

    /// [`begin_write`](Dialect::begin_write) for a transaction of batch statements that find
    /// their rows by key from a list (`= ANY`, `UNNEST` of arrays). Left to itself,
    /// PostgreSQL plans such a statement given a list of a thousand keys as a hash join over
    /// a scan of the whole table (80 ms where the index takes 10, and growing with the
    /// table), and keeps a generic plan made while a table was small (a scan) until the
    /// table is next analysed. Inside this transaction scans and hash or merge joins are
    /// priced out, so each key is an index probe whatever the list and the table. (Every
    /// statement of the ledger writer's batch finds its rows by key.) With that the plan does
    /// not depend on the lists, so the prepared statements keep their generic plan
    /// (`force_generic_plan`) instead of planning the batch's statements afresh every time:
    /// at 1,000 session starts/s that planning was a sixth of a batch's time (2.9 to 2.4 ms).
    pub(crate) const fn begin_batch(self) -> &'static str {
        match self {
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => {
                "BEGIN; SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off; \
                 SET LOCAL enable_mergejoin = off; SET LOCAL plan_cache_mode = force_generic_plan"
            }
        }
    }
}

#[derive(Clone, Debug)]
pub(crate) enum Backend {
    Sqlite(SqlitePool),
    Postgres(PgPool),
}

/// Serialises write transactions within one process on SQLite. SQLite admits one writer at a
/// time; without the gate, waiting writers poll the lock through SQLite's busy handler (sleeps
/// of up to 100 ms), which wastes most of the time under load. With it they queue in FIFO
/// order on a tokio mutex and the lock is handed over at once. PostgreSQL needs no gate.
#[derive(Clone, Debug, Default)]
pub(crate) struct WriteGate(Arc<tokio::sync::Mutex<()>>);

/// Lives as long as some clone of a SQLite [`Store`]; the background checkpointer stops
/// once the last one is gone (or the pool is closed).
#[derive(Debug)]
struct CheckpointerAlive;

/// Checkpoints the WAL of `pool` in the background (see [`SQLITE_CHECKPOINT_EVERY`]).
fn spawn_checkpointer(pool: SqlitePool, alive: std::sync::Weak<CheckpointerAlive>) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SQLITE_CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if alive.strong_count() == 0 || pool.is_closed() {
                return;
            }
            if let Err(e) = sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
                .execute(&pool)
                .await
            {
                tracing::debug!(error = %e, "background WAL checkpoint failed; retrying next tick");
            }
        }
    });
}

/// Expands `$body` once per backend with `$pool` bound to the concrete pool, `$dialect` to
/// the [`Dialect`] and (optionally) `$ops` to the backend's in-transaction steps ([`tx`]),
/// so one method body serves both.
macro_rules! with_pool {
    ($store:expr, |$pool:ident, $dialect:ident, $ops:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => {
                use $crate::store::tx::sqlite as $ops;
                #[allow(unused_variables)]
                let $dialect = $crate::store::Dialect::Sqlite;
                $body
            }
            $crate::store::Backend::Postgres($pool) => {
                use $crate::store::tx::postgres as $ops;
                #[allow(unused_variables)]
                let $dialect = $crate::store::Dialect::Postgres;
                $body
            }
        }
    };
    ($store:expr, |$pool:ident, $dialect:ident| $body:expr) => {
        match &$store.backend {
            $crate::store::Backend::Sqlite($pool) => {
                #[allow(unused_variables)]
                let $dialect = $crate::store::Dialect::Sqlite;
                $body
            }
            $crate::store::Backend::Postgres($pool) => {
                #[allow(unused_variables)]
                let $dialect = $crate::store::Dialect::Postgres;
                $body
            }
        }
    };
}
pub(crate) use with_pool;

/// The cloud's store. Cheap to clone (it holds a connection pool).
#[derive(Clone, Debug)]
pub struct Store {
    pub(crate) backend: Backend,
    write_gate: WriteGate,
    _checkpointer: Option<Arc<CheckpointerAlive>>,
}

impl Store {
    /// Connects to the database at `url` and brings its schema up to date.
    ///
    /// `sqlite://PATH[?mode=rwc]` or `postgres://USER:PASSWORD@HOST[:PORT]/DB`.
    pub async fn open(url: &str) -> StoreResult<Store> {
        let store = if url.starts_with("sqlite:") {
            let options = SqliteConnectOptions::from_str(url)
                .map_err(|e| StoreError::invalid("database URL", e.to_string()))?;
            Store::connect_sqlite(options).await?
        } else if url.starts_with("postgres:") || url.starts_with("postgresql:") {
            let options = PgConnectOptions::from_str(url)
                .map_err(|e| StoreError::invalid("database URL", e.to_string()))?;
            Store::connect_postgres(options).await?
        } else {
            return Err(StoreError::UnsupportedUrl(url.to_owned()));
        };
        store.migrate().await?;
        Ok(store)
    }

    /// Opens (creating if needed) the embedded SQLite database in `data_dir`.
    pub async fn open_in_dir(data_dir: &Path) -> StoreResult<Store> {
        std::fs::create_dir_all(data_dir).map_err(|e| {
            StoreError::invalid(
                "data directory",
                format!(
                    "cannot create {}: {e}; choose a writable directory",
                    data_dir.display()
                ),
            )
        })?;
        let options = SqliteConnectOptions::new().filename(data_dir.join(SQLITE_FILE));
        let store = Store::connect_sqlite(options).await?;
        store.migrate().await?;
        Ok(store)
    }

    /// Connects to SQLite with Voltline's settings on top of `options` (no migration).
    pub async fn connect_sqlite(options: SqliteConnectOptions) -> StoreResult<Store> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .busy_timeout(SQLITE_BUSY_TIMEOUT)
            .foreign_keys(true)
            .pragma("wal_autocheckpoint", SQLITE_AUTOCHECKPOINT_PAGES)
            .pragma("cache_size", SQLITE_CACHE_KIB);
        let pool = SqlitePoolOptions::new()
            .max_connections(SQLITE_MAX_CONNECTIONS)
            .connect_with(options)
            .await?;
        let alive = Arc::new(CheckpointerAlive);
        spawn_checkpointer(pool.clone(), Arc::downgrade(&alive));
        Ok(Store {
            backend: Backend::Sqlite(pool),
            write_gate: WriteGate::default(),
            _checkpointer: Some(alive),
        })
    }

    /// Connects to PostgreSQL with `options` (no migration). Tests pass options that set a
    /// `search_path` to a schema of their own.
    pub async fn connect_postgres(options: PgConnectOptions) -> StoreResult<Store> {
        let pool = PgPoolOptions::new()
            .max_connections(PG_MAX_CONNECTIONS)
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Store {
            backend: Backend::Postgres(pool),
            write_gate: WriteGate::default(),
            _checkpointer: None,
        })
    }

    /// Applies the migrations this build carries that the database lacks. Idempotent.
    pub async fn migrate(&self) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(pool) => SQLITE_MIGRATOR.run(pool).await?,
            Backend::Postgres(pool) => PG_MIGRATOR.run(pool).await?,
        }
        Ok(())
    }

    /// Applies the migrations up to and including `version` only: for upgrade tests, which
    /// seed a database in an earlier schema and then [`migrate`](Store::migrate) it.
    #[doc(hidden)]
    pub async fn migrate_to(&self, version: i64) -> StoreResult<()> {
        match &self.backend {
            Backend::Sqlite(pool) => SQLITE_MIGRATOR.run_to(version, pool).await?,
            Backend::Postgres(pool) => PG_MIGRATOR.run_to(version, pool).await?,
        }
        Ok(())
    }

    /// Waits for this process's turn to write (SQLite only; see [`WriteGate`]). Hold the
    /// guard for the whole write transaction.
    pub(crate) async fn write_turn(&self) -> Option<tokio::sync::MutexGuard<'_, ()>> {
        match &self.backend {
            Backend::Sqlite(_) => Some(self.write_gate.0.lock().await),
            Backend::Postgres(_) => None,
        }
    }

    /// The backend in use.
    pub fn dialect(&self) -> Dialect {
        match &self.backend {
            Backend::Sqlite(_) => Dialect::Sqlite,
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    /// Waits for queries in flight, then closes every connection.
    pub async fn close(&self) {
        match &self.backend {
            Backend::Sqlite(pool) => pool.close().await,
            Backend::Postgres(pool) => pool.close().await,
        }
    }
}

/// Converts a sequence number or count to the database's signed 64-bit integer.
pub(crate) fn to_i64(value: u64, what: &'static str) -> StoreResult<i64> {
    i64::try_from(value)
        .map_err(|_| StoreError::invalid(what, format!("{value} is above {}", i64::MAX)))
}

/// Reads back a stored non-negative integer.
pub(crate) fn to_u64(value: i64, what: &'static str) -> StoreResult<u64> {
    u64::try_from(value).map_err(|_| StoreError::corrupt(format!("{what} is negative ({value})")))
}

/// Parses stored text with `FromStr`, reporting corruption if it does not parse.
pub(crate) fn parse_stored<T>(text: &str, what: &'static str) -> StoreResult<T>
where
    T: FromStr,
    T::Err: std::fmt::Display,
{
    text.parse::<T>()
        .map_err(|e| StoreError::corrupt(format!("{what} '{text}': {e}")))
}
