//! Why the ledger refused something. Every message says what to do about it; a refused
//! transfer set changed nothing.

use voltline_protocol::tariff::TariffVersion;
use voltline_protocol::Money;

use super::account::LedgerAccountId;
use super::rules::PendingStatus;
use super::transfer::{IdempotencyKey, TransferId};

/// A refused ledger operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The driver's available (prepaid) balance cannot cover the amount. HTTP 402.
    #[error("insufficient funds in {account}: {available} yuan available, {requested} yuan requested; top up the wallet or request less")]
    InsufficientFunds {
        account: LedgerAccountId,
        available: Money,
        requested: Money,
    },
    /// A non-wallet account would go below its lower limit.
    #[error("{account} would go below its limit {limit} (available {available}, debit {requested}); this transfer would break the ledger's rules and must be planned again")]
    LimitExceeded {
        account: LedgerAccountId,
        available: Money,
        requested: Money,
        limit: Money,
    },
    #[error("leg {leg} of {key}: {amount} yuan is not a valid transfer amount: {why}")]
    InvalidAmount {
        key: IdempotencyKey,
        leg: usize,
        amount: Money,
        why: &'static str,
    },
    #[error(
        "leg {leg} of {key} moves money from {account} to itself; name two different accounts"
    )]
    SameAccount {
        key: IdempotencyKey,
        leg: usize,
        account: LedgerAccountId,
    },
    #[error("a transfer set has {legs} legs, more than the limit of {max}; split the operation")]
    TooManyLegs { legs: usize, max: usize },
    #[error("ledger account {0} is not open; open it before moving money through it")]
    UnknownAccount(LedgerAccountId),
    #[error("{account} is already open with another policy; change a policy deliberately, not by reopening")]
    AccountPolicyConflict { account: LedgerAccountId },
    #[error("pending transfer {0} does not exist; post or void only a hold that was placed")]
    PendingNotFound(TransferId),
    #[error("pending transfer {id} is already {status:?}; a hold is posted or voided once (look up the set that closed it)")]
    PendingClosed {
        id: TransferId,
        status: PendingStatus,
    },
    #[error("posting {requested} yuan of pending transfer {id}, which holds only {pending}; post at most the held amount and settle the rest separately")]
    PostExceedsPending {
        id: TransferId,
        pending: Money,
        requested: Money,
    },
    #[error("leg {leg} of {key} does not match pending transfer {pending}'s accounts (or, for a void, its amount); post or void with the hold's own accounts and amount")]
    PendingMismatch {
        key: IdempotencyKey,
        leg: usize,
        pending: TransferId,
    },
    /// The key was applied before with different content. HTTP 409.
    #[error("idempotency key {key} was already used for a different operation; use a new key for a new operation, or resend exactly the first one")]
    IdempotencyConflict { key: IdempotencyKey },
    #[error("'{text}' is not a valid {what}: use {rule}")]
    BadName {
        text: String,
        what: &'static str,
        rule: &'static str,
    },
    #[error("leg {leg} of {key} may draw on credit but is not a single transfer; only a posted debit (a settlement overrun) may use a credit line, never a hold")]
    CreditNotAllowed { key: IdempotencyKey, leg: usize },
    #[error("platform fee of {percent} % of the service fee is not valid; use a percentage between 0 and 100")]
    BadPercentage { percent: rust_decimal::Decimal },
    #[error("credit limit {credit_limit} must be whole fen between 0 and {max} yuan")]
    BadCreditLimit { credit_limit: Money, max: Money },
    #[error("{what} {amount} yuan is not valid: {why}")]
    BadInput {
        what: &'static str,
        amount: Money,
        why: &'static str,
    },
    #[error("the session was priced with tariff {priced} but started under {at_start}; price it with the tariff version in force at session start")]
    WrongTariffVersion {
        at_start: TariffVersion,
        priced: TariffVersion,
    },
    #[error("refund of {requested} yuan exceeds the refundable {refundable} yuan; refund at most the refundable amount")]
    RefundExceedsRefundable { requested: Money, refundable: Money },
    #[error("the hold {hold} belongs to another wallet than {account}; settle a session against the hold placed for it")]
    HoldMismatch {
        hold: TransferId,
        account: LedgerAccountId,
    },
}

impl LedgerError {
    /// The HTTP status an API answers with when this error reaches a client: 402 for
    /// insufficient funds, 409 for conflicts with earlier operations, 404 for unknown
    /// accounts and holds, 422 for invalid input.
    pub fn http_status(&self) -> u16 {
        match self {
            LedgerError::InsufficientFunds { .. } => 402,
            LedgerError::IdempotencyConflict { .. }
            | LedgerError::PendingClosed { .. }
            | LedgerError::AccountPolicyConflict { .. }
            | LedgerError::LimitExceeded { .. } => 409,
            LedgerError::UnknownAccount(_) | LedgerError::PendingNotFound(_) => 404,
            _ => 422,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn insufficient_funds_maps_to_402_and_says_what_to_do() {
        let e = LedgerError::InsufficientFunds {
            account: LedgerAccountId::DriverWallet("acc-1".parse().unwrap()),
            available: Money::from_cents(120),
            requested: Money::from_cents(5_000),
        };
        assert_eq!(e.http_status(), 402);
        let text = e.to_string();
        assert!(text.contains("1.20 yuan available"), "{text}");
        assert!(text.contains("top up"), "{text}");
    }

    #[test]
    fn conflicting_key_reuse_maps_to_409() {
        let e = LedgerError::IdempotencyConflict {
            key: IdempotencyKey::new("topup:alipay:1").unwrap(),
        };
        assert_eq!(e.http_status(), 409);
    }
}
