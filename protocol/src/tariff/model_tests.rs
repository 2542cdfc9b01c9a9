//! Unit tests of `model.rs`: one per rule and per error.

use super::*;
use rust_decimal_macros::dec;

pub(crate) fn yuan(d: Decimal) -> Money {
    Money::from_yuan(d)
}

pub(crate) fn hm(h: u8, m: u8) -> TimeOfDay {
    TimeOfDay::new(h, m).unwrap()
}

/// valley 00:00, peak 08:00, flat 12:00, peak 17:00, valley 22:00 (Shanghai).
pub(crate) fn shanghai() -> Tariff {
    Tariff::new(
        TariffVersion(1),
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

fn with(periods: Vec<TariffPeriod>, schedule: Vec<ScheduleEntry>) -> Result<Tariff, TariffError> {
    Tariff::new(
        TariffVersion(1),
        TimeZone::get("UTC").unwrap(),
        periods,
        schedule,
    )
}

fn one(name: &str, price: Decimal) -> TariffPeriod {
    TariffPeriod::new(name, yuan(price), yuan(dec!(0.1)))
}

#[test]
fn time_of_day_parses_and_prints_hh_mm() {
    assert_eq!("07:30".parse::<TimeOfDay>().unwrap(), hm(7, 30));
    assert_eq!("7:05".parse::<TimeOfDay>().unwrap().to_string(), "07:05");
    for bad in [
        "24:00", "12:60", "12", "12:5", "-1:00", "ab:cd", "", "123:00",
    ] {
        assert!(bad.parse::<TimeOfDay>().is_err(), "{bad}");
    }
    assert!(TimeOfDay::from_minutes(1_440).is_err());
    assert_eq!(TimeOfDay::from_minutes(1_439).unwrap(), hm(23, 59));
}

#[test]
fn valid_tariff_is_accepted() {
    let t = shanghai();
    assert_eq!(t.time_zone_name(), "Asia/Shanghai");
    assert_eq!(t.periods().len(), 3);
    assert_eq!(t.schedule().len(), 5);
}

#[test]
fn tariff_needs_periods_and_a_schedule() {
    let e = ScheduleEntry::new(hm(0, 0), 0);
    assert_eq!(with(vec![], vec![e]), Err(TariffError::NoPeriods));
    assert_eq!(
        with(vec![one("a", dec!(1))], vec![]),
        Err(TariffError::EmptySchedule)
    );
}

#[test]
fn schedule_must_start_at_midnight() {
    let r = with(
        vec![one("a", dec!(1))],
        vec![ScheduleEntry::new(hm(0, 1), 0)],
    );
    assert!(matches!(
        r,
        Err(TariffError::ScheduleMustStartAtMidnight { .. })
    ));
}

#[test]
fn schedule_must_strictly_increase() {
    let p = vec![one("a", dec!(1)), one("b", dec!(2))];
    let s = |t: TimeOfDay| {
        vec![
            ScheduleEntry::new(hm(0, 0), 0),
            ScheduleEntry::new(hm(8, 0), 1),
            ScheduleEntry::new(t, 0),
        ]
    };
    assert!(matches!(
        with(p.clone(), s(hm(8, 0))),
        Err(TariffError::ScheduleNotIncreasing { index: 2, .. })
    ));
    assert!(matches!(
        with(p.clone(), s(hm(7, 0))),
        Err(TariffError::ScheduleNotIncreasing { index: 2, .. })
    ));
    assert!(with(p, s(hm(8, 1))).is_ok());
}

#[test]
fn schedule_must_name_existing_periods() {
    let r = with(
        vec![one("a", dec!(1))],
        vec![ScheduleEntry::new(hm(0, 0), 1)],
    );
    assert!(matches!(
        r,
        Err(TariffError::UnknownPeriod { period: 1, .. })
    ));
}

#[test]
fn sizes_are_bounded() {
    let many: Vec<_> = (0..49).map(|i| one(&format!("p{i}"), dec!(1))).collect();
    let e = vec![ScheduleEntry::new(hm(0, 0), 0)];
    assert!(matches!(
        with(many, e),
        Err(TariffError::TooManyPeriods { count: 49, .. })
    ));
    let entries: Vec<_> = (0..289)
        .map(|m| ScheduleEntry::new(TimeOfDay::from_minutes(m).unwrap(), 0))
        .collect();
    assert!(matches!(
        with(vec![one("a", dec!(1))], entries),
        Err(TariffError::TooManyScheduleEntries { count: 289, .. })
    ));
}

#[test]
fn period_names_are_checked() {
    let e = || vec![ScheduleEntry::new(hm(0, 0), 0)];
    assert!(matches!(
        with(vec![one(" ", dec!(1))], e()),
        Err(TariffError::EmptyPeriodName { .. })
    ));
    assert!(matches!(
        with(vec![one(&"x".repeat(33), dec!(1))], e()),
        Err(TariffError::PeriodNameTooLong { .. })
    ));
    assert!(matches!(
        with(vec![one("a", dec!(1)), one("a", dec!(2))], e()),
        Err(TariffError::DuplicatePeriodName { .. })
    ));
}

#[test]
fn prices_are_checked() {
    let e = || vec![ScheduleEntry::new(hm(0, 0), 0)];
    assert!(matches!(
        with(vec![one("a", dec!(-0.01))], e()),
        Err(TariffError::NegativePrice { .. })
    ));
    assert!(matches!(
        with(vec![one("a", dec!(10000.01))], e()),
        Err(TariffError::PriceTooHigh { .. })
    ));
    assert!(matches!(
        with(vec![one("a", dec!(0.123456789))], e()),
        Err(TariffError::PriceTooPrecise { .. })
    ));
    // Trailing zeros do not count as precision.
    assert!(with(vec![one("a", dec!(0.1234567800000))], e()).is_ok());
    assert!(with(vec![one("a", dec!(0))], e()).is_ok());
}

#[test]
fn fixed_offset_zone_is_refused() {
    let r = Tariff::new(
        TariffVersion(1),
        TimeZone::fixed(jiff::tz::offset(8)),
        vec![one("a", dec!(1))],
        vec![ScheduleEntry::new(hm(0, 0), 0)],
    );
    assert_eq!(r, Err(TariffError::TimeZoneWithoutName));
}

#[test]
fn serde_round_trips_and_validates() {
    let t = shanghai();
    let json = serde_json::to_string(&t).unwrap();
    assert!(json.contains("\"time_zone\":\"Asia/Shanghai\""), "{json}");
    assert!(json.contains("\"start\":\"08:00\""), "{json}");
    let back: Tariff = serde_json::from_str(&json).unwrap();
    assert_eq!(back, t);

    let bad_zone = json.replace("Asia/Shanghai", "Mars/Olympus");
    let err = serde_json::from_str::<Tariff>(&bad_zone)
        .unwrap_err()
        .to_string();
    assert!(err.contains("not a known IANA time zone"), "{err}");
    let late_start = json.replacen("\"00:00\"", "\"00:30\"", 1);
    let err = serde_json::from_str::<Tariff>(&late_start)
        .unwrap_err()
        .to_string();
    assert!(err.contains("must start at 00:00"), "{err}");
}
