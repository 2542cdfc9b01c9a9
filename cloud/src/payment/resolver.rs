//! [`Resolver`]: the background task that finishes every credit payment. Each pass (every
//! `payments.resolver_interval_ms`, at most [`RESOLVER_BATCH`] payments and refunds, at most
//! [`RESOLVER_CONCURRENCY`] provider calls at once):
//!
//! - an authorised payment whose hold settlement posted is captured (the amount posted), one
//!   whose hold was voided, whose start failed or whose start was still pending when its hold
//!   expired is released and cancelled, one whose session was never stored (past the grace)
//!   is cancelled;
//! - an unknown outcome (authorisation, capture) or a lapsed claim is resolved by querying the
//!   provider by the order's number, and the answer applied as an event;
//! - a pending cancel is retried; a declined capture's dunning moves on when due (and the
//!   provider is asked whether the driver paid meanwhile);
//! - pending refunds are retried (the refund number makes it the same refund).
//!
//! Settlement enqueues a capture by posting the hold: this pass is the queue, so a capture is
//! never lost between settlement and here, even across a crash. It never retries without a
//! bound (see [`super::outcome`]).

use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use tokio::task::JoinHandle;
use voltline_protocol::domain::OrderId;

use super::dunning::{self, Dunning};
use super::limits::{RESOLVER_BATCH, RESOLVER_CONCURRENCY};
use super::outcome::Facts;
use super::plans;
use super::provider::{PaymentStatus, ProviderError};
use super::service::{PaymentError, Payments};
use super::state::{CaptureState, Event};
use super::store::{self, Change, PaymentRow};
use crate::ledger::{PendingStatus, ProviderId};
use crate::shutdown::Shutdown;

/// What one pass did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResolveReport {
    pub payments: usize,
    pub refunds: usize,
    pub failed: usize,
}

/// The resolver.
#[derive(Clone)]
pub struct Resolver {
    payments: Payments,
}

impl Resolver {
    pub fn new(payments: Payments) -> Resolver {
        Resolver { payments }
    }

    /// One pass at `now`.
    pub async fn pass(&self, now: Timestamp) -> Result<ResolveReport, PaymentError> {
        let p = &self.payments;
        let rows = store::due(&p.store, now, RESOLVER_BATCH).await?;
        let refunds = store::due_refunds(&p.store, now, RESOLVER_BATCH).await?;
        let mut report = ResolveReport {
            payments: rows.len(),
            refunds: refunds.len(),
            failed: 0,
        };
        let results: Vec<Result<(), PaymentError>> = futures::stream::iter(rows)
            .map(|row| async move { self.resolve(row, now).await })
            .buffer_unordered(RESOLVER_CONCURRENCY)
            .collect()
            .await;
        let refunded: Vec<Result<(), PaymentError>> = futures::stream::iter(refunds)
            .map(|r| async move { p.retry_refund(r).await })
            .buffer_unordered(RESOLVER_CONCURRENCY)
            .collect()
            .await;
        for e in results.into_iter().chain(refunded).filter_map(Result::err) {
            report.failed += 1;
            tracing::warn!(error = %e, "payment not resolved this pass; retried on the next");
        }
        Ok(report)
    }

    /// Runs passes until `shutdown`.
    pub fn spawn(self, shutdown: Shutdown) -> JoinHandle<()> {
        let every = Duration::from_millis(self.payments.config.resolver_interval_ms.max(10));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    biased;
                    () = shutdown.wait() => return,
                    _ = tick.tick() => {}
                }
                if let Err(e) = self.pass(Timestamp::now()).await {
                    tracing::warn!(error = %e, "payment resolver pass failed; retrying next tick");
                }
            }
        })
    }

    async fn resolve(&self, row: PaymentRow, now: Timestamp) -> Result<(), PaymentError> {
        let p = &self.payments;
        match row.capture_state()? {
            CaptureState::Authorised => self.settled_or_not(row, now).await,
            CaptureState::Cancelling => {
                p.event(row, Event::Retry, Facts::default()).await.map(drop)
            }
            CaptureState::Authorising | CaptureState::AuthoriseUnknown => {
                let (event, facts) = match self.query(&row, None).await {
                    Ok(PaymentStatus::Authorised { provider_ref }) => (
                        Event::NotStarted,
                        Facts {
                            provider_ref: Some(provider_ref),
                            ..attempted()
                        },
                    ),
                    Ok(PaymentStatus::NotFound | PaymentStatus::Cancelled) => {
                        (Event::NotFound, attempted())
                    }
                    Ok(PaymentStatus::Declined { .. }) => (Event::AuthoriseDeclined, attempted()),
                    Ok(_) => (Event::AuthoriseTimedOut, attempted()),
                    Err(e) => (Event::AuthoriseTimedOut, failed(&e)),
                };
                p.event(row, event, facts).await.map(drop)
            }
            CaptureState::Capturing | CaptureState::CaptureUnknown => {
                let reference = row.provider_ref.clone();
                let (event, facts) = self.capture_status(&row, reference.as_deref()).await;
                p.event(row, event, facts).await.map(drop)
            }
            CaptureState::CaptureDeclined => self.dun(row, now).await,
            _ => Ok(()),
        }
    }

    async fn query(
        &self,
        row: &PaymentRow,
        reference: Option<&str>,
    ) -> Result<PaymentStatus, ProviderError> {
        let provider = self
            .payments
            .provider(&row.provider)
            .cloned()
            .ok_or_else(|| {
                ProviderError::Config(format!("provider {} is no longer configured", row.provider))
            })?;
        let call = Duration::from_millis(self.payments.config.call_timeout_ms);
        tokio::time::timeout(call, provider.query(&row.out_trade_no, reference))
            .await
            .unwrap_or_else(|_| {
                Err(ProviderError::Unknown(
                    "no answer within payments.call_timeout_ms".into(),
                ))
            })
    }

    /// The capture's status at the provider, as the next event.
    async fn capture_status(&self, row: &PaymentRow, reference: Option<&str>) -> (Event, Facts) {
        match self.query(row, reference).await {
            Ok(PaymentStatus::Captured {
                transaction_ref,
                amount,
            }) => {
                if row.capture_amount.map(|m| m.0) != Some(amount) {
                    tracing::error!(order = %row.order_id, "the provider collected another amount than captured; left for an operator");
                    return (
                        Event::CaptureTimedOut,
                        Facts {
                            error: Some("collected amount differs from the capture".into()),
                            ..attempted()
                        },
                    );
                }
                (
                    Event::Paid,
                    Facts {
                        transaction_ref: Some(transaction_ref),
                        amount: Some(amount),
                        ..attempted()
                    },
                )
            }
            Ok(PaymentStatus::Processing) => (Event::CaptureProcessing, attempted()),
            Ok(PaymentStatus::NotFound | PaymentStatus::Authorised { .. }) => {
                (Event::NotFound, attempted())
            }
            Ok(PaymentStatus::Declined { code, message }) => (
                Event::CaptureRefused,
                Facts {
                    error: Some(format!("{code}: {message}")),
                    ..attempted()
                },
            ),
            Ok(PaymentStatus::Cancelled) => (
                Event::CaptureRefused,
                Facts {
                    error: Some("the authorisation lapsed before collection".into()),
                    ..attempted()
                },
            ),
            Err(e) => (Event::CaptureTimedOut, failed(&e)),
        }
    }

    /// An authorised payment: captured, released or cancelled by what happened to its hold.
    async fn settled_or_not(&self, row: PaymentRow, now: Timestamp) -> Result<(), PaymentError> {
        let p = &self.payments;
        let pid = ProviderId::new(row.provider.as_str()).map_err(crate::money::MoneyError::from)?;
        let order: OrderId = crate::money::db::parse(&row.order_id, "order id")?;
        let hold = store::pending(&p.store, &plans::credit_hold_id(&pid, &order)).await?;
        let hold_expires = hold.as_ref().and_then(|h| h.expires_at);
        let (event, facts) = match hold.map(|h| h.status) {
            Some(PendingStatus::Posted { amount }) => (
                Event::Settled { nonzero: true },
                Facts {
                    amount: Some(amount),
                    ..Facts::default()
                },
            ),
            Some(PendingStatus::Voided) => (Event::HoldVoided, Facts::default()),
            Some(PendingStatus::Open) => {
                // A start that failed, or one still pending when its hold expired (it never
                // took effect), releases the credit; a session that did start waits for its
                // record, however long.
                use crate::domain::OrderState;
                let expired = hold_expires.is_some_and(|at| at <= now);
                let never_started = match p.store.get_order(&order).await {
                    Ok(o) => {
                        o.state == OrderState::Failed || (expired && o.state == OrderState::Pending)
                    }
                    Err(_) => false,
                };
                if !never_started {
                    return Ok(());
                }
                p.release(&pid, &row).await?;
                (Event::HoldVoided, Facts::default())
            }
            None if row.next_attempt_at.0 <= now => (Event::NotStarted, Facts::default()),
            None => return Ok(()),
        };
        p.event(row, event, facts).await.map(drop)
    }

    /// A declined capture's dunning step: first ask whether the driver paid meanwhile.
    async fn dun(&self, row: PaymentRow, now: Timestamp) -> Result<(), PaymentError> {
        let p = &self.payments;
        let reference = row.provider_ref.clone();
        if let Ok(PaymentStatus::Captured {
            transaction_ref,
            amount,
        }) = self.query(&row, reference.as_deref()).await
        {
            if row.capture_amount.map(|m| m.0) == Some(amount) {
                let facts = Facts {
                    transaction_ref: Some(transaction_ref),
                    amount: Some(amount),
                    ..Facts::default()
                };
                return p.event(row, Event::Paid, facts).await.map(drop);
            }
        }
        let current = row
            .dunning
            .as_deref()
            .and_then(Dunning::parse)
            .unwrap_or(Dunning::Open);
        let next = dunning::step(current);
        let due = dunning::wait_after(next).map(|w| now + w);
        tracing::info!(order = %row.order_id, dunning = next.as_str(), "receivable dunning step");
        let change = Change {
            attempts: Some(row.attempts),
            next_attempt_at: Some(row.next_attempt_at.0),
            last_error: row.last_error.clone(),
            dunning: Some((next.as_str().into(), row.dunning_step + 1, due)),
            ..Change::default()
        };
        store::transition(&p.store, &row, CaptureState::CaptureDeclined, change, now).await?;
        Ok(())
    }
}

fn attempted() -> Facts {
    Facts {
        attempted: true,
        ..Facts::default()
    }
}

fn failed(e: &ProviderError) -> Facts {
    Facts {
        error: Some(e.to_string()),
        attempted: true,
        ..Facts::default()
    }
}
