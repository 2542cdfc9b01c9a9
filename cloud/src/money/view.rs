//! [`Overlay`]: the [`LedgerView`] a batch evaluates against — the rows the batch read from
//! the database (with the version each was read at), updated by every set the batch applied
//! so far. At commit it says which accounts and holds to write.

use std::collections::BTreeMap;

use crate::ledger::{
    Account, Evaluation, LedgerAccountId, LedgerView, PendingTransfer, TransferId,
};

/// An account as read, its version then, and whether the batch changed it.
#[derive(Debug, Clone)]
pub struct Row {
    pub account: Account,
    pub version: i64,
    pub dirty: bool,
}

/// A hold as this batch sees it; `stored` says whether it exists in the database already.
#[derive(Debug, Clone)]
pub struct PendingRow {
    pub pending: PendingTransfer,
    pub stored: bool,
    pub dirty: bool,
}

/// The batch's view of the ledger.
#[derive(Debug, Default)]
pub struct Overlay {
    pub accounts: BTreeMap<LedgerAccountId, Row>,
    pub pendings: BTreeMap<TransferId, PendingRow>,
    /// Account ids looked up and found missing in the database.
    pub missing_accounts: std::collections::BTreeSet<LedgerAccountId>,
    /// Hold ids looked up and found missing in the database.
    pub missing_pendings: std::collections::BTreeSet<TransferId>,
}

impl LedgerView for Overlay {
    fn account(&self, id: &LedgerAccountId) -> Option<Account> {
        self.accounts.get(id).map(|r| r.account.clone())
    }
    fn pending(&self, id: &TransferId) -> Option<PendingTransfer> {
        self.pendings.get(id).map(|p| p.pending.clone())
    }
}

impl Overlay {
    /// Whether `id` is neither loaded nor known to be missing (worth a database read).
    pub fn unknown_account(&self, id: &LedgerAccountId) -> bool {
        !self.accounts.contains_key(id) && !self.missing_accounts.contains(id)
    }

    /// Whether hold `id` is neither loaded nor known to be missing.
    pub fn unknown_pending(&self, id: &TransferId) -> bool {
        !self.pendings.contains_key(id) && !self.missing_pendings.contains(id)
    }

    /// Folds an accepted evaluation in: later sets of the batch see its balances.
    pub fn absorb(&mut self, ev: &Evaluation) {
        for (id, account) in &ev.accounts {
            let row = self
                .accounts
                .get_mut(id)
                .expect("an evaluated account was read into the overlay");
            row.account = account.clone();
            row.dirty = true;
        }
        for (id, p) in &ev.pendings {
            let stored = self.pendings.get(id).is_some_and(|r| r.stored);
            self.pendings.insert(
                id.clone(),
                PendingRow {
                    pending: p.clone(),
                    stored,
                    dirty: true,
                },
            );
        }
    }
}
