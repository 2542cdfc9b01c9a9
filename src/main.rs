//! `voltline`: the thin all-in-one launcher. It parses the command line and hands over to the
//! crates; it owns no logic of its own beyond printing.

mod demo;
mod frame_tool;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Voltline: run EV charging networks (cloud core, site edge daemons, charger simulator) and
/// inspect the charger wire protocol.
#[derive(Parser)]
#[command(name = "voltline", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start a cloud, one edge and simulated chargers in one process with embedded defaults.
    Demo(demo::DemoArgs),
    /// Run the cloud core (same as the `voltline-cloud` binary; `voltline cloud --help`).
    #[command(disable_help_flag = true)]
    Cloud {
        /// Everything after `cloud` goes to the cloud core (`serve`, `migrate`, `token create`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a site's edge daemon (same as the `voltline-edge` binary; `voltline edge --help`).
    #[command(disable_help_flag = true)]
    Edge {
        /// Everything after `edge` goes to the edge daemon (`run`, `check-config`, ...).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run simulated chargers (same as the `voltline-sim` binary; `voltline sim --help`).
    #[command(disable_help_flag = true)]
    Sim {
        /// Everything after `sim` goes to the simulator.
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Decode and encode YKC charger frames.
    #[command(subcommand)]
    Frame(frame_tool::FrameCommand),
}

/// Runs a crate's async command line on a fresh runtime, printing its error.
fn run_async(what: &str, cli: impl std::future::Future<Output = anyhow::Result<()>>) -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("voltline {what}: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voltline {what}: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => run_async("demo", demo::run(args)),
        Command::Cloud { args } => {
            let argv = std::iter::once("voltline cloud".to_owned())
                .chain(args)
                .collect();
            run_async("cloud", voltline_cloud::run_cli(argv))
        }
        Command::Edge { args } => {
            let argv = std::iter::once("voltline edge".to_owned())
                .chain(args)
                .collect();
            run_async("edge", voltline_edge::ops::cli::run_cli(argv))
        }
        Command::Sim { args } => {
            let argv = std::iter::once("voltline sim".to_owned())
                .chain(args)
                .collect();
            match voltline_sim::cli::run_cli_blocking(argv) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("voltline sim: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Frame(cmd) => frame_tool::run(cmd),
    }
}
