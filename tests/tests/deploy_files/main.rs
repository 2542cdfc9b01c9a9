//! CI check of `deploy/`: the compose file, the configs it and the units use, the systemd
//! units and the Dockerfiles are valid and agree with each other and with the code.
//!
//! No Docker engine is needed (nor started): `deploy/compose.yaml` is parsed (`yaml-rust2`,
//! with anchors, merge keys and `${VAR:-default}` interpolation resolved as Compose does with
//! an empty environment) and checked for its services, images or builds, ports, healthchecks,
//! volumes, networks and dependencies, and every file it mounts must exist. Every TOML config
//! in `deploy/` goes through the real loaders, and so does each cloud and edge service's
//! configuration as the container would see it (the image's `ENV`, the mounted file, the
//! service's environment). When the tools exist, `docker compose config -q` and
//! `systemd-analyze verify` run too; otherwise the test prints `skipped: ... because ...`.

use std::path::{Path, PathBuf};

mod compose;
mod compose_model;
mod units;
mod validators;

fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn read(name: &str) -> String {
    let path = deploy_dir().join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
