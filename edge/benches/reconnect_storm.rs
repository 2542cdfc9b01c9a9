//! Reconnect storm: after a site power cut every charger reconnects at once. N chargers
//! (default 5,000) connect within the same second, first to the TCP port, then to the MQTT
//! port; the figure is the time until every one is connected AND authenticated, i.e. it has
//! its login answered by the site (TCP: 0x02 accepted; MQTT: CONNACK accepted, SUBACK on its
//! own down topic, then 0x02 accepted arriving on that topic). Goal: ≤ 30 s on each port.
//!
//! Run: `cargo bench -p voltline-edge --bench reconnect_storm` (`-- --quick` or
//! `VOLTLINE_BENCH_QUICK=1` for 300 chargers; `VOLTLINE_STORM_CHARGERS=n` to choose).
//!
//! The chargers run in a child process (this same binary, re-executed): an MQTT charger
//! costs four descriptors in one process (client, front end, front end → rumqttd, rumqttd),
//! more than the 20,000 the machine allows for 5,000 chargers. The clients are minimal and
//! cheap (so the edge, not the load generator, is measured) and retry with jittered backoff
//! like real piles; every failed attempt is counted.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use futures::StreamExt;
use rumqttc::mqttbytes::v4::{Connect, Packet, Subscribe};
use rumqttc::mqttbytes::QoS;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use voltline_edge::ops::metrics::{EdgeMetrics, Port, PortLabels};
use voltline_edge::ports::directory::hash_credential;
use voltline_edge::ports::mqtt::{MqttPort, MqttPortConfig};
use voltline_edge::ports::tcp::{TcpPort, TcpPortConfig};
use voltline_edge::ports::{ChargerDirectory, ChargerEntry, PileSender, PortEvent};
use voltline_protocol::domain::PileCode;
use voltline_protocol::frame::{self, Frame};
use voltline_protocol::message::register::{
    Carrier, LoginReply, LoginResult, NetworkKind, PileKind,
};
use voltline_protocol::message::{register::Login, Message};
use voltline_protocol::wire::{bcd::Bcd, text::FixedText};
use voltline_protocol::{topics, FrameCodec};

/// How long a storm may take before the remaining chargers count as failed.
const DEADLINE: Duration = Duration::from_secs(90);
const ROLE_ENV: &str = "VOLTLINE_STORM_ROLE";

fn pile(i: usize) -> PileCode {
    PileCode::from_number(32_010_600_000_000 + i as u64).unwrap()
}

fn password(p: &PileCode) -> String {
    format!("storm-{p}")
}

fn login(p: PileCode) -> Vec<u8> {
    let l = Login {
        pile_code: p,
        pile_kind: PileKind::Dc,
        connector_count: 2,
        protocol_version_x10: 0x10,
        program_version: FixedText::from_text("storm").unwrap(),
        network: NetworkKind::Lan,
        sim: Bcd::ZERO,
        carrier: Carrier::Other,
    };
    Frame::new(1, l).to_bytes().unwrap().to_vec()
}

fn is_accepted(f: &Frame) -> bool {
    matches!(&f.message, Message::LoginReply(r) if r.result == LoginResult::Accepted)
}

// ---------------------------------------------------------------- the chargers (child) --

/// One TCP charger attempt: connect, log in, wait for the reply. The socket stays open.
async fn tcp_attempt(addr: &str, p: PileCode) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    s.write_all(&login(p)).await.map_err(|e| e.to_string())?;
    let (r, w) = s.into_split();
    let mut frames = FramedRead::new(r, FrameCodec::new());
    match frames.next().await {
        Some(Ok(Ok(f))) if is_accepted(&f) => {}
        other => return Err(format!("no accepted login: {other:?}")),
    }
    let r = frames.into_inner();
    r.reunite(w).map_err(|e| e.to_string())
}

async fn read_packet(s: &mut TcpStream, buf: &mut BytesMut) -> Result<Packet, String> {
    loop {
        match Packet::read(buf, 64 * 1024) {
            Ok(p) => return Ok(p),
            Err(rumqttc::mqttbytes::Error::InsufficientBytes(_)) => {}
            Err(e) => return Err(e.to_string()),
        }
        if s.read_buf(buf).await.map_err(|e| e.to_string())? == 0 {
            return Err("closed".into());
        }
    }
}

/// One MQTT charger attempt: CONNECT, SUBSCRIBE own down, publish the login, wait for the
/// site's reply on the down topic.
async fn mqtt_attempt(addr: &str, p: PileCode) -> Result<TcpStream, String> {
    let mut s = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let mut out = BytesMut::new();
    let mut c = Connect::new(p.to_string());
    c.keep_alive = 120;
    c.set_login(p.to_string(), password(&p));
    Packet::Connect(c).write(&mut out, 1 << 16).unwrap();
    let mut sub = Subscribe::new(topics::pile_down(&p), QoS::AtLeastOnce);
    sub.pkid = 1;
    Packet::Subscribe(sub).write(&mut out, 1 << 16).unwrap();
    let mut publish =
        rumqttc::mqttbytes::v4::Publish::new(topics::pile_up(&p), QoS::AtMostOnce, login(p));
    publish.pkid = 0;
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(512);
    match read_packet(&mut s, &mut buf).await? {
        Packet::ConnAck(a) if a.code == rumqttc::mqttbytes::v4::ConnectReturnCode::Success => {}
        other => return Err(format!("CONNACK: {other:?}")),
    }
    match read_packet(&mut s, &mut buf).await? {
        Packet::SubAck(a)
            if matches!(
                a.return_codes[..],
                [rumqttc::mqttbytes::v4::SubscribeReasonCode::Success(_)]
            ) => {}
        other => return Err(format!("SUBACK: {other:?}")),
    }
    out.clear();
    Packet::Publish(publish).write(&mut out, 1 << 16).unwrap();
    s.write_all(&out).await.map_err(|e| e.to_string())?;
    loop {
        match read_packet(&mut s, &mut buf).await? {
            Packet::Publish(m) => {
                let f = frame::decode(&m.payload).map_err(|e| e.to_string())?;
                if m.pkid != 0 {
                    let mut ack = BytesMut::new();
                    Packet::PubAck(rumqttc::mqttbytes::v4::PubAck::new(m.pkid))
                        .write(&mut ack, 64)
                        .unwrap();
                    s.write_all(&ack).await.map_err(|e| e.to_string())?;
                }
                return if is_accepted(&f) {
                    Ok(s)
                } else {
                    Err("login refused".into())
                };
            }
            _ => continue,
        }
    }
}

/// The child: N chargers, each starting at a random moment within the first second.
async fn chargers(transport: String, addr: String, n: usize) {
    let _ = voltline_sim::sys::raise_fd_limit();
    let t0 = Instant::now();
    let (tx, mut rx) = mpsc::unbounded_channel::<(Option<Duration>, u32)>();
    let hold = CancellationToken::new();
    for i in 0..n {
        let (tx, addr, transport, hold) =
            (tx.clone(), addr.clone(), transport.clone(), hold.clone());
        tokio::spawn(async move {
            let p = pile(i + 1);
            tokio::time::sleep(Duration::from_micros(rand::random::<u64>() % 1_000_000)).await;
            let mut failures = 0u32;
            let mut backoff_ms = 50u64;
            while t0.elapsed() < DEADLINE {
                let attempt = async {
                    if transport == "tcp" {
                        tcp_attempt(&addr, p).await
                    } else {
                        mqtt_attempt(&addr, p).await
                    }
                };
                match tokio::time::timeout(Duration::from_secs(10), attempt).await {
                    Ok(Ok(socket)) => {
                        let _ = tx.send((Some(t0.elapsed()), failures));
                        hold.cancelled().await;
                        drop(socket);
                        return;
                    }
                    _ => {
                        failures += 1;
                        let jitter = rand::random::<u64>() % backoff_ms.max(1);
                        tokio::time::sleep(Duration::from_millis(backoff_ms / 2 + jitter)).await;
                        backoff_ms = (backoff_ms * 2).min(2_000);
                    }
                }
            }
            let _ = tx.send((None, failures));
        });
    }
    drop(tx);
    let mut done = Vec::new();
    let (mut gave_up, mut failed_attempts) = (0usize, 0u64);
    while let Some((t, f)) = rx.recv().await {
        failed_attempts += f as u64;
        match t {
            Some(t) => done.push(t),
            None => gave_up += 1,
        }
        if done.len() + gave_up == n {
            break;
        }
    }
    done.sort();
    let pct = |q: f64| {
        done.get(((done.len() as f64 - 1.0) * q) as usize)
            .map_or(0.0, |d| d.as_secs_f64())
    };
    println!(
        "RESULT done={} gave_up={gave_up} failed_attempts={failed_attempts} p50_s={:.3} p99_s={:.3} all_s={:.3}",
        done.len(),
        pct(0.5),
        pct(0.99),
        done.last().map_or(f64::NAN, |d| d.as_secs_f64()),
    );
    // Stay connected a moment so the edge's view of "all connected" can be sampled.
    tokio::time::sleep(Duration::from_secs(1)).await;
    hold.cancel();
}

// ---------------------------------------------------------------- the edge (parent) --

/// Answers every login with 0x02 accepted, as the site does.
fn spawn_site(mut rx: mpsc::Receiver<PortEvent>) {
    tokio::spawn(async move {
        let mut senders: HashMap<PileCode, PileSender> = HashMap::new();
        while let Some(ev) = rx.recv().await {
            match ev {
                PortEvent::Connected { sender } => {
                    senders.insert(sender.pile, sender);
                }
                PortEvent::Frame { pile, frame, .. } => {
                    if matches!(frame.message, Message::Login(_)) {
                        if let Some(s) = senders.get(&pile) {
                            let reply = LoginReply {
                                pile_code: pile,
                                result: LoginResult::Accepted,
                            };
                            let _ = s.send(Frame::new(frame.sequence, reply));
                        }
                    }
                }
                PortEvent::Disconnected { pile, conn, .. } => {
                    if senders.get(&pile).is_some_and(|s| s.conn == conn) {
                        senders.remove(&pile);
                    }
                }
            }
        }
    });
}

async fn storm(
    name: &str,
    transport: &str,
    addr: String,
    n: usize,
    metrics: &Arc<EdgeMetrics>,
    port: Port,
) -> f64 {
    let exe = std::env::current_exe().unwrap();
    let t0 = Instant::now();
    let child = tokio::process::Command::new(exe)
        .env(ROLE_ENV, format!("{transport} {addr} {n}"))
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("cannot start the charger process");
    let gauge = metrics
        .chargers_connected
        .get_or_create(&PortLabels { port })
        .clone();
    let peak = Arc::new(std::sync::atomic::AtomicI64::new(0));
    let all_at = Arc::new(std::sync::Mutex::new(None::<Duration>));
    let watcher = {
        let (peak, all_at) = (peak.clone(), all_at.clone());
        tokio::spawn(async move {
            loop {
                let now = gauge.get();
                peak.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
                if now >= n as i64 {
                    *all_at.lock().unwrap() = Some(t0.elapsed());
                    return;
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        })
    };
    let out = child.wait_with_output().await.unwrap();
    watcher.abort();
    let edge_all = *all_at.lock().unwrap();
    let peak = peak.load(std::sync::atomic::Ordering::Relaxed);
    let wall = t0.elapsed();
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text
        .lines()
        .find(|l| l.starts_with("RESULT"))
        .unwrap_or("RESULT (child printed nothing)");
    let all_s: f64 = line
        .split_whitespace()
        .find_map(|kv| kv.strip_prefix("all_s="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(f64::NAN);
    println!("{name:<5} {n:>6} chargers: {line}");
    println!(
        "{name:<5}   child wall {:.2} s (incl. process start); edge had all {n} connected after {} (peak {peak}); refused {}  => goal 30 s: {}",
        wall.as_secs_f64(),
        edge_all.map_or("never".to_string(), |d| format!("{:.2} s", d.as_secs_f64())),
        metrics.auth_refused.get_or_create(&voltline_edge::ops::metrics::ReasonLabels { port, reason: "max_connections" }).get(),
        if all_s <= 30.0 { "MET" } else { "MISSED" },
    );
    all_s
}

fn main() {
    if let Ok(role) = std::env::var(ROLE_ENV) {
        let mut it = role.split(' ');
        let (t, a, n) = (
            it.next().unwrap().to_string(),
            it.next().unwrap().to_string(),
            it.next().unwrap().parse().unwrap(),
        );
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(chargers(t, a, n));
        return;
    }
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var_os("VOLTLINE_BENCH_QUICK").is_some();
    let n: usize = std::env::var("VOLTLINE_STORM_CHARGERS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(if quick { 300 } else { 5_000 });
    let limits = voltline_sim::sys::raise_fd_limit();
    println!(
        "reconnect storm: {n} chargers per port, all starting within 1 s; fd limit {limits:?}"
    );
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let directory = ChargerDirectory::new((1..=n).map(|i| {
            let p = pile(i);
            ChargerEntry { pile: p, credential_sha256: Some(hash_credential(&password(&p))) }
        }));
        let metrics = Arc::new(EdgeMetrics::default());
        let shutdown = CancellationToken::new();
        let (tx, rx) = mpsc::channel(4_096);
        spawn_site(rx);

        let tcp = TcpPort::bind(TcpPortConfig { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() }).unwrap();
        let tcp_addr = tcp.local_addr().unwrap().to_string();
        let tcp_stop = shutdown.child_token();
        let tcp_task = tokio::spawn(tcp.run(directory.clone(), tx.clone(), metrics.clone(), tcp_stop.clone()));
        let tcp_s = storm("tcp", "tcp", tcp_addr, n, &metrics, Port::Tcp).await;
        tcp_stop.cancel();
        let _ = tcp_task.await;

        let cfg = MqttPortConfig { listen: "127.0.0.1:0".parse().unwrap(), ..Default::default() };
        let mqtt = MqttPort::start(cfg, directory, tx, metrics.clone(), shutdown.clone()).await.unwrap();
        let mqtt_s = storm("mqtt", "mqtt", mqtt.local_addr().to_string(), n, &metrics, Port::Mqtt).await;
        println!("summary: all {n} connected+authenticated in tcp {tcp_s:.2} s, mqtt {mqtt_s:.2} s (mqtt/tcp = {:.2}x)", mqtt_s / tcp_s);
        shutdown.cancel();
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}
