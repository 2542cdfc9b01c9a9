//! [`EdgeProcess`]: the real edge daemon (`voltline-edge run`) as a child process with its
//! data in a directory of the test's, so that it can be SIGKILLed at any moment and started
//! again on the same data and ports; and [`EdgeSetup`], the configuration file it runs from.
//!
//! It must never listen beyond 127.0.0.1 and never leave the child running (the
//! [`ChildGuard`] kills it on drop).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::process::{free_port, spawn_binary, ChildGuard};
use crate::HarnessError;

/// What an edge needs to know: its site, where the cloud is and its one secret.
#[derive(Debug, Clone)]
pub struct EdgeSetup {
    pub site: String,
    pub time_zone: String,
    /// The cloud's broker (or a link in front of it).
    pub cloud_mqtt: SocketAddr,
    /// The cloud's HTTP base URL, e.g. `http://127.0.0.1:8080`.
    pub cloud_http: String,
    /// The edge bearer token (also its MQTT password).
    pub credential: String,
}

/// An edge daemon child.
pub struct EdgeProcess {
    config: PathBuf,
    tcp: SocketAddr,
    child: Option<ChildGuard>,
    starts: usize,
}

impl EdgeProcess {
    /// Writes `<dir>/edge.toml` for `setup` (data in `<dir>/edge`, the charger port and the
    /// operations port on free 127.0.0.1 ports, the edge's own broker off) and starts it.
    pub async fn start(dir: &Path, setup: &EdgeSetup) -> Result<EdgeProcess, HarnessError> {
        let (tcp, ops) = (free_port(), free_port());
        let text = format!(
            r#"
[site]
id = "{site}"
time_zone = "{zone}"
data_dir = "{data}"
[tcp]
listen = "127.0.0.1:{tcp}"
[mqtt]
enabled = false
[ops]
listen = "127.0.0.1:{ops}"
shutdown_grace_ms = 3000
[cloud]
mqtt = "{mqtt}"
http = "{http}"
credential = "{credential}"
"#,
            site = setup.site,
            zone = setup.time_zone,
            data = dir.join("edge").display(),
            mqtt = setup.cloud_mqtt,
            http = setup.cloud_http,
            credential = setup.credential,
        );
        let config = dir.join("edge.toml");
        std::fs::write(&config, text)?;
        let mut edge = EdgeProcess {
            config,
            tcp: SocketAddr::from(([127, 0, 0, 1], tcp)),
            child: None,
            starts: 0,
        };
        edge.start_again().await?;
        Ok(edge)
    }

    /// Where chargers connect (TCP).
    pub fn charger_addr(&self) -> SocketAddr {
        self.tcp
    }

    /// Starts it (again) on the same data and ports; a no-op while it runs.
    pub async fn start_again(&mut self) -> Result<(), HarnessError> {
        if self.child.is_some() {
            return Ok(());
        }
        let config = self.config.display().to_string();
        let child = tokio::task::spawn_blocking(move || {
            spawn_binary(
                "voltline-edge",
                &["--config", &config, "run"],
                &[("RUST_LOG", "info,rumqttd=warn,rumqttd::router::routing=off")],
            )
        })
        .await
        .map_err(|e| HarnessError::Contract(format!("spawning the edge: {e}")))??;
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL: a crash, nothing flushed or closed.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
        }
    }

    /// `Some(log)` when the child exited by itself.
    pub fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => Some(format!("exited ({status}):\n{}", c.log())),
            _ => None,
        }
    }

    /// What the running child logged so far.
    pub fn log(&self) -> String {
        self.child.as_ref().map(ChildGuard::log).unwrap_or_default()
    }

    /// How many times it was started.
    pub fn starts(&self) -> usize {
        self.starts
    }
}
