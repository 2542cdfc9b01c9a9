//! The charger-facing MQTT listener: authentication, the topic ACL, and a packet-aware proxy
//! to rumqttd's loopback listener.
//!
//! Per socket: read the CONNECT (within `connect_timeout_ms`), check client id, username and
//! password ([`ChargerDirectory::verify_mqtt`]); refuse with a CONNACK code and count
//! `auth_refused{port=mqtt,reason}`, or rewrite the CONNECT (client id = pile code, internal
//! login, a last will only on the pile's own up topic) and send it to rumqttd. When rumqttd
//! accepts, the site gets [`PortEvent::Connected`] *before* the charger gets its CONNACK, so
//! no frame can overtake it. Then two pumps run until either side closes:
//! - charger → broker: every packet is framed; a PUBLISH outside the charger's up topic is
//!   dropped and counted in `acl_denied` (QoS 1: the front end answers the PUBACK itself so the
//!   charger's window moves on), a SUBSCRIBE with any filter other than the charger's down
//!   topic is answered with SUBACK 0x80 per filter and never forwarded; the rest is forwarded
//!   byte for byte, in batches;
//! - broker → charger: forwarded packet by packet (so the front end's own replies go in
//!   between whole packets).
//!
//! Must never: forward a packet it has not framed, buffer more than one packet of
//! `max_packet_bytes` plus one read per direction, or do per-connection work in the accept
//! loop.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use rumqttc::mqttbytes::v4::{Login, Packet};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_protocol::PileCode;

use super::broker::InternalLogin;
use super::packet::{self, connack, kind, Acl, Header, PacketError};
use super::{MqttPortConfig, Sessions};
use crate::ops::metrics::{EdgeMetrics, Port, PortLabels, ReasonLabels};
use crate::ports::{next_conn_id, ChargerDirectory, EventSink, Outbound, PileSender, PortEvent};
use crate::ports::{ConnId, Verdict};

/// Replies of the front end's own waiting to go to one charger.
const INJECT_QUEUE: usize = 32;
/// Bytes read from a socket at a time.
const READ_CHUNK: usize = 4 * 1024;
/// Largest packet accepted from rumqttd (trusted, but still bounded).
const MAX_BROKER_PACKET: usize = 256 * 1024;
/// Pause after a failed `accept` (e.g. out of file descriptors).
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(20);
/// Longest a closed connection waits, without progress, for its last frames to pass the
/// broker.
const DRAIN_WAIT: Duration = Duration::from_secs(2);
/// Longest the broker side may take to finish after the charger side closed.
const BROKER_CLOSE_WAIT: Duration = Duration::from_secs(1);
/// Keep-alive written for a charger that asked for none (rumqttd refuses 0).
const NO_KEEP_ALIVE: u16 = u16::MAX;

/// What every connection shares.
pub struct Front {
    pub config: MqttPortConfig,
    pub directory: ChargerDirectory,
    pub events: EventSink,
    pub metrics: Arc<EdgeMetrics>,
    pub sessions: Arc<Sessions>,
    pub broker_addr: SocketAddr,
    pub login: InternalLogin,
    pub outbound: mpsc::Sender<Outbound>,
}

/// Binds the charger-facing listener with a deep backlog (reconnect storms).
pub fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(4_096)
}

/// Accepts chargers until `shutdown`.
pub async fn run(listener: TcpListener, front: Arc<Front>, shutdown: CancellationToken) {
    let open = Arc::new(AtomicUsize::new(0));
    let labels = PortLabels { port: Port::Mqtt };
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            a = listener.accept() => a,
        };
        let stream = match accepted {
            Ok((s, _)) => s,
            Err(e) => {
                tracing::warn!(error = %e, "MQTT charger port: accept failed; retrying");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        front.metrics.port_connections.get_or_create(&labels).inc();
        if open.load(Ordering::Acquire) >= front.config.max_connections {
            front.metrics.auth_refused(Port::Mqtt, "max_connections");
            continue;
        }
        open.fetch_add(1, Ordering::AcqRel);
        let (front, open, stop) = (front.clone(), open.clone(), shutdown.child_token());
        tokio::spawn(async move {
            serve(stream, &front, stop).await;
            open.fetch_sub(1, Ordering::AcqRel);
        });
    }
}

/// Reads until `buf` starts with a whole packet; returns its header.
async fn read_packet(
    r: &mut OwnedReadHalf,
    buf: &mut BytesMut,
    max: usize,
) -> Result<Header, &'static str> {
    loop {
        match packet::frame(buf, max) {
            Ok(Some(h)) => return Ok(h),
            Ok(None) => {}
            Err(e) => return Err(e.label()),
        }
        buf.reserve(READ_CHUNK);
        match r.read_buf(buf).await {
            Ok(0) | Err(_) => return Err("closed"),
            Ok(_) => {}
        }
    }
}

/// Counts a refusal, tells the charger why (when it got that far) and closes.
async fn refuse(front: &Front, mut w: OwnedWriteHalf, reason: &'static str, code: Option<u8>) {
    front.metrics.auth_refused(Port::Mqtt, reason);
    if let Some(code) = code {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = w.write_all(&packet::connack_packet(code)).await;
            let _ = w.shutdown().await;
        })
        .await;
    }
}

/// The authenticated part of a CONNECT.
struct Accepted {
    pile: PileCode,
    connect: BytesMut,
}

/// Checks the CONNECT and builds the one to forward; `Err((reason, connack code))`.
fn authenticate(front: &Front, raw: &[u8]) -> Result<Accepted, (&'static str, Option<u8>)> {
    let mut c = packet::read_connect(raw, front.config.max_packet_bytes)
        .map_err(|_| ("mqtt_bad_connect", Some(connack::UNACCEPTABLE_PROTOCOL)))?;
    let Some(login) = c.login.take() else {
        return Err(("no_credentials", Some(connack::NOT_AUTHORIZED)));
    };
    match front
        .directory
        .verify_mqtt(&login.username, &login.password)
    {
        Verdict::Accepted => {}
        v @ Verdict::UnknownPile => return Err((v.reason(), Some(connack::NOT_AUTHORIZED))),
        v @ Verdict::BadCredential => {
            return Err((v.reason(), Some(connack::BAD_USERNAME_OR_PASSWORD)))
        }
    }
    if !packet::client_id_allowed(&c.client_id, &login.username) {
        return Err(("client_id_mismatch", Some(connack::IDENTIFIER_REJECTED)));
    }
    let pile: PileCode = login
        .username
        .parse()
        .map_err(|_| ("unknown_pile", Some(connack::NOT_AUTHORIZED)))?;
    let acl = Acl::of(&pile);
    if c.last_will
        .as_ref()
        .is_some_and(|w| !acl.may_publish(w.topic.as_bytes()))
    {
        acl_denied(front, "will");
        c.last_will = None;
    }
    c.client_id = pile.to_string();
    c.login = Some(Login::new(
        front.login.username.clone(),
        front.login.password.clone(),
    ));
    if c.keep_alive == 0 {
        c.keep_alive = NO_KEEP_ALIVE;
    }
    let mut connect = BytesMut::new();
    Packet::Connect(c)
        .write(&mut connect, front.config.max_packet_bytes + 256)
        .map_err(|_| ("mqtt_bad_connect", Some(connack::UNACCEPTABLE_PROTOCOL)))?;
    Ok(Accepted { pile, connect })
}

fn acl_denied(front: &Front, reason: &'static str) {
    front
        .metrics
        .acl_denied
        .get_or_create(&ReasonLabels {
            port: Port::Mqtt,
            reason,
        })
        .inc();
}

async fn serve(stream: TcpStream, front: &Front, stop: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let (mut cr, cw) = stream.into_split();
    let mut cbuf = BytesMut::with_capacity(512);
    let max = front.config.max_packet_bytes;
    let wait = Duration::from_millis(front.config.connect_timeout_ms);
    let first = tokio::select! {
        () = stop.cancelled() => return,
        r = tokio::time::timeout(wait, read_packet(&mut cr, &mut cbuf, max)) => r,
    };
    let h = match first {
        Err(_) => return refuse(front, cw, "connect_timeout", None).await,
        Ok(Err("closed")) => return refuse(front, cw, "closed_before_connect", None).await,
        Ok(Err(label)) => {
            front.metrics.decode_error(Port::Mqtt, label);
            return refuse(front, cw, "mqtt_malformed", None).await;
        }
        Ok(Ok(h)) => h,
    };
    if h.kind() != kind::CONNECT {
        return refuse(front, cw, "first_packet_not_connect", None).await;
    }
    let raw = cbuf.split_to(h.total_len);
    let accepted = match authenticate(front, &raw) {
        Ok(a) => a,
        Err((reason, code)) => {
            tracing::info!(reason, "MQTT charger login refused");
            return refuse(front, cw, reason, code).await;
        }
    };
    let pile = accepted.pile;
    let broker = match connect_broker(front, &accepted.connect).await {
        Ok(b) => b,
        Err(e) => {
            tracing::error!(error = %e, %pile, "front end cannot reach the embedded broker");
            front.metrics.internal_errors.inc();
            return refuse(
                front,
                cw,
                "broker_unavailable",
                Some(connack::SERVER_UNAVAILABLE),
            )
            .await;
        }
    };
    let (br, bw, bbuf, connack_raw) = broker;
    let conn = next_conn_id();
    for old in front.sessions.open(pile, conn) {
        disconnected(front, pile, old).await;
    }
    let sender = PileSender::new(pile, conn, Port::Mqtt, front.outbound.clone());
    let gauge = front
        .metrics
        .chargers_connected
        .get_or_create(&PortLabels { port: Port::Mqtt })
        .clone();
    if front
        .events
        .send(PortEvent::Connected { sender })
        .await
        .is_ok()
    {
        gauge.inc();
        tracing::debug!(%pile, conn, "MQTT pile connected");
        proxy(
            front,
            pile,
            (cr, cbuf),
            cw,
            (br, bbuf),
            bw,
            connack_raw,
            conn,
            &stop,
        )
        .await;
        gauge.dec();
    }
    // The site hears `Disconnected` after the connection's last frame: from the bridge once
    // it has delivered everything forwarded, or from here if that is already done or takes
    // too long (messages lost with a broken broker connection).
    if !front.sessions.close(&pile, conn) {
        // Waits while the bridge makes progress on this connection's messages (a slow site
        // slows it down, it does not lose them), giving up after DRAIN_WAIT without any.
        let mut last = u64::MAX;
        let mut deadline = tokio::time::Instant::now() + DRAIN_WAIT;
        while let Some(left) = front.sessions.in_flight(&pile, conn) {
            if left < last {
                last = left;
                deadline = tokio::time::Instant::now() + DRAIN_WAIT;
            } else if tokio::time::Instant::now() >= deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if front.sessions.forget(&pile, conn) {
            disconnected(front, pile, conn).await;
        }
    } else {
        disconnected(front, pile, conn).await;
    }
    tracing::debug!(%pile, conn, "MQTT pile disconnected");
}

async fn disconnected(front: &Front, pile: PileCode, conn: ConnId) {
    let _ = front
        .events
        .send(PortEvent::Disconnected {
            pile,
            conn,
            port: Port::Mqtt,
        })
        .await;
}

type BrokerSide = (OwnedReadHalf, OwnedWriteHalf, BytesMut, Bytes);

/// Opens the loopback connection, sends the rewritten CONNECT and waits for an accepting
/// CONNACK; returns the halves, what is buffered after the CONNACK, and the CONNACK.
async fn connect_broker(front: &Front, connect: &[u8]) -> io::Result<BrokerSide> {
    let wait = Duration::from_millis(front.config.connect_timeout_ms);
    let attempt = async {
        let s = TcpStream::connect(front.broker_addr).await?;
        let _ = s.set_nodelay(true);
        let (mut r, mut w) = s.into_split();
        w.write_all(connect).await?;
        let mut buf = BytesMut::with_capacity(256);
        let h = read_packet(&mut r, &mut buf, MAX_BROKER_PACKET)
            .await
            .map_err(|e| io::Error::other(format!("broker closed before CONNACK ({e})")))?;
        let raw = buf.split_to(h.total_len).freeze();
        if !packet::connack_accepted(&raw, &h) {
            return Err(io::Error::other("broker refused the internal login"));
        }
        Ok((r, w, buf, raw))
    };
    tokio::time::timeout(wait, attempt)
        .await
        .map_err(|_| io::Error::other("no CONNACK from the broker in time"))?
}

/// Runs both directions until either ends or `stop`.
#[allow(clippy::too_many_arguments)]
async fn proxy(
    front: &Front,
    pile: PileCode,
    (cr, cbuf): (OwnedReadHalf, BytesMut),
    mut cw: OwnedWriteHalf,
    (br, bbuf): (OwnedReadHalf, BytesMut),
    bw: OwnedWriteHalf,
    connack_raw: Bytes,
    conn: ConnId,
    stop: &CancellationToken,
) {
    if cw.write_all(&connack_raw).await.is_err() {
        return;
    }
    let (inject_tx, inject_rx) = mpsc::channel::<Bytes>(INJECT_QUEUE);
    let acl = Acl::of(&pile);
    let up = up(front, (pile, conn), &acl, cr, cbuf, bw, inject_tx);
    let down = down(br, bbuf, cw, inject_rx);
    tokio::pin!(up, down);
    tokio::select! {
        () = stop.cancelled() => {}
        r = &mut up => {
            if let Err(label) = r {
                tracing::info!(%pile, reason = label, "closing MQTT charger");
            }
            // The broker side was half-closed: let rumqttd read everything, then close.
            let _ = tokio::time::timeout(BROKER_CLOSE_WAIT, &mut down).await;
        }
        () = &mut down => {}
    }
}

/// What to do with one charger packet.
enum Judgement {
    Forward,
    Drop(Option<Bytes>),
    Close(&'static str),
}

fn judge(front: &Front, acl: &Acl, raw: &[u8], h: &Header) -> Judgement {
    match h.kind() {
        kind::PUBLISH => match packet::publish_info(raw, h) {
            Err(e) => malformed(front, e),
            Ok(p) if acl.may_publish(p.topic) => Judgement::Forward,
            Ok(p) => {
                acl_denied(front, "publish");
                match p.qos {
                    0 => Judgement::Drop(None),
                    1 => Judgement::Drop(Some(Bytes::copy_from_slice(&packet::puback_packet(
                        p.pkid,
                    )))),
                    _ => Judgement::Close("qos2_publish_denied"),
                }
            }
        },
        kind::SUBSCRIBE => match packet::read_subscribe(raw, front.config.max_packet_bytes) {
            Err(e) => malformed(front, e),
            Ok(s) if acl.may_subscribe_all(&s) => Judgement::Forward,
            Ok(s) => {
                acl_denied(front, "subscribe");
                let n = s.filters.len().max(1);
                Judgement::Drop(Some(Bytes::from(packet::suback_failure_packet(s.pkid, n))))
            }
        },
        kind::PUBACK
        | kind::PUBREC
        | kind::PUBREL
        | kind::PUBCOMP
        | kind::UNSUBSCRIBE
        | kind::PINGREQ
        | kind::DISCONNECT => Judgement::Forward,
        kind::CONNECT => Judgement::Close("second_connect"),
        _ => malformed(front, PacketError::Malformed),
    }
}

fn malformed(front: &Front, e: PacketError) -> Judgement {
    front.metrics.decode_error(Port::Mqtt, e.label());
    Judgement::Close(e.label())
}

/// Charger → broker; half-closes the broker side when it ends.
async fn up(
    front: &Front,
    (pile, conn): (PileCode, ConnId),
    acl: &Acl,
    mut cr: OwnedReadHalf,
    buf: BytesMut,
    mut bw: OwnedWriteHalf,
    inject: mpsc::Sender<Bytes>,
) -> Result<(), &'static str> {
    let r = pump_up(front, (pile, conn), acl, &mut cr, buf, &mut bw, &inject).await;
    let _ = bw.shutdown().await;
    r
}

async fn pump_up(
    front: &Front,
    (pile, conn): (PileCode, ConnId),
    acl: &Acl,
    cr: &mut OwnedReadHalf,
    mut buf: BytesMut,
    bw: &mut OwnedWriteHalf,
    inject: &mpsc::Sender<Bytes>,
) -> Result<(), &'static str> {
    let max = front.config.max_packet_bytes;
    let mut out = BytesMut::with_capacity(READ_CHUNK);
    loop {
        let mut disconnect = false;
        let mut publishes = 0u64;
        while let Some(h) = packet::frame(&buf, max).map_err(|e| {
            front.metrics.decode_error(Port::Mqtt, e.label());
            e.label()
        })? {
            let raw = buf.split_to(h.total_len);
            match judge(front, acl, &raw, &h) {
                Judgement::Forward => {
                    out.extend_from_slice(&raw);
                    publishes += u64::from(h.kind() == kind::PUBLISH);
                }
                Judgement::Drop(None) => {}
                Judgement::Drop(Some(reply)) => {
                    inject
                        .try_send(reply)
                        .map_err(|_| "charger_not_reading_replies")?;
                }
                Judgement::Close(label) => return Err(label),
            }
            if h.kind() == kind::DISCONNECT {
                disconnect = true;
                break;
            }
        }
        if !out.is_empty() {
            // Counted before the write: a publish that may have reached the broker is waited
            // for (bounded) rather than overtaken by `Disconnected`.
            front.sessions.forwarded(&pile, conn, publishes);
            bw.write_all(&out).await.map_err(|_| "broker_closed")?;
            out.clear();
        }
        if disconnect {
            return Ok(());
        }
        buf.reserve(READ_CHUNK);
        match cr.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return Ok(()),
            Ok(_) => {}
        }
    }
}

/// Broker → charger, whole packets, with the front end's replies in between.
async fn down(
    mut br: OwnedReadHalf,
    mut buf: BytesMut,
    mut cw: OwnedWriteHalf,
    mut inject: mpsc::Receiver<Bytes>,
) {
    loop {
        let mut end = 0;
        loop {
            match packet::frame(&buf[end..], MAX_BROKER_PACKET) {
                Ok(Some(h)) => end += h.total_len,
                Ok(None) => break,
                Err(_) => return,
            }
        }
        if end > 0 {
            let whole = buf.split_to(end);
            if cw.write_all(&whole).await.is_err() {
                return;
            }
        }
        buf.reserve(READ_CHUNK);
        tokio::select! {
            r = br.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            },
            reply = inject.recv() => match reply {
                Some(reply) => {
                    if cw.write_all(&reply).await.is_err() {
                        return;
                    }
                }
                None => return,
            },
        }
    }
}
