//! The embedded `rumqttd` broker behind the front end: its configuration for thousands of
//! chargers, its internal-only listener and credential, and the site's local link.
//!
//! Shaped around rumqttd 0.20's known pitfalls:
//! - its accept loop sleeps `next_connection_delay_ms` after every accept: set to 0 (and only
//!   the front end, on loopback, ever connects to it);
//! - TLS would be handshaken inside that accept loop: none here (loopback only);
//! - each subscription filter keeps an in-memory log of `max_segment_size` ×
//!   `max_segment_count`, which by default is large per filter: every charger's down filter
//!   gets a small log, and only the site's `piles/+/up` filter a larger one
//!   ([`MqttPortConfig`]);
//! - the router refuses connections beyond `max_connections` silently (the client just waits):
//!   sized above the front end's own limit, which refuses first and says so;
//! - a local link's `publish` blocks while the router's queue is full: only the bridge's
//!   dedicated outbound thread calls it.
//!
//! rumqttd has no shutdown: its threads live until the process exits. Shutdown closes the
//! front end (no charger can reach the broker any more) and stops the bridge.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::time::Duration;

use rumqttd::local::{LinkRx, LinkTx};
use rumqttd::{Broker, Config, ConnectionSettings, RouterConfig, SegmentConfig, ServerSettings};
use voltline_protocol::topics;

use super::{MqttPortConfig, PortError};

/// The client id of the site's local link (not a pile code, so no charger can take it).
pub const SITE_LINK_ID: &str = "voltline-edge-site";
/// How long to wait for rumqttd's listener to come up.
const START_WAIT: Duration = Duration::from_secs(10);

/// The login the front end writes into every CONNECT it forwards.
#[derive(Clone)]
pub struct InternalLogin {
    pub username: String,
    pub password: String,
}

impl std::fmt::Debug for InternalLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InternalLogin")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

impl InternalLogin {
    /// A fresh random login, known only to this process.
    pub fn random() -> InternalLogin {
        InternalLogin {
            username: format!("voltline-front-{}", hex::encode(rand::random::<[u8; 6]>())),
            password: hex::encode(rand::random::<[u8; 24]>()),
        }
    }
}

/// The rumqttd configuration the port runs (public so that a benchmark can run the very same
/// broker bare, as a relay baseline).
pub fn broker_config(cfg: &MqttPortConfig, listen: SocketAddr, login: &InternalLogin) -> Config {
    let connections = ConnectionSettings {
        connection_timeout_ms: 10_000,
        max_payload_size: cfg.max_packet_bytes,
        max_inflight_count: cfg.max_inflight,
        auth: Some(HashMap::from([(
            login.username.clone(),
            login.password.clone(),
        )])),
        external_auth: None,
        dynamic_filters: true,
    };
    let server = ServerSettings {
        name: "voltline-chargers-internal".into(),
        listen,
        tls: None,
        next_connection_delay_ms: 0,
        connections,
    };
    let router = RouterConfig {
        // Above the front end's limit, plus the site's own links.
        max_connections: cfg.max_connections + 64,
        max_outgoing_packet_count: 200,
        max_segment_size: cfg.down_segment_bytes.max(1024),
        max_segment_count: cfg.down_segments.max(1),
        custom_segment: Some(HashMap::from([(
            topics::all_piles_up(),
            SegmentConfig {
                max_segment_size: cfg.up_segment_bytes.max(1024),
                max_segment_count: cfg.up_segments.max(1),
            },
        )])),
        initialized_filters: None,
        shared_subscriptions_strategy: Default::default(),
    };
    Config {
        id: 0,
        router,
        v4: Some(HashMap::from([("chargers".to_owned(), server)])),
        ..Default::default()
    }
}

/// A running embedded broker.
pub struct Embedded {
    /// rumqttd's internal listener (loopback).
    pub addr: SocketAddr,
    pub login: InternalLogin,
    /// The site's link (subscribe, receive every pile's frames, publish to piles).
    pub link: (LinkTx, LinkRx),
}

/// A free loopback port (the OS picks it; rumqttd binds it right after).
pub fn free_loopback_port() -> Result<SocketAddr, PortError> {
    let l = StdListener::bind(("127.0.0.1", 0)).map_err(PortError::Bind)?;
    l.local_addr().map_err(PortError::Bind)
}

/// Starts rumqttd with `config` on its own threads, opens a local link named `link_id`
/// and waits until the broker listens on `addr`.
pub async fn spawn_broker(
    config: Config,
    addr: SocketAddr,
    link_id: &str,
) -> Result<(LinkTx, LinkRx), PortError> {
    let mut broker = Broker::new(config);
    let link = broker
        .link(link_id)
        .map_err(|e| PortError::Broker(format!("local link: {e}")))?;
    std::thread::Builder::new()
        .name("voltline-mqtt-broker".into())
        .spawn(move || {
            if let Err(e) = broker.start() {
                tracing::error!(error = %e, "embedded MQTT broker stopped");
            }
        })
        .map_err(|e| PortError::Broker(format!("broker thread: {e}")))?;
    wait_listening(addr).await?;
    Ok(link)
}

/// Starts the port's broker: internal listener, internal login, the site's link.
pub async fn start(cfg: &MqttPortConfig) -> Result<Embedded, PortError> {
    let addr = free_loopback_port()?;
    let login = InternalLogin::random();
    let link = spawn_broker(broker_config(cfg, addr, &login), addr, SITE_LINK_ID).await?;
    Ok(Embedded { addr, login, link })
}

/// Waits until something accepts on `addr`.
pub async fn wait_listening(addr: SocketAddr) -> Result<(), PortError> {
    let deadline = tokio::time::Instant::now() + START_WAIT;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(PortError::Broker(format!(
                "rumqttd did not listen on {addr} within {START_WAIT:?}; another process may \
                 have taken the port: restart the port"
            )));
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
