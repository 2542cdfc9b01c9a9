//! `voltline-tests`: end-to-end, crash and fault tests that run the real components together,
//! and the harness they share.
//!
//! - [`cloud`]: [`TestCloud`] — the real cloud in-process (SQLite in a temp dir, or a
//!   PostgreSQL schema of its own), HTTP on 127.0.0.1:0, the embedded broker on a free port,
//!   stop/restart on the same data, and the edge-facing links in front of both.
//! - [`seed`]: operators, sites, chargers with MQTT passwords, drivers topped up, cards, a
//!   tariff assigned, tokens ([`SiteSpec`] → [`SeededSite`]).
//! - [`queries`]: the site configuration, gzip record batches, transactions and settlements,
//!   ingest counts, balances, the ledger audit, and [`eventually`].
//! - [`link`]: [`LinkCutter`], a loopback TCP proxy that cuts, stalls and restores a link.
//! - [`process`]: [`free_port`] and [`spawn_binary`] (workspace binaries as children killed
//!   on drop).
//! - [`fixtures`]: tariffs, serials and charger transaction records.
//! - [`provider_sim`]: [`provider_sim::ProviderSim`], simulated WeChat Pay Score and Alipay
//!   APIs on loopback that check signatures, with fault knobs (slow, fail, hang, lost answer,
//!   decline, duplicate callbacks).
//!
//! It must never bind beyond 127.0.0.1, never wait without a bound, never leave a child
//! process or a database schema behind, and never reach into the cloud's SQL: what a test
//! needs to read goes through the cloud's HTTP API or its public library methods.

pub mod billing_check;
pub mod cloud;
pub mod cloud_process;
pub mod edge_process;
pub mod fixtures;
pub mod link;
mod pg;
pub mod process;
pub mod provider_sim;
pub mod queries;
pub mod remote;
pub mod seed;
pub mod sim_process;

pub use cloud::{CloudOptions, TestCloud};
pub use link::{LinkCutter, LinkMode, LinkStats};
pub use process::{free_port, spawn_binary, ChildGuard};
pub use queries::eventually;
pub use seed::{DriverSpec, SeededCharger, SeededDriver, SeededSite, SiteSpec};

/// Why a harness step failed. Messages say what went wrong and what to look at.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("the cloud did not start: {0}")]
    Start(#[from] voltline_cloud::server::StartError),
    #[error("the cloud's store: {0}")]
    Store(#[from] voltline_cloud::StoreError),
    #[error("link proxy: {0}")]
    Link(#[from] link::LinkError),
    #[error("PostgreSQL: {0}")]
    Postgres(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("HTTP: {0}")]
    Http(#[from] reqwest::Error),
    #[error("JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{call} answered {status}: {body}")]
    Api {
        call: String,
        status: u16,
        body: String,
    },
    #[error("the cloud broke the contract: {0}")]
    Contract(String),
    #[error("funds: {0}")]
    Funds(String),
    #[error("the ledger audit failed: {0}")]
    Ledger(String),
    #[error("timed out: {0}")]
    Timeout(String),
}

/// Parses an id the harness built itself (a bad one is a bug in the test, so it panics).
pub(crate) fn parse_id<T: std::str::FromStr>(text: &str, what: &str) -> T
where
    T::Err: std::fmt::Display,
{
    text.parse()
        .unwrap_or_else(|e| panic!("'{text}' is not a valid {what}: {e}"))
}
