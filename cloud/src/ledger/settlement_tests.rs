//! Unit tests of `settlement.rs`: the split, the legs for each case, the mismatch flag, and
//! exactly-once settlement applied to the in-memory ledger.

use jiff::tz::TimeZone;
use jiff::Timestamp;
use proptest::prelude::*;
use rust_decimal_macros::dec;
use voltline_protocol::tariff::{MeterReading, ScheduleEntry, Tariff, TariffPeriod, TimeOfDay};
use voltline_protocol::Energy;

use super::*;
use crate::ledger::session::{place_hold, top_up, ExternalRef, HoldRequest};
use crate::ledger::{AccountPolicy, Ledger, PendingStatus, ProviderId, TransferId};

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

fn cost(energy: i64, service: i64) -> CostBreakdown {
    CostBreakdown {
        tariff_version: TariffVersion(7),
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

fn fee(percent: Decimal) -> PlatformFeeRule {
    PlatformFeeRule::new(percent).unwrap()
}

fn hold_of(amount: i64) -> Hold {
    let order: OrderId = "o-1".parse().unwrap();
    Hold {
        pending: TransferId::new(IdempotencyKey::hold(&order), 0),
        order,
        account: acc(),
        amount: cents(amount),
    }
}

fn input(
    cost: &CostBreakdown,
    hold: Option<Hold>,
    available: i64,
    credit: i64,
) -> SettlementInput<'_> {
    SettlementInput {
        record: record(),
        order: "o-1".parse().unwrap(),
        account: acc(),
        operator: op(),
        hold,
        tariff_version_at_start: TariffVersion(7),
        cost,
        charger_reported_total: cost.total,
        platform_fee: fee(dec!(10)),
        wallet_available: cents(available),
        credit_limit: cents(credit),
    }
}

#[test]
fn platform_fee_rounds_once_half_away_from_zero_and_operator_takes_the_rest() {
    // 10 % of 0.05 is 0.005 → 0.01; the operator gets 1.00 + 0.05 − 0.01.
    let split = split_cost(&cost(100, 5), &fee(dec!(10))).unwrap();
    assert_eq!(split.platform_fee, cents(1));
    assert_eq!(split.operator, cents(104));
    // 10 % of 0.04 is 0.004 → 0.00.
    assert_eq!(
        split_cost(&cost(100, 4), &fee(dec!(10)))
            .unwrap()
            .platform_fee,
        Money::ZERO
    );
    assert!(PlatformFeeRule::new(dec!(100.01)).is_err());
    assert!(PlatformFeeRule::new(dec!(-1)).is_err());
}

proptest! {
    #[test]
    fn the_split_always_sums_to_the_cost(
        energy in 0i64..10_000_000,
        service in 0i64..10_000_000,
        percent in 0u32..=10_000,
    ) {
        let c = cost(energy, service);
        let split = split_cost(&c, &fee(Decimal::new(percent as i64, 2))).unwrap();
        prop_assert_eq!(split.operator + split.platform_fee, c.total);
        prop_assert!(split.platform_fee <= c.service_fee);
        prop_assert!(!split.platform_fee.is_negative());
    }
}

#[test]
fn a_cost_within_the_hold_is_posted_and_the_rest_released() {
    let c = cost(3_000, 1_000);
    let plan = plan_settlement(&input(&c, Some(hold_of(5_000)), 0, 0)).unwrap();
    assert_eq!(
        (plan.from_hold, plan.released),
        (cents(4_000), cents(1_000))
    );
    assert_eq!(
        (plan.from_wallet, plan.receivable),
        (Money::ZERO, Money::ZERO)
    );
    let legs = &plan.set.legs;
    assert_eq!(legs.len(), 3);
    assert!(matches!(legs[0].kind, TransferKind::Post { .. }));
    assert_eq!(legs[0].amount, cents(4_000));
    assert_eq!(legs[1].credit, LedgerAccountId::OperatorPayable(op()));
    assert_eq!(legs[1].amount, cents(3_900));
    assert_eq!(legs[2].credit, LedgerAccountId::PlatformRevenue);
    assert_eq!(legs[2].amount, cents(100));
    assert_eq!(
        plan.set.key.as_str(),
        "settle:32010600019236:32010600019236012001061803423060"
    );
}

#[test]
fn a_free_session_voids_the_hold() {
    let c = cost(0, 0);
    let plan = plan_settlement(&input(&c, Some(hold_of(5_000)), 0, 0)).unwrap();
    assert_eq!(plan.set.legs.len(), 1);
    assert!(matches!(plan.set.legs[0].kind, TransferKind::Void { .. }));
    assert_eq!(plan.set.legs[0].amount, cents(5_000));
    let none = plan_settlement(&input(&c, None, 0, 0)).unwrap();
    assert!(none.set.legs.is_empty());
}

#[test]
fn an_overrun_draws_on_the_wallet_then_its_credit_line_then_becomes_a_receivable() {
    // Cost 80.00, hold 50.00, 10.00 still available, credit line 15.00.
    let c = cost(6_000, 2_000);
    let plan = plan_settlement(&input(&c, Some(hold_of(5_000)), 1_000, 1_500)).unwrap();
    assert_eq!(plan.from_hold, cents(5_000));
    assert_eq!(plan.from_wallet, cents(2_500));
    assert_eq!(plan.receivable, cents(500));
    let legs = &plan.set.legs;
    assert!(legs[1].credit_allowed && legs[1].debit == wallet());
    assert_eq!(legs[2].debit, LedgerAccountId::Receivable(acc()));
    assert!(legs
        .iter()
        .filter(|l| l.debit != LedgerAccountId::SessionClearing)
        .all(|l| l.credit == LedgerAccountId::SessionClearing));
}

#[test]
fn a_session_without_a_hold_is_billed_from_the_wallet() {
    let c = cost(1_000, 500);
    let plan = plan_settlement(&input(&c, None, 600, 0)).unwrap();
    assert_eq!(
        (plan.from_hold, plan.from_wallet, plan.receivable),
        (Money::ZERO, cents(600), cents(900))
    );
}

#[test]
fn a_charger_total_beyond_one_fen_is_flagged_not_billed() {
    let c = cost(1_000, 500);
    let mut i = input(&c, Some(hold_of(5_000)), 0, 0);
    i.charger_reported_total = Money::from_scaled(150_100, 4);
    assert_eq!(plan_settlement(&i).unwrap().mismatch, None);
    i.charger_reported_total = Money::from_scaled(150_101, 4);
    let plan = plan_settlement(&i).unwrap();
    let m = plan.mismatch.unwrap();
    assert_eq!(m.difference, Money::from_scaled(101, 4));
    assert_eq!(plan.cost, cents(1_500));
    i.charger_reported_total = Money::from_scaled(149_899, 4);
    assert!(plan_settlement(&i).unwrap().mismatch.is_some());
}

#[test]
fn invalid_settlement_input_is_refused() {
    let c = cost(1_000, 500);
    let mut i = input(&c, Some(hold_of(5_000)), 0, 0);
    i.tariff_version_at_start = TariffVersion(6);
    assert!(matches!(
        plan_settlement(&i),
        Err(LedgerError::WrongTariffVersion { .. })
    ));
    let mut i = input(&c, Some(hold_of(5_000)), 0, 0);
    i.hold.as_mut().unwrap().account = "acc-2".parse().unwrap();
    assert!(matches!(
        plan_settlement(&i),
        Err(LedgerError::HoldMismatch { .. })
    ));
    let mut bad = cost(1_000, 500);
    bad.service_fee = Money::from_scaled(5_001, 3);
    assert!(matches!(
        plan_settlement(&input(&bad, None, 0, 0)),
        Err(LedgerError::BadInput { .. })
    ));
    let mut bad = cost(1_000, 500);
    bad.total = cents(1_501);
    assert!(plan_settlement(&input(&bad, None, 0, 0)).is_err());
    assert!(plan_settlement(&input(&c, None, 0, -1)).is_err());
}

/// A ledger with a wallet (credit line `credit`), its receivable, the operator's payable and
/// a provider, topped up with `balance` and holding `hold` for order o-1.
fn ledger(balance: i64, credit: i64, hold: i64) -> (Ledger, Hold) {
    let mut l = Ledger::new();
    let provider = ProviderId::new("alipay").unwrap();
    let accounts = [
        (wallet(), AccountPolicy::wallet(cents(credit)).unwrap()),
        (
            LedgerAccountId::Receivable(acc()),
            AccountPolicy::default_for(&LedgerAccountId::Receivable(acc())),
        ),
        (
            LedgerAccountId::OperatorPayable(op()),
            AccountPolicy::default_for(&LedgerAccountId::OperatorPayable(op())),
        ),
        (
            LedgerAccountId::ProviderClearing(provider.clone()),
            AccountPolicy::default_for(&LedgerAccountId::ProviderClearing(provider.clone())),
        ),
    ];
    for (id, policy) in accounts {
        l.open_account(id, policy).unwrap();
    }
    let r = ExternalRef::new("seed").unwrap();
    l.apply(top_up(&provider, &r, &acc(), cents(balance)).unwrap())
        .unwrap();
    let (set, hold) = place_hold(&HoldRequest {
        order: "o-1".parse().unwrap(),
        account: acc(),
        requested: Some(cents(hold)),
        default_hold: cents(hold),
        minimum_hold: cents(1),
        available: cents(balance),
        expires_at: None,
    })
    .unwrap();
    l.apply(set).unwrap();
    (l, hold)
}

#[test]
fn a_record_settles_once_and_its_replay_returns_the_first_result() {
    let (mut l, hold) = ledger(10_000, 0, 5_000);
    let c = cost(3_000, 1_000);
    let plan = plan_settlement(&input(&c, Some(hold.clone()), 5_000, 0)).unwrap();
    let first = l.apply(plan.set.clone()).unwrap();
    let after = l.clone();
    let again = l.apply(plan.set).unwrap();
    assert!(again.replay && !first.replay);
    assert_eq!(again.sequence, first.sequence);
    assert_eq!(l, after);
    assert_eq!(l.account(&wallet()).unwrap().posted(), cents(6_000));
    assert_eq!(l.account(&wallet()).unwrap().available(), cents(6_000));
    assert_eq!(
        l.account(&LedgerAccountId::OperatorPayable(op()))
            .unwrap()
            .posted(),
        cents(3_900)
    );
    assert_eq!(
        l.account(&LedgerAccountId::PlatformRevenue)
            .unwrap()
            .posted(),
        cents(100)
    );
    assert_eq!(
        l.account(&LedgerAccountId::SessionClearing)
            .unwrap()
            .posted(),
        Money::ZERO
    );
    assert_eq!(
        l.pending(&hold.pending).unwrap().status,
        PendingStatus::Posted {
            amount: cents(4_000)
        }
    );
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn an_overrun_settles_within_the_credit_line_and_records_the_rest_as_owed() {
    let (mut l, hold) = ledger(6_000, 1_500, 5_000);
    let c = cost(7_000, 2_000);
    let available = l.account(&wallet()).unwrap().available();
    let plan = plan_settlement(&input(
        &c,
        Some(hold),
        available.to_scaled(2).unwrap(),
        1_500,
    ))
    .unwrap();
    l.apply(plan.set).unwrap();
    assert_eq!(l.account(&wallet()).unwrap().posted(), cents(-1_500));
    assert_eq!(
        l.account(&LedgerAccountId::Receivable(acc()))
            .unwrap()
            .posted(),
        cents(1_500)
    );
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn a_real_tariff_cost_settles_to_the_fen() {
    let utc = TimeZone::get("UTC").unwrap();
    let periods = vec![TariffPeriod::new(
        "flat",
        Money::from_yuan(dec!(0.8123)),
        Money::from_yuan(dec!(0.4567)),
    )];
    let schedule = vec![ScheduleEntry::new(TimeOfDay::new(0, 0).unwrap(), 0)];
    let tariff = Tariff::new(TariffVersion(7), utc, periods, schedule).unwrap();
    let t0: Timestamp = "2026-11-25T01:00:00Z".parse().unwrap();
    let t1: Timestamp = "2026-11-25T02:00:00Z".parse().unwrap();
    let readings = [
        MeterReading::new(t0, Energy::from_wh(1_000)),
        MeterReading::new(t1, Energy::from_wh(13_345)),
    ];
    let c = tariff.cost(&readings).unwrap();
    // 12.345 kWh × 0.8123 = 10.0278435 → 10.03; × 0.4567 = 5.6379615 → 5.64.
    assert_eq!((c.energy_fee, c.service_fee), (cents(1_003), cents(564)));
    let (mut l, hold) = ledger(10_000, 0, 5_000);
    let plan = plan_settlement(&input(&c, Some(hold), 5_000, 0)).unwrap();
    // 10 % of 5.64 = 0.564 → 0.56 to the platform, 15.11 to the operator.
    assert_eq!(
        plan.split,
        CostSplit {
            operator: cents(1_511),
            platform_fee: cents(56)
        }
    );
    l.apply(plan.set).unwrap();
    assert_eq!(
        l.account(&wallet()).unwrap().posted(),
        cents(10_000 - 1_567)
    );
    assert_eq!(l.check_invariants(), Ok(()));
}

#[test]
fn a_duplicate_record_replanned_on_new_balances_never_settles_twice() {
    let (mut l, hold) = ledger(10_000, 0, 5_000);
    let c = cost(3_000, 1_000);
    let first = l.apply(
        plan_settlement(&input(&c, Some(hold.clone()), 5_000, 0))
            .unwrap()
            .set,
    );
    let first = first.unwrap();
    // Replanned from the same inputs on the balances after settlement: identical, a replay.
    let available = l
        .account(&wallet())
        .unwrap()
        .available()
        .to_scaled(2)
        .unwrap();
    let same = plan_settlement(&input(&c, Some(hold), available, 0)).unwrap();
    assert!(l.apply(same.set.clone()).unwrap().replay);
    // Replanned from other inputs (the hold now looks closed): refused, and the caller
    // returns the first result by looking the key up.
    let other = plan_settlement(&input(&c, None, available, 0)).unwrap();
    let e = l.apply(other.set.clone()).unwrap_err();
    assert!(matches!(e, LedgerError::IdempotencyConflict { .. }));
    let found = l.lookup(&other.set.key).unwrap();
    assert_eq!((found.sequence, &found.set), (first.sequence, &first.set));
    assert_eq!(l.account(&wallet()).unwrap().posted(), cents(6_000));
}

#[test]
fn a_settlement_is_journalled_as_one_line_per_account_and_the_lines_sum_to_the_balances() {
    let (mut l, hold) = ledger(10_000, 0, 5_000);
    let c = cost(3_000, 1_000);
    let plan = plan_settlement(&input(&c, Some(hold), 5_000, 0)).unwrap();
    let key = plan.set.key.clone();
    l.apply(plan.set).unwrap();
    let lines = crate::ledger::journal_lines(l.journal());
    let of_settlement: Vec<_> = lines.iter().filter(|line| line.key == key).collect();
    let postings = l.journal().iter().filter(|p| p.transfer.key == key).count();
    // Wallet, session clearing, operator payable, platform revenue.
    assert_eq!(of_settlement.len(), 4);
    assert!(postings >= 2 * of_settlement.len(), "{postings} postings");
    let wallet_line = of_settlement
        .iter()
        .find(|line| line.account == wallet())
        .unwrap();
    assert_eq!(wallet_line.posted_change(), cents(-4_000));
    for account in l.accounts() {
        for field in crate::ledger::BalanceField::ALL {
            let sum: Money = lines
                .iter()
                .filter(|line| line.account == account.id)
                .filter_map(|line| line.delta(field))
                .sum();
            assert_eq!(sum, account.balance.get(field), "{} {field:?}", account.id);
        }
    }
}
