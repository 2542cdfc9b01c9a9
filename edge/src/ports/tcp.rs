//! The TCP charger port: piles that speak YKC frames directly over a socket.
//!
//! Per connection: a [`FramedRead`] with [`FrameCodec`] on the read half and a writer task
//! fed by a bounded queue ([`PILE_QUEUE`]) behind the pile's [`PileSender`]. The first valid
//! frame must be a login (0x01) within `login_timeout_ms`; its pile code is checked against
//! the [`ChargerDirectory`]. A refused pile gets a 0x02 "rejected" reply, is counted in
//! `auth_refused{port=tcp,reason}` and is closed. An accepted pile is announced with
//! [`PortEvent::Connected`], then the login frame itself and every later frame go to the site
//! as [`PortEvent::Frame`] (the site answers the login, not the port).
//!
//! Bounds: `max_connections` sockets (beyond it a socket is closed at once and counted), an
//! idle deadline that only a *valid* frame moves (so a connection that sends nothing but
//! garbage is closed after `idle_timeout_ms` at the latest), at most
//! `max_consecutive_errors` decode errors in a row, and one codec buffer of at most one
//! frame per connection.
//!
//! This module must never: do per-connection work in the accept loop (a reconnect storm of
//! thousands of piles is accepted as fast as the kernel hands sockets over), let a decode
//! error reach the site or end another connection, or decide what a frame means.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use futures::StreamExt;
use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Notify};
use tokio::time::Instant;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use voltline_protocol::domain::PileCode;
use voltline_protocol::frame::Frame;
use voltline_protocol::message::register::{LoginReply, LoginResult};
use voltline_protocol::message::Message;
use voltline_protocol::FrameCodec;

use super::{next_conn_id, ChargerDirectory, EventSink, Outbound, PileSender, PortEvent};
use super::{ConnId, Verdict, PILE_QUEUE};
use crate::ops::metrics::{EdgeMetrics, Port, PortLabels};

/// Initial read buffer of a connection (a frame is at most 204 bytes).
const READ_CAPACITY: usize = 256;
/// How long shutdown waits for open connections to close.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);
/// Pause after a failed `accept` (e.g. out of file descriptors), so the loop does not spin.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(20);
/// Frames written to the socket in one go by the writer.
const WRITE_BATCH: usize = 32;

/// Settings of the TCP port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TcpPortConfig {
    /// Where to listen (port 0: the OS picks one, see [`TcpPort::local_addr`]).
    pub listen: SocketAddr,
    /// How long a new connection may take to send its login frame.
    pub login_timeout_ms: u64,
    /// A connection without a valid frame for this long is closed (YKC piles send a
    /// heartbeat every 10 s, so the default tolerates five missed ones).
    pub idle_timeout_ms: u64,
    /// Most open sockets; beyond this, new sockets are closed at once and counted.
    pub max_connections: usize,
    /// Decode errors in a row (without a valid frame between them) before the connection
    /// is closed.
    pub max_consecutive_errors: u32,
}

impl Default for TcpPortConfig {
    fn default() -> Self {
        TcpPortConfig {
            listen: SocketAddr::from(([0, 0, 0, 0], 8767)),
            login_timeout_ms: 10_000,
            idle_timeout_ms: 50_000,
            max_connections: 10_000,
            max_consecutive_errors: 64,
        }
    }
}

/// A bound, not yet running, TCP port.
#[derive(Debug)]
pub struct TcpPort {
    listener: TcpListener,
    config: TcpPortConfig,
}

/// Counts open connections and lets shutdown wait for them.
#[derive(Debug, Default)]
struct Open {
    count: AtomicUsize,
    zero: Notify,
}

/// Decrements [`Open`] when a connection task ends, however it ends.
struct OpenGuard(Arc<Open>);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.zero.notify_waiters();
        }
    }
}

/// Everything a connection task needs, shared.
struct Shared {
    config: TcpPortConfig,
    directory: ChargerDirectory,
    events: EventSink,
    metrics: Arc<EdgeMetrics>,
}

impl TcpPort {
    /// Binds the listener. Call from within a tokio runtime.
    pub fn bind(config: TcpPortConfig) -> io::Result<TcpPort> {
        let socket = match config.listen {
            SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
            SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
        };
        socket.set_reuseaddr(true)?;
        socket.bind(config.listen)?;
        // A deep backlog: a site's piles all reconnect at once after a power cut.
        let listener = socket.listen(4_096)?;
        Ok(TcpPort { listener, config })
    }

    /// The address the port listens on.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts piles until `shutdown`, then closes every connection (waiting briefly).
    pub async fn run(
        self,
        directory: ChargerDirectory,
        events: EventSink,
        metrics: Arc<EdgeMetrics>,
        shutdown: CancellationToken,
    ) {
        let shared = Arc::new(Shared {
            config: self.config,
            directory,
            events,
            metrics,
        });
        let open = Arc::new(Open::default());
        let labels = PortLabels { port: Port::Tcp };
        loop {
            let accepted = tokio::select! {
                () = shutdown.cancelled() => break,
                a = self.listener.accept() => a,
            };
            let stream = match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!(error = %e, "TCP charger port: accept failed; retrying");
                    tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                    continue;
                }
            };
            shared.metrics.port_connections.get_or_create(&labels).inc();
            if open.count.load(Ordering::Acquire) >= shared.config.max_connections {
                shared.metrics.auth_refused(Port::Tcp, "max_connections");
                drop(stream);
                continue;
            }
            open.count.fetch_add(1, Ordering::AcqRel);
            let guard = OpenGuard(open.clone());
            let shared = shared.clone();
            let stop = shutdown.child_token();
            tokio::spawn(async move {
                let _guard = guard;
                serve(stream, &shared, stop).await;
            });
        }
        let wait = async {
            loop {
                let zero = open.zero.notified();
                if open.count.load(Ordering::Acquire) == 0 {
                    return;
                }
                zero.await;
            }
        };
        let _ = tokio::time::timeout(SHUTDOWN_WAIT, wait).await;
    }
}

/// One connection: login, then frames until the socket closes, goes idle or shutdown.
async fn serve(stream: TcpStream, shared: &Shared, stop: CancellationToken) {
    let _ = stream.set_nodelay(true);
    let (read, write) = stream.into_split();
    let mut frames = FramedRead::with_capacity(read, FrameCodec::new(), READ_CAPACITY);
    let login = tokio::select! {
        () = stop.cancelled() => return,
        l = read_login(&mut frames, shared) => l,
    };
    let (login, pile) = match login {
        Ok(l) => l,
        Err(reason) => {
            shared.metrics.auth_refused(Port::Tcp, reason);
            return;
        }
    };
    let verdict = shared.directory.verify_tcp(&pile);
    if verdict != Verdict::Accepted {
        shared.metrics.auth_refused(Port::Tcp, verdict.reason());
        tracing::info!(%pile, reason = verdict.reason(), "TCP login refused");
        refuse(write, &login, pile).await;
        return;
    }
    let conn = next_conn_id();
    let (tx, rx) = mpsc::channel::<Outbound>(PILE_QUEUE);
    let sender = PileSender::new(pile, conn, Port::Tcp, tx);
    let writer_stop = stop.clone();
    let metrics = shared.metrics.clone();
    let writer = tokio::spawn(write_loop(write, rx, metrics, writer_stop));
    let gauge = shared
        .metrics
        .chargers_connected
        .get_or_create(&PortLabels { port: Port::Tcp })
        .clone();
    gauge.inc();
    tracing::debug!(%pile, conn, "TCP pile connected");
    if shared
        .events
        .send(PortEvent::Connected { sender })
        .await
        .is_ok()
        && forward(shared, pile, conn, login).await
    {
        read_frames(&mut frames, shared, pile, conn, &stop).await;
    }
    stop.cancel();
    let _ = writer.await;
    gauge.dec();
    let _ = shared
        .events
        .send(PortEvent::Disconnected {
            pile,
            conn,
            port: Port::Tcp,
        })
        .await;
    tracing::debug!(%pile, conn, "TCP pile disconnected");
}

type Frames = FramedRead<tokio::net::tcp::OwnedReadHalf, FrameCodec>;

/// Waits for the login frame; the error is the refusal's metric label.
async fn read_login(
    frames: &mut Frames,
    shared: &Shared,
) -> Result<(Frame, PileCode), &'static str> {
    let deadline = Instant::now() + Duration::from_millis(shared.config.login_timeout_ms);
    let mut errors = 0u32;
    loop {
        let next = tokio::time::timeout_at(deadline, frames.next()).await;
        match next {
            Err(_) => return Err("login_timeout"),
            Ok(None) | Ok(Some(Err(_))) => return Err("closed_before_login"),
            Ok(Some(Ok(Err(e)))) => {
                shared.metrics.decode_error(Port::Tcp, e.kind().as_str());
                errors += 1;
                if errors >= shared.config.max_consecutive_errors {
                    return Err("garbage_before_login");
                }
            }
            Ok(Some(Ok(Ok(frame)))) => {
                return match &frame.message {
                    Message::Login(l) => {
                        let pile = l.pile_code;
                        Ok((frame, pile))
                    }
                    _ => Err("first_frame_not_login"),
                };
            }
        }
    }
}

/// Sends a 0x02 "rejected" and closes.
async fn refuse(mut write: OwnedWriteHalf, login: &Frame, pile: PileCode) {
    let reply = Frame::new(
        login.sequence,
        LoginReply {
            pile_code: pile,
            result: LoginResult::Rejected,
        },
    );
    if let Ok(bytes) = reply.to_bytes() {
        let _ = tokio::time::timeout(Duration::from_secs(2), async {
            let _ = write.write_all(&bytes).await;
            let _ = write.shutdown().await;
        })
        .await;
    }
}

/// Hands one frame to the site; false when the site is gone.
async fn forward(shared: &Shared, pile: PileCode, conn: ConnId, frame: Frame) -> bool {
    shared.metrics.frame_in(Port::Tcp, frame.frame_type());
    let event = PortEvent::Frame {
        pile,
        conn,
        port: Port::Tcp,
        frame,
    };
    if shared.events.send(event).await.is_err() {
        shared
            .metrics
            .frames_in_dropped
            .get_or_create(&crate::ops::metrics::ReasonLabels {
                port: Port::Tcp,
                reason: "site_closed",
            })
            .inc();
        return false;
    }
    true
}

/// Reads frames after the login until the connection ends.
async fn read_frames(
    frames: &mut Frames,
    shared: &Shared,
    pile: PileCode,
    conn: ConnId,
    stop: &CancellationToken,
) {
    let idle = Duration::from_millis(shared.config.idle_timeout_ms);
    let mut deadline = Instant::now() + idle;
    let mut errors = 0u32;
    loop {
        let next = tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep_until(deadline) => {
                tracing::info!(%pile, conn, "TCP pile idle (no valid frame); closing");
                return;
            }
            n = frames.next() => n,
        };
        match next {
            None | Some(Err(_)) => return,
            Some(Ok(Err(e))) => {
                shared.metrics.decode_error(Port::Tcp, e.kind().as_str());
                errors += 1;
                if errors >= shared.config.max_consecutive_errors {
                    tracing::info!(%pile, conn, errors, "TCP pile sends only garbage; closing");
                    return;
                }
            }
            Some(Ok(Ok(frame))) => {
                errors = 0;
                deadline = Instant::now() + idle;
                if !forward(shared, pile, conn, frame).await {
                    return;
                }
            }
        }
    }
}

/// Writes the site's frames to the pile, a batch at a time, until `stop`.
async fn write_loop(
    mut write: OwnedWriteHalf,
    mut rx: mpsc::Receiver<Outbound>,
    metrics: Arc<EdgeMetrics>,
    stop: CancellationToken,
) {
    let labels = PortLabels { port: Port::Tcp };
    let mut buf = BytesMut::with_capacity(READ_CAPACITY);
    loop {
        let first = tokio::select! {
            () = stop.cancelled() => break,
            o = rx.recv() => match o { Some(o) => o, None => break },
        };
        buf.clear();
        let mut n = 0u64;
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(out) = next.take() {
            taken += 1;
            match out.frame.encode(&mut buf) {
                Ok(()) => n += 1,
                Err(e) => {
                    tracing::warn!(error = %e, "frame for a TCP pile cannot be encoded; dropped");
                    metrics.frames_out_dropped.get_or_create(&labels).inc();
                }
            }
            if taken < WRITE_BATCH {
                next = rx.try_recv().ok();
            }
        }
        let written = tokio::select! {
            () = stop.cancelled() => break,
            w = write.write_all(&buf) => w,
        };
        if written.is_err() {
            metrics.frames_out_dropped.get_or_create(&labels).inc_by(n);
            stop.cancel();
            break;
        }
        metrics.frames_out.get_or_create(&labels).inc_by(n);
    }
    // Frames still queued were never sent.
    rx.close();
    let mut left = 0u64;
    while rx.try_recv().is_ok() {
        left += 1;
    }
    if left > 0 {
        metrics
            .frames_out_dropped
            .get_or_create(&labels)
            .inc_by(left);
    }
    let _ = tokio::time::timeout(Duration::from_millis(200), write.shutdown()).await;
}
