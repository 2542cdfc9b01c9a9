//! `docker compose config -q` and `systemd-analyze verify`, where they are installed.

use std::process::Command;

use crate::{deploy_dir, read};

fn tool_answers(program: &str, args: &[&str]) -> Result<(), String> {
    match Command::new(program).args(args).output() {
        Ok(o) if o.status.success() => Ok(()),
        Ok(o) => Err(format!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&o.stderr).trim()
        )),
        Err(e) => Err(format!("{program} is not installed ({e})")),
    }
}

#[test]
fn docker_compose_config_accepts_the_compose_file() {
    if let Err(why) = tool_answers("docker", &["compose", "version"]) {
        println!("skipped: docker compose config -q because {why}");
        return;
    }
    let file = deploy_dir().join("compose.yaml");
    let out = Command::new("docker")
        .args(["compose", "-f"])
        .arg(&file)
        .args(["config", "-q"])
        .output()
        .expect("running docker compose");
    assert!(
        out.status.success(),
        "docker compose config -q refused deploy/compose.yaml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn systemd_analyze_verify_accepts_the_units() {
    if let Err(why) = tool_answers("systemd-analyze", &["--version"]) {
        println!("skipped: systemd-analyze verify because {why}");
        return;
    }
    // The binaries are not installed here: verify copies whose ExecStart runs /bin/true
    // with the same arguments, so every other key is still checked.
    let dir = tempfile::tempdir().expect("a temporary directory");
    let mut paths = Vec::new();
    for (file, binary) in [
        ("voltline-edge.service", "voltline-edge"),
        ("voltline-cloud.service", "voltline-cloud"),
    ] {
        let text = read(file).replace(
            &format!("ExecStart=/usr/local/bin/{binary} "),
            "ExecStart=/bin/true ",
        );
        let path = dir.path().join(file);
        std::fs::write(&path, text).expect("writing the copy");
        paths.push(path);
    }
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .args(&paths)
        .current_dir(dir.path())
        .output()
        .expect("running systemd-analyze");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let problems: Vec<&str> = text.lines().filter(|l| l.contains(".service")).collect();
    assert!(
        out.status.success() && problems.is_empty(),
        "systemd-analyze verify found problems:\n{text}"
    );
}
