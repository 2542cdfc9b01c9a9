//! Daily settlement bills over the SQL store, on SQLite and PostgreSQL: sessions settled
//! through the real ledger are split by the sharing rule in force when they started (several
//! rule kinds, site rules before operator rules, the default fee without a rule) and billed
//! per operator with totals equal to the ledger to the cent; a Europe/Berlin 25-hour day;
//! late records and late commits go to the next bill's adjustment lines, never into an issued
//! bill; re-runs reproduce; two instances racing for the job issue each bill once, and a
//! holder whose lease was taken over cannot write; monthly volume tiers read issued bills.

mod common;

use std::sync::Arc;

use jiff::civil::{date, Date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp, ToSpan};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use voltline_cloud::bills::job::rerun;
use voltline_cloud::bills::rules::{create_rule, set_billing_settings, NewRule};
use voltline_cloud::bills::seed::{seed_sessions, SeedSession};
use voltline_cloud::bills::store::{bill_of_day, count_bill_sessions, list_bills, BillFilter};
use voltline_cloud::bills::{check_day, BillJob, BillJobConfig, BillsError, RuleCache};
use voltline_cloud::domain::OrderKind;
use voltline_cloud::funds::{Funds, HoldRequest, PaymentRequest};
use voltline_cloud::ledger::{LedgerAccountId, PlatformFeeRule};
use voltline_cloud::money::{
    audit, LedgerWriter, Settler, SettlerConfig, SqlFunds, SqlFundsConfig, TariffCache,
    WriterConfig,
};
use voltline_cloud::sharing::rule::{Percent, SharingTerms, VolumeTier};
use voltline_cloud::sharing::split::{split, SessionMoney};
use voltline_cloud::store::{NewCharger, NewSite, TariffAssignment};
use voltline_cloud::Store;
use voltline_protocol::domain::OrderId;
use voltline_protocol::sync::{Record, RecordBatch, RecordBody};
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::{Energy, Money};

use common::{acct, op, pile, site, Ctx};

fn cents(c: i64) -> Money {
    Money::from_cents(c)
}

fn pct(d: Decimal) -> Percent {
    Percent::new(d).unwrap()
}

fn config() -> BillJobConfig {
    BillJobConfig {
        grace_s: 60,
        ..BillJobConfig::default()
    }
}

fn long_ago() -> Timestamp {
    Timestamp::from_second(1_500_000_000).unwrap()
}

/// A flat tariff: 1.00 yuan/kWh electricity + 0.50 yuan/kWh service.
fn flat(zone: &str) -> Tariff {
    Tariff::new(
        TariffVersion(1),
        TimeZone::get(zone).unwrap(),
        vec![TariffPeriod::new("flat", cents(100), cents(50))],
        vec![ScheduleEntry::new(TimeOfDay::MIDNIGHT, 0)],
    )
    .unwrap()
}

/// Operator `o` with site `s` in `zone`, pile `pile_no`, the flat tariff.
async fn operator_site(store: &Store, o: &str, s: &str, zone: &str, pile_no: u64) {
    let _ = store.create_operator(&op(o), o).await;
    store
        .create_site(&NewSite {
            id: site(s),
            operator: op(o),
            name: s.into(),
            time_zone: zone.into(),
        })
        .await
        .unwrap();
    store
        .create_charger(&NewCharger {
            pile: pile(pile_no),
            site: site(s),
            connectors: 2,
        })
        .await
        .unwrap();
    let id = format!("flat-{s}");
    store
        .create_tariff_version(&id, &op(o), &flat(zone), long_ago())
        .await
        .unwrap();
    store
        .assign_tariff(&TariffAssignment {
            site: site(s),
            kind: OrderKind::Charge,
            tariff_id: id,
            version: TariffVersion(1),
            effective_from: long_ago(),
        })
        .await
        .unwrap();
}

struct Env {
    funds: SqlFunds,
    settler: Settler,
}

async fn env(store: &Store) -> Env {
    let writer = LedgerWriter::start(store.clone(), WriterConfig::default(), None);
    let funds = SqlFunds::new(
        writer.clone(),
        SqlFundsConfig {
            default_hold: cents(5_000),
            minimum_hold: cents(100),
        },
    );
    let cache = Arc::new(TariffCache::new());
    cache.warm(store).await.unwrap();
    let config = SettlerConfig {
        platform_fee: PlatformFeeRule::new(Decimal::new(10, 0)).unwrap(),
    };
    Env {
        funds,
        settler: Settler::new(writer, cache, config).with_rules(RuleCache::new(store.clone())),
    }
}

/// A session of driver d-1 at `s`/`pile_no`, held for 50 yuan, `kwh` from `start` to `end`
/// (civil times in `zone`).
#[allow(clippy::too_many_arguments)] // a fixture spelling out what each session varies
async fn session(
    store: &Store,
    e: &Env,
    s: &str,
    pile_no: u64,
    counter: u16,
    start: DateTime,
    end: DateTime,
    kwh: i64,
) -> Record {
    let (mut new, cmd) =
        common::order_with_start(s, pile_no, counter, Timestamp::now() + 1.hours());
    let req = HoldRequest {
        order: new.id.clone(),
        account: acct("d-1"),
        requested: Some(cents(5_000)),
        expires_at: Timestamp::now() + 1.hours(),
    };
    new.hold_id = Some(e.funds.place_hold(req).await.unwrap().hold_id);
    store.create_order(&new, &cmd).await.unwrap();
    let order: OrderId = new.id;
    let mut r = common::transaction(
        u64::from(counter),
        pile_no,
        common::serial(pile_no, counter),
        Some(order),
    );
    if let RecordBody::Transaction(t) = &mut r.body {
        t.record.start_time = Cp56Time::from_civil(start).unwrap();
        t.record.end_time = Cp56Time::from_civil(end).unwrap();
        t.record.meter_start = Energy::from_wh(100_000);
        t.record.meter_end = Energy::from_wh(100_000 + kwh * 1_000);
        t.record.total_amount = cents(150 * kwh);
    }
    r
}

fn local(zone: &str, at: Timestamp) -> DateTime {
    at.to_zoned_datetime(TimeZone::get(zone).unwrap())
        .datetime()
}

/// Every operator's bills, all days, summed.
async fn bill_totals(store: &Store, o: &str) -> (u64, Money, Money, Money) {
    let bills = list_bills(
        store,
        &BillFilter {
            operator: Some(op(o)),
            limit: 1_000,
            ..BillFilter::default()
        },
    )
    .await
    .unwrap();
    bills
        .iter()
        .fold((0, Money::ZERO, Money::ZERO, Money::ZERO), |acc, b| {
            let t = &b.bill.totals;
            (
                acc.0 + t.sessions,
                acc.1 + t.gross,
                acc.2 + t.platform_fees,
                acc.3 + t.operator_payable,
            )
        })
}

async fn settled_and_billed_through_the_ledger_to_the_cent(ctx: &Ctx) {
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

fn berlin() -> TimeZone {
    TimeZone::get("Europe/Berlin").unwrap()
}

fn at(zone: &TimeZone, dt: DateTime) -> Timestamp {
    zone.to_timestamp(dt).unwrap()
}

/// A seeded session of `o` at `s` ending at `ended` and settling at `settled`.
fn seeded(
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

async fn berlin_operator(store: &Store, o: &str, first: Date) {
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

async fn a_berlin_dst_day_has_25_hours_and_late_records_go_to_the_next_bill(ctx: &Ctx) {
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

async fn a_check_reports_a_bill_that_differs_from_the_ledger(ctx: &Ctx) {
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

async fn two_instances_racing_for_the_job_issue_each_bill_once(ctx: &Ctx) {
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

async fn volume_tiers_read_the_months_issued_bills(ctx: &Ctx) {
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

on_both_backends!(
    settled_and_billed_through_the_ledger_to_the_cent,
    a_berlin_dst_day_has_25_hours_and_late_records_go_to_the_next_bill,
    a_check_reports_a_bill_that_differs_from_the_ledger,
    two_instances_racing_for_the_job_issue_each_bill_once,
    volume_tiers_read_the_months_issued_bills,
);

#[test]
fn the_bill_csv_has_a_header_site_adjustment_and_total_rows() {
    use voltline_cloud::bills::store::StoredBill;
    use voltline_cloud::sharing::bill::{cut_open_bill, SettledSession};
    use voltline_cloud::sharing::split::Split;
    let z = berlin();
    let d = date(2026, 10, 25);
    let mk = |id: &str, ended: Timestamp, settled: Timestamp| SettledSession {
        id: id.into(),
        operator: op("op-1"),
        site: site("s.1"),
        ended_at: ended,
        settled_at: settled,
        energy: Energy::from_wh(12_345),
        export_energy: Energy::ZERO,
        split: Split {
            gross: cents(1_000),
            platform_fee: cents(100),
            operator_payable: cents(900),
            parts: Default::default(),
            v2g_driver_credit: Money::ZERO,
            v2g_operator_share: Money::ZERO,
        },
    };
    let sessions = [
        mk("a", at(&z, d.at(9, 0, 0, 0)), at(&z, d.at(9, 1, 0, 0))),
        mk(
            "b",
            at(&z, date(2026, 10, 20).at(9, 0, 0, 0)),
            at(&z, d.at(9, 1, 0, 0)),
        ),
    ];
    let bill = cut_open_bill(&op("op-1"), &z, d, &sessions).unwrap();
    let stored = StoredBill {
        id: StoredBill::id_for(&op("op-1"), d),
        issued_at: Timestamp::UNIX_EPOCH,
        lease_token: 1,
        digest: voltline_cloud::bills::store::digest(&bill),
        bill,
    };
    let csv = voltline_cloud::bills::csv::to_csv(&stored);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], voltline_cloud::bills::csv::HEADER);
    assert_eq!(
        lines[1],
        "bill-op-1-2026-10-25,op-1,2026-10-25,Europe/Berlin,site,s.1,2026-10-25,1,12.345,0,10.00,1.00,9.00,0.00,0.00,9.00"
    );
    assert!(
        lines[2].contains(",adjustment,s.1,2026-10-20,1,"),
        "{}",
        lines[2]
    );
    assert!(
        lines[3].contains(",total,,,2,24.69,0,20.00,2.00,18.00,"),
        "{}",
        lines[3]
    );
    let _ = ToSpan::hours(1);
}

/// `voltline-cloud bills check` answers Ok for a bill that matches the ledger and an error
/// (a non-zero exit from `main`) for one that does not; `bills rerun` reproduces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_check_command_fails_on_a_difference_and_passes_a_clean_bill() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open_in_dir(dir.path()).await.unwrap();
    let z = berlin();
    for (o, with_ledger) in [("op-ok", true), ("op-bad", false)] {
        berlin_operator(&store, o, date(2026, 10, 1)).await;
        let d = date(2026, 10, 2);
        let s = seeded(
            &format!("{o}-1"),
            o,
            &format!("{o}-b-1"),
            at(&z, d.at(9, 0, 0, 0)),
            at(&z, d.at(9, 5, 0, 0)),
            1_000,
        );
        seed_sessions(&store, &[s], with_ledger).await.unwrap();
        BillJob::new(store.clone(), config(), "instance-a")
            .issue_day(&op(o), d, Timestamp::now())
            .await
            .unwrap();
    }
    store.close().await;
    let cfg = dir.path().join("cloud.toml");
    std::fs::write(
        &cfg,
        format!("data_dir = {:?}\n", dir.path().to_str().unwrap()),
    )
    .unwrap();
    let run = |args: &[&str]| {
        let mut v = vec!["voltline-cloud".to_owned(), "--config".to_owned()];
        v.push(cfg.to_str().unwrap().to_owned());
        v.extend(args.iter().map(|a| a.to_string()));
        voltline_cloud::run_cli(v)
    };
    run(&[
        "bills",
        "check",
        "--operator",
        "op-ok",
        "--day",
        "2026-10-02",
    ])
    .await
    .expect("a clean bill passes");
    let bad = run(&[
        "bills",
        "check",
        "--operator",
        "op-bad",
        "--day",
        "2026-10-02",
    ])
    .await;
    assert!(
        bad.is_err(),
        "a bill that differs from the ledger fails the command"
    );
    run(&[
        "bills",
        "rerun",
        "--operator",
        "op-bad",
        "--day",
        "2026-10-02",
    ])
    .await
    .expect("the issued bill reproduces from its settlement rows");
}
