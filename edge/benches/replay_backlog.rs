//! Backlog replay after an outage: a day of a 500-charger site (3,000,000 meter readings,
//! about one per charger every 15 s) waits in the outbox; the uplink connects, finds the
//! backlog above its threshold and replays it over HTTP (gzip batches) to a stub cloud that
//! decompresses, parses and validates every batch and acknowledges the highest contiguous
//! sequence, as the real cloud's ingest does. Timed: from the uplink's start until the outbox
//! is acknowledged to its head. Baseline in the same run: reading the same backlog out of the
//! store raw (what the replay cannot beat).
//!
//! `cargo bench -p voltline-edge --bench replay_backlog` (goal: 3 million in ≤ 60 s).
//! `VOLTLINE_BENCH_QUICK=1`: 200,000 records.

#[path = "../tests/uplink_support/mod.rs"]
mod uplink_support;

use std::io::Read;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_edge::ops::metrics::EdgeMetrics;
use voltline_edge::ports::ChargerDirectory;
use voltline_edge::store::{GroupCommitConfig, GroupCommitter, NewRecord, Store, StoreConfig};
use voltline_edge::uplink::{Uplink, UplinkConfig};
use voltline_protocol::domain::{ConnectorNo, Energy, PileCode, Power, SerialTime, SiteId, Soc};
use voltline_protocol::sync::{Ack, MeterReading, RecordBatch, RecordBody, MAX_HTTP_BATCH_RECORDS};
use voltline_protocol::TransactionSerial;

const CHARGERS: u64 = 500;

fn reading(i: u64) -> NewRecord {
    let pile_no = i % CHARGERS;
    let pile = PileCode::from_number(32_010_600_000_000 + pile_no).unwrap();
    let connector = ConnectorNo::new(1).unwrap();
    let at = SerialTime {
        year: 26,
        month: 11,
        day: 30,
        hour: 0,
        minute: 0,
        second: 0,
    };
    let serial = TransactionSerial::compose(pile, connector, at, (pile_no % 9_000) as u16).unwrap();
    let measured_at = Timestamp::from_second(1_795_000_000 + (i / CHARGERS) as i64 * 15).unwrap();
    NewRecord::new(
        measured_at,
        RecordBody::MeterReading(MeterReading {
            pile,
            connector,
            serial,
            measured_at,
            import_register: Energy::from_wh(1_000_000 + i as i64 * 3),
            export_register: None,
            power: Some(Power::from_kw(60)),
            soc: Soc::new((i % 100) as u8),
            amount: None,
        }),
    )
}

/// The stub cloud's ingest: the highest contiguous sequence, and the bytes it read.
#[derive(Default)]
struct Ingest {
    contiguous: AtomicU64,
    wire_bytes: AtomicU64,
    json_bytes: AtomicU64,
}

async fn post_records(
    State(ingest): State<Arc<Ingest>>,
    Path(site): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<axum::Json<Ack>, StatusCode> {
    let ingest2 = ingest.clone();
    tokio::task::spawn_blocking(move || {
        let ingest = ingest2;
        ingest
            .wire_bytes
            .fetch_add(body.len() as u64, Ordering::Relaxed);
        let gz = headers
            .get("content-encoding")
            .is_some_and(|v| v.as_bytes() == b"gzip");
        let json = if gz {
            let mut out = Vec::with_capacity(body.len() * 8);
            flate2::read::GzDecoder::new(&body[..])
                .read_to_end(&mut out)
                .map_err(|_| StatusCode::BAD_REQUEST)?;
            out
        } else {
            body.to_vec()
        };
        ingest
            .json_bytes
            .fetch_add(json.len() as u64, Ordering::Relaxed);
        let batch: RecordBatch =
            serde_json::from_slice(&json).map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
        let site = SiteId::new(site).map_err(|_| StatusCode::NOT_FOUND)?;
        batch
            .validate(&site, MAX_HTTP_BATCH_RECORDS)
            .map_err(|_| StatusCode::UNPROCESSABLE_ENTITY)?;
        let mut c = ingest.contiguous.load(Ordering::Relaxed);
        for r in &batch.records {
            if r.seq == c + 1 {
                c = r.seq;
            }
        }
        ingest.contiguous.store(c, Ordering::Relaxed);
        Ok(axum::Json(Ack::new(site, c)))
    })
    .await
    .map_err(|_| StatusCode::INTERNAL_SERVER_ERROR)?
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::var_os("VOLTLINE_BENCH_QUICK").is_some();
    let total: u64 = if quick { 200_000 } else { 3_000_000 };
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreConfig {
            max_bytes: 8 << 30,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let fill = Instant::now();
    let chunk = 50_000;
    let mut i = 0;
    while i < total {
        let n = chunk.min(total - i);
        store
            .write_batch((i..i + n).map(reading).collect())
            .unwrap();
        i += n;
    }
    store.flush().await.unwrap();
    let ledger = store.ledger();
    assert_eq!(ledger.head, total);
    println!(
        "backlog: {total} records, {:.0} MiB in the outbox (filled in {:.1} s, not timed)",
        ledger.bytes as f64 / (1 << 20) as f64,
        fill.elapsed().as_secs_f64()
    );

    // Baseline: the raw read of the whole backlog.
    let read = Instant::now();
    let mut after = 0;
    let mut read_records = 0u64;
    loop {
        let raw = store.unacked_raw_after(after, 10_000).unwrap();
        let Some(last) = raw.last() else { break };
        after = last.0;
        read_records += raw.len() as u64;
    }
    assert_eq!(read_records, total);
    let read_s = read.elapsed().as_secs_f64();

    let broker = uplink_support::start_rumqttd();
    let site = uplink_support::fresh_site();
    let ingest = Arc::new(Ingest::default());
    let app = axum::Router::new()
        .route("/v1/edges/{site}/records", post(post_records))
        .route(
            "/v1/edges/{site}/config",
            get(|| async { StatusCode::NOT_FOUND }),
        )
        .layer(axum::extract::DefaultBodyLimit::max(64 << 20))
        .with_state(ingest.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });

    let cfg = UplinkConfig::new(
        site.clone(),
        broker.ip().to_string(),
        broker.port(),
        uplink_support::SECRET,
        http,
    );
    let (committer, _task) = GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
    let metrics = Arc::new(EdgeMetrics::default());
    let (commands, _commands_rx) = mpsc::channel(64);
    let shutdown = CancellationToken::new();
    let start = Instant::now();
    let handle = Uplink::spawn(
        cfg,
        store.clone(),
        committer,
        ChargerDirectory::default(),
        metrics.clone(),
        commands,
        shutdown.clone(),
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(if quick { 120 } else { 600 });
    while store.ledger().acked < total {
        assert!(
            Instant::now() < deadline,
            "replay stalled at {} of {total}",
            store.ledger().acked
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let replay_s = start.elapsed().as_secs_f64();
    let over_http = metrics.records_replayed_http.get();
    let wire = ingest.wire_bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64;
    let json = ingest.json_bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64;
    println!(
        "baseline: raw read of the backlog from the store: {:.2} s ({:.0} records/s)",
        read_s,
        total as f64 / read_s
    );
    println!(
        "replay: {total} records acknowledged in {replay_s:.2} s = {:.0} records/s ({:.2}x the raw read time); {over_http} over HTTP, {:.0} MiB gzip on the wire for {:.0} MiB of JSON",
        total as f64 / replay_s,
        replay_s / read_s,
        wire,
        json
    );
    println!(
        "goal: a day's backlog of a 500-charger site (3,000,000 records) in <= 60 s: {}",
        if quick {
            "not judged (quick run)"
        } else if replay_s <= 60.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), handle.join).await;
}
