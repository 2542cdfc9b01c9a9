//! The command state machine: what a command sent to an edge may become.
//!
//! ```text
//! queued ──► delivered ──► accepted | rejected | failed
//!    │            │
//!    └────────────┴──► expired          (past its expiry, or the edge says so)
//! ```
//!
//! `queued → accepted|rejected|failed` is allowed too: the edge's result proves delivery, and
//! the `received` record that would have moved the command to `delivered` may sit in a batch
//! that arrives later (batches may arrive out of order). Final states stay final: a late or
//! duplicated result never changes them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use voltline_protocol::sync::{Command, CommandOutcome};

use super::order::{OrderEvent, UnknownName};

/// Where a command stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CommandState {
    /// Stored in the cloud, to be published to the edge (again after a restart).
    Queued,
    /// The edge stored it in its inbox.
    Delivered,
    /// The pile accepted it. Final.
    Accepted,
    /// The pile refused it. Final.
    Rejected,
    /// Not delivered before its expiry. Final.
    Expired,
    /// Delivery failed (pile offline, no answer). Final.
    Failed,
}

/// A command state change the machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("a command in state '{from}' cannot become '{to}'; read the command again and act on its current state")]
pub struct BadCommandTransition {
    pub from: CommandState,
    pub to: CommandState,
}

impl CommandState {
    /// Every state.
    pub const ALL: [CommandState; 6] = [
        CommandState::Queued,
        CommandState::Delivered,
        CommandState::Accepted,
        CommandState::Rejected,
        CommandState::Expired,
        CommandState::Failed,
    ];

    /// The states a command is still pending in (it may still be published or answered).
    pub const PENDING: [CommandState; 2] = [CommandState::Queued, CommandState::Delivered];

    /// The stored text.
    pub const fn as_str(self) -> &'static str {
        match self {
            CommandState::Queued => "queued",
            CommandState::Delivered => "delivered",
            CommandState::Accepted => "accepted",
            CommandState::Rejected => "rejected",
            CommandState::Expired => "expired",
            CommandState::Failed => "failed",
        }
    }

    /// True for states nothing can change.
    pub const fn is_final(self) -> bool {
        !matches!(self, CommandState::Queued | CommandState::Delivered)
    }

    /// `to` if the machine allows `self → to`.
    pub fn transition(self, to: CommandState) -> Result<CommandState, BadCommandTransition> {
        use CommandState as S;
        let ok = matches!(
            (self, to),
            (S::Queued, S::Delivered)
                | (
                    S::Queued | S::Delivered,
                    S::Accepted | S::Rejected | S::Failed | S::Expired
                )
        );
        if ok {
            Ok(to)
        } else {
            Err(BadCommandTransition { from: self, to })
        }
    }

    /// The state an edge-reported outcome asks for.
    pub fn from_outcome(outcome: &CommandOutcome) -> CommandState {
        match outcome {
            CommandOutcome::Received => CommandState::Delivered,
            CommandOutcome::Accepted => CommandState::Accepted,
            CommandOutcome::Rejected { .. } => CommandState::Rejected,
            CommandOutcome::Expired => CommandState::Expired,
            CommandOutcome::Failed { .. } => CommandState::Failed,
        }
    }
}

impl fmt::Display for CommandState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for CommandState {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CommandState::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| UnknownName {
                text: s.to_owned(),
                what: "command state",
            })
    }
}

/// The kind of a [`Command`], as stored (the serde tag of the command).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CommandKind {
    StartCharging,
    StopCharging,
    StartDischarge,
    StopDischarge,
    GridEvent,
    SyncTime,
    Reboot,
}

impl CommandKind {
    /// Every kind.
    pub const ALL: [CommandKind; 7] = [
        CommandKind::StartCharging,
        CommandKind::StopCharging,
        CommandKind::StartDischarge,
        CommandKind::StopDischarge,
        CommandKind::GridEvent,
        CommandKind::SyncTime,
        CommandKind::Reboot,
    ];

    /// The kind of `command`.
    pub fn of(command: &Command) -> CommandKind {
        match command {
            Command::StartCharging { .. } => CommandKind::StartCharging,
            Command::StopCharging { .. } => CommandKind::StopCharging,
            Command::StartDischarge { .. } => CommandKind::StartDischarge,
            Command::StopDischarge { .. } => CommandKind::StopDischarge,
            Command::GridEvent { .. } => CommandKind::GridEvent,
            Command::SyncTime { .. } => CommandKind::SyncTime,
            Command::Reboot { .. } => CommandKind::Reboot,
        }
    }

    /// The stored text (equal to the command's serde tag).
    pub const fn as_str(self) -> &'static str {
        match self {
            CommandKind::StartCharging => "start_charging",
            CommandKind::StopCharging => "stop_charging",
            CommandKind::StartDischarge => "start_discharge",
            CommandKind::StopDischarge => "stop_discharge",
            CommandKind::GridEvent => "grid_event",
            CommandKind::SyncTime => "sync_time",
            CommandKind::Reboot => "reboot",
        }
    }

    /// What a command of this kind reaching `state` means for its order, if anything: a start
    /// that was accepted starts the session; a start that did not take effect fails the order.
    pub fn order_event(self, state: CommandState) -> Option<OrderEvent> {
        let is_start = matches!(
            self,
            CommandKind::StartCharging | CommandKind::StartDischarge
        );
        if !is_start {
            return None;
        }
        match state {
            CommandState::Accepted => Some(OrderEvent::StartAccepted),
            CommandState::Rejected | CommandState::Expired | CommandState::Failed => {
                Some(OrderEvent::StartFailed)
            }
            CommandState::Queued | CommandState::Delivered => None,
        }
    }
}

impl FromStr for CommandKind {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        CommandKind::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| UnknownName {
                text: s.to_owned(),
                what: "command kind",
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use CommandState as S;

    /// Every allowed transition, written out; everything else must be refused.
    const ALLOWED: &[(S, S)] = &[
        (S::Queued, S::Delivered),
        (S::Queued, S::Accepted),
        (S::Queued, S::Rejected),
        (S::Queued, S::Failed),
        (S::Queued, S::Expired),
        (S::Delivered, S::Accepted),
        (S::Delivered, S::Rejected),
        (S::Delivered, S::Failed),
        (S::Delivered, S::Expired),
    ];

    #[test]
    fn every_pair_of_states_follows_the_table() {
        for from in S::ALL {
            for to in S::ALL {
                let allowed = ALLOWED.contains(&(from, to));
                assert_eq!(from.transition(to).is_ok(), allowed, "{from} -> {to}");
            }
        }
    }

    #[test]
    fn final_states_stay_final() {
        for from in S::ALL.into_iter().filter(|s| s.is_final()) {
            for to in S::ALL {
                assert!(from.transition(to).is_err(), "{from} -> {to}");
            }
        }
        assert_eq!(
            S::ALL.iter().filter(|s| !s.is_final()).count(),
            S::PENDING.len()
        );
    }

    #[test]
    fn outcomes_map_to_states() {
        assert_eq!(S::from_outcome(&CommandOutcome::Received), S::Delivered);
        assert_eq!(S::from_outcome(&CommandOutcome::Accepted), S::Accepted);
        assert_eq!(
            S::from_outcome(&CommandOutcome::Rejected {
                reason: "busy".into()
            }),
            S::Rejected
        );
        assert_eq!(S::from_outcome(&CommandOutcome::Expired), S::Expired);
        assert_eq!(
            S::from_outcome(&CommandOutcome::Failed {
                reason: "offline".into()
            }),
            S::Failed
        );
    }

    #[test]
    fn only_start_commands_move_orders() {
        for kind in CommandKind::ALL {
            for state in S::ALL {
                let got = kind.order_event(state);
                let start = matches!(
                    kind,
                    CommandKind::StartCharging | CommandKind::StartDischarge
                );
                let want = match (start, state) {
                    (false, _) => None,
                    (true, S::Accepted) => Some(OrderEvent::StartAccepted),
                    (true, S::Rejected | S::Expired | S::Failed) => Some(OrderEvent::StartFailed),
                    (true, S::Queued | S::Delivered) => None,
                };
                assert_eq!(got, want, "{kind:?} {state}");
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for s in S::ALL {
            assert_eq!(s.as_str().parse::<S>(), Ok(s));
        }
        for k in CommandKind::ALL {
            assert_eq!(k.as_str().parse::<CommandKind>(), Ok(k));
        }
    }
}
