//! Crash safety under SIGKILL. The test binary re-executes itself as a child that appends
//! through the group committer and prints every acknowledged sequence with a unique tag; the
//! parent kills it (SIGKILL) at a random moment, reopens the store and checks that every
//! acknowledged record is there, unchanged, that sequences are contiguous from 1, and that a
//! later round continues above them (no sequence is reused). Three rounds on one directory.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use rand::Rng;
use voltline_edge::store::{GroupCommitConfig, GroupCommitter, NewRecord, Store, StoreConfig};
use voltline_protocol::domain::{ConnectorNo, Energy, PileCode, TransactionSerial};
use voltline_protocol::sync::{MeterReading, RecordBody};

const DIR_ENV: &str = "VOLTLINE_KILL9_STORE_DIR";
const ROUND_ENV: &str = "VOLTLINE_KILL9_ROUND";
const PRODUCERS: u64 = 16;

fn config() -> StoreConfig {
    StoreConfig {
        background_flush_ms: None,
        cache_bytes: 16 << 20,
        ..StoreConfig::default()
    }
}

/// A meter reading whose import register carries `tag` (in Wh), to recognise it later.
fn tagged(tag: u64) -> NewRecord {
    let pile: PileCode = "32010600019236".parse().unwrap();
    let body = RecordBody::MeterReading(MeterReading {
        pile,
        connector: ConnectorNo::new(1).unwrap(),
        serial: TransactionSerial::NONE,
        measured_at: Timestamp::UNIX_EPOCH,
        import_register: Energy::from_wh(tag as i64),
        export_register: None,
        power: None,
        soc: None,
        amount: None,
    });
    NewRecord::new(Timestamp::UNIX_EPOCH, body)
}

/// The child: appends forever, printing `acked <seq> <tag>` after each durable append.
#[test]
fn kill9_child_process() {
    let Some(dir) = std::env::var_os(DIR_ENV) else {
        return;
    };
    let round: u64 = std::env::var(ROUND_ENV).unwrap().parse().unwrap();
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async move {
        // The parent's handle from the previous round may hold the lock for a moment.
        let mut tries = 0;
        let store = loop {
            match Store::open(&dir, config()) {
                Ok(store) => break store,
                Err(_) if tries < 250 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("{e}"),
            }
        };
        let (committer, _task) = GroupCommitter::spawn(store, GroupCommitConfig::default());
        let out = Arc::new(Mutex::new(std::io::stdout()));
        let mut producers = Vec::new();
        for p in 0..PRODUCERS {
            let committer = committer.clone();
            let out = out.clone();
            producers.push(tokio::spawn(async move {
                for i in 0u64.. {
                    let tag = round * 1_000_000_000 + p * 10_000_000 + i;
                    let done = committer.append_durable(vec![tagged(tag)]).await.unwrap();
                    let seq = done[0].seq().unwrap();
                    let mut out = out.lock().unwrap();
                    writeln!(out, "acked {seq} {tag}").unwrap();
                    out.flush().unwrap();
                }
            }));
        }
        for p in producers {
            p.await.unwrap();
        }
    });
}

#[test]
fn kill9_child_process_acknowledged_sequences_survive() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked_before: Vec<(u64, u64)> = Vec::new();
    let mut rng = rand::rng();
    for round in 1..=3u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "kill9_child_process",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(DIR_ENV, dir.path())
            .env(ROUND_ENV, round.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let acked = Arc::new(Mutex::new(Vec::<(u64, u64)>::new()));
        let reader = {
            let acked = acked.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stdout).lines() {
                    let Ok(line) = line else { break };
                    let mut parts = line
                        .strip_prefix("acked ")
                        .into_iter()
                        .flat_map(|l| l.split(' '));
                    if let (Some(seq), Some(tag)) = (parts.next(), parts.next()) {
                        if let (Ok(seq), Ok(tag)) = (seq.parse(), tag.parse()) {
                            acked.lock().unwrap().push((seq, tag));
                        }
                    }
                }
            })
        };
        // Let it get going, then kill it at a random moment.
        let started = Instant::now();
        while acked.lock().unwrap().len() < 200 && started.elapsed() < Duration::from_secs(60) {
            std::thread::sleep(Duration::from_millis(10));
        }
        std::thread::sleep(Duration::from_millis(rng.random_range(0..400)));
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        let acked_now = acked.lock().unwrap().clone();
        assert!(
            !acked_now.is_empty(),
            "round {round}: the child acknowledged nothing"
        );

        let store = Store::open(dir.path(), config()).unwrap();
        let head = store.ledger().head;
        let records = store
            .unacked_after(0, 100_000_000, jiff::Timestamp::now())
            .unwrap();
        let seqs: Vec<u64> = records.iter().map(|r| r.seq).collect();
        assert_eq!(
            seqs,
            (1..=head).collect::<Vec<_>>(),
            "round {round}: contiguous from 1"
        );
        let tag_at = |seq: u64| match &records[(seq - 1) as usize].body {
            RecordBody::MeterReading(m) => m.import_register,
            other => panic!("unexpected record {other:?}"),
        };
        for &(seq, tag) in acked_before.iter().chain(&acked_now) {
            assert!(
                seq <= head,
                "round {round}: acknowledged sequence {seq} lost (head {head})"
            );
            assert_eq!(
                tag_at(seq),
                Energy::from_wh(tag as i64),
                "sequence {seq} was reused"
            );
        }
        let before_max = acked_before.iter().map(|a| a.0).max().unwrap_or(0);
        assert!(
            acked_now.iter().all(|a| a.0 > before_max),
            "round {round} reused a sequence"
        );
        acked_before.extend(acked_now);
        drop(store);
    }
}
