//! Unit tests of `cost.rs`: one per rule and per error, with hand-computed amounts.

use super::*;
use crate::tariff::model::tests::{hm, shanghai, yuan};
use crate::tariff::model::{ScheduleEntry, TariffPeriod};
use jiff::tz::TimeZone;
use rust_decimal_macros::dec;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn r(at: &str, mwh: i64) -> MeterReading {
    MeterReading::new(ts(at), Energy::from_mwh(mwh))
}

fn line<'a>(c: &'a CostBreakdown, name: &str) -> &'a CostLine {
    c.lines.iter().find(|l| l.name == name).unwrap()
}

#[test]
fn session_across_midnight_is_priced_per_period() {
    // Shanghai (UTC+8): peak until 22:00 local, then valley through midnight to 08:00.
    // 21:00-22:30 local: 10.5 kWh over 90 min → peak 60/90 = 7 kWh, valley 30/90 = 3.5 kWh.
    // 22:30-00:30 local: 14 kWh, all valley → valley 17.5 kWh.
    // peak:   7 × 1.0 = 7.00 energy, 7 × 0.8 = 5.60 service
    // valley: 17.5 × 0.3 = 5.25 energy, 17.5 × 0.4 = 7.00 service
    // energy fee 12.25, service fee 12.60, total 24.85.
    let t = shanghai();
    let c = t
        .cost(&[
            r("2026-05-01T13:00:00Z", 1_000_000),
            r("2026-05-01T14:30:00Z", 11_500_000),
            r("2026-05-01T16:30:00Z", 25_500_000),
        ])
        .unwrap();
    assert_eq!(c.total_energy, Energy::from_wh(24_500));
    assert_eq!(c.lines.len(), 2);
    assert_eq!(c.lines[0].name, "peak"); // period order: peak (0) before valley (2)
    assert_eq!(line(&c, "peak").energy, Energy::from_wh(7_000));
    assert_eq!(line(&c, "valley").energy, Energy::from_wh(17_500));
    assert_eq!(c.energy_fee, yuan(dec!(12.25)));
    assert_eq!(c.service_fee, yuan(dec!(12.60)));
    assert_eq!(c.total, yuan(dec!(24.85)));
    assert_eq!(line(&c, "valley").energy_fee, yuan(dec!(5.25)));
    assert_eq!(c.tariff_version, t.version());
}

#[test]
fn interval_across_a_boundary_splits_by_time_and_rounds_once() {
    // 07:50-08:05 local (23:50Z-00:05Z), 12 345 679 mWh: 10 min valley, 5 min peak.
    // valley = floor(12 345 679 × 10/15) = 8 230 452 (remainder 2/3)
    // peak   = floor(12 345 679 ×  5/15) = 4 115 226 (remainder 1/3)
    // 1 mWh left → largest remainder, valley: 8 230 453 + 4 115 226 = 12 345 679.
    // energy:  valley 8.230453 × 0.3 = 2.4691359, peak 4.115226 × 1.0 = 4.115226
    //          exact 6.5843619 → 6.58; floors 2.46 + 4.11 = 6.57, 1 fen to the larger
    //          remainder (valley .0091359 > peak .005226): 2.47 + 4.11.
    // service: valley × 0.4 = 3.2921812, peak × 0.8 = 3.2921808
    //          exact 6.5843620 → 6.58; floors 3.29 + 3.29 = 6.58, nothing left.
    // total = 6.58 + 6.58 = 13.16 (the exact total 13.1687239 alone would round to 13.17:
    // the two fees are rounded separately, as documented).
    let t = shanghai();
    let c = t
        .cost(&[
            r("2026-04-30T23:50:00Z", 0),
            r("2026-05-01T00:05:00Z", 12_345_679),
        ])
        .unwrap();
    let (valley, peak) = (line(&c, "valley"), line(&c, "peak"));
    assert_eq!(valley.energy, Energy::from_mwh(8_230_453));
    assert_eq!(peak.energy, Energy::from_mwh(4_115_226));
    assert_eq!(valley.energy_fee_exact, yuan(dec!(2.4691359)));
    assert_eq!(peak.energy_fee_exact, yuan(dec!(4.115226)));
    assert_eq!(c.energy_fee_exact, yuan(dec!(6.5843619)));
    assert_eq!(c.energy_fee, yuan(dec!(6.58)));
    assert_eq!(
        (valley.energy_fee, peak.energy_fee),
        (yuan(dec!(2.47)), yuan(dec!(4.11)))
    );
    assert_eq!(c.service_fee_exact, yuan(dec!(6.584362)));
    assert_eq!(
        (valley.service_fee, peak.service_fee),
        (yuan(dec!(3.29)), yuan(dec!(3.29)))
    );
    assert_eq!(c.total, yuan(dec!(13.16)));
    assert_eq!(c.total_exact(), yuan(dec!(13.1687239)));
}

#[test]
fn equal_remainders_give_the_extra_mwh_to_the_earliest_segment() {
    // 07:59-08:01 local, 1 001 mWh: 500.5 each way; the spare mWh goes to valley (first).
    let t = shanghai();
    let e = t
        .energy_by_period(&[
            r("2026-04-30T23:59:00Z", 0),
            r("2026-05-01T00:01:00Z", 1_001),
        ])
        .unwrap();
    let mwh: Vec<i64> = e.iter().map(|e| e.mwh()).collect();
    assert_eq!(mwh, vec![500, 0, 501]);
}

#[test]
fn energy_at_one_instant_goes_to_the_period_in_force_then() {
    let t = shanghai();
    // 08:00 local exactly: peak is in force.
    let c = t
        .cost(&[
            r("2026-05-01T00:00:00Z", 100),
            r("2026-05-01T00:00:00Z", 1_100),
        ])
        .unwrap();
    assert_eq!(c.lines.len(), 1);
    assert_eq!(c.lines[0].name, "peak");
    assert_eq!(c.lines[0].energy, Energy::from_wh(1));
}

#[test]
fn no_energy_means_no_lines_and_zero_cost() {
    let t = shanghai();
    let c = t
        .cost(&[
            r("2026-05-01T00:00:00Z", 500),
            r("2026-05-01T05:00:00Z", 500),
        ])
        .unwrap();
    assert!(c.lines.is_empty());
    assert_eq!(c.total_energy, Energy::ZERO);
    assert_eq!(c.total, Money::ZERO);
}

#[test]
fn spring_forward_day_is_priced_over_23_hours() {
    // Europe/Berlin 2026-03-29, 1 kW for the whole 23-hour local day (23:00Z to 22:00Z).
    // valley 00:00-02:00 CET (2 h), peak from the gap (02:30 does not exist) at 03:00 CEST
    // to 08:00 (5 h), flat 08:00-22:00 (14 h), valley 22:00-24:00 (2 h).
    // energy fee 4 × 0.3 + 5 × 1.0 + 14 × 0.7 = 1.2 + 5 + 9.8 = 16.00; service 23 × 0.5 = 11.50.
    let t = Tariff::new(
        TariffVersion(3),
        TimeZone::get("Europe/Berlin").unwrap(),
        vec![
            TariffPeriod::new("peak", yuan(dec!(1)), yuan(dec!(0.5))),
            TariffPeriod::new("flat", yuan(dec!(0.7)), yuan(dec!(0.5))),
            TariffPeriod::new("valley", yuan(dec!(0.3)), yuan(dec!(0.5))),
        ],
        vec![
            ScheduleEntry::new(hm(0, 0), 2),
            ScheduleEntry::new(hm(2, 30), 0),
            ScheduleEntry::new(hm(8, 0), 1),
            ScheduleEntry::new(hm(22, 0), 2),
        ],
    )
    .unwrap();
    let c = t
        .cost(&[
            r("2026-03-28T23:00:00Z", 0),
            r("2026-03-29T22:00:00Z", 23_000_000),
        ])
        .unwrap();
    let kwh: Vec<_> = c
        .lines
        .iter()
        .map(|l| (l.name.as_str(), l.energy))
        .collect();
    assert_eq!(
        kwh,
        vec![
            ("peak", Energy::from_wh(5_000)),
            ("flat", Energy::from_wh(14_000)),
            ("valley", Energy::from_wh(4_000)),
        ]
    );
    assert_eq!(c.energy_fee, yuan(dec!(16.00)));
    assert_eq!(c.service_fee, yuan(dec!(11.50)));
}

#[test]
fn readings_are_checked() {
    let t = shanghai();
    assert_eq!(
        t.cost(&[r("2026-05-01T00:00:00Z", 0)]),
        Err(CostError::TooFewReadings { count: 1 })
    );
    assert!(matches!(
        t.cost(&[r("2026-05-01T01:00:00Z", 0), r("2026-05-01T00:00:00Z", 10)]),
        Err(CostError::OutOfOrder { index: 1, .. })
    ));
    assert!(matches!(
        t.cost(&[r("2026-05-01T00:00:00Z", 10), r("2026-05-01T01:00:00Z", 9)]),
        Err(CostError::RegisterWentBackwards { index: 1, .. })
    ));
    assert!(matches!(
        t.cost(&[r("2026-05-01T00:00:00Z", -1), r("2026-05-01T01:00:00Z", 9)]),
        Err(CostError::NegativeRegister { index: 0, .. })
    ));
    assert!(matches!(
        t.cost(&[r("2026-05-01T00:00:00Z", 0), r("2026-06-02T00:00:00Z", 9)]),
        Err(CostError::Span(SpanError::TooLong { .. }))
    ));
    assert!(matches!(
        t.cost(&[
            r("2026-05-01T00:00:00Z", 0),
            r("2026-05-01T01:00:00Z", limits::MAX_SESSION_ENERGY_MWH + 1)
        ]),
        Err(CostError::EnergyTooLarge { .. })
    ));
    let msg = CostError::RegisterWentBackwards {
        index: 3,
        previous: Energy::from_wh(2),
        register: Energy::from_wh(1),
    }
    .to_string();
    assert!(msg.contains("never decreases"), "{msg}");
}

#[test]
fn largest_session_prices_without_overflow() {
    let t = shanghai();
    let c = t
        .cost(&[
            r("2026-05-01T00:00:00Z", 0),
            r("2026-05-31T00:00:00Z", limits::MAX_SESSION_ENERGY_MWH),
        ])
        .unwrap();
    assert_eq!(
        c.total_energy,
        Energy::from_mwh(limits::MAX_SESSION_ENERGY_MWH)
    );
}

#[test]
fn cents_go_to_the_largest_remainders_ties_to_the_earliest() {
    let m = |d| yuan(d);
    // 3 × 0.3333... = 0.9999... → 1.00: floors 0.33 × 3 = 0.99, 1 fen to the first (tie).
    let third = Decimal::ONE / Decimal::from(3);
    let exact = [m(third), m(third), m(third)];
    let total: Money = exact.iter().sum();
    let out = allocate_cents(&exact, total.round_cents());
    assert_eq!(out, vec![m(dec!(0.34)), m(dec!(0.33)), m(dec!(0.33))]);
    // 0.004 + 0.004 + 0.004 = 0.012 → 0.01, to the first of three equal remainders.
    let out = allocate_cents(&[m(dec!(0.004)); 3], m(dec!(0.01)));
    assert_eq!(out, vec![m(dec!(0.01)), m(dec!(0)), m(dec!(0))]);
    // A line with whole fen never gets an extra one.
    let out = allocate_cents(&[m(dec!(1.00)), m(dec!(0.006))], m(dec!(1.01)));
    assert_eq!(out, vec![m(dec!(1.00)), m(dec!(0.01))]);
    assert!(allocate_cents(&[], Money::ZERO).is_empty());
}
