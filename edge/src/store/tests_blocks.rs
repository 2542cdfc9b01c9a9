//! Tests of the block layout's edge cases (see `block.rs` and the module doc): an
//! acknowledgement inside a block, thinning inside a block, a crash around a block write, a
//! block larger than a replay batch, and the bound on block size.

use jiff::Timestamp;
use voltline_protocol::sync::{Record, RecordBody};

use super::block::{BLOCK_MAX_BYTES, RAW_MAX_BYTES};
use super::tests_outbox::{crash_image, meter, open, test_config, tx};
use super::*;

fn seqs(store: &Store, after: u64) -> Vec<u64> {
    store
        .unacked_after(after, MAX_REPLAY_RECORDS, Timestamp::now())
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

/// Blocks as (first, last) sequences.
fn spans(store: &Store) -> Vec<(u64, u64)> {
    store
        .stored_blocks()
        .unwrap()
        .iter()
        .map(|&(first, n, _)| (first, first + n as u64 - 1))
        .collect()
}

#[tokio::test]
async fn one_write_is_a_few_blocks_not_one_key_per_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    store
        .append_batch((0..1_000).map(|i| meter(1, i, i)).collect())
        .await
        .unwrap();
    let blocks = store.stored_blocks().unwrap();
    assert!(blocks.len() <= 1_000 / 10, "{} blocks", blocks.len());
    // Contiguous, in order, each within the bound.
    let mut next = 1;
    for &(first, n, len) in &blocks {
        assert_eq!(first, next);
        assert!(len <= BLOCK_MAX_BYTES, "block at {first}: {len} bytes");
        next = first + n as u64;
    }
    assert_eq!(next, 1_001);
    assert_eq!(store.ledger().bytes, store.recount_bytes().unwrap());
}

#[tokio::test]
async fn ack_inside_a_block_rewrites_it_without_the_acknowledged_records() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    // Three writes of four records: blocks 1..=4, 5..=8, 9..=12.
    for w in 0..3 {
        store
            .append_batch((0..4).map(|i| meter(1, w * 4 + i, i)).collect())
            .await
            .unwrap();
    }
    assert_eq!(spans(&store), vec![(1, 4), (5, 8), (9, 12)]);
    let bytes = store.ledger().bytes;
    // Inside the second block: the first goes, the second keeps its unacknowledged rest,
    // byte for byte, under the key of its first unacknowledged sequence.
    let rest_before = store.unacked_raw_after(6, 2).unwrap();
    assert_eq!(store.ack_up_to(6).unwrap(), 6);
    assert_eq!(spans(&store), vec![(7, 8), (9, 12)]);
    assert_eq!(store.unacked_raw_after(0, 2).unwrap(), rest_before);
    assert_eq!(store.ledger().bytes, store.recount_bytes().unwrap());
    assert!(store.ledger().bytes < bytes);
    // Replay starts after the mark, inside the block, whatever the caller asks from.
    assert_eq!(seqs(&store, 0), (7..=12).collect::<Vec<_>>());
    assert_eq!(seqs(&store, 7), (8..=12).collect::<Vec<_>>());
    // Survives a crash: the mark is durable, the partly acknowledged block still there.
    store.flush().await.unwrap();
    let image = crash_image(dir.path());
    let reopened = open(image.path(), test_config());
    assert_eq!(reopened.ledger().acked, 6);
    assert_eq!(seqs(&reopened, 0), (7..=12).collect::<Vec<_>>());
    // Inside the same block again, then the rest of it: it goes.
    assert_eq!(store.ack_up_to(7).unwrap(), 1);
    assert_eq!(spans(&store), vec![(8, 8), (9, 12)]);
    assert_eq!(store.ack_up_to(8).unwrap(), 1);
    assert_eq!(spans(&store), vec![(9, 12)]);
    assert_eq!(store.ledger().bytes, store.recount_bytes().unwrap());
    assert_eq!(store.ack_up_to(12).unwrap(), 4);
    assert!(spans(&store).is_empty());
    assert_eq!(store.ledger().bytes, 0);
    // Sequences go on above the trimmed blocks.
    let next = store.append_batch(vec![meter(1, 99, 99)]).await.unwrap();
    assert_eq!(next, vec![Appended::Stored { seq: 13 }]);
}

#[tokio::test]
async fn thinning_inside_a_block_keeps_its_sequences_and_counts_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    // One session, a reading a second, and a transaction record inside the first block.
    let mut records: Vec<NewRecord> = (0..300).map(|i| meter(1, i, i * 10)).collect();
    records.insert(3, tx(1));
    store.append_batch(records).await.unwrap();
    assert!(spans(&store).len() >= 2, "the test wants several blocks");
    store.ack_up_to(2).unwrap();
    let before = spans(&store);
    assert_eq!(before[0].0, 3, "the first block cut at the mark");
    let raw_before = store.unacked_raw_after(0, 1_000).unwrap();
    let bytes_before = store.ledger().bytes;
    let report = store.thin_telemetry(&|_, _| true, false).unwrap();
    assert!(report.deleted > 200, "{report:?}");
    assert_eq!(
        spans(&store),
        before,
        "blocks keep their keys and sequences"
    );
    assert_eq!(store.ledger().bytes, bytes_before - report.bytes_freed);
    assert_eq!(store.ledger().bytes, store.recount_bytes().unwrap());
    let raw_after = store.unacked_raw_after(0, 1_000).unwrap();
    assert_eq!(raw_after.len(), raw_before.len(), "no sequence disappears");
    for ((s1, v1), (s2, v2)) in raw_before.iter().zip(&raw_after) {
        assert_eq!(s1, s2);
        // A record is either untouched, byte for byte, or a tombstone.
        assert!(v2.is_empty() || v1 == v2, "seq {s1} changed");
    }
    let after = store.unacked_after(0, 1_000, Timestamp::now()).unwrap();
    assert!(after
        .iter()
        .any(|r| matches!(r.body, RecordBody::Transaction(_))));
    let kept: Vec<&Record> = after
        .iter()
        .filter(|r| matches!(r.body, RecordBody::MeterReading(_)))
        .collect();
    assert_eq!(
        kept.first().map(|r| r.seq),
        Some(3),
        "first unacked reading"
    );
    assert_eq!(kept.last().map(|r| r.seq), Some(301), "last reading");
    // Thinned blocks are durable with their ledger.
    store.flush().await.unwrap();
    let image = crash_image(dir.path());
    let reopened = open(image.path(), test_config());
    assert_eq!(reopened.ledger(), store.ledger());
    assert_eq!(reopened.unacked_raw_after(0, 1_000).unwrap(), raw_after);
}

#[tokio::test]
async fn a_crash_between_writes_leaves_whole_blocks_with_their_meta() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    store
        .append_batch((0..20).map(|i| meter(1, i, i)).collect())
        .await
        .unwrap();
    let mut images = Vec::new();
    for w in 0..6 {
        // Written, never flushed: each image holds each block with its meta or neither.
        store
            .write_batch((0..7).map(|i| meter(2, w * 7 + i, i)).collect())
            .unwrap();
        images.push((crash_image(dir.path()), store.ledger().head));
    }
    drop(store);
    for (image, written) in images {
        let reopened = open(image.path(), test_config());
        let head = reopened.ledger().head;
        assert!((20..=written).contains(&head), "head {head} of {written}");
        assert_eq!(seqs(&reopened, 0), (1..=head).collect::<Vec<_>>());
        assert_eq!(spans(&reopened).last().map(|s| s.1), Some(head));
        assert_eq!(reopened.ledger().bytes, reopened.recount_bytes().unwrap());
        let next = reopened.append_batch(vec![meter(3, 0, 0)]).await.unwrap();
        assert_eq!(next, vec![Appended::Stored { seq: head + 1 }]);
    }
}

#[tokio::test]
async fn a_block_above_the_meta_head_is_refused_rather_than_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    store
        .append_batch((0..4).map(|i| meter(1, i, i)).collect())
        .await
        .unwrap();
    // What a non-atomic write would leave: the block of 5..=8 on disk, the meta still at 4.
    let meta = store.inner.outbox.get(codec::META_KEY).unwrap().unwrap();
    store
        .append_batch((4..8).map(|i| meter(1, i, i)).collect())
        .await
        .unwrap();
    store.inner.outbox.insert(codec::META_KEY, meta).unwrap();
    store.flush().await.unwrap();
    let image = crash_image(dir.path());
    drop(store);
    let err = Store::open(image.path(), test_config()).unwrap_err();
    assert!(matches!(err, StoreError::Corrupt { .. }), "{err}");
    assert!(err.to_string().contains("head 4"), "{err}");
}

#[tokio::test]
async fn a_block_larger_than_a_replay_batch_is_split() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    store
        .append_batch((0..10).map(|i| meter(1, i, i)).collect())
        .await
        .unwrap();
    let first_block = spans(&store)[0];
    assert!(first_block.1 >= 6, "{first_block:?}");
    // Batches of 4 walk through the blocks, each read starting inside one.
    let mut after = 0;
    let mut got = Vec::new();
    loop {
        let raw = store.unacked_raw_after(after, 4).unwrap();
        let Some(&(last, _)) = raw.last() else { break };
        assert!(raw.len() <= 4);
        for (i, (seq, v)) in raw.iter().enumerate() {
            assert_eq!(*seq, after + 1 + i as u64);
            let r: Record = serde_json::from_slice(v).unwrap();
            assert_eq!(r.seq, *seq, "the bytes are the record's own");
        }
        got.extend(raw.iter().map(|(s, _)| *s));
        after = last;
    }
    assert_eq!(got, (1..=10).collect::<Vec<_>>());
    assert!(store.unacked_raw_after(3, 0).unwrap().is_empty());
}

#[tokio::test]
async fn records_larger_than_a_block_get_a_block_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    let big = NewRecord::new(
        Timestamp::UNIX_EPOCH,
        RecordBody::Alarm(voltline_protocol::sync::Alarm {
            severity: voltline_protocol::sync::Severity::Warning,
            code: "big".into(),
            message: "x".repeat(RAW_MAX_BYTES * 2),
            pile: None,
        }),
    );
    store
        .append_batch(vec![meter(1, 0, 0), big.clone(), meter(1, 1, 1)])
        .await
        .unwrap();
    assert_eq!(spans(&store), vec![(1, 1), (2, 2), (3, 3)]);
    let back = store.unacked_after(0, 10, Timestamp::now()).unwrap();
    assert_eq!(back[1].body, big.body);
    assert_eq!(store.ledger().bytes, store.recount_bytes().unwrap());
}
