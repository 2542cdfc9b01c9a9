//! [`PaymentProvider`]: what every way of paying for a session offers — authorise (or hold) at
//! start, capture the final amount, cancel, refund, query — with typed outcomes.
//!
//! The outcome types carry the distinction the rest of the module lives by: a definite answer
//! (authorised, captured, declined, not found) changes state; [`ProviderError::Unknown`] (a
//! timeout, a 5xx, a dropped connection) means the operation may or may not have happened at
//! the provider, so the caller records `unknown` and asks again later with [`query`]; it never
//! guesses. Every request names the provider-side number derived from the order, so asking
//! again is always safe.
//!
//! [`query`]: PaymentProvider::query

use futures::future::BoxFuture;
use voltline_protocol::domain::{AccountId, OrderId};
use voltline_protocol::Money;

/// Authorise (or hold) `amount` for a session at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthoriseRequest {
    pub order: OrderId,
    pub account: AccountId,
    /// The provider-side number ([`super::out_trade_no`]).
    pub out_trade_no: String,
    /// The most the session may cost: the spending limit the edge enforces.
    pub amount: Money,
    /// The driver at the provider (WeChat openid, Alipay authorisation code), when it needs one.
    pub user_ref: Option<String>,
    /// Shown to the driver by the provider.
    pub description: String,
}

/// An authorisation the provider granted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorised {
    /// The provider's own id of it (WeChat `order_id`, Alipay `auth_no`, a wallet hold id).
    pub provider_ref: String,
    /// What it granted (never more than asked).
    pub amount: Money,
}

/// Capture the final amount of a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CaptureRequest {
    pub out_trade_no: String,
    pub provider_ref: String,
    /// The amount to collect (at most the authorisation).
    pub amount: Money,
    pub authorised: Money,
    pub description: String,
}

/// What a capture request came back with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CaptureOutcome {
    /// Collected; `transaction_ref` is the provider's payment id.
    Captured { transaction_ref: String },
    /// Accepted; the result comes by callback or query.
    Processing,
}

/// Refund part or all of a captured payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RefundRequest {
    pub out_trade_no: String,
    /// The provider-side refund number ([`super::out_refund_no`]): a retry is the same refund.
    pub out_refund_no: String,
    /// The provider's id of the captured payment (WeChat `transaction_id`, Alipay `trade_no`).
    pub transaction_ref: String,
    pub amount: Money,
    /// What was captured.
    pub total: Money,
    pub reason: String,
}

/// What a refund request came back with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefundOutcome {
    Succeeded,
    Processing,
}

/// Where a payment stands at the provider, by its number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PaymentStatus {
    /// The provider knows nothing under this number.
    NotFound,
    /// Authorised, not captured.
    Authorised { provider_ref: String },
    /// Capture accepted, collection under way.
    Processing,
    Captured {
        transaction_ref: String,
        amount: Money,
    },
    /// The provider refused to collect.
    Declined { code: String, message: String },
    /// Cancelled or expired without collection.
    Cancelled,
}

/// Why a provider call did not give a definite success.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProviderError {
    /// A definite no (insufficient credit, risk control, account frozen).
    #[error("the provider declined ({code}): {message}")]
    Declined { code: String, message: String },
    /// No definite answer (timeout, 5xx, transport): it may have happened; query to find out.
    #[error("the provider's answer is unknown ({0}); the payment is queried again later")]
    Unknown(String),
    /// The request was refused as such (bad parameters, wrong state): nothing happened.
    #[error("the provider refused the request ({code}): {message}")]
    Rejected { code: String, message: String },
    /// The answer's signature did not verify: treated as no answer at all.
    #[error("the provider's answer failed signature verification: {0}")]
    BadSignature(String),
    /// Our side is misconfigured (a key that does not parse, a missing user reference).
    #[error("payment configuration: {0}")]
    Config(String),
}

/// One way of paying: the prepaid wallet or a credit provider's connector.
pub trait PaymentProvider: Send + Sync + 'static {
    /// The provider's name, as in `payment_method` and ledger account names.
    fn name(&self) -> &str;

    /// Authorises (or holds) the session's spending limit.
    fn authorise<'a>(
        &'a self,
        req: &'a AuthoriseRequest,
    ) -> BoxFuture<'a, Result<Authorised, ProviderError>>;

    /// Collects the final amount. Repeating it for the same number never collects twice.
    fn capture<'a>(
        &'a self,
        req: &'a CaptureRequest,
    ) -> BoxFuture<'a, Result<CaptureOutcome, ProviderError>>;

    /// Releases an authorisation that will not be captured.
    fn cancel<'a>(
        &'a self,
        out_trade_no: &'a str,
        provider_ref: &'a str,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), ProviderError>>;

    /// Refunds part or all of a captured payment.
    fn refund<'a>(
        &'a self,
        req: &'a RefundRequest,
    ) -> BoxFuture<'a, Result<RefundOutcome, ProviderError>>;

    /// Where the payment stands.
    fn query<'a>(
        &'a self,
        out_trade_no: &'a str,
        provider_ref: Option<&'a str>,
    ) -> BoxFuture<'a, Result<PaymentStatus, ProviderError>>;
}

/// A `reqwest` error as a provider outcome: a timeout or a connection lost after sending is
/// [`ProviderError::Unknown`]; a connection never made is too (we cannot tell it apart from a
/// lost answer on every platform, and asking again is safe).
pub fn transport_error(e: &reqwest::Error) -> ProviderError {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport failed"
    };
    ProviderError::Unknown(kind.to_owned())
}
