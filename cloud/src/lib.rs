//! `voltline-cloud`: the cloud core that owns operators, sites, chargers, accounts, orders,
//! money and settlement.
//!
//! It must never depend on `voltline-edge`: the two meet only through `voltline-protocol`.
//!
//! What is here so far:
//! - [`domain`]: the pure core — the order and command state machines, roles and the
//!   authorisation rule [`domain::can`], and the cumulative-ack arithmetic of ingest. No I/O.
//! - [`store`]: the SQL store over SQLite (embedded default, one file in the data directory)
//!   or PostgreSQL (chosen by URL), with migrations run at start-up: the registry (operators,
//!   sites, chargers, accounts, versioned tariffs), hashed bearer tokens, orders with
//!   optimistic versions, commands that survive restarts, and exactly-once ingest of edge
//!   record batches with a cumulative ack.
//! - [`ledger`]: the money ledger's pure core (built under the money issue; see its doc).
//! - [`funds`]: the seam between orders and money (hold at start, void on failure).
//! - [`sharing`]: multi-operator revenue-sharing rules, exact splits and daily bills (pure).
//!
//! Still to come under their own issues, on top of this schema: the HTTP API (`axum`), the
//! MQTT side, the SQL-backed ledger (orders already carry a `hold_id`; transaction records
//! are stored once per (pile, serial) with a `settled` flag for settlement to flip), billing
//! and payments.
//!
//! It must never block a request on hardware (commands are stored, then published), never
//! hold money in a float, and never acknowledge an edge record before it is committed.

pub mod domain;
pub mod funds;
pub mod ledger;
pub mod sharing;
pub mod store;

pub use store::{Store, StoreError};
