//! Unit tests of `memory.rs` and the rules it applies: two-phase transfers, atomic sets,
//! idempotency and the invariant check, one per rule and per error.

use jiff::Timestamp;

use super::*;
use crate::ledger::transfer::{Memo, Reason, Transfer, TransferKind};
use crate::ledger::ProviderId;

fn cents(c: i64) -> Money {
    Money::from_cents(c)
}

fn wallet() -> LedgerAccountId {
    LedgerAccountId::DriverWallet("acc-1".parse().unwrap())
}

fn provider() -> LedgerAccountId {
    LedgerAccountId::ProviderClearing(ProviderId::new("alipay").unwrap())
}

fn key(k: &str) -> IdempotencyKey {
    IdempotencyKey::new(k).unwrap()
}

fn set(k: &str, legs: Vec<Transfer>) -> TransferSet {
    TransferSet {
        key: key(k),
        legs,
        memo: Memo::new(Reason::Adjustment),
    }
}

fn leg(debit: LedgerAccountId, credit: LedgerAccountId, c: i64, kind: TransferKind) -> Transfer {
    Transfer {
        kind,
        ..Transfer::single(debit, credit, cents(c))
    }
}

fn pending() -> TransferKind {
    TransferKind::Pending { expires_at: None }
}

/// A ledger whose wallet holds 100.00, with a 40.00 hold `h#0` to session clearing.
fn held() -> Ledger {
    let mut l = Ledger::new();
    l.open_account(wallet(), AccountPolicy::default_for(&wallet()))
        .unwrap();
    l.open_account(provider(), AccountPolicy::default_for(&provider()))
        .unwrap();
    l.apply(set(
        "t",
        vec![leg(provider(), wallet(), 10_000, TransferKind::Single)],
    ))
    .unwrap();
    l.apply(set(
        "h",
        vec![leg(
            wallet(),
            LedgerAccountId::SessionClearing,
            4_000,
            pending(),
        )],
    ))
    .unwrap();
    l
}

fn hold_id() -> TransferId {
    TransferId::new(key("h"), 0)
}

fn post(c: i64) -> Transfer {
    leg(
        wallet(),
        LedgerAccountId::SessionClearing,
        c,
        TransferKind::Post { pending: hold_id() },
    )
}

fn void(c: i64) -> Transfer {
    leg(
        wallet(),
        LedgerAccountId::SessionClearing,
        c,
        TransferKind::Void { pending: hold_id() },
    )
}

#[test]
fn a_hold_counts_against_available_but_moves_nothing() {
    let l = held();
    let w = l.account(&wallet()).unwrap();
    assert_eq!(
        (w.posted(), w.available(), w.held()),
        (cents(10_000), cents(6_000), cents(4_000))
    );
    let c = l.account(&LedgerAccountId::SessionClearing).unwrap();
    assert_eq!((c.posted(), c.available()), (Money::ZERO, Money::ZERO));
}

#[test]
fn a_partial_post_moves_the_amount_and_releases_the_rest() {
    let mut l = held();
    l.apply(set("p", vec![post(2_500)])).unwrap();
    let w = l.account(&wallet()).unwrap();
    assert_eq!(
        (w.posted(), w.available(), w.held()),
        (cents(7_500), cents(7_500), Money::ZERO)
    );
    assert_eq!(
        l.pending(&hold_id()).unwrap().status,
        PendingStatus::Posted {
            amount: cents(2_500)
        }
    );
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn a_post_is_at_most_the_pending_amount() {
    let mut l = held();
    let e = l.apply(set("p", vec![post(4_001)])).unwrap_err();
    assert!(matches!(e, LedgerError::PostExceedsPending { .. }), "{e}");
}

#[test]
fn a_pending_transfer_is_posted_or_voided_at_most_once() {
    let mut l = held();
    l.apply(set("p", vec![post(4_000)])).unwrap();
    for (k, t) in [("p2", post(1)), ("v", void(4_000))] {
        assert!(matches!(
            l.apply(set(k, vec![t])),
            Err(LedgerError::PendingClosed { .. })
        ));
    }
    let mut l = held();
    assert!(matches!(
        l.apply(set("pv", vec![void(4_000), post(1)])),
        Err(LedgerError::PendingClosed { .. })
    ));
}

#[test]
fn a_void_or_post_must_match_the_hold() {
    let mut l = held();
    assert!(matches!(
        l.apply(set("v", vec![void(3_999)])),
        Err(LedgerError::PendingMismatch { .. })
    ));
    let other = leg(
        provider(),
        LedgerAccountId::SessionClearing,
        100,
        TransferKind::Post { pending: hold_id() },
    );
    assert!(matches!(
        l.apply(set("p", vec![other])),
        Err(LedgerError::PendingMismatch { .. })
    ));
    let missing = TransferKind::Void {
        pending: TransferId::new(key("nope"), 0),
    };
    let e = l
        .apply(set(
            "v",
            vec![leg(wallet(), LedgerAccountId::SessionClearing, 1, missing)],
        ))
        .unwrap_err();
    assert!(matches!(e, LedgerError::PendingNotFound(_)));
    assert_eq!(e.http_status(), 404);
}

#[test]
fn a_set_applies_all_legs_or_none() {
    let mut l = held();
    let before = l.clone();
    // The first leg is fine on its own; the second overdraws the wallet.
    let legs = vec![
        leg(
            wallet(),
            LedgerAccountId::PlatformRevenue,
            1_000,
            TransferKind::Single,
        ),
        leg(
            wallet(),
            LedgerAccountId::PlatformRevenue,
            5_001,
            TransferKind::Single,
        ),
    ];
    let e = l.apply(set("x", legs)).unwrap_err();
    assert!(matches!(e, LedgerError::InsufficientFunds { .. }));
    assert_eq!(l, before);
    assert!(l.lookup(&key("x")).is_none());
}

#[test]
fn non_wallet_accounts_refuse_to_go_below_their_limit() {
    let mut l = held();
    let e = l
        .apply(set(
            "x",
            vec![leg(
                LedgerAccountId::PlatformRevenue,
                wallet(),
                1,
                TransferKind::Single,
            )],
        ))
        .unwrap_err();
    assert!(matches!(e, LedgerError::LimitExceeded { .. }), "{e}");
}

#[test]
fn unbounded_accounts_may_go_negative() {
    // Provider clearing is debit-normal: the top-up raised it to 100.00; crediting it with
    // 150.00 takes it below zero, which an unbounded account allows.
    let mut l = held();
    let t = leg(
        LedgerAccountId::V2gPayout,
        provider(),
        15_000,
        TransferKind::Single,
    );
    l.apply(set("x", vec![t])).unwrap();
    assert_eq!(l.account(&provider()).unwrap().posted(), cents(-5_000));
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn unknown_accounts_are_refused() {
    let mut l = Ledger::new();
    let e = l
        .apply(set(
            "x",
            vec![leg(provider(), wallet(), 1, TransferKind::Single)],
        ))
        .unwrap_err();
    assert!(matches!(e, LedgerError::UnknownAccount(_)));
}

#[test]
fn a_replay_returns_the_first_result_and_changes_nothing() {
    let mut l = held();
    let s = set(
        "t2",
        vec![leg(provider(), wallet(), 500, TransferKind::Single)],
    );
    let first = l.apply(s.clone()).unwrap();
    let snapshot = l.clone();
    let again = l.apply(s).unwrap();
    assert!(again.replay);
    assert_eq!(
        (again.sequence, &again.set, &again.transfer_ids),
        (first.sequence, &first.set, &first.transfer_ids)
    );
    assert_eq!(l, snapshot);
}

#[test]
fn a_key_reused_with_other_content_is_a_conflict() {
    let mut l = held();
    let snapshot = l.clone();
    let mut s = set(
        "t",
        vec![leg(provider(), wallet(), 10_000, TransferKind::Single)],
    );
    s.memo = Memo::new(Reason::TopUp);
    let e = l.apply(s).unwrap_err();
    assert_eq!(e, LedgerError::IdempotencyConflict { key: key("t") });
    assert_eq!(l, snapshot);
}

#[test]
fn accounts_open_once_with_one_policy() {
    let mut l = held();
    assert!(l
        .open_account(wallet(), AccountPolicy::default_for(&wallet()))
        .is_ok());
    let e = l
        .open_account(wallet(), AccountPolicy::wallet(cents(100)).unwrap())
        .unwrap_err();
    assert!(matches!(e, LedgerError::AccountPolicyConflict { .. }));
}

#[test]
fn expired_holds_are_listed_for_the_sweeper_never_voided_by_the_ledger() {
    let mut l = held();
    let at: Timestamp = "2026-11-25T05:00:00Z".parse().unwrap();
    let kind = TransferKind::Pending {
        expires_at: Some(at),
    };
    l.apply(set(
        "h2",
        vec![leg(wallet(), LedgerAccountId::SessionClearing, 100, kind)],
    ))
    .unwrap();
    assert!(l
        .expired_holds(at.checked_sub(jiff::SignedDuration::from_secs(1)).unwrap())
        .is_empty());
    let due = l.expired_holds(at);
    assert_eq!(due.len(), 1);
    assert_eq!(due[0].id, TransferId::new(key("h2"), 0));
    assert_eq!(l.account(&wallet()).unwrap().held(), cents(4_100));
}

#[test]
fn the_invariant_check_catches_a_balance_that_is_not_its_postings() {
    let mut l = held();
    assert_eq!(l.check_invariants(), Ok(()));
    l.accounts
        .get_mut(&wallet())
        .unwrap()
        .balance
        .credits_posted += cents(1);
    assert!(l.check_invariants().is_err());
    let mut l = held();
    l.journal.pop();
    assert!(l.check_invariants().is_err());
}
