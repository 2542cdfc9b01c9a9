//! Unit tests of `session.rs`: holds, their release, top-ups and refunds, one per rule and
//! per error, applied to the in-memory ledger where the rule is the ledger's.

use super::*;
use crate::ledger::{AccountPolicy, Ledger, PendingStatus};

fn cents(c: i64) -> Money {
    Money::from_cents(c)
}

fn alipay() -> ProviderId {
    ProviderId::new("alipay").unwrap()
}

fn acc() -> AccountId {
    "acc-1".parse().unwrap()
}

fn wallet() -> LedgerAccountId {
    LedgerAccountId::DriverWallet(acc())
}

/// A ledger with one wallet (credit line `credit` fen) topped up with `balance` fen.
fn ledger_with(balance: i64, credit: i64) -> Ledger {
    let mut l = Ledger::new();
    l.open_account(wallet(), AccountPolicy::wallet(cents(credit)).unwrap())
        .unwrap();
    let clearing = LedgerAccountId::ProviderClearing(alipay());
    l.open_account(clearing.clone(), AccountPolicy::default_for(&clearing))
        .unwrap();
    if balance > 0 {
        let r = ExternalRef::new("seed").unwrap();
        l.apply(top_up(&alipay(), &r, &acc(), cents(balance)).unwrap())
            .unwrap();
    }
    l
}

fn request(order: &str, requested: Option<i64>, available: Money) -> HoldRequest {
    HoldRequest {
        order: order.parse().unwrap(),
        account: acc(),
        requested: requested.map(cents),
        default_hold: cents(5_000),
        minimum_hold: cents(100),
        available,
        expires_at: None,
    }
}

#[test]
fn hold_is_the_requested_amount_when_it_is_available() {
    let (set, hold) = place_hold(&request("o-1", Some(3_000), cents(10_000))).unwrap();
    assert_eq!(hold.amount, cents(3_000));
    assert_eq!(set.key.as_str(), "hold:o-1");
    assert_eq!(hold.pending, set.transfer_id(0));
    assert!(matches!(set.legs[0].kind, TransferKind::Pending { .. }));
    assert!(!set.legs[0].credit_allowed);
}

#[test]
fn hold_defaults_to_the_configured_amount() {
    let (_, hold) = place_hold(&request("o-1", None, cents(10_000))).unwrap();
    assert_eq!(hold.amount, cents(5_000));
}

#[test]
fn hold_is_never_more_than_the_available_balance() {
    let (_, hold) = place_hold(&request("o-1", Some(9_000), cents(2_500))).unwrap();
    assert_eq!(hold.amount, cents(2_500));
}

#[test]
fn no_funds_is_a_402_and_plans_nothing() {
    for available in [cents(0), cents(-300), cents(99)] {
        let e = place_hold(&request("o-1", None, available)).unwrap_err();
        assert_eq!(e.http_status(), 402, "{e}");
        match e {
            LedgerError::InsufficientFunds {
                available: shown,
                requested,
                ..
            } => {
                assert_eq!(shown, available.max(Money::ZERO));
                assert_eq!(requested, cents(5_000));
            }
            other => panic!("{other:?}"),
        }
    }
}

#[test]
fn invalid_hold_amounts_are_refused() {
    assert!(matches!(
        place_hold(&request("o-1", Some(50), cents(10_000))),
        Err(LedgerError::BadInput { .. })
    ));
    let mut r = request("o-1", None, cents(10_000));
    r.requested = Some(Money::from_scaled(12_345, 3));
    assert!(matches!(place_hold(&r), Err(LedgerError::BadInput { .. })));
    r.requested = Some(cents(-100));
    assert!(matches!(place_hold(&r), Err(LedgerError::BadInput { .. })));
}

#[test]
fn concurrent_starts_cannot_together_hold_more_than_the_balance() {
    // Both starts read the same balance, then apply one after the other; the wallet has a
    // credit line, which holds must not use.
    let mut l = ledger_with(10_000, 5_000);
    let available = l.account(&wallet()).unwrap().available();
    let (a, _) = place_hold(&request("o-1", Some(8_000), available)).unwrap();
    let (b, _) = place_hold(&request("o-2", Some(8_000), available)).unwrap();
    l.apply(a).unwrap();
    let e = l.apply(b).unwrap_err();
    assert_eq!(
        e,
        LedgerError::InsufficientFunds {
            account: wallet(),
            available: cents(2_000),
            requested: cents(8_000),
        }
    );
    // Planned again on the fresh balance, under the same key, it holds what is left.
    let available = l.account(&wallet()).unwrap().available();
    let (b, hold) = place_hold(&request("o-2", Some(8_000), available)).unwrap();
    l.apply(b).unwrap();
    assert_eq!(hold.amount, cents(2_000));
    let w = l.account(&wallet()).unwrap();
    assert_eq!(w.held(), cents(10_000));
    assert_eq!(w.available(), Money::ZERO);
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn a_failed_start_voids_the_whole_hold_once() {
    let mut l = ledger_with(10_000, 0);
    let (set, hold) = place_hold(&request("o-1", None, cents(10_000))).unwrap();
    l.apply(set).unwrap();
    assert_eq!(l.account(&wallet()).unwrap().available(), cents(5_000));
    let void = void_hold(&hold);
    assert_eq!(void.key.as_str(), "void:o-1");
    let first = l.apply(void.clone()).unwrap();
    assert_eq!(l.account(&wallet()).unwrap().available(), cents(10_000));
    assert_eq!(
        l.pending(&hold.pending).unwrap().status,
        PendingStatus::Voided
    );
    let again = l.apply(void).unwrap();
    assert!(again.replay);
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(l.account(&wallet()).unwrap().available(), cents(10_000));
}

#[test]
fn top_up_applies_once_per_provider_reference() {
    let mut l = ledger_with(0, 0);
    let r = ExternalRef::new("pay-42").unwrap();
    let set = top_up(&alipay(), &r, &acc(), cents(2_000)).unwrap();
    assert_eq!(set.key.as_str(), "topup:alipay:pay-42");
    assert!(!l.apply(set.clone()).unwrap().replay);
    assert!(l.apply(set).unwrap().replay);
    assert_eq!(l.account(&wallet()).unwrap().posted(), cents(2_000));
    let other = top_up(&alipay(), &r, &acc(), cents(3_000)).unwrap();
    assert!(matches!(
        l.apply(other),
        Err(LedgerError::IdempotencyConflict { .. })
    ));
    assert_eq!(l.account(&wallet()).unwrap().posted(), cents(2_000));
}

#[test]
fn refund_is_never_more_than_refundable() {
    let r = ExternalRef::new("rf-1").unwrap();
    let e = refund(&alipay(), &r, &acc(), cents(501), cents(500)).unwrap_err();
    assert!(matches!(e, LedgerError::RefundExceedsRefundable { .. }));
    assert!(refund(&alipay(), &r, &acc(), cents(500), cents(500)).is_ok());
    assert!(refund(&alipay(), &r, &acc(), Money::ZERO, cents(500)).is_err());
}

#[test]
fn refund_never_draws_on_the_credit_line_or_on_held_funds() {
    let mut l = ledger_with(1_000, 5_000);
    let (set, _) = place_hold(&request("o-1", Some(600), cents(1_000))).unwrap();
    l.apply(set).unwrap();
    // A caller that over-states what is refundable is still stopped by the ledger.
    let r = ExternalRef::new("rf-1").unwrap();
    let too_much = refund(&alipay(), &r, &acc(), cents(500), cents(10_000)).unwrap();
    assert!(matches!(
        l.apply(too_much),
        Err(LedgerError::InsufficientFunds { .. })
    ));
    let ok = refund(&alipay(), &r, &acc(), cents(400), cents(400)).unwrap();
    l.apply(ok).unwrap();
    assert_eq!(l.account(&wallet()).unwrap().available(), Money::ZERO);
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn references_are_validated() {
    assert!(ExternalRef::new("").is_err());
    assert!(ExternalRef::new("a:b").is_err());
    assert!(ExternalRef::new("x".repeat(65)).is_err());
    let longest = ExternalRef::new("x".repeat(64)).unwrap();
    let provider = ProviderId::new("p".repeat(32)).unwrap();
    assert!(top_up(&provider, &longest, &acc(), cents(1)).is_ok());
}

#[test]
fn a_retried_start_looks_its_hold_up_instead_of_planning_again() {
    let mut l = ledger_with(10_000, 0);
    let (set, hold) = place_hold(&request("o-1", Some(8_000), cents(10_000))).unwrap();
    let first = l.apply(set).unwrap();
    // Planned again on the new balance, the hold comes out smaller: a different operation.
    let available = l.account(&wallet()).unwrap().available();
    let (again, _) = place_hold(&request("o-1", Some(8_000), available)).unwrap();
    assert!(matches!(
        l.apply(again.clone()),
        Err(LedgerError::IdempotencyConflict { .. })
    ));
    let found = l.lookup(&again.key).unwrap();
    assert_eq!(
        (found.sequence, found.set.legs[0].amount),
        (first.sequence, hold.amount)
    );
}
