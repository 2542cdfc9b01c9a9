//! Sessions: vehicles arriving and leaving, starting and ending charging and discharging, and
//! the records (0x3B, 0xC9) each session leaves behind.

use voltline_protocol::domain::{Energy, Money, TransactionSerial};
use voltline_protocol::message::record::TransactionOrigin;
use voltline_protocol::message::stop_reason::StopReason;
use voltline_protocol::message::transaction::{
    Outcome, PhysicalCardNo, PileStartReply, PileStartRequest, RemoteStartFailure, StartMethod,
};
use voltline_protocol::message::v2g::{DischargeRecord, DischargeStart, DischargeStopReason};
use voltline_protocol::wire::text::FixedText;

use super::connector::{
    Activity, ChargeSession, Connector, DischargeSession, OUTPUT_FAULT, UNPLUGGED,
};
use super::durable::StoredRecord;
use super::{Charger, ChargerFault, Link, Output, StartBy};
use crate::clock::SimTime;
use crate::events::{DischargeSummary, SessionSummary, SimEvent};
use crate::pricing::{self, PeriodEnergy};
use crate::vehicle::{Vehicle, VehicleSpec};

impl Charger {
    pub(super) fn plug_in(
        &mut self,
        now: SimTime,
        connector: u8,
        vehicle: VehicleSpec,
        start: StartBy,
        out: &mut Vec<Output>,
    ) {
        let Some(i) = self.connector_index(connector) else {
            return;
        };
        if self.connectors[i].vehicle.is_some() {
            return;
        }
        self.connectors[i].vehicle = Some(Vehicle::arrive(vehicle));
        if let Some(p) = self.connectors[i].pending_start.take() {
            if p.deadline > now && !self.connectors[i].is_busy() && !self.connectors[i].faulted {
                // Reference 8.4: the gun came within 60 s of the 0x34: late success reply.
                self.reply_start(
                    p.sequence,
                    p.serial,
                    i,
                    Outcome::Succeeded,
                    RemoteStartFailure::None,
                    out,
                );
                self.start_charge(i, now, p.serial, TransactionOrigin::APP, p.card, out);
                return;
            }
        }
        if start != StartBy::Remote {
            self.connectors[i].start_intent = Some(start);
            self.request_start(i, now, out);
        }
    }

    /// How long a pile waits for the platform's 0x32 before asking again.
    const AUTH_WAIT_MS: u64 = 60_000;

    /// Sends 0x31 for connector `i` if it has a start intent and the pile can start now.
    pub(super) fn request_start(&mut self, i: usize, now: SimTime, out: &mut Vec<Output>) {
        if let Activity::AwaitingAuth { since } = self.connectors[i].activity {
            if now.since(since) < Self::AUTH_WAIT_MS {
                return;
            }
            self.connectors[i].activity = Activity::Idle;
        }
        let c = &self.connectors[i];
        let Some(start) = c.start_intent else { return };
        if self.link != Link::Online
            || !self.can_start()
            || c.faulted
            || c.vehicle.is_none()
            || c.is_busy()
        {
            return;
        }
        let vin = c
            .vehicle
            .as_ref()
            .map(|v| v.spec.vin.clone())
            .unwrap_or_default();
        let method = match start {
            StartBy::Remote => return,
            StartBy::Card(card) => (StartMethod::Card, card),
            StartBy::Vin => (StartMethod::Vin, PhysicalCardNo::NONE),
        };
        let mut reversed = [0u8; 17];
        for (dst, src) in reversed.iter_mut().zip(vin.bytes().rev()) {
            *dst = src;
        }
        let vin_reversed = if method.0 == StartMethod::Vin {
            FixedText::from_bytes(reversed)
        } else {
            FixedText::EMPTY
        };
        let request = PileStartRequest {
            pile_code: self.spec.pile,
            connector: self.connectors[i].no,
            method: method.0,
            password_required: false,
            card: method.1,
            password_md5: FixedText::EMPTY,
            vin_reversed,
        };
        self.connectors[i].activity = Activity::AwaitingAuth { since: now };
        self.send(request, out);
    }

    pub(super) fn on_start_authorised(
        &mut self,
        now: SimTime,
        r: &PileStartReply,
        out: &mut Vec<Output>,
    ) {
        let Some(i) = self.connector_index(r.connector.get()) else {
            return;
        };
        if !matches!(self.connectors[i].activity, Activity::AwaitingAuth { .. }) {
            return;
        }
        self.connectors[i].activity = Activity::Idle;
        // The record names the card that started the session (none for a VIN start).
        let card = match self.connectors[i].start_intent.take() {
            Some(StartBy::Card(card)) => card,
            _ => PhysicalCardNo::NONE,
        };
        if r.authorised == Outcome::Succeeded && self.connectors[i].vehicle.is_some() {
            let origin = TransactionOrigin::CARD;
            self.start_charge(i, now, r.serial, origin, card, out);
        } else {
            self.event(
                SimEvent::StartRefused {
                    pile: self.spec.pile,
                    connector: r.connector,
                    reason: format!("not authorised: {:?}", r.failure),
                },
                out,
            );
        }
    }

    pub(super) fn unplug(&mut self, now: SimTime, connector: u8, out: &mut Vec<Output>) {
        let Some(i) = self.connector_index(connector) else {
            return;
        };
        self.stop_activity(i, now, StopReason(UNPLUGGED), out);
        self.connectors[i].activity = Activity::Idle;
        self.connectors[i].vehicle = None;
        self.connectors[i].start_intent = None;
    }

    pub(super) fn user_stop(&mut self, now: SimTime, connector: u8, out: &mut Vec<Output>) {
        if let Some(i) = self.connector_index(connector) {
            self.stop_activity(i, now, StopReason::MANUAL_STOP, out);
        }
    }

    pub(super) fn inject(&mut self, now: SimTime, fault: ChargerFault, out: &mut Vec<Output>) {
        self.event(
            SimEvent::FaultInjected {
                pile: self.spec.pile,
                fault: format!("{fault:?}"),
            },
            out,
        );
        match fault {
            ChargerFault::ClockAt1970 => self.clock.reset_to_1970(now),
            ChargerFault::ClockSkew { minutes } => self.clock.skew_minutes(minutes),
            ChargerFault::MeterResetOnNextReboot => self.meter_reset_armed = true,
            ChargerFault::Reboot => self.reboot(now, out),
            ChargerFault::ConnectorFault { connector } => {
                if let Some(i) = self.connector_index(connector) {
                    self.stop_activity(i, now, StopReason(OUTPUT_FAULT), out);
                    self.connectors[i].faulted = true;
                }
            }
            ChargerFault::ClearConnectorFault { connector } => {
                if let Some(i) = self.connector_index(connector) {
                    self.connectors[i].faulted = false;
                }
            }
        }
    }

    /// Ends whatever connector `i` is doing with `reason`.
    pub(super) fn stop_activity(
        &mut self,
        i: usize,
        now: SimTime,
        reason: StopReason,
        out: &mut Vec<Output>,
    ) {
        match self.connectors[i].activity {
            Activity::Charging(_) => self.end_charge(i, now, reason, out),
            Activity::Discharging(_) => {
                self.end_discharge(i, now, DischargeStopReason(reason.code()), out)
            }
            Activity::AwaitingAuth { .. } => self.connectors[i].activity = Activity::Idle,
            Activity::Idle => {}
        }
    }

    pub(super) fn start_charge(
        &mut self,
        i: usize,
        now: SimTime,
        serial: TransactionSerial,
        origin: TransactionOrigin,
        card: PhysicalCardNo,
        out: &mut Vec<Output>,
    ) {
        let Some(model) = self.model.clone() else {
            return;
        };
        let start_time = self.clock.cp56(now);
        let c = &mut self.connectors[i];
        c.start_intent = None;
        let vin = c
            .vehicle
            .as_ref()
            .and_then(|v| FixedText::from_text(&v.spec.vin).ok())
            .unwrap_or(FixedText::EMPTY);
        c.activity = Activity::Charging(Box::new(ChargeSession {
            serial,
            origin,
            card,
            vin,
            started: now,
            start_time,
            meter_start: c.meter.import_wire(),
            periods: PeriodEnergy::default(),
            model,
        }));
        self.dirty = true;
        self.event(
            SimEvent::SessionStarted {
                pile: self.spec.pile,
                connector: self.connectors[i].no,
                serial,
            },
            out,
        );
    }

    /// Ends the charging session on connector `i` at `at`: stores its record and sends it.
    pub(super) fn end_charge(
        &mut self,
        i: usize,
        at: SimTime,
        reason: StopReason,
        out: &mut Vec<Output>,
    ) {
        let activity = std::mem::replace(&mut self.connectors[i].activity, Activity::Idle);
        let Activity::Charging(s) = activity else {
            self.connectors[i].activity = activity;
            return;
        };
        self.connectors[i].power = voltline_protocol::domain::Power::ZERO;
        let end = self.clock.cp56(at);
        let c = &self.connectors[i];
        let record =
            super::billing::build_charge_record(self, c, &s, c.meter.import_wire(), end, reason);
        let vehicle_energy = c.vehicle.as_ref().map_or(Energy::ZERO, |v| v.charged());
        let summary = SessionSummary {
            serial: s.serial,
            stop_reason: reason,
            vehicle_energy,
            record: record.clone(),
        };
        self.records
            .push(StoredRecord::Transaction(Box::new(record)), at);
        self.dirty = true;
        self.event(
            SimEvent::SessionEnded {
                pile: self.spec.pile,
                connector: self.connectors[i].no,
                summary: Box::new(summary),
            },
            out,
        );
    }

    pub(super) fn start_discharge(
        &mut self,
        i: usize,
        now: SimTime,
        d: &DischargeStart,
        out: &mut Vec<Output>,
    ) {
        let end_at = d.end_time.to_civil().map(|end| {
            let pile_now = self.clock.civil(now);
            let ms = pile_now
                .until(end)
                .ok()
                .and_then(|span| span.total(jiff::Unit::Millisecond).ok())
                .unwrap_or(0.0);
            now.plus_ms(ms.max(0.0) as u64)
        });
        let start_time = self.clock.cp56(now);
        let c = &mut self.connectors[i];
        c.activity = Activity::Discharging(Box::new(DischargeSession {
            serial: d.serial,
            started: now,
            start_time,
            export_start: c.meter.export_wire(),
            soc_floor_pct: d.soc_floor.percent(),
            max_power: d.max_discharge_power,
            end_at,
            setpoint: d.max_discharge_power,
            setpoint_until: None,
        }));
        self.dirty = true;
        self.event(
            SimEvent::DischargeStarted {
                pile: self.spec.pile,
                connector: self.connectors[i].no,
                serial: d.serial,
            },
            out,
        );
    }

    pub(super) fn end_discharge(
        &mut self,
        i: usize,
        at: SimTime,
        reason: DischargeStopReason,
        out: &mut Vec<Output>,
    ) {
        let activity = std::mem::replace(&mut self.connectors[i].activity, Activity::Idle);
        let Activity::Discharging(s) = activity else {
            self.connectors[i].activity = activity;
            return;
        };
        let c = &mut self.connectors[i];
        c.power = voltline_protocol::domain::Power::ZERO;
        let export_end = c.meter.export_wire();
        let record = DischargeRecord {
            serial: s.serial,
            pile_code: self.spec.pile,
            connector: c.no,
            start_time: s.start_time,
            end_time: self.clock.cp56(at),
            export_register_start: s.export_start,
            export_register_end: export_end,
            exported_energy: export_end
                .checked_sub(s.export_start)
                .unwrap_or(Energy::ZERO)
                .max(Energy::ZERO),
            stop_reason: reason,
        };
        let summary = DischargeSummary {
            serial: s.serial,
            stop_reason: reason,
            vehicle_energy: c.vehicle.as_ref().map_or(Energy::ZERO, |v| v.discharged()),
            record: record.clone(),
        };
        self.records.push(StoredRecord::Discharge(record), at);
        self.dirty = true;
        self.event(
            SimEvent::DischargeEnded {
                pile: self.spec.pile,
                connector: self.connectors[i].no,
                summary: Box::new(summary),
            },
            out,
        );
    }

    /// The session's energy (wire) and amount so far.
    pub(super) fn session_energy_amount(
        &self,
        c: &Connector,
        s: &ChargeSession,
    ) -> (Energy, Money) {
        let energy = c
            .meter
            .import_wire()
            .checked_sub(s.meter_start)
            .unwrap_or(Energy::ZERO)
            .max(Energy::ZERO);
        let lines = s.periods.lines(&s.model, energy);
        (energy, pricing::total_amount(&lines))
    }
}
