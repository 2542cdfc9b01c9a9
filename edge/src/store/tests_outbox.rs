//! Tests of guarantees 1-5, 7 and 8 of the store (see the module doc).
//!
//! A "crash image" is a copy of the store's directory taken while the store is still open and
//! without a clean shutdown: exactly what a power cut would leave on disk. (sled holds a lock
//! on its files, so a second open in the same process needs the copy.)

use std::path::Path;

use jiff::SignedDuration;
use rust_decimal_macros::dec;
use voltline_protocol::domain::SiteId;
use voltline_protocol::domain::{Energy, Money};
use voltline_protocol::sync::{
    Authorisation, Command, CommandEnvelope, MeterReading, RecordBody, TransactionUp, V1,
};

use super::*;
use crate::connector::tests_support::{
    cmd_id, conn, id, order, pile, serial, t, two_period_tariff, tx_record,
};
use crate::connector::Saved;

pub(crate) fn test_config() -> StoreConfig {
    StoreConfig {
        background_flush_ms: None,
        cache_bytes: 8 << 20,
        ..StoreConfig::default()
    }
}

/// Opens a store; after a drop in the same process, sled's pool threads may hold the file
/// lock for a moment, so a reopen retries briefly.
pub(crate) fn open(dir: &Path, config: StoreConfig) -> Store {
    let mut tries = 0;
    loop {
        match Store::open(dir, config.clone()) {
            Ok(store) => return store,
            Err(e) if tries < 100 && e.to_string().contains("could not acquire lock") => {
                tries += 1;
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

/// Copies a store directory as it is on disk now.
pub(crate) fn crash_image(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    copy_dir(from, to.path());
    to
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            std::fs::create_dir_all(&target).unwrap();
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub(crate) fn meter(n: u16, s: i64, wh: i64) -> NewRecord {
    NewRecord::new(
        t(s),
        RecordBody::MeterReading(MeterReading {
            pile: pile(),
            connector: conn(),
            serial: serial(n),
            measured_at: t(s),
            import_register: Energy::from_wh(wh),
            export_register: None,
            power: None,
            soc: None,
            amount: None,
        }),
    )
}

pub(crate) fn tx(n: u16) -> NewRecord {
    NewRecord::new(
        t(0),
        RecordBody::Transaction(TransactionUp {
            pile: pile(),
            authorisation: Authorisation::Pile,
            edge_cost: None,
            record: tx_record(n),
        }),
    )
}

fn seqs(store: &Store) -> Vec<u64> {
    store
        .unacked_after(0, 1_000_000, jiff::Timestamp::now())
        .unwrap()
        .iter()
        .map(|r| r.seq)
        .collect()
}

#[tokio::test]
async fn durable_appends_survive_a_crash() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    let records: Vec<NewRecord> = (0..100).map(|i| meter(1, i, i * 10)).collect();
    let out = store.append_batch(records.clone()).await.unwrap();
    assert_eq!(out.last(), Some(&Appended::Stored { seq: 100 }));
    let image = crash_image(dir.path());
    std::mem::forget(store);
    let reopened = open(image.path(), test_config());
    let back = reopened
        .unacked_after(0, 1_000, jiff::Timestamp::now())
        .unwrap();
    assert_eq!(back.len(), 100);
    for (i, (r, orig)) in back.iter().zip(&records).enumerate() {
        assert_eq!(r.seq, i as u64 + 1);
        assert_eq!(r.body, orig.body);
    }
}

#[tokio::test]
async fn sequences_continue_after_a_crash_without_reuse() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    store
        .append_batch((0..10).map(|i| meter(1, i, i)).collect())
        .await
        .unwrap();
    // Written but never flushed: may or may not survive, but must not corrupt the rest.
    store
        .write_batch((10..15).map(|i| meter(1, i, i)).collect())
        .unwrap();
    let image = crash_image(dir.path());
    drop(store);
    let reopened = open(image.path(), test_config());
    let head = reopened.ledger().head;
    assert!((10..=15).contains(&head), "head {head}");
    assert_eq!(seqs(&reopened), (1..=head).collect::<Vec<_>>());
    let next = reopened.append_batch(vec![meter(1, 99, 99)]).await.unwrap();
    assert_eq!(next, vec![Appended::Stored { seq: head + 1 }]);
}

#[tokio::test]
async fn sequences_continue_after_trimming_everything() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = open(dir.path(), test_config());
        store
            .append_batch((0..5).map(|i| meter(1, i, i)).collect())
            .await
            .unwrap();
        assert_eq!(store.ack_up_to(5).unwrap(), 5);
        assert_eq!(store.ledger().bytes, 0);
        store.flush().await.unwrap();
    }
    let store = open(dir.path(), test_config());
    assert!(seqs(&store).is_empty());
    let next = store.append_batch(vec![meter(1, 9, 9)]).await.unwrap();
    assert_eq!(next, vec![Appended::Stored { seq: 6 }]);
}

#[tokio::test]
async fn resent_transaction_record_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    assert_eq!(
        store.append_batch(vec![tx(1)]).await.unwrap(),
        vec![Appended::Stored { seq: 1 }]
    );
    let again = store
        .append_batch(vec![tx(1), meter(2, 0, 0)])
        .await
        .unwrap();
    assert_eq!(
        again,
        vec![Appended::Duplicate { seq: 1 }, Appended::Stored { seq: 2 }]
    );
    let twice = store.append_batch(vec![tx(2), tx(2)]).await.unwrap();
    assert_eq!(
        twice,
        vec![Appended::Stored { seq: 3 }, Appended::Duplicate { seq: 3 }]
    );
    // Acknowledged and trimmed by the cloud: still recognised.
    store.ack_up_to(3).unwrap();
    let image = crash_image(dir.path());
    drop(store);
    let reopened = open(image.path(), test_config());
    assert_eq!(reopened.transaction_seq(&serial(1)).unwrap(), Some(1));
    let after = reopened.append_batch(vec![tx(1)]).await.unwrap();
    assert_eq!(after, vec![Appended::Duplicate { seq: 1 }]);
}

#[tokio::test]
async fn old_serials_can_be_forgotten() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    store
        .append_batch(vec![tx(1), meter(1, 0, 0), tx(2)])
        .await
        .unwrap();
    assert_eq!(store.purge_serials_below(3).unwrap(), 1);
    assert_eq!(store.transaction_seq(&serial(1)).unwrap(), None);
    assert_eq!(store.transaction_seq(&serial(2)).unwrap(), Some(3));
}

#[tokio::test]
async fn ack_only_moves_forward() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    store
        .append_batch((0..10).map(|i| meter(1, i, i)).collect())
        .await
        .unwrap();
    let full = store.ledger().bytes;
    assert_eq!(store.ack_up_to(5).unwrap(), 5);
    assert!(store.ledger().bytes < full);
    assert_eq!(store.ack_up_to(3).unwrap(), 0);
    assert_eq!(store.ack_up_to(5).unwrap(), 0);
    assert_eq!(seqs(&store), (6..=10).collect::<Vec<_>>());
    store.flush().await.unwrap();
    let image = crash_image(dir.path());
    drop(store);
    let reopened = open(image.path(), test_config());
    assert_eq!(reopened.ledger().acked, 5);
    assert_eq!(seqs(&reopened), (6..=10).collect::<Vec<_>>());
}

/// The counted bytes of the outbox, recomputed from what is stored.
fn counted(store: &Store) -> u64 {
    store.recount_bytes().unwrap()
}

#[tokio::test]
async fn interrupted_trim_is_finished_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    // Two writes, two blocks: 1..=5 and 6..=10.
    for half in [0..5, 5..10] {
        store
            .append_batch(half.map(|i| meter(1, i, i)).collect())
            .await
            .unwrap();
    }
    // A crash right after the mark was written, before any record was removed.
    let marked = Ledger {
        acked: 5,
        ..store.ledger()
    };
    store
        .inner
        .outbox
        .insert(codec::META_KEY, &codec::encode_meta(&marked))
        .unwrap();
    store.flush().await.unwrap();
    let image = crash_image(dir.path());
    drop(store);
    let reopened = open(image.path(), test_config());
    assert_eq!(seqs(&reopened), (6..=10).collect::<Vec<_>>());
    let blocks = reopened.stored_blocks().unwrap();
    assert_eq!(blocks.len(), 1, "{blocks:?}");
    assert_eq!((blocks[0].0, blocks[0].1), (6, 5));
    assert_eq!(reopened.ledger().bytes, counted(&reopened));
}

#[tokio::test]
async fn ack_beyond_head_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    store.append_batch(vec![meter(1, 0, 0)]).await.unwrap();
    assert!(matches!(
        store.ack_up_to(2),
        Err(StoreError::AckBeyondHead { acked: 2, head: 1 })
    ));
    assert_eq!(store.ledger().acked, 0);
}

#[tokio::test]
async fn replay_is_ordered_and_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    store
        .append_batch((0..1_000).map(|i| meter(1, i, i)).collect())
        .await
        .unwrap();
    let mut after = 0;
    let mut sizes = Vec::new();
    loop {
        let batch = store
            .unacked_after(after, 300, jiff::Timestamp::now())
            .unwrap();
        let Some(last) = batch.last() else { break };
        for (i, r) in batch.iter().enumerate() {
            assert_eq!(r.seq, after + 1 + i as u64);
        }
        after = last.seq;
        sizes.push(batch.len());
    }
    assert_eq!(sizes, vec![300, 300, 300, 100]);
    let raw = store.unacked_raw_after(0, 1).unwrap();
    let decoded: voltline_protocol::sync::Record = serde_json::from_slice(&raw[0].1).unwrap();
    assert_eq!(decoded.seq, 1);
}

#[tokio::test]
async fn group_commit_acks_only_after_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    let (committer, task) = GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
    let mut joins = Vec::new();
    for c in 0..50u16 {
        let committer = committer.clone();
        joins.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..20 {
                let out = committer
                    .append_durable(vec![meter(c + 1, i, i)])
                    .await
                    .unwrap();
                acked.push(out[0].seq().unwrap());
            }
            acked
        }));
    }
    let mut acked = Vec::new();
    for j in joins {
        acked.extend(j.await.unwrap());
    }
    // The image is taken right after the last answer, with no flush of our own.
    let image = crash_image(dir.path());
    drop(committer);
    task.await.unwrap();
    let reopened = open(image.path(), test_config());
    let present: std::collections::HashSet<u64> = seqs(&reopened).into_iter().collect();
    assert_eq!(acked.len(), 1_000);
    assert!(acked.iter().all(|s| present.contains(s)));
}

fn envelope(id: &str, expires_s: i64) -> CommandEnvelope {
    CommandEnvelope {
        v: V1,
        id: cmd_id(id),
        site: SiteId::new("site-1").unwrap(),
        issued_at: t(0),
        expires_at: t(expires_s),
        command: Command::StopCharging {
            pile: pile(),
            connector: conn(),
            order: order(),
        },
    }
}

#[tokio::test]
async fn command_delivered_twice_is_stored_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    assert_eq!(
        store
            .receive_command(envelope("c1", 60), t(1))
            .await
            .unwrap(),
        Received::New
    );
    store
        .set_command_status(&cmd_id("c1"), CommandStatus::Done)
        .unwrap();
    let again = store
        .receive_command(envelope("c1", 60), t(2))
        .await
        .unwrap();
    assert_eq!(again, Received::Duplicate(CommandStatus::Done));
    assert_eq!(store.inbox_len(), 1);
    assert!(store.open_commands(10).unwrap().is_empty());
    // Kept for dedup until a day after its expiry, then purged.
    assert_eq!(
        store
            .purge_commands(t(120), SignedDuration::from_hours(24))
            .unwrap(),
        0
    );
    assert_eq!(
        store
            .purge_commands(t(90_000), SignedDuration::from_hours(24))
            .unwrap(),
        1
    );
    assert_eq!(store.inbox_len(), 0);
}

#[tokio::test]
async fn inbox_is_bounded() {
    let dir = tempfile::tempdir().unwrap();
    let config = StoreConfig {
        max_inbox_commands: 3,
        ..test_config()
    };
    let store = open(dir.path(), config);
    for i in 0..3 {
        store
            .receive_command(envelope(&format!("c{i}"), 60), t(1))
            .await
            .unwrap();
    }
    let full = store.receive_command(envelope("c9", 60), t(1)).await;
    assert!(matches!(full, Err(StoreError::InboxFull { max: 3 })));
    // A redelivery of a held command is still recognised.
    let dup = store
        .receive_command(envelope("c0", 60), t(1))
        .await
        .unwrap();
    assert_eq!(dup, Received::Duplicate(CommandStatus::Pending));
}

#[tokio::test]
async fn older_config_is_ignored_and_config_survives_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let limits = SiteLimits {
        offline_session_limit: Money::from_yuan(dec!(50)),
        max_site_power: None,
    };
    let card = CardAuthorisation {
        card: "00000000D14B0A54".parse().unwrap(),
        account: "acct-1".parse().unwrap(),
        offline_limit: Money::from_yuan(dec!(80)),
    };
    let v2 = SiteConfig::new(
        2,
        Some(two_period_tariff()),
        vec![card.clone()],
        limits.clone(),
    )
    .unwrap();
    let v1 = SiteConfig::new(1, None, vec![], limits).unwrap();
    {
        let store = open(dir.path(), test_config());
        assert!(store.put_site_config(v2.clone()).await.unwrap());
        assert!(!store.put_site_config(v1).await.unwrap());
        assert!(!store.put_site_config(v2.clone()).await.unwrap());
    }
    let store = open(dir.path(), test_config());
    let cached = store.site_config().unwrap();
    assert_eq!(cached.version, 2);
    assert_eq!(cached.tariff, v2.tariff);
    assert_eq!(cached.card(&card.card), Some(&card));
    assert_eq!(
        cached.offline_limit(&card.card),
        Some(Money::from_yuan(dec!(50)))
    );
}

#[tokio::test]
async fn active_sessions_survive_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let session = crate::connector::tests_support::charging_machine()
        .state()
        .session()
        .unwrap()
        .clone();
    {
        let store = open(dir.path(), test_config());
        store.put_session(id(), &session).unwrap();
        store.flush().await.unwrap();
    }
    let store = open(dir.path(), test_config());
    assert_eq!(
        store.sessions().unwrap(),
        vec![(id(), Saved::Session(session.clone()))]
    );
    store.clear_session(id()).unwrap();
    assert!(store.sessions().unwrap().is_empty());
}

#[tokio::test]
async fn an_answered_card_start_survives_reopen_until_its_session_replaces_it() {
    let dir = tempfile::tempdir().unwrap();
    let m = crate::connector::tests_support::card_start_machine();
    let crate::connector::State::StartRequested(start) = m.state().clone() else {
        panic!("{:?}", m.state())
    };
    {
        let store = open(dir.path(), test_config());
        store.put_card_start(id(), &start).unwrap();
        store.flush().await.unwrap();
    }
    let store = open(dir.path(), test_config());
    assert_eq!(
        store.sessions().unwrap(),
        vec![(id(), Saved::CardStart(start.clone()))]
    );
    let session = crate::connector::Session::from_start(start, t(20));
    store.put_session(id(), &session).unwrap();
    assert_eq!(
        store.sessions().unwrap(),
        vec![(id(), Saved::Session(session))]
    );
}

#[tokio::test]
async fn durable_head_moves_only_after_a_flush() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    let mut watch = store.watch_durable();
    assert_eq!(store.durable_head(), 0);
    store
        .write_batch(vec![meter(1, 0, 0), meter(1, 1, 10)])
        .unwrap();
    assert_eq!(store.ledger().head, 2);
    assert_eq!(store.durable_head(), 0, "written but not flushed");
    store.flush().await.unwrap();
    assert_eq!(store.durable_head(), 2);
    assert!(watch.has_changed().unwrap());
    watch.borrow_and_update();
    store.append_batch(vec![meter(1, 2, 20)]).await.unwrap();
    assert_eq!(store.durable_head(), 3);
    // A flush with nothing new does not move the mark (nor wake the watcher).
    store.flush().await.unwrap();
    assert!(watch.has_changed().unwrap());
    watch.borrow_and_update();
    store.flush().await.unwrap();
    assert!(!watch.has_changed().unwrap());
    drop(store);
    let reopened = open(dir.path(), test_config());
    assert_eq!(
        reopened.durable_head(),
        3,
        "a reopened store's records are on disk"
    );
}
