//! The site's grid-event dispatcher: a pure state machine that turns events, vehicles coming
//! and going, meter updates and the passing of time into setpoint and stop actions for the
//! piles. The edge's runtime feeds it and sends what it returns; it never touches a socket or
//! reads a clock.
//!
//! Discharge ends, per vehicle or for all:
//! - when the event ends (`now >= event.to`);
//! - when a vehicle has no energy left above its floor (the planner also never gives a vehicle
//!   more power than it can deliver until the next re-plan without passing its floor);
//! - when a vehicle leaves or its departure time comes;
//! - when the cloud has been unreachable for longer than the dead-man timeout. An event runs to
//!   its end while the edge is offline as long as that end comes first: effectively discharge
//!   stops at `min(event.to, last_cloud_contact + dead_man)`, so a stale event cannot drain
//!   the site's vehicles indefinitely.
//!
//! Setpoints are sent when they change, and re-sent every `refresh` so that the piles' own
//! dead-man (`valid_for` in the 0xC4 frame) never lapses while the plan stands.

use std::collections::BTreeMap;

use jiff::{SignedDuration, Timestamp};
use voltline_protocol::domain::Power;

use super::plan::{plan, ConnectorKey, Participant, PlanError};

/// A grid event: export `power` from the site between `from` and `to`.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// How long the cloud may be unreachable before discharge stops.
    pub cloud_dead_man: SignedDuration,
}

/// Why a vehicle stops discharging.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopCause {
    EventEnded,
    /// The plan gives this vehicle no power (the target is met by others, or is zero).
    NotNeeded,
    FloorReached,
    Departed,
    CloudUnreachable,
}

/// What the edge must send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DispatchAction {
    /// Send 0xC4 with this power and validity.
    Setpoint {
        key: ConnectorKey,
        power: Power,
        valid_for_s: u16,
    },
    /// Send 0xC6 (discharge stop).
    Stop { key: ConnectorKey, cause: StopCause },
}

#[derive(Debug, Clone, Copy)]
struct Vehicle {
    participant: Participant,
    departure: Option<Timestamp>,
    /// The setpoint last sent, if discharging.
    sent: Option<Power>,
}

/// The dispatcher of one site.
#[derive(Debug)]
pub struct Dispatcher {
    config: DispatchConfig,
    event: Option<GridEvent>,
    vehicles: BTreeMap<ConnectorKey, Vehicle>,
    last_refresh: Option<Timestamp>,
    cloud_last_seen: Timestamp,
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
        }
    }

    /// The active or upcoming event.
    pub fn event(&self) -> Option<&GridEvent> {
        self.event.as_ref()
    }

    /// The cloud was heard from.
    pub fn cloud_seen(&mut self, now: Timestamp) {
        self.cloud_last_seen = self.cloud_last_seen.max(now);
    }

    /// A new event replaces any current one.
    pub fn set_event(
        &mut self,
        event: GridEvent,
        now: Timestamp,
    ) -> Result<Vec<DispatchAction>, PlanError> {
        self.event = Some(event);
        self.cloud_seen(now);
        self.replan(now)
    }

    /// A vehicle joined, or its energy above the floor changed (a new meter reading).
    pub fn upsert_vehicle(
        &mut self,
        participant: Participant,
        departure: Option<Timestamp>,
        now: Timestamp,
    ) -> Result<Vec<DispatchAction>, PlanError> {
        let sent = self.vehicles.get(&participant.key).and_then(|v| v.sent);
        self.vehicles.insert(
            participant.key,
            Vehicle {
                participant,
                departure,
                sent,
            },
        );
        self.replan(now)
    }

    /// A vehicle left (unplugged, opted out).
    pub fn remove_vehicle(
        &mut self,
        key: ConnectorKey,
        now: Timestamp,
    ) -> Result<Vec<DispatchAction>, PlanError> {
        let mut actions = Vec::new();
        if let Some(v) = self.vehicles.remove(&key) {
            if v.sent.is_some_and(|p| p > Power::ZERO) {
                actions.push(DispatchAction::Stop {
                    key,
                    cause: StopCause::Departed,
                });
            }
        }
        actions.extend(self.replan(now)?);
        Ok(actions)
    }

    /// Time passes: ends what must end, refreshes setpoints.
    pub fn tick(&mut self, now: Timestamp) -> Result<Vec<DispatchAction>, PlanError> {
        self.replan(now)
    }

    fn stop_all(&mut self, cause: StopCause) -> Vec<DispatchAction> {
        let mut actions = Vec::new();
        for (key, v) in self.vehicles.iter_mut() {
            if v.sent.take().is_some_and(|p| p > Power::ZERO) {
                actions.push(DispatchAction::Stop { key: *key, cause });
            }
        }
        actions
    }

    fn replan(&mut self, now: Timestamp) -> Result<Vec<DispatchAction>, PlanError> {
        let mut actions = Vec::new();
        let Some(event) = self.event.clone() else {
            return Ok(self.stop_all(StopCause::EventEnded));
        };
        if now >= event.to {
            self.event = None;
            return Ok(self.stop_all(StopCause::EventEnded));
        }
        if now >= self.cloud_last_seen + self.config.cloud_dead_man {
            self.event = None;
            return Ok(self.stop_all(StopCause::CloudUnreachable));
        }
        if now < event.from {
            return Ok(actions);
        }
        // Vehicles that must stop on their own account.
        for (key, v) in self.vehicles.iter_mut() {
            let cause = if v.participant.available.mwh() <= 0 {
                Some(StopCause::FloorReached)
            } else if v.departure.is_some_and(|d| now >= d) {
                Some(StopCause::Departed)
            } else {
                None
            };
            if let Some(cause) = cause {
                if v.sent.take().is_some_and(|p| p > Power::ZERO) {
                    actions.push(DispatchAction::Stop { key: *key, cause });
                }
            }
        }
        let participants: Vec<Participant> = self
            .vehicles
            .values()
            .filter(|v| v.participant.available.mwh() > 0 && v.departure.is_none_or(|d| now < d))
            .map(|v| v.participant)
            .collect();
        let horizon_ms = self.config.replan_horizon.as_millis().max(1) as u64;
        let planned = plan(
            &participants,
            event.power,
            self.config.site_export_limit,
            horizon_ms,
        )?;
        let refresh_due = self
            .last_refresh
            .is_none_or(|t| now >= t + self.config.refresh);
        for sp in planned.setpoints {
            let v = self
                .vehicles
                .get_mut(&sp.key)
                .expect("planned vehicles are known");
            let changed = v.sent != Some(sp.power);
            if sp.power == Power::ZERO {
                if v.sent.take().is_some_and(|p| p > Power::ZERO) {
                    actions.push(DispatchAction::Stop {
                        key: sp.key,
                        cause: StopCause::NotNeeded,
                    });
                }
                continue;
            }
            if changed || refresh_due {
                v.sent = Some(sp.power);
                actions.push(DispatchAction::Setpoint {
                    key: sp.key,
                    power: sp.power,
                    valid_for_s: self.config.setpoint_valid_for_s,
                });
            }
        }
        if refresh_due {
            self.last_refresh = Some(now);
        }
        Ok(actions)
    }
}
