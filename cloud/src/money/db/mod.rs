//! The ledger's statements, written once and expanded per backend by `money_sql!` (like
//! `store/tx.rs`): every function runs inside the caller's transaction. Money binds as
//! [`DbMoney`] (NUMERIC on PostgreSQL, exact decimal TEXT on SQLite), instants as [`DbTime`].
//! The writer reads and writes a batch through `load_batch` and `write_batch`
//! ([`BatchReads`], [`BatchWrites`]), which have a form of their own per backend:
//! PostgreSQL does each in one statement, arrays in (`= ANY`, `UNNEST`), because every
//! statement is a round trip (`postgres_batch.rs`); SQLite runs one statement per table,
//! a list going in as one JSON parameter through `json_each` and rows coming back as one
//! JSON array (`sqlite_bulk.rs`, `sqlite_batch.rs`). A batch's session starts are judged by
//! `starts.rs` from what either read. Settlement's own rows (the settlement, the record's
//! `settled` flag, the order's cost) and a settlement pass's reads (orders, meter readings)
//! are likewise one statement per list (`sqlite_settle.rs`, `postgres_settle.rs`). `sqlite` and `postgres` below export the functions
//! under one set of names. The journal is stored as lines, one per (set, account)
//! (`ledger::journal`).

mod batch;
mod postgres_batch;
mod postgres_bulk;
mod postgres_settle;
mod rows;
mod sqlite_batch;
mod sqlite_bulk;
mod sqlite_settle;
mod starts;

pub use batch::{BatchReads, BatchWrites, Loaded, Written};
pub use rows::*;

macro_rules! money_sql {
    ($conn:ty) => {
        use sqlx::types::Json;

        use crate::ledger::{Account, AccountPolicy, LedgerAccountId, PendingTransfer, TransferSet};
        use crate::money::db::{
            account_from_row, owner_of, pending_from_row, side_text,
            AccountRow, PendingRowDb,
        };
        use crate::money::MoneyError;
        use crate::store::types::{DbMoney, DbTime};

        const ACCOUNT_COLUMNS: &str = "SELECT id, normal_side, lower_limit, debits_pending, debits_posted, credits_pending, credits_posted, version FROM ledger_accounts";

        /// Every account (tests and benches check the whole ledger with it).
        pub async fn all_accounts(conn: &mut $conn) -> Result<Vec<(Account, i64)>, MoneyError> {
            let rows: Vec<AccountRow> = sqlx::query_as(ACCOUNT_COLUMNS).fetch_all(&mut *conn).await?;
            rows.into_iter().map(account_from_row).collect()
        }

        /// Opens an account; `false` if it exists (its policy is returned for comparison).
        pub async fn open_account(
            conn: &mut $conn,
            id: &LedgerAccountId,
            policy: AccountPolicy,
            now: DbTime,
        ) -> Result<Option<AccountPolicy>, MoneyError> {
            sqlx::query(
                "INSERT INTO ledger_accounts (id, kind, owner, normal_side, lower_limit, created_at, updated_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (id) DO NOTHING",
            )
            .bind(id.to_string())
            .bind(id.kind().as_str())
            .bind(owner_of(id))
            .bind(side_text(policy.normal))
            .bind(policy.lower_limit.map(DbMoney))
            .bind(now)
            .execute(&mut *conn)
            .await?;
            let found = load_accounts(conn, &[id.to_string()]).await?;
            Ok(found.into_iter().next().map(|(a, _)| a.policy))
        }

        /// The journal lines of `account` that moved a posted sum, oldest first, at most
        /// `limit`: (journal id, set key, created_at, debits posted, credits posted).
        pub async fn journal_of(
            conn: &mut $conn,
            account: &str,
            limit: i64,
        ) -> Result<Vec<(i64, String, DbTime, Option<DbMoney>, Option<DbMoney>)>, MoneyError> {
            Ok(sqlx::query_as(
                "SELECT id, set_key, created_at, debits_posted, credits_posted FROM ledger_journal \
                 WHERE account = $1 AND (debits_posted IS NOT NULL OR credits_posted IS NOT NULL) \
                 ORDER BY id LIMIT $2",
            )
            .bind(account)
            .bind(limit)
            .fetch_all(&mut *conn)
            .await?)
        }

        /// Every applied set in sequence order.
        pub async fn all_sets(conn: &mut $conn) -> Result<Vec<(i64, TransferSet)>, MoneyError> {
            let rows: Vec<(i64, Json<TransferSet>)> = sqlx::query_as("SELECT sequence, content FROM ledger_sets ORDER BY sequence")
                .fetch_all(&mut *conn)
                .await?;
            Ok(rows.into_iter().map(|(s, j)| (s, j.0)).collect())
        }

        /// Every hold.
        pub async fn all_pendings(conn: &mut $conn) -> Result<Vec<PendingTransfer>, MoneyError> {
            let rows: Vec<PendingRowDb> = sqlx::query_as("SELECT id, debit, credit, amount, expires_at, state, posted_amount FROM ledger_pendings")
                .fetch_all(&mut *conn)
                .await?;
            rows.into_iter().map(pending_from_row).collect()
        }

        /// Every journal line in order (audits: each sum equals the sum of its lines):
        /// (account, set key, the four deltas in `BalanceField::ALL` order).
        #[allow(clippy::type_complexity)]
        pub async fn all_journal(
            conn: &mut $conn,
        ) -> Result<Vec<(String, String, Option<DbMoney>, Option<DbMoney>, Option<DbMoney>, Option<DbMoney>)>, MoneyError> {
            Ok(sqlx::query_as(
                "SELECT account, set_key, debits_pending, debits_posted, credits_pending, credits_posted \
                 FROM ledger_journal ORDER BY id",
            )
            .fetch_all(&mut *conn)
            .await?)
        }
    };
}

/// The statements on SQLite.
pub mod sqlite {
    money_sql!(sqlx::SqliteConnection);
    pub use super::sqlite_batch::{load_batch, write_batch};
    pub use super::sqlite_bulk::{load_accounts, load_pendings, load_sets};
    pub use super::sqlite_settle::{insert_settlements, load_payers, load_readings};
}

/// The statements on PostgreSQL.
pub mod postgres {
    money_sql!(sqlx::PgConnection);
    pub use super::postgres_batch::{load_batch, write_batch};
    pub use super::postgres_bulk::{load_accounts, load_pendings, load_sets};
    pub use super::postgres_settle::{insert_settlements, load_payers, load_readings};
}
