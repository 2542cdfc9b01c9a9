//! The two lines of a V2G session, measured and priced from what the cloud stored: the
//! pile's discharge record (0xC9), the edge's bidirectional metering sent with it, and the
//! session's stored meter readings (0xC7 via the edge, both registers).
//!
//! - **Export**: the record's export register at its start and end instants, with the stored
//!   export readings between them, measured by [`crate::domain::metering::measure`] (a drop is
//!   flagged, never energy) and priced with the discharge tariff.
//! - **Import** (a mixed session): the edge's first and last import registers at the session's
//!   start and end, with the stored import readings between, measured the same way and
//!   priced with the charge tariff — a separate number, never netted with the export.
//! - **Anomalies**: what the measuring found, plus a record that contradicts itself (end
//!   register below the start, or exported energy not their difference), plus whatever the
//!   edge listed. Any of them flags the session.
//!
//! Pure: no I/O, no clock. The adapter in [`super::reverse`] reads the rows and applies the
//! result through the ledger writer.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::Energy;
use voltline_protocol::message::v2g::DischargeRecord;
use voltline_protocol::sync::{
    AnomalyKind, BidirectionalMetering, Register, RegisterAnomaly, MAX_LISTED_ANOMALIES,
};
use voltline_protocol::tariff::{CostBreakdown, CostError, Tariff};

use crate::domain::metering::{measure, Measured, Sample};

/// One stored reading of the session: when, the import register, the export register.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoredReading {
    pub at: Timestamp,
    pub import: Energy,
    pub export: Option<Energy>,
}

/// Both registers of a session, measured apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionMeasure {
    pub export: Measured,
    pub import: Measured,
    /// Every anomaly found by the cloud or listed by the edge (the first
    /// [`MAX_LISTED_ANOMALIES`] of each source).
    pub anomalies: Vec<RegisterAnomaly>,
    /// How many anomalies in all, listed or not.
    pub anomaly_count: u32,
}

impl SessionMeasure {
    /// True when anything about the session's metering needs a look.
    pub fn flagged(&self) -> bool {
        self.anomaly_count > 0
    }
}

/// What the reverse settlement stores as the session's breakdown (`settlements.breakdown`)
/// and the discharge order's view shows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct V2gBreakdown {
    pub export_energy: Energy,
    pub import_energy: Energy,
    /// The exported energy the pile's record states (compared, not billed).
    pub record_exported_energy: Energy,
    /// The export priced by the discharge tariff.
    pub export: CostBreakdown,
    /// The import priced by the charge tariff, for a mixed session.
    pub import: Option<CostBreakdown>,
    pub meter_anomaly: bool,
    pub anomalies: Vec<RegisterAnomaly>,
    pub anomaly_count: u32,
    pub figures: crate::ledger::ReverseFigures,
}

/// Measures the session (see the module doc). `start` and `end` are the record's instants.
pub fn measure_session(
    record: &DischargeRecord,
    metering: Option<&BidirectionalMetering>,
    (start, end): (Timestamp, Timestamp),
    readings: &[StoredReading],
) -> SessionMeasure {
    let between = |at: Timestamp| at > start && at < end;
    let mut export = vec![Sample::new(start, record.export_register_start)];
    export.extend(
        readings
            .iter()
            .filter(|r| between(r.at))
            .filter_map(|r| r.export.map(|e| Sample::new(r.at, e))),
    );
    export.push(Sample::new(end, record.export_register_end));
    let mut import = Vec::new();
    if let Some(first) = metering.and_then(|m| m.first_registers) {
        import.push(Sample::new(start, first.import));
    }
    import.extend(
        readings
            .iter()
            .filter(|r| between(r.at))
            .map(|r| Sample::new(r.at, r.import)),
    );
    if let Some(last) = metering.and_then(|m| m.last_registers) {
        import.push(Sample::new(end, last.import));
    }
    let export = measure(Register::Export, &export);
    let import = measure(Register::Import, &import);
    let mut anomalies = Vec::new();
    let mut count = 0u32;
    let mut add = |list: &[RegisterAnomaly], n: u32| {
        count = count.saturating_add(n);
        anomalies.extend(list.iter().take(MAX_LISTED_ANOMALIES).cloned());
    };
    add(&export.anomalies, export.anomaly_count);
    add(&import.anomalies, import.anomaly_count);
    let consistent = record.export_register_end >= record.export_register_start
        && record.export_register_end - record.export_register_start == record.exported_energy;
    if !consistent {
        add(
            &[RegisterAnomaly {
                register: Register::Export,
                kind: AnomalyKind::RecordInconsistent,
                at: end,
                before: record.export_register_start,
                reading: record.export_register_end,
            }],
            1,
        );
    }
    if let Some(m) = metering {
        add(&m.anomalies, m.anomaly_count.max(m.anomalies.len() as u32));
    }
    SessionMeasure {
        export,
        import,
        anomalies,
        anomaly_count: count,
    }
}

/// Why a session's lines could not be priced.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PriceError {
    #[error("the session imported {energy} but the site has no charge tariff at its start; assign one, then settlement retries")]
    NoChargeTariff { energy: Energy },
    #[error("the {line} line cannot be priced: {source}")]
    Cost {
        line: &'static str,
        #[source]
        source: CostError,
    },
}

/// Prices the export with `discharge` and, when the session imported energy, the import with
/// `charge`.
pub fn price_lines(
    m: &SessionMeasure,
    discharge: &Tariff,
    charge: Option<&Tariff>,
) -> Result<(CostBreakdown, Option<CostBreakdown>), PriceError> {
    let export = discharge
        .cost(&m.export.readings)
        .map_err(|source| PriceError::Cost {
            line: "export",
            source,
        })?;
    if m.import.energy == Energy::ZERO {
        return Ok((export, None));
    }
    let tariff = charge.ok_or(PriceError::NoChargeTariff {
        energy: m.import.energy,
    })?;
    let import = tariff
        .cost(&m.import.readings)
        .map_err(|source| PriceError::Cost {
            line: "import",
            source,
        })?;
    Ok((export, Some(import)))
}

#[cfg(test)]
#[path = "reverse_lines_tests.rs"]
mod tests;
