//! [`LinkCutter`]: a loopback TCP proxy between a client (an edge, a charger) and a server
//! (the cloud's MQTT broker or HTTP API) that a test can cut, stall and restore.
//!
//! - [`LinkCutter::cut`]: every proxied connection is closed at once and new ones are closed
//!   as soon as they are accepted, until [`LinkCutter::restore`]. Both sides see the
//!   connection end (like a restarted router or a killed peer).
//! - [`LinkCutter::stall`]: connections stay open but no byte moves either way, and new
//!   connections are accepted but not connected upstream, until `restore` — a silent
//!   partition: the peers notice only through their own timeouts (MQTT keep-alive, HTTP
//!   timeouts). Bytes already sent wait in the kernel buffers and flow on after `restore`,
//!   as TCP retransmission would deliver them after a real partition heals.
//! - [`LinkCutter::set_upstream`]: points the proxy at another address (a restarted cloud
//!   listens on new ports) and closes the connections to the old one.
//!
//! It must never listen on anything but 127.0.0.1, never proxy to a non-loopback address,
//! and never hold more than [`MAX_CONNECTIONS`] connections or more than one
//! [`BUFFER_BYTES`] buffer per direction of each. It stops when dropped.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinHandle;

/// Most connections proxied at once; further ones are closed on accept.
pub const MAX_CONNECTIONS: usize = 1_024;
/// Bytes buffered per direction of one connection.
pub const BUFFER_BYTES: usize = 16 * 1024;
/// How long connecting upstream may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a link could not start.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    #[error("the link proxies loopback only, but the upstream is {0}: point it at 127.0.0.1")]
    NotLoopback(SocketAddr),
    #[error("cannot listen on 127.0.0.1: {0}")]
    Listen(#[from] std::io::Error),
}

/// What the link lets through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkMode {
    Open,
    Stalled,
    Cut,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct LinkState {
    mode: LinkMode,
    /// Bumped to close every connection made before.
    epoch: u64,
}

/// What went through a link.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LinkStats {
    pub accepted: u64,
    /// Connections closed on accept (cut, or over [`MAX_CONNECTIONS`]).
    pub refused: u64,
    pub active: u64,
    pub bytes_up: u64,
    pub bytes_down: u64,
}

#[derive(Default)]
struct Counters {
    accepted: AtomicU64,
    refused: AtomicU64,
    active: AtomicU64,
    bytes_up: AtomicU64,
    bytes_down: AtomicU64,
}

struct Shared {
    upstream: Mutex<SocketAddr>,
    state: watch::Sender<LinkState>,
    permits: Arc<Semaphore>,
    counters: Counters,
}

/// A cuttable loopback TCP proxy. Dropping it stops it and closes its connections.
pub struct LinkCutter {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: JoinHandle<()>,
}

impl LinkCutter {
    /// Listens on `127.0.0.1:0` and forwards every connection to `upstream`.
    pub async fn start(upstream: SocketAddr) -> Result<LinkCutter, LinkError> {
        check_loopback(upstream)?;
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared = Arc::new(Shared {
            upstream: Mutex::new(upstream),
            state: watch::channel(LinkState {
                mode: LinkMode::Open,
                epoch: 0,
            })
            .0,
            permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
            counters: Counters::default(),
        });
        let accept = tokio::spawn(accept_loop(listener, shared.clone()));
        Ok(LinkCutter {
            addr,
            shared,
            accept,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the link forwards to.
    pub fn upstream(&self) -> SocketAddr {
        *self
            .shared
            .upstream
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// The link's mode now.
    pub fn mode(&self) -> LinkMode {
        self.shared.state.borrow().mode
    }

    /// Closes every connection and refuses new ones until [`LinkCutter::restore`].
    pub fn cut(&self) {
        self.shared.state.send_modify(|s| {
            s.mode = LinkMode::Cut;
            s.epoch += 1;
        });
    }

    /// Keeps connections open but moves no byte until [`LinkCutter::restore`].
    pub fn stall(&self) {
        self.shared
            .state
            .send_modify(|s| s.mode = LinkMode::Stalled);
    }

    /// Lets traffic through again (stalled connections resume where they were).
    pub fn restore(&self) {
        self.shared.state.send_modify(|s| s.mode = LinkMode::Open);
    }

    /// Closes every current connection, keeping the mode (clients reconnect).
    pub fn reset_connections(&self) {
        self.shared.state.send_modify(|s| s.epoch += 1);
    }

    /// Forwards new connections to `upstream` and closes those to the old one.
    pub fn set_upstream(&self, upstream: SocketAddr) -> Result<(), LinkError> {
        check_loopback(upstream)?;
        *self
            .shared
            .upstream
            .lock()
            .unwrap_or_else(|p| p.into_inner()) = upstream;
        self.reset_connections();
        Ok(())
    }

    /// Counters so far.
    pub fn stats(&self) -> LinkStats {
        let c = &self.shared.counters;
        LinkStats {
            accepted: c.accepted.load(Ordering::Relaxed),
            refused: c.refused.load(Ordering::Relaxed),
            active: c.active.load(Ordering::Relaxed),
            bytes_up: c.bytes_up.load(Ordering::Relaxed),
            bytes_down: c.bytes_down.load(Ordering::Relaxed),
        }
    }
}

impl Drop for LinkCutter {
    fn drop(&mut self) {
        self.accept.abort();
        // Closes every connection: their tasks end at the epoch change.
        self.cut();
    }
}

fn check_loopback(addr: SocketAddr) -> Result<(), LinkError> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(LinkError::NotLoopback(addr))
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let Ok((client, _)) = listener.accept().await else {
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        };
        let state = *shared.state.borrow();
        let permit = shared.permits.clone().try_acquire_owned();
        let (LinkMode::Open | LinkMode::Stalled, Ok(permit)) = (state.mode, permit) else {
            shared.counters.refused.fetch_add(1, Ordering::Relaxed);
            drop(client);
            continue;
        };
        shared.counters.accepted.fetch_add(1, Ordering::Relaxed);
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.counters.active.fetch_add(1, Ordering::Relaxed);
            proxy(client, &shared, state.epoch).await;
            shared.counters.active.fetch_sub(1, Ordering::Relaxed);
            drop(permit);
        });
    }
}

/// Waits until the link is open (true) or this connection's epoch is over (false).
async fn wait_open(rx: &mut watch::Receiver<LinkState>, epoch: u64) -> bool {
    rx.wait_for(|s| s.epoch != epoch || s.mode == LinkMode::Open)
        .await
        .is_ok_and(|s| s.epoch == epoch)
}

async fn proxy(client: TcpStream, shared: &Shared, epoch: u64) {
    let mut rx = shared.state.subscribe();
    if !wait_open(&mut rx, epoch).await {
        return;
    }
    let upstream = *shared.upstream.lock().unwrap_or_else(|p| p.into_inner());
    let Ok(Ok(server)) = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(upstream)).await
    else {
        return;
    };
    let _ = client.set_nodelay(true);
    let _ = server.set_nodelay(true);
    let (cr, cw) = client.into_split();
    let (sr, sw) = server.into_split();
    let up = pump(
        cr,
        sw,
        shared.state.subscribe(),
        epoch,
        &shared.counters.bytes_up,
    );
    let down = pump(
        sr,
        cw,
        shared.state.subscribe(),
        epoch,
        &shared.counters.bytes_down,
    );
    // Either direction ending (EOF, error, cut) ends the connection.
    tokio::select! {
        () = up => {}
        () = down => {}
    }
}

/// Copies `from` to `to` while the link is open, pausing while it is stalled, until EOF, an
/// error, or the end of `epoch`.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    mut rx: watch::Receiver<LinkState>,
    epoch: u64,
    bytes: &AtomicU64,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; BUFFER_BYTES];
    loop {
        if !wait_open(&mut rx, epoch).await {
            return;
        }
        let n = tokio::select! {
            r = from.read(&mut buf) => match r {
                Ok(0) | Err(_) => return,
                Ok(n) => n,
            },
            changed = rx.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        };
        // Bytes read before a stall are delivered once the link opens again.
        if !wait_open(&mut rx, epoch).await {
            return;
        }
        let written = tokio::select! {
            w = to.write_all(&buf[..n]) => w.is_ok(),
            _ = rx.wait_for(|s| s.epoch != epoch) => false,
        };
        if !written {
            return;
        }
        bytes.fetch_add(n as u64, Ordering::Relaxed);
    }
}
