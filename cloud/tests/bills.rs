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

mod bills {
    pub(crate) mod csv_cli;
    pub(crate) mod jobs;
    pub(crate) mod late;
    pub(crate) mod ledger;
}

use bills::jobs::*;
use bills::late::*;
use bills::ledger::*;

on_both_backends!(
    settled_and_billed_through_the_ledger_to_the_cent,
    a_berlin_dst_day_has_25_hours_and_late_records_go_to_the_next_bill,
    a_check_reports_a_bill_that_differs_from_the_ledger,
    two_instances_racing_for_the_job_issue_each_bill_once,
    volume_tiers_read_the_months_issued_bills,
);
