//! The bills a session leaves behind: the 0x3B record of a finished charging session,
//! checkpoints of sessions in progress (for flash), and the records of sessions a power cut
//! interrupted, billed from their last checkpoint.

use voltline_protocol::domain::Energy;
use voltline_protocol::message::record::TransactionRecord;
use voltline_protocol::message::stop_reason::StopReason;
use voltline_protocol::message::v2g::{DischargeRecord, DischargeStopReason};
use voltline_protocol::wire::cp56::Cp56Time;

use super::connector::{Activity, ChargeSession, Connector};
use super::durable::{ChargeCheckpoint, DischargeCheckpoint, DurableState, StoredRecord};
use super::{Charger, Output};
use crate::clock::SimTime;
use crate::events::SimEvent;
use crate::pricing;

impl Charger {
    pub(super) fn charge_checkpoint(
        &self,
        c: &Connector,
        now: SimTime,
    ) -> Option<ChargeCheckpoint> {
        let Activity::Charging(s) = &c.activity else {
            return None;
        };
        Some(ChargeCheckpoint {
            connector: c.no,
            serial: s.serial,
            origin: s.origin,
            card: s.card,
            vin: s.vin,
            start_time: s.start_time,
            meter_start: s.meter_start,
            meter_at: c.meter.import_wire(),
            at: self.clock.cp56(now),
            periods: s.periods.clone(),
            model: s.model.clone(),
        })
    }

    pub(super) fn discharge_checkpoint(
        &self,
        c: &Connector,
        now: SimTime,
    ) -> Option<DischargeCheckpoint> {
        let Activity::Discharging(s) = &c.activity else {
            return None;
        };
        Some(DischargeCheckpoint {
            connector: c.no,
            serial: s.serial,
            start_time: s.start_time,
            export_start: s.export_start,
            export_at: c.meter.export_wire(),
            at: self.clock.cp56(now),
        })
    }

    /// After a power cut: bills each checkpointed session up to its checkpoint.
    pub(super) fn bill_interrupted(
        &mut self,
        state: &DurableState,
        now: SimTime,
        out: &mut Vec<Output>,
    ) {
        for cp in &state.charging {
            let total = cp
                .meter_at
                .checked_sub(cp.meter_start)
                .unwrap_or(Energy::ZERO)
                .max(Energy::ZERO);
            let lines = cp.periods.lines(&cp.model, total);
            let record = TransactionRecord {
                serial: cp.serial,
                pile_code: self.spec.pile,
                connector: cp.connector,
                start_time: cp.start_time,
                end_time: cp.at,
                periods: lines,
                meter_start: cp.meter_start,
                meter_end: cp.meter_at,
                total_energy: total,
                loss_adjusted_total_energy: lines.iter().map(|l| l.loss_adjusted_energy).sum(),
                total_amount: pricing::total_amount(&lines),
                vin: cp.vin,
                origin: cp.origin,
                transaction_time: self.clock.cp56(now),
                stop_reason: StopReason::PILE_POWER_LOST,
                physical_card: cp.card,
            };
            if !self
                .records
                .stored()
                .iter()
                .any(|r| r.serial() == cp.serial && r.frame_type() == 0x3B)
            {
                self.records
                    .push(StoredRecord::Transaction(Box::new(record)), now);
            }
        }
        for cp in &state.discharging {
            let record = DischargeRecord {
                serial: cp.serial,
                pile_code: self.spec.pile,
                connector: cp.connector,
                start_time: cp.start_time,
                end_time: cp.at,
                export_register_start: cp.export_start,
                export_register_end: cp.export_at,
                exported_energy: cp
                    .export_at
                    .checked_sub(cp.export_start)
                    .unwrap_or(Energy::ZERO)
                    .max(Energy::ZERO),
                stop_reason: DischargeStopReason(StopReason::PILE_POWER_LOST.code()),
            };
            if !self
                .records
                .stored()
                .iter()
                .any(|r| r.serial() == cp.serial && r.frame_type() == 0xC9)
            {
                self.records.push(StoredRecord::Discharge(record), now);
            }
        }
        self.event(
            SimEvent::PowerRestored {
                pile: self.spec.pile,
                pending_records: self.records.len(),
            },
            out,
        );
    }
}

/// The 0x3B record of a charging session ending at register `meter_end`.
pub(super) fn build_charge_record(
    charger: &Charger,
    c: &Connector,
    s: &ChargeSession,
    meter_end: Energy,
    end: Cp56Time,
    reason: StopReason,
) -> TransactionRecord {
    let total = meter_end
        .checked_sub(s.meter_start)
        .unwrap_or(Energy::ZERO)
        .max(Energy::ZERO);
    let lines = s.periods.lines(&s.model, total);
    TransactionRecord {
        serial: s.serial,
        pile_code: charger.spec.pile,
        connector: c.no,
        start_time: s.start_time,
        end_time: end,
        periods: lines,
        meter_start: s.meter_start,
        meter_end,
        total_energy: total,
        loss_adjusted_total_energy: lines.iter().map(|l| l.loss_adjusted_energy).sum(),
        total_amount: pricing::total_amount(&lines),
        vin: s.vin,
        origin: s.origin,
        transaction_time: end,
        stop_reason: reason,
        physical_card: s.card,
    }
}
