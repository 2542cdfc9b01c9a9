//! [`audit`]: reads the whole ledger back and checks its invariants from the database alone —
//! for tests, benches and an operator's consistency check. It recomputes every account's four
//! sums from the journal (its lines expanded to one posting per touched sum), and replays every applied set, in sequence order, through
//! the in-memory reference [`Ledger`]: the SQL ledger must agree with it to the fen.

use std::collections::BTreeMap;

use voltline_protocol::Money;

use super::db::parse;
use super::funds::on_backend_pub as on_backend;
use super::MoneyError;
use crate::ledger::{
    Account, BalanceField, Ledger, LedgerAccountId, PendingStatus, PendingTransfer, TransferSet,
};
use crate::store::{Backend, Store};

/// The ledger as read back.
#[derive(Debug, Clone)]
pub struct Audit {
    pub accounts: BTreeMap<LedgerAccountId, (Account, i64)>,
    pub sets: Vec<(i64, TransferSet)>,
    pub pendings: Vec<PendingTransfer>,
    /// (account, field, delta, set key): the journal's lines, one entry per touched sum.
    pub postings: Vec<(LedgerAccountId, BalanceField, Money, String)>,
}

/// Reads everything (bounded by the size of the ledger: for tests, benches and audits).
pub async fn audit(store: &Store) -> Result<Audit, MoneyError> {
    let accounts = on_backend!(store, |conn, ops| ops::all_accounts(conn).await?);
    let sets = on_backend!(store, |conn, ops| ops::all_sets(conn).await?);
    let pendings = on_backend!(store, |conn, ops| ops::all_pendings(conn).await?);
    let raw = on_backend!(store, |conn, ops| ops::all_journal(conn).await?);
    let mut postings = Vec::with_capacity(raw.len() * 2);
    for (account, key, dp, dq, cp, cq) in raw {
        let account: LedgerAccountId = parse(&account, "ledger account id")?;
        for (field, delta) in BalanceField::ALL.into_iter().zip([dp, dq, cp, cq]) {
            if let Some(delta) = delta {
                postings.push((account.clone(), field, delta.0, key.clone()));
            }
        }
    }
    Ok(Audit {
        accounts: accounts
            .into_iter()
            .map(|(a, v)| (a.id.clone(), (a, v)))
            .collect(),
        sets,
        pendings,
        postings,
    })
}

impl Audit {
    /// Every invariant, or the first broken one: debits equal credits; each sum equals its
    /// postings; no account below its limit; pending sums equal open holds; every posting's
    /// key applied, every key once; and a replay of the sets through the reference model
    /// applies every one and ends with the same balances.
    pub fn check(&self) -> Result<(), String> {
        let mut sums: BTreeMap<(&LedgerAccountId, BalanceField), Money> = BTreeMap::new();
        let keys: std::collections::BTreeSet<&str> =
            self.sets.iter().map(|(_, s)| s.key.as_str()).collect();
        if keys.len() != self.sets.len() {
            return Err("an idempotency key was applied more than once".into());
        }
        for (account, field, delta, key) in &self.postings {
            if !keys.contains(key.as_str()) {
                return Err(format!("a posting of {key} has no applied set"));
            }
            *sums.entry((account, *field)).or_default() += *delta;
        }
        let mut open: BTreeMap<(&LedgerAccountId, BalanceField), Money> = BTreeMap::new();
        for p in self
            .pendings
            .iter()
            .filter(|p| p.status == PendingStatus::Open)
        {
            *open
                .entry((&p.debit, BalanceField::DebitsPending))
                .or_default() += p.amount;
            *open
                .entry((&p.credit, BalanceField::CreditsPending))
                .or_default() += p.amount;
        }
        let mut debits = Money::ZERO;
        let mut credits = Money::ZERO;
        for (id, (a, _)) in &self.accounts {
            for f in BalanceField::ALL {
                let journal = sums.get(&(id, f)).copied().unwrap_or_default();
                if a.balance.get(f) != journal {
                    return Err(format!(
                        "{id} {f:?} is {} but its postings sum to {journal}",
                        a.balance.get(f)
                    ));
                }
            }
            for f in [BalanceField::DebitsPending, BalanceField::CreditsPending] {
                let holds = open.get(&(id, f)).copied().unwrap_or_default();
                if a.balance.get(f) != holds {
                    return Err(format!(
                        "{id} {f:?} is {} but its open holds sum to {holds}",
                        a.balance.get(f)
                    ));
                }
            }
            if let Some(limit) = a.policy.lower_limit {
                if a.available() < limit {
                    return Err(format!(
                        "{id} is at {}, below its limit {limit}",
                        a.available()
                    ));
                }
            }
            debits += a.balance.debits_posted;
            credits += a.balance.credits_posted;
        }
        if debits != credits {
            return Err(format!(
                "posted debits {debits} differ from posted credits {credits}"
            ));
        }
        let model = self.replay()?;
        for (id, (a, _)) in &self.accounts {
            let m = model
                .account(id)
                .ok_or_else(|| format!("{id} missing in the model"))?;
            if m.balance != a.balance {
                return Err(format!(
                    "{id}: SQL {:?} but the reference model {:?}",
                    a.balance, m.balance
                ));
            }
        }
        Ok(())
    }

    /// The reference model after every applied set, in commit order.
    pub fn replay(&self) -> Result<Ledger, String> {
        let mut model = Ledger::new();
        for (id, (a, _)) in &self.accounts {
            model
                .open_account(id.clone(), a.policy)
                .map_err(|e| e.to_string())?;
        }
        for (seq, set) in &self.sets {
            model.apply(set.clone()).map_err(|e| {
                format!(
                    "set {seq} ({}) refused by the reference model: {e}",
                    set.key
                )
            })?;
        }
        Ok(model)
    }

    /// An account's available balance.
    pub fn available(&self, id: &LedgerAccountId) -> Option<Money> {
        self.accounts.get(id).map(|(a, _)| a.available())
    }
}
