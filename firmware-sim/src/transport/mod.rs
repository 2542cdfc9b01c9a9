//! Links to the platform: TCP to an edge's charger port, or MQTT to an edge's embedded
//! broker, chosen per charger; and the jittered backoff between connection attempts.
//!
//! A link moves whole frames and nothing else: it never decides a protocol question (that is
//! the charger state machine's job, driven by [`crate::task`]).

pub mod backoff;
pub mod mqtt;
pub mod tcp;

use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::PileCode;
use voltline_protocol::frame::Frame;
use voltline_protocol::FrameError;

/// How long a connection attempt may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Where a charger connects.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Transport {
    /// TCP to an edge's charger port, `host:port`.
    Tcp { addr: String },
    /// MQTT to a broker, `host:port`; username = pile code, this password.
    Mqtt { broker: String, password: String },
}

/// Something that came in on a link.
#[derive(Debug)]
pub enum Incoming {
    Frame(Frame),
    /// Bytes or a message that is not a valid frame (counted, never fatal).
    Bad(FrameError),
    /// The peer closed the link or it failed.
    Closed(String),
}

/// An open link.
pub enum Link {
    Tcp(tcp::TcpLink),
    Mqtt(Box<mqtt::MqttLink>),
}

impl Link {
    /// Connects, with [`CONNECT_TIMEOUT`].
    pub async fn connect(transport: &Transport, pile: &PileCode) -> Result<Link, String> {
        let attempt = async {
            match transport {
                Transport::Tcp { addr } => tcp::TcpLink::connect(addr).await.map(Link::Tcp),
                Transport::Mqtt { broker, password } => {
                    mqtt::MqttLink::connect(broker, pile, password)
                        .await
                        .map(|l| Link::Mqtt(Box::new(l)))
                }
            }
        };
        match tokio::time::timeout(CONNECT_TIMEOUT, attempt).await {
            Ok(r) => r,
            Err(_) => Err(format!("no connection within {CONNECT_TIMEOUT:?}")),
        }
    }

    /// The next thing that comes in (cancel-safe).
    pub async fn recv(&mut self) -> Incoming {
        match self {
            Link::Tcp(l) => l.recv().await,
            // Boxed: rumqttc's poll future is large; TCP links (the load case) stay unboxed.
            Link::Mqtt(l) => Box::pin(l.recv()).await,
        }
    }

    /// Writes bytes: one frame, or garbage (over MQTT each call is one message).
    pub async fn write(&mut self, bytes: Bytes) -> Result<(), String> {
        match self {
            Link::Tcp(l) => l.write(&bytes).await,
            Link::Mqtt(l) => l.write(bytes),
        }
    }

    /// Closes the link.
    pub async fn close(self) {
        match self {
            Link::Tcp(l) => l.close().await,
            Link::Mqtt(l) => l.close().await,
        }
    }
}
