//! Applying an edge's record batch, the same way whether it came over MQTT or HTTP: check the
//! contract (the batch names the site it arrived for, sequences increase), commit it through
//! [`Store::ingest`](crate::Store::ingest) (deduplicated by (site, sequence)), and only then
//! hand back the cumulative [`Ack`]. Command results in the batch then fan out: watchers are
//! told, and a start that ended without charging has its hold voided.

use voltline_protocol::domain::SiteId;
use voltline_protocol::sync::{Ack, RecordBatch, RecordBody, SyncError};

use crate::state::AppState;
use crate::StoreError;

/// Why a batch was not applied.
#[derive(Debug, thiserror::Error)]
pub enum BatchRejected {
    /// The batch breaks the contract (wrong site, empty, too large, bad sequences).
    #[error("record batch refused: {0}")]
    Contract(#[from] SyncError),
    /// The store could not commit it (nothing is acknowledged; the edge resends).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Applies `batch`, which arrived for `site` over `path` (`mqtt` or `http`), allowing at most
/// `max_records`.
pub async fn apply_batch(
    state: &AppState,
    site: &SiteId,
    batch: &RecordBatch,
    max_records: usize,
    path: &'static str,
) -> Result<Ack, BatchRejected> {
    if let Err(e) = batch.validate(site, max_records) {
        state.metrics.ingest_rejected(path);
        return Err(e.into());
    }
    let outcome = state.store.ingest(site, batch).await?;
    state
        .metrics
        .ingested(path, outcome.fresh, outcome.duplicates);
    if outcome.command_results_applied > 0 {
        for record in &batch.records {
            if let RecordBody::CommandResult(r) = &record.body {
                state.after_command_change(&r.command_id).await;
            }
        }
    }
    Ok(outcome.ack)
}
