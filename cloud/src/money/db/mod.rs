//! The ledger's statements, written once and expanded per backend by `money_sql!` (like
//! `store/tx.rs`): every function runs inside the caller's transaction. Money binds as
//! [`DbMoney`] (NUMERIC on PostgreSQL, exact decimal TEXT on SQLite), instants as [`DbTime`].
//! A batch's session starts are checked with one `IN (...)` statement. The writer's other
//! batch statements have a form of their own per backend: arrays (`= ANY`, `UNNEST`) on
//! PostgreSQL (`postgres_bulk.rs`), one JSON list parameter through `json_each` with rows
//! returned as one JSON array on SQLite (`sqlite_bulk.rs`); `sqlite` and `postgres` below
//! export the functions under one set of names. The journal is stored as lines, one per
//! (set, account) (`ledger::journal`).

mod postgres_bulk;
mod rows;
mod sqlite_bulk;

pub use rows::*;

macro_rules! money_sql {
    ($conn:ty, $db:ty, $store_tx:ident) => {
        use sqlx::types::Json;
        use sqlx::QueryBuilder;

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

        /// Which session starts of a batch (by job index) the database would refuse: the
        /// charger gone or at another site or without the connector, an order id, idempotency
        /// key (per account) or transaction serial stored already or repeated within the batch.
        /// Checked before anything is written, so a refused start leaves no trace.
        pub async fn check_starts(
            conn: &mut $conn,
            starts: &[(usize, &crate::money::writer::StartRows)],
        ) -> Result<Vec<(usize, MoneyError)>, MoneyError> {
            use std::collections::{BTreeMap, BTreeSet};
            if starts.is_empty() {
                return Ok(Vec::new());
            }
            assert!(starts.len() <= crate::money::limits::MAX_BATCH, "a batch's starts fit one statement");
            let piles: BTreeSet<String> = starts.iter().map(|(_, s)| s.order.pile.to_string()).collect();
            let ids: Vec<String> = starts.iter().map(|(_, s)| s.order.id.to_string()).collect();
            let keys: Vec<String> = starts.iter().filter_map(|(_, s)| s.order.idempotency_key.clone()).collect();
            let serials: Vec<String> = starts
                .iter()
                .filter_map(|(_, s)| s.order.transaction_serial.map(|t| t.to_string()))
                .collect();
            // One statement (one round trip) for the chargers and the three uniqueness
            // checks: at most four binds per start, far below either backend's limit. The
            // chargers' branch (never empty: every start names one) comes first and gives
            // PostgreSQL the columns' types.
            let piles: Vec<String> = piles.into_iter().collect();
            let branches: [(&str, &[String]); 4] = [
                ("SELECT 'charger', pile_code, site_id, connector_count FROM chargers WHERE pile_code", &piles),
                ("SELECT 'id', id, NULL, NULL FROM orders WHERE id", &ids),
                ("SELECT 'key', idempotency_key, account_id, NULL FROM orders WHERE idempotency_key", &keys),
                ("SELECT 'serial', transaction_serial, NULL, NULL FROM orders WHERE transaction_serial", &serials),
            ];
            let mut qb = QueryBuilder::<$db>::new("");
            for (n, (select, values)) in branches.into_iter().filter(|(_, v)| !v.is_empty()).enumerate() {
                if n > 0 {
                    qb.push(" UNION ALL ");
                }
                qb.push(select);
                qb.push(" IN (");
                let mut sep = qb.separated(", ");
                for v in values {
                    sep.push_bind(v.clone());
                }
                qb.push(")");
            }
            let found: Vec<(String, String, Option<String>, Option<i64>)> =
                qb.build_query_as().fetch_all(&mut *conn).await?;
            let mut chargers: BTreeMap<String, (String, i64)> = BTreeMap::new();
            let mut seen_ids: BTreeSet<String> = BTreeSet::new();
            let mut seen_keys: BTreeSet<(String, String)> = BTreeSet::new();
            let mut seen_serials: BTreeSet<String> = BTreeSet::new();
            for (what, value, text, count) in found {
                match what.as_str() {
                    "charger" => {
                        chargers.insert(value, (text.unwrap_or_default(), count.unwrap_or(0)));
                    }
                    "id" => {
                        seen_ids.insert(value);
                    }
                    "key" => {
                        seen_keys.insert((text.unwrap_or_default(), value));
                    }
                    "serial" => {
                        seen_serials.insert(value);
                    }
                    other => unreachable!("check_starts asked for no '{other}' rows"),
                }
            }
            let mut refused = Vec::new();
            for (i, rows) in starts {
                let o = &rows.order;
                let pile = o.pile.to_string();
                let conflict = |reason: String| MoneyError::OrderRefused { conflict: true, reason };
                let invalid = |reason: String| MoneyError::OrderRefused { conflict: false, reason };
                let why = match chargers.get(&pile) {
                    None => Some(invalid(format!("charger {pile} does not exist (any more): start the session at a registered charger"))),
                    Some((site, _)) if site != o.site.as_str() => Some(invalid(format!(
                        "charger {pile} is at site {site}, not {}: start the session at the charger's site", o.site
                    ))),
                    Some((_, count)) if i64::from(o.connector.get()) > *count => Some(invalid(format!(
                        "charger {pile} has {count} connectors; choose connector 1-{count}"
                    ))),
                    Some(_) => None,
                };
                let why = why.or_else(|| {
                    (!seen_ids.insert(o.id.to_string())).then(|| conflict(format!("order {} exists already", o.id)))
                });
                let why = why.or_else(|| {
                    o.idempotency_key.as_ref().and_then(|k| {
                        (!seen_keys.insert((o.account.to_string(), k.clone()))).then(|| {
                            conflict(format!(
                                "account {} already started a session with idempotency key '{k}': use a new key for a new session",
                                o.account
                            ))
                        })
                    })
                });
                let why = why.or_else(|| {
                    o.transaction_serial.and_then(|t| {
                        (!seen_serials.insert(t.to_string())).then(|| conflict(format!("transaction serial {t} is in use; retry the start")))
                    })
                });
                if let Some(e) = why {
                    refused.push((*i, e));
                }
            }
            Ok(refused)
        }

        /// Stores the orders and start commands of accepted session starts (by job index).
        /// A unique key another instance inserted since [`check_starts`] is a lost race: the
        /// batch is replayed, and its check then refuses that start alone.
        pub async fn insert_starts(
            conn: &mut $conn,
            starts: &[(usize, crate::money::writer::StartRows)],
            now: DbTime,
        ) -> Result<std::collections::BTreeMap<usize, (crate::store::Order, crate::store::CommandRecord)>, MoneyError> {
            use crate::store::tx::$store_tx as store_tx;
            let race = |e: crate::store::StoreError| match e {
                crate::store::StoreError::Duplicate { .. } => MoneyError::Contended { attempts: 0 },
                other => MoneyError::from(other),
            };
            if starts.is_empty() {
                return Ok(std::collections::BTreeMap::new());
            }
            let rows: Vec<_> = starts.iter().map(|(_, r)| (&r.order, &r.start)).collect();
            let stored = store_tx::insert_orders_with_starts(&mut *conn, &rows, now)
                .await
                .map_err(race)?;
            Ok(starts.iter().map(|(i, _)| *i).zip(stored).collect())
        }
    };
}

/// The statements on SQLite.
pub mod sqlite {
    money_sql!(sqlx::SqliteConnection, sqlx::Sqlite, sqlite);
    pub use super::sqlite_bulk::{
        insert_journal, insert_sets, load_accounts, load_pendings, load_sets, write_accounts,
        write_pendings,
    };
}

/// The statements on PostgreSQL.
pub mod postgres {
    money_sql!(sqlx::PgConnection, sqlx::Postgres, postgres);
    pub use super::postgres_bulk::{
        insert_journal, insert_sets, load_accounts, load_pendings, load_sets, write_accounts,
        write_pendings,
    };
}
