//! [`HoldSweeper`]: voids the holds whose session never started, once they are past expiry.
//!
//! A start that fails or expires voids its hold at once ([`AppState::after_command_change`]),
//! but that void can be lost: the process may stop between the order failing and the void,
//! or the order insert may have failed after its hold was placed. The sweeper is the
//! backstop. Each pass lists open holds (`hold:{order}`) whose `expires_at` is past and
//! whose order is missing, still `pending` or `failed` — never one whose session charged
//! (those are posted by settlement, whatever their age) — and submits
//! [`void_hold`](crate::ledger::void_hold) for each through the ledger writer.
//!
//! **Exactly once, idempotently.** The void's idempotency key is `void:{order}`, so a hold
//! swept twice (two passes, two instances, a sweep racing the failed-start void) is voided
//! once: the second finds the key stored and is a replay. A void that loses the race to a
//! settlement's post is refused by the ledger rules (`PendingClosed`) and counted as
//! already closed. A pass is bounded by `limit` holds.
//!
//! [`AppState::after_command_change`]: crate::state::AppState::after_command_change

use jiff::Timestamp;

use super::writer::LedgerWriter;
use super::{limits, MoneyError};
use crate::ledger::{void_hold, Hold, LedgerAccountId, LedgerError, TransferId};
use crate::store::types::{DbMoney, DbTime};
use crate::store::with_pool;

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SweepReport {
    /// Holds voided now.
    pub voided: usize,
    /// Holds whose void was applied before (another pass or instance); nothing changed.
    pub replayed: usize,
    /// Holds posted or voided since they were listed; nothing changed.
    pub closed: usize,
    /// Holds that could not be voided now (retried next pass).
    pub failed: usize,
}

/// Voids expired holds of sessions that never started.
#[derive(Clone)]
pub struct HoldSweeper {
    writer: LedgerWriter,
}

type OpenHold = (String, String, String, DbMoney);

impl HoldSweeper {
    pub fn new(writer: LedgerWriter) -> HoldSweeper {
        HoldSweeper { writer }
    }

    /// One pass over at most `limit` holds expired at `now`.
    pub async fn sweep(&self, now: Timestamp, limit: usize) -> Result<SweepReport, MoneyError> {
        let limit = i64::try_from(limit.clamp(1, limits::MAX_SWEEP_BATCH)).unwrap_or(1);
        let store = self.writer.store().clone();
        // `substr(set_key, 6)` is the order id of `hold:{order}` (1-based in both dialects).
        let rows: Vec<OpenHold> = with_pool!(store, |pool, d| {
            sqlx::query_as(
                "SELECT p.id, p.set_key, p.debit, p.amount FROM ledger_pendings p \
                 WHERE p.state = 'open' AND p.expires_at <= $1 AND p.set_key LIKE 'hold:%' \
                 AND NOT EXISTS (SELECT 1 FROM orders o WHERE o.id = substr(p.set_key, 6) \
                                 AND o.state NOT IN ('pending', 'failed')) \
                 ORDER BY p.expires_at, p.id LIMIT $2",
            )
            .bind(DbTime::from(now))
            .bind(limit)
            .fetch_all(pool)
            .await?
        });
        let mut holds = Vec::with_capacity(rows.len());
        for (id, key, debit, amount) in rows {
            let pending: TransferId = super::db::parse(&id, "hold id")?;
            let order = super::db::parse(
                key.strip_prefix("hold:").unwrap_or(&key),
                "order id of a hold",
            )?;
            let LedgerAccountId::DriverWallet(account) = super::db::parse(&debit, "hold debit")?
            else {
                continue;
            };
            holds.push(Hold {
                order,
                account,
                pending,
                amount: amount.0,
            });
        }
        let outcomes = futures::future::join_all(
            holds
                .iter()
                .map(|h| async move { (h, self.writer.apply(void_hold(h)).await) }),
        )
        .await;
        let mut report = SweepReport::default();
        for (hold, outcome) in outcomes {
            match outcome {
                Ok(a) if a.replay => report.replayed += 1,
                Ok(_) => {
                    tracing::info!(order = %hold.order, amount = %hold.amount, "voided an expired hold of a session that never started");
                    report.voided += 1;
                }
                Err(MoneyError::Ledger(LedgerError::PendingClosed { .. })) => report.closed += 1,
                Err(e) => {
                    tracing::warn!(order = %hold.order, error = %e, "could not void an expired hold; retrying next pass");
                    report.failed += 1;
                }
            }
        }
        Ok(report)
    }
}
