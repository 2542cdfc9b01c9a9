//! Backlog replay over HTTP: after an outage, large gzip-compressed `RecordBatch`es to
//! `POST {http}/v1/edges/{site}/records` (bearer = the edge credential), each answered by the
//! cloud's cumulative ack, on which the outbox is trimmed. The next batch is read and
//! compressed while the current one is in flight (one request at a time, one batch ahead).
//!
//! The replay runs until less than one MQTT batch is left (live MQTT takes the rest); it
//! stops early — falling back to MQTT, which re-sends from the acknowledged mark — when a
//! request fails or an ack does not cover its batch (the cloud refused part of it: sending
//! the same bytes again would not help).

use std::sync::Arc;

use jiff::Timestamp;
use reqwest::header::{CONTENT_ENCODING, CONTENT_TYPE};
use tokio_util::sync::CancellationToken;

use super::driver::trim;
use super::window::{AckOutcome, Window};
use super::wire::{self, BatchBuilder};
use super::Ctx;

/// Largest ack body read.
const MAX_ACK_BYTES: usize = 64 * 1024;

/// Records read from the store at a time while a replay batch is built (bounds memory by the
/// byte limit of the batch, not by its record count).
const READ_CHUNK: usize = 2_000;

/// How a replay ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ReplayEnd {
    /// Less than one MQTT batch is left.
    Done,
    /// A request failed; MQTT takes over.
    Failed,
    /// Shutdown.
    Cancelled,
}

/// One compressed batch.
struct Prepared {
    gz: bytes::Bytes,
    first: u64,
    last: u64,
    records: usize,
}

/// Replays the backlog; `window` follows the acks.
pub(super) async fn run(
    ctx: &Arc<Ctx>,
    window: &mut Window,
    shutdown: &CancellationToken,
) -> ReplayEnd {
    let stop_below = ctx.cfg.batch_max_records as u64;
    let started = std::time::Instant::now();
    let mut sent = 0u64;
    tracing::info!(
        backlog = window.backlog(),
        "uplink: replaying the backlog over HTTP"
    );
    let mut current = match prepare(ctx, window.acked(), stop_below).await {
        Ok(p) => p,
        Err(e) => return failed(ctx, &e),
    };
    let mut trimming: Option<tokio::task::JoinHandle<()>> = None;
    let end = loop {
        let Some(batch) = current.take() else {
            break ReplayEnd::Done;
        };
        let post = post(ctx, &batch);
        let next = prepare(ctx, batch.last, stop_below);
        let (answer, next) = tokio::select! {
            both = async { tokio::join!(post, next) } => both,
            () = shutdown.cancelled() => break ReplayEnd::Cancelled,
        };
        let up_to = match answer {
            Ok(u) => u,
            Err(e) => break failed(ctx, &e),
        };
        ctx.contact();
        window.on_durable(ctx.store.durable_head());
        match window.on_ack(up_to) {
            AckOutcome::Advanced { up_to } => {
                // Trim in the background, overlapped with the next batch's post; at most one
                // trim runs (the previous one is awaited first) and the mark only moves on.
                if let Some(previous) = trimming.take() {
                    let _ = previous.await;
                }
                let ctx = ctx.clone();
                trimming = Some(tokio::spawn(async move { trim(&ctx, up_to).await }));
            }
            AckOutcome::Stale => {}
            AckOutcome::BeyondSent { up_to, durable } => {
                break failed(
                    ctx,
                    &format!("the cloud acknowledged {up_to}, above the durable head {durable}"),
                );
            }
        }
        if window.acked() < batch.last {
            break failed(
                ctx,
                &format!(
                    "the cloud acknowledged only up to {} of the batch {}..={}",
                    window.acked(),
                    batch.first,
                    batch.last
                ),
            );
        }
        sent += batch.records as u64;
        ctx.metrics
            .records_replayed_http
            .inc_by(batch.records as u64);
        ctx.metrics.replay_bytes_http.inc_by(batch.gz.len() as u64);
        current = match next {
            Ok(p) => p,
            Err(e) => break failed(ctx, &e),
        };
    };
    if let Some(last) = trimming.take() {
        let _ = last.await;
    }
    let secs = started.elapsed().as_secs_f64().max(1e-3);
    tracing::info!(
        records = sent,
        records_per_s = (sent as f64 / secs) as u64,
        left = window.backlog(),
        end = ?end,
        "uplink: HTTP replay ended"
    );
    end
}

fn failed(ctx: &Ctx, reason: &str) -> ReplayEnd {
    ctx.metrics.replay_failures.inc();
    tracing::warn!(%reason, "uplink: HTTP replay failed; live MQTT takes the backlog");
    ReplayEnd::Failed
}

/// Reads and compresses the next batch after `after`, if at least `stop_below` durable
/// records are left after it.
async fn prepare(ctx: &Arc<Ctx>, after: u64, stop_below: u64) -> Result<Option<Prepared>, String> {
    let durable = ctx.store.durable_head();
    let after = after.max(ctx.store.ledger().acked);
    let left = durable.saturating_sub(after);
    if left < stop_below.max(1) {
        return Ok(None);
    }
    let ctx = ctx.clone();
    let max = (left.min(ctx.cfg.http_batch_max_records as u64)) as usize;
    tokio::task::spawn_blocking(move || {
        let mut batch = BatchBuilder::new(
            &ctx.cfg.site,
            ctx.cfg.http_batch_max_bytes,
            Timestamp::now(),
        );
        let mut cursor = after;
        'read: while batch.records() < max {
            let want = (max - batch.records()).min(READ_CHUNK);
            let chunk = ctx
                .store
                .unacked_raw_after(cursor, want)
                .map_err(|e| format!("reading the outbox: {e}"))?;
            if chunk.is_empty() {
                break;
            }
            for (seq, value) in &chunk {
                if *seq > durable || !batch.push(*seq, value) {
                    break 'read;
                }
                cursor = *seq;
            }
        }
        let Some(b) = batch.finish() else {
            return Ok(None);
        };
        Ok(Some(Prepared {
            gz: wire::gzip(&b.json).into(),
            first: b.first,
            last: b.last,
            records: b.records,
        }))
    })
    .await
    .map_err(|e| format!("the replay encoder failed: {e}"))?
}

/// Posts one batch; returns the cloud's ack.
async fn post(ctx: &Ctx, batch: &Prepared) -> Result<u64, String> {
    let resp = ctx
        .http
        .post(ctx.cfg.records_url())
        .bearer_auth(&ctx.cfg.credential)
        .header(CONTENT_TYPE, "application/json")
        .header(CONTENT_ENCODING, "gzip")
        .body(batch.gz.clone())
        .send()
        .await
        .map_err(|e| format!("POST records: {}", e.without_url()))?;
    let status = resp.status();
    let body = read_bounded(resp, MAX_ACK_BYTES).await?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body[..body.len().min(300)]).into_owned();
        return Err(format!("POST records answered {status}: {text}"));
    }
    wire::parse_ack(&ctx.cfg.site, &body)
}

/// Reads a response body of at most `max` bytes.
pub(super) async fn read_bounded(
    mut resp: reqwest::Response,
    max: usize,
) -> Result<Vec<u8>, String> {
    if resp.content_length().is_some_and(|n| n > max as u64) {
        return Err(format!("the answer is larger than {max} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| format!("reading the answer: {}", e.without_url()))?
    {
        if body.len() + chunk.len() > max {
            return Err(format!("the answer is larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
