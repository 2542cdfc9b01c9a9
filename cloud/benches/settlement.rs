//! Settlement throughput of the SQL ledger, with zero lost updates checked after every run.
//!
//! For each backend (SQLite always, in a temporary directory; PostgreSQL when
//! `VOLTLINE_TEST_PG` is set, in a schema of its own that is dropped afterwards) and each
//! shape — **spread** over `ACCOUNTS` wallets and **hot** on one wallet — it measures, side by
//! side in one run:
//!
//! - **group commit**: every session's settlement submitted at once to the `LedgerWriter`,
//!   which applies up to 1,024 per database transaction and acknowledges each only after its
//!   batch commits. Each settlement is planned by the writer with
//!   `ledger::settlement::plan_settlement` (post the hold for the cost, release the rest,
//!   split to the operator's payable and the platform fee): 5 legs, ~12 postings;
//! - **baseline**, what the platform's original design did: take a lock, read the balances,
//!   write them back with a version check, one settlement per database transaction (the
//!   same writer with batches of 1, behind one process-wide lock);
//! - **settler**: settlement end to end, as the cloud's settlement loop runs it
//!   (`Settler::settle_pending` over stored charge records: orders and readings read, priced
//!   from the tariff cache, settlement rows, records and orders written with the postings in
//!   the writer's group commits; see `settlement/settler.rs`). The other two modes measure
//!   the ledger's share of that.
//!
//! Holds are placed before the clock starts. After each run the whole ledger is read back
//! (`money::audit`): every balance must equal the sum of its postings, a replay of every
//! committed set through the in-memory reference ledger must end with the same balances,
//! and every wallet must hold exactly `deposit - sessions x cost` — no lost update.
//!
//! Goals on 2 cores (cloud money issue, item 8): >= 20,000/s SQLite and >= 10,000/s
//! PostgreSQL spread, >= 5,000/s on one hot account, >= 5x the baseline on the hot account.
//!
//! Run: `cargo bench -p voltline-cloud --bench settlement`
//! (with `VOLTLINE_TEST_PG=postgres://postgres@127.0.0.1:5432/test` for PostgreSQL;
//! `VOLTLINE_BENCH_SETTLEMENTS` sets the group-commit count, default 20000;
//! `VOLTLINE_BENCH_ONLY=sqlite/spread` runs only the runs whose label starts so, for profiling).

#[path = "settlement/settler.rs"]
mod settler;

use std::str::FromStr;
use std::sync::Arc;
use std::time::Instant;

use futures::StreamExt;
use jiff::tz::TimeZone;
use jiff::{Timestamp, ToSpan};
use rand::RngCore;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use voltline_cloud::funds::{Funds, HoldRequest, PaymentRequest};
use voltline_cloud::ledger::{
    plan_settlement, AccountPolicy, Hold, IdempotencyKey, LedgerAccountId, LedgerError, LedgerView,
    PendingStatus, PlatformFeeRule, RecordRef, SettlementInput, TransferId,
};
use voltline_cloud::money::{
    audit, Job, LedgerWriter, Planned, SqlFunds, SqlFundsConfig, WriterConfig,
};
use voltline_cloud::Store;
use voltline_protocol::domain::{
    AccountId, ConnectorNo, OperatorId, OrderId, PileCode, SerialTime, TransactionSerial,
};
use voltline_protocol::tariff::{
    CostBreakdown, MeterReading, ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay,
};
use voltline_protocol::{Energy, Money};

const ACCOUNTS: usize = 1_000;
const HOLD_CENTS: i64 = 2_000;
const COST_CENTS: i64 = 1_500;
const IN_FLIGHT: usize = 4_096;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn cost() -> CostBreakdown {
    let tariff = Tariff::new(
        TariffVersion(1),
        TimeZone::get("Asia/Shanghai").expect("zone"),
        vec![TariffPeriod::new(
            "flat",
            Money::from_cents(100),
            Money::from_cents(50),
        )],
        vec![ScheduleEntry::new(TimeOfDay::MIDNIGHT, 0)],
    )
    .expect("valid tariff");
    let t0 = Timestamp::from_second(1_790_000_000).expect("in range");
    let c = tariff
        .cost(&[
            MeterReading::new(t0, Energy::from_wh(0)),
            MeterReading::new(t0 + 1.hour(), Energy::from_wh(10_000)),
        ])
        .expect("priced");
    assert_eq!(c.total, Money::from_cents(COST_CENTS));
    c
}

fn account(i: usize) -> AccountId {
    AccountId::new(format!("acc-{i}")).expect("valid account id")
}

fn order(run: &str, n: usize) -> OrderId {
    OrderId::new(format!("{run}-{n}")).expect("valid order id")
}

fn record(run_no: u64, n: usize) -> RecordRef {
    let pile = PileCode::from_number(32_010_600_000_000 + run_no * 1_000 + (n / 9_000) as u64)
        .expect("14 digits");
    let at = SerialTime {
        year: 26,
        month: 11,
        day: 25,
        hour: 4,
        minute: 0,
        second: 0,
    };
    let serial = TransactionSerial::compose(
        pile,
        ConnectorNo::new(1).expect("1"),
        at,
        (n % 9_000) as u16,
    )
    .expect("serial");
    RecordRef { pile, serial }
}

fn settlement(rec: RecordRef, ord: OrderId, acc: AccountId, cost: Arc<CostBreakdown>) -> Job {
    let wallet = LedgerAccountId::DriverWallet(acc.clone());
    let pending = TransferId::new(IdempotencyKey::hold(&ord), 0);
    let operator = OperatorId::new("op-1").expect("op id");
    let accounts = vec![
        wallet.clone(),
        LedgerAccountId::OperatorPayable(operator.clone()),
        LedgerAccountId::SessionClearing,
        LedgerAccountId::PlatformRevenue,
    ];
    Job::planned(
        IdempotencyKey::settlement(&rec),
        accounts,
        vec![pending.clone()],
        move |view| {
            let w = view
                .account(&wallet)
                .ok_or_else(|| LedgerError::UnknownAccount(wallet.clone()))?;
            let hold = view
                .pending(&pending)
                .filter(|p| p.status == PendingStatus::Open)
                .map(|p| Hold {
                    order: ord.clone(),
                    account: acc.clone(),
                    pending: p.id,
                    amount: p.amount,
                });
            let plan = plan_settlement(&SettlementInput {
                record: rec,
                order: ord.clone(),
                account: acc.clone(),
                operator: operator.clone(),
                hold,
                tariff_version_at_start: TariffVersion(1),
                cost: &cost,
                charger_reported_total: cost.total,
                platform_fee: PlatformFeeRule::new(rust_decimal::Decimal::new(10, 0))?,
                wallet_available: w.available(),
                credit_limit: w.policy.credit_limit().unwrap_or(Money::ZERO),
            })?;
            Ok(Planned {
                set: plan.set,
                settlement: None,
            })
        },
    )
}

struct Outcome {
    per_second: f64,
    retries: u64,
}

/// Batch attempts `writer` has replayed so far.
fn retries(writer: &LedgerWriter) -> u64 {
    writer
        .stats()
        .retries
        .load(std::sync::atomic::Ordering::Relaxed)
}

/// Opens `accounts` wallets, each topped up with the holds of its share of `sessions`;
/// returns the deposit of each.
async fn fund_wallets(funds: &Arc<SqlFunds>, accounts: usize, sessions: usize) -> i64 {
    let deposit = (sessions.div_ceil(accounts) as i64) * HOLD_CENTS;
    futures::stream::iter(0..accounts)
        .for_each_concurrent(64, |i| {
            let funds = funds.clone();
            async move {
                funds
                    .open_wallet(&account(i), Money::ZERO)
                    .await
                    .expect("open wallet");
                let pay = PaymentRequest {
                    account: account(i),
                    amount: Money::from_cents(deposit),
                    provider: "test".into(),
                    reference: format!("seed-{i}"),
                };
                funds.top_up(&pay).await.expect("top up");
            }
        })
        .await;
    deposit
}

/// Zero lost updates: every wallet holds exactly deposit - its sessions x cost, and the
/// whole ledger agrees with its journal and with the reference model.
async fn check_balances(
    store: &Store,
    label: &str,
    accounts: usize,
    sessions: usize,
    deposit: i64,
) {
    let audit = audit(store).await.expect("audit");
    audit
        .check()
        .unwrap_or_else(|why| panic!("{label}: ledger broken: {why}"));
    for i in 0..accounts {
        let n_sessions = (0..sessions).filter(|n| n % accounts == i).count() as i64;
        let expected = Money::from_cents(deposit - n_sessions * COST_CENTS);
        let wallet = LedgerAccountId::DriverWallet(account(i));
        assert_eq!(
            audit.available(&wallet),
            Some(expected),
            "{label}: lost update on {wallet}"
        );
    }
}

/// One run: `sessions` settlements over `accounts` wallets, group-committed or baseline.
async fn run(
    store: &Store,
    run_no: u64,
    label: &str,
    accounts: usize,
    sessions: usize,
    baseline: bool,
) -> Outcome {
    let config = WriterConfig {
        max_batch: if baseline { 1 } else { 1_024 },
        ..WriterConfig::default()
    };
    let writer = LedgerWriter::start(store.clone(), config, None);
    let funds = Arc::new(SqlFunds::new(
        writer.clone(),
        SqlFundsConfig {
            default_hold: Money::from_cents(HOLD_CENTS),
            minimum_hold: Money::from_cents(100),
        },
    ));
    let payable = LedgerAccountId::OperatorPayable(OperatorId::new("op-1").expect("op id"));
    voltline_cloud::money::funds::open_account(
        store,
        &payable,
        AccountPolicy::default_for(&payable),
    )
    .await
    .expect("open payable");
    let run = format!("r{run_no}");
    let deposit = fund_wallets(&funds, accounts, sessions).await;
    futures::stream::iter(0..sessions)
        .for_each_concurrent(IN_FLIGHT, |n| {
            let (funds, run) = (funds.clone(), run.clone());
            async move {
                let req = HoldRequest {
                    order: order(&run, n),
                    account: account(n % accounts),
                    requested: None,
                    expires_at: Timestamp::from_second(1_900_000_000).expect("t"),
                };
                funds.place_hold(req).await.expect("hold");
            }
        })
        .await;
    let cost = Arc::new(cost());
    let lock = Arc::new(tokio::sync::Mutex::new(()));
    let retries_before = retries(&writer);
    let started = Instant::now();
    futures::stream::iter(0..sessions)
        .for_each_concurrent(IN_FLIGHT, |n| {
            let (writer, run, cost, lock) =
                (writer.clone(), run.clone(), cost.clone(), lock.clone());
            async move {
                let job = settlement(
                    record(run_no, n),
                    order(&run, n),
                    account(n % accounts),
                    cost,
                );
                let _guard = if baseline {
                    Some(lock.lock().await)
                } else {
                    None
                };
                let applied = writer.submit(job).await.expect("settled");
                assert!(!applied.replay);
            }
        })
        .await;
    let elapsed = started.elapsed();
    let retries = retries(&writer) - retries_before;
    check_balances(store, label, accounts, sessions, deposit).await;
    Outcome {
        per_second: sessions as f64 / elapsed.as_secs_f64(),
        retries,
    }
}

async fn fresh_sqlite(dir: &tempfile::TempDir, n: u64) -> Store {
    Store::open_in_dir(&dir.path().join(format!("db-{n}")))
        .await
        .expect("sqlite")
}

async fn fresh_pg(url: &str) -> (Store, String) {
    let mut bytes = [0u8; 6];
    rand::rng().fill_bytes(&mut bytes);
    let schema = format!(
        "voltline_bench_{}",
        bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
    );
    let mut conn = PgConnection::connect(url)
        .await
        .expect("connect VOLTLINE_TEST_PG");
    sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
        .execute(&mut conn)
        .await
        .expect("schema");
    conn.close().await.ok();
    let options = PgConnectOptions::from_str(url)
        .expect("postgres url")
        .options([("search_path", schema.as_str())]);
    let store = Store::connect_postgres(options).await.expect("connect");
    store.migrate().await.expect("migrate");
    (store, schema)
}

async fn drop_pg(url: &str, schema: &str) {
    if let Ok(mut conn) = PgConnection::connect(url).await {
        let _ = sqlx::raw_sql(AssertSqlSafe(format!(
            "DROP SCHEMA IF EXISTS {schema} CASCADE"
        )))
        .execute(&mut conn)
        .await;
    }
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sessions = env_or("VOLTLINE_BENCH_SETTLEMENTS", 20_000) as usize;
        let baseline_sessions = (sessions / 10).max(200);
        let dir = tempfile::tempdir().expect("temp dir");
        let pg = std::env::var("VOLTLINE_TEST_PG").ok();
        let only = std::env::var("VOLTLINE_BENCH_ONLY").ok();
        if pg.is_none() {
            println!("PostgreSQL skipped: set VOLTLINE_TEST_PG=postgres://... to bench it too");
        }
        println!("{:<10} {:<7} {:<13} {:>9} {:>14} {:>8}", "backend", "shape", "mode", "sessions", "settlements/s", "retries");
        let mut n = 0u64;
        let mut hot = Vec::new();
        for backend in ["sqlite", "postgres"] {
            for (shape, accounts) in [("spread", ACCOUNTS), ("hot", 1)] {
                for (mode, count) in [("group-commit", sessions), ("settler", sessions), ("baseline", baseline_sessions)] {
                    n += 1;
                    let label = format!("{backend}/{shape}/{mode}");
                    if !only.as_deref().is_none_or(|o| label.starts_with(o)) {
                        continue;
                    }
                    let (store, schema) = match (backend, &pg) {
                        ("sqlite", _) => (fresh_sqlite(&dir, n).await, None),
                        (_, Some(url)) => {
                            let (s, schema) = fresh_pg(url).await;
                            (s, Some(schema))
                        }
                        _ => continue,
                    };
                    let out = match mode {
                        "settler" => settler::run(&store, n, &label, accounts, count).await,
                        _ => run(&store, n, &label, accounts, count, mode == "baseline").await,
                    };
                    println!("{backend:<10} {shape:<7} {mode:<13} {count:>9} {:>14.0} {:>8}", out.per_second, out.retries);
                    if shape == "hot" {
                        hot.push((backend, mode, out.per_second));
                    }
                    store.close().await;
                    if let (Some(url), Some(schema)) = (&pg, schema) {
                        drop_pg(url, &schema).await;
                    }
                }
            }
        }
        for backend in ["sqlite", "postgres"] {
            let rate = |m: &str| hot.iter().find(|(b, mode, _)| *b == backend && *mode == m).map(|(_, _, r)| *r);
            if let (Some(g), Some(b)) = (rate("group-commit"), rate("baseline")) {
                println!("{backend}: hot account group commit is {:.1}x the baseline", g / b);
            }
            if let (Some(s), Some(b)) = (rate("settler"), rate("baseline")) {
                println!("{backend}: hot account settler (end to end) is {:.1}x the baseline", s / b);
            }
        }
        println!("every run: zero lost updates (exact final balances, journal and reference model agree)");
    });
}
