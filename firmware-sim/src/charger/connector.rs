//! One connector: its meter, the vehicle on it, what it is doing, and the integration of
//! power over simulated time.
//!
//! [`Connector::advance`] steps time forward in sub-steps of at most [`MAX_STEP_MS`], never
//! across a half-hour billing slot of the pile's clock (so each slot's energy goes to its
//! rate), a dead-man expiry or a discharge end time, and stops exactly where the vehicle
//! reaches its target (or its discharge floor): the moment is returned so that the session
//! ends there, not at the next wake-up.

use voltline_protocol::domain::{ConnectorNo, Energy, Power, TransactionSerial};
use voltline_protocol::message::record::TransactionOrigin;
use voltline_protocol::message::register::BillingModel;
use voltline_protocol::message::stop_reason::StopReason;
use voltline_protocol::message::transaction::PhysicalCardNo;
use voltline_protocol::message::v2g::DischargeStopReason;
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::wire::text::FixedText;

use crate::clock::{PileClock, SimTime};
use crate::meter::Meter;
use crate::pricing::PeriodEnergy;
use crate::vehicle::Vehicle;

/// The longest integration sub-step: the taper changes power as SoC rises.
pub const MAX_STEP_MS: u64 = 10_000;

/// Discharge floor reached (read in the space of appendix 13.1: the SoC limit was reached).
pub const DISCHARGE_FLOOR_REACHED: DischargeStopReason = DischargeStopReason(0x41);
/// The discharge end time of 0xC2 was reached ("time target reached").
pub const DISCHARGE_END_TIME: DischargeStopReason = DischargeStopReason(0x44);
/// Stopped by 0xC6 ("remote stop from the app").
pub const DISCHARGE_REMOTE_STOP: DischargeStopReason = DischargeStopReason(0x40);
/// The gun was pulled ("control pilot disconnected").
pub const UNPLUGGED: u8 = 0x6B;
/// The connector faulted ("output fault").
pub const OUTPUT_FAULT: u8 = 0x75;

/// A charging session in progress.
#[derive(Debug, Clone)]
pub struct ChargeSession {
    pub serial: TransactionSerial,
    pub origin: TransactionOrigin,
    pub card: PhysicalCardNo,
    pub vin: FixedText<17>,
    pub started: SimTime,
    pub start_time: Cp56Time,
    /// Import register at the start, wire resolution.
    pub meter_start: Energy,
    pub periods: PeriodEnergy,
    /// The model the session is priced with: the one the pile held when it started.
    pub model: BillingModel,
}

/// A discharge session in progress.
#[derive(Debug, Clone)]
pub struct DischargeSession {
    pub serial: TransactionSerial,
    pub started: SimTime,
    pub start_time: Cp56Time,
    /// Export register at the start, wire resolution.
    pub export_start: Energy,
    pub soc_floor_pct: u8,
    pub max_power: Power,
    /// When the 0xC2 end time falls, in simulated time.
    pub end_at: Option<SimTime>,
    /// The power to hold (a magnitude).
    pub setpoint: Power,
    /// Dead-man: after this, hold zero until a new setpoint.
    pub setpoint_until: Option<SimTime>,
}

/// What a connector is doing.
#[derive(Debug, Clone)]
pub enum Activity {
    Idle,
    /// A pile-initiated start (0x31) awaits the platform's 0x32.
    AwaitingAuth {
        since: SimTime,
    },
    Charging(Box<ChargeSession>),
    Discharging(Box<DischargeSession>),
}

/// A remote start that found no vehicle: if one plugs in within 60 s, the pile sends a late
/// success reply and starts (reference 8.4).
#[derive(Debug, Clone)]
pub struct PendingStart {
    pub serial: TransactionSerial,
    pub card: PhysicalCardNo,
    pub sequence: u16,
    pub deadline: SimTime,
}

/// How `advance` found a session ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionEnd {
    Charge {
        at: SimTime,
        reason: StopReason,
    },
    Discharge {
        at: SimTime,
        reason: DischargeStopReason,
    },
}

/// One connector.
#[derive(Debug, Clone)]
pub struct Connector {
    pub no: ConnectorNo,
    pub meter: Meter,
    pub vehicle: Option<Vehicle>,
    pub activity: Activity,
    pub pending_start: Option<PendingStart>,
    pub faulted: bool,
    pub next_report: SimTime,
    /// Status and plug last reported, to report changes at once.
    pub reported: Option<(u8, bool)>,
    /// Signed power now (negative while discharging).
    pub power: Power,
    /// A card or VIN start the pile still has to ask the platform for (0x31): kept while
    /// offline or until the platform answers.
    pub start_intent: Option<crate::charger::StartBy>,
}

impl Connector {
    pub fn new(no: ConnectorNo, meter: Meter) -> Connector {
        Connector {
            no,
            meter,
            vehicle: None,
            activity: Activity::Idle,
            pending_start: None,
            faulted: false,
            next_report: SimTime::ZERO,
            reported: None,
            power: Power::ZERO,
            start_intent: None,
        }
    }

    pub fn is_busy(&self) -> bool {
        matches!(
            self.activity,
            Activity::Charging(_) | Activity::Discharging(_) | Activity::AwaitingAuth { .. }
        )
    }

    pub fn serial(&self) -> Option<TransactionSerial> {
        match &self.activity {
            Activity::Charging(s) => Some(s.serial),
            Activity::Discharging(s) => Some(s.serial),
            _ => None,
        }
    }

    /// Integrates from `from` to `to`; returns the first session end found (time stops there
    /// for this connector: the caller ends the session, the rest of the span is idle).
    pub fn advance(
        &mut self,
        from: SimTime,
        to: SimTime,
        clock: &PileClock,
        pile_max: Power,
        ac: bool,
    ) -> Option<SessionEnd> {
        let mut t = from;
        while t < to {
            let step_end = match &self.activity {
                Activity::Charging(_) => {
                    let slot_end = t.plus_ms(clock.ms_to_next_slot(t));
                    to.min(t.plus_ms(MAX_STEP_MS)).min(slot_end)
                }
                Activity::Discharging(d) => {
                    let mut e = to.min(t.plus_ms(MAX_STEP_MS));
                    if let Some(u) = d.setpoint_until.filter(|u| *u > t) {
                        e = e.min(u);
                    }
                    if let Some(u) = d.end_at.filter(|u| *u > t) {
                        e = e.min(u);
                    }
                    e
                }
                _ => {
                    self.power = Power::ZERO;
                    return None;
                }
            };
            if let Some(end) = self.step(t, step_end, clock, pile_max, ac) {
                return Some(end);
            }
            t = step_end;
        }
        None
    }

    fn step(
        &mut self,
        t: SimTime,
        step_end: SimTime,
        clock: &PileClock,
        pile_max: Power,
        ac: bool,
    ) -> Option<SessionEnd> {
        let dt = step_end.since(t);
        let vehicle = self.vehicle.as_mut()?;
        match &mut self.activity {
            Activity::Charging(s) => {
                let need = vehicle.energy_to_target();
                if need.mwh() <= 0 {
                    self.power = Power::ZERO;
                    return Some(SessionEnd::Charge {
                        at: t,
                        reason: StopReason::SOC_FULL,
                    });
                }
                let p = vehicle.charge_power(pile_max, ac);
                self.power = p;
                let (run, ends) = cut_at(p, dt, need);
                let e = self.meter.import(p, run);
                vehicle.absorb(e);
                let kind = s.model.slots[clock.slot(t).min(47)];
                s.periods.add(kind, e);
                ends.then_some(SessionEnd::Charge {
                    at: t.plus_ms(run),
                    reason: StopReason::SOC_FULL,
                })
            }
            Activity::Discharging(d) => {
                if d.end_at.is_some_and(|e| e <= t) {
                    return Some(SessionEnd::Discharge {
                        at: t,
                        reason: DISCHARGE_END_TIME,
                    });
                }
                let live = d.setpoint_until.is_none_or(|u| u > t);
                let p = if live {
                    Power::from_watts(
                        d.setpoint
                            .watts()
                            .min(d.max_power.watts())
                            .min(vehicle.spec.max_discharge_power.watts())
                            .min(pile_max.watts())
                            .max(0),
                    )
                } else {
                    Power::ZERO
                };
                let room = vehicle.energy_above_floor(d.soc_floor_pct);
                if room.mwh() <= 0 {
                    self.power = Power::ZERO;
                    return Some(SessionEnd::Discharge {
                        at: t,
                        reason: DISCHARGE_FLOOR_REACHED,
                    });
                }
                self.power = Power::from_watts(-p.watts());
                let (run, ends) = cut_at(p, dt, room);
                let e = self.meter.export(p, run);
                vehicle.release(e);
                ends.then_some(SessionEnd::Discharge {
                    at: t.plus_ms(run),
                    reason: DISCHARGE_FLOOR_REACHED,
                })
            }
            _ => None,
        }
    }

    /// When the current session could end on its own at the present power (an early
    /// estimate: the taper only makes it later), for the next wake-up.
    pub fn predicted_end(&self, now: SimTime, pile_max: Power, ac: bool) -> Option<SimTime> {
        let vehicle = self.vehicle.as_ref()?;
        match &self.activity {
            Activity::Charging(_) => {
                let p = vehicle.charge_power(pile_max, ac);
                Some(now.plus_ms(ms_for(vehicle.energy_to_target(), p)))
            }
            Activity::Discharging(d) => {
                let mut at = d.end_at;
                if let Some(u) = d.setpoint_until.filter(|u| *u > now) {
                    at = Some(at.map_or(u, |a| a.min(u)));
                }
                let p = self.power.abs();
                if p.watts() > 0 {
                    let floor = now.plus_ms(ms_for(vehicle.energy_above_floor(d.soc_floor_pct), p));
                    at = Some(at.map_or(floor, |a| a.min(floor)));
                }
                at
            }
            _ => None,
        }
    }
}

/// Milliseconds for `p` to move `e` (rounded up; effectively never at zero power).
fn ms_for(e: Energy, p: Power) -> u64 {
    if p.watts() <= 0 {
        return u64::MAX / 4;
    }
    let wms = e.mwh().max(0) as i128 * 3_600;
    ((wms + p.watts() as i128 - 1) / p.watts() as i128) as u64
}

/// How long of `dt` to run at `p` before `limit` is reached, and whether it is reached.
fn cut_at(p: Power, dt: u64, limit: Energy) -> (u64, bool) {
    let full = ms_for(limit, p);
    if full <= dt {
        (full, true)
    } else {
        (dt, false)
    }
}
