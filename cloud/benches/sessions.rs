//! `POST /v1/sessions` → 202 latency at a steady request rate, on SQLite and PostgreSQL.
//!
//! For each backend (SQLite always, in a temporary directory; PostgreSQL when
//! `VOLTLINE_TEST_PG` is set, in a schema of its own that is dropped afterwards) a full cloud
//! instance runs in this process on 127.0.0.1:0 with the SQL-backed funds (the production
//! path: token check, charger/account lookups, hold through the ledger writer, order + start
//! command in one transaction). An open-loop client sends requests at a fixed rate
//! (`VOLTLINE_BENCH_RPS`, default 1000) for `VOLTLINE_BENCH_SECS` (default 20) seconds; each
//! request is timed from its scheduled send instant (so a stall is not hidden by the client
//! waiting). The **baseline**, in the same run and at the same rate, is `GET /healthz`: what
//! HTTP, the client and the runtime cost on their own.
//!
//! Goal (cloud issue, item 8): 202 p99 ≤ 10 ms on 2 cores. Note that client and server share
//! the cores here.
//!
//! `VOLTLINE_BENCH_FUNDS=memory` swaps in the in-memory ledger, to separate the ledger's share.
//!
//! Run: `cargo bench -p voltline-cloud --bench sessions`
//! (with `VOLTLINE_TEST_PG=postgres://postgres:postgres@127.0.0.1:5432/test` for PostgreSQL).

use std::str::FromStr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::RngCore;
use rust_decimal::Decimal;
use sqlx::postgres::PgConnectOptions;
use sqlx::{AssertSqlSafe, Connection, PgConnection};
use voltline_cloud::config::{CloudConfig, MqttMode};
use voltline_cloud::domain::Actor;
use voltline_cloud::funds::{Funds, PaymentRequest};
use voltline_cloud::server;
use voltline_cloud::store::{NewCharger, NewSite, NewToken};
use voltline_cloud::{AppState, Store};
use voltline_protocol::domain::{AccountId, OperatorId, PileCode, SiteId};
use voltline_protocol::Money;

const ACCOUNTS: usize = 100;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

struct Figures {
    sent: usize,
    ok: usize,
    p50_ms: f64,
    p90_ms: f64,
    p99_ms: f64,
    p999_ms: f64,
    max_ms: f64,
}

fn figures(mut lat: Vec<Duration>, sent: usize) -> Figures {
    lat.sort();
    let q = |p: f64| {
        if lat.is_empty() {
            return f64::NAN;
        }
        let i = ((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1;
        lat[i].as_secs_f64() * 1e3
    };
    Figures {
        sent,
        ok: lat.len(),
        p50_ms: q(0.50),
        p90_ms: q(0.90),
        p99_ms: q(0.99),
        p999_ms: q(0.999),
        max_ms: lat.last().map_or(f64::NAN, |d| d.as_secs_f64() * 1e3),
    }
}

/// Sends `rps` requests a second for `secs` seconds; `make(i)` builds request `i`; returns
/// the latencies of the answers with status `want`.
async fn drive(
    rps: u64,
    secs: u64,
    want: u16,
    make: Arc<dyn Fn(usize) -> reqwest::RequestBuilder + Send + Sync>,
) -> Figures {
    let total = (rps * secs) as usize;
    let period = Duration::from_nanos(1_000_000_000 / rps);
    let start = tokio::time::Instant::now();
    let mut tasks = Vec::with_capacity(total);
    for i in 0..total {
        let at = start + period * i as u32;
        tokio::time::sleep_until(at).await;
        let req = make(i);
        tasks.push(tokio::spawn(async move {
            let resp = req.send().await.ok()?;
            let status = resp.status().as_u16();
            let _ = resp.bytes().await;
            (status == want).then(|| Instant::now().duration_since(at.into_std()))
        }));
    }
    let mut lat = Vec::with_capacity(total);
    for t in tasks {
        if let Ok(Some(d)) = t.await {
            lat.push(d);
        }
    }
    figures(lat, total)
}

async fn seed(
    store: &Store,
    funds: &Arc<dyn Funds>,
    opener: &voltline_cloud::state::WalletOpener,
) -> (String, PileCode, Vec<AccountId>) {
    let op = OperatorId::new("op-bench").unwrap();
    let site = SiteId::new("site-bench").unwrap();
    let pile: PileCode = "32010600000001".parse().unwrap();
    store.create_operator(&op, "bench").await.unwrap();
    store
        .create_site(&NewSite {
            id: site.clone(),
            operator: op.clone(),
            name: "bench".into(),
            time_zone: "Asia/Shanghai".into(),
        })
        .await
        .unwrap();
    store
        .create_charger(&NewCharger {
            pile,
            site,
            connectors: 2,
        })
        .await
        .unwrap();
    let mut accounts = Vec::new();
    for i in 0..ACCOUNTS {
        let id = AccountId::new(format!("acct-{i:03}")).unwrap();
        store.create_account(&id, Some(&op), "bench").await.unwrap();
        opener(id.clone()).await.expect("open wallet");
        funds
            .top_up(&PaymentRequest {
                account: id.clone(),
                amount: Money::from_yuan(Decimal::new(1_000_000, 0)),
                provider: "test".into(),
                reference: format!("seed-{i}"),
            })
            .await
            .expect("top up");
        accounts.push(id);
    }
    let token = store
        .create_token(&NewToken {
            actor: Actor::Admin,
            label: "bench".into(),
            expires_at: None,
        })
        .await
        .unwrap()
        .secret
        .expose()
        .to_owned();
    (token, pile, accounts)
}

/// `VOLTLINE_BENCH_FUNDS=memory`: the in-memory ledger instead of the SQL one, to tell the
/// ledger's share of the latency from the rest.
fn memory_funds() -> (Arc<dyn Funds>, voltline_cloud::state::WalletOpener) {
    let funds = Arc::new(voltline_cloud::funds::InMemoryFunds::new(
        Money::from_yuan(Decimal::new(50, 0)),
        Money::from_yuan(Decimal::ONE),
    ));
    let f = funds.clone();
    let opener: voltline_cloud::state::WalletOpener = Arc::new(move |account| {
        let result = f
            .deposit(
                &account,
                Money::from_yuan(Decimal::ONE),
                &format!("open-{account}"),
            )
            .map_err(|e| e.to_string());
        Box::pin(async move { result })
    });
    (funds, opener)
}

async fn run(name: &str, store: Store) {
    let mut config = CloudConfig::default();
    config.mqtt.mode = MqttMode::Disabled;
    config.http.rate_limit_per_s = 1_000_000;
    config.http.rate_limit_burst = 1_000_000;
    config.sessions.command_expiry_s = 3_600;
    let (funds, opener) = if std::env::var("VOLTLINE_BENCH_FUNDS").as_deref() == Ok("memory") {
        memory_funds()
    } else {
        server::sql_funds(&store, &config)
    };
    let (token, pile, accounts) = seed(&store, &funds, &opener).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut state = AppState::new(store, funds, config);
    state.wallet_opener = Some(opener);
    let running = server::start(state, listener).await.expect("server");
    let base = format!("http://{}", running.http_addr);
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .build()
        .unwrap();
    let rps = env_or("VOLTLINE_BENCH_RPS", 1_000);
    let secs = env_or("VOLTLINE_BENCH_SECS", 20);

    let (c, b) = (client.clone(), base.clone());
    let health = drive(
        rps,
        secs,
        200,
        Arc::new(move |_| c.get(format!("{b}/healthz"))),
    )
    .await;
    let (c, b) = (client.clone(), base.clone());
    let accounts = Arc::new(accounts);
    let sessions = drive(
        rps,
        secs,
        202,
        Arc::new(move |i| {
            let body = serde_json::json!({
                "charger": pile.to_string(),
                "connector": 1 + (i % 2),
                "account": accounts[i % accounts.len()].to_string(),
                "amount": "1",
            });
            c.post(format!("{b}/v1/sessions"))
                .bearer_auth(&token)
                .json(&body)
        }),
    )
    .await;
    for (what, f) in [
        ("GET /healthz (baseline)", &health),
        ("POST /v1/sessions -> 202", &sessions),
    ] {
        println!(
            "{name:<10} {what:<26} {rps} req/s x {secs} s: {}/{} ok, p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, p99.9 {:.2} ms, max {:.2} ms",
            f.ok, f.sent, f.p50_ms, f.p90_ms, f.p99_ms, f.p999_ms, f.max_ms
        );
    }
    running.stop(Duration::from_secs(10)).await;
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("temp dir");
        run(
            "sqlite",
            Store::open_in_dir(dir.path()).await.expect("sqlite"),
        )
        .await;
        match std::env::var("VOLTLINE_TEST_PG") {
            Ok(url) => {
                let mut bytes = [0u8; 6];
                rand::rng().fill_bytes(&mut bytes);
                let schema = format!(
                    "voltline_bench_{}",
                    bytes.iter().map(|b| format!("{b:02x}")).collect::<String>()
                );
                let mut admin = PgConnection::connect(&url).await.expect("connect postgres");
                sqlx::raw_sql(AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
                    .execute(&mut admin)
                    .await
                    .expect("create schema");
                let options = PgConnectOptions::from_str(&url)
                    .expect("postgres URL")
                    .options([("search_path", schema.as_str())]);
                let store = Store::connect_postgres(options)
                    .await
                    .expect("connect postgres");
                store.migrate().await.expect("migrate");
                run("postgres", store).await;
                sqlx::raw_sql(AssertSqlSafe(format!("DROP SCHEMA {schema} CASCADE")))
                    .execute(&mut admin)
                    .await
                    .expect("drop schema");
            }
            Err(_) => println!(
                "postgres   skipped: set VOLTLINE_TEST_PG=postgres://... to measure PostgreSQL"
            ),
        }
    });
}
