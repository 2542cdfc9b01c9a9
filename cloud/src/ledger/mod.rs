//! The money ledger's pure core: double-entry accounts, two-phase transfers, idempotency,
//! holds and settlement maths.
//!
//! It owns the rules every ledger backend must obey, as pure functions over values:
//! - [`account`]: who money belongs to ([`LedgerAccountId`]), each account's normal side and
//!   lower limit ([`AccountPolicy`]), and its TigerBeetle-style [`Balance`] (posted and
//!   pending debits and credits);
//! - [`transfer`]: the immutable [`Transfer`] (single, pending, post, void), the atomic
//!   [`TransferSet`] and its bounded [`IdempotencyKey`];
//! - [`rules`]: [`evaluate`] — a transfer set against a view of the ledger → the postings and
//!   new balances, or the typed reason it must not happen — and [`check_replay`];
//! - [`journal`]: a set's postings folded into one [`JournalLine`] per account, the form the
//!   SQL ledger stores its journal in;
//! - [`memory`]: [`Ledger`], the in-memory state machine built on those rules: the reference
//!   model the SQL-backed ledger is checked against, with [`Ledger::check_invariants`];
//! - [`session`]: holds at session start, their release, top-ups and refunds;
//! - [`settlement`]: a transaction record's cost → the settlement transfer set;
//! - [`reverse`]: a V2G session's export value (and import cost, if it also charged) → one
//!   reverse-settlement transfer set that credits the driver from the V2G payout account.
//!
//! **Money.** Every amount is a [`Money`](voltline_protocol::Money) (`rust_decimal`), and the
//! ledger holds whole fen only. The ledger never rounds: it refuses an amount finer than a
//! fen ([`LedgerError::InvalidAmount`]). Rounding happens before money reaches it, at two
//! documented points: the tariff's cost function rounds the energy fee and the service fee
//! once each (`voltline_protocol::tariff::cost`), and the platform fee is rounded once in
//! [`settlement::split_cost`], with the remainder going to the operator so that the parts
//! always sum to the cost.
//!
//! **Invariants** (asserted leg by leg in [`evaluate`] in every build, re-checked in full by
//! [`Ledger::check_invariants`] after every [`Ledger::apply`] in debug builds, and
//! property-tested in `cloud/tests/ledger_model_props.rs`):
//! every transfer set balances; every balance equals the sum of its postings; no account's
//! available balance goes below its lower limit, and a hold or a refund never draws on a
//! credit line; a pending transfer is posted or voided at most once, and never posted for
//! more than it holds; an idempotency key is applied once — the same key with the same
//! content returns the first result, with other content it is an error.
//!
//! **Retries.** Content is compared exactly (amounts, accounts, expiry, memo). A plan that
//! depends on balances (a hold lowered to what is available, a settlement's overrun) can come
//! out different when made again after the first one applied, so a caller that retries looks
//! the key up first ([`Ledger::lookup`]; the SQL ledger's equivalent) and returns the stored
//! first result; if it planned anyway, [`LedgerError::IdempotencyConflict`] tells it to look up.
//!
//! It must never do I/O: no database, no clock, no threads, no `sqlx` or `tokio`. Every
//! instant and every balance comes in as an argument, so the SQL-backed ledger can run the
//! very same rules inside its transaction and agree with this model to the fen.

pub mod account;
pub mod error;
pub mod journal;
pub mod memory;
pub mod reverse;
pub mod rules;
pub mod session;
pub mod settlement;
pub mod transfer;

pub use account::{
    Account, AccountKind, AccountPolicy, Balance, BalanceField, LedgerAccountId, ProviderId, Side,
};
pub use error::LedgerError;
pub use journal::{journal_lines, JournalLine};
pub use memory::{Applied, Ledger};
pub use reverse::{
    plan_reverse, reverse_key, ExportLine, ImportLine, ReverseFigures, ReverseInput, ReversePlan,
};
pub use rules::{
    check_replay, evaluate, Evaluation, LedgerView, PendingStatus, PendingTransfer, Posting, Replay,
};
pub use session::{place_hold, refund, top_up, void_hold, ExternalRef, Hold, HoldRequest};
pub use settlement::{
    plan_settlement, plan_settlement_with_split, split_cost, CostSplit, Mismatch, PlatformFeeRule,
    SettlementInput, SettlementPlan,
};
pub use transfer::{
    IdempotencyKey, Memo, Reason, RecordRef, Transfer, TransferId, TransferKind, TransferSet,
};

/// Bounds on everything the ledger accepts.
pub mod limits {
    /// Most legs in one transfer set (a settlement needs at most five).
    pub const MAX_LEGS: usize = 8;
    /// Longest idempotency key, in bytes.
    pub const MAX_KEY_BYTES: usize = 128;
    /// Longest external reference (a payment provider's transaction id), in bytes.
    pub const MAX_EXTERNAL_REF_BYTES: usize = 64;
    /// Largest amount of one transfer, in whole fen: 100 million yuan.
    pub const MAX_AMOUNT_CENTS: i64 = 10_000_000_000;
    /// Largest credit limit of one wallet, in whole fen: 1 million yuan.
    pub const MAX_CREDIT_LIMIT_CENTS: i64 = 100_000_000;
}
