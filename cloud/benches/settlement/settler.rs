//! The **settler** mode of the settlement bench: settlement end to end, as the cloud's
//! settlement loop does it. Stored charge records (ingested as an edge sends them, each tied
//! to an order with a hold) are settled by repeated `Settler::settle_pending` calls: each
//! picks unsettled records, reads their orders and meter readings, prices them from the
//! tariff cache and submits them to the group-committing writer, which writes the postings,
//! the settlement rows, the records' `settled` flag and the orders' cost in one transaction.
//! The ledger-only modes of `settlement.rs` leave out everything but the postings.
//!
//! Afterwards every record must be settled exactly once with the tariff's cost, on its
//! order too, and every wallet must hold exactly `deposit - sessions x cost`.

use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::Timestamp;
use voltline_cloud::domain::{OrderKind, PaymentMethod};
use voltline_cloud::funds::{Funds, HoldRequest};
use voltline_cloud::ledger::PlatformFeeRule;
use voltline_cloud::money::{
    LedgerWriter, Settler, SettlerConfig, SqlFunds, SqlFundsConfig, TariffCache, WriterConfig,
};
use voltline_cloud::store::{
    new_command_id, NewCharger, NewCommand, NewOrder, NewSite, TariffAssignment,
};
use voltline_cloud::Store;
use voltline_protocol::domain::{ConnectorNo, OperatorId, SiteId};
use voltline_protocol::message::transaction::{
    PeriodLine, PhysicalCardNo, StopReason, TransactionOrigin, TransactionRecord,
};
use voltline_protocol::sync::{
    Authorisation, Command, Record, RecordBatch, RecordBody, SessionLimit, TransactionUp,
};
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::wire::text::FixedText;
use voltline_protocol::{Energy, Money};

use super::{account, fund_wallets, order, record, Outcome, COST_CENTS, HOLD_CENTS, IN_FLIGHT};

/// Records per `settle_pending` call: the most one call takes.
const PASS: usize = voltline_cloud::money::limits::MAX_SETTLE_BATCH;
/// Records per ingested batch (what one MQTT batch from an edge may carry).
const INGEST_CHUNK: usize = voltline_protocol::sync::MAX_MQTT_BATCH_RECORDS;
const ZONE: &str = "Asia/Shanghai";

/// 1.00 energy + 0.50 service per kWh all day: 10 kWh cost [`COST_CENTS`].
fn flat_tariff() -> Tariff {
    Tariff::new(
        TariffVersion(1),
        TimeZone::get(ZONE).expect("zone"),
        vec![TariffPeriod::new(
            "flat",
            Money::from_cents(100),
            Money::from_cents(50),
        )],
        vec![ScheduleEntry::new(TimeOfDay::MIDNIGHT, 0)],
    )
    .expect("valid tariff")
}

/// The charger's record of session `n`: 10 kWh from 04:00 to 05:00 local, with the total the
/// charger priced it at (the same as the tariff's, so no mismatch is flagged).
fn transaction(run_no: u64, run: &str, n: usize) -> Record {
    let rec = record(run_no, n);
    let line = |wh: i64| PeriodLine {
        unit_price: Money::from_cents(150),
        energy: Energy::from_wh(wh),
        loss_adjusted_energy: Energy::from_wh(wh),
        amount: Money::from_cents(if wh == 0 { 0 } else { COST_CENTS }),
    };
    let at = |h| Cp56Time::from_civil(date(2026, 11, 25).at(h, 0, 0, 0)).expect("in range");
    let record = TransactionRecord {
        serial: rec.serial,
        pile_code: rec.pile,
        connector: ConnectorNo::new(1).expect("1"),
        start_time: at(4),
        end_time: at(5),
        periods: [line(0), line(0), line(10_000), line(0)],
        meter_start: Energy::from_wh(100_000),
        meter_end: Energy::from_wh(110_000),
        total_energy: Energy::from_wh(10_000),
        loss_adjusted_total_energy: Energy::from_wh(10_000),
        total_amount: Money::from_cents(COST_CENTS),
        vin: FixedText::from_text("LSVAU2180N2183294").expect("vin"),
        origin: TransactionOrigin::APP,
        transaction_time: at(5),
        stop_reason: StopReason::SOC_FULL,
        physical_card: PhysicalCardNo::NONE,
    };
    Record {
        seq: n as u64 + 1,
        at: Timestamp::now(),
        body: RecordBody::Transaction(TransactionUp {
            pile: rec.pile,
            authorisation: Authorisation::Order {
                order: order(run, n),
            },
            edge_cost: Some(Money::from_cents(COST_CENTS)),
            record,
        }),
    }
}

/// Operator, site, its chargers, the driver accounts and the tariff in force.
async fn seed_registry(
    store: &Store,
    run_no: u64,
    site: &SiteId,
    accounts: usize,
    sessions: usize,
) {
    let op = OperatorId::new("op-1").expect("op id");
    let _ = store.create_operator(&op, "Bench Operator").await;
    store
        .create_site(&NewSite {
            id: site.clone(),
            operator: op.clone(),
            name: "Bench site".into(),
            time_zone: ZONE.into(),
        })
        .await
        .expect("site");
    let mut piles: Vec<_> = (0..sessions).map(|n| record(run_no, n).pile).collect();
    piles.dedup();
    for pile in piles {
        store
            .create_charger(&NewCharger {
                pile,
                site: site.clone(),
                connectors: 2,
            })
            .await
            .expect("charger");
    }
    futures::stream::iter(0..accounts)
        .for_each_concurrent(64, |i| {
            let op = op.clone();
            async move {
                store
                    .create_account(&account(i), Some(&op), "Bench driver")
                    .await
                    .expect("account");
            }
        })
        .await;
    let from = Timestamp::from_second(1_700_000_000).expect("t");
    let tariff_id = format!("bench-flat-{run_no}");
    store
        .create_tariff_version(&tariff_id, &op, &flat_tariff(), from)
        .await
        .expect("tariff");
    store
        .assign_tariff(&TariffAssignment {
            site: site.clone(),
            kind: OrderKind::Charge,
            tariff_id,
            version: TariffVersion(1),
            effective_from: from,
        })
        .await
        .expect("assign");
}

/// Order `n` with its hold and start command, stored as the session API stores it.
async fn place_order(
    store: &Store,
    funds: &SqlFunds,
    site: &SiteId,
    run_no: u64,
    run: &str,
    accounts: usize,
    n: usize,
) {
    let rec = record(run_no, n);
    let id = order(run, n);
    let acc = account(n % accounts);
    let held = funds
        .place_hold(HoldRequest {
            order: id.clone(),
            account: acc.clone(),
            requested: None,
            expires_at: Timestamp::from_second(1_900_000_000).expect("t"),
        })
        .await
        .expect("hold");
    let limit = SessionLimit {
        amount: Some(held.amount),
        energy: None,
    };
    let connector = ConnectorNo::new(1).expect("1");
    let new = NewOrder {
        id: id.clone(),
        account: acc.clone(),
        site: site.clone(),
        pile: rec.pile,
        connector,
        kind: OrderKind::Charge,
        payment_method: PaymentMethod::Wallet,
        limit,
        hold_id: Some(held.hold_id),
        transaction_serial: Some(rec.serial),
        idempotency_key: None,
    };
    let start = NewCommand {
        id: new_command_id(),
        site: site.clone(),
        order: Some(id.clone()),
        command: Command::StartCharging {
            pile: rec.pile,
            connector,
            order: id,
            account: acc,
            serial: rec.serial,
            limit,
        },
        expires_at: Timestamp::from_second(1_900_000_000).expect("t"),
    };
    store.create_order(&new, &start).await.expect("order");
}

/// One settler run: `sessions` stored records over `accounts` wallets.
pub async fn run(
    store: &Store,
    run_no: u64,
    label: &str,
    accounts: usize,
    sessions: usize,
) -> Outcome {
    let writer = LedgerWriter::start(store.clone(), WriterConfig::default(), None);
    let funds = Arc::new(SqlFunds::new(
        writer.clone(),
        SqlFundsConfig {
            default_hold: Money::from_cents(HOLD_CENTS),
            minimum_hold: Money::from_cents(100),
        },
    ));
    let site = SiteId::new(format!("bench-{run_no}")).expect("site id");
    let run = format!("r{run_no}");
    seed_registry(store, run_no, &site, accounts, sessions).await;
    let deposit = fund_wallets(&funds, accounts, sessions).await;
    futures::stream::iter(0..sessions)
        .for_each_concurrent(IN_FLIGHT, |n| {
            let (funds, site, run) = (funds.clone(), site.clone(), run.clone());
            async move { place_order(store, &funds, &site, run_no, &run, accounts, n).await }
        })
        .await;
    let records: Vec<Record> = (0..sessions)
        .map(|n| transaction(run_no, &run, n))
        .collect();
    for chunk in records.chunks(INGEST_CHUNK) {
        store
            .ingest(&site, &RecordBatch::new(site.clone(), chunk.to_vec()))
            .await
            .expect("ingest");
    }
    let cache = Arc::new(TariffCache::new());
    cache.warm(store).await.expect("tariff cache");
    let settler = Settler::new(
        writer.clone(),
        cache,
        SettlerConfig {
            platform_fee: PlatformFeeRule::new(rust_decimal::Decimal::new(10, 0)).expect("fee"),
        },
    );
    let retries_before = super::retries(&writer);
    let started = Instant::now();
    let mut settled = 0;
    while settled < sessions {
        let report = settler.settle_pending(PASS).await.expect("settlement pass");
        assert_eq!(
            report.failed(),
            0,
            "{label}: a record failed to settle: {:?}",
            report
                .outcomes
                .iter()
                .find(|(_, o)| !matches!(o, voltline_cloud::money::SettleOutcome::Settled(_)))
        );
        assert!(
            report.settled() > 0,
            "{label}: a pass settled nothing with {} left",
            sessions - settled
        );
        settled += report.settled();
    }
    let elapsed = started.elapsed();
    let retries = super::retries(&writer) - retries_before;
    assert_eq!(
        settled, sessions,
        "{label}: settled more records than stored"
    );
    assert_eq!(
        settler
            .settle_pending(PASS)
            .await
            .expect("pass")
            .outcomes
            .len(),
        0,
        "{label}: records left unsettled"
    );
    // Exactly once, at the tariff's cost, on the record and on its order.
    futures::stream::iter(0..sessions)
        .for_each_concurrent(64, |n| {
            let settler = &settler;
            let run = &run;
            async move {
                let rec = record(run_no, n);
                let (cost, mismatch, ord) = settler
                    .settlement_of(&rec.pile.to_string(), &rec.serial.to_string())
                    .await
                    .expect("settlement")
                    .unwrap_or_else(|| panic!("{label}: record {n} not settled"));
                assert_eq!(
                    (cost, mismatch),
                    (Money::from_cents(COST_CENTS), false),
                    "{label}: record {n}"
                );
                assert_eq!(
                    ord.as_deref(),
                    Some(order(run, n).as_str()),
                    "{label}: record {n}"
                );
                let on_order = settler
                    .order_settlement(&order(run, n))
                    .await
                    .expect("order");
                assert_eq!(
                    on_order,
                    Some((Money::from_cents(COST_CENTS), false)),
                    "{label}: order {n}"
                );
            }
        })
        .await;
    super::check_balances(store, label, accounts, sessions, deposit).await;
    Outcome {
        per_second: sessions as f64 / elapsed.as_secs_f64(),
        retries,
    }
}
