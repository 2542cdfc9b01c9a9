//! Bidirectional metering of one session (V2G piles, 0xC7): the import and the export
//! register are tracked apart, each as the sum of its own increases, and never netted.
//!
//! A register that reads lower than its last reading is not energy: each register is
//! counted with the protocol crate's [`RegisterTrack`], the rule the cloud counts stored
//! readings with (late frames dropped, resets and rollovers listed as anomalies, never
//! negative energy). This module adds the session's book: both registers, repeats, the
//! bounded anomaly list, and the pile record's own consistency. Pure: no I/O, no clock.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::Energy;
use voltline_protocol::message::v2g::DischargeRecord;
use voltline_protocol::metering::RegisterTrack;
use voltline_protocol::sync::{
    AnomalyKind, BidirectionalMetering, Register, RegisterAnomaly, RegisterPair,
    MAX_LISTED_ANOMALIES,
};

/// What one reading did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pushed {
    /// False for a reading identical to the last one (a repeat): the caller ignores it.
    pub fresh: bool,
    /// Anomalies this reading confirmed (to raise as alarms).
    pub anomalies: Vec<RegisterAnomaly>,
}

/// The metering of one session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterBook {
    metering: BidirectionalMetering,
    import: RegisterTrack,
    export: RegisterTrack,
    /// The last pair read, accepted or not (to recognise repeats).
    last_raw: Option<RegisterPair>,
}

impl RegisterBook {
    /// What was measured so far (pending lower readings are not in it yet).
    pub fn metering(&self) -> &BidirectionalMetering {
        &self.metering
    }

    /// Energy out of the vehicle so far.
    pub fn export_energy(&self) -> Energy {
        self.metering.export_energy
    }

    /// Takes a pair of registers read at `at`.
    pub fn push(&mut self, at: Timestamp, import: Energy, export: Energy) -> Pushed {
        let pair = RegisterPair { import, export };
        if self.last_raw == Some(pair) {
            return Pushed::default();
        }
        self.last_raw = Some(pair);
        let mut pushed = Pushed {
            fresh: true,
            anomalies: Vec::new(),
        };
        let Some(_) = self.metering.first_registers else {
            self.metering.first_registers = Some(pair);
            self.metering.last_registers = Some(pair);
            self.import = RegisterTrack::starting_at(import);
            self.export = RegisterTrack::starting_at(export);
            return pushed;
        };
        for register in [Register::Import, Register::Export] {
            let (track, reading) = match register {
                Register::Import => (&mut self.import, import),
                Register::Export => (&mut self.export, export),
            };
            let (counted, anomaly) = track.step(register, at, reading);
            match register {
                Register::Import => self.metering.import_energy += counted,
                Register::Export => self.metering.export_energy += counted,
            }
            if let Some(a) = anomaly {
                pushed.anomalies.push(a);
            }
        }
        for a in &pushed.anomalies {
            self.list(a.clone());
        }
        self.metering.last_registers = Some(RegisterPair {
            import: self.import.last(),
            export: self.export.last(),
        });
        pushed
    }

    fn list(&mut self, a: RegisterAnomaly) {
        self.metering.anomaly_count = self.metering.anomaly_count.saturating_add(1);
        if self.metering.anomalies.len() < MAX_LISTED_ANOMALIES {
            self.metering.anomalies.push(a);
        }
    }

    /// The session's metering as it goes up with the pile's record: lower readings still
    /// pending are listed, and a record that contradicts itself is flagged.
    pub fn close(&self, record: &DischargeRecord, at: Timestamp) -> BidirectionalMetering {
        let mut book = self.clone();
        for (register, track) in [
            (Register::Import, self.import),
            (Register::Export, self.export),
        ] {
            if let Some(anomaly) = track.finish(register) {
                book.list(anomaly);
            }
        }
        let consistent = record.export_register_end >= record.export_register_start
            && record.export_register_end - record.export_register_start == record.exported_energy;
        if !consistent {
            book.list(RegisterAnomaly {
                register: Register::Export,
                kind: AnomalyKind::RecordInconsistent,
                at,
                before: record.export_register_start,
                reading: record.export_register_end,
            });
        }
        book.metering
    }
}

#[cfg(test)]
mod tests {
    use voltline_protocol::domain::{ConnectorNo, PileCode, TransactionSerial};
    use voltline_protocol::message::v2g::DischargeStopReason;
    use voltline_protocol::wire::cp56::Cp56Time;

    use voltline_protocol::metering::REGISTER_MAX_MWH;

    use super::*;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_700_000_000 + s).unwrap()
    }

    fn wh(n: i64) -> Energy {
        Energy::from_wh(n)
    }

    fn book(readings: &[(i64, i64)]) -> (RegisterBook, Vec<RegisterAnomaly>) {
        let mut b = RegisterBook::default();
        let mut all = Vec::new();
        for (i, (imp, exp)) in readings.iter().enumerate() {
            all.extend(b.push(t(i as i64 * 15), wh(*imp), wh(*exp)).anomalies);
        }
        (b, all)
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

    #[test]
    fn import_and_export_are_counted_apart_and_never_netted() {
        // Charges 2 kWh, then discharges 3 kWh, then charges 1 kWh again.
        let (b, anomalies) = book(&[(100, 50), (2_100, 50), (2_100, 3_050), (3_100, 3_050)]);
        assert!(anomalies.is_empty());
        let m = b.metering();
        assert_eq!((m.import_energy, m.export_energy), (wh(3_000), wh(3_000)));
        assert_eq!(
            m.first_registers,
            Some(RegisterPair {
                import: wh(100),
                export: wh(50)
            })
        );
        assert_eq!(m.last_registers.unwrap().import, wh(3_100));
    }

    #[test]
    fn a_repeated_reading_is_not_fresh() {
        let mut b = RegisterBook::default();
        assert!(b.push(t(0), wh(1), wh(2)).fresh);
        assert!(!b.push(t(15), wh(1), wh(2)).fresh);
    }

    #[test]
    fn a_late_frame_is_dropped_without_counting_twice() {
        // 150 Wh export arrives after 200 Wh: stale; the next 250 Wh counts from 200.
        let (b, anomalies) = book(&[(0, 100), (0, 200), (0, 150), (0, 250)]);
        assert!(anomalies.is_empty(), "{anomalies:?}");
        assert_eq!(b.metering().export_energy, wh(150));
        assert_eq!(b.metering().anomaly_count, 0);
    }

    #[test]
    fn a_reset_is_flagged_and_counting_goes_on_from_the_new_baseline() {
        let (b, anomalies) = book(&[(0, 1_000), (0, 1_500), (0, 0), (0, 300)]);
        assert_eq!(anomalies.len(), 1);
        let a = &anomalies[0];
        assert_eq!(
            (a.register, a.kind),
            (Register::Export, AnomalyKind::Decreased)
        );
        assert_eq!((a.before, a.reading), (wh(1_500), wh(0)));
        assert_eq!(b.metering().export_energy, wh(800), "500 before, 300 after");
        assert!(b.metering().export_energy >= Energy::ZERO);
        assert_eq!(b.metering().anomaly_count, 1);
    }

    #[test]
    fn a_rollover_is_told_from_a_reset() {
        let near_max = REGISTER_MAX_MWH / 100 * 99 / 1_000;
        let (_, anomalies) = book(&[(near_max, 0), (near_max + 1, 0), (1, 0), (2, 0)]);
        assert_eq!(anomalies.len(), 1);
        assert_eq!(
            (anomalies[0].register, anomalies[0].kind),
            (Register::Import, AnomalyKind::Rollover)
        );
    }

    #[test]
    fn two_drops_in_a_row_are_two_anomalies_and_count_nothing() {
        let (b, anomalies) = book(&[(0, 1_000), (0, 500), (0, 200), (0, 260)]);
        assert_eq!(anomalies.len(), 2, "{anomalies:?}");
        assert_eq!(b.metering().export_energy, wh(60));
    }

    #[test]
    fn a_drop_still_pending_at_the_end_is_listed_with_the_record() {
        let (b, anomalies) = book(&[(0, 1_000), (0, 1_200), (0, 10)]);
        assert!(anomalies.is_empty());
        let m = b.close(&record(1_000, 1_200, 200), t(60));
        assert_eq!(m.anomaly_count, 1);
        assert_eq!(m.anomalies[0].reading, wh(10));
        assert_eq!(m.export_energy, wh(200));
    }

    #[test]
    fn a_record_that_contradicts_itself_is_flagged() {
        let b = RegisterBook::default();
        for r in [record(1_000, 900, 0), record(1_000, 1_200, 300)] {
            let m = b.close(&r, t(0));
            assert_eq!(m.anomalies[0].kind, AnomalyKind::RecordInconsistent);
        }
        assert_eq!(b.close(&record(1_000, 1_200, 200), t(0)).anomaly_count, 0);
    }

    #[test]
    fn the_listed_anomalies_are_bounded_but_all_are_counted() {
        let mut b = RegisterBook::default();
        let mut n = 0;
        b.push(t(0), wh(0), wh(1_000_000));
        for i in 1..100 {
            // Each pair: a drop, then a reading continuing from it (a confirmed reset).
            let low = 1_000_000 - i * 5_000;
            b.push(t(i * 30), wh(0), wh(low));
            n += b.push(t(i * 30 + 15), wh(0), wh(low + 1)).anomalies.len();
        }
        assert_eq!(n, 99);
        assert_eq!(b.metering().anomaly_count, 99);
        assert_eq!(b.metering().anomalies.len(), MAX_LISTED_ANOMALIES);
    }
}
