//! `voltline-edge`: the site daemon that runs on each charging site's industrial PC.
//!
//! It owns the chargers' connections (embedded MQTT broker and TCP listener), one state
//! machine per connector, the durable outbox/inbox in `sled`, the uplink to the cloud and
//! offline operation. It must never depend on `voltline-cloud`: the two meet only through
//! `voltline-protocol`.
//!
//! Built so far, in two layers that DESIGN.md keeps apart:
//! - [`connector`]: the pure core. One [`connector::ConnectorMachine`] per connector turns
//!   decoded pile frames, cloud commands and local events into effects (frames to send,
//!   records to append, "store durably, then acknowledge"). No I/O, no clock reads: time
//!   comes in as an argument, so every transition is unit-tested.
//! - [`store`]: the durable adapter. The outbox with the site's sequence numbers, group
//!   commit, trim on the cloud's cumulative acknowledgement, replay, telemetry thinning and
//!   the disk bound; the command inbox; active sessions; the cached site config. Its
//!   guarantees are listed in its module doc, each with the test that proves it.
//! - [`dispatch`]: the pure V2G grid-dispatch planner and dispatcher (shares an event's power
//!   by each vehicle's energy above its floor; ends discharge at the event's end, the floor,
//!   departure, or a cloud dead-man).
//!
//! Still to come (see the edge issue): the charger ports, the uplink, offline operation and
//! the daemon's operations; they drive the two layers above and decide nothing the machines
//! decide.
//!
//! What this crate must never do: depend on `voltline-cloud`; spell a topic string outside
//! `voltline_protocol::topics`; acknowledge a transaction record to a pile before it is on
//! disk; drop a billing-critical record; let a queue, batch or cache grow without a bound.

pub mod connector;
pub mod daemon;
pub mod dispatch;
pub mod ops;
pub mod ports;
pub mod site;
pub mod store;
pub mod uplink;
