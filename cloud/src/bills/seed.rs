//! Bulk seeding of settled sessions, for tests and benchmarks only: writes settlement rows
//! (with their sharing columns) and, optionally, the matching settlement transfer sets in
//! `ledger_sets`, at instants the caller chooses (a DST day, last week), in bulk — `COPY` on
//! PostgreSQL, multi-row inserts in one transaction on SQLite.
//!
//! It bypasses the ledger writer: it writes no postings and moves no balances, so it must
//! never be used by the service, and a store it seeded must not be audited as a ledger.
//! Real settlement goes through `money::Settler`.

use jiff::Timestamp;
use sqlx::types::Json;
use voltline_protocol::domain::{AccountId, Money, OperatorId, SiteId};

use super::error::BillsError;
use crate::ledger::{IdempotencyKey, LedgerAccountId, Memo, Reason, Transfer, TransferSet};
use crate::store::types::{DbMoney, DbTime};
use crate::store::{Backend, Store};

/// Rows per statement (SQLite) or per COPY buffer flush (PostgreSQL).
const CHUNK: usize = 1_000;

/// One synthetic settled session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedSession {
    /// Unique per session; used as pile code, serial and idempotency key (`settle:{key}`).
    pub key: String,
    pub operator: OperatorId,
    pub site: SiteId,
    pub started_at: Timestamp,
    pub ended_at: Timestamp,
    pub settled_at: Timestamp,
    pub energy_mwh: i64,
    pub gross: Money,
    pub platform_fee: Money,
    pub rule_version: Option<u32>,
}

impl SeedSession {
    /// The settlement's idempotency key.
    pub fn idem_key(&self) -> String {
        format!("settle:{}", self.key)
    }

    fn set(&self) -> Result<TransferSet, BillsError> {
        let key = IdempotencyKey::new(self.idem_key())
            .map_err(|e| BillsError::invalid("seed key", e.to_string()))?;
        let wallet = LedgerAccountId::DriverWallet(
            AccountId::new("seed-driver")
                .map_err(|e| BillsError::invalid("seed", e.to_string()))?,
        );
        let clearing = LedgerAccountId::SessionClearing;
        let mut legs = vec![Transfer::single(wallet, clearing.clone(), self.gross)];
        let operator_part = self.gross - self.platform_fee;
        if !operator_part.is_zero() {
            legs.push(Transfer::single(
                clearing.clone(),
                LedgerAccountId::OperatorPayable(self.operator.clone()),
                operator_part,
            ));
        }
        if !self.platform_fee.is_zero() {
            legs.push(Transfer::single(
                clearing,
                LedgerAccountId::PlatformRevenue,
                self.platform_fee,
            ));
        }
        Ok(TransferSet {
            key,
            legs,
            memo: Memo::new(Reason::Settlement),
        })
    }
}

fn copy_escape(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('\t', "\\t")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

/// Writes `sessions` (see the module doc); with `ledger_sets`, their transfer sets too.
pub async fn seed_sessions(
    store: &Store,
    sessions: &[SeedSession],
    ledger_sets: bool,
) -> Result<(), BillsError> {
    match &store.backend {
        Backend::Postgres(pool) => {
            let mut conn = pool.acquire().await?;
            let mut copy = conn
                .copy_in_raw(
                    "COPY settlements (pile_code, serial, idem_key, account_id, cost, charger_total, mismatch, difference, \
                     from_hold, released, from_wallet, receivable, operator_share, platform_fee, breakdown, settled_at, \
                     operator_id, site_id, started_at, ended_at, energy_mwh, export_mwh, v2g_driver_credit, v2g_operator_share, rule_version) FROM STDIN",
                )
                .await?;
            let mut buf = String::with_capacity(CHUNK * 300);
            for (i, s) in sessions.iter().enumerate() {
                let op_part = s.gross - s.platform_fee;
                buf.push_str(&format!(
                    "{k}\t{k}\t{ik}\tseed-driver\t{g}\t{g}\tf\t0\t{g}\t0\t0\t0\t{o}\t{f}\t{{}}\t{st}\t{op}\t{site}\t{sa}\t{ea}\t{e}\t0\t0\t0\t{rv}\n",
                    k = copy_escape(&s.key),
                    ik = copy_escape(&s.idem_key()),
                    g = s.gross,
                    o = op_part,
                    f = s.platform_fee,
                    st = s.settled_at,
                    op = copy_escape(s.operator.as_str()),
                    site = copy_escape(s.site.as_str()),
                    sa = s.started_at,
                    ea = s.ended_at,
                    e = s.energy_mwh,
                    rv = s.rule_version.map_or("\\N".to_owned(), |v| v.to_string()),
                ));
                if (i + 1) % CHUNK == 0 {
                    copy.send(std::mem::take(&mut buf).into_bytes()).await?;
                }
            }
            if !buf.is_empty() {
                copy.send(buf.into_bytes()).await?;
            }
            copy.finish().await?;
            if ledger_sets {
                let mut copy = conn
                    .copy_in_raw(
                        "COPY ledger_sets (idem_key, reason, content, created_at) FROM STDIN",
                    )
                    .await?;
                let mut buf = String::with_capacity(CHUNK * 600);
                for (i, s) in sessions.iter().enumerate() {
                    let content = serde_json::to_string(&s.set()?)
                        .map_err(|e| BillsError::invalid("seed", e.to_string()))?;
                    buf.push_str(&format!(
                        "{}\tsettlement\t{}\t{}\n",
                        copy_escape(&s.idem_key()),
                        copy_escape(&content),
                        s.settled_at
                    ));
                    if (i + 1) % CHUNK == 0 {
                        copy.send(std::mem::take(&mut buf).into_bytes()).await?;
                    }
                }
                if !buf.is_empty() {
                    copy.send(buf.into_bytes()).await?;
                }
                copy.finish().await?;
            }
        }
        Backend::Sqlite(pool) => {
            let _turn = store.write_turn().await;
            let mut tx = pool.begin_with("BEGIN IMMEDIATE").await?;
            for chunk in sessions.chunks(CHUNK) {
                let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                    "INSERT INTO settlements (pile_code, serial, idem_key, account_id, cost, charger_total, mismatch, difference, \
                     from_hold, released, from_wallet, receivable, operator_share, platform_fee, breakdown, settled_at, \
                     operator_id, site_id, started_at, ended_at, energy_mwh, export_mwh, rule_version) ",
                );
                qb.push_values(chunk.iter(), |mut b, s| {
                    let zero = DbMoney(Money::ZERO);
                    b.push_bind(s.key.clone())
                        .push_bind(s.key.clone())
                        .push_bind(s.idem_key())
                        .push_bind("seed-driver")
                        .push_bind(DbMoney(s.gross))
                        .push_bind(DbMoney(s.gross))
                        .push_bind(false)
                        .push_bind(zero)
                        .push_bind(DbMoney(s.gross))
                        .push_bind(zero)
                        .push_bind(zero)
                        .push_bind(zero)
                        .push_bind(DbMoney(s.gross - s.platform_fee))
                        .push_bind(DbMoney(s.platform_fee))
                        .push_bind("{}")
                        .push_bind(DbTime::from(s.settled_at))
                        .push_bind(s.operator.to_string())
                        .push_bind(s.site.to_string())
                        .push_bind(DbTime::from(s.started_at))
                        .push_bind(DbTime::from(s.ended_at))
                        .push_bind(s.energy_mwh)
                        .push_bind(0i64)
                        .push_bind(s.rule_version.map(i64::from));
                });
                qb.build().execute(&mut *tx).await?;
                if ledger_sets {
                    let sets = chunk
                        .iter()
                        .map(|s| s.set())
                        .collect::<Result<Vec<_>, _>>()?;
                    let mut qb = sqlx::QueryBuilder::<sqlx::Sqlite>::new(
                        "INSERT INTO ledger_sets (idem_key, reason, content, created_at) ",
                    );
                    qb.push_values(chunk.iter().zip(sets), |mut b, (s, set)| {
                        b.push_bind(s.idem_key())
                            .push_bind("settlement")
                            .push_bind(Json(set))
                            .push_bind(DbTime::from(s.settled_at));
                    });
                    qb.build().execute(&mut *tx).await?;
                }
            }
            tx.commit().await?;
        }
    }
    Ok(())
}

/// Refreshes the planner's statistics after a bulk load (`ANALYZE`).
pub async fn analyze(store: &Store) -> Result<(), BillsError> {
    match &store.backend {
        Backend::Postgres(pool) => {
            sqlx::raw_sql("ANALYZE settlements; ANALYZE bill_sessions; ANALYZE ledger_sets")
                .execute(pool)
                .await?;
        }
        Backend::Sqlite(pool) => {
            sqlx::raw_sql("ANALYZE").execute(pool).await?;
        }
    }
    Ok(())
}
