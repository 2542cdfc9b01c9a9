//! V2G at the site: sharing a grid event's export power among the plugged-in, opted-in
//! vehicles ([`plan`]), the pure state machine that turns events, vehicles coming and going,
//! meter updates, cloud contact and time into setpoints and stops ([`dispatcher`]), the
//! site's opted-in vehicles around it ([`fleet`], with [`battery`] estimates), and the
//! bidirectional metering of a session ([`metering`]).
//!
//! Pure: no I/O, no clock reads. The site runtime (`site::grid`) feeds it, persists what it
//! must survive a restart, and sends the 0xC4/0xC6 frames it asks for.

pub mod battery;
pub mod dispatcher;
pub mod fleet;
pub mod metering;
pub mod plan;

pub use dispatcher::{
    DispatchAction, DispatchConfig, Dispatcher, GridEvent, PlanFigures, StopCause, VehicleReport,
    MAX_STOP_ATTEMPTS,
};
pub use fleet::{OptIn, OptInError, SiteDispatch, MAX_OPT_INS};
pub use plan::{plan, power_for_horizon, ConnectorKey, Participant, Plan, PlanError, Setpoint};
