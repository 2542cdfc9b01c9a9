//! The machine itself: its memory, the step dispatch, link events, deadlines and the
//! bookkeeping of durable transaction records. Frame handling lives in `frames.rs`, cloud
//! commands in `commands.rs`, card starts in `cards.rs`.

use std::collections::VecDeque;

use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use voltline_protocol::domain::CommandId;
use voltline_protocol::message::transaction::RemoteStop;
use voltline_protocol::message::v2g::DischargeStop;
use voltline_protocol::sync::{
    Alarm, CommandOutcome, CommandResult, ConnectorState, ConnectorStatus, RecordBody, Severity,
};
use voltline_protocol::{Message, TransactionSerial};

use super::session::{Direction, PendingStart, PendingStop, Session, StopCause};
use super::{ConnectorId, Context, Effect, Ignored, Input, State, Step};

/// Most transaction records of one connector whose store may be in flight at once.
pub const MAX_IN_FLIGHT_RECORDS: usize = 4;

/// Timeouts and memory sizes of a connector machine.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineConfig {
    /// How long a start may go unanswered (YKC lets a pile start up to 60 s after a 0x34
    /// answered "not plugged in").
    pub start_timeout_ms: u64,
    /// How long after its 0x32 a card start survives a 0x13 that shows the gun plugged but
    /// not charging (a report the pile sent before the 0x32 reached it); later, such a report
    /// means the pile did not start and the start is dropped.
    pub card_answer_grace_ms: u64,
    /// How long to wait for a stop reply before resending the stop.
    pub stop_timeout_ms: u64,
    /// Most stop frames sent for one stop.
    pub stop_attempts: u8,
    /// Silence after which the pile counts as offline (three missed 10 s heartbeats).
    pub heartbeat_timeout_ms: u64,
    /// How many durably stored serials the machine remembers for instant re-acks (the store
    /// remembers all of them).
    pub remembered_serials: usize,
    /// The zone of the pile's wall clock, for the CP56 times sent to it.
    pub pile_time_zone: TimeZone,
}

impl Default for MachineConfig {
    fn default() -> Self {
        MachineConfig {
            start_timeout_ms: 75_000,
            card_answer_grace_ms: 5_000,
            stop_timeout_ms: 30_000,
            stop_attempts: 3,
            heartbeat_timeout_ms: 35_000,
            remembered_serials: 64,
            pile_time_zone: TimeZone::UTC,
        }
    }
}

/// The state machine of one connector.
#[derive(Debug, Clone)]
pub struct ConnectorMachine {
    pub(super) id: ConnectorId,
    pub(super) config: MachineConfig,
    pub(super) state: State,
    pub(super) last_seen: Option<Timestamp>,
    pub(super) plugged: bool,
    /// Serials whose record is durable, newest last, at most `remembered_serials`.
    pub(super) durable: VecDeque<TransactionSerial>,
    /// Serials whose record was handed to the store and is not durable yet.
    pub(super) in_flight: Vec<TransactionSerial>,
    /// An answered card start kept while the pile is offline (it disconnected, or the edge
    /// restarted): the pile may have started on its 0x32. Resumed when the pile is back.
    pub(super) parked_start: Option<PendingStart>,
    /// The last card start dropped without a session (timed out, reported idle, replaced
    /// by another card), in memory only: see [`ConnectorMachine::take_dropped_start`].
    pub(super) dropped_start: Option<PendingStart>,
}

impl ConnectorMachine {
    /// A machine for a connector whose pile is not connected yet.
    pub fn new(id: ConnectorId, config: MachineConfig) -> Self {
        Self::restore(id, config, None)
    }

    /// A machine resuming `session` from the store after a restart; the pile is not
    /// connected yet.
    pub fn restore(id: ConnectorId, config: MachineConfig, session: Option<Session>) -> Self {
        assert!(config.remembered_serials > 0);
        ConnectorMachine {
            id,
            config,
            state: State::Offline { session },
            last_seen: None,
            plugged: false,
            durable: VecDeque::new(),
            in_flight: Vec::new(),
            parked_start: None,
            dropped_start: None,
        }
    }

    /// A machine resuming an answered card start from the store after a restart; the pile is
    /// not connected yet. When it is, the start is pending again (with its deadline): the
    /// pile's 0x13 either shows it charging the start's transaction or drops the start.
    pub fn restore_card_start(id: ConnectorId, config: MachineConfig, start: PendingStart) -> Self {
        let mut m = Self::restore(id, config, None);
        m.parked_start = park(start);
        m
    }

    /// Which connector this is.
    pub fn id(&self) -> ConnectorId {
        self.id
    }

    /// The current state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The state as the cloud sees it.
    pub fn public_state(&self) -> ConnectorState {
        match &self.state {
            State::Offline { .. } => ConnectorState::Offline,
            State::Idle { plugged: false } => ConnectorState::Available,
            State::Idle { plugged: true } | State::StartRequested(_) | State::Finished { .. } => {
                ConnectorState::Plugged
            }
            State::Charging(s) | State::Stopping { session: s, .. } => match s.direction {
                Direction::Charge => ConnectorState::Charging,
                Direction::Discharge => ConnectorState::Discharging,
            },
            State::Faulted { .. } => ConnectorState::Faulted,
        }
    }

    /// Applies one input. See the module doc of `connector` for the rules.
    pub fn step(&mut self, ctx: &Context<'_>, input: Input) -> Step {
        let before = self.public_state();
        let kept_start = self.card_start().cloned();
        let mut step = match input {
            Input::Frame(m) => {
                self.last_seen = Some(ctx.now);
                let mut step = Step::default();
                if matches!(self.state, State::Offline { .. }) {
                    self.reconnect();
                }
                self.on_frame(ctx, m, &mut step);
                step
            }
            Input::Command(env) => self.on_command(ctx, env),
            Input::CardDecision { card, decision } => self.on_card_decision(ctx, card, decision),
            Input::RecordDurable { serial } => self.on_record_durable(serial),
            Input::RecordFailed { serial } => {
                let was = self.in_flight.len();
                self.in_flight.retain(|s| *s != serial);
                if self.in_flight.len() == was {
                    Step::ignore(Ignored::NotPending)
                } else {
                    Step::default()
                }
            }
            Input::PileConnected => {
                self.last_seen = Some(ctx.now);
                if matches!(self.state, State::Offline { .. }) {
                    self.reconnect();
                    Step::default()
                } else {
                    Step::ignore(Ignored::Irrelevant)
                }
            }
            Input::PileDisconnected => self.disconnect(),
            Input::Setpoint { power, valid_for_s } => self.on_setpoint(power, valid_for_s),
            Input::Tick => self.on_tick(ctx),
        };
        let ended = self.card_start().is_none() && self.state.session().is_none();
        if let Some(start) = kept_start.filter(|_| ended) {
            // The answered card start ended without a session: forget it in the store too,
            // but remember it here in case the pile did start on it after all.
            step.ignored = None;
            step.push(Effect::ClearSession);
            self.dropped_start = Some(start);
        }
        let after = self.public_state();
        if before != after {
            step.ignored = None;
            step.push(Effect::Record(RecordBody::ConnectorStatus(
                ConnectorStatus {
                    pile: self.id.pile,
                    connector: self.id.connector,
                    state: after,
                },
            )));
        }
        step
    }

    /// Takes the state out, leaving a placeholder the caller must replace.
    pub(super) fn take_state(&mut self) -> State {
        std::mem::replace(
            &mut self.state,
            State::Idle {
                plugged: self.plugged,
            },
        )
    }

    /// Whether the machine holds an answered card start (pending or parked), which the
    /// store keeps in place of a session.
    fn card_start(&self) -> Option<&PendingStart> {
        match &self.state {
            State::StartRequested(p) if p.card.is_some() => Some(p),
            _ => self.parked_start.as_ref(),
        }
    }

    /// The card start dropped last, if it was for `serial`: a pile that reports charging
    /// it (or sends its record) started on the 0x32 after all, and its session is the card's.
    pub(super) fn take_dropped_start(&mut self, serial: TransactionSerial) -> Option<PendingStart> {
        if self.dropped_start.as_ref()?.serial == serial {
            self.dropped_start.take()
        } else {
            None
        }
    }

    fn reconnect(&mut self) {
        self.state = match self.take_state() {
            State::Offline { session: Some(s) } => State::Charging(s),
            State::Offline { session: None } => match self.parked_start.take() {
                Some(p) => State::StartRequested(p),
                None => State::Idle {
                    plugged: self.plugged,
                },
            },
            other => other,
        };
    }

    fn disconnect(&mut self) -> Step {
        let mut step = Step::default();
        let state = self.take_state();
        let session = match state {
            State::Offline { .. } => {
                self.state = state;
                return Step::ignore(Ignored::Irrelevant);
            }
            State::StartRequested(p) if p.card.is_some() => {
                // The pile may have started on the 0x32 just before its link went down.
                self.parked_start = park(p);
                None
            }
            State::StartRequested(p) => {
                if let Some(id) = p.command_id {
                    step.push(result(
                        id,
                        failed("the pile disconnected before it answered"),
                    ));
                }
                None
            }
            State::Stopping { session, stop } => {
                if let Some(id) = stop.command_id {
                    step.push(result(
                        id,
                        failed("the pile disconnected before it stopped"),
                    ));
                }
                Some(session)
            }
            State::Charging(s) | State::Finished { session: s } => Some(s),
            State::Faulted { session } => session,
            State::Idle { .. } => None,
        };
        self.state = State::Offline { session };
        step
    }

    fn on_tick(&mut self, ctx: &Context<'_>) -> Step {
        let now = ctx.now;
        if let Some(seen) = self.last_seen {
            let silent = now.duration_since(seen);
            if silent >= ms(self.config.heartbeat_timeout_ms)
                && !matches!(self.state, State::Offline { .. })
            {
                return self.disconnect();
            }
        }
        let mut step = Step::default();
        if self
            .parked_start
            .as_ref()
            .is_some_and(|p| now >= p.deadline)
        {
            // Past its deadline the pile cannot start on it any more.
            self.parked_start = None;
        }
        let state = self.take_state();
        self.state = match state {
            State::StartRequested(p) if now >= p.deadline => {
                if let Some(id) = p.command_id {
                    step.push(result(id, failed("the pile did not start in time")));
                }
                State::Idle {
                    plugged: self.plugged,
                }
            }
            State::Stopping { session, mut stop }
                if stop.awaiting_reply && now >= stop.deadline =>
            {
                if stop.attempts < self.config.stop_attempts {
                    stop.attempts += 1;
                    stop.deadline = now + ms(self.config.stop_timeout_ms);
                    step.push(Effect::Send(self.stop_frame(session.direction)));
                } else {
                    stop.awaiting_reply = false;
                    if let Some(id) = stop.command_id.take() {
                        step.push(result(id, failed("the pile did not answer the stop")));
                    }
                    step.push(self.alarm(
                        Severity::Critical,
                        "pile_ignores_stop",
                        format!(
                            "the pile did not answer {} stop frames for session {}; stop it at the pile",
                            self.config.stop_attempts, session.serial
                        ),
                    ));
                }
                State::Stopping { session, stop }
            }
            other => other,
        };
        if step.effects.is_empty() {
            step.ignored = Some(Ignored::Irrelevant);
        }
        step
    }

    fn on_record_durable(&mut self, serial: TransactionSerial) -> Step {
        let was_in_flight = self.in_flight.contains(&serial);
        self.in_flight.retain(|s| *s != serial);
        self.remember_durable(serial);
        if self.state.session().is_none_or(|s| s.serial != serial) {
            let mut step = Step::default();
            if !was_in_flight {
                step.ignored = Some(Ignored::NotPending);
            }
            return step;
        }
        // The session's record is on disk: the session is over, wherever the state is.
        let mut step = Step::default();
        step.push(Effect::ClearSession);
        self.state = match self.take_state() {
            State::Offline { .. } => State::Offline { session: None },
            State::Faulted { .. } => State::Faulted { session: None },
            _ => State::Idle {
                plugged: self.plugged,
            },
        };
        step
    }

    pub(super) fn remember_durable(&mut self, serial: TransactionSerial) {
        if self.durable.contains(&serial) {
            return;
        }
        if self.durable.len() == self.config.remembered_serials {
            self.durable.pop_front();
        }
        self.durable.push_back(serial);
    }

    /// Begins a stop of `session` for `cause`: sends the stop frame unless the pile is the
    /// one ending the session.
    pub(super) fn begin_stop(
        &mut self,
        now: Timestamp,
        session: Session,
        cause: StopCause,
        command_id: Option<CommandId>,
        step: &mut Step,
    ) {
        let send = cause != StopCause::Pile;
        if send {
            step.push(Effect::Send(self.stop_frame(session.direction)));
        }
        step.push(Effect::SaveSession(session.clone()));
        self.state = State::Stopping {
            session,
            stop: PendingStop {
                cause,
                command_id,
                awaiting_reply: send,
                deadline: now + ms(self.config.stop_timeout_ms),
                attempts: u8::from(send),
            },
        };
    }

    pub(super) fn stop_frame(&self, direction: Direction) -> Message {
        match direction {
            Direction::Charge => Message::RemoteStop(RemoteStop {
                pile_code: self.id.pile,
                connector: self.id.connector,
            }),
            Direction::Discharge => Message::DischargeStop(DischargeStop {
                pile_code: self.id.pile,
                connector: self.id.connector,
            }),
        }
    }

    pub(super) fn alarm(&self, severity: Severity, code: &str, message: String) -> Effect {
        Effect::Record(RecordBody::Alarm(Alarm {
            severity,
            code: code.to_owned(),
            message,
            pile: Some(self.id.pile),
        }))
    }
}

/// A card start kept while its pile is out of sight (a cloud start is not kept).
fn park(mut start: PendingStart) -> Option<PendingStart> {
    start.card.as_mut()?.unseen = true;
    Some(start)
}

/// A command result record.
pub(super) fn result(command_id: CommandId, outcome: CommandOutcome) -> Effect {
    Effect::Record(RecordBody::CommandResult(CommandResult {
        command_id,
        outcome,
    }))
}

pub(super) fn failed(reason: &str) -> CommandOutcome {
    CommandOutcome::Failed {
        reason: reason.to_owned(),
    }
}

pub(super) fn rejected(reason: impl Into<String>) -> CommandOutcome {
    CommandOutcome::Rejected {
        reason: reason.into(),
    }
}

pub(super) fn ms(millis: u64) -> SignedDuration {
    SignedDuration::from_millis(i64::try_from(millis).unwrap_or(i64::MAX))
}
