//! Commands from the cloud (start, stop, discharge) and discharge setpoints. Card starts at
//! the pile are in `cards.rs`.

use voltline_protocol::domain::money::scale;
use voltline_protocol::domain::{CommandId, Money, RoundingRule};
use voltline_protocol::message::transaction::{PhysicalCardNo, RemoteStart};
use voltline_protocol::message::v2g::{DischargeSetpoint, DischargeStart};
use voltline_protocol::sync::{
    Authorisation, Command, CommandEnvelope, CommandOutcome, SessionLimit,
};
use voltline_protocol::wire::bcd::Bcd;
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::{Message, TransactionSerial};

use super::machine::{failed, ms, rejected, result};
use super::session::{Direction, PendingStart, StopCause};
use super::{Admission, ConnectorMachine, Context, Effect, Ignored, State, Step};

const REFUSED_FOR_BOUND: &str =
    "the site's store is near its bound and refuses new sessions; the operator must restore the uplink";

impl ConnectorMachine {
    pub(super) fn on_command(&mut self, ctx: &Context<'_>, env: CommandEnvelope) -> Step {
        let mut step = Step::default();
        let (pile, connector) = match &env.command {
            Command::StartCharging {
                pile, connector, ..
            }
            | Command::StopCharging {
                pile, connector, ..
            }
            | Command::StartDischarge {
                pile, connector, ..
            }
            | Command::StopDischarge {
                pile, connector, ..
            } => (*pile, *connector),
            _ => return Step::ignore(Ignored::Irrelevant),
        };
        if pile != self.id.pile || connector != self.id.connector {
            return Step::ignore(Ignored::NotOurs);
        }
        if self.holds_command(&env.id) {
            return Step::ignore(Ignored::Stale);
        }
        if env.is_expired(ctx.now) {
            step.push(result(env.id, CommandOutcome::Expired));
            return step;
        }
        match env.command {
            Command::StartCharging {
                order,
                serial,
                limit,
                ..
            } => {
                let balance = limit
                    .amount
                    .unwrap_or(Money::ZERO)
                    .round_to(scale::CENT, RoundingRule::Down);
                let frame = Message::RemoteStart(RemoteStart {
                    serial,
                    pile_code: pile,
                    connector,
                    logical_card: Bcd::ZERO,
                    physical_card: PhysicalCardNo::NONE,
                    balance,
                });
                let auth = Authorisation::Order { order };
                self.start(
                    ctx,
                    env.id,
                    serial,
                    auth,
                    limit,
                    Direction::Charge,
                    frame,
                    &mut step,
                );
            }
            Command::StartDischarge {
                order,
                serial,
                soc_floor,
                max_power,
                until,
                ..
            } => {
                let local = until
                    .to_zoned_datetime(self.config.pile_time_zone.clone())
                    .datetime();
                let Some(end_time) = Cp56Time::from_civil(local) else {
                    step.push(result(
                        env.id,
                        rejected("the discharge end time is outside 2000-2099"),
                    ));
                    return step;
                };
                let frame = Message::DischargeStart(DischargeStart {
                    serial,
                    pile_code: pile,
                    connector,
                    soc_floor,
                    max_discharge_power: max_power,
                    end_time,
                });
                let auth = Authorisation::Order { order };
                let limit = SessionLimit::default();
                self.start(
                    ctx,
                    env.id,
                    serial,
                    auth,
                    limit,
                    Direction::Discharge,
                    frame,
                    &mut step,
                );
            }
            Command::StopCharging { order, .. } => {
                self.stop(ctx, env.id, &order, Direction::Charge, &mut step)
            }
            Command::StopDischarge { order, .. } => {
                self.stop(ctx, env.id, &order, Direction::Discharge, &mut step)
            }
            _ => return Step::ignore(Ignored::Irrelevant),
        }
        step
    }

    /// True when the state already carries command `id` (a duplicate delivery).
    fn holds_command(&self, id: &CommandId) -> bool {
        match &self.state {
            State::StartRequested(p) => p.command_id.as_ref() == Some(id),
            State::Stopping { session, stop } => {
                stop.command_id.as_ref() == Some(id) || session.command_id.as_ref() == Some(id)
            }
            other => other
                .session()
                .is_some_and(|s| s.command_id.as_ref() == Some(id)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn start(
        &mut self,
        ctx: &Context<'_>,
        id: CommandId,
        serial: TransactionSerial,
        authorisation: Authorisation,
        limit: SessionLimit,
        direction: Direction,
        frame: Message,
        step: &mut Step,
    ) {
        let outcome = match (&self.state, ctx.admission) {
            (State::Offline { .. }, _) => Some(failed("the pile is offline")),
            (State::Idle { .. }, Admission::Refuse) => Some(rejected(REFUSED_FOR_BOUND)),
            (State::Idle { .. }, Admission::Open) => None,
            (other, _) => Some(rejected(format!(
                "the connector is busy ({})",
                other.name()
            ))),
        };
        if let Some(outcome) = outcome {
            step.push(result(id, outcome));
            return;
        }
        step.push(Effect::Send(frame));
        self.state = State::StartRequested(PendingStart {
            command_id: Some(id),
            serial,
            authorisation,
            limit,
            direction,
            deadline: ctx.now + ms(self.config.start_timeout_ms),
            waiting_for_plug: false,
            card: None,
        });
    }

    fn stop(
        &mut self,
        ctx: &Context<'_>,
        id: CommandId,
        order: &voltline_protocol::domain::OrderId,
        direction: Direction,
        step: &mut Step,
    ) {
        let state = self.take_state();
        match state {
            State::Charging(s) if s.direction == direction && s.order() == Some(order) => {
                self.begin_stop(ctx.now, s, StopCause::Command, Some(id), step);
            }
            State::Stopping { session, mut stop }
                if session.direction == direction && session.order() == Some(order) =>
            {
                if stop.command_id.is_none() {
                    // Already ending: the result follows the session's end.
                    stop.command_id = Some(id);
                } else {
                    step.push(result(
                        id,
                        rejected("another stop of this session is in flight"),
                    ));
                }
                self.state = State::Stopping { session, stop };
            }
            other => {
                let why = match other.session() {
                    Some(s) if s.order() != Some(order) => "the order does not match the session",
                    _ => "the connector has no session of this order to stop",
                };
                step.push(result(id, rejected(why)));
                self.state = other;
            }
        }
    }

    pub(super) fn on_setpoint(
        &mut self,
        power: voltline_protocol::Power,
        valid_for_s: u16,
    ) -> Step {
        match &self.state {
            State::Charging(s) if s.direction == Direction::Discharge => {
                let mut step = Step::default();
                step.push(Effect::Send(Message::DischargeSetpoint(
                    DischargeSetpoint {
                        pile_code: self.id.pile,
                        connector: self.id.connector,
                        discharge_power: power,
                        valid_for_s,
                    },
                )));
                step
            }
            _ => Step::ignore(Ignored::Irrelevant),
        }
    }
}
