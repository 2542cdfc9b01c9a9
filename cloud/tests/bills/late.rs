//! A Europe/Berlin 25-hour day, late records and late commits as adjustment lines, and a
//! check that finds a bill differing from the ledger.

use crate::*;

pub(crate) fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap()
}

pub(crate) fn at(zone: &TimeZone, dt: DateTime) -> Timestamp {
    zone.to_timestamp(dt).unwrap()
}

/// A seeded session of `o` at `s` ending at `ended` and settling at `settled`.
pub(crate) fn seeded(
    key: &str,
    o: &str,
    s: &str,
    ended: Timestamp,
    settled: Timestamp,
    gross_cents: i64,
) -> SeedSession {
    SeedSession {
        key: key.into(),
        operator: op(o),
        site: site(s),
        started_at: ended - SignedDuration::from_mins(30),
        ended_at: ended,
        settled_at: settled,
        energy_mwh: 10_000,
        gross: cents(gross_cents),
        platform_fee: cents(gross_cents / 10),
        rule_version: Some(1),
    }
}

pub(crate) async fn berlin_operator(store: &Store, o: &str, first: Date) {
    store.create_operator(&op(o), o).await.unwrap();
    for s in ["b-1", "b-2"] {
        store
            .create_site(&NewSite {
                id: site(&format!("{o}-{s}")),
                operator: op(o),
                name: s.into(),
                time_zone: "Europe/Berlin".into(),
            })
            .await
            .unwrap();
    }
    set_billing_settings(store, &op(o), "Europe/Berlin", first)
        .await
        .unwrap();
}

pub(crate) async fn a_berlin_dst_day_has_25_hours_and_late_records_go_to_the_next_bill(ctx: &Ctx) {
    let store = &ctx.store;
    let z = berlin();
    berlin_operator(store, "op-b", date(2026, 10, 24)).await;
    let (s1, s2) = ("op-b-b-1", "op-b-b-2");
    let d25 = date(2026, 10, 25);
    // 02:30 happens twice on 2026-10-25 (CEST, then CET).
    let first_0230 = Timestamp::from_second(1_792_888_200).unwrap(); // 00:30Z = 02:30 CEST
    let second_0230 = first_0230 + SignedDuration::from_hours(1); // 01:30Z = 02:30 CET
    assert_eq!(
        first_0230.to_zoned_datetime(z.clone()).datetime(),
        d25.at(2, 30, 0, 0)
    );
    assert_eq!(
        second_0230.to_zoned_datetime(z.clone()).datetime(),
        d25.at(2, 30, 0, 0)
    );
    let mut sessions = vec![
        seeded(
            "k-24-late-evening",
            "op-b",
            s1,
            at(&z, date(2026, 10, 24).at(23, 50, 0, 0)),
            at(&z, date(2026, 10, 24).at(23, 55, 0, 0)),
            1_000,
        ),
        // Ended on the 24th, settled after midnight: the 25th's bill, as an adjustment line.
        seeded(
            "k-24-settled-25",
            "op-b",
            s1,
            at(&z, date(2026, 10, 24).at(23, 58, 0, 0)),
            at(&z, d25.at(0, 10, 0, 0)),
            1_100,
        ),
        seeded(
            "k-25-first-0230",
            "op-b",
            s1,
            first_0230,
            first_0230 + SignedDuration::from_mins(1),
            1_200,
        ),
        seeded(
            "k-25-second-0230",
            "op-b",
            s2,
            second_0230,
            second_0230 + SignedDuration::from_mins(1),
            1_300,
        ),
        seeded(
            "k-25-2330",
            "op-b",
            s2,
            at(&z, d25.at(23, 20, 0, 0)),
            at(&z, d25.at(23, 30, 0, 0)),
            1_400,
        ),
        seeded(
            "k-26-0030",
            "op-b",
            s2,
            at(&z, date(2026, 10, 26).at(0, 20, 0, 0)),
            at(&z, date(2026, 10, 26).at(0, 30, 0, 0)),
            1_500,
        ),
    ];
    seed_sessions(store, &sessions, true).await.unwrap();
    let job = BillJob::new(store.clone(), config(), "instance-a");
    let pass = job
        .run_pass(Timestamp::from_second(1_793_102_400).unwrap()) // 2026-10-27T12:00Z
        .await
        .unwrap();
    let days: Vec<Date> = pass.issued.iter().map(|(_, d, _)| *d).collect();
    assert_eq!(
        days,
        vec![date(2026, 10, 24), d25, date(2026, 10, 26)],
        "{}",
        ctx.backend()
    );
    let b25 = bill_of_day(store, &op("op-b"), d25).await.unwrap().unwrap();
    let hours = b25
        .bill
        .bounds
        .end
        .duration_since(b25.bill.bounds.start)
        .as_hours();
    assert_eq!(hours, 25, "the day the clocks go back has 25 hours");
    assert_eq!(b25.bill.totals.sessions, 4);
    assert_eq!(b25.bill.adjustment_sessions(), 1);
    assert_eq!(b25.bill.adjustments[0].service_day, date(2026, 10, 24));
    assert_eq!(b25.bill.totals.gross, cents(1_100 + 1_200 + 1_300 + 1_400));
    assert_eq!(b25.bill.sites.len(), 2);
    assert_eq!(
        b25.bill.totals.gross.to_string(),
        "50.00",
        "amounts have two decimals"
    );

    // An edge that was offline: a session of the 25th settles on the 27th; and a commit that
    // raced the cut: settled at 23:59:59 on the 26th, written after the 26th was billed.
    let late = vec![
        seeded(
            "k-25-offline",
            "op-b",
            s1,
            at(&z, d25.at(12, 0, 0, 0)),
            at(&z, date(2026, 10, 27).at(10, 0, 0, 0)),
            2_000,
        ),
        seeded(
            "k-26-straggler",
            "op-b",
            s2,
            at(&z, date(2026, 10, 26).at(23, 59, 0, 0)),
            at(&z, date(2026, 10, 26).at(23, 59, 59, 0)),
            2_100,
        ),
    ];
    seed_sessions(store, &late, true).await.unwrap();
    sessions.extend(late);
    let before = rerun(store, &op("op-b"), d25).await.unwrap();
    assert!(before.reproduced, "{:?}", before.differences);
    let pass = job
        .run_pass(Timestamp::from_second(1_793_188_800).unwrap()) // 2026-10-28T12:00Z
        .await
        .unwrap();
    let days: Vec<Date> = pass.issued.iter().map(|(_, d, _)| *d).collect();
    assert_eq!(days, vec![date(2026, 10, 27)]);
    let b27 = bill_of_day(store, &op("op-b"), date(2026, 10, 27))
        .await
        .unwrap()
        .unwrap();
    let adj: Vec<(Date, u64)> = b27
        .bill
        .adjustments
        .iter()
        .map(|l| (l.service_day, l.totals.sessions))
        .collect();
    assert_eq!(
        adj,
        vec![(d25, 1), (date(2026, 10, 26), 1)],
        "{}",
        ctx.backend()
    );
    assert!(b27.bill.sites.is_empty());
    // The issued 25th is unchanged: same digest, reproduces, still matches the ledger.
    let again = bill_of_day(store, &op("op-b"), d25).await.unwrap().unwrap();
    assert_eq!(again, b25);
    for day in [
        date(2026, 10, 24),
        d25,
        date(2026, 10, 26),
        date(2026, 10, 27),
    ] {
        let r = rerun(store, &op("op-b"), day).await.unwrap();
        assert!(r.reproduced, "{day}: {:?}", r.differences);
        let c = check_day(store, &op("op-b"), day).await.unwrap();
        assert!(c.is_clean(), "{day}: {:?}", c.differences);
    }
    // Every session is on exactly one bill; the bills sum to the sessions to the cent.
    let (n, gross, fees, payable) = bill_totals(store, "op-b").await;
    assert_eq!(n, sessions.len() as u64);
    assert_eq!(gross, sessions.iter().map(|s| s.gross).sum::<Money>());
    assert_eq!(fees, sessions.iter().map(|s| s.platform_fee).sum::<Money>());
    assert_eq!(payable, gross - fees);
}

pub(crate) async fn a_check_reports_a_bill_that_differs_from_the_ledger(ctx: &Ctx) {
    let store = &ctx.store;
    berlin_operator(store, "op-c", date(2026, 10, 1)).await;
    let z = berlin();
    let d = date(2026, 10, 2);
    let s = [
        seeded(
            "c-1",
            "op-c",
            "op-c-b-1",
            at(&z, d.at(9, 0, 0, 0)),
            at(&z, d.at(9, 5, 0, 0)),
            1_000,
        ),
        seeded(
            "c-2",
            "op-c",
            "op-c-b-1",
            at(&z, d.at(10, 0, 0, 0)),
            at(&z, d.at(10, 5, 0, 0)),
            999,
        ),
    ];
    // The ledger has only the first session's set: the bill cannot match it.
    seed_sessions(store, &s[..1], true).await.unwrap();
    seed_sessions(store, &s[1..], false).await.unwrap();
    let job = BillJob::new(store.clone(), config(), "instance-a");
    job.issue_day(&op("op-c"), d, Timestamp::now())
        .await
        .unwrap();
    let r = check_day(store, &op("op-c"), d).await.unwrap();
    assert!(!r.is_clean());
    assert_eq!(r.ledger.sets, 1);
    assert!(
        r.differences.iter().any(|x| x.contains("settlement sets")),
        "{:?}",
        r.differences
    );
    // Issuing the same day again is refused; the bill is unchanged.
    assert!(matches!(
        job.issue_day(&op("op-c"), d, Timestamp::now()).await,
        Err(BillsError::AlreadyIssued { .. })
    ));
}
