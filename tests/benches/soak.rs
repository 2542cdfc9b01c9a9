//! The soak run: the demo's shape — one cloud, one edge, simulated DC chargers with two
//! connectors each, half the sessions started from the driver's app (`POST /v1/sessions`),
//! half by card at the pile — at 10× speed with 500 chargers for 10 minutes, with each
//! component a process of its own so that memory is measured per component:
//!
//! - `voltline-cloud serve` (SQLite in a temporary directory, the embedded broker),
//! - `voltline-edge run`,
//! - the simulator: the `voltline-sim` library inside this bench process (it needs to plug
//!   vehicles in and start them by card, which the CLI's random arrivals cannot coordinate
//!   with app starts), so this process's RSS is reported as the simulator's; it also holds
//!   the latency samples and an HTTP client, a few MiB at most.
//!
//! Every minute it prints the sessions started, ended and settled in that minute, records
//! ingested per second, p50/p99 command latency (`POST /v1/sessions` sent → the command's
//! state `accepted`, polled every 25 ms on `GET /v1/commands/{id}`, so ±25 ms), the RSS of
//! each component from `/proc/<pid>/status` and the load average. At the end it says whether
//! memory stayed flat (each of the last five minutes within 10 % of the warm-up minute, per
//! component: minute 5, or half-way through a run shorter than 10 minutes, at least minute 2),
//! waits for the cloud to settle what ended, and prints a summary.
//!
//! Run: `cargo bench -p voltline-tests --bench soak` (a release build; the binaries are built
//! in `target/release` if missing). Knobs: `VOLTLINE_SOAK_MINUTES` (10),
//! `VOLTLINE_SOAK_CHARGERS` (500), `VOLTLINE_SOAK_SPEED` (10), `VOLTLINE_BIN_DIR` (where the
//! binaries are; default: this build's profile directory), `VOLTLINE_NO_BUILD=1` (use the
//! binaries as they are). Everything binds 127.0.0.1 and stops by itself.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_protocol::domain::{AccountId, Energy, PileCode};
use voltline_protocol::message::common::PhysicalCardNo;
use voltline_protocol::Money;
use voltline_sim::{ChargerSpec, FleetConfig, SimEvent, SimFleet, StartBy, VehicleSpec};
use voltline_tests::cloud_process::CloudProcess;
use voltline_tests::process::{ensure_binary, free_port, spawn_binary, ChildGuard};
use voltline_tests::remote::{metric_sum, RemoteCloud};
use voltline_tests::seed::{next_card, DriverSpec, SiteSpec};

const SITE: &str = "soak-site";
const TIME_ZONE: &str = "Asia/Shanghai";
/// Simulated minutes a connector stays free between two vehicles (on average), as the demo.
const IDLE_SIM_MINUTES: f64 = 20.0;
/// How often a command's state is polled.
const POLL: Duration = Duration::from_millis(25);
/// A command not accepted within this is counted as timed out.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a valid value")),
        Err(_) => default,
    }
}

/// What the drivers and chargers did, counted by the bench.
#[derive(Default)]
struct Tally {
    started: AtomicU64,
    started_by_app: AtomicU64,
    started_by_card: AtomicU64,
    ended: AtomicU64,
    refused: AtomicU64,
    energy_wh: AtomicU64,
    post_failed: AtomicU64,
    cmd_accepted: AtomicU64,
    cmd_other: AtomicU64,
    cmd_timeout: AtomicU64,
    /// Command latencies of this minute (drained every minute).
    latencies: Mutex<Vec<Duration>>,
    /// Every command latency of the run.
    all_latencies: Mutex<Vec<Duration>>,
}

impl Tally {
    fn latency(&self, d: Duration) {
        self.latencies.lock().unwrap().push(d);
        self.all_latencies.lock().unwrap().push(d);
    }
}

/// One line per minute.
#[derive(Clone, Copy, Debug, Default)]
struct Minute {
    rss_mib: [f64; 3],
}

const COMPONENTS: [&str; 3] = ["cloud", "edge", "sim+bench"];

fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn percentile(sorted: &[Duration], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(|| "-".into(), |d| format!("{}", d.as_millis()))
}

fn spawn(name: &str, args: &[&str], env: &[(String, String)]) -> ChildGuard {
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    spawn_binary(name, args, &env).unwrap_or_else(|e| panic!("starting {name}: {e}"))
}

/// A vehicle between 20 % and 40 % that wants 80 %, battery 40 to 80 kWh (the demo's).
fn vehicle(seed: u64) -> VehicleSpec {
    let battery = 40 + (seed * 7919) % 41;
    let start = 20 + ((seed * 104_729) % 21) as u8;
    VehicleSpec::standard()
        .with_battery(Energy::from_wh(battery as i64 * 1_000))
        .with_soc(start, 80)
}

/// Routes the fleet's session events to one channel per connector, and counts them.
fn route_events(
    fleet: &SimFleet,
    tally: Arc<Tally>,
    stop: CancellationToken,
) -> HashMap<(PileCode, u8), mpsc::Receiver<SimEvent>> {
    let mut senders = HashMap::new();
    let mut receivers = HashMap::new();
    for p in fleet.piles() {
        for c in 1..=2u8 {
            let (tx, rx) = mpsc::channel(64);
            senders.insert((*p, c), tx);
            receivers.insert((*p, c), rx);
        }
    }
    let mut events = fleet.events();
    tokio::spawn(async move {
        loop {
            let e = tokio::select! {
                () = stop.cancelled() => return,
                e = events.recv() => e,
            };
            let e = match e {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => {
                    eprintln!("warning: the bench lagged {n} simulator events");
                    continue;
                }
                Err(_) => return,
            };
            let connector = match &e {
                SimEvent::SessionStarted { connector, .. } => {
                    tally.started.fetch_add(1, Ordering::Relaxed);
                    connector.get()
                }
                SimEvent::SessionEnded {
                    summary, connector, ..
                } => {
                    tally.ended.fetch_add(1, Ordering::Relaxed);
                    tally.energy_wh.fetch_add(
                        u64::try_from(summary.record.total_energy.mwh() / 1_000).unwrap_or(0),
                        Ordering::Relaxed,
                    );
                    connector.get()
                }
                SimEvent::StartRefused { connector, .. } => {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                    connector.get()
                }
                _ => continue,
            };
            if let Some(tx) = senders.get(&(e.pile(), connector)) {
                let _ = tx.try_send(e);
            }
        }
    });
    receivers
}

/// Polls the command until it is final; records the latency to `accepted`.
async fn follow_command(api: &RemoteCloud, command: &str, sent: Instant, tally: &Tally) {
    let path = format!("/v1/commands/{command}");
    loop {
        if sent.elapsed() > COMMAND_TIMEOUT {
            tally.cmd_timeout.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if let Ok((200, view)) = api.call(Method::GET, &path, None).await {
            match view["state"].as_str() {
                Some("accepted") => {
                    tally.latency(sent.elapsed());
                    tally.cmd_accepted.fetch_add(1, Ordering::Relaxed);
                    return;
                }
                Some("queued" | "delivered") | None => {}
                Some(_) => {
                    tally.cmd_other.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Drives one connector until `stop`: idle a while, plug in, start by app (even `n`) or
/// card (odd `n`), wait for the end (or a refusal), unplug.
#[allow(clippy::too_many_arguments)]
async fn drive_connector(
    fleet: Arc<SimFleet>,
    api: RemoteCloud,
    pile: PileCode,
    connector: u8,
    n: u64,
    driver: (AccountId, PhysicalCardNo),
    mut events: mpsc::Receiver<SimEvent>,
    idle: Duration,
    tally: Arc<Tally>,
    stop: CancellationToken,
) {
    let Ok(charger) = fleet.charger(&pile) else {
        return;
    };
    let mut round = 0u64;
    loop {
        let wait = idle.mul_f64(0.2 + ((n * 31 + round * 17) % 100) as f64 / 100.0);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        round += 1;
        let by_app = (n & 1) == 0;
        let start = if by_app {
            StartBy::Remote
        } else {
            StartBy::Card(driver.1)
        };
        if charger
            .plug_in_with(connector, vehicle(n * 1_000 + round), start)
            .await
            .is_err()
        {
            return;
        }
        if by_app {
            tally.started_by_app.fetch_add(1, Ordering::Relaxed);
            let body = json!({
                "charger": pile.to_string(),
                "connector": connector,
                "account": driver.0.as_str(),
                "amount": "120.00",
            });
            let sent = Instant::now();
            match api.call(Method::POST, "/v1/sessions", Some(&body)).await {
                Ok((202, answer)) => match answer["command_id"].as_str() {
                    Some(id) => {
                        let id = id.to_owned();
                        let api = api.clone();
                        let tally = tally.clone();
                        tokio::spawn(async move { follow_command(&api, &id, sent, &tally).await });
                    }
                    None => {
                        tally.post_failed.fetch_add(1, Ordering::Relaxed);
                    }
                },
                Ok((status, answer)) => {
                    tally.post_failed.fetch_add(1, Ordering::Relaxed);
                    if tally.post_failed.load(Ordering::Relaxed) <= 5 {
                        eprintln!("warning: POST /v1/sessions answered {status}: {answer}");
                    }
                }
                Err(e) => {
                    tally.post_failed.fetch_add(1, Ordering::Relaxed);
                    if tally.post_failed.load(Ordering::Relaxed) <= 5 {
                        eprintln!("warning: POST /v1/sessions failed: {e}");
                    }
                }
            }
        } else {
            tally.started_by_card.fetch_add(1, Ordering::Relaxed);
        }
        // The longest session (80 kWh from 20 % at 60 kW) is well under two simulated
        // hours; past that, look again rather than wait for an event that was lost.
        let bound = Duration::from_secs_f64(7_200.0 / fleet.clock().speed().factor());
        let _ = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout(bound, async {
                while let Some(e) = events.recv().await {
                    match e {
                        SimEvent::SessionEnded { connector: c, .. } if c.get() == connector => return true,
                        SimEvent::StartRefused { connector: c, .. } if c.get() == connector => return false,
                        _ => {}
                    }
                }
                false
            }) => r.unwrap_or(false),
        };
        let _ = charger.unplug(connector).await;
    }
}

#[derive(Clone, Copy)]
struct CloudFigures {
    ingested: f64,
    settled: f64,
    settle_failed: f64,
}

async fn cloud_figures(api: &RemoteCloud) -> Option<CloudFigures> {
    let text = api.metrics_text().await.ok()?;
    Some(CloudFigures {
        ingested: metric_sum(&text, "voltline_ingest_records_total", &[]),
        settled: metric_sum(
            &text,
            "voltline_settlements_total",
            &["outcome=\"settled\""],
        ),
        settle_failed: metric_sum(&text, "voltline_settlements_total", &["outcome=\"failed\""]),
    })
}

/// The minute memory is judged from (1-based) in a run of `minutes`: minute 5 once the run
/// is 10 minutes or longer, half-way through a shorter one (at least minute 2, so the
/// start-up is past); `None` below 3 minutes (nothing after the warm-up to judge).
fn warm_up_minute(minutes: usize) -> Option<usize> {
    (minutes >= 3).then(|| (minutes / 2).clamp(2, 5))
}

fn main() {
    // `cargo bench` passes `--bench`; a filter argument selects nothing else here.
    let minutes: u64 = env_or("VOLTLINE_SOAK_MINUTES", 10);
    let chargers: u64 = env_or("VOLTLINE_SOAK_CHARGERS", 500);
    let speed: f64 = env_or("VOLTLINE_SOAK_SPEED", 10.0);
    assert!(
        minutes >= 1 && chargers >= 1,
        "minutes and chargers must be at least 1"
    );
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime");
    runtime.block_on(soak(minutes, chargers, speed));
}

async fn soak(minutes: u64, chargers: u64, speed: f64) {
    let _ = voltline_sim::sys::raise_fd_limit();
    let cloud_bin = ensure_binary("voltline-cloud").expect("building voltline-cloud");
    let edge_bin = ensure_binary("voltline-edge").expect("building voltline-edge");
    println!(
        "soak: {chargers} chargers x 2 connectors, speed {speed}x, {minutes} min; binaries {} and {}",
        cloud_bin.display(),
        edge_bin.display()
    );
    println!("load at start: {}", loadavg());

    let dir = tempfile::tempdir().expect("a temporary directory");
    let (edge_tcp, edge_ops) = (free_port(), free_port());
    // The bench's one admin token stands for a thousand drivers' own tokens, so the
    // per-token rate limit (which would answer most of its session starts 429) is lifted.
    let mut cloud = CloudProcess::start_with_env(&[
        (
            "RUST_LOG",
            "warn,rumqttd=error,rumqttd::router::routing=off",
        ),
        ("VOLTLINE_CLOUD__HTTP__RATE_LIMIT_PER_S", "1000000"),
        ("VOLTLINE_CLOUD__HTTP__RATE_LIMIT_BURST", "1000000"),
    ])
    .await
    .unwrap_or_else(|e| panic!("starting the cloud: {e}"));
    let edge_token = cloud
        .create_token("edge", Some(SITE))
        .unwrap_or_else(|e| panic!("{e}"));
    let api = cloud.api().expect("a client");
    let (http, mqtt) = (cloud.http_addr(), cloud.mqtt_addr());

    let seeding = Instant::now();
    let mut spec = SiteSpec::new(SITE, chargers as usize);
    spec.time_zone = TIME_ZONE.into();
    spec.tariff = Some(voltline_tests::fixtures::tou_tariff(1, TIME_ZONE));
    spec.drivers = (1..=chargers * 2)
        .map(|n| DriverSpec {
            account: format!("soak-driver-{n}"),
            top_up: Money::from_yuan(5_000.into()),
            cards: vec![(next_card(), Some(Money::from_yuan(80.into())))],
        })
        .collect();
    let site = api
        .seed_site(&spec)
        .await
        .unwrap_or_else(|e| panic!("seeding: {e}\n{}", cloud.log()));
    println!(
        "seeded {} chargers and {} drivers through the HTTP API in {:.1} s",
        site.chargers.len(),
        site.drivers.len(),
        seeding.elapsed().as_secs_f64()
    );

    let edge_env: Vec<(String, String)> = [
        ("VOLTLINE_EDGE__SITE__ID", SITE.to_owned()),
        ("VOLTLINE_EDGE__SITE__TIME_ZONE", TIME_ZONE.into()),
        (
            "VOLTLINE_EDGE__SITE__DATA_DIR",
            dir.path().join("edge").display().to_string(),
        ),
        (
            "VOLTLINE_EDGE__TCP__LISTEN",
            format!("127.0.0.1:{edge_tcp}"),
        ),
        ("VOLTLINE_EDGE__MQTT__ENABLED", "false".into()),
        (
            "VOLTLINE_EDGE__OPS__LISTEN",
            format!("127.0.0.1:{edge_ops}"),
        ),
        ("VOLTLINE_EDGE__CLOUD__MQTT", mqtt.to_string()),
        ("VOLTLINE_EDGE__CLOUD__HTTP", format!("http://{http}")),
        ("VOLTLINE_EDGE__CLOUD__CREDENTIAL", edge_token),
        ("RUST_LOG", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut edge = spawn("voltline-edge", &["run"], &edge_env);
    let edge_ready = format!("http://127.0.0.1:{edge_ops}/healthz");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !api
        .http()
        .get(&edge_ready)
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
    {
        assert!(
            Instant::now() < deadline,
            "the edge did not answer {edge_ready} within 60 s:\n{}",
            edge.log()
        );
        if let Ok(Some(status)) = edge.try_wait() {
            panic!("the edge exited ({status}):\n{}", edge.log());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    let specs = site
        .chargers
        .iter()
        .map(|c| ChargerSpec::dc(c.pile, 60).with_connectors(2))
        .collect();
    let mut fleet_config = FleetConfig::tcp(format!("127.0.0.1:{edge_tcp}"), specs)
        .speed(speed)
        .expect("a valid speed");
    fleet_config.time_zone = TIME_ZONE.into();
    fleet_config.ramp = Duration::from_secs(5);
    fleet_config.event_capacity = 1 << 16;
    let fleet = Arc::new(SimFleet::spawn(fleet_config).await.expect("the fleet"));

    let stop = CancellationToken::new();
    let tally = Arc::new(Tally::default());
    let mut routes = route_events(&fleet, tally.clone(), stop.clone());
    let idle = Duration::from_secs_f64(IDLE_SIM_MINUTES * 60.0 / speed);
    let mut tasks = Vec::new();
    for (i, charger) in site.chargers.iter().enumerate() {
        for c in 1..=2u8 {
            let n = i * 2 + usize::from(c);
            let Some(events) = routes.remove(&(charger.pile, c)) else {
                continue;
            };
            let d = &site.drivers[n - 1];
            tasks.push(tokio::spawn(drive_connector(
                fleet.clone(),
                api.clone(),
                charger.pile,
                c,
                n as u64,
                (d.account.clone(), d.cards[0]),
                events,
                idle,
                tally.clone(),
                stop.clone(),
            )));
        }
    }

    let pids = [
        cloud.pid().expect("the cloud's pid"),
        edge.id().expect("the edge's pid"),
        std::process::id(),
    ];
    println!(
        "{:>3} {:>7} {:>5} {:>7} {:>8} {:>6} {:>6} {:>9} {:>9} {:>9}  load",
        "min",
        "started",
        "ended",
        "settled",
        "rec/s",
        "p50ms",
        "p99ms",
        "cloudMiB",
        "edgeMiB",
        "simMiB",
    );
    let began = Instant::now();
    let mut rows: Vec<Minute> = Vec::new();
    let mut last = (
        0u64,
        0u64,
        cloud_figures(&api).await.unwrap_or(CloudFigures {
            ingested: 0.0,
            settled: 0.0,
            settle_failed: 0.0,
        }),
    );
    let mut last_at = Instant::now();
    for minute in 1..=minutes {
        let due = began + Duration::from_secs(60 * minute);
        loop {
            let now = Instant::now();
            if now >= due {
                break;
            }
            tokio::time::sleep((due - now).min(Duration::from_secs(1))).await;
            if let Some(log) = cloud.exited() {
                panic!("the cloud {log}");
            }
            if let Ok(Some(status)) = edge.try_wait() {
                panic!("the edge exited ({status}) mid-soak:\n{}", edge.log());
            }
        }
        let started = tally.started.load(Ordering::Relaxed);
        let ended = tally.ended.load(Ordering::Relaxed);
        let figures = cloud_figures(&api).await.unwrap_or(last.2);
        let secs = last_at.elapsed().as_secs_f64();
        last_at = Instant::now();
        let mut lat = std::mem::take(&mut *tally.latencies.lock().unwrap());
        lat.sort();
        let mut row = Minute::default();
        for (i, pid) in pids.iter().enumerate() {
            row.rss_mib[i] = rss_kib(*pid).unwrap_or(0) as f64 / 1024.0;
        }
        println!(
            "{:>3} {:>7} {:>5} {:>7} {:>8.1} {:>6} {:>6} {:>9.1} {:>9.1} {:>9.1}  {}",
            minute,
            started - last.0,
            ended - last.1,
            (figures.settled - last.2.settled) as u64,
            (figures.ingested - last.2.ingested) / secs,
            ms(percentile(&lat, 50.0)),
            ms(percentile(&lat, 99.0)),
            row.rss_mib[0],
            row.rss_mib[1],
            row.rss_mib[2],
            loadavg()
        );
        rows.push(row);
        last = (started, ended, figures);
    }

    println!("stopping the drivers, then the chargers; waiting for the cloud to settle what ended");
    stop.cancel();
    for t in tasks {
        let _ = t.await;
    }
    // Sessions still charging now do not end; what ended must all be settled.
    if let Ok(fleet) = Arc::try_unwrap(fleet) {
        fleet.shutdown().await;
    }
    let ended = tally.ended.load(Ordering::Relaxed);
    let settle_deadline = Instant::now() + Duration::from_secs(60);
    let mut final_figures = cloud_figures(&api).await.unwrap_or(last.2);
    while (final_figures.settled as u64) < ended && Instant::now() < settle_deadline {
        tokio::time::sleep(Duration::from_secs(1)).await;
        final_figures = cloud_figures(&api).await.unwrap_or(final_figures);
    }
    let edge_exit = edge.terminate(Duration::from_secs(20));
    let cloud_exit = cloud.terminate(Duration::from_secs(30));

    println!();
    println!("memory (RSS MiB per minute):");
    let mut flat = true;
    for (i, name) in COMPONENTS.iter().enumerate() {
        let series: Vec<String> = rows
            .iter()
            .map(|r| format!("{:.0}", r.rss_mib[i]))
            .collect();
        let verdict = if let Some(warm) = warm_up_minute(rows.len()) {
            let base = rows[warm - 1].rss_mib[i];
            let tail = &rows[rows.len().saturating_sub(5).max(warm)..];
            let worst = tail
                .iter()
                .map(|r| (r.rss_mib[i] - base) / base * 100.0)
                .fold(0.0_f64, |a, d| if d.abs() > a.abs() { d } else { a });
            let ok = worst.abs() <= 10.0;
            flat &= ok;
            format!(
                "{} (largest difference from minute {warm}'s {base:.1} MiB over the last {} minutes: {worst:+.1} %)",
                if ok { "flat" } else { "NOT flat" },
                tail.len()
            )
        } else {
            "too short to judge (needs at least 3 minutes)".to_owned()
        };
        println!("  {name:<9} [{}] {verdict}", series.join(", "));
    }

    let mut all = std::mem::take(&mut *tally.all_latencies.lock().unwrap());
    all.sort();
    println!();
    println!("summary:");
    println!(
        "  sessions started {} (plugged in: {} by app, {} by card), ended {}, refused {}, energy {:.1} kWh",
        tally.started.load(Ordering::Relaxed),
        tally.started_by_app.load(Ordering::Relaxed),
        tally.started_by_card.load(Ordering::Relaxed),
        ended,
        tally.refused.load(Ordering::Relaxed),
        tally.energy_wh.load(Ordering::Relaxed) as f64 / 1_000.0
    );
    println!(
        "  cloud: {} records ingested ({:.1}/s over the run), {} settled ({} failed); settled >= ended: {}",
        final_figures.ingested as u64,
        final_figures.ingested / began.elapsed().as_secs_f64(),
        final_figures.settled as u64,
        final_figures.settle_failed as u64,
        final_figures.settled as u64 >= ended
    );
    println!(
        "  commands: {} accepted, {} other final state, {} timed out (> {:?}), {} POSTs failed; latency p50 {} ms, p99 {} ms, max {} ms (polled every {} ms)",
        tally.cmd_accepted.load(Ordering::Relaxed),
        tally.cmd_other.load(Ordering::Relaxed),
        tally.cmd_timeout.load(Ordering::Relaxed),
        COMMAND_TIMEOUT,
        tally.post_failed.load(Ordering::Relaxed),
        ms(percentile(&all, 50.0)),
        ms(percentile(&all, 99.0)),
        ms(all.last().copied()),
        POLL.as_millis()
    );
    println!(
        "  memory flat: {}",
        if warm_up_minute(rows.len()).is_none() {
            "not judged (run at least 3 minutes)".to_owned()
        } else if flat {
            "yes".to_owned()
        } else {
            "NO".to_owned()
        }
    );
    println!("  edge stopped: {edge_exit:?}; cloud stopped: {cloud_exit:?}");
    println!("  load at end: {}", loadavg());
}
