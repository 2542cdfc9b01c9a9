//! Payments through providers (issue #10): the [`PaymentProvider`] abstraction, the prepaid
//! wallet behind it, two credit connectors (a WeChat-Pay-Score-like service order and an
//! Alipay-like fund authorisation), and what makes a credit session lose no money.
//!
//! It owns:
//! - [`provider`]: the trait (authorise, capture, cancel, refund, query) and its typed outcomes;
//! - [`state`]: the pure capture state machine (no I/O), which decides every transition and
//!   the one ledger effect each transition may have;
//! - [`plans`]: the pure transfer sets of a credit session (authorisation, void, release of the
//!   unused authorisation at settlement, capture, decline, collection, refund);
//! - [`secret`] and [`config`]: keys and credentials from the cloud config, never printed;
//! - [`wechat`] and [`alipay`]: the connectors (`reqwest`), their signing, response and
//!   callback verification, and callback decryption;
//! - [`wallet`]: the prepaid wallet as a [`PaymentProvider`] over the ledger's holds;
//! - [`store`]: the `payments`, `payment_refunds` and `payment_notifications` tables;
//! - [`service`]: [`Payments`], what the session API, the callbacks and the resolver call;
//! - [`resolver`]: the background task that captures settled sessions, resolves `unknown`
//!   outcomes by querying (bounded retries with backoff), cancels unused authorisations and
//!   moves dunning on; [`dunning`]: the receivable's reminder schedule (pure);
//! - [`http`]: the notify callbacks and the refund and payment routes.
//!
//! **Money.** Every movement goes through the ledger writer. A credit provider `p` has two
//! clearing accounts: `provider:p-authorised` (credit the provider promised, not collected) and
//! `provider:p` (collected, as for top-ups). The authorisation credits the driver's wallet from
//! `p-authorised` and holds the same amount in one set, so settlement posts the hold exactly
//! like a prepaid hold; settlement also returns the unused part to `p-authorised` in its own
//! set ([`plans::with_credit_release`]); a capture moves the posted amount to `provider:p`, a
//! decline to the driver's receivable. So `p-authorised` nets to zero per finished session.
//!
//! **Exactly once.** Provider-side numbers are derived from the order ([`out_trade_no`]), so a
//! retried capture is the same capture at the provider; the `payments` row is unique per order
//! and per number and changes only by a version-conditioned update; every ledger set is keyed
//! by provider and order. A session is never captured twice.
//!
//! It must never log a key, a secret or a signature, never trust a callback it has not
//! verified, never move money outside the ledger, and never retry without a bound.

pub mod alipay;
pub mod config;
pub mod dunning;
pub mod http;
pub mod keys;
pub mod outcome;
pub mod plans;
pub mod provider;
pub mod refund;
pub mod resolver;
pub mod secret;
pub mod service;
pub mod state;
pub mod store;
pub mod wallet;
pub mod wechat;

#[cfg(test)]
mod test_vectors;

pub use config::{AlipayConfig, PaymentsConfig, WechatConfig};
pub use provider::{
    AuthoriseRequest, Authorised, CaptureOutcome, CaptureRequest, PaymentProvider, PaymentStatus,
    ProviderError, RefundOutcome, RefundRequest,
};
pub use secret::Secret;
pub use service::{CreditStart, Payments};
pub use state::{CaptureState, Effect, Event};

use sha2::{Digest, Sha256};
use voltline_protocol::domain::OrderId;

/// Bounds on what payments queue, batch or retry.
pub mod limits {
    /// Payments the resolver handles per pass and kind of work.
    pub const RESOLVER_BATCH: i64 = 200;
    /// Provider calls the resolver makes at once.
    pub const RESOLVER_CONCURRENCY: usize = 16;
    /// Longest backoff between two attempts on one payment, ms.
    pub const MAX_BACKOFF_MS: u64 = 300_000;
    /// Largest callback body read, bytes.
    pub const MAX_CALLBACK_BYTES: usize = 64 * 1024;
    /// Longest provider user reference (openid, auth code), bytes.
    pub const MAX_USER_REF_BYTES: usize = 128;
}

fn digest_hex(text: &str, chars: usize) -> String {
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect::<String>()[..chars]
        .to_owned()
}

/// The provider-side trade number of `order`: `vl` + 30 hex digits of SHA-256 of the order id
/// (32 characters, within both providers' rules). The same order always gives the same number,
/// so a retried authorisation or capture is the same operation at the provider.
pub fn out_trade_no(order: &OrderId) -> String {
    format!("vl{}", digest_hex(&format!("order:{order}"), 30))
}

/// The provider-side refund number of refund `request` of `order` (`vr` + 30 hex digits).
pub fn out_refund_no(order: &OrderId, request: &str) -> String {
    format!("vr{}", digest_hex(&format!("refund:{order}:{request}"), 30))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn trade_numbers_are_derived_stable_and_within_the_providers_rules() {
        let o: OrderId = "ord-0190b6d8-7a3c-7c33-9a61-1d5c1c8e5f01".parse().unwrap();
        let n = out_trade_no(&o);
        assert_eq!(n, out_trade_no(&o));
        assert_eq!(n.len(), 32);
        assert!(n.bytes().all(|b| b.is_ascii_alphanumeric()));
        let other: OrderId = "ord-2".parse().unwrap();
        assert_ne!(n, out_trade_no(&other));
        assert_ne!(out_refund_no(&o, "r1"), out_refund_no(&o, "r2"));
        assert_eq!(out_refund_no(&o, "r1").len(), 32);
    }
}
