//! The ledger's rules as pure functions, shared by every backend.
//!
//! [`evaluate`] takes a transfer set and a [`LedgerView`] (the accounts and pending transfers
//! the set touches, as the backend read them) and returns an [`Evaluation`]: the postings to
//! append, the touched accounts' new balances and the pending transfers created or closed.
//! The in-memory [`Ledger`](super::Ledger) commits that to its maps; the SQL-backed ledger
//! commits it inside one database transaction, with a conditional update on each touched
//! account's version so that a concurrent change makes it evaluate again on fresh balances.
//!
//! Legs apply in order and each sees what the earlier legs left. Per leg:
//! - a posting changes one of an account's four sums ([`BalanceField`]); a leg's debit-side
//!   deltas always equal its credit-side deltas (asserted), so every set balances;
//! - an account whose available balance a leg lowers must stay at or above its floor
//!   ([`AccountPolicy::floor`](super::AccountPolicy::floor)): its lower limit if the leg may
//!   draw on credit, otherwise zero — a wallet refuses with [`LedgerError::InsufficientFunds`];
//! - a post or void must name an open pending transfer with the same accounts; a post moves
//!   at most the pending amount, a void the pending amount exactly.

use std::collections::BTreeMap;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::Money;

use super::account::{Account, AccountKind, BalanceField, LedgerAccountId};
use super::error::LedgerError;
use super::transfer::{Transfer, TransferId, TransferKind, TransferSet};

/// What a backend must be able to read for [`evaluate`].
pub trait LedgerView {
    /// The account as it stands, or `None` if it was never opened.
    fn account(&self, id: &LedgerAccountId) -> Option<Account>;
    /// The pending transfer with this id, or `None` if there is none.
    fn pending(&self, id: &TransferId) -> Option<PendingTransfer>;
}

/// Where a pending transfer stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum PendingStatus {
    Open,
    /// Posted for `amount`; the rest of the pending amount was released.
    Posted {
        amount: Money,
    },
    Voided,
}

/// A hold: a pending transfer and its status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingTransfer {
    pub id: TransferId,
    pub debit: LedgerAccountId,
    pub credit: LedgerAccountId,
    pub amount: Money,
    pub expires_at: Option<Timestamp>,
    pub status: PendingStatus,
}

/// One change to one of an account's four sums. An account's sums are the sums of its
/// postings, and the journal of postings is append-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Posting {
    pub transfer: TransferId,
    pub account: LedgerAccountId,
    pub field: BalanceField,
    /// Positive, or negative when a post or void releases a pending amount.
    pub delta: Money,
}

/// The outcome of a set that the rules allow.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Evaluation {
    /// Every account the set touched, with its balance after the set.
    pub accounts: BTreeMap<LedgerAccountId, Account>,
    /// Pending transfers the set created or closed, as they stand after the set.
    pub pendings: BTreeMap<TransferId, PendingTransfer>,
    /// The postings to append, in order.
    pub postings: Vec<Posting>,
}

/// Whether a set was seen before.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Replay {
    /// The key is new: evaluate and apply the set.
    New,
    /// The key was applied with identical content: return the first result, apply nothing.
    Replay,
}

/// Compares an incoming set with the set stored under the same key, if any. Same content →
/// [`Replay::Replay`]; different content → [`LedgerError::IdempotencyConflict`].
pub fn check_replay(
    stored: Option<&TransferSet>,
    incoming: &TransferSet,
) -> Result<Replay, LedgerError> {
    match stored {
        None => Ok(Replay::New),
        Some(first) => {
            assert_eq!(
                first.key, incoming.key,
                "stored set looked up by another key"
            );
            if first == incoming {
                Ok(Replay::Replay)
            } else {
                Err(LedgerError::IdempotencyConflict {
                    key: incoming.key.clone(),
                })
            }
        }
    }
}

/// Applies the rules to `set` over `view` (see the module doc). Changes nothing: the caller
/// commits the [`Evaluation`] or drops it.
pub fn evaluate(set: &TransferSet, view: &impl LedgerView) -> Result<Evaluation, LedgerError> {
    set.validate()?;
    let mut ev = Evaluation::default();
    for (leg, t) in set.legs.iter().enumerate() {
        let id = set.transfer_id(leg);
        for account in [&t.debit, &t.credit] {
            if !ev.accounts.contains_key(account) {
                let a = view
                    .account(account)
                    .ok_or_else(|| LedgerError::UnknownAccount(account.clone()))?;
                assert_eq!(&a.id, account, "view returned another account");
                ev.accounts.insert(account.clone(), a);
            }
        }
        let before = (available(&ev, &t.debit), available(&ev, &t.credit));
        let postings = leg_postings(set, leg, t, &id, view, &mut ev)?;
        assert_balanced(&postings);
        for p in &postings {
            let a = ev
                .accounts
                .get_mut(&p.account)
                .expect("touched account loaded");
            a.balance.add(p.field, p.delta);
            assert!(
                BalanceField::ALL
                    .iter()
                    .all(|f| !a.balance.get(*f).is_negative()),
                "a sum of postings went negative in {}",
                a.id
            );
        }
        check_floor(&ev, &t.debit, before.0, t.credit_allowed)?;
        check_floor(&ev, &t.credit, before.1, false)?;
        ev.postings.extend(postings);
    }
    Ok(ev)
}

fn available(ev: &Evaluation, account: &LedgerAccountId) -> Money {
    ev.accounts[account].available()
}

/// Refuses a leg that lowered `account`'s available balance below its floor.
fn check_floor(
    ev: &Evaluation,
    account: &LedgerAccountId,
    before: Money,
    credit_allowed: bool,
) -> Result<(), LedgerError> {
    let a = &ev.accounts[account];
    let after = a.available();
    let Some(floor) = a.policy.floor(credit_allowed) else {
        return Ok(());
    };
    if after >= before || after >= floor {
        return Ok(());
    }
    let requested = before - after;
    if account.kind() == AccountKind::DriverWallet {
        Err(LedgerError::InsufficientFunds {
            account: account.clone(),
            available: (before - floor).max(Money::ZERO),
            requested,
        })
    } else {
        Err(LedgerError::LimitExceeded {
            account: account.clone(),
            available: before,
            requested,
            limit: floor,
        })
    }
}

fn assert_balanced(postings: &[Posting]) {
    let side = |fields: [BalanceField; 2]| -> Money {
        postings
            .iter()
            .filter(|p| fields.contains(&p.field))
            .map(|p| p.delta)
            .sum()
    };
    let debits = side([BalanceField::DebitsPending, BalanceField::DebitsPosted]);
    let credits = side([BalanceField::CreditsPending, BalanceField::CreditsPosted]);
    assert_eq!(debits, credits, "a leg's postings do not balance");
}

fn posting(
    transfer: &TransferId,
    account: &LedgerAccountId,
    field: BalanceField,
    delta: Money,
) -> Posting {
    Posting {
        transfer: transfer.clone(),
        account: account.clone(),
        field,
        delta,
    }
}

/// The postings of one leg; records the pending transfers it creates or closes in `ev`.
fn leg_postings(
    set: &TransferSet,
    leg: usize,
    t: &Transfer,
    id: &TransferId,
    view: &impl LedgerView,
    ev: &mut Evaluation,
) -> Result<Vec<Posting>, LedgerError> {
    let postings = match &t.kind {
        TransferKind::Single => vec![
            posting(id, &t.debit, BalanceField::DebitsPosted, t.amount),
            posting(id, &t.credit, BalanceField::CreditsPosted, t.amount),
        ],
        TransferKind::Pending { expires_at } => {
            let pending = PendingTransfer {
                id: id.clone(),
                debit: t.debit.clone(),
                credit: t.credit.clone(),
                amount: t.amount,
                expires_at: *expires_at,
                status: PendingStatus::Open,
            };
            assert!(ev.pendings.insert(id.clone(), pending).is_none());
            vec![
                posting(id, &t.debit, BalanceField::DebitsPending, t.amount),
                posting(id, &t.credit, BalanceField::CreditsPending, t.amount),
            ]
        }
        TransferKind::Post { pending } | TransferKind::Void { pending } => {
            let is_post = matches!(t.kind, TransferKind::Post { .. });
            let p = open_pending(pending, view, ev)?;
            let mismatch = || LedgerError::PendingMismatch {
                key: set.key.clone(),
                leg,
                pending: pending.clone(),
            };
            if p.debit != t.debit || p.credit != t.credit {
                return Err(mismatch());
            }
            if is_post && t.amount > p.amount {
                return Err(LedgerError::PostExceedsPending {
                    id: pending.clone(),
                    pending: p.amount,
                    requested: t.amount,
                });
            }
            if !is_post && t.amount != p.amount {
                return Err(mismatch());
            }
            let mut out = vec![
                posting(id, &p.debit, BalanceField::DebitsPending, -p.amount),
                posting(id, &p.credit, BalanceField::CreditsPending, -p.amount),
            ];
            let status = if is_post {
                out.push(posting(id, &t.debit, BalanceField::DebitsPosted, t.amount));
                out.push(posting(
                    id,
                    &t.credit,
                    BalanceField::CreditsPosted,
                    t.amount,
                ));
                PendingStatus::Posted { amount: t.amount }
            } else {
                PendingStatus::Voided
            };
            ev.pendings
                .insert(pending.clone(), PendingTransfer { status, ..p });
            out
        }
    };
    Ok(postings)
}

/// The pending transfer `id`, as this set left it or else as stored; it must be open.
fn open_pending(
    id: &TransferId,
    view: &impl LedgerView,
    ev: &Evaluation,
) -> Result<PendingTransfer, LedgerError> {
    let p = match ev.pendings.get(id) {
        Some(p) => p.clone(),
        None => view
            .pending(id)
            .ok_or_else(|| LedgerError::PendingNotFound(id.clone()))?,
    };
    assert_eq!(&p.id, id, "view returned another pending transfer");
    if p.status != PendingStatus::Open {
        return Err(LedgerError::PendingClosed {
            id: id.clone(),
            status: p.status,
        });
    }
    Ok(p)
}
