//! `voltline-sim`: runs simulated chargers. All the work is in the library's `cli::run_cli`.

fn main() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(voltline_sim::cli::run_cli(std::env::args().collect()))
}
