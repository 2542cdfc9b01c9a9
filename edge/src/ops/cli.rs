//! The `voltline-edge` command line (also reached as `voltline edge ...` through
//! [`run_cli`]).

use std::io::BufRead;
use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};

use super::config::EdgeConfig;
use crate::daemon::Running;

/// Voltline edge: the daemon on a charging site's industrial PC.
///
/// It takes chargers in over TCP (YKC frames) and MQTT (an embedded broker; each charger logs
/// in with its pile code and password and reaches only its own topics), runs one state
/// machine per connector, keeps every record in a durable outbox on disk (acknowledging a
/// charger's transaction record only once it is flushed), and syncs with the cloud over MQTT,
/// replaying a backlog over HTTP after an outage. With the cloud unreachable the site keeps
/// charging: card starts against the cached authorisation list, local pricing with the cached
/// tariff, and a stop when a session's limit is used up.
///
/// Configuration: embedded defaults, then the TOML file given with --config, then environment
/// variables VOLTLINE_EDGE__SECTION__KEY (for example VOLTLINE_EDGE__SITE__ID=berlin-3 or
/// VOLTLINE_EDGE__CLOUD__MQTT=cloud.example.com:1883). deploy/edge.example.toml lists every key.
#[derive(Debug, Parser)]
#[command(name = "voltline-edge", version, about, long_about)]
pub struct Cli {
    /// A TOML configuration file.
    #[arg(long, short, global = true, env = "VOLTLINE_EDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format.
    #[arg(long, global = true, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    #[command(subcommand)]
    pub command: CliCommand,
}

/// How logs are written (to standard error).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the edge until Ctrl-C or SIGTERM (records are flushed before it exits).
    Run,
    /// Load the configuration, check it, print it (secrets redacted) and exit.
    CheckConfig,
    /// Read a charger password from standard input and print the SHA-256 to put in
    /// `[[chargers]] password_sha256` (keeps the password out of the config file).
    HashPassword,
    /// Ask a running edge for its health (GET /healthz on ops.listen) and print it.
    Status,
}

/// Runs the command line `argv` (argv[0] is the program name).
pub async fn run_cli(argv: Vec<String>) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| e.exit());
    match cli.command {
        CliCommand::Run => {
            init_logging(cli.log_format);
            let config = EdgeConfig::load(cli.config.as_deref())?;
            let running = Running::start(config)
                .await
                .context("the edge could not start")?;
            let token = running.shutdown_token();
            tokio::spawn(async move {
                wait_for_signal().await;
                tracing::info!("stopping: flushing records and telling the cloud");
                token.cancel();
            });
            running.run_until_stopped().await?;
            Ok(())
        }
        CliCommand::CheckConfig => {
            let config = EdgeConfig::load(cli.config.as_deref())?;
            println!("{config:#?}");
            println!("configuration is valid");
            Ok(())
        }
        CliCommand::HashPassword => {
            let mut line = String::new();
            std::io::stdin()
                .lock()
                .read_line(&mut line)
                .context("reading the password from standard input")?;
            let password = line.trim_end_matches(['\r', '\n']);
            anyhow::ensure!(!password.is_empty(), "no password on standard input");
            println!("{}", crate::ports::directory::hash_credential(password));
            Ok(())
        }
        CliCommand::Status => {
            let config = EdgeConfig::load(cli.config.as_deref())?;
            let url = format!("http://{}/healthz", config.ops.listen);
            let body = reqwest::get(&url)
                .await
                .with_context(|| format!("no edge answers at {url}; is it running?"))?
                .text()
                .await?;
            println!("{body}");
            Ok(())
        }
    }
}

/// The log filter without `RUST_LOG`: our own info lines; the embedded broker's warnings
/// only (its router reports every charger that disconnects as an error).
pub const DEFAULT_LOG_FILTER: &str = "info,rumqttd=warn,rumqttd::router::routing=off";

fn init_logging(format: LogFormat) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(DEFAULT_LOG_FILTER));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Json => builder.json().try_init(),
    };
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
