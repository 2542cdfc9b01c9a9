//! `voltline`: the thin all-in-one launcher. It parses the command line and hands over to the
//! crates; it owns no logic of its own beyond printing.

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
    Demo,
    /// Run the cloud core (same as the `voltline-cloud` binary; `voltline cloud --help`).
    #[command(disable_help_flag = true)]
    Cloud {
        /// Everything after `cloud` goes to the cloud core (`serve`, `migrate`, `token create`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Run a site's edge daemon (same as the `voltline-edge` binary).
    Edge,
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

fn not_built_yet(what: &str) -> ExitCode {
    eprintln!(
        "voltline {what}: not built yet. This part of Voltline lands with its own issue; \
         until then, `voltline frame` works and `cargo test --workspace` runs the test suite."
    );
    ExitCode::from(2)
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo => not_built_yet("demo"),
        Command::Cloud { args } => {
            let argv = std::iter::once("voltline cloud".to_owned())
                .chain(args)
                .collect();
            let runtime = match tokio::runtime::Runtime::new() {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("voltline cloud: cannot start the async runtime: {e}");
                    return ExitCode::FAILURE;
                }
            };
            match runtime.block_on(voltline_cloud::run_cli(argv)) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("voltline cloud: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Edge => not_built_yet("edge"),
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
