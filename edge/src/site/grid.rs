//! V2G grid dispatch in the site runtime: the adapter around the pure
//! [`SiteDispatch`](crate::dispatch::SiteDispatch). It owns the I/O the core must not do:
//!
//! - **Commands**: a `GridEvent` is checked, cached in the store (flushed) and handed to the
//!   dispatcher, and its result goes up as a command result; a `StartDischarge` records the
//!   driver's order (floor, power, departure) before the connector machine sends the 0xC2.
//! - **Readings**: every 0xC7 of a discharging session goes to the dispatcher after its
//!   connector machine saw it.
//! - **Time**: each site tick reads the uplink's last cloud contact (the dead-man), the site
//!   limit from the cached site config, and each order's session in its connector machine
//!   (a session that ended drops its order; a pile offline or a session stopping leaves the
//!   plan until it reports again), then ticks the dispatcher.
//! - **Actions**: setpoints go to the connector machine (which sends 0xC4 only to a
//!   discharging session); stops are sent as 0xC6 here (the machine then sees the pile end
//!   the session and its 0xC9 record, as for a stop at the pile). Both are counted in the
//!   metrics; stops also go up as info alarms.
//! - **Persistence**: the event and the orders live in the store's `grid` tree, so an event
//!   survives a restart and runs to its end while the cloud is unreachable.
//!
//! Which discharges the cloud dead-man ends: only *free-running* ones (a driver's order
//! discharging while no grid event runs), after `cloud_dead_man_ms` without contact. A
//! vehicle taking part in a running event discharges to the event's end, its floor or its
//! departure, whatever the link; events longer than `max_event_ms` are refused on arrival so
//! an offline site cannot be held to an unbounded one.
//!
//! What it must never do: block on a pile, keep an order whose session is over, or answer a
//! grid event as accepted before it is on disk.

use jiff::Timestamp;
use tokio::sync::watch;
use voltline_protocol::domain::{CommandId, Power};
use voltline_protocol::message::v2g::{BidirectionalMeter, DischargeStop};
use voltline_protocol::sync::{Alarm, CommandOutcome, RecordBody, Severity};
use voltline_protocol::Message;

use super::grid_options::GridOptions;
use super::Site;
use crate::connector::{ConnectorId, Direction, Input, State};
use crate::dispatch::{
    ConnectorKey, DispatchAction, GridEvent, OptIn, PlanError, SiteDispatch, MAX_OPT_INS,
};
use crate::ops::metrics::CauseLabels;
use crate::store::{NewRecord, StoreError};

/// The site's grid state.
pub(super) struct Grid {
    pub(super) core: SiteDispatch,
    opts: GridOptions,
    cloud_contact: Option<watch::Receiver<Option<Timestamp>>>,
    /// The event the site last knew to be current (to notice its end).
    event_id: Option<String>,
    /// Setpoints to hand to the connector machines (connector, power, validity).
    setpoints: Vec<(ConnectorId, Power, u16)>,
}

impl Grid {
    pub(super) fn new(opts: GridOptions, now: Timestamp) -> Grid {
        Grid {
            core: SiteDispatch::new(opts.dispatch_config(), opts.assumed_capacity, now),
            opts,
            cloud_contact: None,
            event_id: None,
            setpoints: Vec::new(),
        }
    }
}

fn key_of(id: ConnectorId) -> ConnectorKey {
    ConnectorKey {
        pile: id.pile,
        connector: id.connector,
    }
}

fn id_of(key: ConnectorKey) -> ConnectorId {
    ConnectorId {
        pile: key.pile,
        connector: key.connector,
    }
}

/// Where an order's session is, as its connector machine holds it.
enum Seen {
    /// Starting or discharging with the pile online.
    Live,
    /// Offline, faulted or stopping: out of the plan until it reports again.
    Away,
    /// Over (ended, refused, never started).
    Over,
}

impl Site {
    /// Hands the site the uplink's last cloud contact; the V2G dead-man reads it. Without
    /// it (cloud disabled) the cloud counts as last heard when the site started.
    pub fn with_cloud_contact(mut self, contact: watch::Receiver<Option<Timestamp>>) -> Site {
        self.grid.cloud_contact = Some(contact);
        self
    }

    /// Takes up the cached event and orders after a restart.
    pub(super) async fn grid_restore(&mut self) -> Result<(), StoreError> {
        let opt_ins = self.store.opt_ins()?;
        let event = self.store.grid_event()?;
        for (id, o) in opt_ins {
            if let Err(e) = self.grid.core.opt_in(key_of(id), o) {
                tracing::warn!(error = %e, "discharge order not restored");
            }
        }
        self.grid.core.take_dirty();
        if let Some(event) = event {
            tracing::info!(event = %event.id, to = %event.to, "resuming the cached grid event");
            self.grid.event_id = Some(event.id.clone());
            let now = self.now;
            let actions = self.grid.core.set_event(event, now);
            self.grid_carry_out(actions);
        }
        self.grid_send_setpoints().await;
        Ok(())
    }

    /// The cloud was heard from now (a command arrived).
    pub(super) fn grid_cloud_heard(&mut self) {
        self.grid.core.cloud_seen(self.now);
    }

    /// Whether grid dispatch can take one more order at `id`.
    pub(super) fn grid_has_room(&self, id: ConnectorId) -> bool {
        self.grid.core.opt_in_of(&key_of(id)).is_some() || self.grid.core.len() < MAX_OPT_INS
    }

    /// A driver's discharge order, noted once its connector machine sent the start (a
    /// refused or repeated start leaves the orders as they were).
    pub(super) fn grid_opt_in(&mut self, id: ConnectorId, o: OptIn) {
        let started = self
            .machines
            .get(&id)
            .is_some_and(|m| matches!(m.state(), State::StartRequested(p) if p.serial == o.serial));
        let known = self
            .grid
            .core
            .opt_in_of(&key_of(id))
            .is_some_and(|held| held.serial == o.serial);
        if !started || known {
            return;
        }
        if let Err(e) = self.grid.core.opt_in(key_of(id), o) {
            tracing::warn!(pile = %id.pile, error = %e, "discharge order not kept");
        }
        self.grid_persist();
    }

    /// A grid event command.
    pub(super) async fn grid_event_command(&mut self, command: CommandId, event: GridEvent) {
        if let Some(reason) = self.grid.opts.refusal(&event, self.now) {
            self.metrics.grid_events_refused.inc();
            tracing::info!(event = %event.id, %reason, "grid event refused");
            self.record_result(command, CommandOutcome::Rejected { reason });
            return;
        }
        if let Err(e) = self.store.put_grid_event(Some(&event)).await {
            self.internal_error("caching a grid event", &e);
            let reason = format!("the edge could not store the event ({e}); send it again");
            self.record_result(command, CommandOutcome::Failed { reason });
            return;
        }
        tracing::info!(event = %event.id, power = %event.power, from = %event.from, to = %event.to, "grid event accepted");
        self.metrics.grid_events_accepted.inc();
        self.grid.event_id = Some(event.id.clone());
        let now = self.now;
        let actions = self.grid.core.set_event(event, now);
        self.record_result(command, CommandOutcome::Accepted);
        self.grid_carry_out(actions);
        self.grid_send_setpoints().await;
    }

    /// A 0xC7 the connector machine has seen.
    pub(super) async fn grid_meter(&mut self, b: &BidirectionalMeter) {
        let id = ConnectorId {
            pile: b.pile_code,
            connector: b.connector,
        };
        let discharging = self.machines.get(&id).is_some_and(|m| {
            matches!(m.state(), State::Charging(s) if s.direction == Direction::Discharge && s.serial == b.serial)
        });
        if !discharging {
            return;
        }
        let now = self.now;
        let actions = self.grid.core.on_meter(
            key_of(id),
            b.serial,
            b.soc,
            (b.import_register, b.export_register),
            now,
        );
        self.grid_carry_out(actions);
        self.grid_send_setpoints().await;
    }

    /// The site tick: contact, limit, sessions, then time.
    pub(super) async fn grid_tick(&mut self) {
        if let Some(t) = self.grid.cloud_contact.as_ref().and_then(|c| *c.borrow()) {
            self.grid.core.cloud_seen(t);
        }
        let site_limit = self
            .store
            .site_config()
            .and_then(|c| c.limits.max_site_power);
        let limit = match (site_limit, self.grid.opts.export_limit) {
            (Some(a), Some(b)) => a.min(b),
            (a, b) => a.or(b).unwrap_or(Power::from_watts(i64::MAX)),
        };
        self.grid.core.set_site_limit(limit);
        let now = self.now;
        let keys: Vec<(ConnectorKey, voltline_protocol::TransactionSerial)> = self
            .grid
            .core
            .opt_ins()
            .map(|(k, o)| (*k, o.serial))
            .collect();
        for (key, serial) in keys {
            let seen = match self.machines.get(&id_of(key)).map(|m| m.state()) {
                Some(State::StartRequested(p)) if p.serial == serial => Seen::Live,
                Some(State::Charging(s)) if s.serial == serial => Seen::Live,
                Some(
                    State::Stopping { session: s, .. }
                    | State::Offline { session: Some(s) }
                    | State::Faulted { session: Some(s) },
                ) if s.serial == serial => Seen::Away,
                _ => Seen::Over,
            };
            let actions = match seen {
                Seen::Live => continue,
                Seen::Away => self.grid.core.pile_offline(key, now),
                Seen::Over => self.grid.core.session_ended(key, now),
            };
            self.grid_carry_out(actions);
        }
        let actions = self.grid.core.tick(now);
        self.grid_carry_out(actions);
        let current = self.grid.core.event().map(|e| e.id.clone());
        if self.grid.event_id.is_some() && current.is_none() {
            let ended = self.grid.event_id.take().unwrap_or_default();
            tracing::info!(event = %ended, "grid event ended");
            self.grid_alarm(
                "grid_event_ended",
                format!("grid event {ended} ended; its discharges were stopped"),
                None,
            );
            // Inline, not spawned: a newer event accepted later must not be forgotten.
            if let Err(e) = self.store.put_grid_event(None).await {
                self.internal_error("forgetting the ended grid event", &e);
            }
        }
        let f = self.grid.core.figures();
        let running = self.grid.core.event().is_some_and(|e| now >= e.from);
        self.metrics.grid_event_active.set(i64::from(running));
        self.metrics.grid_participants.set(f.participants as i64);
        self.metrics.grid_target_watts.set(f.target.watts());
        self.metrics.grid_planned_watts.set(f.total.watts());
        self.metrics.grid_shortfall_watts.set(f.shortfall.watts());
        self.grid_send_setpoints().await;
    }

    /// Sends what the dispatcher asked for and persists the orders it changed.
    /// Setpoints are queued for [`Site::grid_send_setpoints`], which every entry point
    /// runs before it returns.
    fn grid_carry_out(&mut self, actions: Result<Vec<DispatchAction>, PlanError>) {
        let actions = match actions {
            Ok(a) => a,
            Err(e) => {
                self.metrics.grid_replan_errors.inc();
                tracing::error!(error = %e, "grid dispatch could not re-plan");
                self.grid_alarm("grid_replan_failed", e.to_string(), None);
                return;
            }
        };
        for action in actions {
            match action {
                DispatchAction::Setpoint {
                    key,
                    power,
                    valid_for_s,
                } => {
                    self.metrics.grid_setpoints.inc();
                    self.grid.setpoints.push((id_of(key), power, valid_for_s));
                }
                DispatchAction::Stop { key, cause } => {
                    self.metrics
                        .grid_stops
                        .get_or_create(&CauseLabels {
                            cause: cause.as_str(),
                        })
                        .inc();
                    tracing::info!(pile = %key.pile, connector = key.connector.get(), cause = cause.as_str(), "stopping discharge");
                    self.send(
                        key.pile,
                        None,
                        Message::DischargeStop(DischargeStop {
                            pile_code: key.pile,
                            connector: key.connector,
                        }),
                    );
                    self.grid_alarm(
                        "v2g_discharge_stopped",
                        format!(
                            "discharge at connector {} stopped: {}",
                            key.connector,
                            cause.as_str()
                        ),
                        Some(key),
                    );
                }
            }
        }
        self.grid_persist();
    }

    /// Steps the connector machines with the setpoints the dispatcher queued.
    async fn grid_send_setpoints(&mut self) {
        for (id, power, valid_for_s) in std::mem::take(&mut self.grid.setpoints) {
            self.step_connector(id, Input::Setpoint { power, valid_for_s }, None)
                .await;
        }
    }

    fn grid_persist(&mut self) {
        for (key, o) in self.grid.core.take_dirty() {
            if let Err(e) = self.store.put_opt_in(id_of(key), o.as_ref()) {
                self.internal_error("saving a discharge order", &e);
            }
        }
    }

    fn grid_alarm(&mut self, code: &str, message: String, key: Option<ConnectorKey>) {
        self.pending.push(NewRecord::new(
            self.now,
            RecordBody::Alarm(Alarm {
                severity: Severity::Info,
                code: code.to_owned(),
                message,
                pile: key.map(|k| k.pile),
            }),
        ));
    }
}
