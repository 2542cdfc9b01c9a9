//! Two instances racing for the bill job, and monthly volume tiers read from issued bills.

use crate::*;

pub(crate) async fn two_instances_racing_for_the_job_issue_each_bill_once(ctx: &Ctx) {
    let z = berlin();
    let mut sessions = Vec::new();
    for o in 0..6 {
        let name = format!("op-r{o}");
        berlin_operator(&ctx.store, &name, date(2026, 10, 10)).await;
        for k in 0..40 {
            let day = date(2026, 10, 10 + (k % 4) as i8);
            let end = at(&z, day.at(8 + (k % 10) as i8, 0, 0, 0));
            sessions.push(seeded(
                &format!("r-{o}-{k}"),
                &name,
                &format!("{name}-b-1"),
                end,
                end + SignedDuration::from_mins(2),
                500 + k,
            ));
        }
    }
    seed_sessions(&ctx.store, &sessions, true).await.unwrap();
    let other = ctx.reopen().await; // a second cloud instance: its own pool
    let a = BillJob::new(ctx.store.clone(), config(), "instance-a");
    let b = BillJob::new(other.clone(), config(), "instance-b");
    let now = at(&z, date(2026, 10, 15).at(12, 0, 0, 0));
    let mut issued = Vec::new();
    for _ in 0..3 {
        let (ra, rb) = tokio::join!(a.run_pass(now), b.run_pass(now));
        for r in [ra.unwrap(), rb.unwrap()] {
            assert!(r.failures.is_empty(), "{:?}", r.failures);
            issued.extend(r.issued);
        }
    }
    // 6 operators × 5 days (10th to 14th), each once, whoever won the lease.
    assert_eq!(issued.len(), 30, "{}: {issued:?}", ctx.backend());
    let mut unique = issued.clone();
    unique.sort();
    unique.dedup();
    assert_eq!(unique.len(), 30);
    let mut on_bills = 0;
    for (o, d, id) in &issued {
        on_bills += count_bill_sessions(&ctx.store, id).await.unwrap();
        assert!(check_day(&ctx.store, o, *d).await.unwrap().is_clean());
    }
    assert_eq!(
        on_bills,
        sessions.len() as u64,
        "every session on exactly one bill"
    );

    // Fencing: a holder whose lease expired and was taken over cannot write.
    berlin_operator(&ctx.store, "op-f", date(2026, 10, 20)).await;
    let grant_a = a
        .lease()
        .try_acquire(now)
        .await
        .unwrap()
        .expect("free after the passes");
    assert!(
        b.lease().try_acquire(now).await.unwrap().is_none(),
        "held by a"
    );
    let later = now + a.lease().ttl() + SignedDuration::from_secs(1);
    let grant_b = b
        .lease()
        .try_acquire(later)
        .await
        .unwrap()
        .expect("expired: b takes over");
    assert!(grant_b.token > grant_a.token);
    let settings = voltline_cloud::bills::rules::billing_settings(&ctx.store, &op("op-f"))
        .await
        .unwrap();
    let stale = a
        .issue_with(&grant_a, &settings, date(2026, 10, 20), later)
        .await;
    assert!(
        matches!(stale, Err(BillsError::LeaseLost { .. })),
        "{stale:?}"
    );
    assert!(bill_of_day(&ctx.store, &op("op-f"), date(2026, 10, 20))
        .await
        .unwrap()
        .is_none());
    b.issue_with(&grant_b, &settings, date(2026, 10, 20), later)
        .await
        .unwrap();
    other.close().await;
}

pub(crate) async fn volume_tiers_read_the_months_issued_bills(ctx: &Ctx) {
    let store = &ctx.store;
    store.create_operator(&op("op-t"), "tiers").await.unwrap();
    store
        .create_site(&NewSite {
            id: site("t-1"),
            operator: op("op-t"),
            name: "t".into(),
            time_zone: "UTC".into(),
        })
        .await
        .unwrap();
    // Bills for the first two days of this month (in UTC): 10,000 kWh and 20,000 kWh.
    let today = Timestamp::now().to_zoned_datetime(TimeZone::UTC).date();
    let first = today.first_of_month();
    set_billing_settings(store, &op("op-t"), "UTC", first)
        .await
        .unwrap();
    let day2 = first.tomorrow().unwrap();
    let z = TimeZone::UTC;
    let mut a = seeded(
        "t-a",
        "op-t",
        "t-1",
        at(&z, first.at(10, 0, 0, 0)),
        at(&z, first.at(10, 1, 0, 0)),
        1_000,
    );
    a.energy_mwh = 10_000_000_000; // 10,000 kWh
    let mut b = seeded(
        "t-b",
        "op-t",
        "t-1",
        at(&z, day2.at(10, 0, 0, 0)),
        at(&z, day2.at(10, 1, 0, 0)),
        1_000,
    );
    b.energy_mwh = 20_000_000_000;
    seed_sessions(store, &[a, b], true).await.unwrap();
    let job = BillJob::new(store.clone(), config(), "instance-a");
    let later = Timestamp::now() + SignedDuration::from_hours(24 * 3);
    assert!(
        matches!(
            job.issue_day(&op("op-t"), today.tomorrow().unwrap(), Timestamp::now())
                .await,
            Err(BillsError::Invalid { .. })
        ),
        "a day that has not ended is not cut"
    );
    job.issue_day(&op("op-t"), first, later).await.unwrap();
    job.issue_day(&op("op-t"), day2, later).await.unwrap();
    create_rule(
        store,
        &NewRule {
            operator: op("op-t"),
            site: None,
            effective_from: long_ago(),
            terms: SharingTerms {
                service_fee_pct: pct(dec!(30)),
                tiers: vec![VolumeTier {
                    from: Energy::from_wh(25_000_000),
                    service_fee_pct: pct(dec!(10)),
                }],
                ..SharingTerms::default()
            },
        },
    )
    .await
    .unwrap();
    let cache = RuleCache::new(store.clone());
    let rules = cache.for_operator(&op("op-t")).await.unwrap();
    let on = |d: Date| at(&z, d.at(12, 0, 0, 0));
    assert_eq!(rules.month_volume(on(first)), Energy::ZERO);
    assert_eq!(rules.month_volume(on(day2)), Energy::from_wh(10_000_000));
    let day3 = day2.tomorrow().unwrap();
    assert_eq!(rules.month_volume(on(day3)), Energy::from_wh(30_000_000));
    let money = SessionMoney {
        energy: Energy::from_wh(10_000),
        energy_fee: cents(1_000),
        service_fee: cents(500),
        export_energy: Energy::ZERO,
        export_value: Money::ZERO,
    };
    let (s_day2, _) = rules
        .split(&op("op-t"), &site("t-1"), on(day2), &money)
        .unwrap()
        .unwrap();
    let (s_day3, v) = rules
        .split(&op("op-t"), &site("t-1"), on(day3), &money)
        .unwrap()
        .unwrap();
    assert_eq!(s_day2.platform_fee, cents(150), "30 % below the tier");
    assert_eq!(
        s_day3.platform_fee,
        cents(50),
        "10 % from 25,000 kWh in the month"
    );
    assert_eq!(v, 1);
}
