//! Transfers: immutable movements of whole fen from a debit account to a credit account,
//! grouped into [`TransferSet`]s that apply atomically (all legs or none).
//!
//! Two-phase transfers follow TigerBeetle: a `Pending` transfer reserves the amount (it counts
//! against the debit account's available balance but moves nothing); a later `Post` moves all
//! or part of it and releases the rest; a `Void` releases all of it. A pending transfer is
//! posted or voided at most once.
//!
//! Every set carries an [`IdempotencyKey`], unique in the store. Each leg's [`TransferId`] is
//! the set's key plus the leg's index, so ids are deterministic: the caller that placed a hold
//! can name it again (to post or void it) without asking the store, and a replay produces
//! the very same ids.

use std::fmt;
use std::str::FromStr;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{OrderId, PileCode, TransactionSerial};
use voltline_protocol::Money;

use super::account::LedgerAccountId;
use super::error::LedgerError;
use super::limits;

/// A set's idempotency key: 1-128 bytes from `A-Z a-z 0-9 - _ . : /`.
///
/// Build keys with the constructors, which derive them from what makes the operation unique
/// (an order, a pile's transaction, a provider's payment reference), never from a clock or a
/// random number: a retried request must produce the same key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdempotencyKey(String);

impl IdempotencyKey {
    /// Validates a key.
    pub fn new(text: impl Into<String>) -> Result<IdempotencyKey, LedgerError> {
        let text = text.into();
        let ok = !text.is_empty()
            && text.len() <= limits::MAX_KEY_BYTES
            && text.bytes().all(|b| {
                b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/')
            });
        if ok {
            Ok(IdempotencyKey(text))
        } else {
            Err(LedgerError::BadName {
                text,
                what: "idempotency key",
                rule: "1-128 characters from A-Z a-z 0-9 - _ . : /",
            })
        }
    }

    /// The key of the hold placed when `order` starts: `hold:{order}`.
    pub fn hold(order: &OrderId) -> IdempotencyKey {
        IdempotencyKey(format!("hold:{order}"))
    }

    /// The key of the release of `order`'s hold after a failed or expired start: `void:{order}`.
    pub fn void(order: &OrderId) -> IdempotencyKey {
        IdempotencyKey(format!("void:{order}"))
    }

    /// The key of a transaction record's settlement: `settle:{pile}:{serial}`. One record
    /// settles once, however often the pile or the edge resends it.
    pub fn settlement(record: &RecordRef) -> IdempotencyKey {
        IdempotencyKey(format!("settle:{}:{}", record.pile, record.serial))
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for IdempotencyKey {
    type Error = LedgerError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        IdempotencyKey::new(s)
    }
}

impl From<IdempotencyKey> for String {
    fn from(k: IdempotencyKey) -> String {
        k.0
    }
}

impl fmt::Display for IdempotencyKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A transfer's id: its set's key and its index in the set. Shown as `key#leg`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TransferId {
    pub key: IdempotencyKey,
    pub leg: u8,
}

impl TransferId {
    /// Leg `leg` of the set with `key`.
    pub fn new(key: IdempotencyKey, leg: u8) -> TransferId {
        TransferId { key, leg }
    }
}

impl fmt::Display for TransferId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}#{}", self.key, self.leg)
    }
}

impl FromStr for TransferId {
    type Err = LedgerError;
    /// Parses the `key#leg` form (as stored in an order's `hold_id`).
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || LedgerError::BadName {
            text: s.to_owned(),
            what: "transfer id",
            rule: "an idempotency key, '#', and a leg index below 8, e.g. hold:o-1#0",
        };
        let (key, leg) = s.rsplit_once('#').ok_or_else(bad)?;
        let leg: u8 = leg.parse().map_err(|_| bad())?;
        if usize::from(leg) >= limits::MAX_LEGS {
            return Err(bad());
        }
        Ok(TransferId::new(
            IdempotencyKey::new(key).map_err(|_| bad())?,
            leg,
        ))
    }
}

/// What a transfer does.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum TransferKind {
    /// Moves the amount now.
    Single,
    /// Reserves the amount (a hold). `expires_at` is when a sweeper should void it; the ledger
    /// reads no clock and never voids on its own, so a hold stays valid until posted or voided.
    Pending { expires_at: Option<Timestamp> },
    /// Moves `amount` (at most the pending amount) of a pending transfer and releases the
    /// rest. Debit and credit accounts must be the pending transfer's.
    Post { pending: TransferId },
    /// Releases a pending transfer. Accounts and amount must be the pending transfer's.
    Void { pending: TransferId },
}

/// One leg of a transfer set.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Transfer {
    pub debit: LedgerAccountId,
    pub credit: LedgerAccountId,
    /// More than zero, whole fen, at most 100 million yuan.
    pub amount: Money,
    pub kind: TransferKind,
    /// Whether this debit may take the debit account below zero, down to its lower limit
    /// (its credit line). Only a settlement overrun sets it; holds and refunds never do, and
    /// only a `Single` transfer may (a set with a pending leg that sets it is refused).
    pub credit_allowed: bool,
}

impl Transfer {
    /// A transfer that moves `amount` now.
    pub fn single(debit: LedgerAccountId, credit: LedgerAccountId, amount: Money) -> Transfer {
        Transfer {
            debit,
            credit,
            amount,
            kind: TransferKind::Single,
            credit_allowed: false,
        }
    }
}

/// A pile's transaction, as the ledger refers to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct RecordRef {
    pub pile: PileCode,
    pub serial: TransactionSerial,
}

/// Why a set exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Reason {
    TopUp,
    Refund,
    Hold,
    Release,
    Settlement,
    Adjustment,
}

/// What a set is about; part of its content (a replay must carry the same memo).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Memo {
    pub reason: Reason,
    pub order: Option<OrderId>,
    pub record: Option<RecordRef>,
    /// A payment provider's reference for top-ups and refunds.
    pub external_ref: Option<String>,
}

impl Memo {
    /// A memo with only a reason.
    pub fn new(reason: Reason) -> Memo {
        Memo {
            reason,
            order: None,
            record: None,
            external_ref: None,
        }
    }
}

/// Legs that apply atomically under one idempotency key. Legs apply in order, so a leg sees
/// the balances the earlier legs left (a set may post a hold and then split the proceeds).
/// A set may have no legs: a settlement of nothing still records its key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferSet {
    pub key: IdempotencyKey,
    pub legs: Vec<Transfer>,
    pub memo: Memo,
}

impl TransferSet {
    /// The id of leg `index`.
    pub fn transfer_id(&self, index: usize) -> TransferId {
        assert!(
            index < limits::MAX_LEGS,
            "leg index {index} beyond the bound"
        );
        TransferId::new(self.key.clone(), index as u8)
    }

    /// The first leg that moves `account`'s posted sums (a single transfer, or the post of a
    /// hold): the transfer a statement line of the set names.
    pub fn first_posting_leg(&self, account: &LedgerAccountId) -> Option<TransferId> {
        self.legs
            .iter()
            .position(|leg| {
                (leg.debit == *account || leg.credit == *account)
                    && matches!(leg.kind, TransferKind::Single | TransferKind::Post { .. })
            })
            .map(|i| self.transfer_id(i))
    }

    /// Checks what can be checked without the ledger: the number of legs, each amount (more
    /// than zero, whole fen, bounded) and that no leg moves money from an account to itself.
    pub fn validate(&self) -> Result<(), LedgerError> {
        if self.legs.len() > limits::MAX_LEGS {
            return Err(LedgerError::TooManyLegs {
                legs: self.legs.len(),
                max: limits::MAX_LEGS,
            });
        }
        for (leg, t) in self.legs.iter().enumerate() {
            check_amount(t.amount).map_err(|why| LedgerError::InvalidAmount {
                key: self.key.clone(),
                leg,
                amount: t.amount,
                why,
            })?;
            if t.credit_allowed && t.kind != TransferKind::Single {
                return Err(LedgerError::CreditNotAllowed {
                    key: self.key.clone(),
                    leg,
                });
            }
            if t.debit == t.credit {
                return Err(LedgerError::SameAccount {
                    key: self.key.clone(),
                    leg,
                    account: t.debit.clone(),
                });
            }
        }
        Ok(())
    }
}

/// Why an amount cannot be a transfer's amount, if it cannot.
pub fn check_amount(amount: Money) -> Result<(), &'static str> {
    if amount <= Money::ZERO {
        return Err("an amount must be more than zero");
    }
    if amount.round_cents() != amount {
        return Err("the ledger holds whole fen only; round once, where the rounding rule is documented, before the ledger");
    }
    if amount > Money::from_cents(limits::MAX_AMOUNT_CENTS) {
        return Err("an amount may be at most 100000000.00 yuan");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(amount: Money) -> TransferSet {
        TransferSet {
            key: IdempotencyKey::new("k-1").unwrap(),
            legs: vec![Transfer::single(
                LedgerAccountId::PlatformRevenue,
                LedgerAccountId::V2gPayout,
                amount,
            )],
            memo: Memo::new(Reason::Adjustment),
        }
    }

    #[test]
    fn sub_cent_zero_negative_and_huge_amounts_are_refused() {
        for bad in [
            Money::from_scaled(1, 3),
            Money::ZERO,
            Money::from_cents(-1),
            Money::from_cents(limits::MAX_AMOUNT_CENTS + 1),
        ] {
            assert!(matches!(
                set(bad).validate(),
                Err(LedgerError::InvalidAmount { leg: 0, .. })
            ));
        }
        assert!(set(Money::from_scaled(1230, 3)).validate().is_ok());
    }

    #[test]
    fn a_leg_cannot_move_money_to_its_own_account() {
        let mut s = set(Money::from_cents(1));
        s.legs[0].credit = s.legs[0].debit.clone();
        assert!(matches!(s.validate(), Err(LedgerError::SameAccount { .. })));
    }

    #[test]
    fn only_a_single_transfer_may_draw_on_credit() {
        let mut s = set(Money::from_cents(1));
        s.legs[0].credit_allowed = true;
        assert!(s.validate().is_ok());
        s.legs[0].kind = TransferKind::Pending { expires_at: None };
        assert!(matches!(
            s.validate(),
            Err(LedgerError::CreditNotAllowed { leg: 0, .. })
        ));
    }

    #[test]
    fn transfer_ids_round_trip_through_text() {
        let order: OrderId = "o-1".parse().unwrap();
        let id = TransferId::new(IdempotencyKey::hold(&order), 0);
        assert_eq!(id.to_string(), "hold:o-1#0");
        assert_eq!("hold:o-1#0".parse::<TransferId>().unwrap(), id);
        for bad in ["hold:o-1", "hold:o-1#8", "#0", "hold:o-1#x", "a b#0"] {
            assert!(bad.parse::<TransferId>().is_err(), "{bad}");
        }
    }

    #[test]
    fn sets_are_bounded() {
        let mut s = set(Money::from_cents(1));
        s.legs = vec![s.legs[0].clone(); limits::MAX_LEGS + 1];
        assert!(matches!(s.validate(), Err(LedgerError::TooManyLegs { .. })));
    }

    #[test]
    fn keys_are_bounded_and_derived_keys_are_valid() {
        assert!(IdempotencyKey::new("").is_err());
        assert!(IdempotencyKey::new("a b").is_err());
        assert!(IdempotencyKey::new("x".repeat(limits::MAX_KEY_BYTES + 1)).is_err());
        assert!(IdempotencyKey::new("x".repeat(limits::MAX_KEY_BYTES)).is_ok());
        let record = RecordRef {
            pile: "32010600019236".parse().unwrap(),
            serial: "32010600019236012001061803423060".parse().unwrap(),
        };
        let key = IdempotencyKey::settlement(&record);
        assert_eq!(
            key.as_str(),
            "settle:32010600019236:32010600019236012001061803423060"
        );
        assert_eq!(IdempotencyKey::new(key.as_str()).unwrap(), key);
        let order: OrderId = "x".repeat(64).parse().unwrap();
        assert!(IdempotencyKey::new(IdempotencyKey::hold(&order).as_str()).is_ok());
        assert!(IdempotencyKey::new(IdempotencyKey::void(&order).as_str()).is_ok());
    }
}
