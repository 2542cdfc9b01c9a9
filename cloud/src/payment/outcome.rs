//! How an event changes a payment: [`Payments::event`] asks the pure state machine for the next
//! state and effect, carries the effect out and stores the state with a version-conditioned
//! update; a lost update reads the row again and re-evaluates (bounded by [`MAX_STEPS`]).
//!
//! - A ledger effect is applied *before* the state is stored: its key makes a repeat harmless,
//!   and capture and decline share one key, so if another caller's outcome landed first the
//!   ledger refuses ours and we follow the stored one instead.
//! - A provider call is made only *after* the row is claimed (the state stored with a lease:
//!   `next_attempt_at` past the call's timeout), so two instances never call for one payment
//!   at once; a crash mid-call leaves a row the resolver picks up after the lease.
//! - Retry states (`authorise_unknown`, `cancelling`, `capturing`, `capture_unknown`) wait
//!   `retry_base_ms × 2^attempts` (at most [`MAX_BACKOFF_MS`](super::limits::MAX_BACKOFF_MS));
//!   after `max_attempts` they are left for an operator (never due again, logged as an error).

use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use voltline_protocol::domain::OrderId;
use voltline_protocol::Money;

use super::dunning::{wait_after, Dunning};
use super::plans;
use super::provider::{CaptureOutcome, CaptureRequest, ProviderError};
use super::service::{PaymentError, Payments};
use super::state::{self, CaptureState, Effect, Event};
use super::store::{self, Change, PaymentRow};
use crate::ledger::{LedgerError, ProviderId};
use crate::money::MoneyError;

/// Most transitions one call makes (an effect's answer is the next event).
pub const MAX_STEPS: usize = 8;

/// What is known with an event.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    pub provider_ref: Option<String>,
    pub transaction_ref: Option<String>,
    /// The amount settlement posted (with `Settled`) or the provider collected (with `Paid`).
    pub amount: Option<Money>,
    pub error: Option<String>,
    /// The event comes from a provider call made for it (counts as an attempt).
    pub attempted: bool,
}

/// The wait before attempt `attempts + 1`: `base × 2^attempts`, capped.
pub fn backoff_ms(base_ms: u64, attempts: i64) -> u64 {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    base_ms
        .saturating_mul(1u64 << exp)
        .min(super::limits::MAX_BACKOFF_MS)
}

/// When a payment left for an operator is next due: never.
fn never() -> Timestamp {
    Timestamp::from_second(253_402_300_799).unwrap_or(Timestamp::MAX)
}

const RETRY_STATES: [CaptureState; 5] = [
    CaptureState::Authorising,
    CaptureState::AuthoriseUnknown,
    CaptureState::Cancelling,
    CaptureState::Capturing,
    CaptureState::CaptureUnknown,
];

impl Payments {
    fn call_timeout(&self) -> Duration {
        Duration::from_millis(self.config.call_timeout_ms)
    }

    /// When a retry state with `attempts` made is next due (and the error to record).
    fn schedule(
        &self,
        row: &PaymentRow,
        attempts: i64,
        now: Timestamp,
    ) -> (Timestamp, Option<String>) {
        if attempts >= i64::from(self.config.max_attempts) {
            tracing::error!(order = %row.order_id, provider = %row.provider, attempts, "payment outcome still unresolved; left for an operator");
            metrics::counter!("voltline_payment_unresolved_total", "provider" => row.provider.clone())
                .increment(1);
            return (never(), Some(format!("gave up after {attempts} attempts: an operator must resolve it with the provider")));
        }
        let wait = backoff_ms(self.config.retry_base_ms, attempts);
        (
            now + SignedDuration::from_millis(i64::try_from(wait).unwrap_or(i64::MAX)),
            None,
        )
    }

    /// Applies `event` to `row` (see the module doc); returns the row as it ends.
    pub(crate) async fn event(
        &self,
        row: PaymentRow,
        event: Event,
        facts: Facts,
    ) -> Result<PaymentRow, PaymentError> {
        let (mut row, mut event, mut facts) = (row, event, facts);
        for _ in 0..MAX_STEPS {
            let from = row.capture_state()?;
            let step = match state::next(from, event) {
                Ok(s) => s,
                Err(refused) => {
                    tracing::info!(order = %row.order_id, %refused, "event ignored");
                    return Ok(row);
                }
            };
            let now = Timestamp::now();
            let attempts = row.attempts + i64::from(facts.attempted);
            let mut change = Change {
                provider_ref: facts.provider_ref.clone(),
                transaction_ref: facts.transaction_ref.clone(),
                attempts: Some(attempts),
                last_error: facts.error.clone().or(row.last_error.clone()),
                ..Change::default()
            };
            if RETRY_STATES.contains(&step.to) {
                let (at, gave_up) = self.schedule(&row, attempts, now);
                change.next_attempt_at = Some(at);
                change.last_error = gave_up.or(change.last_error);
            }
            if step.to == from && step.effect.is_none() && !RETRY_STATES.contains(&from) {
                return Ok(row);
            }
            match step.effect {
                Some(e @ (Effect::PostCapture | Effect::PostDecline | Effect::PostCollection)) => {
                    match self.post(&row, e, &facts).await? {
                        None => {}
                        Some(captured) => {
                            // The other outcome is in the ledger already: follow it.
                            event = if captured {
                                Event::Paid
                            } else {
                                Event::CaptureRefused
                            };
                            row = self.reread(&row).await?;
                            continue;
                        }
                    }
                    change.dunning = match e {
                        Effect::PostDecline => Some((
                            Dunning::Open.as_str().into(),
                            0,
                            wait_after(Dunning::Open).map(|w| now + w),
                        )),
                        Effect::PostCollection => {
                            Some((Dunning::Settled.as_str().into(), row.dunning_step, None))
                        }
                        _ => None,
                    };
                    if store::transition(&self.store, &row, step.to, change, now).await? {
                        counted(&row, step.to);
                        return Ok(self.reread(&row).await?);
                    }
                    row = self.reread(&row).await?;
                }
                Some(Effect::Capture) => {
                    if event == (Event::Settled { nonzero: true }) {
                        change.capture_amount = facts.amount;
                    }
                    change.attempts = Some(attempts + 1);
                    change.next_attempt_at = Some(now + lease(self.call_timeout()));
                    if !store::transition(&self.store, &row, step.to, change, now).await? {
                        row = self.reread(&row).await?;
                        continue;
                    }
                    row = self.reread(&row).await?;
                    (event, facts) = self.capture_now(&row).await;
                }
                Some(Effect::Cancel) => {
                    change.attempts = Some(attempts + 1);
                    change.next_attempt_at = Some(now + lease(self.call_timeout()));
                    if !store::transition(&self.store, &row, step.to, change, now).await? {
                        row = self.reread(&row).await?;
                        continue;
                    }
                    row = self.reread(&row).await?;
                    match self.cancel_now(&row).await {
                        Some(f) => (event, facts) = (Event::CancelConfirmed, f),
                        None => return Ok(row),
                    }
                }
                None => {
                    if store::transition(&self.store, &row, step.to, change, now).await? {
                        counted(&row, step.to);
                        return Ok(self.reread(&row).await?);
                    }
                    row = self.reread(&row).await?;
                }
            }
        }
        Ok(row)
    }

    async fn reread(&self, row: &PaymentRow) -> Result<PaymentRow, MoneyError> {
        let order: OrderId = crate::money::db::parse(&row.order_id, "order id")?;
        self.row(&order).await
    }

    /// Applies a ledger effect. `Some(is_capture)`: the other outcome was there first.
    async fn post(
        &self,
        row: &PaymentRow,
        effect: Effect,
        facts: &Facts,
    ) -> Result<Option<bool>, PaymentError> {
        let pid = ProviderId::new(row.provider.as_str()).map_err(MoneyError::from)?;
        let order: OrderId = crate::money::db::parse(&row.order_id, "order id")?;
        let account = crate::money::db::parse(&row.account_id, "account id")?;
        let amount = row.capture_amount.map(|m| m.0).ok_or_else(|| {
            MoneyError::Corrupt(format!(
                "payment {} has an outcome but no captured amount",
                row.order_id
            ))
        })?;
        let reference = facts
            .transaction_ref
            .clone()
            .or(row.transaction_ref.clone())
            .unwrap_or_default();
        let set = match effect {
            Effect::PostCapture => plans::capture(&pid, &order, amount, &reference),
            Effect::PostDecline => plans::decline(&pid, &order, &account, amount),
            _ => plans::collection(&pid, &order, &account, amount, &reference),
        };
        let key = set.key.clone();
        match self.writer.apply(set).await {
            Ok(_) => Ok(None),
            Err(MoneyError::Ledger(LedgerError::IdempotencyConflict { .. })) => {
                let stored = crate::money::funds::lookup(&self.store, &key)
                    .await?
                    .ok_or_else(|| {
                        MoneyError::Corrupt(format!("ledger key {key} conflicts but is not stored"))
                    })?;
                Ok(Some(plans::is_capture(&stored, &pid)))
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Requests the capture of a claimed row; the answer as the next event.
    async fn capture_now(&self, row: &PaymentRow) -> (Event, Facts) {
        let failed = |e: &ProviderError| Facts {
            error: Some(e.to_string()),
            attempted: false,
            ..Facts::default()
        };
        let Some(provider) = self.providers.get(&row.provider).cloned() else {
            let e =
                ProviderError::Config(format!("provider {} is no longer configured", row.provider));
            return (Event::CaptureTimedOut, failed(&e));
        };
        let req = CaptureRequest {
            out_trade_no: row.out_trade_no.clone(),
            provider_ref: row.provider_ref.clone().unwrap_or_default(),
            amount: row.capture_amount.map(|m| m.0).unwrap_or(Money::ZERO),
            authorised: row.authorised_amount.0,
            description: "EV charging".into(),
        };
        let answer = tokio::time::timeout(self.call_timeout(), provider.capture(&req))
            .await
            .unwrap_or_else(|_| {
                Err(ProviderError::Unknown(
                    "no answer within payments.call_timeout_ms".into(),
                ))
            });
        match answer {
            Ok(CaptureOutcome::Captured { transaction_ref }) => (
                Event::Paid,
                Facts {
                    transaction_ref: Some(transaction_ref),
                    ..Facts::default()
                },
            ),
            Ok(CaptureOutcome::Processing) => (Event::CaptureProcessing, Facts::default()),
            Err(e @ ProviderError::Declined { .. }) => (Event::CaptureRefused, failed(&e)),
            Err(e) => {
                tracing::warn!(order = %row.order_id, provider = %row.provider, error = %e, "capture outcome unknown; it is queried later");
                (Event::CaptureTimedOut, failed(&e))
            }
        }
    }

    /// Cancels a claimed row's authorisation; `Some` when that is settled.
    async fn cancel_now(&self, row: &PaymentRow) -> Option<Facts> {
        let provider = self.providers.get(&row.provider).cloned()?;
        let reference = row.provider_ref.clone().unwrap_or_default();
        let answer = tokio::time::timeout(
            self.call_timeout(),
            provider.cancel(
                &row.out_trade_no,
                &reference,
                "charging session not started or nothing to collect",
            ),
        )
        .await
        .unwrap_or_else(|_| {
            Err(ProviderError::Unknown(
                "no answer within payments.call_timeout_ms".into(),
            ))
        });
        match answer {
            Ok(()) => Some(Facts::default()),
            // Refused as such: there is nothing (left) to cancel at the provider.
            Err(e @ (ProviderError::Rejected { .. } | ProviderError::Declined { .. })) => {
                tracing::info!(order = %row.order_id, error = %e, "cancel refused; nothing left to cancel");
                Some(Facts {
                    error: Some(e.to_string()),
                    ..Facts::default()
                })
            }
            Err(e) => {
                tracing::warn!(order = %row.order_id, error = %e, "cancel outcome unknown; retried later");
                None
            }
        }
    }
}

/// Counts a stored transition (`voltline_payment_transitions_total{provider, to}`).
fn counted(row: &PaymentRow, to: CaptureState) {
    metrics::counter!("voltline_payment_transitions_total", "provider" => row.provider.clone(), "to" => to.as_str())
        .increment(1);
}

/// How long a claim on a row lasts: past the call's timeout, so a live call is never doubled.
fn lease(call: Duration) -> SignedDuration {
    SignedDuration::try_from(call * 2).unwrap_or(SignedDuration::from_secs(60))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_and_is_capped() {
        assert_eq!(backoff_ms(1_000, 0), 1_000);
        assert_eq!(backoff_ms(1_000, 3), 8_000);
        assert_eq!(backoff_ms(1_000, 60), super::super::limits::MAX_BACKOFF_MS);
        assert_eq!(backoff_ms(1_000, -1), 1_000);
        assert!(never() > Timestamp::from_second(4_000_000_000).unwrap());
    }
}
