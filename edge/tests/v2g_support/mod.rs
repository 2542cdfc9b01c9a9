//! Shared by the V2G tests: a site (store, group committer, TCP charger port, site task) whose
//! cloud side the test plays — commands go in as the uplink would hand them over (stored in
//! the inbox first), and the cloud's last contact is a watch the test moves or leaves alone
//! (offline) — plus simulated V2G chargers and vehicles from `voltline-sim`.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rust_decimal_macros::dec;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use voltline_edge::ops::metrics::{CauseLabels, EdgeMetrics};
use voltline_edge::ports::tcp::{TcpPort, TcpPortConfig};
use voltline_edge::ports::{ChargerDirectory, ChargerEntry, PortEvent};
use voltline_edge::site::{GridOptions, Site, SiteDeps, SiteError, SiteOptions, SiteView};
use voltline_edge::store::{
    GroupCommitConfig, GroupCommitter, SiteConfig, SiteLimits, Store, StoreConfig,
};
use voltline_protocol::domain::{
    CommandId, ConnectorNo, Energy, Money, OrderId, PileCode, Power, SerialTime, SiteId, Soc,
};
use voltline_protocol::sync::{Command, CommandEnvelope, CommandOutcome, RecordBody, V1};
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::TransactionSerial;
use voltline_sim::fleet::{FleetConfig, SimFleet};
use voltline_sim::{ChargerSpec, VehicleSpec};

/// Generous bound for anything a test waits for.
pub const WAIT: Duration = Duration::from_secs(90);

/// The `n`-th test pile.
pub fn pile(n: u64) -> PileCode {
    PileCode::from_number(32_010_600_000_000 + n).unwrap()
}

pub fn gun() -> ConnectorNo {
    ConnectorNo::new(1).unwrap()
}

/// A serial of pile `p`'s gun 1 with counter `n`.
pub fn serial(p: PileCode, n: u16) -> TransactionSerial {
    let at = SerialTime {
        year: 26,
        month: 12,
        day: 1,
        hour: 9,
        minute: 0,
        second: 0,
    };
    TransactionSerial::compose(p, gun(), at, n).unwrap()
}

/// A V2G vehicle of `battery_wh` at `soc` %, whose own floor (5 %) is below every order's.
pub fn v2g_vehicle(battery_wh: i64, soc: u8) -> VehicleSpec {
    let mut v = VehicleSpec::standard()
        .with_battery(Energy::from_wh(battery_wh))
        .with_soc(soc, 90)
        .with_v2g();
    v.discharge_floor_pct = 5;
    v
}

/// A discharge order for pile `p` (counter `n`), floor `floor` %, `max_kw`, leaving in a day.
pub fn discharge(p: PileCode, n: u16, floor: u8, max_kw: i64) -> Command {
    Command::StartDischarge {
        pile: p,
        connector: gun(),
        order: OrderId::new(format!("dis-{}-{n}", p)).unwrap(),
        serial: serial(p, n),
        soc_floor: Soc::new(floor).unwrap(),
        max_power: Power::from_kw(max_kw),
        until: Timestamp::now() + jiff::SignedDuration::from_hours(24),
    }
}

/// Grid options scaled for a simulator running `speed` times faster than real time: the
/// piles' setpoint validity is simulated seconds, the edge's periods are real ones.
pub fn fast_grid(speed: u64) -> GridOptions {
    GridOptions {
        // 4 real seconds of validity on the pile, refreshed every second.
        setpoint_valid_for_s: (4 * speed).min(u16::MAX as u64) as u16,
        refresh_ms: 1_000,
        // Two report intervals of the pile (15 s each). The horizon is not a wall-clock
        // period: it is the drain time in `P <= E / horizon`, and the simulated battery
        // drains at simulated power over simulated seconds.
        replan_horizon_ms: 30_000,
        cloud_dead_man_ms: 600_000,
        stop_retry_ms: 2_000,
        ..GridOptions::default()
    }
}

/// One edge site with a TCP port for chargers.
pub struct Edge {
    pub store: Store,
    pub metrics: Arc<EdgeMetrics>,
    pub tcp_addr: SocketAddr,
    pub view: watch::Receiver<SiteView>,
    /// Port events for hand-made piles (the TCP port feeds the same channel).
    pub events: mpsc::Sender<PortEvent>,
    commands: mpsc::Sender<CommandEnvelope>,
    contact: watch::Sender<Option<Timestamp>>,
    shutdown: CancellationToken,
    site: JoinHandle<Result<(), SiteError>>,
    port: JoinHandle<()>,
    committer: JoinHandle<()>,
}

impl Edge {
    /// Starts a site on the store in `dir` (created or reopened) with piles `piles`, the
    /// site export limit `limit` in its cached config, listening for chargers on `listen`.
    pub async fn start(
        dir: &Path,
        piles: &[PileCode],
        grid: GridOptions,
        limit: Option<Power>,
        listen: SocketAddr,
    ) -> Edge {
        let store = open(dir);
        let config = SiteConfig::new(
            1,
            Some(flat_tariff()),
            Vec::new(),
            SiteLimits {
                offline_session_limit: Money::from_yuan(dec!(100)),
                max_site_power: limit,
            },
        )
        .unwrap();
        store.put_site_config(config).await.unwrap();
        let (committer, committer_task) =
            GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
        let metrics = Arc::new(EdgeMetrics::default());
        let directory = ChargerDirectory::new(piles.iter().map(|p| ChargerEntry {
            pile: *p,
            credential_sha256: None,
        }));
        let (contact, contact_rx) = watch::channel(Some(Timestamp::now()));
        let site = Site::new(
            SiteOptions {
                tick_ms: 100,
                grid,
                ..SiteOptions::default()
            },
            SiteDeps {
                store: store.clone(),
                committer,
                directory: directory.clone(),
                metrics: metrics.clone(),
            },
        )
        .unwrap()
        .with_cloud_contact(contact_rx);
        let view = site.view();
        let (events, events_rx) = mpsc::channel(4_096);
        let (commands, commands_rx) = mpsc::channel(256);
        let shutdown = CancellationToken::new();
        let tcp = bind(listen).await;
        let tcp_addr = tcp.local_addr().unwrap();
        let port =
            tokio::spawn(tcp.run(directory, events.clone(), metrics.clone(), shutdown.clone()));
        let site = tokio::spawn(site.run(events_rx, commands_rx, shutdown.clone()));
        Edge {
            store,
            metrics,
            tcp_addr,
            view,
            events,
            commands,
            contact,
            shutdown,
            site,
            port,
            committer: committer_task,
        }
    }

    /// Hands the site a command the way the uplink does: stored in the inbox first.
    pub async fn command(&self, command: Command) -> CommandId {
        let now = Timestamp::now();
        let id = CommandId::new(format!("cmd-{:016x}", rand::random::<u64>())).unwrap();
        let env = CommandEnvelope {
            v: V1,
            id: id.clone(),
            site: SiteId::new("v2g-site").unwrap(),
            issued_at: now,
            expires_at: now + jiff::SignedDuration::from_mins(5),
            command,
        };
        self.store.receive_command(env.clone(), now).await.unwrap();
        self.commands.send(env).await.unwrap();
        id
    }

    /// The cloud is heard from now.
    pub fn cloud_seen(&self) {
        self.contact.send_replace(Some(Timestamp::now()));
    }

    /// Every record in the outbox.
    pub async fn records(&self) -> Vec<RecordBody> {
        self.store.flush().await.unwrap();
        self.store
            .unacked_after(0, 100_000, Timestamp::now())
            .unwrap()
            .into_iter()
            .map(|r| r.body)
            .collect()
    }

    /// The outcome of command `id`, once its result is in the outbox.
    pub async fn result_of(&self, id: &CommandId) -> CommandOutcome {
        let deadline = tokio::time::Instant::now() + WAIT;
        loop {
            let found = self.records().await.into_iter().find_map(|r| match r {
                RecordBody::CommandResult(c)
                    if &c.command_id == id && c.outcome != CommandOutcome::Received =>
                {
                    Some(c.outcome)
                }
                _ => None,
            });
            if let Some(o) = found {
                return o;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no result for command {id}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Discharge stops the dispatcher sent for `cause`.
    pub fn stops(&self, cause: &'static str) -> u64 {
        self.metrics
            .grid_stops
            .get_or_create(&CauseLabels { cause })
            .get()
    }

    /// Stops the site and its port, flushing what the site recorded.
    pub async fn stop(self) {
        self.shutdown.cancel();
        self.site.await.unwrap().unwrap();
        self.port.await.unwrap();
        drop(self.events);
        drop(self.commands);
        self.committer.await.unwrap();
        self.store.flush().await.unwrap();
    }
}

/// One price all day: the piles need a billing model before they start anything.
fn flat_tariff() -> Tariff {
    Tariff::new(
        TariffVersion(1),
        jiff::tz::TimeZone::get("Asia/Shanghai").unwrap(),
        vec![TariffPeriod::new(
            "flat",
            Money::from_yuan(dec!(0.80)),
            Money::from_yuan(dec!(0.40)),
        )],
        vec![ScheduleEntry::new(TimeOfDay::new(0, 0).unwrap(), 0)],
    )
    .unwrap()
}

fn open(dir: &Path) -> Store {
    let config = StoreConfig {
        cache_bytes: 8 << 20,
        ..StoreConfig::default()
    };
    for _ in 0..200 {
        match Store::open(dir.join("store"), config.clone()) {
            Ok(s) => return s,
            // After a stop, sled's threads may hold the lock for a moment.
            Err(e) if e.to_string().contains("could not acquire lock") => {
                std::thread::sleep(Duration::from_millis(20))
            }
            Err(e) => panic!("{e}"),
        }
    }
    panic!("the store stayed locked");
}

async fn bind(listen: SocketAddr) -> TcpPort {
    // A restarted edge takes its old port again; the OS may hold it for a moment.
    for _ in 0..200 {
        match TcpPort::bind(TcpPortConfig {
            listen,
            ..TcpPortConfig::default()
        }) {
            Ok(p) => return p,
            Err(_) => tokio::time::sleep(Duration::from_millis(25)).await,
        }
    }
    panic!("cannot bind {listen}");
}

/// V2G DC chargers (one gun each) for `piles`, over TCP to `addr`, `speed` times real time.
pub async fn fleet(addr: SocketAddr, piles: &[PileCode], speed: f64) -> SimFleet {
    let specs = piles
        .iter()
        .map(|p| ChargerSpec::dc(*p, 60).with_v2g().with_connectors(1))
        .collect();
    let config = FleetConfig::tcp(addr.to_string(), specs)
        .speed(speed)
        .unwrap();
    let fleet = SimFleet::spawn(config).await.unwrap();
    // A pile starts nothing before it holds the site's billing model.
    eventually("every pile holds the billing model", || async {
        for p in piles {
            let state = fleet.charger(p).unwrap().state().await.unwrap();
            if !state.online || state.billing_model_no.is_none() {
                return false;
            }
        }
        true
    })
    .await;
    fleet
}

/// Polls `cond` every 50 ms for at most [`WAIT`].
pub async fn eventually<F, Fut>(what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
