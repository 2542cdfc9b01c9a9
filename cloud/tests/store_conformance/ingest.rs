//! Ingest cases: dedup, contiguous acks, transactions, command results.

use super::*;

pub(crate) fn batch(s: &str, seqs: impl IntoIterator<Item = u64>) -> RecordBatch {
    RecordBatch::new(site(s), seqs.into_iter().map(|q| reading(q, 100)).collect())
}

pub(crate) async fn ingest_deduplicates_and_acks_the_contiguous_prefix(ctx: &Ctx) {
    let s = &ctx.store;
    seed(s, "s-1", 100).await;
    let ing = |b: RecordBatch| async move { s.ingest(&site("s-1"), &b).await.unwrap() };
    let out = ing(batch("s-1", 1..=5)).await;
    assert_eq!((out.ack.up_to_seq, out.fresh, out.duplicates), (5, 5, 0));
    let out = ing(batch("s-1", 1..=5)).await;
    assert_eq!(
        (out.ack.up_to_seq, out.fresh, out.duplicates),
        (5, 0, 5),
        "a duplicate batch changes nothing"
    );
    let out = ing(batch("s-1", 8..=10)).await;
    assert_eq!(
        (out.ack.up_to_seq, out.fresh),
        (5, 3),
        "a gap holds the ack back"
    );
    let out = ing(batch("s-1", 9..=12)).await;
    assert_eq!((out.ack.up_to_seq, out.fresh, out.duplicates), (5, 2, 2));
    let out = ing(batch("s-1", 4..=7)).await;
    assert_eq!(
        (out.ack.up_to_seq, out.fresh, out.duplicates),
        (12, 2, 2),
        "filling the gap acks the run behind it"
    );
    assert_eq!(s.acked_seq(&site("s-1")).await.unwrap(), 12);
    assert_eq!(s.count_meter_readings(&site("s-1")).await.unwrap(), 12);

    // Contract violations are refused before anything is stored.
    let other = s.ingest(&site("s-2"), &batch("s-1", [13])).await;
    assert!(
        matches!(other, Err(StoreError::Invalid { .. })),
        "{other:?}"
    );
    let empty = s
        .ingest(&site("s-1"), &RecordBatch::new(site("s-1"), vec![]))
        .await;
    assert!(matches!(empty, Err(StoreError::Invalid { .. })));
    let unknown = s.ingest(&site("ghost"), &batch("ghost", [1])).await;
    assert!(
        matches!(unknown, Err(StoreError::NotFound { .. })),
        "{unknown:?}"
    );
    // Events of other kinds are stored and counted like readings.
    let events = RecordBatch::new(
        site("s-1"),
        vec![
            Record {
                seq: 13,
                at: t0(),
                body: RecordBody::ConnectorStatus(ConnectorStatus {
                    pile: pile(100),
                    connector: conn(1),
                    state: ConnectorState::Charging,
                }),
            },
            Record {
                seq: 14,
                at: t0(),
                body: RecordBody::Alarm(Alarm {
                    severity: Severity::Warning,
                    code: "store_near_bound".into(),
                    message: "90 %".into(),
                    pile: None,
                }),
            },
        ],
    );
    assert_eq!(
        s.ingest(&site("s-1"), &events).await.unwrap().ack.up_to_seq,
        14
    );
    // Readings the edge thinned at its disk bound arrive as `thinned` records: nothing is
    // stored for them, but the acknowledgement moves over their sequences.
    let thinned = RecordBatch::new(
        site("s-1"),
        (15..=17)
            .map(|seq| Record {
                seq,
                at: t0(),
                body: RecordBody::Thinned,
            })
            .chain([reading(18, 100)])
            .collect(),
    );
    assert_eq!(
        s.ingest(&site("s-1"), &thinned)
            .await
            .unwrap()
            .ack
            .up_to_seq,
        18
    );
    assert_eq!(s.count_meter_readings(&site("s-1")).await.unwrap(), 13);
}

pub(crate) async fn ingest_acks_correctly_under_random_batch_orderings(ctx: &Ctx) {
    let s = ctx.store.clone();
    seed(&s, "s-0", 100).await;
    let handle = tokio::runtime::Handle::current();
    let cases = if ctx.backend() == "postgres" { 12 } else { 24 };
    let mut runner = TestRunner::new(Config {
        cases,
        failure_persistence: None,
        ..Config::default()
    });
    let case_no = std::sync::atomic::AtomicU32::new(0);
    // Each batch is a contiguous run or a sparse subset (bits of `mask`) of lo..=hi.
    let strategy = (
        1u64..80,
        prop::collection::vec((1u64..80, 1u64..80, any::<u64>(), any::<bool>()), 1..12),
    );
    runner
        .run(&strategy, |(n, cuts)| {
            let n_case = case_no.fetch_add(1, std::sync::atomic::Ordering::Relaxed) + 1;
            let site_name = format!("p-{n_case}");
            let store = s.clone();
            tokio::task::block_in_place(|| {
                handle.block_on(async {
                    store
                        .create_site(&NewSite {
                            id: site(&site_name),
                            operator: op("op-1"),
                            name: "prop".into(),
                            time_zone: "UTC".into(),
                        })
                        .await
                        .unwrap();
                    let mut batches: Vec<Vec<u64>> = cuts
                        .iter()
                        .map(|&(a, b, mask, sparse)| {
                            let (lo, hi) = (a.min(b).min(n), a.max(b).min(n));
                            let v: Vec<u64> = (lo..=hi)
                                .filter(|q| !sparse || mask & (1 << (q % 64)) != 0)
                                .collect();
                            if v.is_empty() {
                                vec![lo]
                            } else {
                                v
                            }
                        })
                        .collect();
                    batches.push((1..=n).collect());
                    let mut received = BTreeSet::new();
                    for seqs in batches {
                        let out = store
                            .ingest(&site(&site_name), &batch(&site_name, seqs.clone()))
                            .await
                            .unwrap();
                        received.extend(seqs);
                        let truth = (1..).take_while(|q| received.contains(q)).count() as u64;
                        prop_assert_eq!(out.ack.up_to_seq, truth);
                    }
                    prop_assert_eq!(
                        store.count_meter_readings(&site(&site_name)).await.unwrap(),
                        n
                    );
                    Ok(())
                })
            })
        })
        .unwrap();
}

pub(crate) async fn transactions_are_stored_once_per_pile_and_serial(ctx: &Ctx) {
    let s = &ctx.store;
    seed(s, "s-1", 100).await;
    let (order, start) = order_with_start("s-1", 100, 1, Timestamp::now() + 1.minute());
    s.create_order(&order, &start).await.unwrap();
    let sn = order.transaction_serial.unwrap();
    let first = RecordBatch::new(
        site("s-1"),
        vec![
            reading(1, 100),
            transaction(2, 100, sn, Some(order.id.clone())),
        ],
    );
    let out = s.ingest(&site("s-1"), &first).await.unwrap();
    assert_eq!((out.ack.up_to_seq, out.duplicate_transactions), (2, 0));
    assert_eq!(
        s.get_order(&order.id).await.unwrap().state,
        OrderState::Completed
    );
    // The edge re-sends the record under a new sequence (it never saw the ack).
    let resent = RecordBatch::new(
        site("s-1"),
        vec![transaction(3, 100, sn, Some(order.id.clone()))],
    );
    let out = s.ingest(&site("s-1"), &resent).await.unwrap();
    assert_eq!(
        (out.ack.up_to_seq, out.fresh, out.duplicate_transactions),
        (3, 1, 1)
    );
    assert_eq!(s.count_transactions(&site("s-1")).await.unwrap(), 1);
    // A record of a pile registered at another site is refused; nothing is committed.
    seed(s, "s-2", 200).await;
    let foreign = RecordBatch::new(
        site("s-1"),
        vec![reading(4, 100), transaction(5, 200, serial(200, 1), None)],
    );
    assert!(matches!(
        s.ingest(&site("s-1"), &foreign).await,
        Err(StoreError::Invalid { .. })
    ));
    assert_eq!(s.acked_seq(&site("s-1")).await.unwrap(), 3);
    assert_eq!(s.count_meter_readings(&site("s-1")).await.unwrap(), 1);
}

pub(crate) async fn command_results_apply_to_commands_and_orders(ctx: &Ctx) {
    let s = &ctx.store;
    seed(s, "s-1", 100).await;
    seed(s, "s-2", 200).await;
    let (order, start) = order_with_start("s-1", 100, 1, Timestamp::now() + 1.minute());
    s.create_order(&order, &start).await.unwrap();
    let result = |seq, outcome| Record {
        seq,
        at: t0(),
        body: RecordBody::CommandResult(CommandResult {
            command_id: start.id.clone(),
            outcome,
        }),
    };
    // Another site's edge cannot touch this command.
    let out = s
        .ingest(
            &site("s-2"),
            &RecordBatch::new(site("s-2"), vec![result(1, CommandOutcome::Accepted)]),
        )
        .await
        .unwrap();
    assert_eq!(out.command_results_applied, 0);
    assert_eq!(
        s.get_command(&start.id).await.unwrap().state,
        CommandState::Queued
    );
    // Accepted arrives before Received (batches out of order): accepted wins, received is ignored.
    let out = s
        .ingest(
            &site("s-1"),
            &RecordBatch::new(site("s-1"), vec![result(2, CommandOutcome::Accepted)]),
        )
        .await
        .unwrap();
    assert_eq!((out.ack.up_to_seq, out.command_results_applied), (0, 1));
    assert_eq!(
        s.get_command(&start.id).await.unwrap().state,
        CommandState::Accepted
    );
    assert_eq!(
        s.get_order(&order.id).await.unwrap().state,
        OrderState::Charging
    );
    let out = s
        .ingest(
            &site("s-1"),
            &RecordBatch::new(site("s-1"), vec![result(1, CommandOutcome::Received)]),
        )
        .await
        .unwrap();
    assert_eq!((out.ack.up_to_seq, out.command_results_applied), (2, 0));
    let late = RecordBatch::new(
        site("s-1"),
        vec![result(
            3,
            CommandOutcome::Failed {
                reason: "late".into(),
            },
        )],
    );
    assert_eq!(
        s.ingest(&site("s-1"), &late)
            .await
            .unwrap()
            .command_results_applied,
        0
    );
    assert_eq!(
        s.get_command(&start.id).await.unwrap().state,
        CommandState::Accepted
    );
    assert_eq!(
        s.get_order(&order.id).await.unwrap().state,
        OrderState::Charging
    );
}
