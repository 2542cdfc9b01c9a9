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
    /// Daily settlement bills: issue due days, re-run or check a day against the ledger.
    #[command(subcommand)]
    Bills(BillsCommand),
}

#[derive(Debug, Subcommand)]
pub enum BillsCommand {
    /// Recompute one operator's issued bill from the ledger and report every difference;
    /// exits non-zero when anything differs.
    ///
    /// Example: voltline-cloud bills check --operator op-1 --day 2026-10-25
    Check {
        #[arg(long)]
        operator: String,
        /// The operator's local day, YYYY-MM-DD.
        #[arg(long)]
        day: String,
    },
    /// Re-run one issued day without changing it: reports whether it reproduces; exits
    /// non-zero when it does not.
    Rerun {
        #[arg(long)]
        operator: String,
        #[arg(long)]
        day: String,
    },
    /// Issue every due bill now (one pass of the scheduled job, under its lease).
    Run,
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
        CliCommand::Bills(cmd) => bills(config, cmd).await,
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

async fn bills(config: CloudConfig, cmd: BillsCommand) -> anyhow::Result<()> {
    let parse = |operator: &str, day: &str| -> anyhow::Result<_> {
        let op: voltline_protocol::domain::OperatorId = operator
            .parse()
            .with_context(|| format!("'{operator}' is not an operator id"))?;
        let day: jiff::civil::Date = day
            .parse()
            .with_context(|| format!("'{day}' is not a day; write YYYY-MM-DD"))?;
        Ok((op, day))
    };
    let store = crate::server::open_store(&config).await?;
    let outcome = match cmd {
        BillsCommand::Check { operator, day } => {
            let (op, day) = parse(&operator, &day)?;
            let r = crate::bills::check_day(&store, &op, day).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            if r.is_clean() {
                eprintln!("bill {} matches the ledger: {} sessions, gross {}, platform fees {}, operator payable {}", r.bill_id, r.bill.sessions, r.bill.gross, r.bill.platform_fees, r.bill.operator_payable);
                Ok(())
            } else {
                Err(anyhow::anyhow!("bill {} differs from the ledger in {} ways (listed above); do not pay it out before the difference is explained", r.bill_id, r.differences.len()))
            }
        }
        BillsCommand::Rerun { operator, day } => {
            let (op, day) = parse(&operator, &day)?;
            let r = crate::bills::job::rerun(&store, &op, day).await?;
            println!("{}", serde_json::to_string_pretty(&r)?);
            if r.reproduced {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "bill {} does not reproduce (differences above); the issued bill is unchanged",
                    r.bill_id
                ))
            }
        }
        BillsCommand::Run => {
            let holder = format!("voltline-cloud-cli-{}", uuid::Uuid::new_v4());
            let job = crate::bills::BillJob::new(store.clone(), config.bills.clone(), &holder);
            let r = job.run_pass(Timestamp::now()).await?;
            match r.token {
                None => println!(
                    "another instance holds the bill lease ({}); nothing done",
                    r.held_by.unwrap_or_default()
                ),
                Some(_) => {
                    for (op, day, id) in &r.issued {
                        println!("issued {id} ({op}, {day})");
                    }
                    for (op, e) in &r.failures {
                        eprintln!("operator {op}: {e}");
                    }
                    println!("{} bills issued", r.issued.len());
                }
            }
            Ok(())
        }
    };
    store.close().await;
    outcome
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
