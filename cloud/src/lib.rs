//! `voltline-cloud`: the cloud core that owns operators, sites, chargers, accounts, orders,
//! money and settlement.
//!
//! It must never depend on `voltline-edge`: the two meet only through `voltline-protocol`.
//!
//! Status: the service is built under its own issues; this crate holds its place in the
//! workspace so the dependency direction of DESIGN.md is fixed from the start.
