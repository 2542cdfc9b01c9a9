//! The discharge (V2G) order: its terms, whether a connector can take one, and its own
//! state machine.
//!
//! A driver (or an operator on their behalf) opts a plugged-in vehicle into discharge with a
//! state-of-charge floor they keep and a departure time. The order is created `dispatching`
//! with a `StartDischarge` command; the pile's answer makes it `discharging` or `failed`; a
//! stop (the driver's, the floor, the departure or the edge's dead-man) ends it at the pile,
//! whose discharge record (0xC9) makes it `completed`; reverse settlement makes it `settled`.
//!
//! ```text
//! dispatching ──► discharging ──► stopping ──► completed ──► settled
//!      │  │            │              ▲            ▲
//!      │  └────────────┴──────────────┘            │
//!      └──► failed ────────────────────────────────┘ (a record proves it ran after all)
//! ```
//!
//! The states are stored as the generic [`OrderState`] of a [`OrderKind::Discharge`] order;
//! [`DischargeState::apply`] is checked against [`OrderState::apply`] for every state and
//! event, so the two machines cannot drift apart.
//!
//! It owns only these rules. It must never do I/O or read a clock (`now` comes in), and it
//! never decides money (reverse settlement does, in `crate::ledger::reverse`).

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{Power, Soc};
use voltline_protocol::sync::ConnectorState;

use voltline_protocol::domain::{AccountId, OperatorId};

use super::auth::{can, Action, Actor, Resource};
use super::order::{BadOrderTransition, OrderEvent, OrderKind, OrderState};

/// The lowest floor a driver may ask for: below it a battery is not discharged for the grid.
pub const MIN_SOC_FLOOR_PCT: u8 = 10;
/// The highest floor: at 100 % there is nothing to discharge.
pub const MAX_SOC_FLOOR_PCT: u8 = 95;
/// The departure must be at least this far ahead.
pub const MIN_LEAD: SignedDuration = SignedDuration::from_mins(5);
/// ... and at most this far (a discharge session is priced over at most 31 days).
pub const MAX_LEAD: SignedDuration = SignedDuration::from_hours(7 * 24);
/// The largest discharge power the start frame can carry (2 bytes at 0.1 kW); also the
/// power sent when the driver sets no cap (the pile's own limit applies).
pub const MAX_POWER: Power = Power::from_watts(6_553_500);
/// Powers travel at 0.1 kW.
pub const POWER_STEP_W: i64 = 100;

/// What a discharge order promises the driver.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeTerms {
    /// The pile stops discharging at this state of charge.
    pub soc_floor: Soc,
    /// The driver leaves then; the pile stops discharging at the latest then.
    pub departure: Timestamp,
    /// The most power the pile may export for this order.
    pub max_power: Power,
}

/// Why a discharge order cannot be made, with what to do. [`DischargeRefusal::conflict`]
/// tells a state conflict (HTTP 409: try again later or elsewhere) from a bad request (422).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DischargeRefusal {
    #[error("soc_floor_pct {got} is outside {MIN_SOC_FLOOR_PCT}-{MAX_SOC_FLOOR_PCT}: choose the state of charge (in %) the vehicle must keep")]
    BadFloor { got: u16 },
    #[error("the departure {departure} is less than {MIN_LEAD} ahead: give a later departure time (UTC)")]
    DepartureTooSoon { departure: Timestamp },
    #[error(
        "the departure {departure} is more than {MAX_LEAD} ahead: give a departure within a week"
    )]
    DepartureTooLate { departure: Timestamp },
    #[error("max_power_kw must be above 0 and at most 6553.5, in steps of 0.1 kW (got {got_w} W)")]
    BadPower { got_w: i64 },
    #[error("charger {pile} is not V2G-capable: discharge needs a bidirectional charger; choose a V2G charger (its operator marks one with PUT /v1/chargers/{{pile}}/v2g)")]
    NotV2gCapable { pile: String },
    #[error("connector {connector} of charger {pile} has no vehicle plugged in (it is {state}): plug the vehicle in, then ask again")]
    NoVehicle {
        pile: String,
        connector: u8,
        state: &'static str,
    },
    #[error("connector {connector} of charger {pile} is {state}: stop that session first or use another connector")]
    Busy {
        pile: String,
        connector: u8,
        state: &'static str,
    },
}

impl DischargeRefusal {
    /// True for refusals about the connector's current state (409), false for bad input (422).
    pub fn conflict(&self) -> bool {
        matches!(
            self,
            DischargeRefusal::NoVehicle { .. } | DischargeRefusal::Busy { .. }
        )
    }
}

impl DischargeTerms {
    /// Checks a request's terms at `now`. `max_power` absent: [`MAX_POWER`].
    pub fn new(
        soc_floor_pct: u16,
        departure: Timestamp,
        max_power: Option<Power>,
        now: Timestamp,
    ) -> Result<DischargeTerms, DischargeRefusal> {
        let soc_floor = u8::try_from(soc_floor_pct)
            .ok()
            .filter(|p| (MIN_SOC_FLOOR_PCT..=MAX_SOC_FLOOR_PCT).contains(p))
            .and_then(Soc::new)
            .ok_or(DischargeRefusal::BadFloor { got: soc_floor_pct })?;
        if departure < now + MIN_LEAD {
            return Err(DischargeRefusal::DepartureTooSoon { departure });
        }
        if departure > now + MAX_LEAD {
            return Err(DischargeRefusal::DepartureTooLate { departure });
        }
        let max_power = max_power.unwrap_or(MAX_POWER);
        let w = max_power.watts();
        if w <= 0 || w > MAX_POWER.watts() || w % POWER_STEP_W != 0 {
            return Err(DischargeRefusal::BadPower { got_w: w });
        }
        Ok(DischargeTerms {
            soc_floor,
            departure,
            max_power,
        })
    }
}

fn state_text(state: Option<ConnectorState>) -> &'static str {
    match state {
        None => "not reported by the site",
        Some(ConnectorState::Available) => "available (empty)",
        Some(ConnectorState::Plugged) => "plugged",
        Some(ConnectorState::Charging) => "charging",
        Some(ConnectorState::Discharging) => "discharging",
        Some(ConnectorState::Faulted) => "faulted",
        Some(ConnectorState::Offline) => "offline",
    }
}

/// Whether connector `connector` of `pile` can start discharging: the charger must be
/// V2G-capable and the site must last have reported a vehicle plugged in and idle.
pub fn check_connector(
    pile: &str,
    connector: u8,
    v2g_capable: bool,
    state: Option<ConnectorState>,
) -> Result<(), DischargeRefusal> {
    if !v2g_capable {
        return Err(DischargeRefusal::NotV2gCapable {
            pile: pile.to_owned(),
        });
    }
    let text = state_text(state);
    match state {
        Some(ConnectorState::Plugged) => Ok(()),
        Some(ConnectorState::Charging | ConnectorState::Discharging) => {
            Err(DischargeRefusal::Busy {
                pile: pile.to_owned(),
                connector,
                state: text,
            })
        }
        _ => Err(DischargeRefusal::NoVehicle {
            pile: pile.to_owned(),
            connector,
            state: text,
        }),
    }
}

/// Whether `actor` may opt `account` (scoped to `account_operator`, or platform-wide) into
/// discharge at a site of `site_operator`: whoever may start a session for the account (the
/// driver, an admin), or the site's operator on behalf of an account it manages.
pub fn may_start(
    actor: &Actor,
    account: &AccountId,
    account_operator: Option<&OperatorId>,
    site_operator: &OperatorId,
) -> bool {
    let order = Resource::Order {
        account: account.clone(),
        operator: site_operator.clone(),
    };
    let on_behalf = matches!(actor, Actor::Operator(me) if me == site_operator)
        && can(
            actor,
            Action::Update,
            &Resource::Account {
                account: account.clone(),
                operator: account_operator.cloned(),
            },
        );
    can(actor, Action::Create, &order) || on_behalf
}

/// Where a discharge order stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DischargeState {
    /// Stored with its start command, waiting for the pile's answer.
    Dispatching,
    /// The pile accepted the start.
    Discharging,
    /// A stop was asked for; waiting for the pile's discharge record.
    Stopping,
    /// The discharge record arrived; waiting for reverse settlement.
    Completed,
    /// The driver was credited. Final.
    Settled,
    /// The start never took effect (unless a record proves otherwise).
    Failed,
}

/// What to do with a stop request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopAction {
    /// Move to `stopping` and queue a `StopDischarge` command.
    Stop,
    /// Already stopping: queue the command again (the first may have been lost).
    Repeat,
    /// Nothing runs any more: refuse with 409.
    Refuse,
}

impl DischargeState {
    /// Every state.
    pub const ALL: [DischargeState; 6] = [
        DischargeState::Dispatching,
        DischargeState::Discharging,
        DischargeState::Stopping,
        DischargeState::Completed,
        DischargeState::Settled,
        DischargeState::Failed,
    ];

    /// The state of a stored discharge order; `None` for `charging`, which a discharge
    /// order never is.
    pub fn from_order(state: OrderState) -> Option<DischargeState> {
        Some(match state {
            OrderState::Pending => DischargeState::Dispatching,
            OrderState::Discharging => DischargeState::Discharging,
            OrderState::Stopping => DischargeState::Stopping,
            OrderState::Completed => DischargeState::Completed,
            OrderState::Settled => DischargeState::Settled,
            OrderState::Failed => DischargeState::Failed,
            OrderState::Charging => return None,
        })
    }

    /// The stored state.
    pub fn to_order(self) -> OrderState {
        match self {
            DischargeState::Dispatching => OrderState::Pending,
            DischargeState::Discharging => OrderState::Discharging,
            DischargeState::Stopping => OrderState::Stopping,
            DischargeState::Completed => OrderState::Completed,
            DischargeState::Settled => OrderState::Settled,
            DischargeState::Failed => OrderState::Failed,
        }
    }

    /// The state after `event`, or why not.
    pub fn apply(self, event: OrderEvent) -> Result<DischargeState, BadOrderTransition> {
        use DischargeState as S;
        use OrderEvent as E;
        let next = match (self, event) {
            (S::Dispatching, E::StartAccepted) => Some(S::Discharging),
            (S::Dispatching, E::StartFailed) => Some(S::Failed),
            (S::Dispatching | S::Discharging, E::StopRequested) => Some(S::Stopping),
            (S::Dispatching | S::Discharging | S::Stopping | S::Failed, E::RecordReceived) => {
                Some(S::Completed)
            }
            (S::Completed, E::Settled) => Some(S::Settled),
            _ => None,
        };
        next.ok_or(BadOrderTransition {
            from: self.to_order(),
            event,
        })
    }

    /// What a stop request does in this state.
    pub fn stop_action(self) -> StopAction {
        match self {
            DischargeState::Dispatching | DischargeState::Discharging => StopAction::Stop,
            DischargeState::Stopping => StopAction::Repeat,
            _ => StopAction::Refuse,
        }
    }

    /// The stored order's kind, for [`OrderState::apply`].
    pub const KIND: OrderKind = OrderKind::Discharge;
}

#[cfg(test)]
#[path = "discharge_tests.rs"]
mod tests;
