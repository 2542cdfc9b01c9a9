//! Durable ingest and replay of the edge store.
//!
//! Run: `cargo bench -p voltline-edge --bench ingest_store`. Sizes can be scaled down with
//! `VOLTLINE_BENCH_RECORDS` (ingest) and `VOLTLINE_BENCH_REPLAY_RECORDS` (replay).
//!
//! Figures, each measured in this run and printed as records/s and as a ratio to a baseline
//! from the same run:
//! - baseline A: a raw sled insert loop without any flush (the ceiling: no durability);
//! - baseline B: one append + flush per record (durable without group commit);
//! - group commit: 500 concurrent producers, each appending one record at a time and
//!   waiting until it is durable before the next (the worst case), and the same with each
//!   producer keeping up to 8 records in flight (`submit` + `Ticket::durable`, the shape of
//!   a connection that goes on reading frames while earlier ones are flushed);
//! - caller batches: `append_batch` of 1,000 records (one write + one flush each);
//! - encode: `PreparedRecord::new` alone (the JSON encoding done in each caller's task), to
//!   show its share of an append;
//! - replay: reading the outbox of N records in order in batches of 50,000, raw JSON and
//!   decoded `Record`s. Goal context: ≥ 100,000 frames/s durable, 3 million records in ≤ 60 s.

use std::time::{Duration, Instant};

use jiff::Timestamp;
use voltline_edge::store::{
    GroupCommitConfig, GroupCommitter, NewRecord, PreparedRecord, Store, StoreConfig, Ticket,
};
use voltline_protocol::domain::{
    ConnectorNo, Energy, Money, PileCode, Power, SerialTime, Soc, TransactionSerial,
};
use voltline_protocol::sync::{MeterReading, Record, RecordBody};

const PRODUCERS: usize = 500;
const REPLAY_BATCH: usize = 50_000;
const WINDOW: usize = 8;

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A realistic 0x13-derived meter reading of charger `pile_no`, reading `i`.
fn reading(pile_no: u64, i: u64) -> NewRecord {
    let pile = PileCode::from_number(32_010_600_000_000 + pile_no).unwrap();
    let connector = ConnectorNo::new(1).unwrap();
    let at = SerialTime {
        year: 26,
        month: 11,
        day: 25,
        hour: 8,
        minute: 0,
        second: 0,
    };
    let serial = TransactionSerial::compose(pile, connector, at, (pile_no % 9_000) as u16).unwrap();
    let measured_at = Timestamp::from_second(1_795_000_000 + (i as i64) * 15).unwrap();
    NewRecord::new(
        measured_at,
        RecordBody::MeterReading(MeterReading {
            pile,
            connector,
            serial,
            measured_at,
            import_register: Energy::from_wh(1_000_000 + i as i64 * 31),
            export_register: None,
            power: Some(Power::from_watts(61_500)),
            soc: Soc::new(((i % 100) as u8).max(1)),
            amount: Some(Money::from_cents(i as i64 * 3)),
        }),
    )
}

fn config() -> StoreConfig {
    StoreConfig {
        max_bytes: 8 << 30,
        max_batch_records: 100_000,
        ..StoreConfig::default()
    }
}

fn rate(n: usize, d: Duration) -> f64 {
    n as f64 / d.as_secs_f64()
}

fn report(name: &str, n: usize, d: Duration, baseline: Option<(&str, f64)>) -> f64 {
    let r = rate(n, d);
    let vs = baseline
        .map(|(b, br)| format!("  = {:.2}x {b}", r / br))
        .unwrap_or_default();
    println!(
        "{name:<44} {n:>9} records in {:>7.3} s = {r:>11.0} records/s{vs}",
        d.as_secs_f64()
    );
    r
}

fn main() {
    let ingest_n = env_usize("VOLTLINE_BENCH_RECORDS", 300_000);
    let replay_n = env_usize("VOLTLINE_BENCH_REPLAY_RECORDS", 3_000_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let sample = serde_json::to_vec(&Record {
        seq: 1,
        at: reading(1, 1).at,
        body: reading(1, 1).body,
    })
    .unwrap();
    println!("record size: {} bytes of JSON", sample.len());

    // Encode cost alone: what every caller pays per record before the writer sees it.
    let to_encode: Vec<NewRecord> = (0..ingest_n as u64).map(|i| reading(i % 500, i)).collect();
    let start = Instant::now();
    let mut encoded_bytes = 0usize;
    for r in &to_encode {
        let p = PreparedRecord::new(r).unwrap();
        encoded_bytes += std::hint::black_box(&p) as *const _ as usize & 1;
    }
    std::hint::black_box(encoded_bytes);
    report(
        "encode: PreparedRecord::new, one thread",
        ingest_n,
        start.elapsed(),
        None,
    );
    drop(to_encode);

    // Baseline A: raw sled inserts, no flush.
    let dir = tempfile::tempdir().unwrap();
    let db = sled::Config::new()
        .path(dir.path())
        .flush_every_ms(None)
        .open()
        .unwrap();
    let tree = db.open_tree("raw").unwrap();
    let values: Vec<Vec<u8>> = (0..ingest_n as u64)
        .map(|i| serde_json::to_vec(&reading(i % 500, i).body).unwrap())
        .collect();
    let start = Instant::now();
    for (i, v) in values.iter().enumerate() {
        tree.insert((i as u64).to_be_bytes(), v.as_slice()).unwrap();
    }
    let raw = report(
        "A: raw sled insert loop, no flush",
        ingest_n,
        start.elapsed(),
        None,
    );
    drop((tree, db, values));

    // Baseline B: one durable append per record.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    let single_n = 2_000.min(ingest_n);
    let start = Instant::now();
    runtime.block_on(async {
        for i in 0..single_n as u64 {
            store.append_batch(vec![reading(i % 500, i)]).await.unwrap();
        }
    });
    let single = report(
        "B: append + flush per record",
        single_n,
        start.elapsed(),
        Some(("A", raw)),
    );
    drop(store);

    // Group commit: 500 producers, one record at a time, each waits for durability.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    let start = Instant::now();
    runtime.block_on(async {
        let (committer, task) = GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
        let per = ingest_n / PRODUCERS;
        let mut joins = Vec::new();
        for p in 0..PRODUCERS as u64 {
            let committer = committer.clone();
            joins.push(tokio::spawn(async move {
                for i in 0..per as u64 {
                    committer.append_durable(vec![reading(p, i)]).await.unwrap();
                }
            }));
        }
        for j in joins {
            j.await.unwrap();
        }
        drop(committer);
        task.await.unwrap();
    });
    let n = (ingest_n / PRODUCERS) * PRODUCERS;
    let elapsed = start.elapsed();
    report(
        "group commit, 500 producers, 1 record each",
        n,
        elapsed,
        Some(("A", raw)),
    );
    report("  (same, against B)", n, elapsed, Some(("B", single)));
    drop(store);

    // Group commit, each producer keeping up to WINDOW records in flight (a connection goes
    // on reading frames while earlier ones are flushed).
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    let start = Instant::now();
    runtime.block_on(async {
        let (committer, task) = GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
        let per = ingest_n / PRODUCERS;
        let mut joins = Vec::new();
        for p in 0..PRODUCERS as u64 {
            let committer = committer.clone();
            joins.push(tokio::spawn(async move {
                let mut in_flight = std::collections::VecDeque::new();
                for i in 0..per as u64 {
                    if in_flight.len() == WINDOW {
                        let t: Ticket = in_flight.pop_front().unwrap();
                        t.durable().await.unwrap();
                    }
                    in_flight.push_back(committer.submit(vec![reading(p, i)]).await.unwrap());
                }
                for t in in_flight {
                    t.durable().await.unwrap();
                }
            }));
        }
        for j in joins {
            j.await.unwrap();
        }
        drop(committer);
        task.await.unwrap();
    });
    let elapsed = start.elapsed();
    report(
        "group commit, 500 producers, 8 in flight each",
        n,
        elapsed,
        Some(("A", raw)),
    );
    report("  (same, against B)", n, elapsed, Some(("B", single)));
    drop(store);

    // Caller batches of 1,000.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    let start = Instant::now();
    runtime.block_on(async {
        for chunk in 0..(ingest_n / 1_000) as u64 {
            let batch = (0..1_000)
                .map(|k| reading(k % 500, chunk * 1_000 + k))
                .collect();
            store.append_batch(batch).await.unwrap();
        }
    });
    let n = (ingest_n / 1_000) * 1_000;
    report(
        "append_batch of 1,000 + flush",
        n,
        start.elapsed(),
        Some(("B", single)),
    );
    drop(store);

    // Replay of a day's backlog.
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path(), config()).unwrap();
    let start = Instant::now();
    for chunk in 0..replay_n.div_ceil(REPLAY_BATCH) as u64 {
        let from = chunk * REPLAY_BATCH as u64;
        let to = (from + REPLAY_BATCH as u64).min(replay_n as u64);
        let batch = (from..to).map(|i| reading(i % 500, i)).collect();
        store.write_batch(batch).unwrap();
    }
    runtime.block_on(store.flush()).unwrap();
    report(
        "(fill: write_batch of 50,000, one flush)",
        replay_n,
        start.elapsed(),
        Some(("A", raw)),
    );
    println!(
        "outbox: {} counted bytes, sled size_on_disk {} bytes",
        store.ledger().bytes,
        store.size_on_disk().unwrap()
    );
    let start = Instant::now();
    let mut after = 0;
    let mut seen = 0usize;
    loop {
        let batch = store.unacked_raw_after(after, REPLAY_BATCH).unwrap();
        let Some(&(last, _)) = batch.last() else {
            break;
        };
        seen += batch.len();
        after = last;
    }
    assert_eq!(seen, replay_n);
    let raw_replay = report(
        "replay raw JSON, batches of 50,000",
        seen,
        start.elapsed(),
        Some(("A", raw)),
    );
    let start = Instant::now();
    let (mut after, mut seen) = (0, 0usize);
    loop {
        let batch = store
            .unacked_after(after, REPLAY_BATCH, jiff::Timestamp::now())
            .unwrap();
        let Some(last) = batch.last() else { break };
        seen += batch.len();
        after = last.seq;
    }
    assert_eq!(seen, replay_n);
    let d = start.elapsed();
    report(
        "replay decoded Records, batches of 50,000",
        seen,
        d,
        Some(("raw replay", raw_replay)),
    );
    println!(
        "replay of {replay_n} records: raw {:.1} s, decoded {:.1} s (goal: 3,000,000 in <= 60 s)",
        replay_n as f64 / raw_replay,
        d.as_secs_f64()
    );
}
