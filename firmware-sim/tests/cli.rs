//! The command line end to end: a scenario file, flags on top, chargers running against a
//! sink until `--duration` is over.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use voltline_sim::harness::{serve_sink, HarnessConfig, SinkStats};
use voltline_sim::scenario::Scenario;

#[test]
fn the_example_scenario_parses_and_builds() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/example.toml");
    let s = Scenario::load(&path).unwrap();
    let fleet = s.fleet_config().unwrap();
    assert_eq!(fleet.chargers.len(), 200);
    assert!(fleet.workload.is_some());
}

#[tokio::test]
async fn run_cli_drives_chargers_through_sessions_with_faults() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap().to_string();
    let stats = Arc::new(SinkStats::default());
    let sink = tokio::spawn(serve_sink(
        listener,
        HarnessConfig::default(),
        stats.clone(),
    ));
    #[rustfmt::skip]
    let args = [
        "voltline-sim", "-n", "6", "--edge", &addr, "--kind", "dc", "--connectors", "2", "--v2g",
        "--speed", "600", "--ramp", "0.2", "--plug-in-at-start", "--start", "card",
        "--session-minutes", "10-20", "--user-stop-fraction", "1", "--arrivals-per-hour", "2",
        "--duplicate-per-hour", "4", "--reorder-per-hour", "4", "--garbage-per-hour", "2",
        "--drop-per-hour", "0.5", "--clock-skew-fraction", "0.5", "--clock-skew-max-minutes", "5",
        "--duration", "4", "--stats-every", "1",
    ];
    let run = voltline_sim::cli::run_cli(args.iter().map(|s| s.to_string()).collect());
    tokio::time::timeout(Duration::from_secs(30), run)
        .await
        .expect("bounded by --duration")
        .unwrap();
    sink.abort();
    assert!(stats.connections.load(Ordering::Relaxed) >= 6);
    assert!(
        stats.records.load(Ordering::Relaxed) >= 6,
        "sessions ended with records"
    );
    assert!(
        stats.errors.load(Ordering::Relaxed) >= 1,
        "garbage reached the sink"
    );
}

#[tokio::test]
async fn help_and_version_return_ok() {
    voltline_sim::cli::run_cli(vec!["voltline-sim".into(), "--version".into()])
        .await
        .unwrap();
    assert!(
        voltline_sim::cli::run_cli(vec!["voltline-sim".into(), "--no-such-flag".into()])
            .await
            .is_err()
    );
}
