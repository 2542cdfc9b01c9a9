//! The command line: `voltline-sim [flags]` and `voltline sim [flags]` (the launcher calls
//! [`run_cli`] or [`run_cli_blocking`]). Flags override the scenario file's values.

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

use voltline_protocol::message::common::PhysicalCardNo;

use crate::charger::ChargerKind;
use crate::fleet::{FleetOptions, SimFleet};
use crate::scenario::{MixEntry, Scenario, TransportKind};
use crate::workload::StartMode;

/// Simulated EV chargers speaking the YKC v1.6 protocol (with Voltline's V2G extension) to
/// an edge over TCP or MQTT: sessions, billing records resent until confirmed, reconnects
/// with jittered backoff, and fault injection. Flags override the scenario file.
#[derive(Debug, Parser)]
#[command(name = "voltline-sim", version, about, long_about = None)]
pub struct Cli {
    /// Scenario file (TOML); see the crate docs (`scenario` module) for every key.
    #[arg(long, value_name = "FILE")]
    pub scenario: Option<PathBuf>,
    /// Print the resolved scenario as TOML and exit (a starting point for a file).
    #[arg(long)]
    pub print_scenario: bool,

    /// Number of chargers.
    #[arg(long, short = 'n', value_name = "N")]
    pub chargers: Option<usize>,
    /// Transport for every charger (a scenario's `[[mix]]` entries may override it).
    #[arg(long, value_enum)]
    pub transport: Option<TransportKind>,
    /// The edge's charger port for TCP, host:port.
    #[arg(long, value_name = "HOST:PORT")]
    pub edge: Option<String>,
    /// The MQTT broker for MQTT, host:port (implies --transport mqtt).
    #[arg(long, value_name = "HOST:PORT")]
    pub mqtt: Option<String>,
    /// MQTT password of every pile (the username is the pile code).
    #[arg(
        long,
        env = "VOLTLINE_SIM_MQTT_PASSWORD",
        hide_env_values = true,
        value_name = "PASSWORD"
    )]
    pub mqtt_password: Option<String>,
    /// Pile code of the first charger (14 digits); the others count up from it.
    #[arg(long, value_name = "CODE")]
    pub first_pile: Option<String>,

    /// Make every charger this kind (replaces the scenario's mix).
    #[arg(long, value_enum)]
    pub kind: Option<KindArg>,
    /// Rated power per connector with --kind, kW (AC 7; DC 60-160).
    #[arg(long, value_name = "KW", requires = "kind")]
    pub power_kw: Option<u32>,
    /// Connectors per charger with --kind (1 or 2).
    #[arg(long, value_name = "N", requires = "kind")]
    pub connectors: Option<u8>,
    /// Chargers are V2G-capable, with --kind.
    #[arg(long, requires = "kind")]
    pub v2g: bool,

    /// Speed-up factor: simulated seconds per real second (3600 runs an hour per second).
    #[arg(long, value_name = "FACTOR")]
    pub speed: Option<f64>,
    /// Real-time data interval while charging, simulated seconds.
    #[arg(long, value_name = "SECONDS")]
    pub report_interval: Option<u32>,
    /// Spread first connections over this many real seconds.
    #[arg(long, value_name = "SECONDS")]
    pub ramp: Option<f64>,
    /// Connect every charger at once (a reconnect storm), ignoring --ramp.
    #[arg(long)]
    pub storm: bool,
    /// The site's IANA time zone; pile clocks show its local time.
    #[arg(long, value_name = "ZONE")]
    pub time_zone: Option<String>,
    /// Keep each pile's flash (unconfirmed records, meters, sessions) in this directory and
    /// resend what was unconfirmed when restarted.
    #[arg(long, value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// Also append every record that enters a pile's flash to
    /// <state-dir>/<pile>.records.jsonl (an audit trail for tests; one line per session).
    #[arg(long, requires = "state_dir")]
    pub record_journal: bool,
    /// Card starts use card FIRST at the first charger, FIRST+1 at the second, and so on,
    /// every session (16 hex digits), so the platform can register them; default: a random
    /// card each time.
    #[arg(long, value_name = "FIRST")]
    pub first_card: Option<PhysicalCardNo>,
    /// Seed of every random choice (arrivals, faults, jitter).
    #[arg(long)]
    pub seed: Option<u64>,
    /// Run this many real seconds, then stop (default: until Ctrl-C).
    #[arg(long, value_name = "SECONDS")]
    pub duration: Option<u64>,
    /// Print fleet counters every this many real seconds (0: never).
    #[arg(long, value_name = "SECONDS", default_value_t = 10)]
    pub stats_every: u64,

    /// Vehicle arrivals per free connector per simulated hour.
    #[arg(long, value_name = "RATE")]
    pub arrivals_per_hour: Option<f64>,
    /// How sessions start: a card swipe (0x31), the VIN (0x31), or the platform (0x34).
    #[arg(long, value_enum)]
    pub start: Option<StartArg>,
    /// Planned stay of a vehicle, simulated minutes, as MIN-MAX.
    #[arg(long, value_name = "MIN-MAX", value_parser = parse_range)]
    pub session_minutes: Option<[u32; 2]>,
    /// Fraction of users who stop at the pile when their stay is over (0..1).
    #[arg(long, value_name = "FRACTION")]
    pub user_stop_fraction: Option<f64>,
    /// Plug a vehicle into every connector at start-up (load tests).
    #[arg(long)]
    pub plug_in_at_start: bool,

    /// Fault: dropped connections per charger per simulated hour.
    #[arg(long, value_name = "RATE")]
    pub drop_per_hour: Option<f64>,
    /// Fault: bursts of garbage bytes on the wire per charger per hour.
    #[arg(long, value_name = "RATE")]
    pub garbage_per_hour: Option<f64>,
    /// Fault: duplicated frames per charger per hour.
    #[arg(long, value_name = "RATE")]
    pub duplicate_per_hour: Option<f64>,
    /// Fault: reordered frame pairs per charger per hour.
    #[arg(long, value_name = "RATE")]
    pub reorder_per_hour: Option<f64>,
    /// Fault: reboots per charger per hour.
    #[arg(long, value_name = "RATE")]
    pub reboot_per_hour: Option<f64>,
    /// Fault: power losses per charger per hour (sessions billed from flash afterwards).
    #[arg(long, value_name = "RATE")]
    pub power_loss_per_hour: Option<f64>,
    /// How long a power loss lasts, simulated seconds.
    #[arg(long, value_name = "SECONDS")]
    pub power_off: Option<u32>,
    /// Fault: fraction of chargers whose clock starts at 1970 (0..1).
    #[arg(long, value_name = "FRACTION")]
    pub clock_1970_fraction: Option<f64>,
    /// Fault: fraction of chargers with a skewed clock (0..1).
    #[arg(long, value_name = "FRACTION")]
    pub clock_skew_fraction: Option<f64>,
    /// Largest clock skew, minutes either way.
    #[arg(long, value_name = "MINUTES")]
    pub clock_skew_max_minutes: Option<i64>,
    /// Fault: firmware zeroes the meter registers on every reboot.
    #[arg(long)]
    pub meter_reset_on_reboot: bool,

    /// Log filter (tracing `EnvFilter` syntax), e.g. `info` or `voltline_sim=debug`.
    #[arg(long, env = "RUST_LOG", default_value = "info", value_name = "FILTER")]
    pub log: String,
}

/// `--kind`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum KindArg {
    Ac,
    Dc,
}

/// `--start`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StartArg {
    Card,
    Vin,
    Remote,
}

fn parse_range(s: &str) -> Result<[u32; 2], String> {
    let (a, b) = s.split_once('-').ok_or("write MIN-MAX, e.g. 20-120")?;
    let a: u32 = a
        .trim()
        .parse()
        .map_err(|_| format!("'{a}' is not a number"))?;
    let b: u32 = b
        .trim()
        .parse()
        .map_err(|_| format!("'{b}' is not a number"))?;
    if a > b {
        return Err(format!("{a} is above {b}"));
    }
    Ok([a, b])
}

impl Cli {
    /// The scenario file (or the defaults) with the flags applied.
    pub fn scenario(&self) -> anyhow::Result<Scenario> {
        let mut s = match &self.scenario {
            Some(p) => Scenario::load(p)?,
            None => Scenario::default(),
        };
        macro_rules! set {
            ($flag:expr => $field:expr) => {
                if let Some(v) = $flag.clone() {
                    $field = v;
                }
            };
        }
        set!(self.chargers => s.chargers);
        set!(self.transport => s.transport);
        set!(self.edge => s.edge);
        if let Some(m) = &self.mqtt {
            s.mqtt_broker = m.clone();
            s.transport = TransportKind::Mqtt;
        }
        set!(self.mqtt_password => s.mqtt_password);
        set!(self.first_pile => s.first_pile_code);
        if let Some(kind) = self.kind {
            let kind = match kind {
                KindArg::Ac => ChargerKind::Ac,
                KindArg::Dc => ChargerKind::Dc,
            };
            s.mix = vec![MixEntry {
                kind,
                power_kw: self
                    .power_kw
                    .unwrap_or(if kind == ChargerKind::Ac { 7 } else { 120 }),
                connectors: self.connectors.unwrap_or(1),
                v2g: self.v2g,
                weight: 1,
                transport: None,
            }];
        }
        set!(self.speed => s.speed);
        set!(self.report_interval => s.report_interval_s);
        set!(self.ramp => s.ramp_s);
        s.storm |= self.storm;
        set!(self.time_zone => s.time_zone);
        if let Some(d) = &self.state_dir {
            s.state_dir = Some(d.clone());
        }
        set!(self.seed => s.seed);
        set!(self.duration => s.duration_s);
        set!(self.arrivals_per_hour => s.arrivals.per_connector_per_hour);
        if let Some(start) = self.start {
            s.arrivals.start = match start {
                StartArg::Card => StartMode::Card,
                StartArg::Vin => StartMode::Vin,
                StartArg::Remote => StartMode::Remote,
            };
        }
        set!(self.session_minutes => s.arrivals.session_minutes);
        set!(self.user_stop_fraction => s.arrivals.user_stop_fraction);
        s.arrivals.plug_in_at_start |= self.plug_in_at_start;
        set!(self.drop_per_hour => s.faults.drop_per_hour);
        set!(self.garbage_per_hour => s.faults.garbage_per_hour);
        set!(self.duplicate_per_hour => s.faults.duplicate_per_hour);
        set!(self.reorder_per_hour => s.faults.reorder_per_hour);
        set!(self.reboot_per_hour => s.faults.reboot_per_hour);
        set!(self.power_loss_per_hour => s.faults.power_loss_per_hour);
        set!(self.power_off => s.faults.power_off_s);
        set!(self.clock_1970_fraction => s.faults.clock_1970_fraction);
        set!(self.clock_skew_fraction => s.faults.clock_skew_fraction);
        set!(self.clock_skew_max_minutes => s.faults.clock_skew_max_minutes);
        s.faults.meter_reset_on_reboot |= self.meter_reset_on_reboot;
        Ok(s)
    }
}

impl Cli {
    /// What the flags ask of the fleet beyond the scenario.
    pub fn fleet_options(&self) -> FleetOptions {
        FleetOptions {
            first_card: self.first_card,
            record_journal: self.record_journal,
        }
    }
}

/// Runs the simulator with `args` (`args[0]` is the program name). `--help` and `--version`
/// print and return `Ok`.
pub async fn run_cli(args: Vec<String>) -> anyhow::Result<()> {
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) if !e.use_stderr() => {
            // A closed stdout (`| head`) is not an error of ours.
            let _ = e.print();
            return Ok(());
        }
        Err(e) => return Err(anyhow::anyhow!("{e}")),
    };
    let _ = tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .try_init();
    let scenario = cli.scenario()?;
    if cli.print_scenario {
        let mut shown = scenario.clone();
        if !shown.mqtt_password.is_empty() {
            // Never echo a secret: pass it with --mqtt-password / VOLTLINE_SIM_MQTT_PASSWORD.
            shown.mqtt_password = "<redacted>".into();
        }
        print!("{}", shown.to_toml());
        return Ok(());
    }
    let config = scenario.fleet_config()?;
    if config.chargers.len() > 500 {
        match crate::sys::raise_fd_limit() {
            Ok((soft, _)) if (soft as usize) < config.chargers.len() * 2 + 100 => tracing::warn!(
                "open-file limit {soft} is low for {} chargers; raise the hard limit (ulimit -Hn)",
                config.chargers.len()
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("cannot raise the open-file limit: {e}"),
        }
    }
    tracing::info!(
        chargers = config.chargers.len(),
        speed = scenario.speed,
        transport = ?scenario.transport,
        "starting simulated chargers"
    );
    let fleet = SimFleet::spawn_with(config, cli.fleet_options())
        .await
        .context("starting the fleet")?;
    let run = async {
        let mut every = tokio::time::interval(Duration::from_secs(cli.stats_every.max(1)));
        every.tick().await;
        loop {
            every.tick().await;
            if cli.stats_every > 0 {
                let c = fleet.counters();
                tracing::info!(
                    connects = c.connects.load(Ordering::Relaxed),
                    disconnects = c.disconnects.load(Ordering::Relaxed),
                    frames_sent = c.frames_sent.load(Ordering::Relaxed),
                    frames_received = c.frames_received.load(Ordering::Relaxed),
                    bad_frames = c.bad_frames.load(Ordering::Relaxed),
                    "fleet"
                );
            }
        }
    };
    let limit = async {
        if scenario.duration_s > 0 {
            tokio::time::sleep(Duration::from_secs(scenario.duration_s)).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        _ = run => {}
        _ = limit => tracing::info!("duration reached"),
        r = tokio::signal::ctrl_c() => {
            r.context("waiting for Ctrl-C")?;
            tracing::info!("interrupted");
        }
    }
    fleet.shutdown().await;
    Ok(())
}

/// [`run_cli`] on a runtime of its own, for a synchronous `main` (the launcher).
pub fn run_cli_blocking(args: Vec<String>) -> anyhow::Result<()> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?
        .block_on(run_cli(args))
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn every_flag_has_help() {
        Cli::command().debug_assert();
        for arg in Cli::command().get_arguments() {
            assert!(arg.get_help().is_some(), "--{} has no help", arg.get_id());
        }
    }

    #[test]
    fn flags_override_the_scenario() {
        let cli = Cli::try_parse_from([
            "voltline-sim",
            "-n",
            "3",
            "--kind",
            "dc",
            "--power-kw",
            "160",
            "--v2g",
            "--mqtt",
            "127.0.0.1:1884",
            "--session-minutes",
            "5-10",
        ])
        .unwrap();
        let s = cli.scenario().unwrap();
        assert_eq!(s.chargers, 3);
        assert_eq!(s.transport, TransportKind::Mqtt);
        assert_eq!(s.mix[0].power_kw, 160);
        assert!(s.mix[0].v2g);
        assert_eq!(s.arrivals.session_minutes, [5, 10]);
        assert_eq!(cli.fleet_options(), FleetOptions::default());
    }

    #[test]
    fn cards_and_the_journal_are_fleet_options() {
        let cli = Cli::try_parse_from([
            "voltline-sim",
            "--state-dir",
            "/tmp/x",
            "--record-journal",
            "--first-card",
            "CA4D000000000001",
        ])
        .unwrap();
        let o = cli.fleet_options();
        assert!(o.record_journal);
        assert_eq!(o.first_card, Some("CA4D000000000001".parse().unwrap()));
        assert!(Cli::try_parse_from(["voltline-sim", "--record-journal"]).is_err());
        assert!(Cli::try_parse_from(["voltline-sim", "--first-card", "xyz"]).is_err());
    }
}
