//! Platform → pile frames: each answered the way the reference says, with its failure codes
//! (the V2G commands are in `v2g`).

use voltline_protocol::frame::Frame;
use voltline_protocol::message::maintenance::{ExecuteWhen, RebootReply, RebootResult};
use voltline_protocol::message::record::RecordAckResult;
use voltline_protocol::message::settings::{
    BillingModelSetReply, Outcome as SetOutcome, TimeSyncReply, WorkPermission, WorkingParamsReply,
};
use voltline_protocol::message::stop_reason::StopReason;
use voltline_protocol::message::transaction::{
    BalanceUpdateReply, BalanceUpdateResult, Outcome, RemoteStartFailure, RemoteStartReply,
    RemoteStopFailure, RemoteStopReply, TransactionOrigin,
};
use voltline_protocol::message::v2g::Outcome as V2gResult;
use voltline_protocol::message::Message;

use super::connector::{Activity, PendingStart};
use super::{Charger, Link, Output};
use crate::clock::SimTime;
use crate::events::SimEvent;

/// How long a remote start waits for the gun (reference 8.4).
const REMOTE_START_PLUG_WAIT_S: u64 = 60;

impl Charger {
    pub(super) fn on_frame(&mut self, now: SimTime, frame: Frame, out: &mut Vec<Output>) {
        let seq = frame.sequence;
        let request = frame.frame_type();
        if let Message::LoginReply(r) = &frame.message {
            if r.pile_code == self.spec.pile {
                self.on_login_reply(now, r.result, out);
            }
            return;
        }
        if self.link != Link::Online {
            // Nothing but the login reply means anything before login.
            return;
        }
        let pile = self.spec.pile;
        match frame.message {
            Message::HeartbeatReply(_) => self.last_heartbeat_reply = now,
            Message::BillingModelVerifyReply(r) => self.on_verify_reply(r.result, out),
            Message::BillingModelReply(r) if r.pile_code == pile => {
                self.install_model(r.model, out)
            }
            Message::BillingModelSet(r) => {
                let ok = r.pile_code == pile;
                if ok {
                    self.install_model(r.model, out);
                }
                let result = if ok {
                    SetOutcome::Succeeded
                } else {
                    SetOutcome::Failed
                };
                self.reply(
                    seq,
                    BillingModelSetReply {
                        pile_code: pile,
                        result,
                    },
                    out,
                );
                self.answered(request, 0x57, ok, out);
            }
            Message::TimeSync(t) => {
                if t.pile_code == pile {
                    if let Some(civil) = t.time.to_civil() {
                        self.clock.set_civil(now, civil);
                        self.event(
                            SimEvent::ClockSet {
                                pile,
                                offset_ms: self.clock.offset_ms(),
                            },
                            out,
                        );
                    }
                }
                let time = self.clock.cp56(now);
                self.reply(
                    seq,
                    TimeSyncReply {
                        pile_code: pile,
                        time,
                    },
                    out,
                );
                self.answered(request, 0x55, t.pile_code == pile, out);
            }
            Message::ReadRealTimeData(r) if r.pile_code == pile => {
                if let Some(i) = self.connector_index(r.connector.get()) {
                    self.report(i, now, Some(seq), out);
                }
            }
            Message::RemoteStart(r) => {
                let failure = self.remote_start_check(&r.pile_code, r.connector.get());
                let i = self.connector_index(r.connector.get());
                match (failure, i) {
                    (RemoteStartFailure::None, Some(i)) => {
                        self.reply_start(seq, r.serial, i, Outcome::Succeeded, failure, out);
                        self.start_charge(
                            i,
                            now,
                            r.serial,
                            TransactionOrigin::APP,
                            r.physical_card,
                            out,
                        );
                    }
                    (RemoteStartFailure::NotPluggedIn, Some(i)) => {
                        self.reply_start(seq, r.serial, i, Outcome::Failed, failure, out);
                        self.connectors[i].pending_start = Some(PendingStart {
                            serial: r.serial,
                            card: r.physical_card,
                            sequence: seq,
                            deadline: now.plus_secs(REMOTE_START_PLUG_WAIT_S),
                        });
                    }
                    _ => {
                        let reply = RemoteStartReply {
                            serial: r.serial,
                            pile_code: pile,
                            connector: r.connector,
                            result: Outcome::Failed,
                            failure,
                        };
                        self.reply(seq, reply, out);
                        self.answered(request, 0x33, false, out);
                    }
                }
            }
            Message::RemoteStop(r) => {
                let i = self.connector_index(r.connector.get());
                let failure = match i {
                    _ if r.pile_code != pile => RemoteStopFailure::PileMismatch,
                    None => RemoteStopFailure::PileMismatch,
                    Some(i) if !matches!(self.connectors[i].activity, Activity::Charging(_)) => {
                        RemoteStopFailure::NotCharging
                    }
                    Some(_) => RemoteStopFailure::None,
                };
                let ok = failure == RemoteStopFailure::None;
                let reply = RemoteStopReply {
                    pile_code: pile,
                    connector: r.connector,
                    result: if ok {
                        Outcome::Succeeded
                    } else {
                        Outcome::Failed
                    },
                    failure,
                };
                self.reply(seq, reply, out);
                self.answered(request, 0x35, ok, out);
                if let (true, Some(i)) = (ok, i) {
                    self.end_charge(i, now, StopReason::APP_REMOTE_STOP, out);
                }
            }
            Message::PileStartReply(r) if r.pile_code == pile => {
                self.on_start_authorised(now, &r, out);
            }
            Message::TransactionRecordAck(a) => {
                if self.records.confirm(&a.serial, 0x3B) {
                    self.dirty = true;
                    if a.result == RecordAckResult::Invalid {
                        tracing::warn!(%pile, serial = %a.serial, "platform called the record invalid; deleted as the reference says");
                    }
                    self.event(
                        SimEvent::RecordConfirmed {
                            pile,
                            serial: a.serial,
                            frame_type: 0x3B,
                        },
                        out,
                    );
                }
            }
            Message::DischargeRecordAck(a) => {
                if a.result == V2gResult::Succeeded && self.records.confirm(&a.serial, 0xC9) {
                    self.dirty = true;
                    self.event(
                        SimEvent::RecordConfirmed {
                            pile,
                            serial: a.serial,
                            frame_type: 0xC9,
                        },
                        out,
                    );
                }
            }
            Message::Reboot(r) => {
                let ok = r.pile_code == pile;
                let result = if ok {
                    RebootResult::Succeeded
                } else {
                    RebootResult::Failed
                };
                self.reply(
                    seq,
                    RebootReply {
                        pile_code: pile,
                        result,
                    },
                    out,
                );
                self.answered(request, 0x91, ok, out);
                if ok {
                    let busy = self.connectors.iter().any(|c| c.is_busy());
                    if r.when == ExecuteWhen::WhenIdle && busy {
                        self.reboot_when_idle = true;
                    } else {
                        self.reboot(now, out);
                    }
                }
            }
            Message::WorkingParams(w) => {
                let ok = w.pile_code == pile;
                if ok {
                    self.locked = w.permission == WorkPermission::Locked;
                    self.power_limit_pct = w.max_output_power_pct;
                }
                let result = if ok {
                    SetOutcome::Succeeded
                } else {
                    SetOutcome::Failed
                };
                self.reply(
                    seq,
                    WorkingParamsReply {
                        pile_code: pile,
                        result,
                    },
                    out,
                );
                self.answered(request, 0x51, ok, out);
            }
            Message::BalanceUpdate(b) => {
                let result = if b.pile_code == pile {
                    BalanceUpdateResult::Updated
                } else {
                    BalanceUpdateResult::WrongPileCode
                };
                let reply = BalanceUpdateReply {
                    pile_code: pile,
                    physical_card: b.physical_card,
                    result,
                };
                self.reply(seq, reply, out);
                self.answered(request, 0x41, result == BalanceUpdateResult::Updated, out);
            }
            Message::CardSync(c) => self.on_card_sync(seq, &c, out),
            Message::CardClear(c) => self.on_card_clear(seq, &c, out),
            Message::CardQuery(c) => self.on_card_query(seq, &c, out),
            Message::ParkingLockCommand(l) => self.on_parking_lock(seq, &l, out),
            Message::Update(u) => self.on_update(seq, &u, out),
            Message::DischargeStart(d) => self.on_discharge_start(now, seq, &d, out),
            Message::DischargeSetpoint(s) => self.on_discharge_setpoint(now, seq, &s, out),
            Message::DischargeStop(s) => self.on_discharge_stop(now, seq, &s, out),
            other => {
                tracing::debug!(%pile, frame = other.name(), "frame not acted on by the simulator");
            }
        }
    }

    pub(super) fn answered(&self, request: u8, reply: u8, ok: bool, out: &mut Vec<Output>) {
        self.event(
            SimEvent::CommandAnswered {
                pile: self.spec.pile,
                request,
                reply,
                ok,
            },
            out,
        );
    }

    pub(super) fn reply_start(
        &mut self,
        seq: u16,
        serial: voltline_protocol::domain::TransactionSerial,
        i: usize,
        result: Outcome,
        failure: RemoteStartFailure,
        out: &mut Vec<Output>,
    ) {
        let reply = RemoteStartReply {
            serial,
            pile_code: self.spec.pile,
            connector: self.connectors[i].no,
            result,
            failure,
        };
        self.reply(seq, reply, out);
        self.answered(0x34, 0x33, result == Outcome::Succeeded, out);
        if failure != RemoteStartFailure::None {
            self.event(
                SimEvent::StartRefused {
                    pile: self.spec.pile,
                    connector: self.connectors[i].no,
                    reason: format!("{failure:?}"),
                },
                out,
            );
        }
    }

    /// Why a remote start cannot go ahead (reference 8.4), `None` if it can.
    fn remote_start_check(
        &self,
        pile: &voltline_protocol::domain::PileCode,
        connector: u8,
    ) -> RemoteStartFailure {
        let Some(i) = self.connector_index(connector) else {
            return RemoteStartFailure::PileMismatch;
        };
        if *pile != self.spec.pile {
            return RemoteStartFailure::PileMismatch;
        }
        let c = &self.connectors[i];
        if c.is_busy() {
            return RemoteStartFailure::AlreadyCharging;
        }
        if c.faulted || !self.can_start() {
            return RemoteStartFailure::DeviceFault;
        }
        if c.vehicle.is_none() {
            return RemoteStartFailure::NotPluggedIn;
        }
        RemoteStartFailure::None
    }

    /// Whether a new session may start: a billing model, not locked by 0x52, not rebooting,
    /// and room in the record store for the session's record (when full, the pile keeps its
    /// old records and refuses new sessions).
    pub(super) fn can_start(&self) -> bool {
        let active = self.connectors.iter().filter(|c| c.is_busy()).count();
        self.model.is_some()
            && !self.locked
            && !self.reboot_when_idle
            && self.records.len() + active < self.spec.max_pending_records
    }

    fn install_model(
        &mut self,
        model: voltline_protocol::message::register::BillingModel,
        out: &mut Vec<Output>,
    ) {
        let model_no = model.model_no.to_string();
        self.model = Some(model);
        self.dirty = true;
        self.event(
            SimEvent::BillingModelInstalled {
                pile: self.spec.pile,
                model_no,
            },
            out,
        );
    }
}
