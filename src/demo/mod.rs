//! `voltline demo`: a cloud, one edge and simulated chargers in one process, with embedded
//! defaults (SQLite, the cloud's embedded MQTT broker, the edge's store, all under
//! `./voltline-data`), a seeded operator, site, drivers and time-of-use tariff, and sessions
//! starting, charging and settling — with a live line of progress. Ctrl-C stops it cleanly;
//! the next run continues from the stored state.
//!
//! It wires the crates' public APIs together and decides nothing they decide.

mod seed;
mod traffic;

use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use tokio_util::sync::CancellationToken;
use voltline_cloud::config::{CloudConfig, MqttMode};
use voltline_cloud::domain::Actor;
use voltline_cloud::store::NewToken;
use voltline_edge::daemon::Running as Edge;
use voltline_edge::ops::config::{EdgeConfig, Secret};
use voltline_sim::{ChargerSpec, FleetConfig, SimFleet};

/// Start a cloud, one edge and simulated chargers in one process with embedded defaults.
///
/// Everything listens on 127.0.0.1. The cloud's HTTP API, the edge's ports and its
/// /metrics endpoint are printed at start with an admin token for the API. Sessions start
/// every so often on each connector: half from the driver's app (POST /v1/sessions, answered
/// 202 at once), half by card at the pile (authorised by the edge from its cached list); the
/// edge prices them with the site's time-of-use tariff and the cloud settles each one
/// exactly once from the driver's wallet.
#[derive(Debug, Clone, clap::Args)]
pub struct DemoArgs {
    /// Simulated chargers (two connectors each).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=2000))]
    pub chargers: u32,
    /// Simulated time runs this many times faster than real time (1 = real time).
    #[arg(long, default_value_t = 60.0)]
    pub speed: f64,
    /// Where the cloud's database and the edge's store live (kept between runs).
    #[arg(long, default_value = "./voltline-data")]
    pub data_dir: PathBuf,
    /// The cloud's HTTP API.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http: SocketAddr,
    /// The cloud's embedded MQTT broker (the edge's uplink).
    #[arg(long, default_value = "127.0.0.1:1884")]
    pub cloud_mqtt: SocketAddr,
    /// The edge's TCP charger port (the simulated chargers connect here).
    #[arg(long, default_value = "127.0.0.1:8768")]
    pub edge_tcp: SocketAddr,
    /// The edge's /metrics, /healthz and /readyz.
    #[arg(long, default_value = "127.0.0.1:9468")]
    pub edge_ops: SocketAddr,
    /// Simulated minutes a connector stays free between two vehicles (on average).
    #[arg(long, default_value_t = 20)]
    pub idle_minutes: u32,
    /// Stop by itself after this many seconds (0: run until Ctrl-C).
    #[arg(long, default_value_t = 0)]
    pub seconds: u64,
}

pub async fn run(args: DemoArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.speed >= 1.0 && args.speed <= 3_600.0,
        "--speed must be between 1 and 3600"
    );
    init_logging();
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create {}", args.data_dir.display()))?;

    let mut cloud_config = CloudConfig {
        data_dir: args.data_dir.join("cloud"),
        ..CloudConfig::default()
    };
    cloud_config.http.listen = args.http;
    cloud_config.mqtt.mode = MqttMode::Embedded;
    cloud_config.mqtt.listen = args.cloud_mqtt;
    let cloud = voltline_cloud::server::start_from_config(cloud_config)
        .await
        .context("the cloud did not start (is another demo running? choose other ports with --http / --cloud-mqtt)")?;
    let store = cloud.state.store.clone();
    let token = |actor: Actor, label: &str| {
        let store = store.clone();
        let label = label.to_owned();
        async move {
            store
                .create_token(&NewToken {
                    actor,
                    label,
                    expires_at: None,
                })
                .await
                .map(|t| t.secret.expose().to_owned())
        }
    };
    let admin = token(Actor::Admin, "demo admin").await?;
    let base = format!("http://{}", cloud.http_addr);
    let api = Arc::new(seed::Api::new(base.clone(), admin.clone()));
    let drivers = args.chargers * 2;
    let site = seed::seed(&api, args.chargers, drivers)
        .await
        .context("seeding the demo site")?;
    let edge_token = token(Actor::Edge(site.clone()), "demo edge").await?;

    let mut edge_config = EdgeConfig::default();
    edge_config.site.id = site.to_string();
    edge_config.site.time_zone = seed::TIME_ZONE.into();
    edge_config.site.data_dir = args.data_dir.join("edge");
    edge_config.tcp.listen = args.edge_tcp;
    edge_config.mqtt.enabled = false;
    edge_config.ops.listen = args.edge_ops;
    edge_config.cloud.mqtt = args.cloud_mqtt.to_string();
    edge_config.cloud.http = base.clone();
    edge_config.cloud.credential = Secret::new(edge_token);
    let edge = Edge::start(edge_config)
        .await
        .context("the edge did not start (choose other ports with --edge-tcp / --edge-ops)")?;

    let specs = (1..=args.chargers)
        .map(|n| ChargerSpec::dc(seed::pile(n), 60).with_connectors(2))
        .collect();
    let mut fleet_config = FleetConfig::tcp(args.edge_tcp.to_string(), specs)
        .speed(args.speed)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    fleet_config.time_zone = seed::TIME_ZONE.into();
    fleet_config.ramp = Duration::from_secs(2);
    fleet_config.state_dir = Some(args.data_dir.join("piles"));
    let fleet = Arc::new(SimFleet::spawn(fleet_config).await?);

    println!(
        "Voltline demo: {} chargers at {site}, simulated time {}x",
        args.chargers, args.speed
    );
    println!("  cloud API    {base}   (admin token: {admin})");
    println!(
        "  try          curl -H 'Authorization: Bearer {admin}' {base}/v1/edges/{site}/config"
    );
    println!(
        "  edge         chargers tcp://{}   metrics http://{}/metrics",
        args.edge_tcp, args.edge_ops
    );
    println!(
        "  data         {} (kept; the next run continues)",
        args.data_dir.display()
    );
    println!("  Ctrl-C stops it cleanly.");

    let stop = CancellationToken::new();
    let tally = Arc::new(traffic::Tally::default());
    let mut routes = traffic::route_events(&fleet, 2, tally.clone(), stop.clone());
    let idle = Duration::from_secs_f64(f64::from(args.idle_minutes) * 60.0 / args.speed);
    let mut drivers_tasks = Vec::new();
    for n in 1..=args.chargers {
        for c in 1..=2u8 {
            let Some(events) = routes.remove(&(seed::pile(n), c)) else {
                continue;
            };
            drivers_tasks.push(tokio::spawn(traffic::drive_connector(
                fleet.clone(),
                api.clone(),
                seed::pile(n),
                c,
                (n - 1) * 2 + u32::from(c),
                events,
                idle,
                stop.clone(),
            )));
        }
    }

    let started = Instant::now();
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut settled = (0usize, voltline_protocol::Money::ZERO);
    loop {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => break,
            _ = tick.tick() => {}
        }
        if args.seconds > 0 && started.elapsed() >= Duration::from_secs(args.seconds) {
            break;
        }
        if started.elapsed().as_secs().is_multiple_of(3) {
            if let Ok(all) = cloud.state.store.site_transactions(&site).await {
                let money = all
                    .iter()
                    .filter_map(|t| t.settlement.as_ref().map(|s| s.cost))
                    .fold(voltline_protocol::Money::ZERO, |a, b| a + b);
                settled = (all.iter().filter(|t| t.settled).count(), money);
            }
        }
        let view = *edge.site.borrow();
        print!(
            "\r  piles online {:>4}  charging {:>4}  ended {:>6}  energy {:>10.1} kWh  settled {:>6} sessions, {:>12} yuan   ",
            view.piles_connected,
            view.sessions,
            tally.ended.load(Ordering::Relaxed),
            tally.energy_mwh.load(Ordering::Relaxed) as f64 / 1e6,
            settled.0,
            settled.1.round_cents(),
        );
        let _ = std::io::stdout().flush();
    }
    println!("\nstopping: chargers, then the edge (flushing its records), then the cloud");
    stop.cancel();
    for t in drivers_tasks {
        let _ = t.await;
    }
    if let Ok(fleet) = Arc::try_unwrap(fleet) {
        fleet.shutdown().await;
    }
    edge.stop().await?;
    cloud.stop(Duration::from_secs(10)).await;
    println!("stopped; state kept in {}", args.data_dir.display());
    Ok(())
}

fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new("warn,rumqttd=error,rumqttd::router::routing=off")
    });
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
