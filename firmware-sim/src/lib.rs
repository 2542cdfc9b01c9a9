//! `voltline-sim`: simulated chargers that speak the YKC v1.6 protocol (with Voltline's V2G
//! extension) for tests, demos and load. It depends only on `voltline-protocol`.
//!
//! It owns:
//! - the charger as a pure state machine ([`charger::Charger`]): login, heartbeats, real-time
//!   data, every platform command with the reference's failure codes, sessions priced with
//!   the billing model the pile holds, records resent until confirmed;
//! - the physics a test checks bills against: a vehicle model with a tapering charge curve
//!   ([`vehicle`]) and monotonic import/export meter registers integrated exactly ([`meter`]);
//! - the task that drives one charger ([`task`]): over TCP or MQTT ([`transport`]) with
//!   jittered reconnects, fault injection on the wire and in the pile ([`faults`]), the
//!   pile's flash in memory and on disk ([`flash`], [`state_dir`]);
//! - the fleet API tests use ([`fleet::SimFleet`]), scenarios ([`scenario`], [`workload`]),
//!   the CLI ([`cli::run_cli`]), and a small platform harness to test against ([`harness`]);
//! - the OS facts the load benchmark reads ([`sys`]).
//!
//! It must never decide anything for the platform (no pricing of its own beyond what a pile
//! computes from its billing model, no retries the protocol does not have), never spell a
//! frame or topic by hand (everything goes through `voltline-protocol`), never drop a billing
//! record that was not confirmed, and never panic on anything that comes from the network.

pub mod charger;
pub mod cli;
pub mod clock;
pub mod error;
pub mod events;
pub mod faults;
pub mod flash;
pub mod fleet;
pub mod harness;
pub mod meter;
pub mod pricing;
pub mod rng;
pub mod scenario;
pub mod state_dir;
pub mod sys;
pub mod task;
pub mod transport;
pub mod vehicle;
pub mod workload;

pub use charger::{Charger, ChargerFault, ChargerKind, ChargerSpec, StartBy};
pub use clock::{SimTime, Speed};
pub use error::SimError;
pub use events::{ChargerSnapshot, ConnectorSnapshot, SimEvent};
pub use faults::Fault;
pub use fleet::{ChargerHandle, FleetConfig, SimFleet};
pub use vehicle::VehicleSpec;
