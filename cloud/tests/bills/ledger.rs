//! Sessions settled through the real ledger, split by the rule in force at their start and
//! billed per operator to the cent.

use crate::*;

pub(crate) async fn settled_and_billed_through_the_ledger_to_the_cent(ctx: &Ctx) {
    let store = &ctx.store;
    let sh = "Asia/Shanghai";
    let be = "Europe/Berlin";
    operator_site(store, "op-1", "s-1", sh, 1).await;
    operator_site(store, "op-2", "s-2", be, 2).await;
    operator_site(store, "op-2", "s-3", be, 3).await;
    operator_site(store, "op-3", "s-4", sh, 4).await;
    store
        .create_account(&acct("d-1"), None, "Driver One")
        .await
        .unwrap();
    let now = Timestamp::now();
    // op-1: 5 % of electricity + 20 % of service until v2, effective 100 minutes ago:
    // 0.03/kWh + 0.20/session, at least 0.80.
    let rule = |o: &str, s: Option<&str>, from: Timestamp, terms: SharingTerms| NewRule {
        operator: op(o),
        site: s.map(site),
        effective_from: from,
        terms,
    };
    create_rule(
        store,
        &rule(
            "op-1",
            None,
            long_ago(),
            SharingTerms {
                energy_fee_pct: pct(dec!(5)),
                service_fee_pct: pct(dec!(20)),
                ..SharingTerms::default()
            },
        ),
    )
    .await
    .unwrap();
    let v2 = create_rule(
        store,
        &rule(
            "op-1",
            None,
            now - SignedDuration::from_mins(100),
            SharingTerms {
                per_kwh: cents(3),
                per_session: cents(20),
                min_platform_fee: cents(80),
                ..SharingTerms::default()
            },
        ),
    )
    .await
    .unwrap();
    assert_eq!(v2.version, 2);
    // op-2: 50 % of service for its sites, but site s-2 has its own 33.333 %.
    create_rule(
        store,
        &rule(
            "op-2",
            None,
            long_ago(),
            SharingTerms {
                service_fee_pct: pct(dec!(50)),
                ..SharingTerms::default()
            },
        ),
    )
    .await
    .unwrap();
    create_rule(
        store,
        &rule(
            "op-2",
            Some("s-2"),
            long_ago(),
            SharingTerms {
                service_fee_pct: pct(dec!(33.333)),
                ..SharingTerms::default()
            },
        ),
    )
    .await
    .unwrap();
    // A site of another operator is refused.
    assert!(matches!(
        create_rule(
            store,
            &rule("op-1", Some("s-2"), now, SharingTerms::default())
        )
        .await,
        Err(BillsError::Invalid { .. })
    ));
    let e = env(store).await;
    e.funds
        .open_wallet(&acct("d-1"), Money::ZERO)
        .await
        .unwrap();
    e.funds
        .top_up(&PaymentRequest {
            account: acct("d-1"),
            amount: cents(100_000),
            provider: "test".into(),
            reference: "seed".into(),
        })
        .await
        .unwrap();
    let ago = |zone: &str, mins: i64| local(zone, now - SignedDuration::from_mins(mins));
    let mut records: Vec<(&str, Record)> = Vec::new();
    // op-1: started before v2 (v1: 0.50 + 1.00 = 1.50), after v2 (max(0.30 + 0.20, 0.80) = 0.80),
    // and a late record from 2026-11-20 (v1).
    records.push((
        "s-1",
        session(store, &e, "s-1", 1, 1, ago(sh, 120), ago(sh, 110), 10).await,
    ));
    records.push((
        "s-1",
        session(store, &e, "s-1", 1, 2, ago(sh, 90), ago(sh, 80), 10).await,
    ));
    records.push((
        "s-1",
        session(
            store,
            &e,
            "s-1",
            1,
            3,
            date(2026, 11, 20).at(7, 0, 0, 0),
            date(2026, 11, 20).at(8, 0, 0, 0),
            10,
        )
        .await,
    ));
    // op-2: site rule (round(1.66665) = 1.67) and operator rule (2.50).
    records.push((
        "s-2",
        session(store, &e, "s-2", 2, 4, ago(be, 60), ago(be, 50), 10).await,
    ));
    records.push((
        "s-3",
        session(store, &e, "s-3", 3, 5, ago(be, 60), ago(be, 50), 10).await,
    ));
    // op-3: no rule, the default 10 % of the service fee (0.50).
    records.push((
        "s-4",
        session(store, &e, "s-4", 4, 6, ago(sh, 60), ago(sh, 50), 10).await,
    ));
    for (s, r) in records {
        store
            .ingest(&site(s), &RecordBatch::new(site(s), vec![r]))
            .await
            .unwrap();
    }
    e.settler.cache().warm(store).await.unwrap();
    let report = e.settler.settle_pending(100).await.unwrap();
    assert_eq!(
        report.settled(),
        6,
        "{}: {:?}",
        ctx.backend(),
        report.outcomes
    );
    let a = audit(store).await.unwrap();
    a.check().unwrap();
    let payable = |o: &str| {
        a.available(&LedgerAccountId::OperatorPayable(op(o)))
            .unwrap()
    };
    assert_eq!(
        payable("op-1"),
        cents(1_350 + 1_420 + 1_350),
        "{}",
        ctx.backend()
    );
    assert_eq!(payable("op-2"), cents(1_333 + 1_250));
    assert_eq!(payable("op-3"), cents(1_450));
    let revenue = a.available(&LedgerAccountId::PlatformRevenue).unwrap();
    assert_eq!(revenue, cents(150 + 80 + 150 + 167 + 250 + 50));
    // The pure split agrees with what was posted.
    let money = SessionMoney {
        energy: Energy::from_wh(10_000),
        energy_fee: cents(1_000),
        service_fee: cents(500),
        export_energy: Energy::ZERO,
        export_value: Money::ZERO,
    };
    let s2 = SharingTerms {
        service_fee_pct: pct(dec!(33.333)),
        ..SharingTerms::default()
    };
    assert_eq!(
        split(&s2, &money, Energy::ZERO).unwrap().platform_fee,
        cents(167)
    );

    // The next day (and the one after) is cut for every operator; bills equal the ledger.
    let job = BillJob::new(store.clone(), config(), "instance-a");
    let pass = job
        .run_pass(now + SignedDuration::from_hours(49))
        .await
        .unwrap();
    assert!(pass.failures.is_empty(), "{:?}", pass.failures);
    assert!(pass.issued.len() >= 6, "{:?}", pass.issued);
    for (o, want_payable, want_sessions) in [
        ("op-1", payable("op-1"), 3),
        ("op-2", payable("op-2"), 2),
        ("op-3", payable("op-3"), 1),
    ] {
        let (sessions, gross, fees, operator_payable) = bill_totals(store, o).await;
        assert_eq!(sessions, want_sessions, "{o}");
        assert_eq!(
            operator_payable, want_payable,
            "{o}: bill payable equals the ledger"
        );
        assert_eq!(gross, fees + operator_payable, "{o}");
        for (op_id, day, _) in pass.issued.iter().filter(|(x, _, _)| x.as_str() == o) {
            let r = check_day(store, op_id, *day).await.unwrap();
            assert!(r.is_clean(), "{o} {day}: {:?}", r.differences);
            let rr = rerun(store, op_id, *day).await.unwrap();
            assert!(rr.reproduced, "{o} {day}: {:?}", rr.differences);
        }
    }
    let fees: Money = [
        bill_totals(store, "op-1").await.2,
        bill_totals(store, "op-2").await.2,
        bill_totals(store, "op-3").await.2,
    ]
    .into_iter()
    .sum();
    assert_eq!(
        fees, revenue,
        "platform fees on bills equal platform revenue"
    );
    // The late record is an adjustment line naming its service day.
    let op1 = list_bills(
        store,
        &BillFilter {
            operator: Some(op("op-1")),
            limit: 10,
            ..BillFilter::default()
        },
    )
    .await
    .unwrap();
    let adjustments: Vec<_> = op1
        .iter()
        .flat_map(|b| b.bill.adjustments.clone())
        .collect();
    assert!(
        adjustments
            .iter()
            .any(|l| l.service_day == date(2026, 11, 20) && l.totals.sessions == 1),
        "{adjustments:?}"
    );
    // A second pass issues nothing new.
    let again = job
        .run_pass(now + SignedDuration::from_hours(49))
        .await
        .unwrap();
    assert!(again.issued.is_empty(), "{:?}", again.issued);
}
