//! Ingest of an edge's [`RecordBatch`]: at-least-once delivery in, exactly-once effect out.
//!
//! One database transaction per batch (group commit: the cost of a commit is paid once for up
//! to [`MAX_HTTP_BATCH_RECORDS`] records). Inside it, in order:
//!
//! 1. the site's ingest row is locked (an upsert, so two cloud instances serialise per site);
//! 2. records at or below the committed ack, or already committed out of order, are skipped
//!    (dedup by (site, sequence), see [`crate::domain::ingest`]);
//! 3. fresh records are stored: meter readings in bulk, transaction and discharge records once
//!    per (pile, serial) — a pile must be registered at the batch's site — command results
//!    applied to their command (and its order) when the state machine allows, connector
//!    status and alarms as events;
//! 4. the new highest contiguous sequence is computed and stored.
//!
//! The returned [`Ack`](voltline_protocol::sync::Ack) is sent only after the commit, so an ack
//! never names a record that a crash could lose. A batch that fails leaves nothing behind; the
//! edge re-sends it.

use jiff::Timestamp;
use voltline_protocol::domain::SiteId;
use voltline_protocol::sync::{MeterReading, RecordBatch, MAX_HTTP_BATCH_RECORDS};

use super::types::{DbMoney, DbTime};
use super::{to_u64, with_pool, IngestOutcome, Store, StoreError, StoreResult};

/// One meter reading as inserted.
#[derive(Debug, Clone)]
pub(crate) struct ReadingRow {
    pub seq: i64,
    pub pile: String,
    pub connector: i64,
    pub serial: String,
    pub measured_at: DbTime,
    pub import_mwh: i64,
    pub export_mwh: Option<i64>,
    pub power_w: Option<i64>,
    pub soc_pct: Option<i64>,
    pub amount: Option<DbMoney>,
    pub recorded_at: DbTime,
}

impl ReadingRow {
    pub(crate) fn new(seq: i64, recorded_at: DbTime, m: &MeterReading) -> ReadingRow {
        ReadingRow {
            seq,
            pile: m.pile.to_string(),
            connector: i64::from(m.connector.get()),
            serial: m.serial.to_string(),
            measured_at: DbTime::from(m.measured_at),
            import_mwh: m.import_register.mwh(),
            export_mwh: m.export_register.map(|e| e.mwh()),
            power_w: m.power.map(|p| p.watts()),
            soc_pct: m.soc.map(|s| i64::from(s.percent())),
            amount: m.amount.map(DbMoney),
            recorded_at,
        }
    }
}

impl Store {
    /// Ingests a batch that arrived for `site` (authenticated as that site's edge) and returns
    /// the acknowledgement to send. The batch is checked against the contract first.
    pub async fn ingest(&self, site: &SiteId, batch: &RecordBatch) -> StoreResult<IngestOutcome> {
        batch
            .validate(site, MAX_HTTP_BATCH_RECORDS)
            .map_err(|e| StoreError::invalid("record batch", e.to_string()))?;
        let now = DbTime::from(Timestamp::now());
        with_pool!(self, |pool, d, ops| {
            let _turn = self.write_turn().await;
            let mut txn = pool.begin_with(d.begin_write()).await?;
            let out = ops::ingest_batch(&mut txn, batch, now).await?;
            txn.commit().await?;
            tracing::debug!(
                site = %site,
                ack = out.ack.up_to_seq,
                fresh = out.fresh,
                duplicates = out.duplicates,
                duplicate_transactions = out.duplicate_transactions,
                "ingested batch"
            );
            Ok(out)
        })
    }

    /// The highest contiguous sequence committed for a site (0 before its first batch).
    pub async fn acked_seq(&self, site: &SiteId) -> StoreResult<u64> {
        let v: Option<i64> = with_pool!(self, |pool, d| {
            sqlx::query_scalar("SELECT acked_seq FROM edge_ingest WHERE site_id = $1")
                .bind(site.as_str())
                .fetch_optional(pool)
                .await?
        });
        v.map_or(Ok(0), |v| to_u64(v, "acked sequence"))
    }

    /// How many meter readings are stored for a site (for tests and operators' checks).
    pub async fn count_meter_readings(&self, site: &SiteId) -> StoreResult<u64> {
        let v: i64 = with_pool!(self, |pool, d| {
            sqlx::query_scalar("SELECT COUNT(*) FROM meter_readings WHERE site_id = $1")
                .bind(site.as_str())
                .fetch_one(pool)
                .await?
        });
        to_u64(v, "count")
    }

    /// How many transaction and discharge records are stored for a site.
    pub async fn count_transactions(&self, site: &SiteId) -> StoreResult<u64> {
        let v: i64 = with_pool!(self, |pool, d| {
            sqlx::query_scalar("SELECT COUNT(*) FROM transactions WHERE site_id = $1")
                .bind(site.as_str())
                .fetch_one(pool)
                .await?
        });
        to_u64(v, "count")
    }
}
