//! Frames from the pile: the dispatch by frame type, heartbeats, real-time data (0x13) with
//! the session's pricing and limits, and the V2G meter (0xC7). Replies, session endings and
//! billing records are in `replies.rs`; card requests (0x31) in `cards.rs`.

use voltline_protocol::domain::Money;
use voltline_protocol::domain::{ConnectorNo, PileCode};
use voltline_protocol::message::realtime::{
    ConnectorStatus as PileStatus, GunPlugged, RealTimeData,
};
use voltline_protocol::message::register::HeartbeatReply;
use voltline_protocol::message::transaction::{
    Outcome, RecordAckResult, RemoteStartFailure, RemoteStopFailure, TransactionRecordAck,
};
use voltline_protocol::message::v2g::{BidirectionalMeter, DischargeReason, DischargeRecordAck};
use voltline_protocol::sync::{
    Authorisation, CommandOutcome, DischargeUp, MeterReading as ReadingRecord, RecordBody,
    SessionLimit, Severity, TransactionUp,
};
use voltline_protocol::tariff::MeterReading;
use voltline_protocol::{Message, TransactionSerial};

use super::machine::{failed, result};
use super::session::{Direction, Progress, Session, StopCause};
use super::{ConnectorMachine, Context, Effect, Ignored, State, Step};

/// The pile and connector a pile frame names (`None` for frames without a connector).
pub(crate) fn target(m: &Message) -> Option<(PileCode, Option<ConnectorNo>)> {
    Some(match m {
        Message::Heartbeat(f) => (f.pile_code, Some(f.connector)),
        Message::RealTimeData(f) => (f.pile_code, Some(f.connector)),
        Message::RemoteStartReply(f) => (f.pile_code, Some(f.connector)),
        Message::RemoteStopReply(f) => (f.pile_code, Some(f.connector)),
        Message::TransactionRecord(f) => (f.pile_code, Some(f.connector)),
        Message::ChargingFinished(f) => (f.pile_code, Some(f.connector)),
        Message::ErrorReport(f) => (f.pile_code, Some(f.connector)),
        Message::BmsStop(f) => (f.pile_code, Some(f.connector)),
        Message::ChargerStop(f) => (f.pile_code, Some(f.connector)),
        Message::PileStartRequest(f) => (f.pile_code, Some(f.connector)),
        Message::DischargeStartReply(f) => (f.pile_code, Some(f.connector)),
        Message::DischargeSetpointReply(f) => (f.pile_code, Some(f.connector)),
        Message::DischargeStopReply(f) => (f.pile_code, Some(f.connector)),
        Message::BidirectionalMeter(f) => (f.pile_code, Some(f.connector)),
        Message::DischargeRecord(f) => (f.pile_code, Some(f.connector)),
        Message::ParallelRemoteStartReply(f) => (f.pile_code, Some(f.connector)),
        _ => return None,
    })
}

impl ConnectorMachine {
    pub(super) fn on_frame(&mut self, ctx: &Context<'_>, m: Message, step: &mut Step) {
        let Some((pile, connector)) = target(&m) else {
            step.ignored = Some(Ignored::Irrelevant);
            return;
        };
        if pile != self.id.pile || connector.is_some_and(|c| c != self.id.connector) {
            step.ignored = Some(Ignored::NotOurs);
            return;
        }
        match m {
            Message::Heartbeat(h) => {
                step.push(Effect::Send(Message::HeartbeatReply(HeartbeatReply {
                    pile_code: h.pile_code,
                    connector: h.connector,
                    reply: 0,
                })))
            }
            Message::RealTimeData(rt) => self.on_realtime(ctx, &rt, step),
            Message::RemoteStartReply(r) => {
                let reason = format!("the pile refused the start: {:?}", r.failure);
                let ok = r.result == Outcome::Succeeded;
                let not_plugged = r.failure == RemoteStartFailure::NotPluggedIn;
                self.on_start_reply(
                    ctx,
                    r.serial,
                    Direction::Charge,
                    ok,
                    not_plugged,
                    reason,
                    step,
                )
            }
            Message::ParallelRemoteStartReply(r) => {
                // A parallel (two-gun) start answers like 0x33 for each gun.
                let reason = format!("the pile refused the parallel start: {:?}", r.failure);
                let ok = r.started == Outcome::Succeeded;
                let not_plugged = r.failure == RemoteStartFailure::NotPluggedIn;
                self.on_start_reply(
                    ctx,
                    r.serial,
                    Direction::Charge,
                    ok,
                    not_plugged,
                    reason,
                    step,
                )
            }
            Message::DischargeStartReply(r) => {
                let reason = format!("the pile refused the discharge: {:?}", r.reason);
                let ok = r.result == Outcome::Succeeded;
                let not_plugged = r.reason == DischargeReason::NotPlugged;
                self.on_start_reply(
                    ctx,
                    r.serial,
                    Direction::Discharge,
                    ok,
                    not_plugged,
                    reason,
                    step,
                )
            }
            Message::RemoteStopReply(r) => {
                let ok = r.result == Outcome::Succeeded;
                let idle = r.failure == RemoteStopFailure::NotCharging;
                let reason = format!("the pile refused the stop: {:?}", r.failure);
                self.on_stop_reply(Direction::Charge, ok, idle, reason, step)
            }
            Message::DischargeStopReply(r) => {
                let ok = r.result == Outcome::Succeeded;
                let reason = format!("the pile refused the discharge stop: {:?}", r.reason);
                self.on_stop_reply(Direction::Discharge, ok, false, reason, step)
            }
            Message::TransactionRecord(r) => {
                let serial = r.serial;
                let ack = Message::TransactionRecordAck(TransactionRecordAck {
                    serial,
                    result: RecordAckResult::Accepted,
                });
                let dropped = self.take_dropped_start(serial).map(|p| p.authorisation);
                let session = self.session_of(serial);
                let authorisation = session
                    .map(|s| s.authorisation.clone())
                    .or(dropped)
                    .unwrap_or(Authorisation::Pile);
                let record = RecordBody::Transaction(TransactionUp {
                    pile: self.id.pile,
                    authorisation,
                    edge_cost: session.and_then(|s| self.final_cost(ctx, s, &r)),
                    record: *r,
                });
                self.on_record(ctx, serial, record, ack, step)
            }
            Message::DischargeRecord(r) => {
                let serial = r.serial;
                let ack = Message::DischargeRecordAck(DischargeRecordAck {
                    serial,
                    result: Outcome::Succeeded,
                });
                let session = self.session_of(serial);
                let order = session.and_then(|s| s.order().cloned());
                let metering = session
                    .filter(|s| s.registers.metering().first_registers.is_some())
                    .map(|s| s.registers.close(&r, ctx.now));
                let record = RecordBody::Discharge(DischargeUp {
                    pile: self.id.pile,
                    order,
                    record: r,
                    metering,
                });
                self.on_record(ctx, serial, record, ack, step)
            }
            Message::ChargingFinished(f) => self.on_pile_ending(ctx, f.serial, "0x19", step),
            Message::ErrorReport(f) => self.on_pile_ending(ctx, f.serial, "0x1B", step),
            Message::BmsStop(f) => self.on_pile_ending(ctx, f.serial, "0x1D", step),
            Message::ChargerStop(f) => self.on_pile_ending(ctx, f.serial, "0x21", step),
            Message::PileStartRequest(r) => self.on_card_request(ctx, r, step),
            Message::DischargeSetpointReply(r) => {
                if r.result == Outcome::Failed {
                    step.push(self.alarm(
                        Severity::Warning,
                        "setpoint_refused",
                        format!(
                            "connector {} refused a discharge setpoint",
                            self.id.connector
                        ),
                    ));
                } else {
                    step.ignored = Some(Ignored::Irrelevant);
                }
            }
            Message::BidirectionalMeter(b) => self.on_bidirectional(ctx, &b, step),
            _ => step.ignored = Some(Ignored::Irrelevant),
        }
    }

    /// The session's price with its record's final register as the last reading: the last
    /// 0x13 came up to a report interval before the end. The reading is placed at the
    /// record's end time (the pile's clock, read in its zone), clamped between the session's
    /// last reading and now, so a record resent much later is not spread over the wait.
    fn final_cost(
        &self,
        ctx: &Context<'_>,
        s: &Session,
        r: &voltline_protocol::message::transaction::TransactionRecord,
    ) -> Option<voltline_protocol::domain::Money> {
        let (Some(tariff), Direction::Charge) = (ctx.tariff, s.direction) else {
            return s.cost;
        };
        let end = r
            .end_time
            .to_civil()
            .and_then(|dt| self.config.pile_time_zone.to_timestamp(dt).ok())
            .filter(|t| *t <= ctx.now)
            .unwrap_or(ctx.now);
        let mut meter = s.meter.clone();
        if !meter.push(Some(tariff), MeterReading::new(end, r.total_energy)) {
            return s.cost;
        }
        meter.cost(tariff).ok().or(s.cost)
    }

    /// The session `serial` belongs to, if the state holds it.
    fn session_of(&self, serial: TransactionSerial) -> Option<&Session> {
        self.state.session().filter(|s| s.serial == serial)
    }

    fn on_realtime(&mut self, ctx: &Context<'_>, rt: &RealTimeData, step: &mut Step) {
        self.plugged = rt.gun_plugged == GunPlugged::Yes;
        let faulted = rt.status == PileStatus::Fault || rt.hardware_faults.any();
        let charging = rt.status == PileStatus::Charging;
        let state = self.take_state();
        if faulted {
            self.state = match state {
                State::Finished { .. } | State::Faulted { .. } => {
                    step.ignored = Some(Ignored::Irrelevant);
                    state
                }
                other => {
                    if let State::StartRequested(p) = &other {
                        if let Some(id) = p.command_id.clone() {
                            step.push(result(id, failed("the pile reported a fault")));
                        }
                    }
                    let faults: Vec<&str> =
                        rt.hardware_faults.iter().map(|f| f.describe()).collect();
                    step.push(self.alarm(
                        Severity::Critical,
                        "connector_faulted",
                        format!(
                            "connector {} faulted: {}",
                            self.id.connector,
                            faults.join(", ")
                        ),
                    ));
                    State::Faulted {
                        session: match other {
                            State::Charging(s) | State::Stopping { session: s, .. } => Some(s),
                            _ => None,
                        },
                    }
                }
            };
            return;
        }
        let state = match state {
            State::Faulted { session: Some(s) } => State::Charging(s),
            State::Faulted { session: None } => State::Idle {
                plugged: self.plugged,
            },
            other => other,
        };
        self.state = match state {
            State::Idle { .. } => {
                let known =
                    self.durable.contains(&rt.serial) || self.in_flight.contains(&rt.serial);
                if let Some(p) = charging
                    .then(|| self.take_dropped_start(rt.serial))
                    .flatten()
                {
                    // A card start taken for dropped: the pile did start on its 0x32.
                    self.state = State::Charging(Session::from_start(p, ctx.now));
                    self.on_reading(ctx, rt, step);
                    return;
                }
                if charging && !rt.serial.is_none() && !known {
                    // A session the pile started without us (e.g. while the edge was down).
                    let s = Session::new(
                        rt.serial,
                        Authorisation::Pile,
                        SessionLimit::default(),
                        Direction::Charge,
                        None,
                        ctx.now,
                    );
                    self.state = State::Charging(s);
                    self.on_reading(ctx, rt, step);
                    return;
                }
                State::Idle {
                    plugged: self.plugged,
                }
            }
            State::StartRequested(p) if !charging && self.card_start_not_taken(&p, ctx) => {
                // The pile reports idle after our 0x32 reached it (or the gun is out): it did
                // not start, so a new 0x31 or command may have the connector.
                State::Idle {
                    plugged: self.plugged,
                }
            }
            State::StartRequested(p) if charging && p.serial == rt.serial => {
                // The reply was lost, but the pile is charging our transaction.
                if let Some(id) = p.command_id.clone() {
                    step.push(result(id, CommandOutcome::Accepted));
                }
                self.state = State::Charging(Session::from_start(p, ctx.now));
                self.on_reading(ctx, rt, step);
                return;
            }
            State::Charging(s) if !charging => {
                self.begin_stop(ctx.now, s, StopCause::Pile, None, step);
                return;
            }
            s @ (State::Charging(_) | State::Stopping { .. }) => {
                self.state = s;
                self.on_reading(ctx, rt, step);
                return;
            }
            other => other,
        };
        if step.effects.is_empty() {
            step.ignored = Some(Ignored::Irrelevant);
        }
    }

    /// Prices and records a 0x13 of the running session; stops the session at its limit.
    fn on_reading(&mut self, ctx: &Context<'_>, rt: &RealTimeData, step: &mut Step) {
        let id = self.id;
        let (State::Charging(s) | State::Stopping { session: s, .. }) = &mut self.state else {
            return;
        };
        if s.serial != rt.serial {
            step.ignored = Some(Ignored::NotOurs);
            return;
        }
        let progress = Progress {
            energy_mwh: rt.energy.mwh(),
            charging_time_min: rt.charging_time_min,
        };
        if s.progress.is_some_and(|last| progress <= last) || rt.energy < s.energy {
            step.ignored = Some(Ignored::Stale);
            return;
        }
        s.progress = Some(progress);
        step.push(Effect::Record(RecordBody::MeterReading(ReadingRecord {
            pile: id.pile,
            connector: id.connector,
            serial: s.serial,
            measured_at: ctx.now,
            import_register: rt.energy,
            export_register: None,
            power: Some(rt.output_power()),
            soc: Some(rt.soc),
            amount: Some(rt.amount),
        })));
        if s.direction == Direction::Charge {
            if rt.energy >= s.energy {
                s.last_increment.1 = rt.energy - s.energy;
            }
            s.energy = rt.energy;
            s.meter
                .push(ctx.tariff, MeterReading::new(ctx.now, rt.energy));
            if rt.is_charging() {
                self.resume_if_pile_still_charging();
            }
            self.price_and_enforce(ctx, step);
        } else {
            step.push(Effect::SaveSession(s.clone()));
        }
    }

    /// A session taken for ended by the pile (e.g. on a stale or reordered idle 0x13) whose
    /// pile sends newer charging data is charging again, so its limits are enforced again.
    fn resume_if_pile_still_charging(&mut self) {
        let ended_by_pile = matches!(
            &self.state,
            State::Stopping { stop, .. }
                if stop.cause == StopCause::Pile && stop.command_id.is_none() && !stop.awaiting_reply
        );
        if ended_by_pile {
            if let State::Stopping { session, .. } = self.take_state() {
                self.state = State::Charging(session);
            }
        }
    }

    fn on_bidirectional(&mut self, ctx: &Context<'_>, b: &BidirectionalMeter, step: &mut Step) {
        let id = self.id;
        let (State::Charging(s) | State::Stopping { session: s, .. }) = &mut self.state else {
            step.ignored = Some(Ignored::Irrelevant);
            return;
        };
        if s.serial != b.serial {
            step.ignored = Some(Ignored::NotOurs);
            return;
        }
        // Import and export are kept apart; a register reading lower than the last is never
        // negative energy (see `dispatch::metering`).
        let pushed = s
            .registers
            .push(ctx.now, b.import_register, b.export_register);
        if !pushed.fresh {
            step.ignored = Some(Ignored::Stale);
            return;
        }
        s.last_registers = Some((b.import_register, b.export_register));
        step.push(Effect::Record(RecordBody::MeterReading(ReadingRecord {
            pile: id.pile,
            connector: id.connector,
            serial: s.serial,
            measured_at: ctx.now,
            import_register: b.import_register,
            export_register: Some(b.export_register),
            power: Some(b.active_power),
            soc: Some(b.soc),
            amount: None,
        })));
        let discharge = s.direction == Direction::Discharge;
        if discharge {
            s.meter
                .push(ctx.tariff, MeterReading::new(ctx.now, b.export_register));
            s.energy = s.registers.export_energy();
        }
        let serial = s.serial;
        for a in pushed.anomalies {
            let message = format!(
                "session {serial}: the {:?} register read {} after {} ({:?}); the drop is not billed, check the meter",
                a.register, a.reading, a.before, a.kind
            );
            step.push(self.alarm(Severity::Warning, "meter_register_anomaly", message));
        }
        if discharge {
            self.price_and_enforce(ctx, step);
        }
    }

    /// Reprices the running session, saves it, and stops it when a limit is reached.
    fn price_and_enforce(&mut self, ctx: &Context<'_>, step: &mut Step) {
        let (State::Charging(s) | State::Stopping { session: s, .. }) = &mut self.state else {
            return;
        };
        let mut alarm = None;
        if let (Some(tariff), Direction::Charge) = (ctx.tariff, s.direction) {
            match s.meter.cost(tariff) {
                Ok(cost) => {
                    let before = s.cost.unwrap_or(Money::ZERO);
                    if cost >= before {
                        s.last_increment.0 = cost - before;
                    }
                    s.cost = Some(cost);
                }
                Err(e) if !s.pricing_alarm_raised => {
                    s.pricing_alarm_raised = true;
                    alarm = Some(format!("session {} cannot be priced: {e}", s.serial));
                }
                Err(_) => {}
            }
        }
        if let Some(message) = alarm {
            step.push(self.alarm(Severity::Warning, "session_unpriced", message));
        }
        let state = self.take_state();
        match state {
            State::Charging(s) => match s.limit_reached() {
                Some(cause) => self.begin_stop(ctx.now, s, cause, None, step),
                None => {
                    step.push(Effect::SaveSession(s.clone()));
                    self.state = State::Charging(s);
                }
            },
            State::Stopping { session, stop } => {
                step.push(Effect::SaveSession(session.clone()));
                self.state = State::Stopping { session, stop };
            }
            other => self.state = other,
        }
    }
}
