//! The site's V2G dispatcher: a pure state machine that turns grid events, vehicles coming
//! and going, meter updates, cloud contact and the passing of time into setpoint and stop
//! actions for the piles. The site feeds it and sends what it returns; it never touches a
//! socket, the store or a clock.
//!
//! Every discharging vehicle is under a setpoint (0xC4, with the pile's own dead-man), shared
//! by [`plan`] within the site's export limit:
//! - **Free-running** (no grid event runs): each vehicle is asked for its order's power, the
//!   site limit sharing it out when the orders ask for more. It stops at its floor, at its
//!   departure, and when the cloud has been unreachable for `cloud_dead_man`: nobody can
//!   watch or stop it then, and nothing but the order asked for it.
//! - **In an event** (`from <= now < to`): every discharging vehicle takes part, sharing the
//!   event's power (0 kW when the others cover the target: it stays in the event, ready for
//!   the next re-plan). It stops at its floor, at its departure, and when the event ends —
//!   and **not** at the cloud dead-man: an event runs to its end while the edge is offline
//!   (it is bounded when it is accepted, see `site::grid`). A vehicle known to have taken
//!   part in an event that has ended (e.g. across an edge restart) is stopped when seen.
//!
//! Setpoints are sent when they go down or up by at least [`RAISE_DEADBAND_W`] (a meter
//! reading moves every share a little; the rest waits for the refresh), lower ones before
//! higher ones (so the site stays within its limit while the piles take up a new plan), and
//! all of them again every `refresh`, so that the piles' dead-man never lapses while the plan
//! stands. A stop is
//! resent every `stop_retry` while the vehicle is still reported, at most
//! [`MAX_STOP_ATTEMPTS`] frames in all.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::Power;

use super::plan::{plan, ConnectorKey, Participant, PlanError};

/// A setpoint is raised between refreshes only by at least this much (5 wire steps).
pub const RAISE_DEADBAND_W: i64 = 500;

/// Most stop frames sent for one vehicle.
pub const MAX_STOP_ATTEMPTS: u8 = 3;

/// A grid event: export `power` from the site between `from` and `to`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GridEvent {
    pub id: String,
    pub power: Power,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// The dispatcher's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DispatchConfig {
    /// The site's export limit.
    pub site_export_limit: Power,
    /// How long a setpoint stays valid on the pile (its dead-man), seconds.
    pub setpoint_valid_for_s: u16,
    /// How often standing setpoints are re-sent; must be well below `setpoint_valid_for_s`.
    pub refresh: SignedDuration,
    /// The horizon the planner protects floors over: the longest gap between meter updates.
    pub replan_horizon: SignedDuration,
    /// How long the cloud may be unreachable before free-running discharge stops.
    pub cloud_dead_man: SignedDuration,
    /// How long after a stop it is sent again if the vehicle still discharges.
    pub stop_retry: SignedDuration,
}

/// Why a vehicle stops discharging.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StopCause {
    /// The grid event it took part in ended.
    EventEnded,
    /// No energy left above the driver's floor.
    FloorReached,
    /// The driver's departure time came.
    Departed,
    /// Free-running discharge with the cloud unreachable past the dead-man.
    CloudUnreachable,
}

impl StopCause {
    /// A stable label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            StopCause::EventEnded => "event_ended",
            StopCause::FloorReached => "floor_reached",
            StopCause::Departed => "departed",
            StopCause::CloudUnreachable => "cloud_unreachable",
        }
    }
}

/// What the edge must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchAction {
    /// Send 0xC4 with this power and validity (the vehicle takes part in the event).
    Setpoint {
        key: ConnectorKey,
        power: Power,
        valid_for_s: u16,
    },
    /// Send 0xC6 (discharge stop).
    Stop { key: ConnectorKey, cause: StopCause },
}

/// A discharging vehicle as the site reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VehicleReport {
    pub participant: Participant,
    /// The driver's departure (the order's end time).
    pub departure: Option<Timestamp>,
    /// It took part in an event before (known from the store after a restart).
    pub in_event: bool,
}

/// The figures of the last plan, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PlanFigures {
    pub participants: usize,
    pub target: Power,
    pub total: Power,
    pub shortfall: Power,
}

#[derive(Debug, Clone, Copy)]
struct Stopping {
    cause: StopCause,
    at: Timestamp,
    attempts: u8,
}

#[derive(Debug, Clone, Copy)]
struct Vehicle {
    participant: Participant,
    departure: Option<Timestamp>,
    in_event: bool,
    /// The setpoint last sent while in an event.
    sent: Option<Power>,
    stopping: Option<Stopping>,
}

/// The dispatcher of one site.
#[derive(Debug)]
pub struct Dispatcher {
    config: DispatchConfig,
    event: Option<GridEvent>,
    vehicles: BTreeMap<ConnectorKey, Vehicle>,
    last_refresh: Option<Timestamp>,
    cloud_last_seen: Timestamp,
    figures: PlanFigures,
    /// Reused between re-plans.
    scratch: Vec<Participant>,
}

impl Dispatcher {
    /// A dispatcher with no event; `now` counts as the last cloud contact.
    pub fn new(config: DispatchConfig, now: Timestamp) -> Self {
        Dispatcher {
            config,
            event: None,
            vehicles: BTreeMap::new(),
            last_refresh: None,
            cloud_last_seen: now,
            figures: PlanFigures::default(),
            scratch: Vec::new(),
        }
    }

    /// The current or upcoming event.
    pub fn event(&self) -> Option<&GridEvent> {
        self.event.as_ref()
    }

    /// The figures of the last plan (zero outside events).
    pub fn figures(&self) -> PlanFigures {
        self.figures
    }

    /// The vehicles known, and whether each takes part in an event.
    pub fn vehicles(&self) -> impl Iterator<Item = (ConnectorKey, bool)> + '_ {
        self.vehicles.iter().map(|(k, v)| (*k, v.in_event))
    }

    /// Whether the vehicle at `key` takes part in an event.
    pub fn is_in_event(&self, key: &ConnectorKey) -> bool {
        self.vehicles.get(key).is_some_and(|v| v.in_event)
    }

    /// The site's export limit changed (a new site config).
    pub fn set_site_limit(&mut self, limit: Power) {
        self.config.site_export_limit = limit;
    }

    /// The cloud was heard from at `at`.
    pub fn cloud_seen(&mut self, at: Timestamp) {
        self.cloud_last_seen = self.cloud_last_seen.max(at);
    }

    /// A new event replaces any current one.
    pub fn set_event(
        &mut self,
        event: GridEvent,
        now: Timestamp,
    ) -> Result<Vec<DispatchAction>, PlanError> {
        self.event = Some(event);
        self.last_refresh = None;
        self.replan(now)
    }

    /// A vehicle is discharging, or its energy above the floor changed (a new meter reading).
    pub fn upsert_vehicle(
        &mut self,
        report: VehicleReport,
        now: Timestamp,
    ) -> Result<Vec<DispatchAction>, PlanError> {
        let key = report.participant.key;
        match self.vehicles.get_mut(&key) {
            Some(v) => {
                v.participant = report.participant;
                v.departure = report.departure;
                v.in_event |= report.in_event;
            }
            None => {
                self.vehicles.insert(
                    key,
                    Vehicle {
                        participant: report.participant,
                        departure: report.departure,
                        in_event: report.in_event,
                        sent: None,
                        stopping: None,
                    },
                );
            }
        }
        self.replan(now)
    }

    /// A vehicle no longer discharges (its session ended, it left, its pile went offline):
    /// the others are re-planned.
    pub fn remove_vehicle(
        &mut self,
        key: ConnectorKey,
        now: Timestamp,
    ) -> Result<Vec<DispatchAction>, PlanError> {
        if self.vehicles.remove(&key).is_none() {
            return Ok(Vec::new());
        }
        self.replan(now)
    }

    /// Time passes: ends what must end, refreshes setpoints, resends stops.
    pub fn tick(&mut self, now: Timestamp) -> Result<Vec<DispatchAction>, PlanError> {
        self.replan(now)
    }

    fn stop(
        key: ConnectorKey,
        v: &mut Vehicle,
        cause: StopCause,
        now: Timestamp,
    ) -> DispatchAction {
        v.sent = None;
        v.stopping = Some(Stopping {
            cause,
            at: now,
            attempts: 1,
        });
        DispatchAction::Stop { key, cause }
    }

    fn replan(&mut self, now: Timestamp) -> Result<Vec<DispatchAction>, PlanError> {
        // Each action with whether it raises a setpoint (raises are sent last).
        let mut actions: Vec<(bool, DispatchAction)> = Vec::new();
        if self.event.as_ref().is_some_and(|e| now >= e.to) {
            self.event = None;
        }
        let running = self.event.as_ref().is_some_and(|e| now >= e.from);
        let dead_man = now >= self.cloud_last_seen + self.config.cloud_dead_man;
        let retry = self.config.stop_retry;
        for (key, v) in self.vehicles.iter_mut() {
            if let Some(s) = &mut v.stopping {
                if now >= s.at + retry && s.attempts < MAX_STOP_ATTEMPTS {
                    s.at = now;
                    s.attempts += 1;
                    actions.push((
                        false,
                        DispatchAction::Stop {
                            key: *key,
                            cause: s.cause,
                        },
                    ));
                }
                continue;
            }
            let cause = if v.participant.available.mwh() <= 0 {
                Some(StopCause::FloorReached)
            } else if v.departure.is_some_and(|d| now >= d) {
                Some(StopCause::Departed)
            } else if v.in_event && !running {
                Some(StopCause::EventEnded)
            } else if !v.in_event && !running && dead_man {
                Some(StopCause::CloudUnreachable)
            } else {
                None
            };
            if let Some(cause) = cause {
                actions.push((false, Self::stop(*key, v, cause, now)));
            }
        }
        self.scratch.clear();
        self.scratch.extend(
            self.vehicles
                .values()
                .filter(|v| v.stopping.is_none())
                .map(|v| v.participant),
        );
        // In an event, the event's power; else what the orders ask (each vehicle at its
        // order's power), capped by the site limit either way.
        let wanted = match self.event.as_ref().filter(|_| running) {
            Some(event) => event.power,
            None => Power::from_watts(
                self.scratch
                    .iter()
                    .map(|p| p.max_power.watts().max(0))
                    .fold(0i64, i64::saturating_add),
            ),
        };
        let horizon_ms = self.config.replan_horizon.as_millis().max(1) as u64;
        let planned = plan(
            &self.scratch,
            wanted,
            self.config.site_export_limit,
            horizon_ms,
        )?;
        self.figures = PlanFigures {
            participants: self.scratch.len(),
            target: planned.target,
            total: planned.total,
            shortfall: planned.shortfall,
        };
        let refresh_due = self
            .last_refresh
            .is_none_or(|t| now >= t + self.config.refresh);
        let first = actions.len();
        for sp in planned.setpoints {
            let Some(v) = self.vehicles.get_mut(&sp.key) else {
                continue;
            };
            v.in_event |= running;
            // A small raise waits for the next refresh: lowering is always sent (limits and
            // floors depend on it), raising by less than the dead-band would only churn.
            let small_raise = v
                .sent
                .is_some_and(|old| sp.power > old && (sp.power - old).watts() < RAISE_DEADBAND_W);
            if refresh_due || (v.sent != Some(sp.power) && !small_raise) {
                let lower = v.sent.is_some_and(|old| sp.power < old);
                v.sent = Some(sp.power);
                actions.push((
                    !lower,
                    DispatchAction::Setpoint {
                        key: sp.key,
                        power: sp.power,
                        valid_for_s: self.config.setpoint_valid_for_s,
                    },
                ));
            }
        }
        // Lower setpoints go out before higher ones, so the site stays within its limit
        // while the piles take up a new plan.
        actions[first..].sort_by_key(|(higher, _)| *higher);
        if refresh_due {
            self.last_refresh = Some(now);
        }
        Ok(actions.into_iter().map(|(_, a)| a).collect())
    }
}
