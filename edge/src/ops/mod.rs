//! Operations: configuration ([`config`]), the command line ([`cli`]), metrics
//! ([`metrics`]) and the `/metrics` + `/healthz` endpoint ([`http`]).

pub mod cli;
pub mod config;
pub mod http;
pub mod metrics;
