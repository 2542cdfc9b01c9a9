//! Ingest throughput: meter-reading batches from 100 simulated edges, committed.
//!
//! For each backend (SQLite always, in a temporary directory; PostgreSQL when
//! `VOLTLINE_TEST_PG` is set, in a schema of its own that is dropped afterwards) it measures:
//!
//! - **batched**: 100 concurrent edges, each sending `VOLTLINE_BENCH_BATCHES` (default 5)
//!   batches of `VOLTLINE_BENCH_BATCH` (default 1000) readings in sequence order — one
//!   database transaction per batch, as the cloud ingests them;
//! - **baseline**, in the same run: the same 100 edges sending one reading per batch (one
//!   transaction per record), which is what ingest would cost without group commit.
//!
//! Readings are generated before the clock starts; the clock stops when the last batch's
//! acknowledgement (returned only after its commit) is back. Goal (cloud issue, item 8):
//! ≥ 100,000 readings/s ingested and committed on 2 cores.
//!
//! Run: `cargo bench -p voltline-cloud --bench ingest`
//! (with `VOLTLINE_TEST_PG=postgres://postgres:postgres@127.0.0.1:5432/test` for PostgreSQL).

use std::str::FromStr;
use std::time::{Duration, Instant};

use jiff::{Timestamp, ToSpan};
use rand::RngCore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use voltline_cloud::store::NewSite;
use voltline_cloud::Store;
use voltline_protocol::domain::{
    ConnectorNo, OperatorId, PileCode, SerialTime, SiteId, TransactionSerial,
};
use voltline_protocol::sync::{MeterReading, Record, RecordBatch, RecordBody};
use voltline_protocol::{Energy, Money, Power};

const EDGES: usize = 100;
const BASELINE_RECORDS_PER_EDGE: u64 = 20;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn site_id(prefix: &str, i: usize) -> SiteId {
    SiteId::new(format!("{prefix}-{i:03}")).expect("valid site id")
}

fn reading(seq: u64, edge: usize) -> Record {
    let pile = PileCode::from_number(32_010_600_000_000 + edge as u64).expect("14 digits");
    let connector = ConnectorNo::new(1).expect("connector 1");
    let at = SerialTime {
        year: 26,
        month: 11,
        day: 25,
        hour: 4,
        minute: 0,
        second: 0,
    };
    let serial = TransactionSerial::compose(pile, connector, at, 1).expect("valid serial");
    let t = Timestamp::from_second(1_800_000_000).expect("in range") + (seq as i64).seconds();
    Record {
        seq,
        at: t,
        body: RecordBody::MeterReading(MeterReading {
            pile,
            connector,
            serial,
            measured_at: t,
            import_register: Energy::from_wh(1_000_000 + seq as i64 * 10),
            export_register: None,
            power: Some(Power::from_watts(60_000)),
            soc: None,
            amount: Some(Money::from_scaled(seq as i64 * 12, 4)),
        }),
    }
}

async fn seed(store: &Store, prefix: &str) {
    let op = OperatorId::new("bench-op").expect("valid id");
    let _ = store.create_operator(&op, "Bench").await;
    for i in 0..EDGES {
        store
            .create_site(&NewSite {
                id: site_id(prefix, i),
                operator: op.clone(),
                name: "bench".into(),
                time_zone: "Asia/Shanghai".into(),
            })
            .await
            .expect("seed site");
    }
}

/// Sends `batches[edge]` for every edge concurrently; returns readings committed and time.
async fn run_edges(store: &Store, prefix: &str, batches: Vec<Vec<RecordBatch>>) -> (u64, Duration) {
    let total: u64 = batches
        .iter()
        .flatten()
        .map(|b| b.records.len() as u64)
        .sum();
    let start = Instant::now();
    let mut tasks = Vec::with_capacity(EDGES);
    for (i, edge_batches) in batches.into_iter().enumerate() {
        let store = store.clone();
        let site = site_id(prefix, i);
        tasks.push(tokio::spawn(async move {
            for b in edge_batches {
                let last = b.last_seq().expect("non-empty");
                let out = store.ingest(&site, &b).await.expect("ingest");
                assert_eq!(
                    out.ack.up_to_seq, last,
                    "in-order batches ack their last record"
                );
            }
        }));
    }
    for t in tasks {
        t.await.expect("edge task");
    }
    (total, start.elapsed())
}

struct Figures {
    batched_rps: f64,
    baseline_rps: f64,
    batched: (u64, Duration),
    baseline: (u64, Duration),
}

async fn measure(store: &Store, batches_per_edge: u64, batch_size: u64) -> Figures {
    seed(store, "edge").await;
    seed(store, "base").await;
    let batched: Vec<Vec<RecordBatch>> = (0..EDGES)
        .map(|e| {
            (0..batches_per_edge)
                .map(|b| {
                    let records = (b * batch_size + 1..=(b + 1) * batch_size)
                        .map(|s| reading(s, e))
                        .collect();
                    RecordBatch::new(site_id("edge", e), records)
                })
                .collect()
        })
        .collect();
    let baseline: Vec<Vec<RecordBatch>> = (0..EDGES)
        .map(|e| {
            (1..=BASELINE_RECORDS_PER_EDGE)
                .map(|s| RecordBatch::new(site_id("base", e), vec![reading(s, e)]))
                .collect()
        })
        .collect();
    let batched = run_edges(store, "edge", batched).await;
    let baseline = run_edges(store, "base", baseline).await;
    let rps = |(n, d): (u64, Duration)| n as f64 / d.as_secs_f64();
    Figures {
        batched_rps: rps(batched),
        baseline_rps: rps(baseline),
        batched,
        baseline,
    }
}

fn report(name: &str, f: &Figures) {
    println!(
        "{name:<10} batched: {:>10.0} readings/s ({} in {:.2} s) | baseline 1 record/txn: {:>8.0} readings/s ({} in {:.2} s) | x{:.0}",
        f.batched_rps,
        f.batched.0,
        f.batched.1.as_secs_f64(),
        f.baseline_rps,
        f.baseline.0,
        f.baseline.1.as_secs_f64(),
        f.batched_rps / f.baseline_rps
    );
}

async fn run() {
    let batches = env_or("VOLTLINE_BENCH_BATCHES", 5);
    let batch_size = env_or("VOLTLINE_BENCH_BATCH", 1000);
    println!(
        "ingest bench: {EDGES} edges x {batches} batches x {batch_size} readings, {} worker threads; goal >= 100,000 readings/s committed",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
    );

    let dir = tempfile::tempdir().expect("temp dir");
    let sqlite = Store::open_in_dir(dir.path()).await.expect("open sqlite");
    let f = measure(&sqlite, batches, batch_size).await;
    report("sqlite", &f);
    sqlite.close().await;

    match std::env::var("VOLTLINE_TEST_PG") {
        Err(_) => println!("postgres   SKIPPED: VOLTLINE_TEST_PG is not set (e.g. postgres://postgres:postgres@127.0.0.1:5432/test)"),
        Ok(url) => {
            let mut bytes = [0u8; 8];
            rand::rng().fill_bytes(&mut bytes);
            let schema = format!("voltline_bench_{}", bytes.iter().map(|b| format!("{b:02x}")).collect::<String>());
            let mut admin = PgConnection::connect(&url).await.expect("connect to VOLTLINE_TEST_PG");
            sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).execute(&mut admin).await.expect("create schema");
            let options = PgConnectOptions::from_str(&url).expect("postgres URL").options([("search_path", schema.as_str())]);
            let pg = Store::connect_postgres(options).await.expect("connect postgres");
            pg.migrate().await.expect("migrate");
            let f = measure(&pg, batches, batch_size).await;
            report("postgres", &f);
            pg.close().await;
            sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE"))).execute(&mut admin).await.expect("drop schema");
        }
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    rt.block_on(run());
}
