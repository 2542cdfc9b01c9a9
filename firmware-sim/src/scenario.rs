//! Scenarios: a TOML file (and the CLI flags that override it) describing a fleet — how many
//! chargers of which kinds, where they connect, how fast time runs, how vehicles arrive and
//! which faults strike.
//!
//! ```toml
//! chargers = 200
//! transport = "tcp"            # or "mqtt"; a [[mix]] entry may override it
//! edge = "127.0.0.1:7070"      # the edge's charger port (tcp)
//! mqtt_broker = "127.0.0.1:1883"
//! first_pile_code = "32010600000001"
//! speed = 1.0                  # simulated seconds per real second
//! report_interval_s = 15
//! ramp_s = 60                  # first connections spread over this (real) time
//! storm = false                # true: everybody connects at once
//!
//! [[mix]]
//! kind = "ac"                  # "ac" or "dc"
//! power_kw = 7
//! connectors = 1
//! v2g = false
//! weight = 3
//!
//! [arrivals]
//! per_connector_per_hour = 0.5
//! start = "card"               # "card", "vin" or "remote"
//! session_minutes = [20, 120]
//! user_stop_fraction = 0.3
//!
//! [faults]
//! drop_per_hour = 0.1
//! clock_1970_fraction = 0.01
//! meter_reset_on_reboot = true
//! ```

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{PileCode, Power};

use crate::charger::{ChargerKind, ChargerSpec};
use crate::clock::Speed;
use crate::error::SimError;
use crate::fleet::{ChargerConfig, FleetConfig};
use crate::transport::backoff::BackoffConfig;
use crate::transport::Transport;
use crate::workload::{Arrivals, FaultRates};

/// Which transport.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "snake_case")]
pub enum TransportKind {
    Tcp,
    Mqtt,
}

/// One kind of charger in the mix.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MixEntry {
    pub kind: ChargerKind,
    pub power_kw: u32,
    #[serde(default = "one")]
    pub connectors: u8,
    #[serde(default)]
    pub v2g: bool,
    #[serde(default = "one_u32")]
    pub weight: u32,
    /// Overrides the fleet's transport for this kind.
    #[serde(default)]
    pub transport: Option<TransportKind>,
}

fn one() -> u8 {
    1
}

fn one_u32() -> u32 {
    1
}

/// A whole scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Scenario {
    pub chargers: usize,
    pub transport: TransportKind,
    pub edge: String,
    pub mqtt_broker: String,
    pub mqtt_password: String,
    pub first_pile_code: String,
    pub speed: f64,
    pub report_interval_s: u32,
    pub ramp_s: f64,
    pub storm: bool,
    pub time_zone: String,
    pub state_dir: Option<PathBuf>,
    pub seed: u64,
    /// Real seconds to run; 0 runs until interrupted.
    pub duration_s: u64,
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    pub mix: Vec<MixEntry>,
    pub arrivals: Arrivals,
    pub faults: FaultRates,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            chargers: 10,
            transport: TransportKind::Tcp,
            edge: "127.0.0.1:7070".into(),
            mqtt_broker: "127.0.0.1:1883".into(),
            mqtt_password: String::new(),
            first_pile_code: "32010600000001".into(),
            speed: 1.0,
            report_interval_s: 15,
            ramp_s: 60.0,
            storm: false,
            time_zone: "Asia/Shanghai".into(),
            state_dir: None,
            seed: 1,
            duration_s: 0,
            backoff_base_ms: 1_000,
            backoff_cap_ms: 60_000,
            mix: vec![
                MixEntry {
                    kind: ChargerKind::Ac,
                    power_kw: 7,
                    connectors: 1,
                    v2g: false,
                    weight: 3,
                    transport: None,
                },
                MixEntry {
                    kind: ChargerKind::Dc,
                    power_kw: 120,
                    connectors: 2,
                    v2g: true,
                    weight: 1,
                    transport: None,
                },
            ],
            arrivals: Arrivals::default(),
            faults: FaultRates::default(),
        }
    }
}

/// Most chargers one process runs.
pub const MAX_CHARGERS: usize = 100_000;

impl Scenario {
    /// Reads a scenario file.
    pub fn load(path: &Path) -> Result<Scenario, SimError> {
        let text = std::fs::read_to_string(path).map_err(|e| SimError::Scenario {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })?;
        toml::from_str(&text).map_err(|e| SimError::Scenario {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }

    /// The scenario as TOML.
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_else(|e| format!("# cannot render scenario: {e}"))
    }

    /// Checks the values and builds the fleet.
    pub fn fleet_config(&self) -> Result<FleetConfig, SimError> {
        let bad = |m: String| Err(SimError::Config(m));
        if self.chargers == 0 || self.chargers > MAX_CHARGERS {
            return bad(format!(
                "chargers must be 1..={MAX_CHARGERS}, not {}",
                self.chargers
            ));
        }
        if self.mix.is_empty() || self.mix.iter().all(|m| m.weight == 0) {
            return bad("the mix needs at least one entry with a weight above 0".into());
        }
        if !(self.ramp_s.is_finite() && self.ramp_s >= 0.0) {
            return bad(format!("ramp_s {} must be 0 or more", self.ramp_s));
        }
        for f in [
            self.arrivals.user_stop_fraction,
            self.arrivals.v2g_fraction,
            self.faults.clock_1970_fraction,
            self.faults.clock_skew_fraction,
        ] {
            if !(0.0..=1.0).contains(&f) {
                return bad(format!("fractions must be within 0..=1, not {f}"));
            }
        }
        let speed = Speed::new(self.speed).map_err(|e| SimError::Config(e.to_string()))?;
        let first: u64 = self.first_pile_code.parse().map_err(|_| {
            SimError::Config(format!(
                "first_pile_code '{}' must be up to 14 digits",
                self.first_pile_code
            ))
        })?;
        let mut wheel = Vec::new();
        for m in &self.mix {
            for _ in 0..m.weight.min(1_000) {
                wheel.push(m);
            }
        }
        let mut chargers = Vec::with_capacity(self.chargers);
        for i in 0..self.chargers {
            let m = wheel[i % wheel.len()];
            let pile = PileCode::from_number(first + i as u64).ok_or_else(|| {
                SimError::Config(format!(
                    "pile code {} has more than 14 digits",
                    first + i as u64
                ))
            })?;
            let mut spec = match m.kind {
                ChargerKind::Ac => ChargerSpec::ac(pile),
                ChargerKind::Dc => ChargerSpec::dc(pile, 60),
            };
            spec.rated_power = Power::from_kw(m.power_kw as i64);
            spec.connectors = m.connectors;
            spec.v2g = m.v2g;
            spec.report_interval_s = self.report_interval_s;
            spec.meter_reset_on_reboot = self.faults.meter_reset_on_reboot;
            let transport = match m.transport.unwrap_or(self.transport) {
                TransportKind::Tcp => Transport::Tcp {
                    addr: self.edge.clone(),
                },
                TransportKind::Mqtt => Transport::Mqtt {
                    broker: self.mqtt_broker.clone(),
                    password: self.mqtt_password.clone(),
                },
            };
            chargers.push(ChargerConfig { spec, transport });
        }
        let workload = (self.arrivals.per_connector_per_hour > 0.0
            || self.arrivals.plug_in_at_start
            || self.faults != FaultRates::default())
        .then(|| (self.arrivals.clone(), self.faults.clone()));
        Ok(FleetConfig {
            chargers,
            speed,
            epoch: None,
            time_zone: self.time_zone.clone(),
            state_dir: self.state_dir.clone(),
            ramp: if self.storm {
                Duration::ZERO
            } else {
                Duration::from_secs_f64(self.ramp_s)
            },
            backoff: BackoffConfig {
                base_ms: self.backoff_base_ms.max(1),
                cap_ms: self.backoff_cap_ms.max(self.backoff_base_ms.max(1)),
            },
            seed: self.seed,
            workload,
            event_capacity: 4_096,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_scenario_round_trips_through_toml_and_builds() {
        let s = Scenario::default();
        let back: Scenario = toml::from_str(&s.to_toml()).unwrap();
        assert_eq!(back, s);
        let f = s.fleet_config().unwrap();
        assert_eq!(f.chargers.len(), 10);
        assert_eq!(f.chargers[3].spec.kind, ChargerKind::Dc);
        assert_eq!(f.chargers[1].spec.pile.to_string(), "32010600000002");
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(toml::from_str::<Scenario>("chargerz = 3").is_err());
        let s = Scenario {
            chargers: 0,
            ..Scenario::default()
        };
        assert!(s.fleet_config().is_err());
    }
}
