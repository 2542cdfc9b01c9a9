//! Shared pieces of the uplink tests: real MQTT brokers on loopback (an embedded rumqttd
//! started here, and Mosquitto when `VOLTLINE_TEST_MQTT` is set), a cuttable proxy, the test
//! cloud, and an edge (store, group committer, directory, metrics) running the uplink.

#![allow(dead_code, unused_imports)]

pub mod cloud;
pub mod proxy;

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_edge::ops::metrics::EdgeMetrics;
use voltline_edge::ports::ChargerDirectory;
use voltline_edge::store::{GroupCommitConfig, GroupCommitter, NewRecord, Store, StoreConfig};
use voltline_edge::uplink::{Uplink, UplinkConfig, UplinkHandle, UplinkState};
use voltline_protocol::domain::SiteId;
use voltline_protocol::sync::{Alarm, CommandEnvelope, RecordBody, Severity};

pub use cloud::{Cloud, Via};
pub use proxy::Proxy;

/// The edge credential every test site uses.
pub const SECRET: &str = "edge-secret-1";

/// Starts rumqttd on a free loopback port (rumqttd cannot report the port it bound, so a
/// port is picked first). Logins: the test cloud, or client id = username = site id with
/// [`SECRET`], as the cloud's broker checks.
pub fn start_rumqttd() -> SocketAddr {
    use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, ServerSettings};
    let addr = {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let mut connections = ConnectionSettings {
        connection_timeout_ms: 5_000,
        max_payload_size: 4 << 20,
        max_inflight_count: 100,
        auth: None,
        external_auth: None,
        dynamic_filters: true,
    };
    connections.set_auth_handler(
        |client_id: String, username: String, password: String| async move {
            username == "test-cloud" || (client_id == username && password == SECRET)
        },
    );
    let server = ServerSettings {
        name: "edges".into(),
        listen: addr,
        tls: None,
        next_connection_delay_ms: 1,
        connections,
    };
    let config = Config {
        id: 0,
        router: RouterConfig {
            max_connections: 100,
            max_outgoing_packet_count: 200,
            max_segment_size: 16 << 20,
            max_segment_count: 10,
            custom_segment: None,
            initialized_filters: None,
            shared_subscriptions_strategy: Default::default(),
        },
        v4: Some(HashMap::from([("edges".to_owned(), server)])),
        ..Default::default()
    };
    let mut broker = Broker::new(config);
    std::thread::spawn(move || {
        let _ = broker.start();
    });
    for _ in 0..250 {
        if std::net::TcpStream::connect(addr).is_ok() {
            return addr;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    panic!("rumqttd did not start on {addr}");
}

/// Mosquitto's address from `VOLTLINE_TEST_MQTT`, or `None` (printing why the test is
/// skipped; a failure when `VOLTLINE_CI` is set).
pub fn mosquitto(test: &str) -> Option<SocketAddr> {
    match std::env::var("VOLTLINE_TEST_MQTT") {
        Ok(addr) => Some(
            addr.parse()
                .expect("VOLTLINE_TEST_MQTT must be host:port, e.g. 127.0.0.1:1883"),
        ),
        Err(_) => {
            assert!(
                std::env::var_os("VOLTLINE_CI").is_none(),
                "{test}: VOLTLINE_CI is set but VOLTLINE_TEST_MQTT is not: the uplink must be tested against Mosquitto in CI; export VOLTLINE_TEST_MQTT=127.0.0.1:1883"
            );
            println!("skipped: {test} against Mosquitto, because VOLTLINE_TEST_MQTT is unset (set it to 127.0.0.1:1883)");
            None
        }
    }
}

/// A site id no other run has used (Mosquitto keeps sessions and retained messages).
pub fn fresh_site() -> SiteId {
    let n: u64 = rand::random();
    SiteId::new(format!("site-{n:016x}")).unwrap()
}

/// Forgets what a test left on the broker for `site`: its persistent session (by connecting
/// once with a clean session under its client id) and its retained status.
pub async fn forget_site(broker: SocketAddr, site: &SiteId) {
    use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, Packet, QoS};
    let mut o = MqttOptions::new(site.as_str(), broker.ip().to_string(), broker.port());
    o.set_credentials(site.as_str(), SECRET);
    o.set_clean_session(true);
    let (client, mut eventloop) = AsyncClient::new(o, 8);
    let status =
        voltline_protocol::topics::site(site, voltline_protocol::topics::SiteChannel::Status);
    let _ = tokio::time::timeout(Duration::from_secs(3), async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => {
                    let _ = client.try_publish(status.clone(), QoS::AtLeastOnce, true, Vec::new());
                }
                Ok(Event::Incoming(Packet::PubAck(_))) => {
                    let _ = client.try_disconnect();
                }
                Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
                Ok(_) => {}
            }
        }
    })
    .await;
}

/// Test bounds: small batches, quick retries.
pub fn test_config(site: &SiteId, broker: SocketAddr, http: &str) -> UplinkConfig {
    let mut c = UplinkConfig::new(
        site.clone(),
        broker.ip().to_string(),
        broker.port(),
        SECRET,
        http,
    );
    c.keep_alive_s = 5;
    c.connect_timeout_s = 2;
    c.batch_max_records = 100;
    c.window_batches = 4;
    c.linger_ms = 5;
    c.ack_timeout_ms = 3_000;
    c.backoff_base_ms = 50;
    c.backoff_cap_ms = 400;
    c.replay_threshold_records = 1_000;
    c.http_batch_max_records = 700;
    c.http_timeout_ms = 5_000;
    c.config_refresh_s = 3_600;
    c
}

/// An edge running the uplink.
pub struct Edge {
    pub store: Store,
    pub committer: GroupCommitter,
    pub directory: ChargerDirectory,
    pub metrics: Arc<EdgeMetrics>,
    pub commands: mpsc::Receiver<CommandEnvelope>,
    pub handle: UplinkHandle,
    pub shutdown: CancellationToken,
    pub dir: tempfile::TempDir,
}

impl Edge {
    pub async fn start(cfg: UplinkConfig) -> Edge {
        Edge::start_with(cfg, ChargerDirectory::default()).await
    }

    pub async fn start_with(cfg: UplinkConfig, directory: ChargerDirectory) -> Edge {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(
            dir.path(),
            StoreConfig {
                cache_bytes: 16 << 20,
                ..StoreConfig::default()
            },
        )
        .unwrap();
        let (committer, _task) = GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
        let metrics = Arc::new(EdgeMetrics::default());
        let (tx, commands) = mpsc::channel(16);
        let shutdown = CancellationToken::new();
        let handle = Uplink::spawn(
            cfg,
            store.clone(),
            committer.clone(),
            directory.clone(),
            metrics.clone(),
            tx,
            shutdown.clone(),
        )
        .unwrap();
        Edge {
            store,
            committer,
            directory,
            metrics,
            commands,
            handle,
            shutdown,
            dir,
        }
    }

    /// Appends alarms numbered `range` durably.
    pub async fn append(&self, range: std::ops::Range<u64>) {
        let records: Vec<NewRecord> = range.map(alarm).collect();
        for chunk in records.chunks(5_000) {
            self.committer.append_durable(chunk.to_vec()).await.unwrap();
        }
    }

    /// Stops the uplink gracefully and waits for it.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(5), self.handle.join)
            .await
            .expect("the uplink did not stop within 5 s")
            .unwrap();
    }
}

/// An alarm whose message names `i`.
pub fn alarm(i: u64) -> NewRecord {
    NewRecord::new(
        Timestamp::now(),
        RecordBody::Alarm(Alarm {
            severity: Severity::Info,
            code: "test".into(),
            message: format!("record {i}"),
            pile: None,
        }),
    )
}

/// The number an alarm record carries.
pub fn alarm_no(body: &RecordBody) -> Option<u64> {
    match body {
        RecordBody::Alarm(a) => a.message.strip_prefix("record ")?.parse().ok(),
        _ => None,
    }
}

/// Waits until `cond` holds, polling; panics naming `what` after `secs`.
pub async fn eventually(what: &str, secs: u64, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {secs} s waiting for: {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn wait_state(edge: &Edge, want: UplinkState) {
    let mut rx = edge.handle.state.clone();
    tokio::time::timeout(Duration::from_secs(10), rx.wait_for(|s| *s == want))
        .await
        .unwrap_or_else(|_| panic!("the uplink did not reach {want:?} within 10 s"))
        .unwrap();
}

/// Starts cloud, proxy and edge for `broker`, and waits until the edge is live.
pub async fn setup(broker: SocketAddr) -> (Cloud, Proxy, Edge) {
    let site = fresh_site();
    let cloud = Cloud::start(broker, &site).await;
    let proxy = Proxy::start(broker).await;
    let edge = Edge::start(test_config(&site, proxy.addr, &cloud.http_base())).await;
    wait_state(&edge, UplinkState::Live).await;
    (cloud, proxy, edge)
}

/// The cloud holds every sequence 1..=n exactly once in effect, each the alarm numbered so.
pub fn assert_complete(cloud: &Cloud, n: u64) {
    let g = cloud.lock();
    assert_eq!(g.contiguous, n);
    assert_eq!(g.records.len() as u64, n, "records above {n} arrived");
    for (seq, r) in &g.records {
        assert_eq!(
            alarm_no(&r.body),
            Some(*seq),
            "sequence {seq} carries another record"
        );
    }
}
