//! Webhooks: bill-issued and payout events to operators, signed, retried, never lost.
//!
//! It owns:
//! - [`sign`]: HMAC-SHA256 over `"{timestamp}.{body}"` and the `Voltline-Signature` header
//!   (`t=<unix seconds>,v1=<hex>`), with [`sign::verify`] for receivers (pure);
//! - [`backoff`]: the retry delay, exponential with jitter, capped (pure);
//! - [`outbox`]: the `webhook_outbox` table (an event is written in the same transaction as
//!   what it announces, so a restart never loses one) and the per-operator endpoints;
//! - [`deliver`]: [`WebhookDispatcher`], which claims due events, POSTs them and records the
//!   outcome; a failure is retried after [`backoff::delay`] up to `max_attempts`, then the
//!   event is parked as `dead` (visible in the table) instead of retried forever.
//!
//! **Delivery is at least once, the effect once.** Each event has a deterministic id (from
//! the bill id), sent as `Voltline-Event-Id` and in the body; a receiver that has seen an id
//! acknowledges it again and does nothing. Claims are conditional updates, so two instances
//! do not normally send the same attempt, but a crash between the POST and the record of its
//! success sends it again — which the id makes harmless.
//!
//! It must never send an unsigned body, never retry without a bound, and never log a secret.

pub mod backoff;
pub mod deliver;
pub mod outbox;
pub mod sign;

pub use deliver::{DeliveryReport, WebhookConfig, WebhookDispatcher};
pub use outbox::{Endpoint, NewEvent};

/// Bounds on delivery.
pub mod limits {
    /// Events claimed per pass.
    pub const BATCH: usize = 100;
    /// Deliveries in flight at once.
    pub const CONCURRENCY: usize = 8;
    /// Most attempts per event (configurable below this).
    pub const MAX_ATTEMPTS: u32 = 20;
    /// Longest accepted endpoint URL, bytes.
    pub const MAX_URL_BYTES: usize = 2_048;
    /// Shortest and longest secret, bytes.
    pub const MIN_SECRET_BYTES: usize = 16;
    pub const MAX_SECRET_BYTES: usize = 256;
    /// Response bodies are not read beyond the status; errors keep this much of a reason.
    pub const MAX_ERROR_CHARS: usize = 300;
}
