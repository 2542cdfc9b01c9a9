//! The charger ports: a TCP listener for piles that speak frames directly and an embedded
//! MQTT broker (`rumqttd` behind an ACL-enforcing front end) for piles on MQTT.
//!
//! Both ports do the same three things and nothing else: authenticate a pile
//! ([`ChargerDirectory`]), decode its frames and hand them to the site as [`PortEvent`]s over a
//! bounded channel (a slow site slows the pile's reads; memory does not grow), and carry
//! frames back to the pile through its [`PileSender`]. What a frame means is decided by the
//! site and the connector machines, never here.

pub mod directory;
pub mod mqtt;
pub mod tcp;

use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::mpsc;
use voltline_protocol::domain::PileCode;
use voltline_protocol::frame::Frame;

pub use crate::ops::metrics::Port;
pub use directory::{ChargerDirectory, ChargerEntry, Verdict};

/// Identifies one connection of a pile (a pile that reconnects gets a new one).
pub type ConnId = u64;

/// A fresh connection id, unique within the process.
pub fn next_conn_id() -> ConnId {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// Most frames queued towards one pile before further frames are dropped (and counted).
pub const PILE_QUEUE: usize = 256;

/// A frame on its way to a pile.
#[derive(Debug, Clone)]
pub struct Outbound {
    pub pile: PileCode,
    pub conn: ConnId,
    pub frame: Frame,
}

/// Why a frame could not be queued for a pile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    #[error("the pile's queue is full; the frame was dropped (the pile or its link is too slow)")]
    Full,
    #[error("the pile's connection is closed")]
    Closed,
}

/// Where the site sends frames for one connected pile. Never blocks: a pile that does not
/// read its frames loses them (counted) instead of stalling the site.
#[derive(Debug, Clone)]
pub struct PileSender {
    pub pile: PileCode,
    pub conn: ConnId,
    pub port: Port,
    tx: mpsc::Sender<Outbound>,
}

impl PileSender {
    /// A sender for `pile`'s connection `conn` through `tx` (a TCP connection's own writer, or
    /// the MQTT bridge's publisher shared by every MQTT pile).
    pub fn new(pile: PileCode, conn: ConnId, port: Port, tx: mpsc::Sender<Outbound>) -> Self {
        PileSender {
            pile,
            conn,
            port,
            tx,
        }
    }

    /// Queues `frame` for the pile.
    pub fn send(&self, frame: Frame) -> Result<(), SendError> {
        self.tx
            .try_send(Outbound {
                pile: self.pile,
                conn: self.conn,
                frame,
            })
            .map_err(|e| match e {
                mpsc::error::TrySendError::Full(_) => SendError::Full,
                mpsc::error::TrySendError::Closed(_) => SendError::Closed,
            })
    }
}

/// What a port tells the site.
#[derive(Debug)]
pub enum PortEvent {
    /// A pile authenticated (TCP: its login frame named a registered pile; MQTT: its
    /// username/password matched). Its frames follow as [`PortEvent::Frame`]; a previous
    /// connection of the same pile is superseded.
    Connected { sender: PileSender },
    /// A decoded frame from an authenticated pile's connection.
    Frame {
        pile: PileCode,
        conn: ConnId,
        port: Port,
        frame: Frame,
    },
    /// The connection ended.
    Disconnected {
        pile: PileCode,
        conn: ConnId,
        port: Port,
    },
}

/// The site's inbound channel as the ports see it.
pub type EventSink = mpsc::Sender<PortEvent>;
