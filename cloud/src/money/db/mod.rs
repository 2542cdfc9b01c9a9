//! The ledger's statements, written once and expanded per backend by `money_sql!` (like
//! `store/tx.rs`): every function runs inside the caller's transaction. Money binds as
//! [`DbMoney`] (NUMERIC on PostgreSQL, exact decimal TEXT on SQLite), instants as [`DbTime`].
//! The writer reads and writes a batch through `load_batch` and `write_batch`
//! ([`BatchReads`], [`BatchWrites`]), which have a form of their own per backend:
//! PostgreSQL does each in one statement, arrays in (`= ANY`, `UNNEST`), because every
//! statement is a round trip (`postgres_batch.rs`); SQLite runs one statement per table,
//! a list going in as one JSON parameter through `json_each` and rows coming back as one
//! JSON array (`sqlite_bulk.rs`, `sqlite_batch.rs`). A batch's session starts are judged by
//! `starts.rs` from what either read. `sqlite` and `postgres` below export the functions
//! under one set of names. The journal is stored as lines, one per (set, account)
//! (`ledger::journal`).

mod batch;
mod postgres_batch;
mod postgres_bulk;
mod rows;
mod sqlite_batch;
mod sqlite_bulk;
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
        use crate::money::writer::SettlementRow;
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

        /// Records settlements, flips their transactions to settled and writes cost and
        /// mismatch on their orders — in the caller's transaction, with the journal.
        pub async fn insert_settlements(
            conn: &mut $conn,
            rows: &[&SettlementRow],
            now: DbTime,
        ) -> Result<(), MoneyError> {
            for r in rows {
                sqlx::query(
                    "INSERT INTO settlements (pile_code, serial, idem_key, order_id, account_id, cost, charger_total, mismatch, difference, \
                     from_hold, released, from_wallet, receivable, operator_share, platform_fee, breakdown, settled_at, \
                     operator_id, site_id, started_at, ended_at, energy_mwh, export_mwh, v2g_driver_credit, v2g_operator_share, rule_version) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26)",
                )
                .bind(&r.pile)
                .bind(&r.serial)
                .bind(&r.key)
                .bind(r.order.as_deref())
                .bind(&r.account)
                .bind(DbMoney(r.cost))
                .bind(DbMoney(r.charger_total))
                .bind(r.mismatch)
                .bind(DbMoney(r.difference))
                .bind(DbMoney(r.from_hold))
                .bind(DbMoney(r.released))
                .bind(DbMoney(r.from_wallet))
                .bind(DbMoney(r.receivable))
                .bind(DbMoney(r.operator_share))
                .bind(DbMoney(r.platform_fee))
                .bind(Json(&r.breakdown))
                .bind(now)
                .bind(&r.share.operator)
                .bind(&r.share.site)
                .bind(r.share.started_at.map(DbTime::from))
                .bind(r.share.ended_at.map(DbTime::from))
                .bind(r.share.energy_mwh)
                .bind(r.share.export_mwh)
                .bind(DbMoney(r.share.v2g_driver_credit))
                .bind(DbMoney(r.share.v2g_operator_share))
                .bind(r.share.rule_version.map(i64::from))
                .execute(&mut *conn)
                .await?;
                sqlx::query("UPDATE transactions SET settled = $1, settled_at = $2 WHERE pile_code = $3 AND serial = $4")
                    .bind(true)
                    .bind(now)
                    .bind(&r.pile)
                    .bind(&r.serial)
                    .execute(&mut *conn)
                    .await?;
                if let Some(order) = &r.order {
                    sqlx::query(
                        "UPDATE orders SET settled_cost = $1, cost_mismatch = $2, version = version + 1, updated_at = $3, \
                         state = CASE WHEN state IN ('charging', 'discharging', 'stopping', 'completed') THEN 'settled' ELSE state END \
                         WHERE id = $4",
                    )
                    .bind(DbMoney(r.cost))
                    .bind(r.mismatch)
                    .bind(now)
                    .bind(order)
                    .execute(&mut *conn)
                    .await?;
                }
            }
            Ok(())
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
}

/// The statements on PostgreSQL.
pub mod postgres {
    money_sql!(sqlx::PgConnection);
    pub use super::postgres_batch::{load_batch, write_batch};
    pub use super::postgres_bulk::{load_accounts, load_pendings, load_sets};
}
