//! RSS of the edge daemon with 500 chargers (250 on TCP, 250 on MQTT), every one charging,
//! beside the same daemon idle with no charger (measured in the same run). The edge runs as
//! a child process (`voltline-edge run`); the chargers are simulated in this process.
//!
//! `cargo bench -p voltline-edge --bench edge_rss` (goal: ≤ 64 MiB with 500 chargers).
//! `VOLTLINE_BENCH_QUICK=1` runs 50 chargers for a few seconds (a smoke run).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rust_decimal_macros::dec;
use voltline_edge::store::{CardAuthorisation, SiteConfig, SiteLimits, Store, StoreConfig};
use voltline_protocol::domain::{AccountId, Energy, Money, PileCode};
use voltline_protocol::message::transaction::PhysicalCardNo;
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_sim::fleet::{FleetConfig, SimFleet};
use voltline_sim::{ChargerSpec, StartBy, VehicleSpec};

const PASSWORD: &str = "bench-pile";

fn pile(n: u64) -> PileCode {
    PileCode::from_number(32_010_700_000_000 + n).unwrap()
}

fn card(n: u64) -> PhysicalCardNo {
    PhysicalCardNo::from_bytes((0xBE00_0000 + n).to_be_bytes())
}

/// Flat 1.00 + 0.40 yuan/kWh, peak 1.50 + 0.60 from 08:00 to 20:00 (Shanghai).
fn tariff() -> Tariff {
    let money = |s: &str| Money::from_yuan(s.parse().unwrap());
    Tariff::new(
        TariffVersion(1),
        jiff::tz::TimeZone::get("Asia/Shanghai").unwrap(),
        vec![
            TariffPeriod::new("flat", money("1.00"), money("0.40")),
            TariffPeriod::new("peak", money("1.50"), money("0.60")),
        ],
        vec![
            ScheduleEntry::new(TimeOfDay::new(0, 0).unwrap(), 0),
            ScheduleEntry::new(TimeOfDay::new(8, 0).unwrap(), 1),
            ScheduleEntry::new(TimeOfDay::new(20, 0).unwrap(), 0),
        ],
    )
    .unwrap()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

struct Edge {
    child: Child,
    tcp: u16,
    mqtt: u16,
}

impl Drop for Edge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Seeds the store with an authorisation list (card n for pile n), then starts the edge.
async fn start_edge(dir: &Path, chargers: u64) -> Edge {
    {
        let store = Store::open(dir.join("store"), StoreConfig::default()).unwrap();
        let cards = (1..=chargers)
            .map(|n| CardAuthorisation {
                card: card(n),
                account: AccountId::new(format!("driver-{n}")).unwrap(),
                offline_limit: Money::from_yuan(dec!(500)),
            })
            .collect();
        let config = SiteConfig::new(
            1,
            Some(tariff()),
            cards,
            SiteLimits {
                offline_session_limit: Money::from_yuan(dec!(500)),
                max_site_power: None,
            },
        )
        .unwrap();
        store.put_site_config(config).await.unwrap();
        store.flush().await.unwrap();
    }
    // sled releases its file lock when its threads finish.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let (tcp, mqtt, ops) = (free_port(), free_port(), free_port());
    let mut text = format!(
        "[site]\nid = \"bench-site\"\ndata_dir = \"{}\"\n[tcp]\nlisten = \"127.0.0.1:{tcp}\"\n\
         [mqtt]\nlisten = \"127.0.0.1:{mqtt}\"\n[ops]\nlisten = \"127.0.0.1:{ops}\"\n\
         [cloud]\nenabled = false\n",
        dir.display()
    );
    for n in 1..=chargers {
        text.push_str(&format!(
            "[[chargers]]\npile = \"{}\"\npassword = \"{PASSWORD}\"\n",
            pile(n)
        ));
    }
    let config = dir.join("edge.toml");
    std::fs::write(&config, text).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_voltline-edge"))
        .args(["--config", config.to_str().unwrap(), "run"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("the voltline-edge binary starts");
    let edge = Edge { child, tcp, mqtt };
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::net::TcpStream::connect(("127.0.0.1", ops)).is_err() {
        assert!(Instant::now() < deadline, "the edge did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    edge
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::var_os("VOLTLINE_BENCH_QUICK").is_some();
    let chargers: u64 = if quick { 50 } else { 500 };
    let settle = Duration::from_secs(if quick { 5 } else { 60 });
    let dir = tempfile::tempdir().unwrap();

    let edge = start_edge(dir.path(), chargers).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let idle_kib = rss_kib(edge.child.id());

    let half = chargers / 2;
    let tcp = FleetConfig::tcp(
        format!("127.0.0.1:{}", edge.tcp),
        (1..=half).map(|n| ChargerSpec::dc(pile(n), 60)).collect(),
    );
    let mqtt = FleetConfig::mqtt(
        format!("127.0.0.1:{}", edge.mqtt),
        PASSWORD,
        (half + 1..=chargers)
            .map(|n| ChargerSpec::dc(pile(n), 60))
            .collect(),
    );
    let mut tcp = tcp;
    let mut mqtt = mqtt;
    // Real time, connections spread over 5 s; sessions long enough to last the run.
    tcp.ramp = Duration::from_secs(5);
    mqtt.ramp = Duration::from_secs(5);
    let tcp = SimFleet::spawn(tcp).await.unwrap();
    let mqtt = SimFleet::spawn(mqtt).await.unwrap();
    tokio::time::sleep(Duration::from_secs(8)).await;
    let started = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    for mut events in [tcp.events(), mqtt.events()] {
        let started = started.clone();
        tokio::spawn(async move {
            while let Ok(e) = events.recv().await {
                match e {
                    voltline_sim::SimEvent::SessionStarted { .. } => {
                        started.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    }
                    voltline_sim::SimEvent::StartRefused { pile, reason, .. } => {
                        eprintln!("start refused at {pile}: {reason}");
                    }
                    _ => {}
                }
            }
        });
    }
    let vehicle = VehicleSpec::standard()
        .with_battery(Energy::from_wh(100_000))
        .with_soc(5, 100);
    for n in 1..=chargers {
        let fleet = if n <= half { &tcp } else { &mqtt };
        if let Ok(c) = fleet.charger(&pile(n)) {
            let _ = c
                .plug_in_with(1, vehicle.clone(), StartBy::Card(card(n)))
                .await;
        }
    }

    let start = Instant::now();
    let mut peak = 0;
    let mut samples = Vec::new();
    while start.elapsed() < settle {
        tokio::time::sleep(Duration::from_secs(if quick { 1 } else { 5 })).await;
        let kib = rss_kib(edge.child.id());
        peak = peak.max(kib);
        samples.push(kib);
    }
    let charging = started.load(std::sync::atomic::Ordering::Relaxed);
    let mib = |k: u64| k as f64 / 1024.0;
    println!(
        "edge RSS, {chargers} chargers ({half} TCP, {} MQTT), {charging} sessions started",
        chargers - half
    );
    println!(
        "  baseline (idle edge, no charger): {:.1} MiB",
        mib(idle_kib)
    );
    println!(
        "  with chargers: last {:.1} MiB, peak {:.1} MiB ({:.2}x the idle edge)",
        mib(*samples.last().unwrap_or(&0)),
        mib(peak),
        peak as f64 / idle_kib.max(1) as f64
    );
    println!(
        "  samples (MiB): {}",
        samples
            .iter()
            .map(|k| format!("{:.1}", mib(*k)))
            .collect::<Vec<_>>()
            .join(" ")
    );
    println!(
        "  goal: <= 64 MiB with 500 chargers: {}",
        if quick {
            "not judged (quick run)"
        } else if mib(peak) <= 64.0 {
            "met"
        } else {
            "MISSED"
        }
    );
    tcp.shutdown().await;
    mqtt.shutdown().await;
    drop(edge);
}
