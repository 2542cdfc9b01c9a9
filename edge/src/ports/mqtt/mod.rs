//! The MQTT charger port: an ACL-enforcing front end before an embedded `rumqttd`, bridged
//! to the site.
//!
//! ```text
//! charger ──MQTT──▶ front end (ours: auth, ACL) ──loopback──▶ rumqttd ◀── local link ── site
//! ```
//!
//! - [`front`]: the charger-facing listener. It authenticates each CONNECT (username = the
//!   14-digit pile code, the charger's own password, client id = the pile code or
//!   `pile-{code}`), lets a charger publish only to `topics::pile_up(own)` and subscribe only
//!   to `topics::pile_down(own)`, rewrites the CONNECT with an internal credential, and
//!   proxies everything else both ways. rumqttd 0.20 has authentication but no per-client
//!   topic ACL; its listener is on loopback and only the front end knows its credential, so
//!   nobody gets around the ACL by connecting to it directly.
//! - [`broker`]: rumqttd's configuration (sized for thousands of chargers, small logs).
//! - [`bridge`]: the site's local link: frames in, frames out.
//! - [`packet`]: the pure MQTT bits the front end needs (framing, ACL, replies).
//!
//! [`PortEvent::Connected`]/[`PortEvent::Disconnected`] come from the front end (CONNECT
//! accepted / socket closed); frames come from the bridge with the pile's current
//! connection id.
//!
//! [`PortEvent::Connected`]: crate::ports::PortEvent::Connected
//! [`PortEvent::Disconnected`]: crate::ports::PortEvent::Disconnected

pub mod bridge;
pub mod broker;
pub mod front;
pub mod packet;

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_protocol::PileCode;

use super::{ChargerDirectory, ConnId, EventSink, Outbound};
use crate::ops::metrics::EdgeMetrics;

/// Settings of the MQTT port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MqttPortConfig {
    /// The charger-facing listener (port 0: the OS picks one, see [`MqttPort::local_addr`]).
    pub listen: SocketAddr,
    /// How long a new socket may take to send its CONNECT.
    pub connect_timeout_ms: u64,
    /// Most charger sockets; beyond this, new ones are closed at once and counted.
    pub max_connections: usize,
    /// Largest MQTT packet a charger may send (a frame is at most 204 bytes).
    pub max_packet_bytes: usize,
    /// QoS 1 messages rumqttd keeps in flight towards one charger.
    pub max_inflight: usize,
    /// In-memory log per charger down topic: segment size (at least 1 KiB) and count.
    pub down_segment_bytes: usize,
    pub down_segments: usize,
    /// In-memory log of the site's `piles/+/up` subscription: how far the site may lag
    /// behind the chargers before the oldest frames are lost.
    pub up_segment_bytes: usize,
    pub up_segments: usize,
    /// Frames queued towards all MQTT chargers together.
    pub outbound_queue: usize,
}

impl Default for MqttPortConfig {
    fn default() -> Self {
        MqttPortConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 1883)),
            connect_timeout_ms: 10_000,
            max_connections: 10_000,
            max_packet_bytes: 4 * 1024,
            max_inflight: 64,
            down_segment_bytes: 4 * 1024,
            down_segments: 2,
            up_segment_bytes: 4 * 1024 * 1024,
            up_segments: 4,
            outbound_queue: 8_192,
        }
    }
}

/// Why the MQTT port could not start.
#[derive(Debug, thiserror::Error)]
pub enum PortError {
    #[error("cannot listen for MQTT chargers: {0}; check that the address is free and allowed")]
    Bind(#[source] io::Error),
    #[error("embedded MQTT broker: {0}")]
    Broker(String),
}

/// The connections of one pile the bridge still expects frames from, oldest first.
#[derive(Debug)]
struct Entry {
    conn: ConnId,
    /// PUBLISH packets the front end forwarded to rumqttd on this connection.
    forwarded: u64,
    /// Messages the bridge took from the broker for it.
    delivered: u64,
    closed: bool,
}

impl Entry {
    fn drained(&self) -> bool {
        self.closed && self.delivered >= self.forwarded
    }
}

/// Connections a pile may have in the table at once (a live one and some closing).
const MAX_ENTRIES_PER_PILE: usize = 4;

/// Which connection speaks for each MQTT pile, and which closed ones still have frames on
/// their way through the broker.
///
/// rumqttd acknowledges a publish when it is in its log, before the site's link has read it,
/// so a charger can publish and disconnect before its last frames reach the bridge. A closed
/// connection therefore stays here until the bridge has delivered as many messages as the
/// front end forwarded on it (or the front end gives up waiting, see `DRAIN_WAIT` in
/// [`front`]); only then does the site get `Disconnected`, after the connection's last frame.
/// The broker keeps one pile's messages in order, so they are credited to the oldest entry.
#[derive(Debug, Default)]
pub struct Sessions {
    map: Mutex<HashMap<PileCode, VecDeque<Entry>>>,
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PileCode, VecDeque<Entry>>> {
        self.map.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// `conn` is now `pile`'s connection. Returns connections pushed out of the table (too
    /// many closing at once): the caller owes the site their `Disconnected`.
    pub fn open(&self, pile: PileCode, conn: ConnId) -> Vec<ConnId> {
        let mut m = self.lock();
        let q = m.entry(pile).or_default();
        q.push_back(Entry {
            conn,
            forwarded: 0,
            delivered: 0,
            closed: false,
        });
        let mut evicted = Vec::new();
        while q.len() > MAX_ENTRIES_PER_PILE {
            if let Some(e) = q.pop_front() {
                evicted.push(e.conn);
            }
        }
        evicted
    }

    /// The front end forwarded `n` more publishes on `conn`.
    pub fn forwarded(&self, pile: &PileCode, conn: ConnId, n: u64) {
        if let Some(e) = self
            .lock()
            .get_mut(pile)
            .and_then(|q| q.iter_mut().find(|e| e.conn == conn))
        {
            e.forwarded += n;
        }
    }

    /// `conn` closed. True when nothing of it is still on its way (it is forgotten and the
    /// caller sends `Disconnected`); false when the bridge will, after its last frame.
    pub fn close(&self, pile: &PileCode, conn: ConnId) -> bool {
        let mut m = self.lock();
        let Some(q) = m.get_mut(pile) else {
            return false;
        };
        let Some(i) = q.iter().position(|e| e.conn == conn) else {
            return false;
        };
        q[i].closed = true;
        let done = q[i].drained();
        if done {
            q.remove(i);
        }
        if q.is_empty() {
            m.remove(pile);
        }
        done
    }

    /// Forgets `conn` whatever is still on its way; true when it was still known (the
    /// caller sends `Disconnected`).
    pub fn forget(&self, pile: &PileCode, conn: ConnId) -> bool {
        let mut m = self.lock();
        let Some(q) = m.get_mut(pile) else {
            return false;
        };
        let before = q.len();
        q.retain(|e| e.conn != conn);
        let found = q.len() != before;
        if q.is_empty() {
            m.remove(pile);
        }
        found
    }

    /// Credits one message from `pile` to its oldest expecting connection: that connection,
    /// and whether it has now delivered everything after closing (forgotten; the caller
    /// sends `Disconnected` after the frame).
    pub fn deliver(&self, pile: &PileCode) -> Option<(ConnId, bool)> {
        let mut m = self.lock();
        let q = m.get_mut(pile)?;
        let e = q.front_mut()?;
        e.delivered += 1;
        let conn = e.conn;
        let drained = e.drained();
        if drained {
            q.pop_front();
            if q.is_empty() {
                m.remove(pile);
            }
        }
        Some((conn, drained))
    }

    /// The pile's live (not closed) connection.
    pub fn current(&self, pile: &PileCode) -> Option<ConnId> {
        self.lock()
            .get(pile)
            .and_then(|q| q.iter().rev().find(|e| !e.closed))
            .map(|e| e.conn)
    }

    /// Messages of `conn` still on their way, `None` once it is forgotten.
    pub fn in_flight(&self, pile: &PileCode, conn: ConnId) -> Option<u64> {
        self.lock()
            .get(pile)
            .and_then(|q| q.iter().find(|e| e.conn == conn))
            .map(|e| e.forwarded.saturating_sub(e.delivered))
    }

    /// Is `conn` still in the table?
    pub fn knows(&self, pile: &PileCode, conn: ConnId) -> bool {
        self.in_flight(pile, conn).is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_closed_connection_is_forgotten_only_after_its_last_message() {
        let s = Sessions::default();
        let p: PileCode = "32010600019236".parse().unwrap();
        assert!(s.open(p, 1).is_empty());
        s.forwarded(&p, 1, 2);
        assert_eq!(s.deliver(&p), Some((1, false)));
        assert!(!s.close(&p, 1), "one message still on its way");
        assert_eq!(s.current(&p), None);
        assert!(s.open(p, 2).is_empty());
        s.forwarded(&p, 2, 1);
        assert_eq!(s.current(&p), Some(2));
        assert_eq!(
            s.deliver(&p),
            Some((1, true)),
            "the old connection's last frame"
        );
        assert_eq!(s.deliver(&p), Some((2, false)));
        assert!(s.close(&p, 2));
        assert!(!s.knows(&p, 2));
        assert_eq!(s.deliver(&p), None);
    }

    #[test]
    fn the_table_per_pile_is_bounded() {
        let s = Sessions::default();
        let p: PileCode = "32010600019236".parse().unwrap();
        let mut evicted = Vec::new();
        for c in 1..=6 {
            s.forwarded(&p, c, 0);
            evicted.extend(s.open(p, c));
            s.forwarded(&p, c, 5);
            s.close(&p, c);
        }
        assert_eq!(evicted, vec![1, 2]);
        assert!(s.forget(&p, 3));
        assert!(!s.forget(&p, 3));
    }
}

/// A running MQTT port.
#[derive(Debug)]
pub struct MqttPort {
    local_addr: SocketAddr,
    internal_addr: SocketAddr,
    front: tokio::task::JoinHandle<()>,
    inbound: tokio::task::JoinHandle<()>,
}

impl MqttPort {
    /// Starts the broker, the bridge and the front end; returns once chargers can connect.
    /// Everything stops on `shutdown` (rumqttd's own threads excepted, see [`broker`]).
    pub async fn start(
        cfg: MqttPortConfig,
        directory: ChargerDirectory,
        events: EventSink,
        metrics: Arc<EdgeMetrics>,
        shutdown: CancellationToken,
    ) -> Result<MqttPort, PortError> {
        let listener = front::listen(cfg.listen).map_err(PortError::Bind)?;
        let local_addr = listener.local_addr().map_err(PortError::Bind)?;
        let embedded = broker::start(&cfg).await?;
        let (mut link_tx, link_rx) = embedded.link;
        bridge::subscribe(&mut link_tx)
            .map_err(|e| PortError::Broker(format!("site subscription: {e}")))?;
        let sessions = Arc::new(Sessions::default());
        let (out_tx, out_rx) = mpsc::channel::<Outbound>(cfg.outbound_queue.max(1));
        {
            let sessions = sessions.clone();
            let metrics = metrics.clone();
            let shutdown = shutdown.clone();
            std::thread::Builder::new()
                .name("voltline-mqtt-out".into())
                .spawn(move || bridge::outbound(link_tx, out_rx, sessions, metrics, shutdown))
                .map_err(|e| PortError::Broker(format!("outbound thread: {e}")))?;
        }
        let inbound = tokio::spawn(bridge::inbound(
            link_rx,
            sessions.clone(),
            events.clone(),
            metrics.clone(),
            shutdown.clone(),
        ));
        let front = front::Front {
            config: cfg,
            directory,
            events,
            metrics,
            sessions,
            broker_addr: embedded.addr,
            login: embedded.login,
            outbound: out_tx,
        };
        let front = tokio::spawn(front::run(listener, Arc::new(front), shutdown));
        tracing::info!(%local_addr, "MQTT charger port listening");
        Ok(MqttPort {
            local_addr,
            internal_addr: embedded.addr,
            front,
            inbound,
        })
    }

    /// The charger-facing address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// rumqttd's loopback listener (no charger credential works there; for diagnostics and
    /// the test that proves it).
    pub fn internal_addr(&self) -> SocketAddr {
        self.internal_addr
    }

    /// Waits until the port has stopped after shutdown.
    pub async fn stopped(self) {
        let _ = self.front.await;
        let _ = self.inbound.await;
    }
}
