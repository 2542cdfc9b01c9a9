//! The pure core of the cloud: state machines, the authorisation rule and the ack arithmetic.
//! Nothing here does I/O or reads a clock; the store and (later) the HTTP and MQTT adapters
//! drive it.

pub mod auth;
pub mod command;
pub mod discharge;
pub mod ingest;
pub mod metering;
pub mod order;

pub use auth::{can, Action, Actor, Resource, Role};
pub use command::{CommandKind, CommandState};
pub use order::{OrderEvent, OrderKind, OrderState, PaymentMethod};
