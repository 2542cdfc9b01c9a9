//! The API tests use: spawn N chargers in-process, plug vehicles in, read state, inject
//! faults, wait for events.
//!
//! ```no_run
//! # async fn demo(addr: std::net::SocketAddr) -> Result<(), voltline_sim::SimError> {
//! use voltline_sim::fleet::{FleetConfig, SimFleet};
//! use voltline_sim::{ChargerSpec, VehicleSpec};
//! let pile = "32010600019236".parse().unwrap();
//! let config = FleetConfig::tcp(addr.to_string(), vec![ChargerSpec::ac(pile)]).speed(3_600.0)?;
//! let fleet = SimFleet::spawn(config).await?;
//! fleet.charger(&pile)?.plug_in(1, VehicleSpec::standard()).await?;
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use tokio::sync::{broadcast, mpsc, oneshot};
use tokio::task::JoinHandle;
use voltline_protocol::domain::PileCode;
use voltline_protocol::message::common::PhysicalCardNo;

use crate::charger::{ChargerSpec, Input, StartBy};
use crate::clock::{SimClock, Speed};
use crate::error::SimError;
use crate::events::{ChargerSnapshot, SimEvent};
use crate::faults::Fault;
use crate::flash::Flash;
use crate::rng::SplitMix64;
use crate::task::{ChargerTask, Control, Counters};
use crate::transport::backoff::BackoffConfig;
use crate::transport::Transport;
use crate::vehicle::VehicleSpec;
use crate::workload::{Arrivals, FaultRates, Workload};

/// Real milliseconds of network latency the link timeouts tolerate at any speed.
const LINK_SLACK_REAL_MS: u64 = 2_000;

/// How long `shutdown` waits for one charger.
pub const SHUTDOWN_WAIT: Duration = Duration::from_secs(5);

/// Control messages queued per charger.
const CONTROL_QUEUE: usize = 32;

/// One charger of a fleet.
#[derive(Debug, Clone)]
pub struct ChargerConfig {
    pub spec: ChargerSpec,
    pub transport: Transport,
}

/// A fleet to spawn.
#[derive(Debug, Clone)]
pub struct FleetConfig {
    pub chargers: Vec<ChargerConfig>,
    pub speed: Speed,
    /// True UTC at simulated time zero (default: now).
    pub epoch: Option<Timestamp>,
    /// The site's IANA time zone (pile clocks show local time).
    pub time_zone: String,
    /// Where piles keep their flash on disk (`None`: memory only).
    pub state_dir: Option<PathBuf>,
    /// First connections are spread uniformly over this real duration (zero: all at once,
    /// a connection storm).
    pub ramp: Duration,
    pub backoff: BackoffConfig,
    pub seed: u64,
    /// Random arrivals and faults (`None`: the test drives everything).
    pub workload: Option<(Arrivals, FaultRates)>,
    /// Events buffered for slow receivers before they see `Lagged`.
    pub event_capacity: usize,
}

impl FleetConfig {
    /// Chargers over TCP to `addr`, real time, no ramp, fast backoff (for tests).
    pub fn tcp(addr: impl Into<String>, specs: Vec<ChargerSpec>) -> FleetConfig {
        let addr = addr.into();
        FleetConfig::with_transport(specs, Transport::Tcp { addr })
    }

    /// Chargers over MQTT.
    pub fn mqtt(
        broker: impl Into<String>,
        password: impl Into<String>,
        specs: Vec<ChargerSpec>,
    ) -> FleetConfig {
        FleetConfig::with_transport(
            specs,
            Transport::Mqtt {
                broker: broker.into(),
                password: password.into(),
            },
        )
    }

    fn with_transport(specs: Vec<ChargerSpec>, transport: Transport) -> FleetConfig {
        FleetConfig {
            chargers: specs
                .into_iter()
                .map(|spec| ChargerConfig {
                    spec,
                    transport: transport.clone(),
                })
                .collect(),
            speed: Speed::REAL_TIME,
            epoch: None,
            time_zone: "Asia/Shanghai".into(),
            state_dir: None,
            ramp: Duration::ZERO,
            backoff: BackoffConfig {
                base_ms: 50,
                cap_ms: 1_000,
            },
            seed: 1,
            workload: None,
            event_capacity: 4_096,
        }
    }

    /// The same config at another speed.
    pub fn speed(mut self, factor: f64) -> Result<FleetConfig, SimError> {
        self.speed = Speed::new(factor).map_err(|e| SimError::Config(e.to_string()))?;
        Ok(self)
    }

    /// The same config with a state dir.
    pub fn state_dir(mut self, dir: impl Into<PathBuf>) -> FleetConfig {
        self.state_dir = Some(dir.into());
        self
    }
}

/// What a fleet can do beyond its [`FleetConfig`] (for the command line and tests).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FleetOptions {
    /// The workload's card starts present card `first_card + k` at the `k`-th charger (in
    /// spawn order) for every session, so a platform can register them beforehand; `None`:
    /// a random card each time.
    pub first_card: Option<PhysicalCardNo>,
    /// Keep each pile's record journal in the state dir (see [`crate::state_dir`]); ignored
    /// without a state dir.
    pub record_journal: bool,
}

impl FleetOptions {
    /// The card of the `index`-th charger, if cards are assigned.
    pub fn card_of(&self, index: usize) -> Result<Option<PhysicalCardNo>, SimError> {
        let Some(first) = self.first_card else {
            return Ok(None);
        };
        u64::from_be_bytes(first.0)
            .checked_add(index as u64)
            .map(|n| Some(PhysicalCardNo(n.to_be_bytes())))
            .ok_or_else(|| {
                SimError::Config(format!(
                    "first card {first} leaves no card number for charger {index}; choose a smaller one"
                ))
            })
    }
}

/// A handle on one running charger.
#[derive(Debug, Clone)]
pub struct ChargerHandle {
    pile: PileCode,
    control: mpsc::Sender<Control>,
}

impl ChargerHandle {
    pub fn pile(&self) -> PileCode {
        self.pile
    }

    async fn send(&self, c: Control) -> Result<(), SimError> {
        self.control
            .send(c)
            .await
            .map_err(|_| SimError::Stopped(self.pile.to_string()))
    }

    /// Plugs a vehicle into `connector` (1-based); the pile waits for the platform's start.
    pub async fn plug_in(&self, connector: u8, vehicle: VehicleSpec) -> Result<(), SimError> {
        self.plug_in_with(connector, vehicle, StartBy::Remote).await
    }

    /// Plugs a vehicle in and starts as given (card or VIN: the pile sends 0x31).
    pub async fn plug_in_with(
        &self,
        connector: u8,
        vehicle: VehicleSpec,
        start: StartBy,
    ) -> Result<(), SimError> {
        vehicle.validate().map_err(SimError::Config)?;
        self.send(Control::Input(Box::new(Input::PlugIn {
            connector,
            vehicle,
            start,
        })))
        .await
    }

    /// The vehicle leaves (a running session is stopped first, reason 0x6B).
    pub async fn unplug(&self, connector: u8) -> Result<(), SimError> {
        self.send(Control::Input(Box::new(Input::Unplug { connector })))
            .await
    }

    /// The user stops charging at the pile (reason 0x45).
    pub async fn user_stop(&self, connector: u8) -> Result<(), SimError> {
        self.send(Control::Input(Box::new(Input::UserStop { connector })))
            .await
    }

    /// Injects a fault.
    pub async fn inject(&self, fault: impl Into<Fault>) -> Result<(), SimError> {
        self.send(Control::Fault(fault.into())).await
    }

    /// The charger's state now. Fails while the pile is powered off.
    pub async fn state(&self) -> Result<ChargerSnapshot, SimError> {
        let (tx, rx) = oneshot::channel();
        self.send(Control::Snapshot(tx)).await?;
        rx.await
            .map_err(|_| SimError::Stopped(self.pile.to_string()))
    }
}

/// A running fleet.
pub struct SimFleet {
    handles: HashMap<PileCode, ChargerHandle>,
    order: Vec<PileCode>,
    events: broadcast::Sender<SimEvent>,
    counters: Arc<Counters>,
    tasks: Vec<JoinHandle<()>>,
    clock: SimClock,
}

impl SimFleet {
    /// Starts every charger (loading its flash from the state dir, if any).
    pub async fn spawn(config: FleetConfig) -> Result<SimFleet, SimError> {
        SimFleet::spawn_with(config, FleetOptions::default()).await
    }

    /// [`SimFleet::spawn`] with `options`.
    pub async fn spawn_with(
        config: FleetConfig,
        options: FleetOptions,
    ) -> Result<SimFleet, SimError> {
        let zone = TimeZone::get(&config.time_zone).map_err(|e| {
            SimError::Config(format!(
                "time zone '{}': {e}; use an IANA name such as Asia/Shanghai",
                config.time_zone
            ))
        })?;
        let mut seen = std::collections::HashSet::new();
        for c in &config.chargers {
            c.spec.validate().map_err(SimError::Config)?;
            if !seen.insert(c.spec.pile) {
                return Err(SimError::Config(format!(
                    "pile code {} appears twice",
                    c.spec.pile
                )));
            }
        }
        if let Some(dir) = &config.state_dir {
            std::fs::create_dir_all(dir).map_err(|source| SimError::StateDir {
                path: dir.clone(),
                source,
            })?;
        }
        let clock = SimClock::start(config.speed, config.epoch.unwrap_or_else(Timestamp::now));
        let (events, _) = broadcast::channel(config.event_capacity.max(16));
        let counters = Arc::new(Counters::default());
        let n = config.chargers.len().max(1) as f64;
        let mut fleet = SimFleet {
            handles: HashMap::with_capacity(config.chargers.len()),
            order: Vec::with_capacity(config.chargers.len()),
            events: events.clone(),
            counters: counters.clone(),
            tasks: Vec::with_capacity(config.chargers.len()),
            clock,
        };
        // Read every pile's flash before starting any, so a bad file starts nothing.
        // With a journal, records a crash left unjournaled are journaled now, before any runs.
        let mut stored_states = Vec::with_capacity(config.chargers.len());
        for (index, c) in config.chargers.iter().enumerate() {
            let stored = match &config.state_dir {
                Some(dir) => crate::state_dir::load(dir, &c.spec.pile)?,
                None => None,
            };
            let journal = match &config.state_dir {
                Some(dir) if options.record_journal => {
                    Some(crate::flash::journal_loaded(dir, stored.as_ref())?)
                }
                _ => None,
            };
            stored_states.push((stored, journal, options.card_of(index)?));
        }
        for ((index, c), (stored, journal, card)) in
            config.chargers.into_iter().enumerate().zip(stored_states)
        {
            let pile = c.spec.pile;
            let mut rng = SplitMix64::stream(config.seed, index as u64);
            // Spread first connections over the ramp, evenly with jitter.
            let slot = config.ramp.as_secs_f64() / n;
            let first = slot * (index as f64 + rng.unit());
            let workload = config.workload.as_ref().map(|(arrivals, faults)| {
                Workload::new(
                    arrivals.clone(),
                    faults.clone(),
                    c.spec.connectors,
                    SplitMix64::stream(config.seed ^ 0x5EED, index as u64),
                    clock.now(),
                )
            });
            let (tx, rx) = mpsc::channel(CONTROL_QUEUE);
            let mut spec = c.spec;
            spec.link_slack_ms = (LINK_SLACK_REAL_MS as f64 * config.speed.factor()) as u64;
            let task = ChargerTask {
                spec,
                transport: c.transport,
                clock,
                zone: zone.clone(),
                control: rx,
                events: events.clone(),
                counters: counters.clone(),
                flash: Flash {
                    mem: Arc::new(Mutex::new(stored)),
                    dir: config.state_dir.clone(),
                    journal,
                },
                card,
                rng,
                backoff: config.backoff,
                first_connect_after: Duration::from_secs_f64(first),
                workload,
            };
            fleet.tasks.push(tokio::spawn(task.run()));
            fleet
                .handles
                .insert(pile, ChargerHandle { pile, control: tx });
            fleet.order.push(pile);
        }
        Ok(fleet)
    }

    /// The charger with this pile code.
    pub fn charger(&self, pile: &PileCode) -> Result<ChargerHandle, SimError> {
        self.handles
            .get(pile)
            .cloned()
            .ok_or_else(|| SimError::UnknownPile(pile.to_string()))
    }

    /// Every pile code, in spawn order.
    pub fn piles(&self) -> &[PileCode] {
        &self.order
    }

    /// A new receiver of every charger's events.
    pub fn events(&self) -> broadcast::Receiver<SimEvent> {
        self.events.subscribe()
    }

    /// Fleet-wide counters.
    pub fn counters(&self) -> &Counters {
        &self.counters
    }

    /// The simulated clock.
    pub fn clock(&self) -> SimClock {
        self.clock
    }

    /// Waits for the first event matching `pred` (from now on) for at most `timeout`.
    pub async fn wait_for(
        &self,
        timeout: Duration,
        pred: impl FnMut(&SimEvent) -> bool,
    ) -> Result<SimEvent, SimError> {
        wait_for(&mut self.events(), timeout, pred).await
    }

    /// Stops every charger and waits for their tasks (a task that does not stop within
    /// [`SHUTDOWN_WAIT`] is aborted). Records not confirmed stay in flash / the state dir.
    pub async fn shutdown(self) {
        for h in self.handles.values() {
            let _ = tokio::time::timeout(SHUTDOWN_WAIT, h.control.send(Control::Shutdown)).await;
        }
        drop(self.handles);
        for mut t in self.tasks {
            if tokio::time::timeout(SHUTDOWN_WAIT, &mut t).await.is_err() {
                t.abort();
            }
        }
    }
}

/// Waits on `rx` for the first event matching `pred`, for at most `timeout`.
pub async fn wait_for(
    rx: &mut broadcast::Receiver<SimEvent>,
    timeout: Duration,
    mut pred: impl FnMut(&SimEvent) -> bool,
) -> Result<SimEvent, SimError> {
    let search = async {
        loop {
            match rx.recv().await {
                Ok(e) if pred(&e) => return Ok(e),
                Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
                Err(broadcast::error::RecvError::Closed) => {
                    return Err(SimError::Stopped("fleet".into()))
                }
            }
        }
    };
    tokio::time::timeout(timeout, search)
        .await
        .map_err(|_| SimError::Timeout(timeout, "an event matching the predicate".into()))?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chargers_get_consecutive_cards_from_the_first() {
        let none = FleetOptions::default();
        assert_eq!(none.card_of(3).unwrap(), None);
        let first = PhysicalCardNo([0, 0, 0, 0, 0xCA, 0x4D, 0, 0xFF]);
        let opts = FleetOptions {
            first_card: Some(first),
            record_journal: false,
        };
        assert_eq!(opts.card_of(0).unwrap(), Some(first));
        assert_eq!(
            opts.card_of(2).unwrap(),
            Some(PhysicalCardNo([0, 0, 0, 0, 0xCA, 0x4D, 1, 0x01]))
        );
        let last = FleetOptions {
            first_card: Some(PhysicalCardNo([0xFF; 8])),
            record_journal: false,
        };
        assert!(matches!(last.card_of(1), Err(SimError::Config(_))));
    }
}
