//! Unit tests of `journal.rs`: folding postings into lines keeps every sum, and a settlement
//! on the reference ledger is stored as one line per account it touched.

use std::collections::BTreeMap;

use proptest::prelude::*;

use super::*;
use voltline_protocol::domain::AccountId;

use crate::ledger::TransferId;

fn key(n: u8) -> IdempotencyKey {
    IdempotencyKey::new(format!("test:set-{n}")).unwrap()
}

fn account(n: u8) -> LedgerAccountId {
    LedgerAccountId::DriverWallet(AccountId::new(format!("acc-{n}")).unwrap())
}

fn posting(set: u8, leg: u8, acc: u8, field: usize, cents: i64) -> Posting {
    Posting {
        transfer: TransferId::new(key(set), leg),
        account: account(acc),
        field: BalanceField::ALL[field],
        delta: Money::from_cents(cents),
    }
}

#[test]
fn a_set_becomes_one_line_per_account_in_first_seen_order() {
    let postings = [
        posting(1, 0, 2, 0, 500),
        posting(1, 0, 1, 2, 500),
        posting(1, 1, 2, 0, -500),
        posting(1, 1, 2, 1, 300),
        posting(2, 0, 1, 3, 100),
    ];
    let lines = journal_lines(&postings);
    assert_eq!(lines.len(), 3);
    assert_eq!((&lines[0].key, &lines[0].account), (&key(1), &account(2)));
    // Moved and moved back is a zero, not an untouched field.
    assert_eq!(
        lines[0].deltas,
        [Some(Money::ZERO), Some(Money::from_cents(300)), None, None]
    );
    assert_eq!(lines[0].posted_change(), Money::from_cents(-300));
    assert!(lines[0].touches_posted());
    assert_eq!((&lines[1].key, &lines[1].account), (&key(1), &account(1)));
    assert!(!lines[1].touches_posted());
    assert_eq!((&lines[2].key, &lines[2].account), (&key(2), &account(1)));
    assert_eq!(lines[2].posted_change(), Money::from_cents(100));
    assert_eq!(
        lines[0].postings().collect::<Vec<_>>(),
        vec![
            (BalanceField::DebitsPending, Money::ZERO),
            (BalanceField::DebitsPosted, Money::from_cents(300)),
        ]
    );
    assert!(journal_lines(&[]).is_empty());
}

proptest! {
    #[test]
    fn lines_keep_every_sum_and_never_mix_sets(
        raw in prop::collection::vec((0u8..6, 0u8..3, 0u8..4, 0usize..4, -10_000i64..10_000), 0..80)
    ) {
        // Postings of one set are contiguous, as an evaluation yields them.
        let mut raw = raw;
        raw.sort_by_key(|r| r.0);
        let postings: Vec<Posting> =
            raw.iter().map(|&(s, l, a, f, c)| posting(s, l, a, f, c)).collect();
        let lines = journal_lines(&postings);
        let mut want: BTreeMap<(IdempotencyKey, LedgerAccountId, BalanceField), Money> =
            BTreeMap::new();
        for p in &postings {
            *want.entry((p.transfer.key.clone(), p.account.clone(), p.field)).or_default() += p.delta;
        }
        let mut got = BTreeMap::new();
        let mut seen = std::collections::BTreeSet::new();
        for line in &lines {
            prop_assert!(seen.insert((line.key.clone(), line.account.clone())), "one line per (set, account)");
            for (field, delta) in line.postings() {
                got.insert((line.key.clone(), line.account.clone(), field), delta);
            }
        }
        prop_assert_eq!(got, want);
        // First-seen order: the lines' (set, account) pairs appear as the postings first name them.
        let mut order = Vec::new();
        for p in &postings {
            let pair = (p.transfer.key.clone(), p.account.clone());
            if !order.contains(&pair) {
                order.push(pair);
            }
        }
        let line_order: Vec<_> = lines.iter().map(|l| (l.key.clone(), l.account.clone())).collect();
        prop_assert_eq!(line_order, order);
    }
}
