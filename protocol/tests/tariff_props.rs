//! Properties of the tariff and its cost function, over random tariffs (in zones with and
//! without DST) and random meter readings, plus fixed cases whose amounts are computed by
//! hand in the comments: across midnight, across a period boundary, and across the
//! Europe/Berlin DST changes of 2026 (spring forward 03-29, a 23-hour day; fall back 10-25,
//! a 25-hour day).

use jiff::tz::{AmbiguousOffset, TimeZone};
use jiff::{SignedDuration, Timestamp};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use voltline_protocol::message::register::{BillingModel, Rate, RateKind};
use voltline_protocol::tariff::{
    MeterReading, ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay,
};
use voltline_protocol::{Energy, Money};

const HOUR_NS: i128 = 3_600_000_000_000;
const ZONES: [&str; 4] = [
    "Europe/Berlin",
    "Asia/Shanghai",
    "America/New_York",
    "Australia/Lord_Howe",
];
/// Local midnights (UTC) that open Berlin's DST days in 2026.
const BERLIN_SPRING_DAY: &str = "2026-03-28T23:00:00Z";
const BERLIN_FALL_DAY: &str = "2026-10-24T22:00:00Z";

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn yuan(d: Decimal) -> Money {
    Money::from_yuan(d)
}

fn hm(h: u8, m: u8) -> TimeOfDay {
    TimeOfDay::new(h, m).unwrap()
}

fn reading(at: Timestamp, mwh: i64) -> MeterReading {
    MeterReading::new(at, Energy::from_mwh(mwh))
}

fn add_ns(t: Timestamp, ns: i128) -> Timestamp {
    Timestamp::from_nanosecond(t.as_nanosecond() + ns).unwrap()
}

// ---------------------------------------------------------------------------------------
// Strategies
// ---------------------------------------------------------------------------------------

/// A price of 0..=3 yuan/kWh at 0.00001 yuan.
fn price() -> impl Strategy<Value = Money> {
    (0i64..=300_000).prop_map(|u| Money::from_scaled(u, 5))
}

/// A valid tariff in `zone`: 1..=`max_periods` periods, 1..=12 schedule entries starting
/// at minutes drawn from `starts` (multiples of `step`).
fn tariff_with(
    zone: &'static str,
    max_periods: usize,
    step: u16,
    starts: impl Strategy<Value = u16> + Clone + 'static,
) -> impl Strategy<Value = Tariff> {
    (1usize..=max_periods)
        .prop_flat_map(move |n| {
            (
                prop::collection::vec((price(), price()), n),
                prop::collection::btree_set(starts.clone(), 0..12),
                prop::collection::vec(0..n, 12),
            )
        })
        .prop_map(move |(prices, starts, picks)| {
            let periods = prices
                .into_iter()
                .enumerate()
                .map(|(i, (e, s))| TariffPeriod::new(format!("p{i}"), e, s))
                .collect();
            let schedule = std::iter::once(0)
                .chain(
                    starts
                        .into_iter()
                        .map(|m| m / step * step)
                        .filter(|&m| m > 0),
                )
                .collect::<std::collections::BTreeSet<u16>>()
                .into_iter()
                .zip(picks)
                .map(|(m, p)| ScheduleEntry::new(TimeOfDay::from_minutes(m).unwrap(), p))
                .collect();
            Tariff::new(
                TariffVersion(1),
                TimeZone::get(zone).unwrap(),
                periods,
                schedule,
            )
            .unwrap()
        })
}

/// Any minute-resolution tariff in `zone`.
fn tariff_in(zone: &'static str) -> impl Strategy<Value = Tariff> {
    tariff_with(zone, 6, 1, 1u16..1_440)
}

/// A Berlin tariff whose boundaries crowd around the DST changes (01:00-04:00 local).
fn berlin_dst_tariff() -> impl Strategy<Value = Tariff> {
    tariff_with(
        "Europe/Berlin",
        6,
        1,
        prop_oneof![3 => 60u16..240, 1 => 1u16..1_440],
    )
}

fn any_tariff() -> impl Strategy<Value = Tariff> {
    prop_oneof![
        3 => prop::sample::select(&ZONES[..]).prop_flat_map(tariff_in),
        1 => berlin_dst_tariff(),
    ]
}

/// 2..=24 readings starting near `around` (±3 days), gaps of 0..=6 h (sub-second too,
/// sometimes zero), register steps of 0..=40 kWh (sometimes zero).
fn readings_near(around: Timestamp) -> impl Strategy<Value = Vec<MeterReading>> {
    (
        -3 * 24 * HOUR_NS..3 * 24 * HOUR_NS,
        0i64..1_000_000_000,
        prop::collection::vec(
            (
                prop_oneof![1 => Just(0i128), 6 => 0..6 * HOUR_NS],
                prop_oneof![1 => Just(0i64), 6 => 0i64..=40_000_000],
            ),
            1..24,
        ),
    )
        .prop_map(move |(offset, start_register, steps)| {
            let mut at = add_ns(around, offset);
            let mut register = start_register;
            let mut out = vec![reading(at, register)];
            for (dt, de) in steps {
                at = add_ns(at, dt);
                register += de;
                out.push(reading(at, register));
            }
            out
        })
}

fn any_readings() -> impl Strategy<Value = Vec<MeterReading>> {
    prop::sample::select(vec![
        ts(BERLIN_SPRING_DAY),
        ts(BERLIN_FALL_DAY),
        ts("2026-07-01T12:00:00Z"),
    ])
    .prop_flat_map(readings_near)
}

/// Which period the schedule names for a local minute of the day (the plain wall-clock view).
fn lookup(t: &Tariff, minute_of_day: u16) -> usize {
    t.schedule()
        .iter()
        .rev()
        .find(|e| e.start.minutes() <= minute_of_day)
        .unwrap()
        .period
}

fn local_minute(tz: &TimeZone, at: Timestamp) -> u16 {
    let dt = tz.to_datetime(at);
    dt.hour() as u16 * 60 + dt.minute() as u16
}

// ---------------------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn energy_is_conserved(t in any_tariff(), rs in any_readings()) {
        let c = t.cost(&rs).unwrap();
        let delta = rs[rs.len() - 1].register - rs[0].register;
        prop_assert_eq!(c.total_energy, delta);
        prop_assert_eq!(c.lines.iter().map(|l| l.energy).sum::<Energy>(), delta);
        prop_assert!(c.lines.iter().all(|l| l.energy > Energy::ZERO));
        prop_assert!(c.lines.windows(2).all(|w| w[0].period < w[1].period), "lines in period order");
        let by_period = t.energy_by_period(&rs).unwrap();
        prop_assert_eq!(by_period.iter().copied().sum::<Energy>(), delta);
    }

    #[test]
    fn exact_and_rounded_lines_sum_to_their_totals(t in any_tariff(), rs in any_readings()) {
        let c = t.cost(&rs).unwrap();
        let sum = |f: fn(&voltline_protocol::tariff::CostLine) -> Money| c.lines.iter().map(f).sum::<Money>();
        // Exact.
        prop_assert_eq!(sum(|l| l.energy_fee_exact), c.energy_fee_exact);
        prop_assert_eq!(sum(|l| l.service_fee_exact), c.service_fee_exact);
        for l in &c.lines {
            prop_assert_eq!(l.energy_fee_exact, yuan(l.energy.kwh() * l.energy_price.yuan()));
            prop_assert_eq!(l.service_fee_exact, yuan(l.energy.kwh() * l.service_fee_rate.yuan()));
        }
        // Rounded once, and the rounded lines add up.
        prop_assert_eq!(c.energy_fee, c.energy_fee_exact.round_cents());
        prop_assert_eq!(c.service_fee, c.service_fee_exact.round_cents());
        prop_assert_eq!(sum(|l| l.energy_fee), c.energy_fee);
        prop_assert_eq!(sum(|l| l.service_fee), c.service_fee);
        prop_assert_eq!(c.total, c.energy_fee + c.service_fee);
        prop_assert_eq!(sum(|l| l.total()), c.total);
        // Each rounded amount is a whole fen within one fen of its exact amount.
        let fen = Money::from_cents(1);
        for l in &c.lines {
            for (r, e) in [(l.energy_fee, l.energy_fee_exact), (l.service_fee, l.service_fee_exact)] {
                prop_assert!(r.to_scaled(2).is_ok());
                prop_assert!((r - e).yuan().abs() < fen.yuan(), "{} vs {}", r, e);
            }
        }
        prop_assert!((c.total - c.total_exact()).yuan().abs() <= fen.yuan());
    }

    #[test]
    fn an_interpolated_interior_reading_changes_no_totals(
        t in any_tariff(),
        rs in any_readings(),
        pick in any::<prop::sample::Index>(),
        frac in 0u32..=1_000,
    ) {
        let i = pick.index(rs.len() - 1);
        let (a, b) = (rs[i], rs[i + 1]);
        let span = b.at.as_nanosecond() - a.at.as_nanosecond();
        let at = add_ns(a.at, span * i128::from(frac) / 1_000);
        let delta = (b.register - a.register).mwh();
        let register = a.register.mwh() + (i128::from(delta) * i128::from(frac) / 1_000) as i64;
        let mut split = rs.clone();
        split.insert(i + 1, reading(at, register));
        let whole = t.cost(&rs).unwrap();
        let parts = t.cost(&split).unwrap();
        prop_assert_eq!(whole.total_energy, parts.total_energy);
        prop_assert_eq!(parts.lines.iter().map(|l| l.energy).sum::<Energy>(), whole.total_energy);
        // Pricing in two halves at a reading gives the same energy per period as the whole.
        let first = t.energy_by_period(&split[..=i + 1]).unwrap();
        let second = t.energy_by_period(&split[i + 1..]).unwrap();
        let together: Vec<Energy> = first.iter().zip(&second).map(|(&x, &y)| x + y).collect();
        prop_assert_eq!(together, t.energy_by_period(&split).unwrap());
    }

    #[test]
    fn segments_tile_the_span(
        t in any_tariff(),
        start in -4 * 24 * HOUR_NS..4 * 24 * HOUR_NS,
        len in prop_oneof![Just(0i128), 0..5 * 24 * HOUR_NS],
        around in prop::sample::select(vec![BERLIN_SPRING_DAY, BERLIN_FALL_DAY]),
    ) {
        let from = add_ns(ts(around), start);
        let to = add_ns(from, len);
        let segs = t.segments(from, to).unwrap();
        if from == to {
            prop_assert!(segs.is_empty());
            return Ok(());
        }
        prop_assert_eq!(segs[0].start, from);
        prop_assert_eq!(segs[segs.len() - 1].end, to);
        for s in &segs {
            prop_assert!(s.start < s.end);
            prop_assert_eq!(t.period_index_at(s.start), s.period);
            prop_assert_eq!(t.period_index_at(add_ns(s.end, -1)), s.period);
        }
        for w in segs.windows(2) {
            prop_assert_eq!(w[0].end, w[1].start);
            prop_assert_ne!(w[0].period, w[1].period);
        }
        prop_assert_eq!(segs.iter().map(|s| s.nanos()).sum::<i128>(), len);
    }

    /// The DST rule, checked against the plain wall-clock reading of the schedule: outside
    /// a repeated hour the period is the schedule's for the local time; in the second pass
    /// of a repeated hour it is the one in force just before the clocks went back.
    #[test]
    fn period_follows_the_local_wall_clock_on_dst_days(
        t in berlin_dst_tariff(),
        transition in prop::sample::select(vec!["2026-03-29T01:00:00Z", "2026-10-25T01:00:00Z"]),
        offset in prop_oneof![3 => -3 * HOUR_NS..3 * HOUR_NS, 1 => -24 * HOUR_NS..24 * HOUR_NS],
    ) {
        let tz = t.time_zone().clone();
        let at = add_ns(ts(transition), offset);
        let local = tz.to_datetime(at);
        let expected = match tz.to_ambiguous_timestamp(local).offset() {
            AmbiguousOffset::Fold { after, .. } if tz.to_offset(at) == after => {
                let transition = tz.preceding(add_ns(at, 1)).next().unwrap().timestamp();
                lookup(&t, local_minute(&tz, add_ns(transition, -1)))
            }
            _ => lookup(&t, local_minute(&tz, at)),
        };
        prop_assert_eq!(t.period_index_at(at), expected);
    }

    #[test]
    fn berlin_dst_days_last_23_and_25_hours_and_conserve_energy(
        t in berlin_dst_tariff(),
        fall in any::<bool>(),
        cuts in prop::collection::btree_set(1..23 * HOUR_NS, 0..8),
        energy in 0i64..=100_000_000,
    ) {
        let (day, next, hours) = if fall {
            (BERLIN_FALL_DAY, "2026-10-25T23:00:00Z", 25)
        } else {
            (BERLIN_SPRING_DAY, "2026-03-29T22:00:00Z", 23)
        };
        let (from, to) = (ts(day), ts(next));
        let segs = t.segments(from, to).unwrap();
        prop_assert_eq!(segs.iter().map(|s| s.nanos()).sum::<i128>(), hours * HOUR_NS);
        // Readings at midnight, at random cuts, and at the next midnight, at constant power.
        let total_ns = hours * HOUR_NS;
        let mut rs = vec![reading(from, 0)];
        for c in cuts {
            rs.push(reading(add_ns(from, c), (i128::from(energy) * c / total_ns) as i64));
        }
        rs.push(reading(to, energy));
        let c = t.cost(&rs).unwrap();
        prop_assert_eq!(c.lines.iter().map(|l| l.energy).sum::<Energy>(), Energy::from_mwh(energy));
        // At constant power each period's energy is its share of the day's time, to within
        // one mWh per reading interval and segment.
        let slack = (rs.len() + segs.len()) as i128;
        for l in &c.lines {
            let ns: i128 = segs.iter().filter(|s| s.period == l.period).map(|s| s.nanos()).sum();
            let ideal = i128::from(energy) * ns / total_ns;
            prop_assert!((i128::from(l.energy.mwh()) - ideal).abs() <= slack, "{} vs {}", l.energy.mwh(), ideal);
        }
    }

    #[test]
    fn serde_round_trips(t in any_tariff()) {
        let json = serde_json::to_string(&t).unwrap();
        let back: Tariff = serde_json::from_str(&json).unwrap();
        prop_assert_eq!(back, t);
    }

    #[test]
    fn ykc_billing_models_round_trip(
        prices in prop::collection::vec((price(), price()), 4),
        slots in prop::collection::vec(0u8..4, 48),
    ) {
        let rates: Vec<Rate> = prices.iter().map(|&(energy_price, service_fee)| Rate { energy_price, service_fee }).collect();
        let kinds: Vec<RateKind> = slots.iter().map(|&k| RateKind::try_from(k).unwrap()).collect();
        let model = BillingModel {
            model_no: "0042".parse().unwrap(),
            rates: rates.try_into().unwrap(),
            loss_ratio_pct: 0,
            slots: kinds.try_into().unwrap(),
        };
        let t = Tariff::from_billing_model(&model, TimeZone::get("Asia/Shanghai").unwrap(), TariffVersion(2)).unwrap();
        prop_assert_eq!(t.to_billing_model(model.model_no).unwrap(), model);
    }

    #[test]
    fn half_hour_tariffs_survive_the_ykc_form(t in tariff_with("Asia/Shanghai", 4, 30, 1u16..1_440)) {
        let model = t.to_billing_model("0007".parse().unwrap()).unwrap();
        let back = Tariff::from_billing_model(&model, t.time_zone().clone(), t.version()).unwrap();
        // Same prices at every half hour of a day.
        let midnight = ts("2026-05-01T16:00:00Z"); // 00:00 in Shanghai
        for slot in 0..48i128 {
            let at = add_ns(midnight, slot * HOUR_NS / 2);
            prop_assert_eq!(t.price_at(at), back.price_at(at));
        }
    }
}

// ---------------------------------------------------------------------------------------
// Fixed cases, computed by hand
// ---------------------------------------------------------------------------------------

/// valley 00:00, peak 02:30, flat 08:00, valley 22:00 in Europe/Berlin.
fn berlin() -> Tariff {
    Tariff::new(
        TariffVersion(5),
        TimeZone::get("Europe/Berlin").unwrap(),
        vec![
            TariffPeriod::new("peak", yuan(dec!(1.0)), yuan(dec!(0.5))),
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
    .unwrap()
}

/// valley 00:00, peak 08:00, flat 12:00, peak 17:00, valley 22:00 in Asia/Shanghai.
fn shanghai() -> Tariff {
    Tariff::new(
        TariffVersion(6),
        TimeZone::get("Asia/Shanghai").unwrap(),
        vec![
            TariffPeriod::new("peak", yuan(dec!(1.0)), yuan(dec!(0.8))),
            TariffPeriod::new("flat", yuan(dec!(0.7)), yuan(dec!(0.6))),
            TariffPeriod::new("valley", yuan(dec!(0.3)), yuan(dec!(0.4))),
        ],
        vec![
            ScheduleEntry::new(hm(0, 0), 2),
            ScheduleEntry::new(hm(8, 0), 0),
            ScheduleEntry::new(hm(12, 0), 1),
            ScheduleEntry::new(hm(17, 0), 0),
            ScheduleEntry::new(hm(22, 0), 2),
        ],
    )
    .unwrap()
}

fn line_energy(c: &voltline_protocol::tariff::CostBreakdown) -> Vec<(&str, i64, Money, Money)> {
    c.lines
        .iter()
        .map(|l| (l.name.as_str(), l.energy.mwh(), l.energy_fee, l.service_fee))
        .collect()
}

#[test]
fn fixed_across_midnight() {
    // Berlin, summer (UTC+2): 21:30 local 2026-06-10 to 00:30 local 2026-06-11.
    // 21:30-22:30: 11 kWh, half flat (until 22:00), half valley → 5.5 kWh each.
    // 22:30-00:30: 22 kWh, all valley (one run across midnight) → valley 27.5 kWh.
    // flat:   5.5 × 0.7 = 3.85 energy, 5.5 × 0.5 = 2.75 service
    // valley: 27.5 × 0.3 = 8.25 energy, 27.5 × 0.5 = 13.75 service
    // energy fee 12.10, service fee 16.50, total 28.60.
    let t = berlin();
    let c = t
        .cost(&[
            reading(ts("2026-06-10T19:30:00Z"), 500_000),
            reading(ts("2026-06-10T20:30:00Z"), 11_500_000),
            reading(ts("2026-06-10T22:30:00Z"), 33_500_000),
        ])
        .unwrap();
    assert_eq!(
        line_energy(&c),
        vec![
            ("flat", 5_500_000, yuan(dec!(3.85)), yuan(dec!(2.75))),
            ("valley", 27_500_000, yuan(dec!(8.25)), yuan(dec!(13.75))),
        ]
    );
    assert_eq!(
        (c.energy_fee, c.service_fee, c.total),
        (yuan(dec!(12.10)), yuan(dec!(16.50)), yuan(dec!(28.60)))
    );
}

#[test]
fn fixed_across_a_period_boundary() {
    // Shanghai (UTC+8): 07:55 → 08:02 → 08:05 local; peak starts at 08:00.
    // 07:55-08:02: 3 500 003 mWh over 7 min, 5 valley + 2 peak:
    //   valley floor(3 500 003 × 5/7) = 2 500 002 (rem 1/7), peak floor(× 2/7) = 1 000 000
    //   (rem 6/7); the spare mWh goes to peak → 1 000 001.
    // 08:02-08:05: 1 499 997 mWh, all peak. valley 2 500 002, peak 2 499 998 (sum 5 000 000).
    // energy:  valley 2.500002 × 0.3 = 0.7500006, peak 2.499998 × 1.0 = 2.499998;
    //          exact 3.2499986 → 3.25; floors 0.75 + 2.49, 1 fen to peak (rem .009998) → 2.50.
    // service: valley × 0.4 = 1.0000008, peak × 0.8 = 1.9999984;
    //          exact 2.9999992 → 3.00; floors 1.00 + 1.99, 1 fen to peak → 2.00.
    // total 3.25 + 3.00 = 6.25.
    let t = shanghai();
    let c = t
        .cost(&[
            reading(ts("2026-04-30T23:55:00Z"), 0),
            reading(ts("2026-05-01T00:02:00Z"), 3_500_003),
            reading(ts("2026-05-01T00:05:00Z"), 5_000_000),
        ])
        .unwrap();
    assert_eq!(
        line_energy(&c),
        vec![
            ("peak", 2_499_998, yuan(dec!(2.50)), yuan(dec!(2.00))),
            ("valley", 2_500_002, yuan(dec!(0.75)), yuan(dec!(1.00))),
        ]
    );
    assert_eq!(c.energy_fee_exact, yuan(dec!(3.2499986)));
    assert_eq!(c.service_fee_exact, yuan(dec!(2.9999992)));
    assert_eq!(c.total, yuan(dec!(6.25)));
}

#[test]
fn fixed_fall_back_day() {
    // Berlin 2026-10-25: 03:00 CEST (01:00Z) falls back to 02:00 CET. Session 02:00 CEST
    // (00:00Z) to 03:00 CET (02:00Z): two real hours, 7 777 777 mWh in one interval.
    // Peak (02:30) takes effect at its first occurrence, 02:30 CEST = 00:30Z, and holds
    // through the repeated 02:00-02:30 CET: valley 30 min, peak 90 min.
    //   valley floor(7 777 777 × 30/120) = 1 944 444 (rem .25)
    //   peak   floor(7 777 777 × 90/120) = 5 833 332 (rem .75) + the spare mWh = 5 833 333
    // energy:  valley 1.944444 × 0.3 = 0.5833332, peak 5.833333 × 1.0 = 5.833333;
    //          exact 6.4166662 → 6.42; floors 0.58 + 5.83 = 6.41; remainders .0033332 (valley)
    //          > .0033330 (peak) → valley 0.59, peak 5.83.
    // service: valley × 0.5 = 0.972222, peak × 0.5 = 2.9166665;
    //          exact 3.8888885 → 3.89; floors 0.97 + 2.91 = 3.88; 1 fen to peak → 2.92.
    // total 6.42 + 3.89 = 10.31.
    let t = berlin();
    let c = t
        .cost(&[
            reading(ts("2026-10-25T00:00:00Z"), 0),
            reading(ts("2026-10-25T02:00:00Z"), 7_777_777),
        ])
        .unwrap();
    assert_eq!(
        line_energy(&c),
        vec![
            ("peak", 5_833_333, yuan(dec!(5.83)), yuan(dec!(2.92))),
            ("valley", 1_944_444, yuan(dec!(0.59)), yuan(dec!(0.97))),
        ]
    );
    assert_eq!(
        (c.energy_fee, c.service_fee, c.total),
        (yuan(dec!(6.42)), yuan(dec!(3.89)), yuan(dec!(10.31)))
    );
}

#[test]
fn fixed_spring_forward_day() {
    // Berlin 2026-03-29, 23-hour day, readings every local hour at 1 kW (1 000 000 mWh/h).
    // valley 00:00-02:00 CET (2 h) + 22:00-24:00 (2 h) = 4 kWh; 02:30 does not exist, so
    // peak runs from 03:00 CEST (01:00Z) to 08:00 (5 h) = 5 kWh; flat 08:00-22:00 = 14 kWh.
    // energy 4 × 0.3 + 5 × 1.0 + 14 × 0.7 = 16.00; service 23 × 0.5 = 11.50; total 27.50.
    let t = berlin();
    let from = ts(BERLIN_SPRING_DAY);
    let rs: Vec<_> = (0..=23i64)
        .map(|h| reading(from + SignedDuration::from_hours(h), h * 1_000_000))
        .collect();
    let c = t.cost(&rs).unwrap();
    assert_eq!(
        line_energy(&c),
        vec![
            ("peak", 5_000_000, yuan(dec!(5.00)), yuan(dec!(2.50))),
            ("flat", 14_000_000, yuan(dec!(9.80)), yuan(dec!(7.00))),
            ("valley", 4_000_000, yuan(dec!(1.20)), yuan(dec!(2.00))),
        ]
    );
    assert_eq!(c.total, yuan(dec!(27.50)));
}
