//! `voltline-sim`: simulated chargers that speak the YKC v1.6 protocol (with Voltline's V2G
//! extension) for tests, demos and load. It depends only on `voltline-protocol`.
