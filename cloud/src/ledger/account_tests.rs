//! Unit tests of `account.rs`: account ids, balances, floors and credit limits.

use super::*;

fn wallet() -> LedgerAccountId {
    LedgerAccountId::DriverWallet("acc-1".parse().unwrap())
}

#[test]
fn account_ids_round_trip_through_text() {
    let ids = [
        wallet(),
        LedgerAccountId::Receivable("acc-1".parse().unwrap()),
        LedgerAccountId::OperatorPayable("op-1".parse().unwrap()),
        LedgerAccountId::ProviderClearing(ProviderId::new("alipay").unwrap()),
        LedgerAccountId::SessionClearing,
        LedgerAccountId::PlatformRevenue,
        LedgerAccountId::V2gPayout,
    ];
    for id in ids {
        assert_eq!(id.to_string().parse::<LedgerAccountId>().unwrap(), id);
    }
    assert!("wallet".parse::<LedgerAccountId>().is_err());
    assert!("platform_revenue:x".parse::<LedgerAccountId>().is_err());
    assert!("provider:Ali Pay".parse::<LedgerAccountId>().is_err());
}

#[test]
fn available_subtracts_holds_against_the_normal_side() {
    let b = Balance {
        debits_pending: Money::from_cents(300),
        debits_posted: Money::from_cents(200),
        credits_pending: Money::from_cents(50),
        credits_posted: Money::from_cents(1_000),
    };
    assert_eq!(b.posted(Side::Credit), Money::from_cents(800));
    assert_eq!(b.available(Side::Credit), Money::from_cents(500));
    assert_eq!(b.available(Side::Debit), Money::from_cents(-850));
}

#[test]
fn holds_and_refunds_never_draw_on_a_credit_line() {
    let p = AccountPolicy::wallet(Money::from_cents(5_000)).unwrap();
    assert_eq!(p.floor(true), Some(Money::from_cents(-5_000)));
    assert_eq!(p.floor(false), Some(Money::ZERO));
    assert_eq!(p.credit_limit(), Some(Money::from_cents(5_000)));
    let clearing = AccountPolicy::default_for(&LedgerAccountId::ProviderClearing(
        ProviderId::new("alipay").unwrap(),
    ));
    assert_eq!(clearing.floor(false), None);
}

#[test]
fn credit_limit_must_be_whole_fen_and_bounded() {
    assert!(AccountPolicy::wallet(Money::from_scaled(1, 3)).is_err());
    assert!(AccountPolicy::wallet(Money::from_cents(-1)).is_err());
    assert!(AccountPolicy::wallet(Money::from_cents(limits::MAX_CREDIT_LIMIT_CENTS + 1)).is_err());
    assert!(AccountPolicy::wallet(Money::ZERO).is_ok());
}
