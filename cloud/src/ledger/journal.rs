//! The journal as it is stored: one [`JournalLine`] per (transfer set, account), holding the
//! set's net change to each of the account's four sums.
//!
//! [`evaluate`](super::evaluate) yields a [`Posting`] per change (about twelve for a
//! settlement: a posted hold moves both the pending and the posted sums of both its
//! accounts). A set touches far fewer accounts (four for a settlement), and the journal's
//! invariant (each sum equals the sum of its postings) holds just as well per line, so the
//! SQL ledger stores lines: a third of the rows. A field a set did not touch is `None`; a
//! field it moved and moved back is `Some(0)`. Which leg made a change is in the set itself
//! (the journal keeps the set's key).

use voltline_protocol::Money;

use super::account::{BalanceField, LedgerAccountId};
use super::rules::Posting;
use super::transfer::IdempotencyKey;

/// A set's net change to one account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JournalLine {
    pub key: IdempotencyKey,
    pub account: LedgerAccountId,
    /// Net deltas, in [`BalanceField::ALL`] order.
    pub deltas: [Option<Money>; 4],
}

impl JournalLine {
    /// The net change to `field`, if the set touched it.
    pub fn delta(&self, field: BalanceField) -> Option<Money> {
        self.deltas[field_index(field)]
    }

    /// The change to the posted sums as the account's holder sees it: credits minus debits.
    pub fn posted_change(&self) -> Money {
        self.delta(BalanceField::CreditsPosted)
            .unwrap_or(Money::ZERO)
            - self
                .delta(BalanceField::DebitsPosted)
                .unwrap_or(Money::ZERO)
    }

    /// Whether the line moved a posted sum (a statement shows only those).
    pub fn touches_posted(&self) -> bool {
        self.delta(BalanceField::CreditsPosted).is_some()
            || self.delta(BalanceField::DebitsPosted).is_some()
    }

    /// The line as postings, one per touched field, in [`BalanceField::ALL`] order.
    pub fn postings(&self) -> impl Iterator<Item = (BalanceField, Money)> + '_ {
        BalanceField::ALL
            .into_iter()
            .zip(self.deltas)
            .filter_map(|(f, d)| d.map(|d| (f, d)))
    }
}

fn field_index(field: BalanceField) -> usize {
    match field {
        BalanceField::DebitsPending => 0,
        BalanceField::DebitsPosted => 1,
        BalanceField::CreditsPending => 2,
        BalanceField::CreditsPosted => 3,
    }
}

/// Folds the postings of one evaluation into lines, in the order each (set, account) first
/// appears. Postings of several sets may be passed together: lines never mix sets.
pub fn journal_lines(postings: &[Posting]) -> Vec<JournalLine> {
    let mut lines: Vec<JournalLine> = Vec::new();
    for p in postings {
        // A set touches a handful of accounts: a scan of the current set's lines beats a map.
        let found = lines
            .iter_mut()
            .rev()
            .take_while(|l| l.key == p.transfer.key)
            .find(|l| l.account == p.account);
        let line = match found {
            Some(line) => line,
            None => {
                lines.push(JournalLine {
                    key: p.transfer.key.clone(),
                    account: p.account.clone(),
                    deltas: [None; 4],
                });
                lines.last_mut().expect("just pushed")
            }
        };
        let slot = &mut line.deltas[field_index(p.field)];
        *slot = Some(slot.unwrap_or(Money::ZERO) + p.delta);
    }
    lines
}

#[cfg(test)]
#[path = "journal_tests.rs"]
mod tests;
