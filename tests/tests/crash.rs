//! Issue #7: simulated chargers run card sessions through a real edge daemon syncing with a
//! real cloud — all three processes of their own — while each of them is SIGKILLed at random
//! moments and started again on the same data (the cloud on its SQLite data directory and
//! ports, with its embedded broker; the edge on its data directory; the simulator on its
//! piles' flash, so that every pile loses power at once and, powered again, bills the
//! session that was cut short and resends what was never confirmed), and the cloud link is
//! cut for a while once. In the end, every transaction record the piles produced (their own
//! record journals) is billed exactly once in the cloud, to the cent against the pile's own
//! total; nothing is billed that no pile produced; no order is settled twice; the ledger
//! balances.
//!
//! Sizes: `VOLTLINE_CRASH_CHARGERS` (20), `VOLTLINE_CRASH_SESSIONS` per charger (3),
//! `VOLTLINE_CRASH_KILLS` of each component (2), `VOLTLINE_CRASH_SEED` (default: from the
//! clock; the seed is printed, and setting it replays the same chaos plan — which kill at
//! which point of the run, how long each component stays down — and the same simulated
//! workload; the processes' own timing still varies from run to run). The issue's size:
//! `VOLTLINE_CRASH_CHARGERS=200 VOLTLINE_CRASH_SESSIONS=5 VOLTLINE_CRASH_KILLS=5`. Run with
//! `--nocapture` to see the progress and the summary.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rust_decimal_macros::dec;
use voltline_protocol::domain::{Money, PileCode, TransactionSerial};
use voltline_protocol::message::common::PhysicalCardNo;
use voltline_protocol::message::record::TransactionRecord;
use voltline_sim::charger::durable::StoredRecord;
use voltline_tests::billing_check::check_billed_once;
use voltline_tests::cloud_process::CloudProcess;
use voltline_tests::edge_process::{EdgeProcess, EdgeSetup};
use voltline_tests::fixtures::tou_tariff;
use voltline_tests::sim_process::SimProcess;
use voltline_tests::{eventually, DriverSpec, LinkCutter, SiteSpec};

const SITE: &str = "crash-site";
const ZONE: &str = "Asia/Shanghai";
const FIRST_PILE: u64 = 32_010_699_000_001;
const FIRST_CARD: u64 = 0xCA4D_7000_0000_0001;
/// The longest the sessions may take, chaos included.
const RUN_BOUND: Duration = Duration::from_secs(900);

fn env_u64(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v} is not a whole number")),
        Err(_) => default,
    }
}

/// One chaos step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chaos {
    KillEdge,
    KillCloud,
    KillSim,
    CutLinks,
}

/// `kills` SIGKILLs of each component and one link cut, each at a random point of the run
/// (a fraction of the sessions done), in order.
fn plan(rng: &mut rand::rngs::StdRng, kills: u64) -> Vec<(f64, Chaos)> {
    let mut steps = vec![Chaos::CutLinks];
    for _ in 0..kills {
        steps.extend([Chaos::KillEdge, Chaos::KillCloud, Chaos::KillSim]);
    }
    steps.shuffle(rng);
    let mut at: Vec<f64> = steps.iter().map(|_| rng.random_range(0.05..0.85)).collect();
    at.sort_by(f64::total_cmp);
    at.into_iter().zip(steps).collect()
}

/// A pile sessions of about 1 kWh (10 kWh from 50 % to 60 % at 60 kW, a minute simulated),
/// one connector, a vehicle about every simulated minute, card starts; 60x speed.
fn write_scenario(dir: &Path) -> std::path::PathBuf {
    let text = r#"
transport = "tcp"
speed = 60.0
ramp_s = 2.0
time_zone = "Asia/Shanghai"
backoff_base_ms = 100
backoff_cap_ms = 2000

[[mix]]
kind = "dc"
power_kw = 60
connectors = 1
v2g = false
weight = 1

[arrivals]
per_connector_per_hour = 60.0
start = "card"
session_minutes = [3, 3]
user_stop_fraction = 0.0
battery_kwh = [10, 10]
start_soc_pct = [50, 50]
target_soc_pct = [60, 60]
v2g_fraction = 0.0
"#;
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn transactions(sim: &SimProcess) -> BTreeMap<TransactionSerial, TransactionRecord> {
    sim.records()
        .unwrap()
        .into_iter()
        .filter_map(|(serial, r)| match r {
            StoredRecord::Transaction(t) => Some((serial, *t)),
            StoredRecord::Discharge(_) => None,
        })
        .collect()
}

/// The last warnings and errors of a log.
fn warnings(log: &str) -> String {
    let lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("WARN") || l.contains("ERROR"))
        .collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_record_is_billed_once_through_sigkills_of_the_edge_the_cloud_and_the_simulator() {
    let began = Instant::now();
    let chargers = env_u64("VOLTLINE_CRASH_CHARGERS", 20);
    let per_charger = env_u64("VOLTLINE_CRASH_SESSIONS", 3);
    let kills = env_u64("VOLTLINE_CRASH_KILLS", 2);
    let seed = env_u64(
        "VOLTLINE_CRASH_SEED",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(4, |d| d.as_secs() % 100_000),
    );
    let total = (chargers * per_charger) as usize;
    eprintln!(
        "crash test: {chargers} chargers x {per_charger} sessions, {kills} SIGKILLs of each \
         component, seed {seed} (VOLTLINE_CRASH_SEED={seed} replays it)"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);

    // The cloud, seeded over HTTP: one driver and card per pile.
    let mut cloud = CloudProcess::start(&[]).await.expect("the cloud starts");
    let edge_token = cloud.create_token("edge", Some(SITE)).unwrap();
    let piles: Vec<PileCode> = (0..chargers)
        .map(|i| PileCode::from_number(FIRST_PILE + i).unwrap())
        .collect();
    let mut spec = SiteSpec::new(SITE, 0);
    spec.time_zone = ZONE.into();
    spec.chargers = piles.iter().map(|p| (*p, 1)).collect();
    spec.drivers = (0..chargers)
        .map(|i| DriverSpec {
            account: format!("driver-{i}"),
            top_up: Money::from_yuan(dec!(10000)),
            cards: vec![(
                PhysicalCardNo((FIRST_CARD + i).to_be_bytes()),
                Some(Money::from_yuan(dec!(200))),
            )],
        })
        .collect();
    spec.tariff = Some(tou_tariff(1, ZONE));
    let api = cloud.api().unwrap();
    let site = api.seed_site(&spec).await.expect("the site seeds");

    // The edge reaches the cloud through two links the test can cut.
    let mqtt_link = LinkCutter::start(cloud.mqtt_addr()).await.unwrap();
    let http_link = LinkCutter::start(cloud.http_addr()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let setup = EdgeSetup {
        site: SITE.into(),
        time_zone: ZONE.into(),
        cloud_mqtt: mqtt_link.addr(),
        cloud_http: format!("http://{}", http_link.addr()),
        credential: edge_token,
    };
    let mut edge = EdgeProcess::start(dir.path(), &setup)
        .await
        .expect("the edge starts");

    let scenario = write_scenario(dir.path());
    let args: Vec<String> = [
        "--scenario".to_owned(),
        scenario.display().to_string(),
        "--chargers".into(),
        chargers.to_string(),
        "--edge".into(),
        edge.charger_addr().to_string(),
        "--first-pile".into(),
        piles[0].to_string(),
        "--first-card".into(),
        PhysicalCardNo(FIRST_CARD.to_be_bytes()).to_string(),
        "--seed".into(),
        seed.to_string(),
        "--stats-every".into(),
        "0".into(),
    ]
    .into();
    let mut sim = SimProcess::start(args, &dir.path().join("sim"), piles.clone())
        .await
        .expect("the simulator starts");
    eprintln!(
        "  {:>5.0} s: cloud seeded, edge and simulator started",
        began.elapsed().as_secs_f64()
    );

    // Chaos at random points of the run, until the piles have produced every session.
    let mut steps = plan(&mut rng, kills).into_iter().peekable();
    let mut done_steps = Vec::new();
    let mut last_report = Instant::now();
    loop {
        // The workload runs on until the chaos is over too.
        let produced = transactions(&sim).len();
        if produced >= total && steps.peek().is_none() {
            break;
        }
        for (name, log) in [
            ("cloud", cloud.exited()),
            ("edge", edge.exited()),
            ("simulator", sim.exited()),
        ] {
            if let Some(log) = log {
                panic!("the {name} {log}");
            }
        }
        assert!(
            began.elapsed() < RUN_BOUND,
            "only {produced} of {total} sessions in {RUN_BOUND:?} (seed {seed}); the edge's log:\n{}",
            edge.log()
        );
        if last_report.elapsed() > Duration::from_secs(15) {
            eprintln!(
                "  {:>5.0} s: {produced}/{total} records, chaos so far {done_steps:?}",
                began.elapsed().as_secs_f64()
            );
            last_report = Instant::now();
        }
        match steps.peek() {
            Some((at, _)) if produced as f64 >= at * total as f64 => {
                eprintln!(
                    "  {:>5.0} s: {produced}/{total} records, now {:?}",
                    began.elapsed().as_secs_f64(),
                    steps.peek().map(|s| s.1)
                );
                let (_, step) = steps.next().unwrap();
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..1_000))).await;
                let down = Duration::from_millis(rng.random_range(200..1_500));
                match step {
                    Chaos::KillEdge => {
                        edge.kill();
                        tokio::time::sleep(down).await;
                        edge.start_again().await.expect("the edge starts again");
                    }
                    Chaos::KillCloud => {
                        cloud.kill();
                        tokio::time::sleep(down).await;
                        cloud.start_again().await.expect("the cloud starts again");
                    }
                    Chaos::KillSim => {
                        sim.kill();
                        tokio::time::sleep(down).await;
                        sim.start_again(&[])
                            .await
                            .expect("the simulator starts again");
                    }
                    Chaos::CutLinks => {
                        mqtt_link.cut();
                        http_link.cut();
                        tokio::time::sleep(down * 4).await;
                        mqtt_link.restore();
                        http_link.restore();
                    }
                }
                done_steps.push(step);
            }
            _ => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
    let sessions_at = began.elapsed();

    // No more arrivals: one last power cut, then the piles bill what it cut short and
    // resend whatever is unconfirmed.
    sim.kill();
    sim.start_again(&["--arrivals-per-hour", "0"])
        .await
        .expect("the simulator starts again");
    eventually(
        Duration::from_secs(180),
        "every pile's flash empty of sessions and unconfirmed records",
        || async { (sim.unconfirmed().ok()? == 0 && sim.in_progress().ok()? == 0).then_some(()) },
    )
    .await
    .unwrap_or_else(|e| panic!("{e} (seed {seed}); the edge's log:\n{}", edge.log()));
    let produced = transactions(&sim);

    // Every record reaches the cloud and is settled, then the cloud stops cleanly and its
    // books are read.
    let store = cloud.open_store().await.expect("the cloud's store opens");
    let settled = eventually(
        Duration::from_secs(180),
        "every record settled in the cloud",
        || async {
            let all = store.site_transactions(&site.site).await.ok()?;
            let settled = all.iter().filter(|t| t.settled).count();
            (settled >= produced.len()).then_some(all)
        },
    )
    .await;
    let cloud_log = cloud.log();
    let _ = cloud.terminate(Duration::from_secs(20));
    edge.kill();
    sim.kill();
    let stored = match settled {
        Ok(all) => all,
        Err(e) => {
            let all = store.site_transactions(&site.site).await.unwrap();
            let problems = check_billed_once(&produced, &all).err().unwrap_or_default();
            let unsettled: Vec<_> = all.iter().filter(|t| !t.settled).collect();
            panic!(
                "{e} (seed {seed}): {}\nunsettled: {unsettled:#?}\nthe cloud's warnings:\n{}",
                problems.join("\n"),
                warnings(&cloud_log)
            );
        }
    };
    let verdict = check_billed_once(&produced, &stored).unwrap_or_else(|problems| {
        panic!(
            "seed {seed}: {} problems:\n{}",
            problems.len(),
            problems.join("\n")
        )
    });
    let audit = voltline_cloud::money::audit(&store)
        .await
        .expect("the ledger reads");
    audit
        .check()
        .unwrap_or_else(|e| panic!("the ledger audit failed (seed {seed}): {e}"));
    store.close().await;
    eprintln!(
        "crash test passed in {:.0} s (sessions done at {:.0} s): {} records billed once, {} in all; \
         chaos {done_steps:?}; started {} times: cloud {}, edge {}, simulator {} (the last one \
         without arrivals)",
        began.elapsed().as_secs_f64(),
        sessions_at.as_secs_f64(),
        verdict.records,
        verdict.total,
        cloud.starts() + edge.starts() + sim.starts(),
        cloud.starts(),
        edge.starts(),
        sim.starts(),
    );
}
