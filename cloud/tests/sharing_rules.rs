//! Revenue-sharing rules, exact splits and daily bills.

use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use voltline_cloud::sharing::bill::{cut_bill, day_bounds, SettledSession};
use voltline_cloud::sharing::rule::{Percent, RuleBook, SharingRule, SharingTerms, VolumeTier};
use voltline_cloud::sharing::split::{split, SessionMoney, SplitError};
use voltline_protocol::domain::{Energy, Money, OperatorId, SiteId};

fn yuan(d: Decimal) -> Money {
    Money::from_yuan(d)
}

fn pct(d: Decimal) -> Percent {
    Percent::new(d).unwrap()
}

fn session(kwh: i64, energy_fee: Decimal, service_fee: Decimal) -> SessionMoney {
    SessionMoney {
        energy: Energy::from_wh(kwh * 1_000),
        energy_fee: yuan(energy_fee),
        service_fee: yuan(service_fee),
        export_energy: Energy::ZERO,
        export_value: Money::ZERO,
    }
}

#[test]
fn percentage_of_both_fees_rounded_once() {
    // 3 % of 12.34 = 0.3702; 20 % of 5.55 = 1.11; exact 1.4802 → 1.48; operator 17.89 - 1.48 = 16.41.
    let terms = SharingTerms {
        energy_fee_pct: pct(dec!(3)),
        service_fee_pct: pct(dec!(20)),
        ..Default::default()
    };
    let s = split(&terms, &session(10, dec!(12.34), dec!(5.55)), Energy::ZERO).unwrap();
    assert_eq!(s.gross, yuan(dec!(17.89)));
    assert_eq!(s.platform_fee, yuan(dec!(1.48)));
    assert_eq!(s.operator_payable, yuan(dec!(16.41)));
    assert_eq!(s.parts.of_energy_fee, yuan(dec!(0.3702)));
}

#[test]
fn fixed_fees_minimum_and_cap() {
    // 0.05/kWh × 8 kWh + 0.30 per session = 0.70 < minimum 1.00 → 1.00.
    let terms = SharingTerms {
        per_kwh: yuan(dec!(0.05)),
        per_session: yuan(dec!(0.30)),
        min_platform_fee: yuan(dec!(1.00)),
        ..Default::default()
    };
    let s = split(&terms, &session(8, dec!(6.00), dec!(2.00)), Energy::ZERO).unwrap();
    assert_eq!(s.platform_fee, yuan(dec!(1.00)));
    assert_eq!(s.parts.minimum_top_up, yuan(dec!(0.30)));
    // A 0.50 session: the minimum is capped at the gross; the operator gets nothing, never less.
    let s = split(&terms, &session(0, dec!(0.40), dec!(0.10)), Energy::ZERO).unwrap();
    assert_eq!(s.platform_fee, yuan(dec!(0.50)));
    assert_eq!(s.operator_payable, Money::ZERO);
    assert_eq!(s.parts.capped_by_gross, yuan(dec!(0.50)));
}

#[test]
fn volume_tiers_lower_the_service_share() {
    let terms = SharingTerms {
        service_fee_pct: pct(dec!(30)),
        tiers: vec![
            VolumeTier {
                from: Energy::from_wh(10_000_000),
                service_fee_pct: pct(dec!(20)),
            },
            VolumeTier {
                from: Energy::from_wh(50_000_000),
                service_fee_pct: pct(dec!(10)),
            },
        ],
        ..Default::default()
    };
    terms.validate().unwrap();
    let m = session(10, dec!(0), dec!(10.00));
    assert_eq!(
        split(&terms, &m, Energy::ZERO).unwrap().platform_fee,
        yuan(dec!(3.00))
    );
    assert_eq!(
        split(&terms, &m, Energy::from_wh(10_000_000))
            .unwrap()
            .platform_fee,
        yuan(dec!(2.00))
    );
    assert_eq!(
        split(&terms, &m, Energy::from_wh(99_000_000))
            .unwrap()
            .platform_fee,
        yuan(dec!(1.00))
    );
    let bad = SharingTerms {
        tiers: vec![terms.tiers[1].clone(), terms.tiers[0].clone()],
        ..terms
    };
    assert!(bad.validate().is_err());
}

#[test]
fn v2g_operator_share_is_paid_by_the_platform() {
    // 12.5 % of 8.37 = 1.04625 → 1.05.
    let terms = SharingTerms {
        v2g_operator_pct: pct(dec!(12.5)),
        ..Default::default()
    };
    let m = SessionMoney {
        export_energy: Energy::from_wh(9_300),
        export_value: yuan(dec!(8.37)),
        ..session(0, dec!(0), dec!(0))
    };
    let s = split(&terms, &m, Energy::ZERO).unwrap();
    assert_eq!(s.v2g_driver_credit, yuan(dec!(8.37)));
    assert_eq!(s.v2g_operator_share, yuan(dec!(1.05)));
    assert_eq!(s.operator_total(), yuan(dec!(1.05)));
}

#[test]
fn bad_amounts_are_refused() {
    let terms = SharingTerms::default();
    assert!(matches!(
        split(&terms, &session(1, dec!(-1), dec!(0)), Energy::ZERO),
        Err(SplitError::BadAmount {
            field: "energy_fee",
            ..
        })
    ));
    assert!(matches!(
        split(&terms, &session(1, dec!(1.001), dec!(0)), Energy::ZERO),
        Err(SplitError::BadAmount { .. })
    ));
    assert!(Percent::new(dec!(100.01)).is_err());
    assert!(Percent::new(dec!(-0.01)).is_err());
}

#[test]
fn the_rule_in_force_at_session_start_applies_site_rules_first() {
    let op = OperatorId::new("op-a").unwrap();
    let s1 = SiteId::new("site-1").unwrap();
    let s2 = SiteId::new("site-2").unwrap();
    let t = |s: i64| Timestamp::from_second(1_790_000_000 + s).unwrap();
    let rule = |site: Option<SiteId>, at: i64, v: u32, p: Decimal| SharingRule {
        operator: op.clone(),
        site,
        effective_from: t(at),
        version: v,
        terms: SharingTerms {
            service_fee_pct: pct(p),
            ..Default::default()
        },
    };
    let mut book = RuleBook::new();
    book.add(rule(None, 0, 1, dec!(10))).unwrap();
    book.add(rule(None, 1_000, 2, dec!(15))).unwrap();
    book.add(rule(Some(s1.clone()), 500, 1, dec!(5))).unwrap();
    assert!(
        book.add(rule(None, 1_000, 3, dec!(1))).is_err(),
        "same scope and instant twice"
    );
    let p = |site: &SiteId, at| {
        book.in_force(&op, site, t(at))
            .unwrap()
            .terms
            .service_fee_pct
            .get()
    };
    assert_eq!(p(&s2, 10), dec!(10));
    assert_eq!(p(&s2, 999), dec!(10));
    assert_eq!(p(&s2, 1_000), dec!(15));
    assert_eq!(p(&s1, 499), dec!(10), "site rule not yet in force");
    assert_eq!(p(&s1, 500), dec!(5));
    assert_eq!(
        p(&s1, 5_000),
        dec!(5),
        "the site rule outranks a later operator-wide one"
    );
    assert!(book.in_force(&op, &s1, t(-1)).is_none());
}

#[test]
fn dst_days_have_23_and_25_hours() {
    let berlin = TimeZone::get("Europe/Berlin").unwrap();
    let spring = day_bounds(&berlin, date(2026, 3, 29)).unwrap();
    assert_eq!((spring.end - spring.start).as_secs(), 23 * 3600);
    let autumn = day_bounds(&berlin, date(2026, 10, 25)).unwrap();
    assert_eq!((autumn.end - autumn.start).as_secs(), 25 * 3600);
    let shanghai = TimeZone::get("Asia/Shanghai").unwrap();
    let d = day_bounds(&shanghai, date(2026, 11, 25)).unwrap();
    assert_eq!(d.start.to_string(), "2026-11-24T16:00:00Z");
    // Santiago skips local midnight when DST starts (2026-09-06): the day starts at 01:00.
    let santiago = TimeZone::get("America/Santiago").unwrap();
    let skip = day_bounds(&santiago, date(2026, 9, 6)).unwrap();
    assert_eq!((skip.end - skip.start).as_secs(), 23 * 3600);
}

fn settled(
    id: &str,
    site: &str,
    ended: &str,
    settled_at: &str,
    gross_cents: i64,
    fee_cents: i64,
) -> SettledSession {
    let gross = Money::from_cents(gross_cents);
    let fee = Money::from_cents(fee_cents);
    SettledSession {
        id: id.into(),
        operator: OperatorId::new("op-a").unwrap(),
        site: SiteId::new(site).unwrap(),
        ended_at: ended.parse().unwrap(),
        settled_at: settled_at.parse().unwrap(),
        energy: Energy::from_wh(10_000),
        export_energy: Energy::ZERO,
        split: voltline_cloud::sharing::split::Split {
            gross,
            platform_fee: fee,
            operator_payable: gross - fee,
            parts: Default::default(),
            v2g_driver_credit: Money::ZERO,
            v2g_operator_share: Money::ZERO,
        },
    }
}

#[test]
fn late_records_become_adjustment_lines_on_the_day_they_settle() {
    let tz = TimeZone::get("Asia/Shanghai").unwrap();
    let op = OperatorId::new("op-a").unwrap();
    let sessions = vec![
        // Local 2026-11-25 10:00 and 23:59 (UTC+8).
        settled(
            "a",
            "site-1",
            "2026-11-25T02:00:00Z",
            "2026-11-25T02:00:05Z",
            1_000,
            100,
        ),
        settled(
            "b",
            "site-2",
            "2026-11-25T15:59:00Z",
            "2026-11-25T15:59:30Z",
            2_000,
            300,
        ),
        // Settles after local midnight: next day's bill.
        settled(
            "c",
            "site-1",
            "2026-11-25T15:59:50Z",
            "2026-11-25T16:00:10Z",
            500,
            50,
        ),
        // Ended on the 23rd, reached the cloud on the 25th: an adjustment on the 25th.
        settled(
            "d",
            "site-1",
            "2026-11-23T03:00:00Z",
            "2026-11-25T04:00:00Z",
            700,
            70,
        ),
    ];
    let bill = cut_bill(&op, &tz, date(2026, 11, 25), &sessions).unwrap();
    assert_eq!(bill.sites.len(), 2);
    assert_eq!(bill.adjustments.len(), 1);
    assert_eq!(bill.adjustments[0].service_day, date(2026, 11, 23));
    assert_eq!(bill.totals.sessions, 3);
    assert_eq!(bill.totals.gross, Money::from_cents(3_700));
    assert_eq!(bill.totals.platform_fees, Money::from_cents(470));
    assert_eq!(bill.totals.net_payable(), Money::from_cents(3_230));
    let next = cut_bill(&op, &tz, date(2026, 11, 26), &sessions).unwrap();
    assert_eq!(next.totals.sessions, 1);
    assert_eq!(
        next.adjustments[0].service_day,
        date(2026, 11, 25),
        "c ended on the 25th"
    );
    // Cutting again gives the same bill.
    assert_eq!(
        cut_bill(&op, &tz, date(2026, 11, 25), sessions.iter().rev()).unwrap(),
        bill
    );
}

fn amount() -> impl Strategy<Value = Decimal> {
    (0i64..5_000_000).prop_map(|c| Decimal::new(c, 2))
}

fn terms() -> impl Strategy<Value = SharingTerms> {
    (
        0u32..=10_000,
        0u32..=10_000,
        0i64..500,
        0i64..5_000,
        0i64..5_000,
        0u32..=10_000,
    )
        .prop_map(|(e, s, kwh, sess, min, v2g)| SharingTerms {
            energy_fee_pct: pct(Decimal::new(e as i64, 2)),
            service_fee_pct: pct(Decimal::new(s as i64, 2)),
            per_kwh: Money::from_scaled(kwh, 3),
            per_session: Money::from_cents(sess),
            min_platform_fee: Money::from_cents(min),
            v2g_operator_pct: pct(Decimal::new(v2g as i64, 2)),
            tiers: vec![],
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1_024, .. ProptestConfig::default() })]

    #[test]
    fn parts_always_sum_to_the_whole(
        t in terms(), ef in amount(), sf in amount(), ev in amount(), wh in 0i64..200_000,
    ) {
        let m = SessionMoney {
            energy: Energy::from_wh(wh),
            energy_fee: yuan(ef),
            service_fee: yuan(sf),
            export_energy: Energy::from_wh(wh / 2),
            export_value: yuan(ev),
        };
        let s = split(&t, &m, Energy::ZERO).unwrap();
        prop_assert_eq!(s.platform_fee + s.operator_payable, s.gross);
        prop_assert_eq!(s.gross, yuan(ef + sf));
        prop_assert!(!s.platform_fee.is_negative() && !s.operator_payable.is_negative());
        prop_assert!(s.platform_fee <= s.gross);
        prop_assert_eq!(s.platform_fee, s.platform_fee.round_cents(), "whole cents");
        prop_assert_eq!(s.operator_payable, s.operator_payable.round_cents());
        // Rounded once: within half a cent of the exact, minimum-raised, gross-capped fee.
        let exact = s.parts.of_energy_fee + s.parts.of_service_fee + s.parts.per_kwh
            + s.parts.per_session + s.parts.minimum_top_up - s.parts.capped_by_gross;
        prop_assert!((exact - s.platform_fee).yuan().abs() <= dec!(0.005));
        prop_assert!(s.v2g_operator_share <= s.v2g_driver_credit);
    }

    #[test]
    fn bill_totals_equal_the_sum_of_their_sessions(
        fees in proptest::collection::vec((0i64..100_000, 0i64..=100, 0i64..172_800, 0i64..5), 0..40),
    ) {
        let tz = TimeZone::get("Europe/Berlin").unwrap();
        let day = date(2026, 10, 25); // the 25-hour day
        let b = day_bounds(&tz, day).unwrap();
        let sessions: Vec<SettledSession> = fees.iter().enumerate().map(|(i, &(g, p, offset, site))| {
            let settled_at = b.start + jiff::SignedDuration::from_secs(offset - 43_200);
            let ended_at = settled_at - jiff::SignedDuration::from_secs(offset % 90_000);
            let mut s = settled(&i.to_string(), &format!("site-{site}"), "2026-10-25T00:00:00Z", "2026-10-25T00:00:00Z", g, g * p / 100);
            s.settled_at = settled_at;
            s.ended_at = ended_at;
            s
        }).collect();
        let bill = cut_bill(&OperatorId::new("op-a").unwrap(), &tz, day, &sessions).unwrap();
        let inside: Vec<&SettledSession> = sessions.iter()
            .filter(|s| s.settled_at >= b.start && s.settled_at < b.end).collect();
        prop_assert_eq!(bill.totals.sessions as usize, inside.len());
        let gross: Money = inside.iter().map(|s| s.split.gross).sum();
        let fees: Money = inside.iter().map(|s| s.split.platform_fee).sum();
        prop_assert_eq!(bill.totals.gross, gross);
        prop_assert_eq!(bill.totals.platform_fees, fees);
        let lines: Money = bill.sites.iter().map(|l| l.totals.gross)
            .chain(bill.adjustments.iter().map(|a| a.totals.gross)).sum();
        prop_assert_eq!(lines, bill.totals.gross, "lines add up to the bill");
        prop_assert_eq!(bill.totals.platform_fees + bill.totals.operator_payable, bill.totals.gross);
    }
}
