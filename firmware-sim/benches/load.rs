//! Load benchmark: N chargers (default 10,000) in one process, all charging, reporting every
//! 15 s in real time against an in-process sink (logins answered, records acknowledged).
//!
//! Run: `cargo bench -p voltline-sim --bench load`
//! Knobs (environment): VOLTLINE_SIM_BENCH_CHARGERS (10000), VOLTLINE_SIM_BENCH_SECS (60,
//! the measured window), VOLTLINE_SIM_BENCH_RAMP_SECS (20, connection ramp before it),
//! VOLTLINE_SIM_BENCH_THREADS (2, runtime worker threads: the target machine has 2 cores).
//!
//! The sink runs in a child process (this same binary, re-executed with
//! VOLTLINE_SIM_BENCH_SINK=1), so that each process needs ~10,000 descriptors rather than
//! 20,000 in one, and so that the simulator's CPU and RSS are measured apart from the sink's
//! (both are printed). Each process raises its soft RLIMIT_NOFILE to the hard limit at start,
//! and the run stops with a message if the hard limit is too low. The sink does the minimum
//! per frame (decode, count, answer logins, heartbeats, starts and records).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use voltline_sim::fleet::{ChargerConfig, FleetConfig, SimFleet};
use voltline_sim::harness::{serve_sink, HarnessConfig, SinkStats};

use voltline_sim::sys;
use voltline_sim::transport::backoff::BackoffConfig;
use voltline_sim::transport::Transport;
use voltline_sim::workload::{Arrivals, FaultRates, StartMode};
use voltline_sim::{ChargerSpec, Speed};

const GOAL_CPU_PCT_PER_1000: f64 = 5.0;
const GOAL_RSS_MIB_PER_1000: f64 = 20.0;

fn env<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn main() {
    if std::env::var_os("VOLTLINE_SIM_BENCH_SINK").is_some() {
        sink_process();
        return;
    }
    let chargers: usize = env("VOLTLINE_SIM_BENCH_CHARGERS", 10_000);
    let secs: u64 = env("VOLTLINE_SIM_BENCH_SECS", 60);
    let ramp: u64 = env("VOLTLINE_SIM_BENCH_RAMP_SECS", 20);
    let threads: usize = env("VOLTLINE_SIM_BENCH_THREADS", 2);
    match sys::raise_fd_limit() {
        Ok((soft, hard)) => {
            println!("open-file limit raised to {soft} (hard {hard})");
            if (soft as usize) < chargers + 200 {
                eprintln!(
                    "{chargers} chargers need ~{} descriptors; the hard limit is {hard}. \
                     Raise it (ulimit -Hn) or set VOLTLINE_SIM_BENCH_CHARGERS lower.",
                    chargers + 200
                );
                std::process::exit(2);
            }
        }
        Err(e) => eprintln!("cannot raise the open-file limit: {e}"),
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run(
        chargers,
        Duration::from_secs(secs),
        Duration::from_secs(ramp),
    ));
}

/// The sink: serves until its stdin closes (the parent exited or killed it).
fn sink_process() {
    let _ = sys::raise_fd_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let socket = tokio::net::TcpSocket::new_v4().expect("socket");
        socket.set_reuseaddr(true).expect("reuseaddr");
        socket
            .bind("127.0.0.1:0".parse().expect("addr"))
            .expect("bind");
        let listener = socket.listen(8_192).expect("listen");
        let addr = listener.local_addr().expect("addr");
        let stats = Arc::new(SinkStats::default());
        tokio::spawn(serve_sink(
            listener,
            HarnessConfig::default(),
            stats.clone(),
        ));
        println!("ADDR {addr}");
        use std::io::Write;
        let _ = std::io::stdout().flush();
        let stdin_closed = tokio::task::spawn_blocking(|| {
            let mut sink = Vec::new();
            let _ = std::io::Read::read_to_end(&mut std::io::stdin(), &mut sink);
        });
        let mut every = tokio::time::interval(Duration::from_secs(1));
        tokio::pin!(stdin_closed);
        loop {
            tokio::select! {
                _ = &mut stdin_closed => return,
                _ = every.tick() => {
                    println!(
                        "STATS {} {} {}",
                        stats.connections.load(Ordering::Relaxed),
                        stats.frames.load(Ordering::Relaxed),
                        stats.records.load(Ordering::Relaxed)
                    );
                    let _ = std::io::stdout().flush();
                }
            }
        }
    });
}

/// The sink child: its address, its last stats line, its pid.
struct Sink {
    child: std::process::Child,
    addr: String,
    stats: Arc<std::sync::Mutex<(u64, u64, u64)>>,
}

fn start_sink() -> Sink {
    use std::io::BufRead;
    let exe = std::env::current_exe().expect("current exe");
    let mut child = std::process::Command::new(exe)
        .env("VOLTLINE_SIM_BENCH_SINK", "1")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("start the sink process");
    let stdout = child.stdout.take().expect("sink stdout");
    let mut lines = std::io::BufReader::new(stdout).lines();
    let addr = loop {
        let line = lines
            .next()
            .expect("sink printed its address")
            .expect("sink stdout");
        if let Some(a) = line.strip_prefix("ADDR ") {
            break a.to_string();
        }
    };
    let stats = Arc::new(std::sync::Mutex::new((0, 0, 0)));
    let s2 = stats.clone();
    std::thread::spawn(move || {
        for line in lines.map_while(Result::ok) {
            let v: Vec<u64> = line
                .split_whitespace()
                .skip(1)
                .filter_map(|x| x.parse().ok())
                .collect();
            if let ([c, f, r], Ok(mut g)) = (v.as_slice(), s2.lock()) {
                *g = (*c, *f, *r);
            }
        }
    });
    Sink { child, addr, stats }
}

/// CPU seconds and RSS of another process (the sink).
fn proc_cpu_rss(pid: u32) -> (f64, f64) {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let rest = stat.rfind(')').map(|i| &stat[i + 2..]).unwrap_or("");
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    let cpu = (f.get(11).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0)
        + f.get(12).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0))
        / ticks.max(1.0);
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss_kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    (cpu, rss_kib / 1024.0)
}

async fn run(n: usize, window: Duration, ramp: Duration) {
    let rss_start = sys::rss_bytes().unwrap_or(0);
    let mut sink = start_sink();
    let addr = sink.addr.clone();
    let model = HarnessConfig::default().billing_model;

    let chargers = (0..n)
        .map(|i| {
            let pile =
                voltline_protocol::domain::PileCode::from_number(32_010_700_000_000 + i as u64)
                    .expect("pile");
            let mut spec = ChargerSpec::ac(pile);
            spec.billing_model = Some(model.clone());
            ChargerConfig {
                spec,
                transport: Transport::Tcp {
                    addr: addr.to_string(),
                },
            }
        })
        .collect();
    let arrivals = Arrivals {
        per_connector_per_hour: 0.0,
        start: StartMode::Card,
        session_minutes: [600, 600],
        user_stop_fraction: 0.0,
        battery_kwh: [80, 100],
        start_soc_pct: [10, 20],
        target_soc_pct: [90, 100],
        v2g_fraction: 0.0,
        plug_in_at_start: true,
    };
    let config = FleetConfig {
        chargers,
        speed: Speed::REAL_TIME,
        epoch: None,
        time_zone: "Asia/Shanghai".into(),
        state_dir: None,
        ramp,
        backoff: BackoffConfig::default(),
        seed: 42,
        workload: Some((arrivals, FaultRates::default())),
        event_capacity: 1_024,
    };
    let started = Instant::now();
    let fleet = SimFleet::spawn(config).await.expect("spawn");
    // Ramp, then 20 s for every charger to log in, start and settle into its report cycle.
    tokio::time::sleep(ramp + Duration::from_secs(20)).await;
    let sink_stats = |s: &Sink| s.stats.lock().map(|g| *g).unwrap_or_default();
    let (connected, frames, _) = sink_stats(&sink);
    println!(
        "warm-up done after {:.0} s: {connected} connections, {frames} frames so far",
        started.elapsed().as_secs_f64(),
    );
    let (sink_cpu0, _) = proc_cpu_rss(sink.child.id());

    let c = fleet.counters();
    let cpu0 = sys::process_cpu_seconds().unwrap_or(0.0);
    let sent0 = c.frames_sent.load(Ordering::Relaxed);
    let recv0 = c.frames_received.load(Ordering::Relaxed);
    let t0 = Instant::now();
    tokio::time::sleep(window).await;
    let elapsed = t0.elapsed().as_secs_f64();
    let cpu = sys::process_cpu_seconds().unwrap_or(0.0) - cpu0;
    let sent = c.frames_sent.load(Ordering::Relaxed) - sent0;
    let recv = c.frames_received.load(Ordering::Relaxed) - recv0;
    let rss = sys::rss_bytes().unwrap_or(0);
    let (sink_cpu1, sink_rss) = proc_cpu_rss(sink.child.id());
    let charging = count_charging(&fleet).await;
    let (connected, _, records) = sink_stats(&sink);

    let cpu_pct = cpu / elapsed * 100.0;
    let rss_mib = rss as f64 / (1024.0 * 1024.0);
    let per_k = n as f64 / 1_000.0;
    println!("--- voltline-sim load benchmark ---");
    println!("chargers:              {n} (sink saw {connected} connections, {records} records; charging {charging})");
    println!("measured window:       {elapsed:.1} s at a 15 s reporting interval, real time, {} worker threads", env("VOLTLINE_SIM_BENCH_THREADS", 2usize));
    println!("frames/s pile->sink:   {:.0}", sent as f64 / elapsed);
    println!("frames/s sink->pile:   {:.0}", recv as f64 / elapsed);
    println!("CPU:                   {cpu_pct:.1} % of one core (simulator process only)");
    println!(
        "RSS:                   {rss_mib:.1} MiB (at start {:.1} MiB)",
        rss_start as f64 / 1048576.0
    );
    println!(
        "sink process:          CPU {:.1} % of one core, RSS {sink_rss:.1} MiB (not counted above)",
        (sink_cpu1 - sink_cpu0) / elapsed * 100.0
    );
    let cpu_k = cpu_pct / per_k;
    let rss_k = rss_mib / per_k;
    let verdict = |ok: bool| if ok { "meets goal" } else { "MISSES goal" };
    println!(
        "per 1,000 chargers:    CPU {cpu_k:.2} % of one core (goal <= {GOAL_CPU_PCT_PER_1000} %: {}), RSS {rss_k:.1} MiB (goal <= {GOAL_RSS_MIB_PER_1000} MiB: {})",
        verdict(cpu_k <= GOAL_CPU_PCT_PER_1000),
        verdict(rss_k <= GOAL_RSS_MIB_PER_1000)
    );
    fleet.shutdown().await;
    // Closing its stdin ends the sink; kill it if it lingers (our own child, by handle).
    drop(sink.child.stdin.take());
    std::thread::sleep(Duration::from_millis(200));
    let _ = sink.child.kill();
    let _ = sink.child.wait();
}

/// Chargers with a charging connector (sampled: up to 500).
async fn count_charging(fleet: &SimFleet) -> String {
    let piles = fleet.piles();
    let step = (piles.len() / 500).max(1);
    let mut sampled = 0;
    let mut charging = 0;
    for p in piles.iter().step_by(step) {
        if let Ok(h) = fleet.charger(p) {
            if let Ok(s) = h.state().await {
                sampled += 1;
                charging += s.connectors.iter().any(|c| c.charging) as usize;
            }
        }
    }
    format!("{charging}/{sampled} sampled")
}
