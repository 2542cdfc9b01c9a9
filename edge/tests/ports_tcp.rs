//! The TCP charger port against raw sockets and the simulator: logins checked against the
//! directory, frames through to the site, bad bytes counted and contained.

mod ports_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use ports_support::*;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use voltline_edge::ops::metrics::{EdgeMetrics, Port};
use voltline_edge::ports::tcp::{TcpPort, TcpPortConfig};
use voltline_edge::ports::ChargerDirectory;
use voltline_protocol::frame::Frame;
use voltline_protocol::message::register::LoginResult;
use voltline_protocol::message::Message;
use voltline_protocol::FrameCodec;
use voltline_sim::fleet::{FleetConfig, SimFleet};
use voltline_sim::{ChargerSpec, SimEvent};

struct Running {
    addr: SocketAddr,
    site: Site,
    metrics: Arc<EdgeMetrics>,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

async fn start(directory: ChargerDirectory, config: TcpPortConfig) -> Running {
    let port = TcpPort::bind(TcpPortConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..config
    })
    .unwrap();
    let addr = port.local_addr().unwrap();
    let (tx, rx) = mpsc::channel(1_024);
    let metrics = metrics();
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(port.run(directory, tx, metrics.clone(), shutdown.clone()));
    Running {
        addr,
        site: Site::spawn(rx),
        metrics,
        shutdown,
        task,
    }
}

impl Running {
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.task)
            .await
            .unwrap()
            .unwrap();
    }
}

type Reader = FramedRead<tokio::net::tcp::OwnedReadHalf, FrameCodec>;

async fn connect(addr: SocketAddr) -> (Reader, tokio::net::tcp::OwnedWriteHalf) {
    let (r, w) = TcpStream::connect(addr).await.unwrap().into_split();
    (FramedRead::new(r, FrameCodec::new()), w)
}

async fn next_frame(r: &mut Reader) -> Option<Frame> {
    match tokio::time::timeout(WAIT, r.next())
        .await
        .expect("no frame in time")
    {
        Some(Ok(Ok(f))) => Some(f),
        Some(Ok(Err(e))) => panic!("bad frame from the port: {e}"),
        Some(Err(_)) | None => None,
    }
}

#[tokio::test]
async fn registered_pile_logs_in_and_its_frames_reach_the_site_and_back() {
    let mut port = start(directory(3), TcpPortConfig::default()).await;
    let p = pile(1);
    let (mut r, mut w) = connect(port.addr).await;
    w.write_all(&bytes(&login(p, 7))).await.unwrap();
    let conn = port
        .site
        .expect("Connected", |s| match s {
            Seen::Connected(q, c) if *q == p => Some(*c),
            _ => None,
        })
        .await;
    // The login itself is forwarded: the site answers it, not the port.
    port.site
        .expect("the login frame", |s| match s {
            Seen::Frame(q, c, f) if *q == p && *c == conn => {
                assert!(matches!(f.message, Message::Login(_)));
                Some(())
            }
            _ => None,
        })
        .await;
    let reply = next_frame(&mut r).await.unwrap();
    assert_eq!(reply.sequence, 7);
    assert!(matches!(&reply.message, Message::LoginReply(l) if l.result == LoginResult::Accepted));
    w.write_all(&bytes(&heartbeat(p, 8))).await.unwrap();
    let hb = next_frame(&mut r).await.unwrap();
    assert!(matches!(hb.message, Message::HeartbeatReply(_)));
    assert_eq!(hb.sequence, 8);
    drop(w);
    port.site
        .expect("Disconnected", |s| {
            matches!(s, Seen::Disconnected(q, c) if *q == p && *c == conn).then_some(())
        })
        .await;
    assert_eq!(
        port.metrics.auth_refused_count(Port::Tcp, "unknown_pile"),
        0
    );
    port.stop().await;
}

#[tokio::test]
async fn unknown_pile_is_refused_with_a_login_reply_and_counted() {
    let mut port = start(directory(1), TcpPortConfig::default()).await;
    let stranger = pile(99);
    let (mut r, mut w) = connect(port.addr).await;
    w.write_all(&bytes(&login(stranger, 3))).await.unwrap();
    let reply = next_frame(&mut r)
        .await
        .expect("a refusal before the close");
    assert!(
        matches!(&reply.message, Message::LoginReply(l) if l.result == LoginResult::Rejected && l.pile_code == stranger)
    );
    assert!(
        next_frame(&mut r).await.is_none(),
        "the port closes after refusing"
    );
    assert_eq!(
        port.metrics.auth_refused_count(Port::Tcp, "unknown_pile"),
        1
    );
    assert!(
        port.site.seen.try_recv().is_err(),
        "the site never hears of it"
    );
    port.stop().await;
}

#[tokio::test]
async fn a_first_frame_that_is_not_a_login_or_no_login_at_all_is_refused() {
    let cfg = TcpPortConfig {
        login_timeout_ms: 300,
        ..TcpPortConfig::default()
    };
    let port = start(directory(1), cfg).await;
    let (mut r1, mut w1) = connect(port.addr).await;
    w1.write_all(&bytes(&heartbeat(pile(1), 1))).await.unwrap();
    assert!(next_frame(&mut r1).await.is_none());
    let (mut r2, _w2) = connect(port.addr).await;
    assert!(
        next_frame(&mut r2).await.is_none(),
        "closed after the login timeout"
    );
    assert_eq!(
        port.metrics
            .auth_refused_count(Port::Tcp, "first_frame_not_login"),
        1
    );
    assert_eq!(
        port.metrics.auth_refused_count(Port::Tcp, "login_timeout"),
        1
    );
    port.stop().await;
}

#[tokio::test]
async fn garbage_and_malformed_frames_are_counted_and_other_chargers_keep_working() {
    let cfg = TcpPortConfig {
        max_consecutive_errors: 8,
        ..TcpPortConfig::default()
    };
    let mut port = start(directory(2), cfg).await;
    let (bad, good) = (pile(1), pile(2));
    let (mut gr, mut gw) = connect(port.addr).await;
    gw.write_all(&bytes(&login(good, 1))).await.unwrap();
    assert!(next_frame(&mut gr).await.is_some());
    let (mut br, mut bw) = connect(port.addr).await;
    bw.write_all(&bytes(&login(bad, 1))).await.unwrap();
    assert!(next_frame(&mut br).await.is_some());

    // Garbage, then a frame with a broken checksum, then an unknown type, then a good one.
    let mut junk = vec![0x00, 0xFF, 0x13, 0x37, 0x42];
    let mut broken = bytes(&heartbeat(bad, 2));
    let n = broken.len();
    broken[n - 1] ^= 0xFF;
    junk.extend_from_slice(&broken);
    let mut unknown = bytes(&heartbeat(bad, 3));
    unknown[5] = 0xEE;
    voltline_protocol::frame::fix_checksum(&mut unknown);
    junk.extend_from_slice(&unknown);
    junk.extend_from_slice(&bytes(&heartbeat(bad, 4)));
    bw.write_all(&junk).await.unwrap();
    let hb = next_frame(&mut br).await.unwrap();
    assert_eq!(
        hb.sequence, 4,
        "the good frame behind the junk still gets through"
    );
    let m = port.metrics.clone();
    eventually("garbage, checksum and unknown type counted", || {
        m.decode_error_count(Port::Tcp, "garbage") >= 1
            && m.decode_error_count(Port::Tcp, "checksum") >= 1
            && m.decode_error_count(Port::Tcp, "unknown_type") >= 1
    })
    .await;

    // An oversized length byte and a long run of pure junk frames: the connection is closed.
    let mut flood = Vec::new();
    for i in 0..20u16 {
        let mut f = bytes(&heartbeat(bad, 100 + i));
        let n = f.len();
        f[n - 2] ^= 0x55;
        flood.extend_from_slice(&f);
    }
    flood.extend_from_slice(&[0x68, 0xFF, 0x00, 0x00]);
    let _ = bw.write_all(&flood).await;
    assert!(
        next_frame(&mut br).await.is_none(),
        "a garbage-only connection is closed"
    );

    // The other charger never noticed.
    gw.write_all(&bytes(&heartbeat(good, 9))).await.unwrap();
    let hb = next_frame(&mut gr).await.unwrap();
    assert_eq!(hb.sequence, 9);
    // No decode error reached the site: it only ever saw valid frames.
    while let Ok(s) = port.site.seen.try_recv() {
        if let Seen::Frame(_, _, f) = s {
            assert!(matches!(
                f.message,
                Message::Login(_) | Message::Heartbeat(_)
            ));
        }
    }
    port.stop().await;
}

#[tokio::test]
async fn connections_beyond_the_limit_are_refused_and_counted() {
    let cfg = TcpPortConfig {
        max_connections: 2,
        ..TcpPortConfig::default()
    };
    let port = start(directory(3), cfg).await;
    let (_r1, mut w1) = connect(port.addr).await;
    let (_r2, mut w2) = connect(port.addr).await;
    w1.write_all(&bytes(&login(pile(1), 1))).await.unwrap();
    w2.write_all(&bytes(&login(pile(2), 1))).await.unwrap();
    let m = port.metrics.clone();
    eventually("two chargers connected", || {
        m.chargers_connected
            .get_or_create(&voltline_edge::ops::metrics::PortLabels { port: Port::Tcp })
            .get()
            == 2
    })
    .await;
    let (mut r3, _w3) = connect(port.addr).await;
    assert!(next_frame(&mut r3).await.is_none());
    assert_eq!(
        port.metrics
            .auth_refused_count(Port::Tcp, "max_connections"),
        1
    );
    port.stop().await;
}

#[tokio::test]
async fn simulated_chargers_log_in_and_an_unregistered_one_is_rejected() {
    let port = start(directory(3), TcpPortConfig::default()).await;
    let specs = vec![
        ChargerSpec::ac(pile(1)),
        ChargerSpec::ac(pile(2)),
        ChargerSpec::ac(pile(3)),
        ChargerSpec::ac(pile(50)),
    ];
    let fleet = SimFleet::spawn(FleetConfig::tcp(port.addr.to_string(), specs))
        .await
        .unwrap();
    let mut events = fleet.events();
    let mut logged_in = std::collections::HashSet::new();
    let mut rejected = false;
    tokio::time::timeout(WAIT, async {
        while logged_in.len() < 3 || !rejected {
            match events.recv().await {
                Ok(SimEvent::LoggedIn { pile }) => {
                    logged_in.insert(pile);
                }
                Ok(SimEvent::LoginRejected { pile: p }) => {
                    assert_eq!(p, pile(50));
                    rejected = true;
                }
                Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                Err(e) => panic!("{e}"),
            }
        }
    })
    .await
    .expect("three logins accepted and one rejected");
    assert!(port.metrics.auth_refused_count(Port::Tcp, "unknown_pile") >= 1);
    fleet.shutdown().await;
    tokio::time::sleep(Duration::from_millis(50)).await;
    port.stop().await;
}
