//! Exactly-once settlement through the SQL ledger, on SQLite and PostgreSQL: duplicates and
//! replays (also from two cloud instances at once) settle once; a charger total off by more
//! than one fen is flagged on the order; an overrun beyond the hold goes to the credit line,
//! then to a receivable; time-of-use pricing across a period boundary, across midnight and
//! across a DST change (Europe/Berlin), end to end; settlement reads no price from the
//! database; a tariff change made elsewhere reaches the cache; 64 sessions of one account
//! settle at once on PostgreSQL to the exact final balance.

mod common;

use std::sync::Arc;

use jiff::civil::{date, DateTime};
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rust_decimal::Decimal;
use voltline_cloud::domain::OrderKind;
use voltline_cloud::funds::{Funds, HoldRequest, PaymentRequest};
use voltline_cloud::ledger::{LedgerAccountId, PlatformFeeRule};
use voltline_cloud::money::{
    audit, LedgerWriter, SettleOutcome, Settler, SettlerConfig, SqlFunds, SqlFundsConfig,
    TariffCache, WriterConfig,
};
use voltline_cloud::store::{NewCard, NewCharger, NewSite, TariffAssignment};
use voltline_cloud::Store;
use voltline_protocol::domain::{OperatorId, OrderId};
use voltline_protocol::message::common::PhysicalCardNo;
use voltline_protocol::sync::{Record, RecordBatch, RecordBody};
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::{Energy, Money};

use common::{acct, op, pile, site, t0, Ctx};

async fn backends(test: &str) -> Vec<Ctx> {
    let mut out = vec![Ctx::sqlite().await];
    if let Some(pg) = Ctx::postgres(test).await {
        out.push(pg);
    }
    out
}

fn cents(c: i64) -> Money {
    Money::from_cents(c)
}

/// valley 00:00 (0.30 + 0.20), day 03:00 (0.80 + 0.20), peak 08:00 (1.20 + 0.80),
/// night 22:00 (0.60 + 0.40), in `zone`.
fn tou(zone: &str, version: u32, bump: i64) -> Tariff {
    Tariff::new(
        TariffVersion(version),
        TimeZone::get(zone).unwrap(),
        vec![
            TariffPeriod::new("valley", cents(30 + bump), cents(20)),
            TariffPeriod::new("day", cents(80), cents(20)),
            TariffPeriod::new("peak", cents(120), cents(80)),
            TariffPeriod::new("night", cents(60), cents(40)),
        ],
        vec![
            ScheduleEntry::new(TimeOfDay::MIDNIGHT, 0),
            ScheduleEntry::new(TimeOfDay::new(3, 0).unwrap(), 1),
            ScheduleEntry::new(TimeOfDay::new(8, 0).unwrap(), 2),
            ScheduleEntry::new(TimeOfDay::new(22, 0).unwrap(), 3),
        ],
    )
    .unwrap()
}

struct Env {
    funds: SqlFunds,
    settler: Settler,
}

/// Operator op-1, site `s` in `zone` with pile `pile_no`, driver d-1, the TOU tariff.
async fn seed(store: &Store, s: &str, zone: &str, pile_no: u64) {
    let _ = store.create_operator(&op("op-1"), "Operator One").await;
    store
        .create_site(&NewSite {
            id: site(s),
            operator: op("op-1"),
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
    let _ = store
        .create_account(&acct("d-1"), Some(&op("op-1")), "Driver One")
        .await;
    let from = Timestamp::from_second(1_500_000_000).unwrap();
    let id = format!("tou-{s}");
    store
        .create_tariff_version(&id, &op("op-1"), &tou(zone, 1, 0), from)
        .await
        .unwrap();
    store
        .assign_tariff(&TariffAssignment {
            site: site(s),
            kind: OrderKind::Charge,
            tariff_id: id,
            version: TariffVersion(1),
            effective_from: from,
        })
        .await
        .unwrap();
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
        settler: Settler::new(writer, cache, config),
    }
}

async fn deposit(f: &SqlFunds, cents_: i64, credit: i64) {
    f.open_wallet(&acct("d-1"), cents(credit)).await.unwrap();
    let pay = PaymentRequest {
        account: acct("d-1"),
        amount: cents(cents_),
        provider: "test".into(),
        reference: "seed".into(),
    };
    f.top_up(&pay).await.unwrap();
}

/// An order on `s`/`pile_no` with a hold of `hold` (None: no hold, an offline-like start).
async fn order(
    store: &Store,
    e: &Env,
    s: &str,
    pile_no: u64,
    counter: u16,
    hold: Option<i64>,
) -> OrderId {
    let (mut new, start) = common::order_with_start(s, pile_no, counter, t0() + 1.hours());
    if let Some(h) = hold {
        let req = HoldRequest {
            order: new.id.clone(),
            account: acct("d-1"),
            requested: Some(cents(h)),
            expires_at: t0() + 1.hours(),
        };
        new.hold_id = Some(e.funds.place_hold(req).await.unwrap().hold_id);
    }
    store.create_order(&new, &start).await.unwrap();
    new.id
}

/// The charger's record of `wh` from `start` to `end` (local civil times) with its total.
#[allow(clippy::too_many_arguments)] // a fixture that spells out every field a test varies
fn record(
    seq: u64,
    pile_no: u64,
    counter: u16,
    order: &OrderId,
    start: DateTime,
    end: DateTime,
    wh: i64,
    total: Money,
) -> Record {
    let mut r = common::transaction(
        seq,
        pile_no,
        common::serial(pile_no, counter),
        Some(order.clone()),
    );
    if let RecordBody::Transaction(t) = &mut r.body {
        t.record.start_time = Cp56Time::from_civil(start).unwrap();
        t.record.end_time = Cp56Time::from_civil(end).unwrap();
        t.record.meter_start = Energy::from_wh(100_000);
        t.record.meter_end = Energy::from_wh(100_000 + wh);
        t.record.total_amount = total;
    }
    r
}

async fn ingest(store: &Store, s: &str, records: Vec<Record>) {
    store
        .ingest(&site(s), &RecordBatch::new(site(s), records))
        .await
        .unwrap();
}

fn wallet() -> LedgerAccountId {
    LedgerAccountId::DriverWallet(acct("d-1"))
}

#[tokio::test]
async fn a_record_settles_once_across_replays_duplicates_and_two_instances() {
    for ctx in backends("settles_once").await {
        seed(&ctx.store, "s-1", "Asia/Shanghai", 1).await;
        let a = env(&ctx.store).await;
        let b = env(&ctx.reopen().await).await; // a second cloud instance
        deposit(&a.funds, 10_000, 0).await;
        let mut records = Vec::new();
        for n in 1..=5u16 {
            let o = order(&ctx.store, &a, "s-1", 1, n, Some(2_000)).await;
            let r = record(
                u64::from(n),
                1,
                n,
                &o,
                date(2026, 11, 20).at(7, 30, 0, 0),
                date(2026, 11, 20).at(8, 30, 0, 0),
                10_000,
                cents(1_500),
            );
            records.push(r);
        }
        ingest(&ctx.store, "s-1", records.clone()).await;
        // The same records again (the edge resent them under new sequence numbers).
        let resent: Vec<Record> = records
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, mut r)| {
                r.seq = 10 + i as u64;
                r
            })
            .collect();
        ingest(&ctx.store, "s-1", resent).await;
        let (ra, rb) = tokio::join!(a.settler.settle_pending(100), b.settler.settle_pending(100));
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        assert_eq!(
            ra.failed() + rb.failed(),
            0,
            "{:?} {:?}",
            ra.outcomes,
            rb.outcomes
        );
        assert_eq!(
            ra.settled() + rb.settled(),
            5,
            "{}: five records, five settlements",
            ctx.backend()
        );
        let again = a.settler.settle_pending(100).await.unwrap();
        assert_eq!(again.outcomes.len(), 0, "nothing left to settle");
        let audit = audit(&ctx.store).await.unwrap();
        audit.check().unwrap();
        assert_eq!(
            audit.available(&wallet()),
            Some(cents(10_000 - 5 * 1_500)),
            "{}",
            ctx.backend()
        );
        let payable = LedgerAccountId::OperatorPayable(OperatorId::new("op-1").unwrap());
        assert_eq!(audit.available(&payable), Some(cents(5 * 1_450)));
        assert_eq!(
            audit.available(&LedgerAccountId::PlatformRevenue),
            Some(cents(5 * 50))
        );
        assert_eq!(
            a.settler.cache().tariff_db_reads_during_settlement(),
            0,
            "no price read from the database"
        );
        assert_eq!(b.settler.cache().tariff_db_reads_during_settlement(), 0);
    }
}

#[tokio::test]
async fn a_charger_total_off_by_more_than_a_fen_is_flagged_on_the_order() {
    for ctx in backends("mismatch").await {
        seed(&ctx.store, "s-1", "Asia/Shanghai", 1).await;
        let e = env(&ctx.store).await;
        deposit(&e.funds, 10_000, 0).await;
        let (d, day) = (date(2026, 11, 20), |h, m| date(2026, 11, 20).at(h, m, 0, 0));
        let _ = d;
        let ok = order(&ctx.store, &e, "s-1", 1, 1, Some(2_000)).await;
        let off = order(&ctx.store, &e, "s-1", 1, 2, Some(2_000)).await;
        ingest(
            &ctx.store,
            "s-1",
            vec![
                record(1, 1, 1, &ok, day(7, 30), day(8, 30), 10_000, cents(1_501)),
                record(2, 1, 2, &off, day(7, 30), day(8, 30), 10_000, cents(1_502)),
            ],
        )
        .await;
        let report = e.settler.settle_pending(10).await.unwrap();
        assert_eq!(report.settled(), 2, "{:?}", report.outcomes);
        assert_eq!(
            e.settler.order_settlement(&ok).await.unwrap(),
            Some((cents(1_500), false)),
            "one fen off is not flagged"
        );
        assert_eq!(
            e.settler.order_settlement(&off).await.unwrap(),
            Some((cents(1_500), true)),
            "two fen off is flagged; the tariff's figure is billed"
        );
        audit(&ctx.store).await.unwrap().check().unwrap();
    }
}

#[tokio::test]
async fn an_overrun_beyond_the_hold_uses_the_credit_line_then_a_receivable() {
    for ctx in backends("overrun").await {
        seed(&ctx.store, "s-1", "Asia/Shanghai", 1).await;
        let e = env(&ctx.store).await;
        deposit(&e.funds, 1_000, 500).await; // 10.00 prepaid, 5.00 credit line
        let o = order(&ctx.store, &e, "s-1", 1, 1, Some(1_000)).await;
        // 20 kWh, 07:30-08:30: 10 kWh day (1.00) + 10 kWh peak (2.00) = 30.00, charged offline.
        ingest(
            &ctx.store,
            "s-1",
            vec![record(
                1,
                1,
                1,
                &o,
                date(2026, 11, 20).at(7, 30, 0, 0),
                date(2026, 11, 20).at(8, 30, 0, 0),
                20_000,
                cents(3_000),
            )],
        )
        .await;
        let report = e.settler.settle_pending(10).await.unwrap();
        let Some((_, SettleOutcome::Settled(row))) = report.outcomes.first() else {
            panic!("{:?}", report.outcomes)
        };
        assert_eq!(
            (row.from_hold, row.from_wallet, row.receivable),
            (cents(1_000), cents(500), cents(1_500))
        );
        let audit = audit(&ctx.store).await.unwrap();
        audit.check().unwrap();
        assert_eq!(
            audit.available(&wallet()),
            Some(cents(-500)),
            "down to the credit limit, not below"
        );
        assert_eq!(
            audit.available(&LedgerAccountId::Receivable(acct("d-1"))),
            Some(cents(1_500))
        );
    }
}

#[tokio::test]
async fn a_record_the_edge_lost_the_start_of_bills_the_card_it_names() {
    for ctx in backends("lost_start").await {
        seed(&ctx.store, "s-1", "Asia/Shanghai", 1).await;
        let e = env(&ctx.store).await;
        deposit(&e.funds, 10_000, 0).await;
        let issued = PhysicalCardNo::from_bytes([0xCA, 0x4D, 0, 0, 0, 0, 0, 1]);
        ctx.store
            .create_card(&NewCard {
                card: issued,
                account: acct("d-1"),
                offline_limit: cents(5_000),
            })
            .await
            .unwrap();
        // Two records without an order or a card start (the edge lost them in a crash): one
        // names the issued card, one a card the platform never issued.
        let unknown = PhysicalCardNo::from_bytes([0x11, 0, 0, 0, 0, 0, 0, 2]);
        let mut records = Vec::new();
        for (n, card) in [(1u16, issued), (2, unknown)] {
            let mut r = common::transaction(u64::from(n), 1, common::serial(1, n), None);
            if let RecordBody::Transaction(t) = &mut r.body {
                t.record.start_time =
                    Cp56Time::from_civil(date(2026, 11, 20).at(7, 30, 0, 0)).unwrap();
                t.record.end_time =
                    Cp56Time::from_civil(date(2026, 11, 20).at(8, 30, 0, 0)).unwrap();
                t.record.meter_start = Energy::from_wh(100_000);
                t.record.meter_end = Energy::from_wh(110_000);
                t.record.total_amount = cents(1_500);
                t.record.physical_card = card;
            }
            records.push(r);
        }
        ingest(&ctx.store, "s-1", records).await;
        let report = e.settler.settle_pending(10).await.unwrap();
        assert_eq!(
            (report.settled(), report.failed()),
            (1, 1),
            "{}: {:?}",
            ctx.backend(),
            report.outcomes
        );
        let audit = audit(&ctx.store).await.unwrap();
        audit.check().unwrap();
        assert_eq!(
            audit.available(&wallet()),
            Some(cents(10_000 - 1_500)),
            "the issued card's account paid for its session"
        );
        let again = e.settler.settle_pending(10).await.unwrap();
        assert_eq!(
            (again.settled(), again.failed()),
            (0, 1),
            "the unknown card's record stays unsettled, retried, never billed to anyone"
        );
    }
}

/// Settles one 10 kWh session from `start` to `end` (local) at a fresh site in `zone`.
async fn priced(ctx: &Ctx, zone: &str, start: DateTime, end: DateTime) -> Money {
    seed(&ctx.store, "s-p", zone, 7).await;
    let e = env(&ctx.store).await;
    deposit(&e.funds, 10_000, 0).await;
    let o = order(&ctx.store, &e, "s-p", 7, 1, Some(5_000)).await;
    ingest(
        &ctx.store,
        "s-p",
        vec![record(1, 7, 1, &o, start, end, 10_000, cents(0))],
    )
    .await;
    let report = e.settler.settle_pending(10).await.unwrap();
    assert_eq!(e.settler.cache().tariff_db_reads_during_settlement(), 0);
    audit(&ctx.store).await.unwrap().check().unwrap();
    match report.outcomes.first() {
        Some((_, SettleOutcome::Settled(row))) => row.cost,
        other => panic!("{other:?}"),
    }
}

/// A stored reading of session `counter` on `pile_no` at `at` (local, in `zone`).
fn stored_reading(
    seq: u64,
    pile_no: u64,
    counter: u16,
    zone: &str,
    at: DateTime,
    wh: i64,
) -> Record {
    let at = TimeZone::get(zone).unwrap().to_timestamp(at).unwrap();
    let mut r = common::reading(seq, pile_no);
    if let RecordBody::MeterReading(m) = &mut r.body {
        m.serial = common::serial(pile_no, counter);
        m.measured_at = at;
        m.import_register = Energy::from_wh(wh);
    }
    r
}

#[tokio::test]
async fn each_session_of_a_pass_is_priced_by_its_own_stored_readings() {
    for ctx in backends("pass_readings").await {
        let zone = "Asia/Shanghai";
        seed(&ctx.store, "s-r", zone, 7).await;
        let e = env(&ctx.store).await;
        deposit(&e.funds, 20_000, 0).await;
        let (start, boundary, end) = (
            date(2026, 11, 20).at(7, 0, 0, 0),
            date(2026, 11, 20).at(8, 0, 0, 0),
            date(2026, 11, 20).at(9, 0, 0, 0),
        );
        let mut records = Vec::new();
        let mut orders = Vec::new();
        for counter in 1..=3u16 {
            let o = order(&ctx.store, &e, "s-r", 7, counter, Some(5_000)).await;
            records.push(record(
                u64::from(counter),
                7,
                counter,
                &o,
                start,
                end,
                10_000,
                cents(0),
            ));
            orders.push(o);
        }
        // The register at the 08:00 boundary: 4 kWh before it for the first session, 8 for
        // the second; none stored for the third (split by time: 5 and 5).
        records.push(stored_reading(4, 7, 1, zone, boundary, 104_000));
        records.push(stored_reading(5, 7, 2, zone, boundary, 108_000));
        ingest(&ctx.store, "s-r", records).await;
        let report = e.settler.settle_pending(10).await.unwrap();
        assert_eq!(
            report.settled(),
            3,
            "{}: {:?}",
            ctx.backend(),
            report.outcomes
        );
        // day 1.00/kWh before 08:00, peak 2.00/kWh after.
        for (o, want) in orders.iter().zip([1_600, 1_200, 1_500]) {
            assert_eq!(
                e.settler.order_settlement(o).await.unwrap(),
                Some((cents(want), true)),
                "{}: order {o} (the charger's own total, 0, is flagged)",
                ctx.backend()
            );
        }
        audit(&ctx.store).await.unwrap().check().unwrap();
    }
}

#[tokio::test]
async fn two_records_of_one_order_in_one_pass_both_settle() {
    for ctx in backends("one_order_two_records").await {
        // A pile that sends two records (two serials) for one order: both are billed, the
        // second from the wallet once the first posted the hold, and neither may hold up
        // the pass it is in.
        seed(&ctx.store, "s-2", "Asia/Shanghai", 7).await;
        let e = env(&ctx.store).await;
        deposit(&e.funds, 10_000, 0).await;
        let o = order(&ctx.store, &e, "s-2", 7, 1, Some(5_000)).await;
        let (start, end) = (
            date(2026, 11, 20).at(4, 0, 0, 0),
            date(2026, 11, 20).at(5, 0, 0, 0),
        );
        let records = (1..=2u16)
            .map(|counter| {
                record(
                    u64::from(counter),
                    7,
                    counter,
                    &o,
                    start,
                    end,
                    10_000,
                    cents(1_000),
                )
            })
            .collect();
        ingest(&ctx.store, "s-2", records).await;
        let report = e.settler.settle_pending(10).await.unwrap();
        assert_eq!(
            report.settled(),
            2,
            "{}: {:?}",
            ctx.backend(),
            report.outcomes
        );
        // 10 kWh at day (1.00) each.
        assert_eq!(
            e.settler.order_settlement(&o).await.unwrap(),
            Some((cents(1_000), false)),
            "{}",
            ctx.backend()
        );
        let audit = audit(&ctx.store).await.unwrap();
        audit.check().unwrap();
        assert_eq!(
            audit.available(&LedgerAccountId::DriverWallet(acct("d-1"))),
            Some(cents(8_000)),
            "{}",
            ctx.backend()
        );
    }
}

#[tokio::test]
async fn pricing_across_a_period_boundary() {
    for ctx in backends("pricing_boundary").await {
        // 07:30-08:30: 5 kWh at day (1.00) + 5 kWh at peak (2.00).
        let cost = priced(
            &ctx,
            "Asia/Shanghai",
            date(2026, 11, 20).at(7, 30, 0, 0),
            date(2026, 11, 20).at(8, 30, 0, 0),
        )
        .await;
        assert_eq!(cost, cents(1_500), "{}", ctx.backend());
    }
}

#[tokio::test]
async fn pricing_across_midnight() {
    for ctx in backends("pricing_midnight").await {
        // 23:30-00:30: 5 kWh at night (1.00) + 5 kWh at valley (0.50).
        let cost = priced(
            &ctx,
            "Asia/Shanghai",
            date(2026, 11, 20).at(23, 30, 0, 0),
            date(2026, 11, 21).at(0, 30, 0, 0),
        )
        .await;
        assert_eq!(cost, cents(750), "{}", ctx.backend());
    }
}

#[tokio::test]
async fn pricing_across_a_dst_change_in_berlin() {
    for ctx in backends("pricing_dst").await {
        // 2026-03-29 01:30 CET → 03:30 CEST is one real hour (02:00-03:00 does not exist):
        // 30 min valley (0.50) + 30 min day (1.00) = 2.50 + 5.00. Civil arithmetic would say
        // 90 min of valley and get 6.25.
        let cost = priced(
            &ctx,
            "Europe/Berlin",
            date(2026, 3, 29).at(1, 30, 0, 0),
            date(2026, 3, 29).at(3, 30, 0, 0),
        )
        .await;
        assert_eq!(cost, cents(750), "{}", ctx.backend());
    }
}

#[tokio::test]
async fn a_tariff_change_made_by_another_instance_reaches_the_cache() {
    for ctx in backends("tariff_change").await {
        seed(&ctx.store, "s-1", "Asia/Shanghai", 1).await;
        let cache = TariffCache::new();
        cache.warm(&ctx.store).await.unwrap();
        assert_eq!(
            cache.refresh(&ctx.store).await.unwrap(),
            0,
            "nothing changed"
        );
        let other = ctx.reopen().await;
        let from = Timestamp::from_second(1_900_000_000).unwrap();
        other
            .create_tariff_version("tou-s-1", &op("op-1"), &tou("Asia/Shanghai", 2, 10), from)
            .await
            .unwrap();
        other
            .assign_tariff(&TariffAssignment {
                site: site("s-1"),
                kind: OrderKind::Charge,
                tariff_id: "tou-s-1".into(),
                version: TariffVersion(2),
                effective_from: from,
            })
            .await
            .unwrap();
        assert_eq!(
            cache.refresh(&ctx.store).await.unwrap(),
            1,
            "the site's config version moved"
        );
        let pricing = cache.cached(&site("s-1")).unwrap();
        assert_eq!(
            pricing
                .tariff_at(OrderKind::Charge, from)
                .unwrap()
                .version(),
            TariffVersion(2)
        );
        assert_eq!(
            pricing
                .tariff_at(OrderKind::Charge, from - 1.second())
                .unwrap()
                .version(),
            TariffVersion(1),
            "sessions started before stay on v1"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sixty_four_sessions_of_one_account_settle_at_once_to_the_exact_balance_on_postgres() {
    let Some(ctx) = Ctx::postgres("hot_account").await else {
        return;
    };
    seed(&ctx.store, "s-1", "Asia/Shanghai", 1).await;
    let a = env(&ctx.store).await;
    let b = env(&ctx.reopen().await).await;
    deposit(&a.funds, 64 * 2_000 + 10_000, 0).await;
    let mut records = Vec::new();
    for n in 1..=64u16 {
        let o = order(&ctx.store, &a, "s-1", 1, n, Some(2_000)).await;
        records.push(record(
            u64::from(n),
            1,
            n,
            &o,
            date(2026, 11, 20).at(7, 30, 0, 0),
            date(2026, 11, 20).at(8, 30, 0, 0),
            10_000,
            cents(1_500),
        ));
    }
    ingest(&ctx.store, "s-1", records).await;
    let (ra, rb) = tokio::join!(a.settler.settle_pending(64), b.settler.settle_pending(64));
    let (ra, rb) = (ra.unwrap(), rb.unwrap());
    assert_eq!(
        ra.failed() + rb.failed(),
        0,
        "{:?} {:?}",
        ra.outcomes,
        rb.outcomes
    );
    assert_eq!(ra.settled() + rb.settled(), 64);
    let audit = audit(&ctx.store).await.unwrap();
    audit.check().unwrap();
    assert_eq!(
        audit.available(&wallet()),
        Some(cents(64 * 2_000 + 10_000 - 64 * 1_500)),
        "exact final balance"
    );
    assert_eq!(
        audit.accounts[&wallet()].0.held(),
        Money::ZERO,
        "every hold closed"
    );
}
