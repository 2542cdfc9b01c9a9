//! [`WebhookDispatcher`]: sends due outbox events to their operators' endpoints.
//!
//! A pass reads at most [`limits::BATCH`] due events, claims each (a conditional update that
//! also counts the attempt and pushes `next_attempt_at` out by the request timeout, so a crash
//! mid-send leaves it due again later), POSTs it signed, at most [`limits::CONCURRENCY`] at a
//! time, and records: 2xx → `delivered`; anything else (status, timeout, no endpoint) → retry
//! at [`backoff::delay`](super::backoff::delay), or `dead` after `max_attempts`.
//!
//! It must never send without a signature, and never hold a database transaction open while
//! a request is in flight.

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use super::outbox::{self, QueuedEvent};
use super::sign::{signature_header, EVENT_ID_HEADER, EVENT_TYPE_HEADER, SIGNATURE_HEADER};
use super::{backoff, limits};
use crate::bills::BillsError;
use crate::shutdown::Shutdown;
use crate::Store;

/// Delivery settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhookConfig {
    /// Deliver queued events in the background.
    pub enabled: bool,
    /// How often the outbox is looked at.
    pub interval_ms: u64,
    /// Each POST's timeout.
    pub timeout_ms: u64,
    /// Attempts per event before it is parked as dead (≤ 20).
    pub max_attempts: u32,
    /// The first retry delay; each further one doubles, with jitter.
    pub backoff_base_ms: u64,
    /// The longest retry delay.
    pub backoff_cap_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: true,
            interval_ms: 1_000,
            timeout_ms: 10_000,
            max_attempts: 12,
            backoff_base_ms: 5_000,
            backoff_cap_ms: 3_600_000,
        }
    }
}

/// What one pass did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeliveryReport {
    pub delivered: usize,
    pub retried: usize,
    pub dead: usize,
    /// Claimed by another instance first.
    pub lost_claims: usize,
}

/// Sends outbox events (see the module doc).
#[derive(Clone)]
pub struct WebhookDispatcher {
    store: Store,
    client: reqwest::Client,
    config: Arc<WebhookConfig>,
}

enum Outcome {
    Delivered,
    Retried,
    Dead,
    Lost,
}

impl WebhookDispatcher {
    pub fn new(store: Store, config: WebhookConfig) -> Result<WebhookDispatcher, BillsError> {
        if config.max_attempts == 0 || config.max_attempts > limits::MAX_ATTEMPTS {
            return Err(BillsError::invalid(
                "webhooks.max_attempts",
                format!(
                    "{} attempts; use 1 to {}",
                    config.max_attempts,
                    limits::MAX_ATTEMPTS
                ),
            ));
        }
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(config.timeout_ms.max(1)))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| BillsError::invalid("webhook client", e.to_string()))?;
        Ok(WebhookDispatcher {
            store,
            client,
            config: Arc::new(config),
        })
    }

    /// One pass over the due events at `now`.
    pub async fn run_once(&self, now: Timestamp) -> Result<DeliveryReport, BillsError> {
        let due = outbox::due(&self.store, now, limits::BATCH).await?;
        let outcomes: Vec<Result<Outcome, BillsError>> = futures::stream::iter(due)
            .map(|e| self.deliver(e))
            .buffer_unordered(limits::CONCURRENCY)
            .collect()
            .await;
        let mut report = DeliveryReport::default();
        for o in outcomes {
            match o? {
                Outcome::Delivered => report.delivered += 1,
                Outcome::Retried => report.retried += 1,
                Outcome::Dead => report.dead += 1,
                Outcome::Lost => report.lost_claims += 1,
            }
        }
        Ok(report)
    }

    async fn deliver(&self, e: QueuedEvent) -> Result<Outcome, BillsError> {
        let started = Timestamp::now();
        let hold = jiff::SignedDuration::from_millis(
            i64::try_from(self.config.timeout_ms.saturating_mul(2)).unwrap_or(i64::MAX),
        );
        if !outbox::claim(&self.store, &e, started + hold).await? {
            return Ok(Outcome::Lost);
        }
        let attempt = e.attempts + 1;
        let result = match outbox::endpoint(&self.store, &e.operator).await? {
            None => Err("no webhook endpoint is configured for the operator".to_owned()),
            Some(ep) => {
                let t = Timestamp::now().as_second();
                let sig = signature_header(&ep.secret, t, e.body.as_bytes());
                let sent = self
                    .client
                    .post(&ep.url)
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .header(SIGNATURE_HEADER, sig)
                    .header(EVENT_ID_HEADER, &e.id)
                    .header(EVENT_TYPE_HEADER, &e.kind)
                    .body(e.body.clone())
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status().is_success() => Ok(()),
                    Ok(r) => Err(format!("endpoint answered {}", r.status())),
                    Err(err) => Err(format!("request failed: {err}")),
                }
            }
        };
        let now = Timestamp::now();
        match result {
            Ok(()) => {
                outbox::delivered(&self.store, &e.id, now).await?;
                Ok(Outcome::Delivered)
            }
            Err(why) if attempt >= self.config.max_attempts => {
                tracing::warn!(event = %e.id, attempts = attempt, why, "webhook event parked as dead");
                outbox::failed(&self.store, &e.id, &why, None).await?;
                Ok(Outcome::Dead)
            }
            Err(why) => {
                let wait = backoff::delay(
                    attempt,
                    Duration::from_millis(self.config.backoff_base_ms),
                    Duration::from_millis(self.config.backoff_cap_ms),
                    rand::random::<f64>(),
                );
                let at =
                    now + jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::MAX);
                tracing::info!(event = %e.id, attempt, why, "webhook delivery failed; retrying later");
                outbox::failed(&self.store, &e.id, &why, Some(at)).await?;
                Ok(Outcome::Retried)
            }
        }
    }

    /// Runs a pass every `interval_ms` until `shutdown`.
    pub fn spawn(self, shutdown: Shutdown) -> JoinHandle<()> {
        tokio::spawn(async move {
            let mut tick =
                tokio::time::interval(Duration::from_millis(self.config.interval_ms.max(10)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    _ = tick.tick() => {}
                    () = shutdown.wait() => return,
                }
                if let Err(e) = self.run_once(Timestamp::now()).await {
                    tracing::warn!(error = %e, "webhook pass failed; retrying next pass");
                }
            }
        })
    }
}
