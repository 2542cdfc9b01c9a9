//! Tests of guarantee 6: the bound, telemetry thinning, admission and alarms.

use voltline_protocol::sync::{Record, RecordBody};
use voltline_protocol::tariff::MeterReading as Reading;

use super::tests_outbox::{meter, open, test_config, tx};
use super::*;
use crate::connector::meter::same_segment;
use crate::connector::tests_support::two_period_tariff;
use crate::connector::Admission;

fn small(max_bytes: u64) -> StoreConfig {
    StoreConfig {
        max_bytes,
        ..test_config()
    }
}

fn readings_of(records: &[Record]) -> Vec<Reading> {
    records
        .iter()
        .filter_map(|r| match &r.body {
            RecordBody::MeterReading(m) => Some(Reading::new(m.measured_at, m.import_register)),
            _ => None,
        })
        .collect()
}

fn alarms(store: &Store) -> Vec<String> {
    store
        .unacked_after(0, 1_000_000, jiff::Timestamp::now())
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.body {
            RecordBody::Alarm(a) => Some(a.code),
            _ => None,
        })
        .collect()
}

#[tokio::test]
async fn thinning_keeps_endpoints_boundaries_and_the_price() {
    let tariff = two_period_tariff();
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), test_config());
    // 07:00 to 13:00 every 15 s, crossing 08:00 (peak) and 12:00 (flat); a second session
    // interleaved; a transaction record in the middle.
    let mut records = Vec::new();
    for i in 0..1_440i64 {
        let s = 7 * 3_600 + i * 15;
        records.push(meter(1, s, i * 30));
        records.push(meter(2, s, i * 7));
        if i == 700 {
            records.push(tx(1));
        }
    }
    store.append_batch(records).await.unwrap();
    let before = store
        .unacked_after(0, 1_000_000, jiff::Timestamp::now())
        .unwrap();
    let bytes_before = store.ledger().bytes;
    let report = store
        .thin_telemetry(&|a, b| same_segment(Some(&tariff), a, b), false)
        .unwrap();
    let after = store
        .unacked_after(0, 1_000_000, jiff::Timestamp::now())
        .unwrap();
    assert!(report.deleted > 2_700, "{report:?}");
    assert_eq!(store.ledger().bytes, bytes_before - report.bytes_freed);
    assert!(after
        .iter()
        .any(|r| matches!(r.body, RecordBody::Transaction(_))));
    // Every sequence still goes up, thinned ones as tiny `Thinned` records, so the cloud's
    // contiguous acknowledgement can move past them.
    let seqs: Vec<u64> = after.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        before.iter().map(|r| r.seq).collect::<Vec<_>>(),
        "no gaps"
    );
    let thinned = after
        .iter()
        .filter(|r| r.body == RecordBody::Thinned)
        .count();
    assert_eq!(thinned as u64, report.deleted);
    for n in [1u16, 2] {
        let of = |rs: &[Record]| {
            let mine: Vec<Record> = rs
                .iter()
                .filter(|r| matches!(&r.body, RecordBody::MeterReading(m) if m.serial == crate::connector::tests_support::serial(n)))
                .cloned()
                .collect();
            readings_of(&mine)
        };
        let (all, kept) = (of(&before), of(&after));
        assert_eq!(kept.first(), all.first(), "first reading kept");
        assert_eq!(kept.last(), all.last(), "last reading kept");
        assert_eq!(tariff.cost(&kept).unwrap(), tariff.cost(&all).unwrap());
    }
}

#[tokio::test]
async fn near_bound_refuses_sessions_and_raises_an_alarm() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small(100_000));
    assert_eq!(store.admission(), Admission::Open);
    let mut i = 0;
    while store.level() < Level::Refuse {
        store.append_batch(vec![meter(1, i, i)]).await.unwrap();
        i += 1;
        assert!(i < 10_000);
    }
    assert_eq!(store.admission(), Admission::Refuse);
    assert_eq!(alarms(&store), vec!["store_thinning", "store_near_bound"]);
    // Once is enough: no second alarm while the level holds.
    store.append_batch(vec![meter(1, i, i)]).await.unwrap();
    assert_eq!(alarms(&store).len(), 2);
    // The cloud catches up: sessions are admitted again.
    store.ack_up_to(store.ledger().head).unwrap();
    assert_eq!(store.admission(), Admission::Open);
}

#[tokio::test]
async fn billing_records_are_never_dropped_at_the_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small(50_000));
    let mut i = 0;
    while store.level() < Level::Full {
        store.append_batch(vec![meter(1, i, i)]).await.unwrap();
        i += 1;
    }
    let out = store
        .append_batch(vec![meter(1, i, i), tx(7), meter(1, i + 1, i + 1)])
        .await
        .unwrap();
    assert_eq!(out[0], Appended::Dropped);
    assert!(matches!(out[1], Appended::Stored { .. }));
    assert_eq!(out[2], Appended::Dropped);
    assert_eq!(store.dropped_telemetry(), 2);
    assert!(alarms(&store).contains(&"store_full".to_owned()));
    assert!(store
        .transaction_seq(&crate::connector::tests_support::serial(7))
        .unwrap()
        .is_some());
}

#[tokio::test]
async fn maintain_thins_with_the_cached_tariff_until_below_the_threshold() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small(400_000));
    let limits = SiteLimits {
        offline_session_limit: voltline_protocol::Money::ZERO,
        max_site_power: None,
    };
    let config = SiteConfig::new(1, Some(two_period_tariff()), vec![], limits).unwrap();
    store.put_site_config(config).await.unwrap();
    assert_eq!(
        store.maintain().unwrap(),
        None,
        "nothing to do below the threshold"
    );
    let mut i = 0;
    while store.level() < Level::Thin {
        let batch: Vec<NewRecord> = (0..50)
            .map(|k| meter(1, (i + k) * 15, (i + k) * 10))
            .collect();
        store.append_batch(batch).await.unwrap();
        i += 50;
    }
    let report = store.maintain().unwrap().unwrap();
    assert!(report.deleted > 0);
    assert!(store.level() < Level::Thin);
}

#[tokio::test]
async fn group_committer_thins_when_the_outbox_nears_its_bound() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path(), small(400_000));
    let config = GroupCommitConfig {
        thin_every_records: 100,
        ..GroupCommitConfig::default()
    };
    let (committer, task) = GroupCommitter::spawn(store.clone(), config);
    // One session, all in one tariff period (no tariff cached: quarter-hour segments; one
    // reading a second for 14 minutes stays in one).
    let mut i = 0;
    while store.level() < Level::Thin {
        committer
            .append_durable(vec![meter(1, i, i * 10)])
            .await
            .unwrap();
        i += 1;
        assert!(i < 5_000);
    }
    let started = std::time::Instant::now();
    loop {
        committer
            .append_durable(vec![meter(1, i, i * 10)])
            .await
            .unwrap();
        i += 1;
        if store.level() < Level::Thin {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(10),
            "never thinned"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    drop(committer);
    task.await.unwrap();
}
