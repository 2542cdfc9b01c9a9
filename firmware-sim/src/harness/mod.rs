//! A small platform to test piles against, built on the protocol crate only: a TCP listener
//! on 127.0.0.1 (port chosen by the OS) that logs piles in, answers heartbeats and billing
//! model requests, and lets the test send commands and read every frame (over MQTT too, see
//! [`MqttPlatform`]). The load benchmark's sink is [`serve_sink`].
//!
//! It is deliberately not an edge: it makes no decisions beyond what a test configures.
//!
//! Files: this one (TCP platform, automatic answers), [`mqtt`] (the same over a broker),
//! [`sink`] (serve every pile forever, counting: the load benchmark's counterpart).

pub mod mqtt;
pub mod sink;

pub use mqtt::MqttPlatform;
pub use sink::{serve_sink, SinkStats};

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use voltline_protocol::domain::{ConnectorNo, Money, PileCode, SerialTime, TransactionSerial};
use voltline_protocol::frame::Frame;
use voltline_protocol::message::record::{RecordAckResult, TransactionRecordAck};
use voltline_protocol::message::register::{
    BillingModel, BillingModelReply, BillingModelVerifyReply, HeartbeatReply, LoginReply,
    LoginResult, VerifyResult,
};
use voltline_protocol::message::transaction::{
    AuthFailure, Outcome, PhysicalCardNo, PileStartReply, RemoteStart, RemoteStop,
};
use voltline_protocol::message::v2g::{DischargeRecordAck, Outcome as V2gOutcome};
use voltline_protocol::message::Message;
use voltline_protocol::wire::bcd::Bcd;
use voltline_protocol::{FrameCodec, FrameError};

/// What the harness answers by itself.
#[derive(Debug, Clone)]
pub struct HarnessConfig {
    /// The model sent on 0x09; 0x05 is answered "consistent" only for its number.
    pub billing_model: BillingModel,
    pub accept_logins: bool,
    pub answer_heartbeats: bool,
    /// Answer 0x3B with 0x40 and 0xC9 with 0xCA at once.
    pub ack_records: bool,
    /// Answer 0x31 with an authorised 0x32.
    pub authorise_starts: bool,
}

impl Default for HarnessConfig {
    fn default() -> Self {
        HarnessConfig {
            billing_model: crate::pricing::time_of_use_model(100),
            accept_logins: true,
            answer_heartbeats: true,
            ack_records: false,
            authorise_starts: true,
        }
    }
}

/// Why the harness could not do what a test asked.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    #[error("the pile closed the connection")]
    Closed,
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(Duration, String),
    #[error(transparent)]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    Encode(#[from] voltline_protocol::EncodeError),
    #[error("MQTT: {0}")]
    Mqtt(String),
}

/// A listening platform.
pub struct Platform {
    listener: TcpListener,
    config: HarnessConfig,
}

impl Platform {
    /// Binds 127.0.0.1 on a port the OS chooses.
    pub async fn bind(config: HarnessConfig) -> std::io::Result<Platform> {
        Ok(Platform {
            listener: TcpListener::bind("127.0.0.1:0").await?,
            config,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    /// The next pile to connect.
    pub async fn accept(&self) -> std::io::Result<PileConn> {
        let (stream, _) = self.listener.accept().await?;
        Ok(PileConn::new(stream, self.config.clone()))
    }

    /// `accept` bounded by `timeout`.
    pub async fn accept_within(&self, timeout: Duration) -> Result<PileConn, HarnessError> {
        tokio::time::timeout(timeout, self.accept())
            .await
            .map_err(|_| HarnessError::Timeout(timeout, "a pile to connect".into()))?
            .map_err(HarnessError::from)
    }
}

/// One connected pile, seen from the platform. A background task reads the connection,
/// answers what [`HarnessConfig`] says at once (so a pile is never left without heartbeat
/// replies while the test is busy elsewhere) and queues every frame for the test.
pub struct PileConn {
    frames: mpsc::Receiver<Result<Frame, FrameError>>,
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    pile: Arc<std::sync::Mutex<Option<PileCode>>>,
    reader: tokio::task::JoinHandle<()>,
    seq: u16,
    /// Decode errors seen (garbage runs, bad checksums, ...).
    pub errors: Vec<FrameError>,
    /// Every frame received, in order of arrival.
    pub received: Vec<Frame>,
}

/// Most frames kept in `received`.
const MAX_LOG: usize = 100_000;
/// Frames queued between the reader task and the test.
const FRAME_QUEUE: usize = 65_536;

/// The reader side: owns the read half and answers automatically.
struct Responder {
    read: FramedRead<OwnedReadHalf, FrameCodec>,
    writer: Arc<tokio::sync::Mutex<OwnedWriteHalf>>,
    pile: Arc<std::sync::Mutex<Option<PileCode>>>,
    config: HarnessConfig,
    serials: u16,
}

impl Responder {
    async fn write(&self, frame: &Frame) -> Result<(), HarnessError> {
        let mut buf = BytesMut::with_capacity(256);
        frame.encode(&mut buf)?;
        self.writer.lock().await.write_all(&buf).await?;
        Ok(())
    }

    async fn answer(&mut self, f: &Frame) -> Result<(), HarnessError> {
        if let Message::Login(l) = &f.message {
            if let Ok(mut p) = self.pile.lock() {
                *p = Some(l.pile_code);
            }
        }
        if let Message::PileStartRequest(_) = &f.message {
            self.serials = self.serials.wrapping_add(1) % 10_000;
        }
        if let Some(m) = auto_reply(&self.config, f, self.serials) {
            self.write(&Frame::new(f.sequence, m)).await?;
        }
        Ok(())
    }
}

/// The automatic answer to `f`, if the config asks for one.
fn auto_reply(config: &HarnessConfig, f: &Frame, serial_counter: u16) -> Option<Message> {
    match &f.message {
        Message::Login(l) => config.accept_logins.then(|| {
            LoginReply {
                pile_code: l.pile_code,
                result: LoginResult::Accepted,
            }
            .into()
        }),
        Message::Heartbeat(h) if config.answer_heartbeats => Some(
            HeartbeatReply {
                pile_code: h.pile_code,
                connector: h.connector,
                reply: 0,
            }
            .into(),
        ),
        Message::BillingModelVerify(v) => Some(
            BillingModelVerifyReply {
                pile_code: v.pile_code,
                model_no: v.model_no,
                result: if v.model_no == config.billing_model.model_no {
                    VerifyResult::Consistent
                } else {
                    VerifyResult::Inconsistent
                },
            }
            .into(),
        ),
        Message::BillingModelRequest(r) => Some(
            BillingModelReply {
                pile_code: r.pile_code,
                model: config.billing_model.clone(),
            }
            .into(),
        ),
        Message::PileStartRequest(r) if config.authorise_starts => Some(
            PileStartReply {
                serial: new_serial(r.pile_code, r.connector.get(), serial_counter),
                pile_code: r.pile_code,
                connector: r.connector,
                logical_card: Bcd::ZERO,
                balance: Money::from_cents(100_000),
                authorised: Outcome::Succeeded,
                failure: AuthFailure::None,
            }
            .into(),
        ),
        Message::TransactionRecord(r) if config.ack_records => Some(
            TransactionRecordAck {
                serial: r.serial,
                result: RecordAckResult::Accepted,
            }
            .into(),
        ),
        Message::DischargeRecord(r) if config.ack_records => Some(
            DischargeRecordAck {
                serial: r.serial,
                result: V2gOutcome::Succeeded,
            }
            .into(),
        ),
        _ => None,
    }
}

impl PileConn {
    fn new(stream: TcpStream, config: HarnessConfig) -> PileConn {
        let _ = stream.set_nodelay(true);
        let (r, w) = stream.into_split();
        let writer = Arc::new(tokio::sync::Mutex::new(w));
        let pile = Arc::new(std::sync::Mutex::new(None));
        let (tx, rx) = mpsc::channel(FRAME_QUEUE);
        let mut responder = Responder {
            read: FramedRead::with_capacity(r, FrameCodec::new(), 256),
            writer: writer.clone(),
            pile: pile.clone(),
            config,
            serials: 0,
        };
        let reader = tokio::spawn(async move {
            while let Some(item) = responder.read.next().await {
                let Ok(item) = item else { return };
                if let Ok(f) = &item {
                    if responder.answer(f).await.is_err() {
                        return;
                    }
                }
                if tx.try_send(item).is_err() && tx.is_closed() {
                    return;
                }
            }
        });
        PileConn {
            frames: rx,
            writer,
            pile,
            reader,
            seq: 0,
            errors: Vec::new(),
            received: Vec::new(),
        }
    }

    /// The pile code from its login, once it logged in.
    pub fn pile(&self) -> Option<PileCode> {
        self.pile.lock().ok().and_then(|p| *p)
    }

    /// The next valid frame (already auto-answered); decode errors are recorded in
    /// `errors` and skipped.
    pub async fn next(&mut self) -> Result<Frame, HarnessError> {
        loop {
            match self.frames.recv().await {
                Some(Ok(frame)) => {
                    if self.received.len() < MAX_LOG {
                        self.received.push(frame.clone());
                    }
                    return Ok(frame);
                }
                Some(Err(e)) => self.errors.push(e),
                None => return Err(HarnessError::Closed),
            }
        }
    }

    /// Reads frames until `pick` returns `Some`, for at most `timeout`.
    pub async fn expect<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut pick: impl FnMut(&Frame) -> Option<T>,
    ) -> Result<T, HarnessError> {
        let search = async {
            loop {
                let f = self.next().await?;
                if let Some(t) = pick(&f) {
                    return Ok(t);
                }
            }
        };
        tokio::time::timeout(timeout, search)
            .await
            .map_err(|_| HarnessError::Timeout(timeout, what.to_string()))?
    }

    /// Sends a platform frame with the next sequence number; returns the number.
    pub async fn send(&mut self, msg: impl Into<Message>) -> Result<u16, HarnessError> {
        let seq = self.seq;
        self.seq = self.seq.wrapping_add(1);
        self.send_frame(&Frame::new(seq, msg)).await?;
        Ok(seq)
    }

    /// Sends a frame as given.
    pub async fn send_frame(&mut self, frame: &Frame) -> Result<(), HarnessError> {
        let mut buf = BytesMut::with_capacity(256);
        frame.encode(&mut buf)?;
        self.send_raw(&buf).await
    }

    /// Sends raw bytes (to test the pile's decoder).
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<(), HarnessError> {
        self.writer.lock().await.write_all(bytes).await?;
        Ok(())
    }

    /// Reads until the pile logs in; returns its code.
    pub async fn wait_logged_in(&mut self, timeout: Duration) -> Result<PileCode, HarnessError> {
        self.expect(timeout, "a login (0x01)", |f| match &f.message {
            Message::Login(l) => Some(l.pile_code),
            _ => None,
        })
        .await
    }

    /// Sends a remote start (0x34) for `connector` with `serial`.
    pub async fn remote_start(
        &mut self,
        connector: u8,
        serial: TransactionSerial,
    ) -> Result<u16, HarnessError> {
        let pile = self.pile().unwrap_or(serial.pile_code());
        self.send(RemoteStart {
            serial,
            pile_code: pile,
            connector: ConnectorNo::new(connector).unwrap_or(serial.connector()),
            logical_card: Bcd::ZERO,
            physical_card: PhysicalCardNo([0, 0, 0, 0, 0xD1, 0x4B, 0x0A, 0x54]),
            balance: Money::from_cents(100_000),
        })
        .await
    }

    /// Sends a remote stop (0x36).
    pub async fn remote_stop(&mut self, connector: u8) -> Result<u16, HarnessError> {
        let pile = self.pile().ok_or(HarnessError::Closed)?;
        self.send(RemoteStop {
            pile_code: pile,
            connector: ConnectorNo::new(connector).unwrap_or_else(serial_connector),
        })
        .await
    }

    /// Confirms a transaction record (0x40).
    pub async fn ack_record(&mut self, serial: TransactionSerial) -> Result<(), HarnessError> {
        self.send(TransactionRecordAck {
            serial,
            result: RecordAckResult::Accepted,
        })
        .await
        .map(|_| ())
    }
}

impl Drop for PileConn {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

/// Connector 1 (checked at compile time).
const CONNECTOR_1: ConnectorNo = match ConnectorNo::new(1) {
    Some(c) => c,
    None => panic!("1 is a connector number"),
};

fn serial_connector() -> ConnectorNo {
    CONNECTOR_1
}

/// A transaction serial for `pile`/`connector`, dated 2026-01-01, with `counter`.
pub fn new_serial(pile: PileCode, connector: u8, counter: u16) -> TransactionSerial {
    let at = SerialTime {
        year: 26,
        month: 1,
        day: 1,
        hour: 0,
        minute: 0,
        second: 0,
    };
    let c = ConnectorNo::new(connector).unwrap_or_else(serial_connector);
    TransactionSerial::compose(pile, c, at, counter % 10_000).unwrap_or(TransactionSerial::NONE)
}
