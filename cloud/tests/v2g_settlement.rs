//! Reverse (V2G) settlement through the SQL ledger, on SQLite and PostgreSQL: a discharge
//! session credited to the cent from the discharge tariff's time-of-use periods; a session
//! that both charged and discharged settled as one balanced set with both lines; the
//! operator's host share from the sharing rule, on the day's bill and matching the ledger;
//! replays and two instances settle once; a register reset and a self-contradicting record
//! flagged on the order and never billed as negative energy; a site without a discharge
//! tariff waits and settles once one is assigned.
//! Every case ends with the ledger audited (balanced, balances = postings).

mod common;

use std::sync::Arc;

use jiff::civil::{date, DateTime};
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use voltline_cloud::bills::rules::{create_rule, NewRule};
use voltline_cloud::bills::{check_day, BillJob, BillJobConfig, RuleCache};
use voltline_cloud::domain::discharge::DischargeTerms;
use voltline_cloud::domain::{OrderKind, OrderState, PaymentMethod};
use voltline_cloud::funds::{Funds, PaymentRequest};
use voltline_cloud::ledger::{LedgerAccountId, PlatformFeeRule};
use voltline_cloud::money::reverse::order_breakdown;
use voltline_cloud::money::{
    audit, LedgerWriter, ReverseSettler, SettleOutcome, Settler, SettlerConfig, SqlFunds,
    SqlFundsConfig, TariffCache, WriterConfig,
};
use voltline_cloud::sharing::{Percent, SharingTerms};
use voltline_cloud::store::{new_command_id, NewCommand, NewOrder, TariffAssignment};
use voltline_cloud::Store;
use voltline_protocol::domain::{OrderId, Power, Soc};
use voltline_protocol::message::v2g::{DischargeRecord, DischargeStopReason};
use voltline_protocol::sync::{
    AnomalyKind, BidirectionalMetering, Command, DischargeUp, MeterReading, Record, RecordBatch,
    RecordBody, RegisterPair, SessionLimit,
};
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::{Energy, Money};

use common::{acct, conn, op, pile, serial, site, Ctx};

const ZONE: &str = "Asia/Shanghai";

fn cents(c: i64) -> Money {
    Money::from_cents(c)
}

fn wh(n: i64) -> Energy {
    Energy::from_wh(n)
}

/// Feed-in: 0.50 yuan/kWh before 09:00 local, 1.20 from 09:00 (no service fee).
fn feed_in(version: u32) -> Tariff {
    Tariff::new(
        TariffVersion(version),
        TimeZone::get(ZONE).unwrap(),
        vec![
            TariffPeriod::new("valley", cents(50), Money::ZERO),
            TariffPeriod::new("peak", cents(120), Money::ZERO),
        ],
        vec![
            ScheduleEntry::new(TimeOfDay::MIDNIGHT, 0),
            ScheduleEntry::new(TimeOfDay::new(9, 0).unwrap(), 1),
        ],
    )
    .unwrap()
}

/// Charging: 0.80 + 0.40 service, flat.
fn flat(version: u32) -> Tariff {
    Tariff::new(
        TariffVersion(version),
        TimeZone::get(ZONE).unwrap(),
        vec![TariffPeriod::new("flat", cents(80), cents(40))],
        vec![ScheduleEntry::new(TimeOfDay::MIDNIGHT, 0)],
    )
    .unwrap()
}

fn since() -> Timestamp {
    Timestamp::from_second(1_500_000_000).unwrap()
}

async fn assign(store: &Store, id: &str, tariff: &Tariff, kind: OrderKind) {
    store
        .create_tariff_version(id, &op("op-1"), tariff, since())
        .await
        .unwrap();
    store
        .assign_tariff(&TariffAssignment {
            site: site("s-1"),
            kind,
            tariff_id: id.into(),
            version: tariff.version(),
            effective_from: since(),
        })
        .await
        .unwrap();
}

/// Site s-1 with V2G pile 1, driver d-1, the charge tariff and (if asked) the feed-in one.
async fn seed(store: &Store, with_feed_in: bool) {
    common::seed(store, "s-1", 1).await;
    store.set_charger_v2g(&pile(1), true).await.unwrap();
    assign(store, "charge-1", &flat(1), OrderKind::Charge).await;
    if with_feed_in {
        assign(store, "feed-in-1", &feed_in(3), OrderKind::Discharge).await;
    }
}

struct Env {
    funds: SqlFunds,
    settler: ReverseSettler,
    cache: Arc<TariffCache>,
    /// The charging settler, to read what settlement wrote on an order.
    charging: Settler,
}

async fn env(store: &Store, rules: bool) -> Env {
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
    let charging = Settler::new(writer.clone(), cache.clone(), config);
    let mut settler = ReverseSettler::new(writer, cache.clone(), config);
    if rules {
        settler = settler.with_rules(RuleCache::new(store.clone()));
    }
    Env {
        funds,
        settler,
        cache,
        charging,
    }
}

async fn deposit(f: &SqlFunds, amount: i64) {
    f.open_wallet(&acct("d-1"), Money::ZERO).await.unwrap();
    if amount == 0 {
        return;
    }
    let pay = PaymentRequest {
        account: acct("d-1"),
        amount: cents(amount),
        provider: "test".into(),
        reference: "seed".into(),
    };
    f.top_up(&pay).await.unwrap();
}

/// A discharge order for d-1 on pile 1 / connector 1 with serial counter `n`.
async fn discharge_order(store: &Store, n: u16) -> OrderId {
    let id = voltline_cloud::store::new_order_id();
    let serial = serial(1, n);
    let terms = DischargeTerms {
        soc_floor: Soc::new(30).unwrap(),
        departure: Timestamp::now() + SignedDuration::from_hours(8),
        max_power: Power::from_watts(7_000),
    };
    let new = NewOrder {
        id: id.clone(),
        account: acct("d-1"),
        site: site("s-1"),
        pile: pile(1),
        connector: conn(1),
        kind: OrderKind::Discharge,
        payment_method: PaymentMethod::Wallet,
        limit: SessionLimit::default(),
        hold_id: None,
        transaction_serial: Some(serial),
        idempotency_key: None,
    };
    let start = NewCommand {
        id: new_command_id(),
        site: site("s-1"),
        order: Some(id.clone()),
        command: Command::StartDischarge {
            pile: pile(1),
            connector: conn(1),
            order: id.clone(),
            serial,
            soc_floor: terms.soc_floor,
            max_power: terms.max_power,
            until: terms.departure,
        },
        expires_at: Timestamp::now() + SignedDuration::from_mins(5),
    };
    store
        .create_discharge_order(&new, &terms, &start)
        .await
        .unwrap();
    id
}

/// Local civil time on 2026-11-20 in Shanghai.
fn local(h: i8, m: i8) -> DateTime {
    date(2026, 11, 20).at(h, m, 0, 0)
}

fn utc(h: i8, m: i8) -> Timestamp {
    TimeZone::get(ZONE)
        .unwrap()
        .to_timestamp(local(h, m))
        .unwrap()
}

/// The pile's 0xC9 record from 08:00 to 10:00 local.
fn discharge(
    seq: u64,
    n: u16,
    order: &OrderId,
    export: (i64, i64, i64),
    metering: Option<BidirectionalMetering>,
) -> Record {
    let record = DischargeRecord {
        serial: serial(1, n),
        pile_code: pile(1),
        connector: conn(1),
        start_time: Cp56Time::from_civil(local(8, 0)).unwrap(),
        end_time: Cp56Time::from_civil(local(10, 0)).unwrap(),
        export_register_start: wh(export.0),
        export_register_end: wh(export.1),
        exported_energy: wh(export.2),
        stop_reason: DischargeStopReason(0x40),
    };
    Record {
        seq,
        at: utc(10, 0),
        body: RecordBody::Discharge(DischargeUp {
            pile: pile(1),
            order: Some(order.clone()),
            record,
            metering,
        }),
    }
}

/// A bidirectional reading (import, export in Wh) at local `h:m`.
fn reading(seq: u64, n: u16, (h, m): (i8, i8), import: i64, export: i64) -> Record {
    Record {
        seq,
        at: utc(h, m),
        body: RecordBody::MeterReading(MeterReading {
            pile: pile(1),
            connector: conn(1),
            serial: serial(1, n),
            measured_at: utc(h, m),
            import_register: wh(import),
            export_register: Some(wh(export)),
            power: None,
            soc: None,
            amount: None,
        }),
    }
}

async fn ingest(store: &Store, records: Vec<Record>) {
    store
        .ingest(&site("s-1"), &RecordBatch::new(site("s-1"), records))
        .await
        .unwrap();
}

fn wallet() -> LedgerAccountId {
    LedgerAccountId::DriverWallet(acct("d-1"))
}

fn payable() -> LedgerAccountId {
    LedgerAccountId::OperatorPayable(op("op-1"))
}

/// Settles everything pending and asserts exactly `n` settled and none failed.
async fn settle(e: &Env, n: usize) {
    let r = e.settler.settle_pending(100).await.unwrap();
    assert_eq!((r.settled(), r.failed()), (n, 0), "{:?}", r.outcomes);
}

/// The ledger is balanced and each balance is the sum of its postings; returns the audit.
async fn audited(store: &Store) -> voltline_cloud::money::Audit {
    let a = audit(store).await.unwrap();
    a.check().unwrap();
    a
}

async fn discharge_is_credited_to_the_cent(ctx: &Ctx) {
    seed(&ctx.store, true).await;
    let e = env(&ctx.store, false).await;
    deposit(&e.funds, 1_000).await;
    let o = discharge_order(&ctx.store, 1).await;
    // 2 kWh out before 09:00 (valley 0.50), 3 kWh after (peak 1.20): 1.00 + 3.60 = 4.60.
    ingest(
        &ctx.store,
        vec![
            reading(1, 1, (8, 30), 500, 11_000),
            reading(2, 1, (9, 0), 500, 12_000),
            reading(3, 1, (9, 30), 500, 13_500),
            discharge(4, 1, &o, (10_000, 15_000, 5_000), None),
        ],
    )
    .await;
    settle(&e, 1).await;
    let a = audited(&ctx.store).await;
    assert_eq!(
        a.available(&wallet()),
        Some(cents(1_000 + 460)),
        "{}",
        ctx.backend()
    );
    assert_eq!(a.available(&LedgerAccountId::V2gPayout), Some(cents(460)));
    assert_eq!(
        a.available(&LedgerAccountId::SessionClearing),
        Some(Money::ZERO)
    );
    let order = ctx.store.get_order(&o).await.unwrap();
    assert_eq!(order.state, OrderState::Settled);
    let b = order_breakdown(&ctx.store, &o).await.unwrap().unwrap();
    assert_eq!(
        (b.export_energy, b.import_energy),
        (wh(5_000), Energy::ZERO)
    );
    assert_eq!(b.figures.driver_credit, cents(460));
    assert_eq!(b.export.tariff_version, TariffVersion(3));
    assert!(!b.meter_anomaly && b.import.is_none());
    assert_eq!(
        e.charging.order_settlement(&o).await.unwrap(),
        Some((Money::ZERO, false)),
        "nothing charged, nothing flagged"
    );
    assert_eq!(e.cache.tariff_db_reads_during_settlement(), 0);
    // The bills read the V2G columns of the settlement row.
    let (export_mwh, credit): (i64, String) = v2g_columns(&ctx.store, &o).await;
    assert_eq!(export_mwh, 5_000_000);
    assert_eq!(credit.parse::<Decimal>().unwrap(), dec!(4.60));
}

async fn v2g_columns(store: &Store, o: &OrderId) -> (i64, String) {
    let (export_mwh, credit) = voltline_cloud::money::reverse::settlement_v2g_columns(store, o)
        .await
        .unwrap()
        .expect("a settlement row");
    (export_mwh, credit.to_string())
}

async fn mixed_session_settles_both_lines_in_one_balanced_set(ctx: &Ctx) {
    seed(&ctx.store, true).await;
    let e = env(&ctx.store, false).await;
    deposit(&e.funds, 1_000).await;
    let o = discharge_order(&ctx.store, 2).await;
    // Charges 2 kWh (08:00-08:30), discharges 3 kWh (09:00-09:30, peak), charges 2 kWh more
    // (09:30-10:00): import 4 kWh at 1.20 = 4.80, export 3 kWh at 1.20 = 3.60, never netted.
    let metering = BidirectionalMetering {
        import_energy: wh(4_000),
        export_energy: wh(3_000),
        first_registers: Some(RegisterPair {
            import: wh(100),
            export: wh(1_000),
        }),
        last_registers: Some(RegisterPair {
            import: wh(4_100),
            export: wh(4_000),
        }),
        anomalies: vec![],
        anomaly_count: 0,
    };
    ingest(
        &ctx.store,
        vec![
            reading(1, 2, (8, 30), 2_100, 1_000),
            reading(2, 2, (9, 0), 2_100, 1_000),
            reading(3, 2, (9, 30), 2_100, 4_000),
            discharge(4, 2, &o, (1_000, 4_000, 3_000), Some(metering)),
        ],
    )
    .await;
    settle(&e, 1).await;
    let a = audited(&ctx.store).await;
    // 10.00 + 3.60 − 4.80; the import's service fee 1.60 gives the platform 10 %: 0.16.
    assert_eq!(
        a.available(&wallet()),
        Some(cents(1_000 + 360 - 480)),
        "{}",
        ctx.backend()
    );
    assert_eq!(a.available(&payable()), Some(cents(464)));
    assert_eq!(
        a.available(&LedgerAccountId::PlatformRevenue),
        Some(cents(16))
    );
    assert_eq!(a.available(&LedgerAccountId::V2gPayout), Some(cents(360)));
    // One set for the session, holding both lines; no charging set beside it.
    let sets: Vec<_> = a
        .sets
        .iter()
        .filter(|(_, s)| s.memo.order.as_ref() == Some(&o))
        .collect();
    assert_eq!(sets.len(), 1, "one transfer set for the mixed session");
    let set = &sets[0].1;
    assert!(set.key.as_str().starts_with("v2g:"));
    assert!(set
        .legs
        .iter()
        .any(|l| l.debit == LedgerAccountId::V2gPayout
            && l.credit == wallet()
            && l.amount == cents(360)));
    assert!(set
        .legs
        .iter()
        .any(|l| l.debit == wallet() && l.amount == cents(480)));
    let b = order_breakdown(&ctx.store, &o).await.unwrap().unwrap();
    assert_eq!((b.import_energy, b.export_energy), (wh(4_000), wh(3_000)));
    assert_eq!(b.import.as_ref().unwrap().total, cents(480));
    assert_eq!(b.export.total, cents(360));
    assert_eq!(
        e.charging.order_settlement(&o).await.unwrap(),
        Some((cents(480), false))
    );
}

async fn the_host_share_comes_from_the_sharing_rule_on_top_of_the_credit(ctx: &Ctx) {
    seed(&ctx.store, true).await;
    create_rule(
        &ctx.store,
        &NewRule {
            operator: op("op-1"),
            site: None,
            effective_from: since(),
            terms: SharingTerms {
                v2g_operator_pct: Percent::new(dec!(15)).unwrap(),
                ..SharingTerms::default()
            },
        },
    )
    .await
    .unwrap();
    let e = env(&ctx.store, true).await;
    deposit(&e.funds, 0).await;
    let o = discharge_order(&ctx.store, 3).await;
    ingest(
        &ctx.store,
        vec![discharge(1, 3, &o, (0, 5_000, 5_000), None)],
    )
    .await;
    settle(&e, 1).await;
    // 5 kWh spread evenly over 08:00-10:00: 2.5 kWh at 0.50 + 2.5 kWh at 1.20 = 4.25;
    // the operator's 15 % host share (0.6375 → 0.64) is paid by the platform on top.
    let a = audited(&ctx.store).await;
    assert_eq!(
        a.available(&wallet()),
        Some(cents(425)),
        "{}",
        ctx.backend()
    );
    assert_eq!(a.available(&payable()), Some(cents(64)));
    assert_eq!(a.available(&LedgerAccountId::V2gPayout), Some(cents(489)));
    // The day's bill carries the V2G payout columns, and they match the ledger.
    let day = voltline_cloud::sharing::local_day(&TimeZone::get(ZONE).unwrap(), Timestamp::now());
    let job = BillJob::new(
        ctx.store.clone(),
        BillJobConfig {
            grace_s: 60,
            ..BillJobConfig::default()
        },
        "instance-a",
    );
    let later = Timestamp::now() + SignedDuration::from_hours(48);
    let bill = job.issue_day(&op("op-1"), day, later).await.unwrap();
    let t = bill.bill.totals;
    assert_eq!((t.sessions, t.energy_out), (1, wh(5_000)));
    assert_eq!(
        (t.v2g_driver_credits, t.v2g_operator_share),
        (cents(425), cents(64))
    );
    assert_eq!(t.net_payable(), cents(64));
    let check = check_day(&ctx.store, &op("op-1"), day).await.unwrap();
    assert!(check.is_clean(), "{:?}", check.differences);
    assert_eq!(
        (
            check.ledger.v2g_driver_credits,
            check.ledger.v2g_operator_share
        ),
        (cents(425), cents(64))
    );
}

async fn replays_and_two_instances_settle_once(ctx: &Ctx) {
    seed(&ctx.store, true).await;
    let a = env(&ctx.store, false).await;
    let b = env(&ctx.reopen().await, false).await; // a second cloud instance
    deposit(&a.funds, 0).await;
    let o = discharge_order(&ctx.store, 4).await;
    let rec = discharge(1, 4, &o, (0, 2_000, 2_000), None);
    ingest(&ctx.store, vec![rec.clone()]).await;
    // The edge resends the record under a new sequence number: stored once.
    let mut again = rec;
    again.seq = 2;
    ingest(&ctx.store, vec![again]).await;
    let (ra, rb) = tokio::join!(a.settler.settle_pending(10), b.settler.settle_pending(10));
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
        1,
        "{}: settled once",
        ctx.backend()
    );
    let replayed = ra
        .outcomes
        .iter()
        .chain(&rb.outcomes)
        .filter(|(_, o)| matches!(o, SettleOutcome::Replayed { .. }))
        .count();
    assert_eq!(ra.outcomes.len() + rb.outcomes.len(), 1 + replayed);
    assert!(a
        .settler
        .settle_pending(10)
        .await
        .unwrap()
        .outcomes
        .is_empty());
    // 2 kWh evenly over two hours: 1 kWh × 0.50 + 1 kWh × 1.20.
    let audit = audited(&ctx.store).await;
    assert_eq!(audit.available(&wallet()), Some(cents(170)));
    let keys = audit
        .sets
        .iter()
        .filter(|(_, s)| s.key.as_str().starts_with("v2g:"))
        .count();
    assert_eq!(keys, 1);
}

async fn meter_anomalies_are_flagged_and_never_billed_negative(ctx: &Ctx) {
    seed(&ctx.store, true).await;
    let e = env(&ctx.store, false).await;
    deposit(&e.funds, 100).await;
    let o = discharge_order(&ctx.store, 5).await;
    // The export register resets to 0 at 09:00; the record's end (500 Wh) is below its start.
    // Counted: 2 kWh before the reset (valley), 0.2 + 0.3 kWh after it (peak): 1.00 + 0.60.
    ingest(
        &ctx.store,
        vec![
            reading(1, 5, (8, 30), 0, 12_000),
            reading(2, 5, (9, 0), 0, 0),
            reading(3, 5, (9, 30), 0, 200),
            discharge(4, 5, &o, (10_000, 500, 0), None),
        ],
    )
    .await;
    settle(&e, 1).await;
    let a = audited(&ctx.store).await;
    assert_eq!(
        a.available(&wallet()),
        Some(cents(100 + 160)),
        "{}",
        ctx.backend()
    );
    let b = order_breakdown(&ctx.store, &o).await.unwrap().unwrap();
    assert!(b.meter_anomaly);
    let kinds: Vec<AnomalyKind> = b.anomalies.iter().map(|x| x.kind).collect();
    assert!(kinds.contains(&AnomalyKind::Decreased), "{kinds:?}");
    assert!(
        kinds.contains(&AnomalyKind::RecordInconsistent),
        "{kinds:?}"
    );
    assert_eq!(b.export_energy, wh(2_500));
    assert_eq!(
        e.charging.order_settlement(&o).await.unwrap(),
        Some((Money::ZERO, true)),
        "the anomaly is flagged on the order"
    );
    // A record that only went backwards credits nothing, and is flagged too.
    let o2 = discharge_order(&ctx.store, 6).await;
    ingest(
        &ctx.store,
        vec![discharge(5, 6, &o2, (9_000, 1_000, 0), None)],
    )
    .await;
    settle(&e, 1).await;
    let a = audited(&ctx.store).await;
    assert_eq!(a.available(&wallet()), Some(cents(260)));
    assert!(
        order_breakdown(&ctx.store, &o2)
            .await
            .unwrap()
            .unwrap()
            .meter_anomaly
    );
}

async fn without_a_discharge_tariff_a_session_waits_then_settles(ctx: &Ctx) {
    seed(&ctx.store, false).await;
    let e = env(&ctx.store, false).await;
    deposit(&e.funds, 0).await;
    let o = discharge_order(&ctx.store, 7).await;
    ingest(
        &ctx.store,
        vec![discharge(1, 7, &o, (0, 1_000, 1_000), None)],
    )
    .await;
    let r = e.settler.settle_pending(10).await.unwrap();
    match &r.outcomes[..] {
        [(_, SettleOutcome::Failed(why))] => {
            assert!(why.contains("no discharge tariff"), "{why}")
        }
        other => panic!("expected one failure, got {other:?}"),
    }
    assert_eq!(
        audited(&ctx.store).await.available(&wallet()),
        Some(Money::ZERO)
    );
    assign(&ctx.store, "feed-in-1", &feed_in(3), OrderKind::Discharge).await;
    e.cache.refresh(&ctx.store).await.unwrap();
    settle(&e, 1).await;
    // 1 kWh evenly over two hours: 0.5 × 0.50 + 0.5 × 1.20 = 0.85.
    assert_eq!(
        audited(&ctx.store).await.available(&wallet()),
        Some(cents(85))
    );
}

on_both_backends!(
    discharge_is_credited_to_the_cent,
    mixed_session_settles_both_lines_in_one_balanced_set,
    the_host_share_comes_from_the_sharing_rule_on_top_of_the_credit,
    replays_and_two_instances_settle_once,
    meter_anomalies_are_flagged_and_never_billed_negative,
    without_a_discharge_tariff_a_session_waits_then_settles,
);
