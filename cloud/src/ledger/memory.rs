//! [`Ledger`]: the in-memory ledger, a state machine over the pure [`rules`](super::rules).
//!
//! It is the reference model: the SQL-backed ledger must give the same answer to every
//! sequence of transfer sets (the property test in `cloud/tests/ledger_model_props.rs` drives
//! this model; the SQL ledger's tests replay the same sequences against both). It keeps every
//! posting, so [`Ledger::check_invariants`] can recompute every balance from scratch.
//!
//! Apply is all or nothing: a set is checked for a replay, evaluated against the current
//! state, and only then committed. A refused set changes nothing and records no key, so the
//! caller may plan it again on fresh balances under the same key.

use std::collections::BTreeMap;

use jiff::Timestamp;
use voltline_protocol::Money;

use super::account::{Account, AccountPolicy, BalanceField, LedgerAccountId};
use super::error::LedgerError;
use super::rules::{
    check_replay, evaluate, LedgerView, PendingStatus, PendingTransfer, Posting, Replay,
};
use super::transfer::{IdempotencyKey, TransferId, TransferSet};

/// The result of applying a set: the first result for its key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Applied {
    /// The order in which the ledger first applied the set (1, 2, 3, …).
    pub sequence: u64,
    /// The set as first applied.
    pub set: TransferSet,
    /// The ids of its legs, in order.
    pub transfer_ids: Vec<TransferId>,
    /// True when this call was a replay of an earlier, identical set that changed nothing.
    pub replay: bool,
}

/// The in-memory double-entry ledger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    accounts: BTreeMap<LedgerAccountId, Account>,
    pendings: BTreeMap<TransferId, PendingTransfer>,
    applied: BTreeMap<IdempotencyKey, (u64, TransferSet)>,
    journal: Vec<Posting>,
}

impl Default for Ledger {
    fn default() -> Self {
        Ledger::new()
    }
}

impl LedgerView for Ledger {
    fn account(&self, id: &LedgerAccountId) -> Option<Account> {
        self.accounts.get(id).cloned()
    }
    fn pending(&self, id: &TransferId) -> Option<PendingTransfer> {
        self.pendings.get(id).cloned()
    }
}

impl Ledger {
    /// A ledger with the platform's own accounts open (session clearing, platform revenue,
    /// V2G payouts). Wallets, receivables, payables and provider clearing accounts are opened
    /// with [`Ledger::open_account`].
    pub fn new() -> Ledger {
        let mut ledger = Ledger {
            accounts: BTreeMap::new(),
            pendings: BTreeMap::new(),
            applied: BTreeMap::new(),
            journal: Vec::new(),
        };
        for id in [
            LedgerAccountId::SessionClearing,
            LedgerAccountId::PlatformRevenue,
            LedgerAccountId::V2gPayout,
        ] {
            let policy = AccountPolicy::default_for(&id);
            ledger
                .accounts
                .insert(id.clone(), Account::open(id, policy));
        }
        ledger
    }

    /// Opens an account. Opening it again with the same policy does nothing; with another
    /// policy it is an error.
    pub fn open_account(
        &mut self,
        id: LedgerAccountId,
        policy: AccountPolicy,
    ) -> Result<(), LedgerError> {
        match self.accounts.get(&id) {
            Some(a) if a.policy == policy => Ok(()),
            Some(_) => Err(LedgerError::AccountPolicyConflict { account: id }),
            None => {
                self.accounts.insert(id.clone(), Account::open(id, policy));
                Ok(())
            }
        }
    }

    /// An account, if open.
    pub fn account(&self, id: &LedgerAccountId) -> Option<&Account> {
        self.accounts.get(id)
    }

    /// Every open account, in id order.
    pub fn accounts(&self) -> impl Iterator<Item = &Account> {
        self.accounts.values()
    }

    /// A pending transfer, open or closed.
    pub fn pending(&self, id: &TransferId) -> Option<&PendingTransfer> {
        self.pendings.get(id)
    }

    /// Open holds whose expiry is at or before `now`, for a sweeper to void.
    pub fn expired_holds(&self, now: Timestamp) -> Vec<&PendingTransfer> {
        self.pendings
            .values()
            .filter(|p| p.status == PendingStatus::Open && p.expires_at.is_some_and(|e| e <= now))
            .collect()
    }

    /// The first result for `key`, if a set was applied under it.
    pub fn lookup(&self, key: &IdempotencyKey) -> Option<Applied> {
        self.applied.get(key).map(|(sequence, set)| Applied {
            sequence: *sequence,
            transfer_ids: (0..set.legs.len()).map(|i| set.transfer_id(i)).collect(),
            set: set.clone(),
            replay: true,
        })
    }

    /// How many sets (keys) have been applied.
    pub fn applied_count(&self) -> usize {
        self.applied.len()
    }

    /// Every posting, in the order applied.
    pub fn journal(&self) -> &[Posting] {
        &self.journal
    }

    /// Applies a set atomically. A set whose key was applied before with the same content
    /// returns the first result marked as a replay; with other content it is refused with
    /// [`LedgerError::IdempotencyConflict`]. Any refusal leaves the ledger unchanged.
    pub fn apply(&mut self, set: TransferSet) -> Result<Applied, LedgerError> {
        let stored = self.applied.get(&set.key).map(|(_, s)| s);
        if check_replay(stored, &set)? == Replay::Replay {
            return Ok(self.lookup(&set.key).expect("replayed key is stored"));
        }
        let ev = evaluate(&set, self)?;
        for (id, account) in ev.accounts {
            if let Some(floor) = account.policy.lower_limit {
                assert!(
                    account.available() >= floor,
                    "{id} below its limit after evaluate"
                );
            }
            self.accounts.insert(id, account);
        }
        self.pendings.extend(ev.pendings);
        self.journal.extend(ev.postings);
        let sequence = self.applied.len() as u64 + 1;
        let transfer_ids = (0..set.legs.len()).map(|i| set.transfer_id(i)).collect();
        self.applied
            .insert(set.key.clone(), (sequence, set.clone()));
        debug_assert_eq!(self.check_invariants(), Ok(()));
        Ok(Applied {
            sequence,
            set,
            transfer_ids,
            replay: false,
        })
    }

    /// Recomputes everything from the journal and reports the first broken invariant:
    /// debits equal credits (posted and pending); each of an account's four sums equals the
    /// sum of its postings; no account's available balance is below its lower limit; each
    /// account's pending sums equal its open holds; no hold was posted for more than it held;
    /// every posting belongs to an applied key.
    pub fn check_invariants(&self) -> Result<(), String> {
        let total =
            |f: BalanceField| -> Money { self.accounts.values().map(|a| a.balance.get(f)).sum() };
        if total(BalanceField::DebitsPosted) != total(BalanceField::CreditsPosted) {
            return Err("posted debits differ from posted credits".into());
        }
        if total(BalanceField::DebitsPending) != total(BalanceField::CreditsPending) {
            return Err("pending debits differ from pending credits".into());
        }
        let mut sums: BTreeMap<(&LedgerAccountId, BalanceField), Money> = BTreeMap::new();
        for p in &self.journal {
            if !self.accounts.contains_key(&p.account) {
                return Err(format!("a posting names {}, which is not open", p.account));
            }
            if !self.applied.contains_key(&p.transfer.key) {
                return Err(format!("posting of {} has no applied key", p.transfer));
            }
            *sums.entry((&p.account, p.field)).or_default() += p.delta;
        }
        let mut open: BTreeMap<(&LedgerAccountId, BalanceField), Money> = BTreeMap::new();
        for p in self.pendings.values() {
            match p.status {
                PendingStatus::Open => {
                    *open
                        .entry((&p.debit, BalanceField::DebitsPending))
                        .or_default() += p.amount;
                    *open
                        .entry((&p.credit, BalanceField::CreditsPending))
                        .or_default() += p.amount;
                }
                PendingStatus::Posted { amount } if amount > p.amount || amount <= Money::ZERO => {
                    return Err(format!("{} posted {amount} of {}", p.id, p.amount));
                }
                _ => {}
            }
        }
        for a in self.accounts.values() {
            for f in BalanceField::ALL {
                let from_journal = sums.get(&(&a.id, f)).copied().unwrap_or_default();
                if a.balance.get(f) != from_journal {
                    return Err(format!(
                        "{} {f:?} is {} but its postings sum to {from_journal}",
                        a.id,
                        a.balance.get(f)
                    ));
                }
            }
            for f in [BalanceField::DebitsPending, BalanceField::CreditsPending] {
                let holds = open.get(&(&a.id, f)).copied().unwrap_or_default();
                if a.balance.get(f) != holds {
                    return Err(format!(
                        "{} {f:?} is {} but its open holds sum to {holds}",
                        a.id,
                        a.balance.get(f)
                    ));
                }
            }
            if let Some(limit) = a.policy.lower_limit {
                if a.available() < limit {
                    return Err(format!(
                        "{} is at {}, below its limit {limit}",
                        a.id,
                        a.available()
                    ));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "memory_tests.rs"]
mod tests;
