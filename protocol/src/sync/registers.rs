//! A V2G session's bidirectional metering as the edge reports it with the discharge record:
//! import and export kept apart, and the register anomalies it found (counted by
//! [`crate::metering`]).

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::Energy;

/// Most register anomalies one session's metering lists (later ones are only counted).
pub const MAX_LISTED_ANOMALIES: usize = 16;

/// Import and export of one session, kept apart end to end (never netted): each is the sum
/// of its register's increases between readings. An interval in which a register read
/// lower than before (reset, rollover, meter swap) counts nothing for that register and is
/// listed in `anomalies`; the next reading is the new baseline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidirectionalMetering {
    /// Energy into the vehicle over the session.
    pub import_energy: Energy,
    /// Energy out of the vehicle over the session.
    pub export_energy: Energy,
    /// The first and the last import and export registers the edge read.
    pub first_registers: Option<RegisterPair>,
    pub last_registers: Option<RegisterPair>,
    /// The first [`MAX_LISTED_ANOMALIES`] anomalies.
    #[serde(default)]
    pub anomalies: Vec<RegisterAnomaly>,
    /// Every anomaly, listed or not.
    #[serde(default)]
    pub anomaly_count: u32,
}

/// An import and an export register read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterPair {
    pub import: Energy,
    pub export: Energy,
}

/// Which register of a bidirectional meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Register {
    Import,
    Export,
}

/// What kind of register anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// The register read lower than the last reading (a reset or a meter swap).
    Decreased,
    /// The register went from near its 5-byte maximum to near zero (a rollover).
    Rollover,
    /// The pile's discharge record contradicts itself: the end register below the start,
    /// or the exported energy not the difference of the two.
    RecordInconsistent,
}

/// A register reading that is not billed as energy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterAnomaly {
    pub register: Register,
    pub kind: AnomalyKind,
    /// When the edge saw it.
    pub at: Timestamp,
    /// The reading before, and the reading itself.
    pub before: Energy,
    pub reading: Energy,
}
