//! Unit and property tests of `reverse.rs`: the legs of an export-only and a mixed session,
//! the refusals, and the plan applied to the in-memory ledger exactly once and balanced.

use proptest::prelude::*;
use voltline_protocol::Energy;

use super::*;
use crate::ledger::session::{top_up, ExternalRef};
use crate::ledger::{AccountPolicy, Ledger, ProviderId};

fn cents(c: i64) -> Money {
    Money::from_cents(c)
}

fn acc() -> AccountId {
    "acc-1".parse().unwrap()
}

fn op() -> OperatorId {
    "op-1".parse().unwrap()
}

fn wallet() -> LedgerAccountId {
    LedgerAccountId::DriverWallet(acc())
}

fn payable() -> LedgerAccountId {
    LedgerAccountId::OperatorPayable(op())
}

fn priced(version: u32, energy: i64, service: i64) -> CostBreakdown {
    CostBreakdown {
        tariff_version: TariffVersion(version),
        lines: vec![],
        total_energy: Energy::ZERO,
        energy_fee_exact: cents(energy),
        service_fee_exact: cents(service),
        energy_fee: cents(energy),
        service_fee: cents(service),
        total: cents(energy + service),
    }
}

fn record() -> RecordRef {
    RecordRef {
        pile: "32010600019236".parse().unwrap(),
        serial: "32010600019236012001061803423060".parse().unwrap(),
    }
}

fn input<'a>(
    export: &'a CostBreakdown,
    share: i64,
    import: Option<(&'a CostBreakdown, CostSplit)>,
    available: i64,
    credit: i64,
) -> ReverseInput<'a> {
    ReverseInput {
        record: record(),
        order: "ord-1".parse().unwrap(),
        account: acc(),
        operator: op(),
        export: ExportLine {
            value: export,
            tariff_version_at_start: TariffVersion(3),
            operator_share: cents(share),
        },
        import: import.map(|(cost, split)| ImportLine {
            cost,
            tariff_version_at_start: TariffVersion(7),
            split,
        }),
        wallet_available: cents(available),
        credit_limit: cents(credit),
    }
}

fn split(operator: i64, platform: i64) -> CostSplit {
    CostSplit {
        operator: cents(operator),
        platform_fee: cents(platform),
    }
}

/// A ledger with the wallet (holding `balance` fen, credit line `credit`) and the payable open.
fn ledger(balance: i64, credit: i64) -> Ledger {
    let mut l = Ledger::new();
    l.open_account(wallet(), AccountPolicy::wallet(cents(credit)).unwrap())
        .unwrap();
    l.open_account(payable(), AccountPolicy::default_for(&payable()))
        .unwrap();
    let provider = ProviderId::new("test").unwrap();
    l.open_account(
        LedgerAccountId::ProviderClearing(provider.clone()),
        AccountPolicy::default_for(&LedgerAccountId::ProviderClearing(provider.clone())),
    )
    .unwrap();
    l.open_account(
        LedgerAccountId::Receivable(acc()),
        AccountPolicy::default_for(&LedgerAccountId::Receivable(acc())),
    )
    .unwrap();
    if balance > 0 {
        let set = top_up(
            &provider,
            &ExternalRef::new("seed").unwrap(),
            &acc(),
            cents(balance),
        )
        .unwrap();
        l.apply(set).unwrap();
    }
    l
}

fn posted(l: &Ledger, id: &LedgerAccountId) -> Money {
    l.account(id).map_or(Money::ZERO, |a| a.posted())
}

#[test]
fn an_export_credits_the_driver_from_the_v2g_payout_and_pays_the_host_share_on_top() {
    let v = priced(3, 1_234, 0);
    let plan = plan_reverse(&input(&v, 123, None, 0, 0)).unwrap();
    assert_eq!(
        plan.set.key.as_str(),
        format!("v2g:{}:{}", record().pile, record().serial)
    );
    assert_eq!(plan.set.memo.reason, Reason::Settlement);
    let legs: Vec<_> = plan
        .set
        .legs
        .iter()
        .map(|l| (l.debit.clone(), l.credit.clone(), l.amount))
        .collect();
    assert_eq!(
        legs,
        vec![
            (LedgerAccountId::V2gPayout, wallet(), cents(1_234)),
            (LedgerAccountId::V2gPayout, payable(), cents(123)),
        ]
    );
    assert_eq!(
        (plan.driver_credit, plan.operator_share, plan.platform_cost),
        (cents(1_234), cents(123), cents(1_357))
    );
    let mut l = ledger(0, 0);
    l.apply(plan.set.clone()).unwrap();
    assert_eq!(posted(&l, &wallet()), cents(1_234));
    assert_eq!(posted(&l, &payable()), cents(123));
    assert_eq!(posted(&l, &LedgerAccountId::V2gPayout), cents(1_357));
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn a_mixed_session_settles_both_lines_in_one_set_and_the_credit_pays_the_charge_first() {
    let v = priced(3, 500, 0);
    let c = priced(7, 300, 100);
    // Empty wallet: the 5.00 credit pays the 4.00 charge; nothing is owed.
    let plan = plan_reverse(&input(&v, 0, Some((&c, split(360, 40))), 0, 0)).unwrap();
    let imp = plan.import.as_ref().unwrap();
    assert_eq!(
        (imp.cost, imp.from_wallet, imp.receivable),
        (cents(400), cents(400), Money::ZERO)
    );
    assert_eq!(plan.set.legs.len(), 4);
    assert_eq!(plan.set.legs[0].credit, wallet());
    assert_eq!(plan.set.legs[1].debit, wallet());
    assert_eq!(plan.set.legs[1].amount, cents(400));
    let mut l = ledger(0, 0);
    l.apply(plan.set.clone()).unwrap();
    assert_eq!(posted(&l, &wallet()), cents(100));
    assert_eq!(posted(&l, &payable()), cents(360));
    assert_eq!(posted(&l, &LedgerAccountId::PlatformRevenue), cents(40));
    assert_eq!(posted(&l, &LedgerAccountId::SessionClearing), Money::ZERO);
    assert_eq!(l.check_invariants(), Ok(()));
    let f = plan.figures();
    assert_eq!((f.driver_credit, f.import_cost), (cents(500), cents(400)));
}

#[test]
fn an_import_beyond_credit_and_balance_becomes_a_receivable() {
    let v = priced(3, 100, 0);
    let c = priced(7, 900, 100);
    let plan = plan_reverse(&input(&v, 0, Some((&c, split(1_000, 0))), 200, 300)).unwrap();
    let imp = plan.import.as_ref().unwrap();
    // 1.00 credit + 2.00 balance + 3.00 credit line cover 6.00 of 10.00.
    assert_eq!((imp.from_wallet, imp.receivable), (cents(600), cents(400)));
    let mut l = ledger(200, 300);
    l.apply(plan.set).unwrap();
    assert_eq!(posted(&l, &wallet()), cents(-300));
    assert_eq!(posted(&l, &LedgerAccountId::Receivable(acc())), cents(400));
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn nothing_exported_still_records_the_key_with_no_legs() {
    let v = priced(3, 0, 0);
    let plan = plan_reverse(&input(&v, 0, None, 0, 0)).unwrap();
    assert!(plan.set.legs.is_empty());
    let mut l = ledger(0, 0);
    assert!(!l.apply(plan.set.clone()).unwrap().replay);
    assert!(l.apply(plan.set).unwrap().replay);
}

#[test]
fn a_replay_applies_once_and_other_content_under_the_key_is_refused() {
    let v = priced(3, 777, 0);
    let plan = plan_reverse(&input(&v, 10, None, 0, 0)).unwrap();
    let mut l = ledger(0, 0);
    l.apply(plan.set.clone()).unwrap();
    assert!(l.apply(plan.set.clone()).unwrap().replay);
    assert_eq!(posted(&l, &wallet()), cents(777));
    let other = priced(3, 778, 0);
    let again = plan_reverse(&input(&other, 10, None, 0, 0)).unwrap();
    assert!(matches!(
        l.apply(again.set),
        Err(LedgerError::IdempotencyConflict { .. })
    ));
}

#[test]
fn bad_figures_are_refused() {
    let sub_cent = CostBreakdown {
        energy_fee: Money::from_scaled(1_001, 3),
        total: Money::from_scaled(1_001, 3),
        ..priced(3, 0, 0)
    };
    assert!(matches!(
        plan_reverse(&input(&sub_cent, 0, None, 0, 0)),
        Err(LedgerError::BadInput { .. })
    ));
    let v = priced(3, 100, 0);
    for share in [-1, 101] {
        assert!(matches!(
            plan_reverse(&input(&v, share, None, 0, 0)),
            Err(LedgerError::BadInput { .. })
        ));
    }
    let wrong = priced(4, 100, 0);
    assert!(matches!(
        plan_reverse(&input(&wrong, 0, None, 0, 0)),
        Err(LedgerError::WrongTariffVersion { .. })
    ));
    let bad_total = CostBreakdown {
        total: cents(99),
        ..priced(3, 100, 0)
    };
    assert!(plan_reverse(&input(&bad_total, 0, None, 0, 0)).is_err());
    let c = priced(7, 100, 0);
    // A split that does not sum to the import cost.
    assert!(plan_reverse(&input(&v, 0, Some((&c, split(50, 0))), 0, 0)).is_err());
    let wrong_charge = priced(8, 100, 0);
    assert!(matches!(
        plan_reverse(&input(&v, 0, Some((&wrong_charge, split(100, 0))), 0, 0)),
        Err(LedgerError::WrongTariffVersion { .. })
    ));
}

proptest! {
    /// Whatever the amounts, the plan applies to the ledger, balances, moves exactly the
    /// credit, the share and the import cost, and applies once.
    #[test]
    fn every_plan_applies_balanced_and_exactly_once(
        export in 0i64..5_000_000,
        share_pct in 0i64..=100,
        import in proptest::option::of((0i64..5_000_000, 0i64..100)),
        balance in 0i64..1_000_000,
        credit in 0i64..1_000_000,
    ) {
        let v = priced(3, export, 0);
        let share = export * share_pct / 100;
        let c = import.map(|(e, s)| priced(7, e, s));
        let imp = c.as_ref().map(|c| {
            let fee = c.service_fee.round_cents();
            (c, CostSplit { operator: c.total - fee, platform_fee: fee })
        });
        let plan = plan_reverse(&input(&v, share, imp, balance, credit)).unwrap();
        let mut l = ledger(balance, credit);
        let before = posted(&l, &wallet());
        l.apply(plan.set.clone()).unwrap();
        prop_assert!(l.apply(plan.set.clone()).unwrap().replay);
        prop_assert_eq!(l.check_invariants(), Ok(()));
        let f = plan.figures();
        prop_assert_eq!(posted(&l, &LedgerAccountId::V2gPayout), cents(export + share));
        prop_assert_eq!(posted(&l, &payable()) - cents(share), c.as_ref().map_or(Money::ZERO, |c| c.total - c.service_fee));
        prop_assert_eq!(
            posted(&l, &wallet()) - before,
            f.driver_credit - f.from_wallet
        );
        prop_assert_eq!(f.from_wallet + f.receivable, f.import_cost);
        prop_assert_eq!(posted(&l, &LedgerAccountId::SessionClearing), Money::ZERO);
        let w = l.account(&wallet()).unwrap();
        prop_assert!(w.available() >= -cents(credit));
    }
}
