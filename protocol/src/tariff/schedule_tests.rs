//! Unit tests of `schedule.rs`: one per rule and per error.

use super::*;
use crate::tariff::model::tests::{hm, shanghai, yuan};
use crate::tariff::model::{ScheduleEntry, TariffVersion};
use rust_decimal_macros::dec;

fn ts(s: &str) -> Timestamp {
    s.parse().unwrap()
}

fn names(t: &Tariff, segs: &[Segment]) -> Vec<(String, String, String)> {
    segs.iter()
        .map(|s| {
            (
                s.start.to_string(),
                s.end.to_string(),
                t.periods()[s.period].name.clone(),
            )
        })
        .collect()
}

/// valley 00:00, peak 02:30, flat 08:00, valley 22:00 in Europe/Berlin.
fn berlin() -> Tariff {
    Tariff::new(
        TariffVersion(7),
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
    .unwrap()
}

fn s(a: &str, b: &str, n: &str) -> (String, String, String) {
    (a.into(), b.into(), n.into())
}

#[test]
fn segments_cross_midnight_and_merge_runs() {
    let t = shanghai();
    // Shanghai is UTC+8: 21:00 local = 13:00Z; 09:00 next day local = 01:00Z.
    let segs = t
        .segments(ts("2026-05-01T13:00:00Z"), ts("2026-05-02T01:00:00Z"))
        .unwrap();
    assert_eq!(
        names(&t, &segs),
        vec![
            s("2026-05-01T13:00:00Z", "2026-05-01T14:00:00Z", "peak"),
            // 22:00 to 08:00 local is one valley run across midnight.
            s("2026-05-01T14:00:00Z", "2026-05-02T00:00:00Z", "valley"),
            s("2026-05-02T00:00:00Z", "2026-05-02T01:00:00Z", "peak"),
        ]
    );
}

#[test]
fn empty_span_has_no_segments_and_bad_spans_are_refused() {
    let t = shanghai();
    let a = ts("2026-05-01T13:00:00Z");
    assert_eq!(t.segments(a, a).unwrap(), vec![]);
    assert!(matches!(
        t.segments(a, ts("2026-05-01T12:00:00Z")),
        Err(SpanError::EndsBeforeStart { .. })
    ));
    assert!(matches!(
        t.segments(a, ts("2026-06-01T13:00:01Z")),
        Err(SpanError::TooLong { .. })
    ));
    assert_eq!(
        t.segments(a, ts("2026-06-01T13:00:00Z")).unwrap().len(),
        31 * 4 + 1
    );
}

#[test]
fn period_at_boundary_belongs_to_the_new_period() {
    let t = shanghai();
    assert_eq!(t.period_at(ts("2026-05-01T00:00:00Z")).name, "peak"); // 08:00 local
    assert_eq!(
        t.period_at(ts("2026-04-30T23:59:59.999999999Z")).name,
        "valley"
    );
    assert_eq!(
        t.price_at(ts("2026-05-01T04:00:00Z")).total(),
        yuan(dec!(1.3))
    ); // flat
}

#[test]
fn spring_forward_day_has_23_hours_and_gap_boundary_starts_after_the_gap() {
    let t = berlin();
    // 2026-03-29: 02:00 CET (01:00Z) jumps to 03:00 CEST. 00:00 CET = 28th 23:00Z,
    // next midnight 00:00 CEST = 29th 22:00Z. 02:30 does not exist: peak from 01:00Z.
    let segs = t
        .segments(ts("2026-03-28T23:00:00Z"), ts("2026-03-29T22:00:00Z"))
        .unwrap();
    assert_eq!(
        names(&t, &segs),
        vec![
            s("2026-03-28T23:00:00Z", "2026-03-29T01:00:00Z", "valley"),
            s("2026-03-29T01:00:00Z", "2026-03-29T06:00:00Z", "peak"),
            s("2026-03-29T06:00:00Z", "2026-03-29T20:00:00Z", "flat"),
            s("2026-03-29T20:00:00Z", "2026-03-29T22:00:00Z", "valley"),
        ]
    );
    let hours: i128 = segs.iter().map(Segment::nanos).sum::<i128>() / 3_600_000_000_000;
    assert_eq!(hours, 23);
    assert_eq!(t.period_at(ts("2026-03-29T00:59:59Z")).name, "valley");
    assert_eq!(t.period_at(ts("2026-03-29T01:00:00Z")).name, "peak");
}

#[test]
fn fall_back_day_has_25_hours_and_fold_boundary_takes_its_first_occurrence() {
    let t = berlin();
    // 2026-10-25: 03:00 CEST (01:00Z) falls back to 02:00 CET. 00:00 CEST = 24th 22:00Z,
    // next midnight 00:00 CET = 25th 23:00Z. 02:30 happens at 00:30Z and at 01:30Z; peak
    // starts at the first and stays through the repeated 02:00-02:30 CET.
    let segs = t
        .segments(ts("2026-10-24T22:00:00Z"), ts("2026-10-25T23:00:00Z"))
        .unwrap();
    assert_eq!(
        names(&t, &segs),
        vec![
            s("2026-10-24T22:00:00Z", "2026-10-25T00:30:00Z", "valley"),
            s("2026-10-25T00:30:00Z", "2026-10-25T07:00:00Z", "peak"),
            s("2026-10-25T07:00:00Z", "2026-10-25T21:00:00Z", "flat"),
            s("2026-10-25T21:00:00Z", "2026-10-25T23:00:00Z", "valley"),
        ]
    );
    let hours: i128 = segs.iter().map(Segment::nanos).sum::<i128>() / 3_600_000_000_000;
    assert_eq!(hours, 25);
    // 02:15 CET, second pass of the fold: still peak.
    assert_eq!(t.period_at(ts("2026-10-25T01:15:00Z")).name, "peak");
}

#[test]
fn several_boundaries_in_one_gap_keep_only_the_last() {
    let t = Tariff::new(
        TariffVersion(1),
        TimeZone::get("Europe/Berlin").unwrap(),
        vec![
            TariffPeriod::new("a", yuan(dec!(1)), yuan(dec!(0))),
            TariffPeriod::new("b", yuan(dec!(2)), yuan(dec!(0))),
            TariffPeriod::new("c", yuan(dec!(3)), yuan(dec!(0))),
        ],
        vec![
            ScheduleEntry::new(hm(0, 0), 0),
            ScheduleEntry::new(hm(2, 10), 1),
            ScheduleEntry::new(hm(2, 40), 2),
        ],
    )
    .unwrap();
    let segs = t
        .segments(ts("2026-03-29T00:00:00Z"), ts("2026-03-29T02:00:00Z"))
        .unwrap();
    assert_eq!(
        names(&t, &segs),
        vec![
            s("2026-03-29T00:00:00Z", "2026-03-29T01:00:00Z", "a"),
            s("2026-03-29T01:00:00Z", "2026-03-29T02:00:00Z", "c"),
        ]
    );
}

#[test]
fn single_period_tariff_is_one_segment() {
    let t = Tariff::new(
        TariffVersion(1),
        TimeZone::get("Europe/Berlin").unwrap(),
        vec![TariffPeriod::new("flat", yuan(dec!(1)), yuan(dec!(0)))],
        vec![ScheduleEntry::new(hm(0, 0), 0)],
    )
    .unwrap();
    let segs = t
        .segments(ts("2026-03-27T00:00:00Z"), ts("2026-04-03T00:00:00Z"))
        .unwrap();
    assert_eq!(segs.len(), 1);
    assert_eq!(segs[0].period, 0);
}
