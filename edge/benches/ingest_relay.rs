//! Ingest through the MQTT port beside the bare broker relaying the same stream.
//!
//! C charger clients (default 100) each publish K 0x13 real-time frames (default 3,000) at
//! QoS 1 with up to 64 unacknowledged, as fast as the path takes them:
//! - relay (baseline): the embedded broker with the port's exact rumqttd configuration
//!   ([`broker_config`]), clients connected to it directly, one local-link subscriber on
//!   `piles/+/up` that only counts messages (no front end, no decode, no store);
//! - ingest: the full MQTT port (front end with auth and ACL → rumqttd → bridge: decode,
//!   `PortEvent::Frame`), a consumer that turns every 0x13 into a `NewRecord` with a
//!   `RecordBody::MeterReading` and makes it durable with `store::GroupCommitter`; counted
//!   when durable. Like the site, the consumer never waits for a flush in its loop (up to
//!   [`TICKETS_IN_FLIGHT`] batches wait to be counted).
//!
//! A third line, the port alone (decoded frames counted, no store), shows which side the
//! time goes to. Printed: frames/s of each, and the ratios to the relay. Goals on 2 cores:
//! ≥ 100,000 frames/s durable and ≥ 0.4× the relay.
//!
//! Run: `cargo bench -p voltline-edge --bench ingest_relay` (`-- --quick` or
//! `VOLTLINE_BENCH_QUICK=1`: 20 × 500 in one round; `VOLTLINE_INGEST_CLIENTS`,
//! `VOLTLINE_INGEST_FRAMES`, `VOLTLINE_INGEST_ROUNDS` (3): the summary is the median of the
//! rounds for either side; `VOLTLINE_INGEST_PORT_ONLY=0` skips the port-only line, e.g. to
//! profile the durable path with less else in the samples). Each line also shows the CPU the phase took (a phase far below
//! 2 cores is waiting, not working) and, for the durable phase, the bytes written to disk.
//! The load generator is a minimal MQTT client (pre-encoded PUBLISH packets) so that the
//! figures measure the edge rather than a client library.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use jiff::Timestamp;
use rumqttc::mqttbytes::v4::{Connect, Packet, Publish};
use rumqttc::mqttbytes::QoS;
use rumqttd::Notification;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Barrier};
use tokio_util::sync::CancellationToken;
use voltline_edge::ops::metrics::{EdgeMetrics, Port, ReasonLabels};
use voltline_edge::ports::directory::hash_credential;
use voltline_edge::ports::mqtt::broker::{
    broker_config, free_loopback_port, spawn_broker, InternalLogin,
};
use voltline_edge::ports::mqtt::packet::{frame as mqtt_frame, kind};
use voltline_edge::ports::mqtt::{MqttPort, MqttPortConfig};
use voltline_edge::ports::{ChargerDirectory, ChargerEntry, PortEvent};
use voltline_edge::store::{
    GroupCommitConfig, GroupCommitter, NewRecord, Store, StoreConfig, Ticket,
};
use voltline_protocol::domain::{ConnectorNo, Energy, Money, PileCode};
use voltline_protocol::frame::Frame;
use voltline_protocol::message::realtime::RealTimeData;
use voltline_protocol::message::Message;
use voltline_protocol::sync::{MeterReading, RecordBody};
use voltline_protocol::topics;

const WINDOW: usize = 64;
const TICKETS_IN_FLIGHT: usize = 64;
/// A phase with no progress for this long is reported as stalled.
const STALL: Duration = Duration::from_secs(10);

fn env_usize(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn pile(i: usize) -> PileCode {
    PileCode::from_number(32_010_600_000_000 + i as u64).unwrap()
}

fn password(p: &PileCode) -> String {
    format!("ingest-{p}")
}

fn rtd_frame(p: PileCode) -> Vec<u8> {
    let mut r = RealTimeData::idle(p, ConnectorNo::new(1).unwrap());
    r.energy = Energy::from_wh(12_345);
    r.billed_energy = Energy::from_wh(12_345);
    r.amount = Money::from_cents(1_234);
    Frame::new(1, r).to_bytes().unwrap().to_vec()
}

/// One charger: CONNECT, then K QoS 1 publishes with at most [`WINDOW`] unacknowledged.
async fn charger(
    addr: SocketAddr,
    p: PileCode,
    user: String,
    pass: String,
    k: usize,
    start: Arc<Barrier>,
) {
    let mut s = TcpStream::connect(addr).await.expect("connect");
    let _ = s.set_nodelay(true);
    let mut out = BytesMut::new();
    let mut c = Connect::new(p.to_string());
    c.keep_alive = 120;
    c.set_login(user, pass);
    Packet::Connect(c).write(&mut out, 1 << 16).unwrap();
    s.write_all(&out).await.unwrap();
    let mut inb = BytesMut::with_capacity(4096);
    while mqtt_frame(&inb, 1 << 16).unwrap().is_none() {
        assert!(
            s.read_buf(&mut inb).await.unwrap() > 0,
            "closed before CONNACK"
        );
    }
    let h = mqtt_frame(&inb, 1 << 16).unwrap().unwrap();
    assert_eq!(inb[h.header_len + 1], 0, "CONNACK refused");
    let _ = inb.split_to(h.total_len);
    // One pre-encoded PUBLISH; only the packet id changes.
    let mut template = BytesMut::new();
    let mut publish = Publish::new(topics::pile_up(&p), QoS::AtLeastOnce, rtd_frame(p));
    publish.pkid = 1;
    Packet::Publish(publish)
        .write(&mut template, 1 << 16)
        .unwrap();
    let pkid_at = template.len() - rtd_frame(p).len() - 2;
    start.wait().await;
    let (mut sent, mut acked, mut pkid) = (0usize, 0usize, 0u16);
    while acked < k {
        out.clear();
        while sent - acked < WINDOW && sent < k {
            pkid = pkid % u16::MAX + 1;
            let at = out.len();
            out.extend_from_slice(&template);
            out[at + pkid_at..at + pkid_at + 2].copy_from_slice(&pkid.to_be_bytes());
            sent += 1;
        }
        if !out.is_empty() {
            s.write_all(&out).await.unwrap();
        }
        if s.read_buf(&mut inb).await.unwrap() == 0 {
            panic!("the broker closed a charger");
        }
        while let Ok(Some(h)) = mqtt_frame(&inb, 1 << 16) {
            if h.kind() == kind::PUBACK {
                acked += 1;
            }
            let _ = inb.split_to(h.total_len);
        }
    }
}

fn spawn_chargers(
    addr: SocketAddr,
    c: usize,
    k: usize,
    creds: impl Fn(&PileCode) -> (String, String),
) -> Arc<Barrier> {
    let start = Arc::new(Barrier::new(c + 1));
    for i in 1..=c {
        let p = pile(i);
        let (u, pw) = creds(&p);
        tokio::spawn(charger(addr, p, u, pw, k, start.clone()));
    }
    start
}

/// CPU seconds this process used so far (user + system, all threads), from `/proc/self/stat`
/// (`None` where there is none): a phase that uses far less than 2 cores × its wall time is
/// bound by latency (waits), not by work.
fn cpu_seconds() -> Option<f64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    // The fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    // USER_HZ is 100 on every Linux this runs on.
    Some((utime + stime) / 100.0)
}

/// Bytes this process has written towards storage so far (`write_bytes` of `/proc/self/io`,
/// counted as pages are dirtied), to show the store's write amplification.
fn disk_bytes() -> Option<u64> {
    let io = std::fs::read_to_string("/proc/self/io").ok()?;
    io.lines()
        .find_map(|l| l.strip_prefix("write_bytes: "))?
        .trim()
        .parse()
        .ok()
}

/// Waits until `count` reaches `n` (or stalls); returns the elapsed time from `t0`.
async fn until(count: &AtomicU64, n: u64, t0: Instant) -> (Duration, u64) {
    let (mut last, mut last_change) = (0, Instant::now());
    loop {
        let now = count.load(Ordering::Relaxed);
        if now >= n {
            return (t0.elapsed(), now);
        }
        if now != last {
            (last, last_change) = (now, Instant::now());
        } else if last_change.elapsed() > STALL {
            return (t0.elapsed(), now);
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// The port's defaults with a deeper `piles/+/up` log: this benchmark offers a burst far
/// above any fleet's steady rate (100 chargers flat out), and rumqttd acknowledges on append,
/// so a log shallower than the burst's lag loses messages in both runs alike.
fn bench_config() -> MqttPortConfig {
    MqttPortConfig {
        up_segment_bytes: 64 * 1024 * 1024,
        up_segments: 4,
        ..MqttPortConfig::default()
    }
}

async fn relay(c: usize, k: usize) -> f64 {
    let cfg = bench_config();
    let addr = free_loopback_port().unwrap();
    let login = InternalLogin::random();
    let (mut tx, mut rx) = spawn_broker(broker_config(&cfg, addr, &login), addr, "bench-relay")
        .await
        .unwrap();
    tx.subscribe(topics::all_piles_up()).unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let counter = count.clone();
    tokio::spawn(async move {
        let _keep = tx;
        while let Ok(n) = rx.next().await {
            match n {
                Some(Notification::Forward(_)) => {
                    counter.fetch_add(1, Ordering::Relaxed);
                }
                Some(Notification::Unschedule) => {
                    let _ = rx.wake().await;
                }
                _ => {}
            }
        }
    });
    let (u, pw) = (login.username.clone(), login.password.clone());
    let start = spawn_chargers(addr, c, k, move |_| (u.clone(), pw.clone()));
    start.wait().await;
    let (t0, cpu0) = (Instant::now(), cpu_seconds());
    let n = (c * k) as u64;
    let (d, got) = until(&count, n, t0).await;
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    report(
        "relay (bare broker, counting subscriber)",
        got,
        n,
        d,
        cpu,
        None,
    )
}

fn record(r: &RealTimeData, at: Timestamp) -> NewRecord {
    NewRecord::new(
        at,
        RecordBody::MeterReading(MeterReading {
            pile: r.pile_code,
            connector: r.connector,
            serial: r.serial,
            measured_at: at,
            import_register: r.energy,
            export_register: None,
            power: None,
            soc: Some(r.soc),
            amount: Some(r.amount),
        }),
    )
}

/// The site stand-in: 0x13 → outbox record, durable through group commit. Like the site, it
/// never waits for a flush in its loop: each batch's ticket goes to a task that counts the
/// batch once it is durable (in order, as the committer answers in order); backpressure is
/// the committer's bounded queue, and at most [`TICKETS_IN_FLIGHT`] batches wait to be counted.
async fn consume(
    mut rx: mpsc::Receiver<PortEvent>,
    committer: GroupCommitter,
    durable: Arc<AtomicU64>,
) {
    let (tickets_tx, mut tickets) = mpsc::channel::<(Ticket, u64)>(TICKETS_IN_FLIGHT);
    tokio::spawn(async move {
        while let Some((t, n)) = tickets.recv().await {
            t.durable().await.expect("durable");
            durable.fetch_add(n, Ordering::Relaxed);
        }
    });
    let mut batch = Vec::with_capacity(4_096);
    while let Some(first) = rx.recv().await {
        let at = Timestamp::now();
        let mut next = Some(first);
        while let Some(ev) = next.take() {
            if let PortEvent::Frame { frame, .. } = ev {
                if let Message::RealTimeData(r) = &frame.message {
                    batch.push(record(r, at));
                }
            }
            if batch.len() < 4_096 {
                next = rx.try_recv().ok();
            }
        }
        if !batch.is_empty() {
            let n = batch.len() as u64;
            let t = committer
                .submit(std::mem::take(&mut batch))
                .await
                .expect("submit");
            if tickets_tx.send((t, n)).await.is_err() {
                return;
            }
        }
    }
}

async fn ingest(c: usize, k: usize, relay_rate: f64, durable_store: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(
        dir.path(),
        StoreConfig {
            max_bytes: 8 << 30,
            ..StoreConfig::default()
        },
    )
    .unwrap();
    let (committer, _task) = GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
    let directory = ChargerDirectory::new((1..=c).map(|i| {
        let p = pile(i);
        ChargerEntry {
            pile: p,
            credential_sha256: Some(hash_credential(&password(&p))),
        }
    }));
    let metrics = Arc::new(EdgeMetrics::default());
    let shutdown = CancellationToken::new();
    let (tx, rx) = mpsc::channel(8_192);
    let cfg = MqttPortConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..bench_config()
    };
    let port = MqttPort::start(cfg, directory, tx, metrics.clone(), shutdown.clone())
        .await
        .unwrap();
    let durable = Arc::new(AtomicU64::new(0));
    if durable_store {
        tokio::spawn(consume(rx, committer, durable.clone()));
    } else {
        tokio::spawn(count_frames(rx, durable.clone()));
    }
    let start = spawn_chargers(port.local_addr(), c, k, |p| (p.to_string(), password(p)));
    start.wait().await;
    let (t0, cpu0, disk0) = (Instant::now(), cpu_seconds(), disk_bytes());
    let n = (c * k) as u64;
    let (d, got) = until(&durable, n, t0).await;
    let cpu = cpu_seconds().zip(cpu0).map(|(b, a)| b - a);
    let disk = disk_bytes().zip(disk0).map(|(b, a)| b - a);
    let name = if durable_store {
        "ingest (port → decode → outbox, durable)"
    } else {
        "port only (front end → broker → decoded frames)"
    };
    let rate = report(name, got, n, d, cpu, Some(relay_rate));
    let dropped = metrics
        .frames_in_dropped
        .get_or_create(&ReasonLabels {
            port: Port::Mqtt,
            reason: "not_connected",
        })
        .get();
    let stored = store.ledger().bytes;
    let written = disk
        .filter(|_| durable_store)
        .map(|w| {
            format!(
                ", {:.1} MB written to disk for {:.1} MB stored ({:.1}x)",
                w as f64 / 1e6,
                stored as f64 / 1e6,
                w as f64 / stored.max(1) as f64
            )
        })
        .unwrap_or_default();
    println!(
        "  outbox durable head {}, frames dropped before the site {dropped}{written}",
        store.durable_head()
    );
    shutdown.cancel();
    rate
}

/// The port alone: decoded 0x13 frames reaching the site, nothing behind them (where the
/// time goes: the port's path versus the store's).
async fn count_frames(mut rx: mpsc::Receiver<PortEvent>, count: Arc<AtomicU64>) {
    while let Some(ev) = rx.recv().await {
        if matches!(ev, PortEvent::Frame { .. }) {
            count.fetch_add(1, Ordering::Relaxed);
        }
    }
}

fn report(
    name: &str,
    got: u64,
    n: u64,
    d: Duration,
    cpu: Option<f64>,
    baseline: Option<f64>,
) -> f64 {
    let rate = got as f64 / d.as_secs_f64();
    let vs = baseline
        .map(|b| format!("  = {:.2}x relay", rate / b))
        .unwrap_or_default();
    let lost = if got < n {
        format!("  (STALLED: {} of {n})", got)
    } else {
        String::new()
    };
    let cores = cpu
        .map(|c| format!("  cpu {c:.2} s = {:.2} cores", c / d.as_secs_f64()))
        .unwrap_or_default();
    println!(
        "{name:<44} {got:>9} frames in {:>7.3} s = {rate:>10.0} frames/s{vs}{lost}{cores}",
        d.as_secs_f64()
    );
    rate
}

/// The median of `v` (not empty).
fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    let mid = v.len() / 2;
    if v.len().is_multiple_of(2) {
        (v[mid - 1] + v[mid]) / 2.0
    } else {
        v[mid]
    }
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick")
        || std::env::var_os("VOLTLINE_BENCH_QUICK").is_some();
    let c = env_usize("VOLTLINE_INGEST_CLIENTS", if quick { 20 } else { 100 });
    let k = env_usize("VOLTLINE_INGEST_FRAMES", if quick { 500 } else { 3_000 });
    println!("ingest vs relay: {c} MQTT chargers × {k} 0x13 frames, QoS 1, window {WINDOW}");
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    // The phases are short (a third of a second for the relay) and the machine is shared:
    // one pair of figures swings with whatever else runs. Rounds interleave the relay and the
    // ingest, and the summary takes the median of each side.
    let rounds = env_usize("VOLTLINE_INGEST_ROUNDS", if quick { 1 } else { 3 }).max(1);
    let port_only = env_usize("VOLTLINE_INGEST_PORT_ONLY", 1) != 0;
    rt.block_on(async {
        let (mut relays, mut ingests) = (Vec::new(), Vec::new());
        for round in 1..=rounds {
            println!("round {round} of {rounds}");
            let relay_rate = relay(c, k).await;
            if port_only {
                ingest(c, k, relay_rate, false).await;
            }
            ingests.push(ingest(c, k, relay_rate, true).await);
            relays.push(relay_rate);
        }
        let (relay_rate, ingest_rate) = (median(&mut relays), median(&mut ingests));
        println!(
            "summary (medians of {rounds}): relay {relay_rate:.0} frames/s, ingest {ingest_rate:.0} frames/s durable (goal ≥ 100000: {}), {:.2}x the relay (goal ≥ 0.4x: {})",
            if ingest_rate >= 100_000.0 { "MET" } else { "MISSED" },
            ingest_rate / relay_rate,
            if ingest_rate / relay_rate >= 0.4 { "MET" } else { "MISSED" },
        );
    });
    rt.shutdown_timeout(Duration::from_secs(2));
}
