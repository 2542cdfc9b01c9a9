//! The `voltline-cloud` command line (also reached as `voltline cloud ...` through
//! [`run_cli`]).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Parser, Subcommand};
use jiff::{SignedDuration, Timestamp};

use crate::config::CloudConfig;
use crate::domain::{Actor, Role};
use crate::store::NewToken;

/// How long requests in flight get to finish on shutdown.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Voltline cloud core: HTTP API, MQTT side for edges, orders, commands and money.
///
/// Configuration comes from embedded defaults (SQLite in ./voltline-data/cloud, HTTP on
/// 127.0.0.1:8080, embedded MQTT broker on 127.0.0.1:1884), then the TOML file given with
/// --config, then environment variables VOLTLINE_CLOUD__SECTION__KEY (for example
/// VOLTLINE_CLOUD__HTTP__LISTEN=0.0.0.0:8080 or VOLTLINE_CLOUD__DATABASE_URL=postgres://...).
/// See deploy/cloud.example.toml for every key.
#[derive(Debug, Parser)]
#[command(name = "voltline-cloud", version, about, long_about)]
pub struct Cli {
    /// A TOML configuration file.
    #[arg(long, short, global = true, env = "VOLTLINE_CLOUD_CONFIG")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: CliCommand,
}

#[derive(Debug, Subcommand)]
pub enum CliCommand {
    /// Run the cloud: HTTP API, MQTT side and command dispatcher, until Ctrl-C or SIGTERM.
    Serve,
    /// Create or upgrade the database schema, then exit.
    Migrate,
    /// Manage bearer tokens.
    #[command(subcommand)]
    Token(TokenCommand),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Issue a token and print it once (only its hash is stored).
    ///
    /// Examples:
    ///   voltline-cloud token create --role admin
    ///   voltline-cloud token create --role operator --subject op-1
    ///   voltline-cloud token create --role driver --subject acct-42
    ///   voltline-cloud token create --role edge --subject site-7
    Create {
        /// admin, operator, driver or edge.
        #[arg(long)]
        role: Role,
        /// The operator, account or site the token acts for (none for admin).
        #[arg(long)]
        subject: Option<String>,
        /// What the token is for, for people.
        #[arg(long, default_value = "issued by voltline-cloud token create")]
        label: String,
        /// Days until it expires (never, if absent).
        #[arg(long)]
        expires_in_days: Option<u32>,
    },
}

/// Runs the CLI with `args` (the first is the program name), as `main` does.
pub async fn run_cli(args: Vec<String>) -> anyhow::Result<()> {
    let cli = Cli::try_parse_from(args).unwrap_or_else(|e| e.exit());
    init_tracing();
    let config = CloudConfig::load(cli.config.as_deref())?;
    match cli.command {
        CliCommand::Serve => serve(config).await,
        CliCommand::Migrate => {
            let store = crate::server::open_store(&config).await?;
            store.close().await;
            println!("database schema is up to date");
            Ok(())
        }
        CliCommand::Token(TokenCommand::Create {
            role,
            subject,
            label,
            expires_in_days,
        }) => {
            let actor = Actor::from_parts(role, subject.as_deref())
                .context("the role and subject do not make a token holder")?;
            let expires_at = expires_in_days
                .map(|d| Timestamp::now() + SignedDuration::from_hours(i64::from(d) * 24));
            let store = crate::server::open_store(&config).await?;
            let issued = store
                .create_token(&NewToken {
                    actor,
                    label,
                    expires_at,
                })
                .await?;
            store.close().await;
            eprintln!("token {} issued; it is shown only now:", issued.id);
            println!("{}", issued.secret.expose());
            Ok(())
        }
    }
}

async fn serve(config: CloudConfig) -> anyhow::Result<()> {
    let running = crate::server::start_from_config(config).await?;
    wait_for_signal().await;
    tracing::info!("shutting down");
    running.stop(SHUTDOWN_GRACE).await;
    Ok(())
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        if let Ok(mut term) = signal(SignalKind::terminate()) {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
            return;
        }
    }
    let _ = tokio::signal::ctrl_c().await;
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
