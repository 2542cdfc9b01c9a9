//! `voltline-cloud`: the cloud core's binary. Everything is in the library's
//! [`voltline_cloud::run_cli`], so the `voltline cloud ...` launcher runs the same code.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    voltline_cloud::run_cli(std::env::args().collect()).await
}
