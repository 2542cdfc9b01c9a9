//! Replies and endings from the pile: start and stop replies (0x33, 0x35, 0xC1, 0xC5), the
//! stage and error frames that announce the end of a session (0x19, 0x1B, 0x1D, 0x21), and
//! the billing records (0x3B, 0xC9) with their idempotency rules.

use voltline_protocol::sync::{CommandOutcome, RecordBody, Severity};
use voltline_protocol::{Message, TransactionSerial};

use super::machine::{failed, rejected, result, MAX_IN_FLIGHT_RECORDS};
use super::session::{Direction, Session, StopCause};
use super::{ConnectorMachine, Context, Effect, Ignored, State, Step};

impl ConnectorMachine {
    #[allow(clippy::too_many_arguments)]
    pub(super) fn on_start_reply(
        &mut self,
        ctx: &Context<'_>,
        serial: TransactionSerial,
        direction: Direction,
        ok: bool,
        not_plugged: bool,
        reason: String,
        step: &mut Step,
    ) {
        let state = self.take_state();
        self.state = match state {
            State::StartRequested(mut p) if p.serial == serial && p.direction == direction => {
                if ok {
                    if let Some(id) = p.command_id.clone() {
                        step.push(result(id, CommandOutcome::Accepted));
                    }
                    let s = Session::from_start(p, ctx.now);
                    step.push(Effect::SaveSession(s.clone()));
                    State::Charging(s)
                } else if not_plugged {
                    // YKC: the pile starts by itself if the gun is plugged within 60 s.
                    p.waiting_for_plug = true;
                    step.ignored = Some(Ignored::Irrelevant);
                    State::StartRequested(p)
                } else {
                    if let Some(id) = p.command_id.clone() {
                        step.push(result(id, rejected(reason)));
                    }
                    State::Idle {
                        plugged: self.plugged,
                    }
                }
            }
            other => {
                step.ignored = Some(Ignored::NotPending);
                other
            }
        };
    }

    pub(super) fn on_stop_reply(
        &mut self,
        direction: Direction,
        ok: bool,
        not_charging: bool,
        reason: String,
        step: &mut Step,
    ) {
        let state = self.take_state();
        self.state = match state {
            State::Stopping { session, mut stop }
                if stop.awaiting_reply && session.direction == direction =>
            {
                stop.awaiting_reply = false;
                let id = stop.command_id.take();
                if ok || not_charging {
                    // Either way the pile is not charging: its record follows.
                    if let Some(id) = id {
                        step.push(result(id, CommandOutcome::Accepted));
                    }
                    State::Stopping { session, stop }
                } else if stop.cause == StopCause::Command {
                    if let Some(id) = id {
                        step.push(result(id, rejected(reason)));
                    }
                    State::Charging(session)
                } else {
                    // A limit stop must happen: the tick resends it (bounded attempts).
                    stop.awaiting_reply = true;
                    step.push(self.alarm(Severity::Warning, "stop_refused", reason));
                    State::Stopping { session, stop }
                }
            }
            other => {
                step.ignored = Some(Ignored::NotPending);
                other
            }
        };
    }

    pub(super) fn on_pile_ending(
        &mut self,
        ctx: &Context<'_>,
        serial: TransactionSerial,
        frame: &str,
        step: &mut Step,
    ) {
        let state = self.take_state();
        match state {
            State::Charging(s) if s.serial == serial => {
                self.begin_stop(ctx.now, s, StopCause::Pile, None, step)
            }
            State::StartRequested(p) if p.serial == serial => {
                if let Some(id) = p.command_id.clone() {
                    let why = format!("the pile ended the start ({frame})");
                    step.push(result(id, failed(&why)));
                }
                self.begin_stop(
                    ctx.now,
                    Session::from_start(p, ctx.now),
                    StopCause::Pile,
                    None,
                    step,
                )
            }
            other => {
                step.ignored = Some(Ignored::Irrelevant);
                self.state = other;
            }
        }
    }

    /// A transaction (0x3B) or discharge (0xC9) record: see the idempotency rules.
    pub(super) fn on_record(
        &mut self,
        ctx: &Context<'_>,
        serial: TransactionSerial,
        record: RecordBody,
        ack: Message,
        step: &mut Step,
    ) {
        if self.durable.contains(&serial) {
            step.push(Effect::Send(ack));
            return;
        }
        if self.in_flight.contains(&serial) {
            step.ignored = Some(Ignored::InFlight);
            return;
        }
        if self.in_flight.len() == MAX_IN_FLIGHT_RECORDS {
            // The store never answered for the oldest: forget it. A resend of it is stored
            // again, and the store's serial index turns that into a re-ack.
            self.in_flight.remove(0);
        }
        self.in_flight.push(serial);
        step.push(Effect::StoreThenAck {
            serial,
            record,
            ack,
        });
        let state = self.take_state();
        self.state = match state {
            State::Charging(s) | State::Faulted { session: Some(s) } if s.serial == serial => {
                State::Finished { session: s }
            }
            State::Stopping { session, mut stop } if session.serial == serial => {
                if let Some(id) = stop.command_id.take() {
                    step.push(result(id, CommandOutcome::Accepted));
                }
                State::Finished { session }
            }
            State::StartRequested(p) if p.serial == serial => {
                if let Some(id) = p.command_id.clone() {
                    step.push(result(id, failed("the pile ended the session at once")));
                }
                State::Finished {
                    session: Session::from_start(p, ctx.now),
                }
            }
            other => other,
        };
    }
}
