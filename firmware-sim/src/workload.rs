//! A scenario's life on one charger: vehicles arriving at random (Poisson), staying, some
//! users stopping early, and faults at random rates. It only decides *when* things happen;
//! the charger state machine decides what they mean.

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{Energy, Power};
use voltline_protocol::message::transaction::PhysicalCardNo;

use crate::charger::{ChargerFault, Input, StartBy};
use crate::clock::SimTime;
use crate::events::SimEvent;
use crate::faults::Fault;
use crate::rng::SplitMix64;
use crate::vehicle::VehicleSpec;

/// How vehicles come and go.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Arrivals {
    /// Arrivals per free connector per simulated hour (0: none).
    pub per_connector_per_hour: f64,
    /// How sessions start: "card" (0x31, the platform authorises), "vin", or "remote" (the
    /// vehicle waits for the platform's 0x34).
    pub start: StartMode,
    /// Planned stay, simulated minutes [min, max].
    pub session_minutes: [u32; 2],
    /// Fraction of users who stop at the pile when their stay is over (the rest leave
    /// when the vehicle's target SoC is reached).
    pub user_stop_fraction: f64,
    pub battery_kwh: [u32; 2],
    pub start_soc_pct: [u8; 2],
    pub target_soc_pct: [u8; 2],
    /// Fraction of vehicles able to discharge (V2G).
    pub v2g_fraction: f64,
    /// Plug every connector in at start-up (load tests: everything charging at once).
    pub plug_in_at_start: bool,
}

impl Default for Arrivals {
    fn default() -> Self {
        Arrivals {
            per_connector_per_hour: 0.5,
            start: StartMode::Card,
            session_minutes: [20, 120],
            user_stop_fraction: 0.3,
            battery_kwh: [40, 100],
            start_soc_pct: [10, 50],
            target_soc_pct: [80, 100],
            v2g_fraction: 0.2,
            plug_in_at_start: false,
        }
    }
}

/// How sessions start in a scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StartMode {
    Card,
    Vin,
    Remote,
}

/// Random fault rates, per charger per simulated hour unless said otherwise.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FaultRates {
    pub drop_per_hour: f64,
    pub garbage_per_hour: f64,
    pub duplicate_per_hour: f64,
    pub reorder_per_hour: f64,
    pub reboot_per_hour: f64,
    pub power_loss_per_hour: f64,
    /// Simulated seconds a power loss lasts.
    pub power_off_s: u32,
    /// Fraction of chargers whose clock starts at 1970.
    pub clock_1970_fraction: f64,
    /// Fraction of chargers whose clock is skewed, by up to `clock_skew_max_minutes`.
    pub clock_skew_fraction: f64,
    pub clock_skew_max_minutes: i64,
    /// Firmware that zeroes the meter on every reboot.
    pub meter_reset_on_reboot: bool,
}

impl FaultRates {
    fn total(&self) -> f64 {
        self.drop_per_hour
            + self.garbage_per_hour
            + self.duplicate_per_hour
            + self.reorder_per_hour
            + self.reboot_per_hour
            + self.power_loss_per_hour
    }
}

/// Something the workload does now.
#[derive(Debug, Clone)]
pub enum Action {
    Input(Input),
    Fault(Fault),
}

#[derive(Debug, Clone)]
enum Bay {
    Empty {
        next_arrival: SimTime,
    },
    Occupied {
        user_stop_at: Option<SimTime>,
        leave_at: SimTime,
    },
}

const HOUR_MS: f64 = 3_600_000.0;
/// A vehicle lingers this long after its session ends.
const DWELL_MS: u64 = 2 * 60_000;

/// One charger's workload.
#[derive(Debug, Clone)]
pub struct Workload {
    arrivals: Arrivals,
    faults: FaultRates,
    rng: SplitMix64,
    bays: Vec<Bay>,
    next_fault: Option<SimTime>,
    started: bool,
}

impl Workload {
    pub fn new(
        arrivals: Arrivals,
        faults: FaultRates,
        connectors: u8,
        rng: SplitMix64,
        now: SimTime,
    ) -> Workload {
        let mut w = Workload {
            arrivals,
            faults,
            rng,
            bays: Vec::new(),
            next_fault: None,
            started: false,
        };
        w.bays = (0..connectors)
            .map(|_| Bay::Empty {
                next_arrival: w.arrival_after(now),
            })
            .collect();
        w.next_fault = w.fault_after(now);
        w
    }

    fn arrival_after(&mut self, now: SimTime) -> SimTime {
        let rate = self.arrivals.per_connector_per_hour;
        if rate <= 0.0 {
            return SimTime(u64::MAX);
        }
        now.plus_ms(self.rng.exponential(HOUR_MS / rate) as u64)
    }

    fn fault_after(&mut self, now: SimTime) -> Option<SimTime> {
        let rate = self.faults.total();
        (rate > 0.0).then(|| now.plus_ms(self.rng.exponential(HOUR_MS / rate) as u64))
    }

    /// When the workload next wants to act.
    pub fn next_at(&self) -> SimTime {
        let mut at = self.next_fault.unwrap_or(SimTime(u64::MAX));
        if !self.started {
            return SimTime::ZERO;
        }
        for b in &self.bays {
            at = at.min(match b {
                Bay::Empty { next_arrival } => *next_arrival,
                Bay::Occupied {
                    user_stop_at,
                    leave_at,
                } => user_stop_at.map_or(*leave_at, |u| u.min(*leave_at)),
            });
        }
        at
    }

    /// What is due at `now`.
    pub fn due(&mut self, now: SimTime) -> Vec<Action> {
        let mut out = Vec::new();
        if !self.started {
            self.started = true;
            if self.rng.unit() < self.faults.clock_1970_fraction {
                out.push(Action::Fault(Fault::Pile(ChargerFault::ClockAt1970)));
            } else if self.rng.unit() < self.faults.clock_skew_fraction {
                let m = self.faults.clock_skew_max_minutes.abs();
                let minutes = self.rng.between(0, 2 * m as u64) as i64 - m;
                out.push(Action::Fault(Fault::Pile(ChargerFault::ClockSkew {
                    minutes,
                })));
            }
            if self.arrivals.plug_in_at_start {
                for b in &mut self.bays {
                    *b = Bay::Empty { next_arrival: now };
                }
            }
        }
        for i in 0..self.bays.len() {
            let connector = i as u8 + 1;
            match self.bays[i].clone() {
                Bay::Empty { next_arrival } if next_arrival <= now => {
                    let vehicle = self.vehicle();
                    let [lo, hi] = self.arrivals.session_minutes;
                    let stay = now.plus_ms(self.rng.between(lo as u64, hi as u64) * 60_000);
                    let user_stops = self.rng.unit() < self.arrivals.user_stop_fraction;
                    self.bays[i] = Bay::Occupied {
                        user_stop_at: user_stops.then_some(stay),
                        // Leaves at the latest three stays later, charged or not.
                        leave_at: stay.plus_ms(2 * stay.since(now)),
                    };
                    let start = match self.arrivals.start {
                        StartMode::Card => StartBy::Card(self.card()),
                        StartMode::Vin => StartBy::Vin,
                        StartMode::Remote => StartBy::Remote,
                    };
                    out.push(Action::Input(Input::PlugIn {
                        connector,
                        vehicle,
                        start,
                    }));
                }
                Bay::Occupied {
                    user_stop_at: Some(u),
                    leave_at,
                } if u <= now => {
                    out.push(Action::Input(Input::UserStop { connector }));
                    self.bays[i] = Bay::Occupied {
                        user_stop_at: None,
                        leave_at: leave_at.min(now.plus_ms(DWELL_MS)),
                    };
                }
                Bay::Occupied { leave_at, .. } if leave_at <= now => {
                    out.push(Action::Input(Input::Unplug { connector }));
                    self.bays[i] = Bay::Empty {
                        next_arrival: self.arrival_after(now),
                    };
                }
                _ => {}
            }
        }
        if self.next_fault.is_some_and(|f| f <= now) {
            out.push(Action::Fault(self.random_fault()));
            self.next_fault = self.fault_after(now);
        }
        out
    }

    /// A session ended: the vehicle leaves after a short dwell.
    pub fn on_event(&mut self, e: &SimEvent, now: SimTime) {
        if let SimEvent::SessionEnded { connector, .. } = e {
            if let Some(Bay::Occupied { leave_at, .. }) =
                self.bays.get_mut(connector.get() as usize - 1)
            {
                *leave_at = (*leave_at).min(now.plus_ms(DWELL_MS));
            }
        }
    }

    fn random_fault(&mut self) -> Fault {
        let f = &self.faults;
        let weights = [
            f.drop_per_hour,
            f.garbage_per_hour,
            f.duplicate_per_hour,
            f.reorder_per_hour,
            f.reboot_per_hour,
            f.power_loss_per_hour,
        ];
        let mut pick = self.rng.unit() * f.total();
        let mut which = 0;
        for (i, w) in weights.iter().enumerate() {
            if pick < *w {
                which = i;
                break;
            }
            pick -= w;
        }
        match which {
            0 => Fault::DropConnection,
            1 => Fault::Garbage {
                bytes: self.rng.between(1, 64) as u16,
            },
            2 => Fault::DuplicateNext { frames: 1 },
            3 => Fault::ReorderNext { frames: 1 },
            4 => Fault::Pile(ChargerFault::Reboot),
            _ => Fault::PowerLoss {
                off_s: self.faults.power_off_s.max(1),
            },
        }
    }

    fn vehicle(&mut self) -> VehicleSpec {
        let a = &self.arrivals;
        let (b, s, t, v2g) = (
            a.battery_kwh,
            a.start_soc_pct,
            a.target_soc_pct,
            a.v2g_fraction,
        );
        let battery = self.rng.between(b[0] as u64, b[1] as u64).max(1);
        let start = self.rng.between(s[0] as u64, s[1] as u64).min(100) as u8;
        let target = (self.rng.between(t[0] as u64, t[1] as u64).min(100) as u8).max(start);
        let mut spec = VehicleSpec::standard();
        spec.battery = Energy::from_wh(battery as i64 * 1_000);
        spec.start_soc_pct = start;
        spec.target_soc_pct = target;
        spec.v2g = self.rng.unit() < v2g;
        spec.max_dc_power = Power::from_kw(self.rng.between(50, 200) as i64);
        spec.vin = format!("LVSIM{:012}", self.rng.between(0, 999_999_999_999));
        spec
    }

    fn card(&mut self) -> PhysicalCardNo {
        let mut b = [0u8; 8];
        b[4..].copy_from_slice(&(self.rng.next_u32_pub()).to_be_bytes());
        PhysicalCardNo(b)
    }
}

trait NextU32 {
    fn next_u32_pub(&mut self) -> u32;
}

impl NextU32 for SplitMix64 {
    fn next_u32_pub(&mut self) -> u32 {
        rand::RngCore::next_u32(self)
    }
}
