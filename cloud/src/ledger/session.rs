//! A session's money before settlement, and a wallet's top-ups and refunds, as pure functions
//! that plan transfer sets. Applying a plan is the ledger's business; the ledger checks the
//! limits again against the balances it holds at that moment, so a plan made from a stale
//! balance is refused, never applied wrongly.
//!
//! **Holds.** Starting a session places a pending transfer from the driver's wallet to
//! [`SessionClearing`](LedgerAccountId::SessionClearing): the requested amount, or the
//! configured default, but never more than the wallet's available prepaid balance (the amount
//! is lowered to what is available). Below the minimum hold it is
//! [`LedgerError::InsufficientFunds`] (HTTP 402) and no start command may be sent. A hold
//! never draws on a credit line, so concurrent starts of one account can together hold at
//! most its prepaid balance: the ledger refuses the hold that would take `available` below 0.
//!
//! **Top-ups and refunds** are single transfers between a payment provider's clearing account
//! and the wallet, keyed by the provider's own reference so that a resent notification or a
//! retried request applies once.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, OrderId};
use voltline_protocol::Money;

use super::account::{LedgerAccountId, ProviderId};
use super::error::LedgerError;
use super::limits;
use super::transfer::{
    check_amount, IdempotencyKey, Memo, Reason, Transfer, TransferId, TransferKind, TransferSet,
};

/// A payment provider's reference for one payment or refund: 1-64 characters from
/// `A-Z a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ExternalRef(String);

impl ExternalRef {
    /// Validates a reference.
    pub fn new(text: impl Into<String>) -> Result<ExternalRef, LedgerError> {
        let text = text.into();
        let ok = !text.is_empty()
            && text.len() <= limits::MAX_EXTERNAL_REF_BYTES
            && text
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
        if ok {
            Ok(ExternalRef(text))
        } else {
            Err(LedgerError::BadName {
                text,
                what: "payment reference",
                rule: "1-64 characters from A-Z a-z 0-9 - _ .",
            })
        }
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for ExternalRef {
    type Error = LedgerError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        ExternalRef::new(s)
    }
}

impl From<ExternalRef> for String {
    fn from(r: ExternalRef) -> String {
        r.0
    }
}

/// What starting a session asks of the wallet.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HoldRequest {
    pub order: OrderId,
    pub account: AccountId,
    /// The amount the driver asked to reserve, if any.
    pub requested: Option<Money>,
    /// The configured amount to reserve when the driver asked for none.
    pub default_hold: Money,
    /// The least hold worth starting a session for (at least 0.01).
    pub minimum_hold: Money,
    /// The wallet's available balance as read ([`Account::available`](super::Account::available)).
    pub available: Money,
    /// When a sweeper should void the hold if the start never completes. Derive it from the
    /// order's creation time, not from the clock at each attempt, so a retry plans the same.
    pub expires_at: Option<Timestamp>,
}

/// A placed hold: what settlement and release need to name it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hold {
    pub order: OrderId,
    pub account: AccountId,
    /// The pending transfer's id (`hold:{order}#0`).
    pub pending: TransferId,
    pub amount: Money,
}

fn bad(what: &'static str, amount: Money, why: &'static str) -> LedgerError {
    LedgerError::BadInput { what, amount, why }
}

fn check(what: &'static str, amount: Money) -> Result<(), LedgerError> {
    check_amount(amount).map_err(|why| bad(what, amount, why))
}

/// Plans the hold for a session start: `min(requested or default, available)`, refused with
/// [`LedgerError::InsufficientFunds`] when the available balance is below the minimum hold,
/// and with [`LedgerError::BadInput`] when the amount asked for is itself below the minimum.
pub fn place_hold(req: &HoldRequest) -> Result<(TransferSet, Hold), LedgerError> {
    if let Some(r) = req.requested {
        check("requested hold", r)?;
    }
    check("default hold", req.default_hold)?;
    check("minimum hold", req.minimum_hold)?;
    if req.available.round_cents() != req.available {
        return Err(bad(
            "available balance",
            req.available,
            "balances are whole fen",
        ));
    }
    let wanted = req.requested.unwrap_or(req.default_hold);
    if wanted < req.minimum_hold {
        return Err(bad(
            "hold",
            wanted,
            "it is below the minimum hold; request at least the minimum (or fix the configured default)",
        ));
    }
    let amount = wanted.min(req.available);
    let wallet = LedgerAccountId::DriverWallet(req.account.clone());
    if amount < req.minimum_hold {
        return Err(LedgerError::InsufficientFunds {
            account: wallet,
            available: req.available.max(Money::ZERO),
            requested: wanted,
        });
    }
    assert!(amount > Money::ZERO && amount <= req.available && amount <= wanted);
    let set = TransferSet {
        key: IdempotencyKey::hold(&req.order),
        legs: vec![Transfer {
            debit: wallet,
            credit: LedgerAccountId::SessionClearing,
            amount,
            kind: TransferKind::Pending {
                expires_at: req.expires_at,
            },
            credit_allowed: false,
        }],
        memo: Memo {
            order: Some(req.order.clone()),
            ..Memo::new(Reason::Hold)
        },
    };
    let hold = Hold {
        order: req.order.clone(),
        account: req.account.clone(),
        pending: set.transfer_id(0),
        amount,
    };
    Ok((set, hold))
}

/// Plans the release of a hold whose start failed or expired: a void of the whole hold.
/// Applying it after the hold was settled fails with [`LedgerError::PendingClosed`], which a
/// sweeper racing a settlement treats as "already done".
pub fn void_hold(hold: &Hold) -> TransferSet {
    TransferSet {
        key: IdempotencyKey::void(&hold.order),
        legs: vec![Transfer {
            debit: LedgerAccountId::DriverWallet(hold.account.clone()),
            credit: LedgerAccountId::SessionClearing,
            amount: hold.amount,
            kind: TransferKind::Void {
                pending: hold.pending.clone(),
            },
            credit_allowed: false,
        }],
        memo: Memo {
            order: Some(hold.order.clone()),
            ..Memo::new(Reason::Release)
        },
    }
}

fn provider_key(op: &str, provider: &ProviderId, reference: &ExternalRef) -> IdempotencyKey {
    IdempotencyKey::new(format!("{op}:{provider}:{}", reference.as_str()))
        .expect("provider ids and references are key-safe and short enough")
}

/// Plans a top-up confirmed by `provider` under its reference `reference`: provider clearing
/// → wallet, keyed `topup:{provider}:{reference}`.
pub fn top_up(
    provider: &ProviderId,
    reference: &ExternalRef,
    account: &AccountId,
    amount: Money,
) -> Result<TransferSet, LedgerError> {
    check("top-up", amount)?;
    Ok(TransferSet {
        key: provider_key("topup", provider, reference),
        legs: vec![Transfer::single(
            LedgerAccountId::ProviderClearing(provider.clone()),
            LedgerAccountId::DriverWallet(account.clone()),
            amount,
        )],
        memo: Memo {
            external_ref: Some(reference.as_str().to_owned()),
            ..Memo::new(Reason::TopUp)
        },
    })
}

/// Plans a refund to `provider`: wallet → provider clearing, keyed
/// `refund:{provider}:{reference}`, at most `refundable` — the caller's figure, never more than
/// the wallet's available prepaid balance (the ledger refuses a refund that would take the
/// wallet below zero, whatever its credit line).
pub fn refund(
    provider: &ProviderId,
    reference: &ExternalRef,
    account: &AccountId,
    amount: Money,
    refundable: Money,
) -> Result<TransferSet, LedgerError> {
    check("refund", amount)?;
    if amount > refundable {
        return Err(LedgerError::RefundExceedsRefundable {
            requested: amount,
            refundable: refundable.max(Money::ZERO),
        });
    }
    Ok(TransferSet {
        key: provider_key("refund", provider, reference),
        legs: vec![Transfer::single(
            LedgerAccountId::DriverWallet(account.clone()),
            LedgerAccountId::ProviderClearing(provider.clone()),
            amount,
        )],
        memo: Memo {
            external_ref: Some(reference.as_str().to_owned()),
            ..Memo::new(Reason::Refund)
        },
    })
}

#[cfg(test)]
#[path = "session_tests.rs"]
mod tests;
