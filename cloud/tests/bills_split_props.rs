//! Settlement by a sharing rule, as a property: for any rule terms and any session money, the
//! split of `sharing::split` posted with `ledger::plan_settlement_with_split` is a balanced
//! transfer set whose operator and platform legs sum exactly to the cost, with the hold taken
//! for the cost and the rest released; and a split that does not sum to the cost is refused.

use proptest::prelude::*;
use rust_decimal::Decimal;
use voltline_cloud::ledger::{
    plan_settlement_with_split, CostSplit, Hold, IdempotencyKey, LedgerAccountId, LedgerError,
    PlatformFeeRule, RecordRef, SettlementInput, TransferId,
};
use voltline_cloud::sharing::rule::{Percent, SharingTerms, VolumeTier};
use voltline_cloud::sharing::split::{split, SessionMoney};
use voltline_protocol::domain::{AccountId, OperatorId, OrderId};
use voltline_protocol::tariff::{CostBreakdown, TariffVersion};
use voltline_protocol::{Energy, Money};

fn cents(c: i64) -> Money {
    Money::from_cents(c)
}

fn pct() -> impl Strategy<Value = Percent> {
    (0i64..=10_000).prop_map(|bp| Percent::new(Decimal::new(bp, 2)).unwrap())
}

fn terms() -> impl Strategy<Value = SharingTerms> {
    (
        pct(),
        pct(),
        pct(),
        0i64..200,
        0i64..500,
        0i64..2_000,
        0i64..100_000,
    )
        .prop_map(
            |(e, s, tier, per_kwh, per_session, min, from_kwh)| SharingTerms {
                energy_fee_pct: e,
                service_fee_pct: s,
                tiers: vec![VolumeTier {
                    from: Energy::from_wh(from_kwh * 1_000),
                    service_fee_pct: tier,
                }],
                per_kwh: Money::from_scaled(per_kwh, 3),
                per_session: cents(per_session),
                min_platform_fee: cents(min),
                v2g_operator_pct: Percent::ZERO,
            },
        )
}

fn input<'a>(cost: &'a CostBreakdown, hold: i64) -> SettlementInput<'a> {
    let order: OrderId = "o-1".parse().unwrap();
    SettlementInput {
        record: RecordRef {
            pile: "32010600019236".parse().unwrap(),
            serial: "32010600019236012001061803423060".parse().unwrap(),
        },
        order: order.clone(),
        account: AccountId::new("d-1").unwrap(),
        operator: OperatorId::new("op-1").unwrap(),
        hold: Some(Hold {
            pending: TransferId::new(IdempotencyKey::hold(&order), 0),
            order,
            account: AccountId::new("d-1").unwrap(),
            amount: cents(hold),
        }),
        tariff_version_at_start: TariffVersion(1),
        cost,
        charger_reported_total: cost.total,
        platform_fee: PlatformFeeRule::new(Decimal::TEN).unwrap(),
        wallet_available: cents(1_000_000),
        credit_limit: Money::ZERO,
    }
}

proptest! {
    #[test]
    fn a_rule_split_posts_balanced_legs_summing_to_the_cost(
        t in terms(),
        energy_fee in 0i64..100_000,
        service_fee in 0i64..100_000,
        wh in 0i64..200_000,
        volume_kwh in 0i64..200_000,
        hold in 1i64..300_000,
    ) {
        let cost = CostBreakdown {
            tariff_version: TariffVersion(1),
            lines: vec![],
            total_energy: Energy::from_wh(wh),
            energy_fee_exact: cents(energy_fee),
            service_fee_exact: cents(service_fee),
            energy_fee: cents(energy_fee),
            service_fee: cents(service_fee),
            total: cents(energy_fee + service_fee),
        };
        let money = SessionMoney {
            energy: cost.total_energy,
            energy_fee: cost.energy_fee,
            service_fee: cost.service_fee,
            export_energy: Energy::ZERO,
            export_value: Money::ZERO,
        };
        let s = split(&t, &money, Energy::from_wh(volume_kwh * 1_000)).unwrap();
        let cs = CostSplit { operator: s.operator_payable, platform_fee: s.platform_fee };
        let plan = plan_settlement_with_split(&input(&cost, hold), cs).unwrap();
        prop_assert_eq!(plan.split, cs);
        prop_assert_eq!(plan.from_hold + plan.from_wallet + plan.receivable, cost.total);
        let clearing = LedgerAccountId::SessionClearing;
        let into: Money = plan.set.legs.iter().filter(|l| l.credit == clearing).map(|l| l.amount).sum();
        let out: Money = plan.set.legs.iter().filter(|l| l.debit == clearing).map(|l| l.amount).sum();
        // The hold leg posts `from_hold` (a void moves nothing into clearing).
        let voided = plan.from_hold.is_zero();
        let into = if voided { into - cents(hold) } else { into };
        prop_assert_eq!(into, cost.total, "what enters clearing is the cost");
        prop_assert_eq!(out, cost.total, "what leaves clearing is the cost");
        let platform: Money = plan.set.legs.iter()
            .filter(|l| l.credit == LedgerAccountId::PlatformRevenue).map(|l| l.amount).sum();
        prop_assert_eq!(platform, s.platform_fee);
        prop_assert!(!s.platform_fee.is_negative() && !s.operator_payable.is_negative());
        // A split off by one fen is refused, never posted.
        let off = CostSplit { operator: cs.operator + cents(1), platform_fee: cs.platform_fee };
        let refused = matches!(
            plan_settlement_with_split(&input(&cost, hold), off),
            Err(LedgerError::BadInput { .. })
        );
        prop_assert!(refused);
    }
}
