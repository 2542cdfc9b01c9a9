//! [`CloudProcess`]: the real `voltline-cloud serve` as a child process — SQLite in a
//! temporary data directory, the embedded MQTT broker — on two 127.0.0.1 ports chosen once,
//! so that it can be SIGKILLed at any moment and started again on the same data and ports.
//!
//! Tokens come from `voltline-cloud token create` run against the same data directory (the
//! only way to issue one to a cloud that is not in this process); seeding goes through
//! [`RemoteCloud`]; the final checks open the cloud's store in this process with the
//! library's [`voltline_cloud::server::open_store`] (SQLite in WAL mode: reading beside a
//! running cloud is safe), never its SQL.
//!
//! It must never listen beyond 127.0.0.1 and never leave the child running (the
//! [`ChildGuard`] kills it on drop; the data directory goes with the `CloudProcess`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus};
use std::time::Duration;

use voltline_cloud::config::CloudConfig;
use voltline_cloud::Store;

use crate::process::{ensure_binary, free_port, spawn_binary, ChildGuard};
use crate::remote::RemoteCloud;
use crate::HarnessError;

/// How long a start may take before `/readyz` answers (a build of the binary not included).
const READY_WITHIN: Duration = Duration::from_secs(60);

/// A `voltline-cloud serve` child and its data.
pub struct CloudProcess {
    child: Option<ChildGuard>,
    env: Vec<(String, String)>,
    http: SocketAddr,
    mqtt: SocketAddr,
    admin: String,
    starts: usize,
    // Dropped last: the directory after the child.
    dir: tempfile::TempDir,
}

impl CloudProcess {
    /// The cloud with test-friendly timings (dispatch every 50 ms, redelivery after 1 s,
    /// settlement every 100 ms, no rate limit to speak of: those of `CloudOptions::default`),
    /// `RUST_LOG=info`, and `extra` environment on top (`VOLTLINE_CLOUD__...` keys override).
    pub async fn start(extra: &[(&str, &str)]) -> Result<CloudProcess, HarnessError> {
        let fast = [
            ("VOLTLINE_CLOUD__SESSIONS__DISPATCH_INTERVAL_MS", "50"),
            ("VOLTLINE_CLOUD__SESSIONS__REDELIVER_AFTER_MS", "1000"),
            ("VOLTLINE_CLOUD__SETTLEMENT__INTERVAL_MS", "100"),
            ("VOLTLINE_CLOUD__HTTP__RATE_LIMIT_PER_S", "1000000"),
            ("VOLTLINE_CLOUD__HTTP__RATE_LIMIT_BURST", "1000000"),
            ("RUST_LOG", "info,rumqttd=warn,rumqttd::router::routing=off"),
        ];
        let mut env = fast.to_vec();
        env.extend_from_slice(extra);
        CloudProcess::start_with_env(&env).await
    }

    /// The cloud with the binary's own defaults and only `extra` environment on top.
    pub async fn start_with_env(extra: &[(&str, &str)]) -> Result<CloudProcess, HarnessError> {
        let dir = tempfile::tempdir()?;
        let http = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mqtt = SocketAddr::from(([127, 0, 0, 1], free_port()));
        let mut env: Vec<(String, String)> = vec![
            (
                "VOLTLINE_CLOUD__DATA_DIR".into(),
                dir.path().join("cloud").display().to_string(),
            ),
            ("VOLTLINE_CLOUD__DATABASE_URL".into(), String::new()),
            ("VOLTLINE_CLOUD__HTTP__LISTEN".into(), http.to_string()),
            ("VOLTLINE_CLOUD__MQTT__MODE".into(), "embedded".into()),
            ("VOLTLINE_CLOUD__MQTT__LISTEN".into(), mqtt.to_string()),
        ];
        for (k, v) in extra {
            env.retain(|(key, _)| key != k);
            env.push(((*k).to_owned(), (*v).to_owned()));
        }
        let mut cloud = CloudProcess {
            child: None,
            env,
            http,
            mqtt,
            admin: String::new(),
            starts: 0,
            dir,
        };
        cloud.admin = cloud.create_token("admin", None)?;
        cloud.start_again().await?;
        Ok(cloud)
    }

    /// `voltline-cloud token create --role ROLE [--subject S]` against the data directory;
    /// returns the token.
    pub fn create_token(&self, role: &str, subject: Option<&str>) -> Result<String, HarnessError> {
        let bin = ensure_binary("voltline-cloud")?;
        let mut args = vec!["token", "create", "--role", role];
        if let Some(s) = subject {
            args.extend(["--subject", s]);
        }
        let out = Command::new(bin)
            .args(&args)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .output()?;
        if !out.status.success() {
            return Err(HarnessError::Contract(format!(
                "voltline-cloud token create --role {role} failed ({}): {}",
                out.status,
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    }

    /// Starts the cloud (again) on the same data and ports and waits until `/readyz`
    /// answers; a no-op while it runs.
    pub async fn start_again(&mut self) -> Result<(), HarnessError> {
        if self.child.is_some() {
            return Ok(());
        }
        let env = self.env.clone();
        let child = tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> =
                env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            spawn_binary("voltline-cloud", &["serve"], &env)
        })
        .await
        .map_err(|e| HarnessError::Contract(format!("spawning the cloud: {e}")))??;
        self.child = Some(child);
        self.starts += 1;
        let api = self.api()?;
        let ready = api.wait_ready(READY_WITHIN);
        tokio::pin!(ready);
        loop {
            tokio::select! {
                r = &mut ready => {
                    return r.map_err(|e| HarnessError::Timeout(format!("{e}\n{}", self.log())));
                }
                () = tokio::time::sleep(Duration::from_millis(200)) => {
                    if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                        return Err(HarnessError::Contract(format!(
                            "the cloud exited at start ({status}):\n{}",
                            self.log()
                        )));
                    }
                }
            }
        }
    }

    /// SIGKILL: a crash, nothing flushed or closed.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
        }
    }

    /// SIGTERM, then SIGKILL after `grace`: a clean stop. Returns how it exited (`None`
    /// when it was not running).
    pub fn terminate(&mut self, grace: Duration) -> std::io::Result<Option<ExitStatus>> {
        match self.child.take() {
            Some(mut c) => c.terminate(grace),
            None => Ok(None),
        }
    }

    /// The running child's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(ChildGuard::id)
    }

    /// True while a child runs (it may have crashed by itself: see [`CloudProcess::exited`]).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// `Some(log)` when the child exited by itself.
    pub fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => Some(format!("exited ({status}):\n{}", c.log())),
            _ => None,
        }
    }

    /// How many times it was started.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// What the running child logged so far.
    pub fn log(&self) -> String {
        self.child.as_ref().map(ChildGuard::log).unwrap_or_default()
    }

    /// HTTP.
    pub fn http_addr(&self) -> SocketAddr {
        self.http
    }

    /// The embedded broker.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.mqtt
    }

    /// The admin token.
    pub fn admin_token(&self) -> &str {
        &self.admin
    }

    /// An admin client of the cloud's HTTP API.
    pub fn api(&self) -> Result<RemoteCloud, HarnessError> {
        RemoteCloud::new(format!("http://{}", self.http), self.admin.clone())
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("cloud")
    }

    /// The cloud's store, opened in this process on the same data (the cloud may run).
    pub async fn open_store(&self) -> Result<Store, HarnessError> {
        let config = CloudConfig {
            data_dir: self.data_dir(),
            database_url: String::new(),
            ..CloudConfig::default()
        };
        Ok(voltline_cloud::server::open_store(&config).await?)
    }
}
