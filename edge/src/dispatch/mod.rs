//! Grid dispatch at the site (V2G): sharing a grid event's export power among the plugged-in,
//! opted-in vehicles ([`plan`]) and the pure state machine that turns events, vehicles coming
//! and going, meter updates and time into setpoints and stops ([`dispatcher`]).
//!
//! Pure: no I/O, no clock reads. The daemon feeds it and sends the 0xC4/0xC6 frames it asks for.

pub mod dispatcher;
pub mod plan;

pub use dispatcher::{DispatchAction, DispatchConfig, Dispatcher, GridEvent, StopCause};
pub use plan::{plan, power_for_horizon, ConnectorKey, Participant, Plan, PlanError, Setpoint};
