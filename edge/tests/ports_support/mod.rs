//! Shared by the port tests: pile codes, hand-made frames, and a tiny "site" that answers
//! logins (0x02 accepted) and heartbeats (0x04) the way the real site does, keeps each pile's
//! `PileSender`, and passes every event on to the test.

#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use voltline_edge::ops::metrics::EdgeMetrics;
use voltline_edge::ports::directory::hash_credential;
use voltline_edge::ports::{ChargerDirectory, ChargerEntry, PileSender, PortEvent};
use voltline_protocol::domain::{ConnectorNo, PileCode};
use voltline_protocol::frame::Frame;
use voltline_protocol::message::register::{
    Carrier, GunHealth, Heartbeat, HeartbeatReply, Login, LoginReply, LoginResult, NetworkKind,
    PileKind,
};
use voltline_protocol::message::Message;
use voltline_protocol::wire::bcd::Bcd;
use voltline_protocol::wire::text::FixedText;

/// Generous bound for one expected event in a test.
pub const WAIT: Duration = Duration::from_secs(10);

/// The `n`-th test pile.
pub fn pile(n: u64) -> PileCode {
    PileCode::from_number(32_010_600_000_000 + n).unwrap()
}

/// The MQTT password of test pile `p`.
pub fn password(p: &PileCode) -> String {
    format!("pw-{p}")
}

/// A directory with piles `1..=n` registered (MQTT password [`password`]).
pub fn directory(n: u64) -> ChargerDirectory {
    ChargerDirectory::new((1..=n).map(|i| {
        let p = pile(i);
        ChargerEntry {
            pile: p,
            credential_sha256: Some(hash_credential(&password(&p))),
        }
    }))
}

pub fn login(p: PileCode, seq: u16) -> Frame {
    Frame::new(
        seq,
        Login {
            pile_code: p,
            pile_kind: PileKind::Ac,
            connector_count: 1,
            protocol_version_x10: 0x10,
            program_version: FixedText::from_text("test").unwrap(),
            network: NetworkKind::Lan,
            sim: Bcd::ZERO,
            carrier: Carrier::Other,
        },
    )
}

pub fn heartbeat(p: PileCode, seq: u16) -> Frame {
    Frame::new(
        seq,
        Heartbeat {
            pile_code: p,
            connector: ConnectorNo::new(1).unwrap(),
            health: GunHealth::Normal,
        },
    )
}

pub fn bytes(f: &Frame) -> Vec<u8> {
    f.to_bytes().unwrap().to_vec()
}

/// What the test sees of the site's inbound channel.
#[derive(Debug, Clone, PartialEq)]
pub enum Seen {
    Connected(PileCode, u64),
    Frame(PileCode, u64, Frame),
    Disconnected(PileCode, u64),
}

/// The site stand-in.
pub struct Site {
    pub seen: mpsc::UnboundedReceiver<Seen>,
    pub senders: Arc<Mutex<HashMap<PileCode, PileSender>>>,
}

impl Site {
    /// Answers on `events` until the channel closes.
    pub fn spawn(mut events: mpsc::Receiver<PortEvent>) -> Site {
        let (tx, seen) = mpsc::unbounded_channel();
        let senders: Arc<Mutex<HashMap<PileCode, PileSender>>> = Arc::default();
        let map = senders.clone();
        tokio::spawn(async move {
            while let Some(ev) = events.recv().await {
                let s = match ev {
                    PortEvent::Connected { sender } => {
                        let s = Seen::Connected(sender.pile, sender.conn);
                        map.lock().unwrap().insert(sender.pile, sender);
                        s
                    }
                    PortEvent::Frame {
                        pile, conn, frame, ..
                    } => {
                        let reply: Option<Message> = match &frame.message {
                            Message::Login(_) => Some(
                                LoginReply {
                                    pile_code: pile,
                                    result: LoginResult::Accepted,
                                }
                                .into(),
                            ),
                            Message::Heartbeat(h) => Some(
                                HeartbeatReply {
                                    pile_code: pile,
                                    connector: h.connector,
                                    reply: 0,
                                }
                                .into(),
                            ),
                            _ => None,
                        };
                        if let Some(m) = reply {
                            let sender = map.lock().unwrap().get(&pile).cloned();
                            if let Some(sender) = sender.filter(|s| s.conn == conn) {
                                let _ = sender.send(Frame::new(frame.sequence, m));
                            }
                        }
                        Seen::Frame(pile, conn, frame)
                    }
                    PortEvent::Disconnected { pile, conn, .. } => Seen::Disconnected(pile, conn),
                };
                if tx.send(s).is_err() {
                    return;
                }
            }
        });
        Site { seen, senders }
    }

    /// The next event matching `pick`, within [`WAIT`].
    pub async fn expect<T>(&mut self, what: &str, mut pick: impl FnMut(&Seen) -> Option<T>) -> T {
        let search = async {
            loop {
                let s = self
                    .seen
                    .recv()
                    .await
                    .expect("the port's event channel closed");
                if let Some(t) = pick(&s) {
                    return t;
                }
            }
        };
        tokio::time::timeout(WAIT, search)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }
}

/// Fresh metrics.
pub fn metrics() -> Arc<EdgeMetrics> {
    Arc::new(EdgeMetrics::default())
}

/// Polls `cond` every 10 ms for at most [`WAIT`].
pub async fn eventually(what: &str, mut cond: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !cond() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
