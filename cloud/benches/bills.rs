//! Daily bills for a day of 1,000,000 settled sessions across 200 operators.
//!
//! For each backend (SQLite always, in a temporary directory; PostgreSQL when
//! `VOLTLINE_TEST_PG` is set, in a schema of its own that is dropped afterwards):
//!
//! 1. **seed** (not timed): 200 operators in five time zones (UTC, Asia/Shanghai,
//!    Europe/Berlin — whose 2026-10-25 has 25 hours —, America/Santiago, America/New_York),
//!    five sites each, and `SESSIONS` settlement rows spread over each operator's local
//!    2026-10-25, 1 % of them late records of an earlier day; written in bulk (`COPY` on
//!    PostgreSQL, multi-row inserts in one transaction on SQLite), then `ANALYZE`;
//! 2. **baseline**: read every operator's rows of the day, as the bill job reads them (same
//!    query, same concurrency), and drop them;
//! 3. **bill pass**: one `BillJob::run_pass` — take the lease, cut every operator's day at its
//!    local midnight, write each bill with its session keys under the fence — then check
//!    that every session is on exactly one bill and the bills sum to the seeded totals.
//!
//! Goal (multi-operator settlement issue, item 7): the bill pass ≤ 60 s on PostgreSQL on 2
//! cores.
//!
//! Run: `VOLTLINE_TEST_PG=postgres://postgres:postgres@127.0.0.1:5432/test cargo bench -p
//! voltline-cloud --bench bills` (`VOLTLINE_BENCH_BILL_SESSIONS` sets the session count,
//! `VOLTLINE_BENCH_BILL_BACKENDS=postgres` or `sqlite` runs one backend).

use std::str::FromStr;
use std::time::Instant;

use futures::StreamExt;
use jiff::civil::date;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};
use rand::{Rng, RngCore, SeedableRng};
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use voltline_cloud::bills::rules::{billing_settings_page, set_billing_settings};
use voltline_cloud::bills::seed::{seed_sessions, SeedSession};
use voltline_cloud::bills::store::{list_bills, unbilled_sessions, BillFilter};
use voltline_cloud::bills::{BillJob, BillJobConfig};
use voltline_cloud::sharing::day_bounds;
use voltline_cloud::store::NewSite;
use voltline_cloud::Store;
use voltline_protocol::domain::{OperatorId, SiteId};
use voltline_protocol::Money;

const OPERATORS: usize = 200;
const SITES_PER_OPERATOR: usize = 5;
const ZONES: [&str; 5] = [
    "UTC",
    "Asia/Shanghai",
    "Europe/Berlin",
    "America/Santiago",
    "America/New_York",
];
/// Rows generated and written per seeding step (bounds the bench's memory).
const SEED_STEP: usize = 50_000;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn operator(i: usize) -> OperatorId {
    OperatorId::new(format!("op-{i:03}")).expect("id")
}

fn site(i: usize, s: usize) -> SiteId {
    SiteId::new(format!("op-{i:03}-s{s}")).expect("id")
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

/// Seeds the registry and the day's sessions; returns (sessions, gross, fees).
async fn seed(store: &Store, sessions: usize) -> (u64, Money, Money) {
    let day = date(2026, 10, 25);
    for i in 0..OPERATORS {
        store
            .create_operator(&operator(i), "bench")
            .await
            .expect("operator");
        let zone = ZONES[i % ZONES.len()];
        for s in 0..SITES_PER_OPERATOR {
            store
                .create_site(&NewSite {
                    id: site(i, s),
                    operator: operator(i),
                    name: "bench".into(),
                    time_zone: zone.into(),
                })
                .await
                .expect("site");
        }
        set_billing_settings(store, &operator(i), zone, day)
            .await
            .expect("settings");
    }
    let bounds: Vec<(Timestamp, i64)> = (0..OPERATORS)
        .map(|i| {
            let b = day_bounds(&TimeZone::get(ZONES[i % ZONES.len()]).expect("zone"), day)
                .expect("bounds");
            (b.start, b.end.duration_since(b.start).as_secs())
        })
        .collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    let (mut gross, mut fees) = (Money::ZERO, Money::ZERO);
    let mut n = 0usize;
    while n < sessions {
        let step = SEED_STEP.min(sessions - n);
        let batch: Vec<SeedSession> = (n..n + step)
            .map(|k| {
                let i = k % OPERATORS;
                let (start, secs) = bounds[i];
                let settled = start + SignedDuration::from_secs(rng.random_range(0..secs));
                let late = rng.random_range(0..100) == 0;
                let ended = if late {
                    settled - SignedDuration::from_hours(rng.random_range(30..100))
                } else {
                    (settled - SignedDuration::from_secs(rng.random_range(1..600))).max(start)
                };
                let g = Money::from_cents(rng.random_range(100..20_000));
                let f = Money::from_cents(g.to_scaled(2).unwrap_or(0) / 10);
                gross += g;
                fees += f;
                SeedSession {
                    key: format!("b{k:08}"),
                    operator: operator(i),
                    site: site(i, (k / OPERATORS) % SITES_PER_OPERATOR),
                    started_at: ended - SignedDuration::from_mins(40),
                    ended_at: ended,
                    settled_at: settled,
                    energy_mwh: rng.random_range(1_000..60_000_000),
                    gross: g,
                    platform_fee: f,
                    rule_version: Some(1),
                }
            })
            .collect();
        seed_sessions(store, &batch, false).await.expect("seed");
        n += step;
    }
    voltline_cloud::bills::seed::analyze(store)
        .await
        .expect("analyze");
    (n as u64, gross, fees)
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let sessions = env_or("VOLTLINE_BENCH_BILL_SESSIONS", 1_000_000) as usize;
        let only = std::env::var("VOLTLINE_BENCH_BILL_BACKENDS").unwrap_or_default();
        let pg = std::env::var("VOLTLINE_TEST_PG").ok();
        if pg.is_none() {
            println!("PostgreSQL skipped: set VOLTLINE_TEST_PG=postgres://... to bench it too");
        }
        let dir = tempfile::tempdir().expect("temp dir");
        println!(
            "{:<9} {:>9} {:>9} {:>11} {:>11} {:>7} {:>12}",
            "backend", "sessions", "operators", "read s", "bill s", "bill/read", "sessions/s"
        );
        for backend in ["postgres", "sqlite"] {
            if !only.is_empty() && !only.contains(backend) {
                continue;
            }
            let (store, schema) = match (backend, &pg) {
                ("sqlite", _) => (Store::open_in_dir(dir.path()).await.expect("sqlite"), None),
                (_, Some(url)) => {
                    let (s, schema) = fresh_pg(url).await;
                    (s, Some(schema))
                }
                _ => continue,
            };
            let seeding = Instant::now();
            let (n, gross, fees) = seed(&store, sessions).await;
            eprintln!("{backend}: seeded {n} sessions in {:.1} s (not timed)", seeding.elapsed().as_secs_f64());
            let now = Timestamp::from_second(1_792_972_800).expect("2026-10-26T00:00Z")
                + SignedDuration::from_hours(12);
            // Baseline: read the day's rows as the job does.
            let settings = billing_settings_page(&store, "", 1_000).await.expect("settings");
            let read = Instant::now();
            let rows: Vec<usize> = futures::stream::iter(settings.iter())
                .map(|s| {
                    let store = store.clone();
                    async move {
                        let b = day_bounds(&s.time_zone, date(2026, 10, 25)).expect("bounds");
                        unbilled_sessions(&store, &s.operator, b.start - SignedDuration::from_hours(24 * 7), b.end)
                            .await
                            .expect("read")
                            .len()
                    }
                })
                .buffer_unordered(voltline_cloud::bills::limits::PARALLEL_OPERATORS)
                .collect()
                .await;
            let read_s = read.elapsed().as_secs_f64();
            assert_eq!(rows.iter().sum::<usize>() as u64, n, "the baseline read every row");
            // The bill pass.
            let job = BillJob::new(store.clone(), BillJobConfig::default(), "bench");
            let started = Instant::now();
            let report = job.run_pass(now).await.expect("bill pass");
            let bill_s = started.elapsed().as_secs_f64();
            assert!(report.failures.is_empty(), "{:?}", report.failures);
            let bills = list_bills(&store, &BillFilter { limit: 1_000, ..BillFilter::default() })
                .await
                .expect("bills");
            let on_bills: u64 = bills.iter().map(|b| b.bill.totals.sessions).sum();
            let billed_gross: Money = bills.iter().map(|b| b.bill.totals.gross).sum();
            let billed_fees: Money = bills.iter().map(|b| b.bill.totals.platform_fees).sum();
            assert_eq!(on_bills, n, "every session on exactly one bill");
            assert_eq!(billed_gross, gross, "bills sum to the sessions to the cent");
            assert_eq!(billed_fees, fees);
            let d25 = bills.iter().filter(|b| b.bill.day == date(2026, 10, 25)).count();
            assert_eq!(d25, OPERATORS, "one bill per operator for the day");
            println!(
                "{backend:<9} {n:>9} {OPERATORS:>9} {read_s:>11.2} {bill_s:>11.2} {:>7.2}x {:>12.0}",
                bill_s / read_s,
                n as f64 / bill_s
            );
            if backend == "postgres" {
                println!(
                    "postgres: goal <= 60 s for the bill pass: {}",
                    if bill_s <= 60.0 { "met" } else { "NOT met" }
                );
            }
            store.close().await;
            if let (Some(url), Some(schema)) = (&pg, schema) {
                drop_pg(url, &schema).await;
            }
        }
    });
}
