//! The `voltline-edge` binary: the command line of [`voltline_edge::ops::cli`].

use std::process::ExitCode;

fn main() -> ExitCode {
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("voltline-edge: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(voltline_edge::ops::cli::run_cli(std::env::args().collect())) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("voltline-edge: {e:#}");
            ExitCode::FAILURE
        }
    }
}
