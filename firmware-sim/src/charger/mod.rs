//! The charger as a pure state machine: an input (a decoded frame, time passing, a vehicle
//! plugging in, a fault) goes in, outputs (frames to send, a link to drop, events) come out.
//!
//! It never touches a socket, a file or a clock: time arrives as [`SimTime`] with every
//! input, persistence leaves as a [`DurableState`] the transport writes before it sends the
//! step's frames. That is what lets every protocol rule here be unit-tested in microseconds,
//! and the same charger run over TCP, MQTT, or in a test without either.
//!
//! Files: [`spec`] (nameplate, inputs, outputs), [`connector`] (power integration),
//! [`records`] (resend queue), [`durable`] (flash), `commands` (platform commands),
//! `sessions` (start/stop), `billing` (records and checkpoints), `v2g` (discharge
//! commands), `upkeep` (card list, parking lock, remote update), `report` (0x13/0xC7), `link` (login, heartbeats).

pub mod connector;
pub mod durable;
pub mod records;
pub mod spec;

mod billing;
mod commands;
mod link;
mod report;
mod sessions;
mod upkeep;
mod v2g;

#[cfg(test)]
mod tests;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use voltline_protocol::domain::{Energy, Money, Power};
use voltline_protocol::frame::Frame;
use voltline_protocol::message::register::BillingModel;
use voltline_protocol::message::Message;

use crate::clock::{PileClock, SimTime};
use crate::events::{ChargerSnapshot, ConnectorSnapshot, SimEvent};
use crate::meter::Meter;

use connector::{Activity, Connector};
use durable::{DurableState, STATE_VERSION};
use records::RecordQueue;
pub use spec::{ChargerFault, ChargerKind, ChargerSpec, DropReason, Input, Output, StartBy};

/// The link as the charger sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Link {
    Offline,
    LoggingIn,
    Online,
}

/// One simulated pile.
#[derive(Debug, Clone)]
pub struct Charger {
    spec: ChargerSpec,
    clock: PileClock,
    link: Link,
    /// The next sequence number for a pile-initiated frame (reset on reconnect).
    seq: u16,
    model: Option<BillingModel>,
    connectors: Vec<Connector>,
    records: RecordQueue,
    /// Time integrated up to.
    last_advance: SimTime,
    login_deadline: Option<SimTime>,
    next_heartbeat: SimTime,
    last_heartbeat_reply: SimTime,
    reboot_when_idle: bool,
    meter_reset_armed: bool,
    /// 0x52: locked out of service.
    locked: bool,
    /// 0x52: output limit, percent of rated power.
    power_limit_pct: u8,
    /// The durable state changed since it was last taken.
    dirty: bool,
    /// The offline card list (0x44/0x46/0x48), at most `upkeep::MAX_OFFLINE_CARDS`.
    offline_cards: Vec<voltline_protocol::message::cards::PhysicalCardNo>,
}

impl Charger {
    /// A fresh pile (new flash) at `now`.
    pub fn new(spec: ChargerSpec, epoch: Timestamp, zone: TimeZone, now: SimTime) -> Charger {
        let fresh = DurableState::fresh(spec.pile, spec.connectors as usize);
        let mut c = Charger::restore(spec, epoch, zone, now, fresh, &mut Vec::new());
        c.dirty = true;
        c
    }

    /// A pile powering up with what its flash holds: unconfirmed records are queued for
    /// resending, and sessions interrupted by the power cut are closed and billed up to their
    /// last checkpoint (stop reason 0x83).
    pub fn restore(
        spec: ChargerSpec,
        epoch: Timestamp,
        zone: TimeZone,
        now: SimTime,
        state: DurableState,
        out: &mut Vec<Output>,
    ) -> Charger {
        let n = spec.connectors.max(1);
        let connectors = (1..=n)
            .map(|i| {
                let meter = state
                    .meters
                    .get(i as usize - 1)
                    .cloned()
                    .unwrap_or_default();
                Connector::new(spec::connector_no(i), meter)
            })
            .collect();
        let model = state
            .billing_model
            .clone()
            .or_else(|| spec.billing_model.clone());
        let mut c = Charger {
            clock: PileClock::new(epoch, zone),
            link: Link::Offline,
            seq: 0,
            model,
            connectors,
            records: RecordQueue::from_stored(state.pending.clone()),
            last_advance: now,
            login_deadline: None,
            next_heartbeat: now,
            last_heartbeat_reply: now,
            reboot_when_idle: false,
            meter_reset_armed: false,
            locked: false,
            power_limit_pct: 100,
            dirty: false,
            offline_cards: Vec::new(),
            spec,
        };
        if !state.charging.is_empty() || !state.discharging.is_empty() {
            c.bill_interrupted(&state, now, out);
            c.dirty = true;
        }
        c
    }

    /// The nameplate.
    pub fn spec(&self) -> &ChargerSpec {
        &self.spec
    }

    /// True when logged in.
    pub fn is_online(&self) -> bool {
        self.link == Link::Online
    }

    /// Handles one input at simulated time `now`, appending what the charger does to `out`.
    pub fn handle(&mut self, now: SimTime, input: Input, out: &mut Vec<Output>) {
        let now = now.max(self.last_advance);
        self.advance(now, out);
        match input {
            Input::Connected => self.on_connected(now, out),
            Input::Disconnected => self.on_disconnected(),
            Input::Frame(frame) => self.on_frame(now, frame, out),
            Input::Tick => {}
            Input::PlugIn {
                connector,
                vehicle,
                start,
            } => self.plug_in(now, connector, vehicle, start, out),
            Input::Unplug { connector } => self.unplug(now, connector, out),
            Input::UserStop { connector } => self.user_stop(now, connector, out),
            Input::Fault(f) => self.inject(now, f, out),
        }
        self.timers(now, out);
    }

    /// When the charger next needs a [`Input::Tick`].
    pub fn next_deadline(&self) -> SimTime {
        let far = self.last_advance.plus_secs(3_600);
        let mut at = far;
        if let Some(d) = self.login_deadline {
            at = at.min(d);
        }
        if self.link == Link::Online {
            at = at.min(self.next_heartbeat);
            at = at.min(self.next_heartbeat_timeout());
            if let Some(d) = self.records.next_due() {
                at = at.min(d);
            }
            for c in &self.connectors {
                at = at.min(c.next_report);
            }
        }
        for c in &self.connectors {
            if let Some(p) = &c.pending_start {
                at = at.min(p.deadline);
            }
            if let Some(e) = c.predicted_end(self.last_advance, self.pile_max(), self.is_ac()) {
                at = at.min(e);
            }
        }
        at.max(self.last_advance.plus_ms(1))
    }

    /// The durable state, if it changed since last taken.
    pub fn take_durable(&mut self) -> Option<DurableState> {
        if !self.dirty {
            return None;
        }
        self.dirty = false;
        Some(self.durable())
    }

    /// The durable state now.
    pub fn durable(&self) -> DurableState {
        let now = self.last_advance;
        DurableState {
            version: STATE_VERSION,
            pile: self.spec.pile,
            meters: self.connectors.iter().map(|c| c.meter.clone()).collect(),
            billing_model: self.model.clone(),
            pending: self.records.stored(),
            charging: self
                .connectors
                .iter()
                .filter_map(|c| self.charge_checkpoint(c, now))
                .collect(),
            discharging: self
                .connectors
                .iter()
                .filter_map(|c| self.discharge_checkpoint(c, now))
                .collect(),
        }
    }

    /// What a test sees.
    pub fn snapshot(&self) -> ChargerSnapshot {
        let now = self.last_advance;
        ChargerSnapshot {
            pile: self.spec.pile,
            online: self.is_online(),
            pile_time: self.clock.civil(now).to_string(),
            clock_offset_ms: self.clock.offset_ms(),
            billing_model_no: self.model.as_ref().map(|m| m.model_no.to_string()),
            connectors: self
                .connectors
                .iter()
                .map(|c| {
                    let session_amount = match &c.activity {
                        Activity::Charging(s) => self.session_energy_amount(c, s).1,
                        _ => Money::ZERO,
                    };
                    ConnectorSnapshot {
                        connector: c.no,
                        status: self.status_of(c),
                        plugged: c.vehicle.is_some(),
                        faulted: c.faulted,
                        charging: matches!(c.activity, Activity::Charging(_)),
                        discharging: matches!(c.activity, Activity::Discharging(_)),
                        serial: c.serial(),
                        import_register: c.meter.import_exact(),
                        export_register: c.meter.export_exact(),
                        import_register_wire: c.meter.import_wire(),
                        export_register_wire: c.meter.export_wire(),
                        power: c.power,
                        soc: c.vehicle.as_ref().map(|v| v.soc()),
                        vehicle_charged: c.vehicle.as_ref().map_or(Energy::ZERO, |v| v.charged()),
                        vehicle_discharged: c
                            .vehicle
                            .as_ref()
                            .map_or(Energy::ZERO, |v| v.discharged()),
                        session_amount,
                    }
                })
                .collect(),
            pending_records: self.records.info(),
        }
    }

    // -----------------------------------------------------------------------------------------
    // Time
    // -----------------------------------------------------------------------------------------

    fn is_ac(&self) -> bool {
        self.spec.kind == ChargerKind::Ac
    }

    /// Rated power less the 0x52 limit, in 0.1 kW steps.
    fn pile_max(&self) -> Power {
        let w = self.spec.rated_power.watts() * self.power_limit_pct as i64 / 100;
        Power::from_watts(w / 100 * 100)
    }

    /// Integrates every connector up to `now`, ending sessions that finish on the way.
    fn advance(&mut self, now: SimTime, out: &mut Vec<Output>) {
        let from = self.last_advance;
        if now <= from {
            return;
        }
        let pile_max = self.pile_max();
        let ac = self.is_ac();
        for i in 0..self.connectors.len() {
            let mut t = from;
            // A session end stops integration for the connector; it is idle after it.
            while t < now {
                let clock = &self.clock;
                let end = self.connectors[i].advance(t, now, clock, pile_max, ac);
                match end {
                    Some(connector::SessionEnd::Charge { at, reason }) => {
                        self.end_charge(i, at, reason, out);
                        t = at.max(t.plus_ms(1));
                    }
                    Some(connector::SessionEnd::Discharge { at, reason }) => {
                        self.end_discharge(i, at, reason, out);
                        t = at.max(t.plus_ms(1));
                    }
                    None => break,
                }
            }
        }
        self.last_advance = now;
    }

    /// Sends whatever is due at `now`.
    fn timers(&mut self, now: SimTime, out: &mut Vec<Output>) {
        self.link_timers(now, out);
        for i in 0..self.connectors.len() {
            let expired = self.connectors[i]
                .pending_start
                .as_ref()
                .is_some_and(|p| p.deadline <= now);
            if expired {
                // Reference 8.4: no gun within 60 s, no start and no late reply.
                self.connectors[i].pending_start = None;
            }
        }
        if self.link != Link::Online {
            return;
        }
        for i in 0..self.connectors.len() {
            self.request_start(i, now, out);
        }
        for i in 0..self.connectors.len() {
            let changed = self.connectors[i].reported != Some(self.report_key(&self.connectors[i]));
            if changed || self.connectors[i].next_report <= now {
                self.report(i, now, None, out);
            }
        }
        let due = self.records.take_due(
            now,
            self.spec.record_resend_s,
            self.spec.record_resend_slow_s,
        );
        for (record, attempt) in due {
            let serial = record.serial();
            let frame_type = record.frame_type();
            let msg: Message = match record {
                durable::StoredRecord::Transaction(r) => (*r).into(),
                durable::StoredRecord::Discharge(r) => r.into(),
            };
            self.send(msg, out);
            out.push(Output::Event(SimEvent::RecordSent {
                pile: self.spec.pile,
                serial,
                frame_type,
                attempt,
            }));
        }
        if self.reboot_when_idle && self.connectors.iter().all(|c| !c.is_busy()) {
            self.reboot_when_idle = false;
            self.reboot(now, out);
        }
    }

    // -----------------------------------------------------------------------------------------
    // Sending
    // -----------------------------------------------------------------------------------------

    /// Sends a pile-initiated frame with the next sequence number.
    fn send(&mut self, msg: impl Into<Message>, out: &mut Vec<Output>) {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        out.push(Output::Send(Frame::new(seq, msg)));
    }

    /// Sends a reply carrying the request's sequence number.
    fn reply(&mut self, sequence: u16, msg: impl Into<Message>, out: &mut Vec<Output>) {
        out.push(Output::Send(Frame::new(sequence, msg)));
    }

    fn event(&self, e: SimEvent, out: &mut Vec<Output>) {
        out.push(Output::Event(e));
    }

    fn connector_index(&self, n: u8) -> Option<usize> {
        let i = (n as usize).checked_sub(1)?;
        (i < self.connectors.len()).then_some(i)
    }

    /// Reboots: ends every session (their records are stored), zeroes the meters if the
    /// firmware does that, and takes the link down for `reboot_s`.
    fn reboot(&mut self, now: SimTime, out: &mut Vec<Output>) {
        for i in 0..self.connectors.len() {
            self.stop_activity(
                i,
                now,
                voltline_protocol::message::stop_reason::StopReason::UNKNOWN,
                out,
            );
            self.connectors[i].pending_start = None;
        }
        let meter_reset = self.spec.meter_reset_on_reboot || self.meter_reset_armed;
        if meter_reset {
            self.meter_reset_armed = false;
            for c in &mut self.connectors {
                c.meter = Meter::default();
            }
        }
        self.dirty = true;
        self.event(
            SimEvent::Rebooting {
                pile: self.spec.pile,
                meter_reset,
            },
            out,
        );
        self.on_disconnected();
        out.push(Output::Reboot {
            down_ms: self.spec.reboot_s as u64 * 1_000,
        });
    }
}
