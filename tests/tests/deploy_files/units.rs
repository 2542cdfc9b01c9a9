//! The hardened systemd units and the Dockerfiles.

use std::collections::BTreeMap;

use crate::{deploy_dir, read};

/// `section → key → values` (a key may repeat, e.g. `SystemCallFilter`).
pub(crate) type Unit = BTreeMap<String, BTreeMap<String, Vec<String>>>;

pub(crate) fn parse_unit(name: &str) -> Unit {
    let mut unit = Unit::new();
    let mut section = None;
    for (n, line) in read(name).lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = Some(s.to_owned());
            unit.entry(s.to_owned()).or_default();
            continue;
        }
        let s = section
            .clone()
            .unwrap_or_else(|| panic!("{name}:{}: a key before any [section]", n + 1));
        let (k, v) = line
            .split_once('=')
            .unwrap_or_else(|| panic!("{name}:{}: not KEY=VALUE: {line}", n + 1));
        unit.entry(s)
            .or_default()
            .entry(k.trim().to_owned())
            .or_default()
            .push(v.trim().to_owned());
    }
    unit
}

pub(crate) fn one<'a>(unit: &'a Unit, section: &str, key: &str) -> &'a str {
    unit.get(section)
        .and_then(|s| s.get(key))
        .and_then(|v| v.last())
        .map(String::as_str)
        .unwrap_or_else(|| panic!("[{section}] has no {key}"))
}

#[test]
pub(crate) fn systemd_units_are_hardened_and_stop_gracefully() {
    for (file, binary, config) in [
        ("voltline-edge.service", "voltline-edge", "edge"),
        ("voltline-cloud.service", "voltline-cloud", "cloud"),
    ] {
        let u = parse_unit(file);
        for section in ["Unit", "Service", "Install"] {
            assert!(u.contains_key(section), "{file} has no [{section}]");
        }
        assert!(!one(&u, "Unit", "Description").is_empty());
        assert!(one(&u, "Unit", "After").contains("network-online.target"));
        let exec = one(&u, "Service", "ExecStart");
        assert!(
            exec.starts_with(&format!("/usr/local/bin/{binary} ")),
            "{file}: ExecStart runs {binary} by absolute path: {exec}"
        );
        assert!(exec.contains(&format!("--config /etc/voltline/{config}.toml")));
        assert!(
            exec.ends_with(" run") || exec.ends_with(" serve"),
            "{file}: {exec}"
        );
        let required = [
            ("Type", "simple"),
            ("User", "voltline"),
            ("KillSignal", "SIGTERM"),
            ("NoNewPrivileges", "yes"),
            ("ProtectSystem", "strict"),
            ("ProtectHome", "yes"),
            ("PrivateTmp", "yes"),
            ("PrivateDevices", "yes"),
            ("RestrictSUIDSGID", "yes"),
            ("MemoryDenyWriteExecute", "yes"),
            ("CapabilityBoundingSet", ""),
            ("UMask", "0077"),
            ("Restart", "always"),
        ];
        for (k, v) in required {
            assert_eq!(one(&u, "Service", k), v, "{file}: {k}");
        }
        let state = one(&u, "Service", "StateDirectory");
        assert_eq!(state, binary, "{file}: StateDirectory");
        assert_eq!(
            one(&u, "Service", "ReadWritePaths"),
            format!("/var/lib/{state}")
        );
        let envs = u["Service"].get("Environment").cloned().unwrap_or_default();
        let prefix = if binary == "voltline-edge" {
            "VOLTLINE_EDGE__SITE__DATA_DIR"
        } else {
            "VOLTLINE_CLOUD__DATA_DIR"
        };
        assert!(
            envs.iter()
                .any(|e| e == &format!("{prefix}=/var/lib/{state}")),
            "{file}: the data lives in the state directory"
        );
        let credentials_from_file = u["Service"].contains_key("EnvironmentFile")
            || envs.iter().any(|e| e.contains("CREDENTIAL_FILE="));
        assert!(credentials_from_file, "{file}: secrets come from a file");
        let stop: u64 = one(&u, "Service", "TimeoutStopSec")
            .parse()
            .expect("seconds");
        assert!(
            stop >= 20,
            "{file}: TimeoutStopSec leaves the graceful stop room"
        );
        assert!(u["Service"]["SystemCallFilter"]
            .iter()
            .any(|f| f == "@system-service"));
        assert_eq!(one(&u, "Install", "WantedBy"), "multi-user.target");
    }
}

#[test]
pub(crate) fn dockerfiles_are_multi_stage_and_run_as_a_user() {
    for (file, binary) in [
        ("Dockerfile.cloud", "voltline-cloud"),
        ("Dockerfile.edge", "voltline-edge"),
    ] {
        let text = read(file);
        let froms = text.lines().filter(|l| l.starts_with("FROM ")).count();
        assert!(froms >= 2, "{file} is multi-stage");
        assert!(text.contains(&format!("cargo build --release -p {binary} --bin {binary}")));
        assert!(text.contains(&format!("COPY --from=build /src/target/release/{binary} ")));
        let user = text
            .lines()
            .rev()
            .find_map(|l| l.strip_prefix("USER "))
            .unwrap_or_else(|| panic!("{file} sets no USER"));
        assert!(
            user.trim() != "root" && user.trim() != "0",
            "{file} runs as {user}"
        );
        assert!(text.contains("STOPSIGNAL SIGTERM"));
        assert!(text.contains(&format!("ENTRYPOINT [\"{binary}\"]")));
        for line in text.lines().filter(|l| l.starts_with("COPY deploy/")) {
            let src = line
                .split_whitespace()
                .nth(1)
                .unwrap()
                .trim_start_matches("deploy/");
            assert!(
                deploy_dir().join(src).is_file(),
                "{file} copies {src}, which does not exist"
            );
        }
    }
    assert!(
        read("Dockerfile.edge").contains("VOLUME [\"/data\"]"),
        "the edge's store is a volume"
    );
}
