//! The site's opted-in V2G vehicles and their dispatcher, as one pure value: what a
//! StartDischarge order asked (floor, power, departure), what the pile's 0xC7 readings say of
//! each battery ([`BatteryEstimate`]), and the [`Dispatcher`] that turns them into actions.
//!
//! The site runtime (`site::grid`) persists what [`SiteDispatch::take_dirty`] hands it, sends
//! the actions, and tells this value when a session ends or a pile goes offline. This is
//! also what the `dispatch_replan` bench drives: a meter reading in, actions out.

use std::collections::{BTreeMap, BTreeSet};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{Energy, OrderId, Power, Soc, TransactionSerial};

use super::battery::BatteryEstimate;
use super::dispatcher::{
    DispatchAction, DispatchConfig, Dispatcher, GridEvent, PlanFigures, VehicleReport,
};
use super::plan::{ConnectorKey, Participant, PlanError};

/// Most opted-in vehicles a site keeps (above the planner's bound, which refuses the plan).
pub const MAX_OPT_INS: usize = 8_192;

/// A driver's discharge order at a connector, as the StartDischarge command gave it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OptIn {
    pub order: OrderId,
    pub serial: TransactionSerial,
    /// The SoC the driver keeps.
    pub soc_floor: Soc,
    /// The order's power limit.
    pub max_power: Power,
    /// The driver's departure.
    pub until: Timestamp,
    /// It took part in a grid event (so it stops when that event has ended, also after a
    /// restart).
    #[serde(default)]
    pub in_event: bool,
    /// What the readings said of the battery (kept across a restart).
    #[serde(default)]
    pub battery: BatteryEstimate,
}

/// Why an opt-in was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OptInError {
    #[error("the site already holds {max} discharge orders; stop some before starting more")]
    TooMany { max: usize },
}

/// The site's V2G state.
#[derive(Debug)]
pub struct SiteDispatch {
    dispatcher: Dispatcher,
    opt_ins: BTreeMap<ConnectorKey, OptIn>,
    /// Capacity assumed until a session's own is learned.
    assumed_capacity: Energy,
    /// Opt-ins changed since the last [`SiteDispatch::take_dirty`].
    dirty: BTreeSet<ConnectorKey>,
}

impl SiteDispatch {
    /// A site with no orders and no event.
    pub fn new(config: DispatchConfig, assumed_capacity: Energy, now: Timestamp) -> Self {
        SiteDispatch {
            dispatcher: Dispatcher::new(config, now),
            opt_ins: BTreeMap::new(),
            assumed_capacity,
            dirty: BTreeSet::new(),
        }
    }

    /// The dispatcher (for its event and figures).
    pub fn dispatcher(&self) -> &Dispatcher {
        &self.dispatcher
    }

    /// The current or upcoming event.
    pub fn event(&self) -> Option<&GridEvent> {
        self.dispatcher.event()
    }

    /// The figures of the last plan.
    pub fn figures(&self) -> PlanFigures {
        self.dispatcher.figures()
    }

    /// The orders held.
    pub fn opt_ins(&self) -> impl Iterator<Item = (&ConnectorKey, &OptIn)> {
        self.opt_ins.iter()
    }

    /// How many orders are held.
    pub fn len(&self) -> usize {
        self.opt_ins.len()
    }

    /// True when no order is held.
    pub fn is_empty(&self) -> bool {
        self.opt_ins.is_empty()
    }

    /// The order at `key`.
    pub fn opt_in_of(&self, key: &ConnectorKey) -> Option<&OptIn> {
        self.opt_ins.get(key)
    }

    /// The site's export limit changed.
    pub fn set_site_limit(&mut self, limit: Power) {
        self.dispatcher.set_site_limit(limit);
    }

    /// The cloud was heard from at `at`.
    pub fn cloud_seen(&mut self, at: Timestamp) {
        self.dispatcher.cloud_seen(at);
    }

    /// A discharge order for `key` (replacing an older one there).
    pub fn opt_in(&mut self, key: ConnectorKey, opt_in: OptIn) -> Result<(), OptInError> {
        if !self.opt_ins.contains_key(&key) && self.opt_ins.len() >= MAX_OPT_INS {
            return Err(OptInError::TooMany { max: MAX_OPT_INS });
        }
        self.opt_ins.insert(key, opt_in);
        self.dirty.insert(key);
        Ok(())
    }

    /// A grid event (replacing the current one).
    pub fn set_event(
        &mut self,
        event: GridEvent,
        now: Timestamp,
    ) -> Result<Vec<DispatchAction>, PlanError> {
        let actions = self.dispatcher.set_event(event, now)?;
        Ok(self.note(actions))
    }

    /// A 0xC7 reading of the discharge session `serial` at `key`. Readings of sessions no
    /// order opted in (or of another serial) change nothing.
    pub fn on_meter(
        &mut self,
        key: ConnectorKey,
        serial: TransactionSerial,
        soc: Soc,
        registers: (Energy, Energy),
        now: Timestamp,
    ) -> Result<Vec<DispatchAction>, PlanError> {
        let Some(o) = self.opt_ins.get_mut(&key).filter(|o| o.serial == serial) else {
            return Ok(Vec::new());
        };
        o.battery.update(soc, registers.0, registers.1);
        let report = VehicleReport {
            participant: Participant {
                key,
                available: o.battery.available(o.soc_floor, self.assumed_capacity),
                max_power: o.max_power,
            },
            departure: Some(o.until),
            in_event: o.in_event,
        };
        let actions = self.dispatcher.upsert_vehicle(report, now)?;
        Ok(self.note(actions))
    }

    /// The pile of `key` went offline: the vehicle cannot be dispatched until it reports
    /// again (its order is kept).
    pub fn pile_offline(
        &mut self,
        key: ConnectorKey,
        now: Timestamp,
    ) -> Result<Vec<DispatchAction>, PlanError> {
        let actions = self.dispatcher.remove_vehicle(key, now)?;
        Ok(self.note(actions))
    }

    /// The session of the order at `key` is over (ended, refused, or never started).
    pub fn session_ended(
        &mut self,
        key: ConnectorKey,
        now: Timestamp,
    ) -> Result<Vec<DispatchAction>, PlanError> {
        if self.opt_ins.remove(&key).is_some() {
            self.dirty.insert(key);
        }
        let actions = self.dispatcher.remove_vehicle(key, now)?;
        Ok(self.note(actions))
    }

    /// Time passes.
    pub fn tick(&mut self, now: Timestamp) -> Result<Vec<DispatchAction>, PlanError> {
        let actions = self.dispatcher.tick(now)?;
        Ok(self.note(actions))
    }

    /// The orders changed since the last call (`None`: removed), to persist.
    pub fn take_dirty(&mut self) -> Vec<(ConnectorKey, Option<OptIn>)> {
        let keys = std::mem::take(&mut self.dirty);
        keys.into_iter()
            .map(|k| (k, self.opt_ins.get(&k).cloned()))
            .collect()
    }

    /// Marks the vehicles given an event setpoint as taking part in the event.
    fn note(&mut self, actions: Vec<DispatchAction>) -> Vec<DispatchAction> {
        for a in &actions {
            if let DispatchAction::Setpoint { key, .. } = a {
                let in_event = self.dispatcher.is_in_event(key);
                if let Some(o) = self.opt_ins.get_mut(key).filter(|_| in_event) {
                    if !o.in_event {
                        o.in_event = true;
                        self.dirty.insert(*key);
                    }
                }
            }
        }
        actions
    }
}

#[cfg(test)]
mod tests {
    use jiff::SignedDuration;
    use voltline_protocol::domain::{ConnectorNo, PileCode};

    use super::*;
    use crate::dispatch::StopCause;

    fn t(s: i64) -> Timestamp {
        Timestamp::from_second(1_790_000_000 + s).unwrap()
    }

    fn key(i: u64) -> ConnectorKey {
        ConnectorKey {
            pile: PileCode::from_number(32_010_600_000_000 + i).unwrap(),
            connector: ConnectorNo::new(1).unwrap(),
        }
    }

    fn serial(i: u64) -> TransactionSerial {
        let at = voltline_protocol::domain::SerialTime {
            year: 26,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
        };
        TransactionSerial::compose(key(i).pile, key(i).connector, at, i as u16).unwrap()
    }

    fn config() -> DispatchConfig {
        DispatchConfig {
            site_export_limit: Power::from_kw(100),
            setpoint_valid_for_s: 60,
            refresh: SignedDuration::from_secs(20),
            replan_horizon: SignedDuration::from_secs(15),
            cloud_dead_man: SignedDuration::from_mins(10),
            stop_retry: SignedDuration::from_secs(30),
        }
    }

    fn opt_in(i: u64, floor: u8) -> OptIn {
        OptIn {
            order: OrderId::new(format!("dis-{i}")).unwrap(),
            serial: serial(i),
            soc_floor: Soc::new(floor).unwrap(),
            max_power: Power::from_kw(11),
            until: t(7_200),
            in_event: false,
            battery: BatteryEstimate::default(),
        }
    }

    fn meter(d: &mut SiteDispatch, i: u64, soc: u8, at: i64) -> Vec<DispatchAction> {
        d.on_meter(
            key(i),
            serial(i),
            Soc::new(soc).unwrap(),
            (Energy::ZERO, Energy::ZERO),
            t(at),
        )
        .unwrap()
    }

    #[test]
    fn readings_of_sessions_without_an_order_change_nothing() {
        let mut d = SiteDispatch::new(config(), Energy::from_wh(40_000), t(0));
        assert!(meter(&mut d, 1, 50, 0).is_empty());
        assert_eq!(d.dispatcher().vehicles().count(), 0);
    }

    #[test]
    fn a_vehicle_in_an_event_is_marked_and_persisted_and_stopped_at_its_end() {
        let mut d = SiteDispatch::new(config(), Energy::from_wh(40_000), t(0));
        d.opt_in(key(1), opt_in(1, 20)).unwrap();
        assert_eq!(d.take_dirty().len(), 1);
        let event = GridEvent {
            id: "e1".into(),
            power: Power::from_kw(5),
            from: t(0),
            to: t(600),
        };
        d.set_event(event, t(0)).unwrap();
        let actions = meter(&mut d, 1, 60, 1);
        assert!(matches!(
            actions[..],
            [DispatchAction::Setpoint { power, .. }] if power == Power::from_kw(5)
        ));
        let dirty = d.take_dirty();
        assert!(dirty[0].1.as_ref().unwrap().in_event);
        let end = d.tick(t(600)).unwrap();
        assert_eq!(
            end,
            vec![DispatchAction::Stop {
                key: key(1),
                cause: StopCause::EventEnded
            }]
        );
        assert!(d.session_ended(key(1), t(601)).unwrap().is_empty());
        assert_eq!(d.take_dirty(), vec![(key(1), None)]);
    }

    #[test]
    fn a_restored_vehicle_of_an_event_that_ended_meanwhile_is_stopped_when_seen() {
        let mut d = SiteDispatch::new(config(), Energy::from_wh(40_000), t(1_000));
        let mut o = opt_in(1, 20);
        o.in_event = true;
        d.opt_in(key(1), o).unwrap();
        let actions = meter(&mut d, 1, 60, 1_000);
        assert_eq!(
            actions,
            vec![DispatchAction::Stop {
                key: key(1),
                cause: StopCause::EventEnded
            }]
        );
    }

    #[test]
    fn opt_ins_are_bounded() {
        let mut d = SiteDispatch::new(config(), Energy::from_wh(40_000), t(0));
        for i in 0..MAX_OPT_INS as u64 {
            let k = ConnectorKey {
                pile: PileCode::from_number(32_010_600_000_000 + i / 8).unwrap(),
                connector: ConnectorNo::new(1 + (i % 8) as u8).unwrap(),
            };
            d.opt_in(k, opt_in(1, 20)).unwrap();
        }
        assert_eq!(
            d.opt_in(key(999_999), opt_in(1, 20)),
            Err(OptInError::TooMany { max: MAX_OPT_INS })
        );
    }
}
