//! Unit tests of `reverse_lines.rs`: export from the record's registers and the readings,
//! import kept apart, anomalies from every source, and pricing per period.

use jiff::tz::TimeZone;
use rust_decimal_macros::dec;
use voltline_protocol::domain::{ConnectorNo, PileCode, TransactionSerial};
use voltline_protocol::message::v2g::DischargeStopReason;
use voltline_protocol::sync::RegisterPair;
use voltline_protocol::tariff::{ScheduleEntry, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::Money;

use super::*;

fn t(s: i64) -> Timestamp {
    // 2026-03-02T00:00:00Z is 08:00 in Shanghai.
    Timestamp::from_second(1_772_409_600 + s).unwrap()
}

fn wh(n: i64) -> Energy {
    Energy::from_wh(n)
}

fn record(start: i64, end: i64, energy: i64) -> DischargeRecord {
    DischargeRecord {
        serial: TransactionSerial::NONE,
        pile_code: PileCode::from_number(32_010_600_000_001).unwrap(),
        connector: ConnectorNo::new(1).unwrap(),
        start_time: Cp56Time::UNSET,
        end_time: Cp56Time::UNSET,
        export_register_start: wh(start),
        export_register_end: wh(end),
        exported_energy: wh(energy),
        stop_reason: DischargeStopReason(0x40),
    }
}

fn reading(s: i64, import: i64, export: i64) -> StoredReading {
    StoredReading {
        at: t(s),
        import: wh(import),
        export: Some(wh(export)),
    }
}

/// 0.50 yuan/kWh before 09:00 local, 1.20 after (a feed-in tariff: no service fee).
fn feed_in() -> Tariff {
    Tariff::new(
        TariffVersion(3),
        TimeZone::get("Asia/Shanghai").unwrap(),
        vec![
            TariffPeriod::new("valley", Money::from_yuan(dec!(0.50)), Money::ZERO),
            TariffPeriod::new("peak", Money::from_yuan(dec!(1.20)), Money::ZERO),
        ],
        vec![
            ScheduleEntry::new(TimeOfDay::new(0, 0).unwrap(), 0),
            ScheduleEntry::new(TimeOfDay::new(9, 0).unwrap(), 1),
        ],
    )
    .unwrap()
}

fn charge() -> Tariff {
    Tariff::new(
        TariffVersion(7),
        TimeZone::get("Asia/Shanghai").unwrap(),
        vec![TariffPeriod::new(
            "flat",
            Money::from_yuan(dec!(0.80)),
            Money::from_yuan(dec!(0.40)),
        )],
        vec![ScheduleEntry::new(TimeOfDay::new(0, 0).unwrap(), 0)],
    )
    .unwrap()
}

#[test]
fn export_is_priced_per_period_from_the_record_and_the_readings() {
    // 2 kWh before 09:00 local, 3 kWh after.
    let m = measure_session(
        &record(10_000, 15_000, 5_000),
        None,
        (t(0), t(7_200)),
        &[reading(3_600, 0, 12_000), reading(3_601, 0, 12_000)],
    );
    assert!(!m.flagged());
    assert_eq!(m.export.energy, wh(5_000));
    assert_eq!(m.import.energy, Energy::ZERO);
    let (export, import) = price_lines(&m, &feed_in(), None).unwrap();
    assert!(import.is_none());
    // 2 × 0.50 + 3 × 1.20 = 4.60.
    assert_eq!(export.total, Money::from_yuan(dec!(4.60)));
}

#[test]
fn a_mixed_session_keeps_import_and_export_apart() {
    let metering = BidirectionalMetering {
        import_energy: wh(4_000),
        export_energy: wh(3_000),
        first_registers: Some(RegisterPair {
            import: wh(100),
            export: wh(1_000),
        }),
        last_registers: Some(RegisterPair {
            import: wh(4_100),
            export: wh(4_000),
        }),
        anomalies: vec![],
        anomaly_count: 0,
    };
    let m = measure_session(
        &record(1_000, 4_000, 3_000),
        Some(&metering),
        (t(0), t(7_200)),
        &[
            reading(1_800, 2_100, 1_000),
            reading(3_600, 2_100, 1_000),
            reading(5_400, 2_100, 4_000),
        ],
    );
    assert_eq!((m.import.energy, m.export.energy), (wh(4_000), wh(3_000)));
    assert!(!m.flagged());
    let (export, import) = price_lines(&m, &feed_in(), Some(&charge())).unwrap();
    // Export: all after 09:00 local at 1.20 → 3.60; import 4 kWh × 1.20 → 4.80.
    assert_eq!(export.total, Money::from_yuan(dec!(3.60)));
    assert_eq!(import.unwrap().total, Money::from_yuan(dec!(4.80)));
    assert!(matches!(
        price_lines(&m, &feed_in(), None),
        Err(PriceError::NoChargeTariff { .. })
    ));
}

#[test]
fn a_register_reset_mid_session_is_flagged_and_not_billed_negative() {
    let m = measure_session(
        &record(10_000, 500, 0),
        None,
        (t(0), t(7_200)),
        &[
            reading(1_000, 0, 12_000),
            reading(2_000, 0, 0),
            reading(3_000, 0, 200),
        ],
    );
    assert!(m.flagged());
    assert!(m
        .anomalies
        .iter()
        .any(|a| a.kind == AnomalyKind::Decreased && a.register == Register::Export));
    assert!(m
        .anomalies
        .iter()
        .any(|a| a.kind == AnomalyKind::RecordInconsistent));
    // 2 kWh before the reset, 0.5 kWh after it; the drop counts nothing.
    assert_eq!(m.export.energy, wh(2_500));
    let (export, _) = price_lines(&m, &feed_in(), None).unwrap();
    assert!(!export.total.is_negative());
}

#[test]
fn a_record_ending_below_its_start_bills_nothing_and_is_flagged() {
    let m = measure_session(&record(9_000, 1_000, 0), None, (t(0), t(60)), &[]);
    assert_eq!(m.export.energy, Energy::ZERO);
    assert_eq!(m.anomaly_count, 2);
    assert_eq!(
        price_lines(&m, &feed_in(), None).unwrap().0.total,
        Money::ZERO
    );
}

#[test]
fn the_edge_s_listed_anomalies_flag_the_session_too() {
    let metering = BidirectionalMetering {
        anomalies: vec![RegisterAnomaly {
            register: Register::Import,
            kind: AnomalyKind::Rollover,
            at: t(30),
            before: wh(1),
            reading: wh(0),
        }],
        anomaly_count: 3,
        ..BidirectionalMetering::default()
    };
    let m = measure_session(
        &record(0, 1_000, 1_000),
        Some(&metering),
        (t(0), t(60)),
        &[],
    );
    assert_eq!(m.anomaly_count, 3);
    assert_eq!(m.anomalies.len(), 1);
}

#[test]
fn readings_outside_the_session_are_ignored() {
    let m = measure_session(
        &record(1_000, 2_000, 1_000),
        None,
        (t(100), t(200)),
        &[reading(50, 0, 99_000), reading(300, 0, 0)],
    );
    assert_eq!(m.export.energy, wh(1_000));
    assert!(!m.flagged());
}
