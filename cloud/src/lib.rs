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
//!   sites, chargers, accounts, their cards, versioned tariffs), hashed bearer tokens, orders with
//!   optimistic versions, commands that survive restarts, and exactly-once ingest of edge
//!   record batches with a cumulative ack.
//! - [`ledger`]: the money ledger's pure core (built under the money issue; see its doc).
//! - [`funds`]: the seam between orders and money (hold at start, void on failure).
//! - [`sharing`]: multi-operator revenue-sharing rules, exact splits and daily bills (pure);
//!   [`bills`]: their SQL side — rules, the lease-guarded daily bill job, reconciliation, the
//!   bill API and CSV; [`webhooks`]: signed, retried bill and payout events from an outbox.
//! - [`money`]: the SQL-backed ledger (group-committed writer), [`money::SqlFunds`], exactly-once
//!   settlement and the in-memory tariff cache (see its doc).
//!
//! - [`payment`]: credit payments through providers (WeChat Pay Score, Alipay fund
//!   authorisation) and the wallet behind one `PaymentProvider` trait; captures, unknown
//!   outcomes resolved by querying, receivables with dunning (see its doc).
//!
//! The service layer: [`config`] (TOML + `VOLTLINE_CLOUD__` overrides), [`api`] (axum HTTP
//! API with problem details, bearer auth on every route, WebSocket events, OpenAPI), [`mqtt`]
//! (embedded `rumqttd` or an external broker), [`dispatch`] (commands to edges, expiry),
//! [`sync`] (record batches from either path), [`server`] (start/stop an instance, with the
//! settlement loop over the SQL ledger),
//! [`metrics`], and [`run_cli`] behind the `voltline-cloud` binary.
//!
//! It must never block a request on hardware (commands are stored, then published), never
//! hold money in a float, and never acknowledge an edge record before it is committed.

pub mod api;
pub mod bills;
mod cli;
pub mod config;
pub mod dispatch;
pub mod domain;
pub mod funds;
pub mod ledger;
pub mod metrics;
pub mod money;
pub mod mqtt;
pub mod payment;
pub mod server;
pub mod sharing;
pub mod shutdown;
pub mod state;
pub mod store;
pub mod sync;
pub mod webhooks;

pub use cli::run_cli;
pub use state::AppState;
pub use store::{Store, StoreError};
