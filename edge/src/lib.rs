//! `voltline-edge`: the site daemon that runs on each charging site's industrial PC.
//!
//! It owns the chargers' connections (embedded MQTT broker and TCP listener), one state
//! machine per connector, the durable outbox/inbox in `sled`, the uplink to the cloud and
//! offline operation. It must never depend on `voltline-cloud`: the two meet only through
//! `voltline-protocol`.
//!
//! Status: the daemon itself is built under its own issue; this crate holds its place in
//! the workspace so the dependency direction of DESIGN.md is fixed from the start.
