//! The README's main job, `voltline demo`, run as a user runs it (a child process, embedded
//! defaults, an empty data directory), shortened and on free ports: it must start a cloud,
//! an edge and simulated chargers, charge and settle sessions, stop by itself cleanly, and
//! leave a ledger that balances. A second run on the same directory continues from the
//! stored state.

use std::path::Path;
use std::time::{Duration, Instant};

use voltline_cloud::domain::OrderKind;
use voltline_cloud::Store;
use voltline_protocol::domain::SiteId;
use voltline_tests::{free_port, spawn_binary};

/// The demo seeds this site (`src/demo/seed.rs`).
const DEMO_SITE: &str = "demo-site";

/// Runs the demo for `seconds` on `dir` and returns its output once it stopped by itself.
fn run_demo(dir: &Path, seconds: u64) -> String {
    let addr = || format!("127.0.0.1:{}", free_port());
    let (http, mqtt, tcp, ops) = (addr(), addr(), addr(), addr());
    let seconds = seconds.to_string();
    let data_dir = dir.to_string_lossy().into_owned();
    let mut demo = spawn_binary(
        "voltline",
        &[
            "demo",
            "--chargers",
            "4",
            "--speed",
            "900",
            "--idle-minutes",
            "1",
            "--seconds",
            &seconds,
            "--data-dir",
            &data_dir,
            "--http",
            &http,
            "--cloud-mqtt",
            &mqtt,
            "--edge-tcp",
            &tcp,
            "--edge-ops",
            &ops,
        ],
        &[("RUST_LOG", "warn")],
    )
    .expect("the voltline binary runs");
    // Its own time, plus start-up and a clean stop.
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = demo.try_wait().expect("wait for the demo") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the demo did not stop by itself:\n{}",
            demo.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    };
    let log = demo.log();
    assert!(status.success(), "the demo failed ({status}):\n{log}");
    assert!(
        log.contains("stopped; state kept in"),
        "the demo stopped cleanly:\n{log}"
    );
    log
}

/// Settled charging sessions of the demo site, after checking the whole ledger balances.
async fn settled_sessions(dir: &Path) -> usize {
    let store = Store::open_in_dir(&dir.join("cloud"))
        .await
        .expect("the demo's cloud database opens");
    voltline_cloud::money::audit(&store)
        .await
        .expect("the ledger reads")
        .check()
        .unwrap_or_else(|why| panic!("the demo's ledger balances: {why}"));
    let site = SiteId::new(DEMO_SITE).expect("site id");
    let all = store.site_transactions(&site).await.expect("transactions");
    for t in all.iter().filter(|t| t.settled) {
        let s = t
            .settlement
            .as_ref()
            .expect("a settled record has its settlement");
        assert!(!s.cost.is_negative(), "{t:?}");
    }
    all.iter()
        .filter(|t| t.settled && t.kind == OrderKind::Charge)
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_charges_and_settles_sessions_then_continues_from_its_state() {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().to_owned();
    let log = tokio::task::spawn_blocking(move || run_demo(&path, 25))
        .await
        .unwrap();
    let first = settled_sessions(dir.path()).await;
    assert!(first >= 1, "the demo settled no session in 25 s:\n{log}");

    let path = dir.path().to_owned();
    let log = tokio::task::spawn_blocking(move || run_demo(&path, 10))
        .await
        .unwrap();
    let second = settled_sessions(dir.path()).await;
    assert!(
        second >= first,
        "the second run keeps the first's {first} settled sessions (found {second}):\n{log}"
    );
}
