//! The whole edge daemon in one value: opens the store, starts the group committer, the
//! charger ports, the uplink, the site task and the operations endpoint from an
//! [`EdgeConfig`], and stops them in the order that loses nothing.
//!
//! Shutdown order: the ports stop taking frames and the site submits what its last turn
//! recorded and waits for it to be durable; the uplink publishes the offline status; the
//! group committer drains once every handle is gone; the store is flushed a last time.
//! Nothing here decides a protocol question.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::ops::config::{ConfigProblem, EdgeConfig};
use crate::ops::http::{self, OpsState};
use crate::ops::metrics::{EdgeMetrics, UplinkState};
use crate::ports::mqtt::{MqttPort, MqttPortConfig, PortError};
use crate::ports::tcp::{TcpPort, TcpPortConfig};
use crate::ports::ChargerDirectory;
use crate::site::{Site, SiteDeps, SiteError, SiteOptions, SiteView};
use crate::store::{GroupCommitConfig, GroupCommitter, Store, StoreConfig, StoreError};
use crate::uplink::{Uplink, UplinkConfig, UplinkError};

/// Port events queued towards the site before the ports slow their reads.
pub const EVENT_QUEUE: usize = 8_192;

/// Commands queued from the uplink towards the site.
pub const COMMAND_QUEUE: usize = 1_024;

/// Why the daemon could not start or stopped badly.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error(transparent)]
    Config(#[from] ConfigProblem),
    #[error(
        "cannot create the data directory {dir}: {source}; check site.data_dir and its permissions"
    )]
    DataDir { dir: String, source: std::io::Error },
    #[error("cannot open the store in {dir}: {source}")]
    StoreOpen { dir: String, source: StoreError },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen for TCP chargers on {addr}: {source}; check that the address is free")]
    TcpBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Mqtt(#[from] PortError),
    #[error("cannot serve /metrics and /healthz on {addr}: {source}; check ops.listen")]
    OpsBind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Uplink(#[from] UplinkError),
    #[error(transparent)]
    Site(#[from] SiteError),
    #[error("cloud.credential is empty: set it to the site's edge token (voltline cloud token create --role edge --site <site>) or set cloud.enabled = false")]
    NoCredential,
}

/// A running edge.
pub struct Running {
    /// The TCP charger port's address, when enabled.
    pub tcp_addr: Option<SocketAddr>,
    /// The MQTT charger port's address, when enabled.
    pub mqtt_addr: Option<SocketAddr>,
    /// `/metrics`, `/healthz`, `/readyz`.
    pub ops_addr: SocketAddr,
    pub store: Store,
    pub metrics: Arc<EdgeMetrics>,
    pub directory: ChargerDirectory,
    pub site: watch::Receiver<SiteView>,
    pub uplink: watch::Receiver<UplinkState>,
    shutdown: CancellationToken,
    site_task: JoinHandle<Result<(), SiteError>>,
    others: Vec<JoinHandle<()>>,
    mqtt: Option<MqttPort>,
    committer_task: JoinHandle<()>,
    grace: Duration,
}

impl Running {
    /// Starts everything `config` enables.
    pub async fn start(config: EdgeConfig) -> Result<Running, DaemonError> {
        config.check()?;
        let site_id = config.site_id()?;
        let metrics = Arc::new(EdgeMetrics::default());
        let registry = Arc::new(metrics.registry());
        let store_config = StoreConfig {
            max_bytes: config.store.max_bytes,
            thin_at_pct: config.store.thin_at_pct,
            refuse_at_pct: config.store.refuse_at_pct,
            cache_bytes: config.store.cache_bytes,
            ..StoreConfig::default()
        };
        std::fs::create_dir_all(&config.site.data_dir).map_err(|source| DaemonError::DataDir {
            dir: config.site.data_dir.display().to_string(),
            source,
        })?;
        let store =
            Store::open(config.site.data_dir.join("store"), store_config).map_err(|source| {
                DaemonError::StoreOpen {
                    dir: config.site.data_dir.display().to_string(),
                    source,
                }
            })?;
        let (committer, committer_task) =
            GroupCommitter::spawn(store.clone(), GroupCommitConfig::default());
        let directory = ChargerDirectory::new(config.charger_entries()?);
        if let Some(cached) = store.site_config() {
            directory.merge(cached.chargers.iter().map(|c| crate::ports::ChargerEntry {
                pile: c.pile,
                credential_sha256: Some(c.credential_sha256.clone()),
            }));
        }
        let shutdown = CancellationToken::new();
        let (events_tx, events_rx) = mpsc::channel(EVENT_QUEUE);
        let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
        let mut others = Vec::new();

        let mut tcp_addr = None;
        if config.tcp.enabled {
            let port = TcpPort::bind(TcpPortConfig {
                listen: config.tcp.listen,
                max_connections: config.tcp.max_connections,
                ..TcpPortConfig::default()
            })
            .map_err(|source| DaemonError::TcpBind {
                addr: config.tcp.listen,
                source,
            })?;
            tcp_addr = Some(port.local_addr().map_err(|source| DaemonError::TcpBind {
                addr: config.tcp.listen,
                source,
            })?);
            others.push(tokio::spawn(port.run(
                directory.clone(),
                events_tx.clone(),
                metrics.clone(),
                shutdown.clone(),
            )));
        }
        let mut mqtt = None;
        if config.mqtt.enabled {
            let port = MqttPort::start(
                MqttPortConfig {
                    listen: config.mqtt.listen,
                    max_connections: config.mqtt.max_connections,
                    ..MqttPortConfig::default()
                },
                directory.clone(),
                events_tx.clone(),
                metrics.clone(),
                shutdown.clone(),
            )
            .await?;
            mqtt = Some(port);
        }
        let mqtt_addr = mqtt.as_ref().map(MqttPort::local_addr);
        drop(events_tx);

        let mut cloud_contact = None;
        let (uplink_state, uplink) = if config.cloud.enabled {
            let credential = config.credential()?;
            if credential.is_empty() {
                return Err(DaemonError::NoCredential);
            }
            let (host, port) = config.cloud_mqtt()?;
            let cfg = UplinkConfig::new(
                site_id.clone(),
                host,
                port,
                credential.expose(),
                config.cloud.http.clone(),
            );
            let handle = Uplink::spawn(
                cfg,
                store.clone(),
                committer.clone(),
                directory.clone(),
                metrics.clone(),
                commands_tx,
                shutdown.clone(),
            )?;
            others.push(handle.join);
            cloud_contact = Some(handle.last_cloud_contact);
            (handle.state.clone(), handle.state)
        } else {
            drop(commands_tx);
            let (tx, rx) = watch::channel(UplinkState::Down);
            // Keep the sender alive for the daemon's life: the state stays "down".
            others.push(tokio::spawn({
                let shutdown = shutdown.clone();
                async move {
                    shutdown.cancelled().await;
                    drop(tx);
                }
            }));
            (rx.clone(), rx)
        };

        let mut site = Site::new(
            SiteOptions {
                time_zone: config.time_zone()?,
                grid: config.grid_options(),
                ..SiteOptions::default()
            },
            SiteDeps {
                store: store.clone(),
                committer,
                directory: directory.clone(),
                metrics: metrics.clone(),
            },
        )?;
        if let Some(contact) = cloud_contact {
            site = site.with_cloud_contact(contact);
        }
        let site_view = site.view();
        let site_task = tokio::spawn(site.run(events_rx, commands_rx, shutdown.clone()));

        let listener =
            http::bind(config.ops.listen)
                .await
                .map_err(|source| DaemonError::OpsBind {
                    addr: config.ops.listen,
                    source,
                })?;
        let ops_addr = listener
            .local_addr()
            .map_err(|source| DaemonError::OpsBind {
                addr: config.ops.listen,
                source,
            })?;
        let ops = OpsState {
            registry,
            store: store.clone(),
            site: site_view.clone(),
            uplink: uplink_state,
            ports_up: config.tcp.enabled || config.mqtt.enabled,
        };
        others.push(tokio::spawn({
            let shutdown = shutdown.clone();
            async move {
                if let Err(e) = http::serve(listener, ops, shutdown).await {
                    tracing::error!(error = %e, "the operations endpoint stopped");
                }
            }
        }));
        tracing::info!(
            site = %site_id,
            tcp = ?tcp_addr,
            mqtt = ?mqtt_addr,
            ops = %ops_addr,
            cloud = config.cloud.enabled,
            "edge running"
        );
        Ok(Running {
            tcp_addr,
            mqtt_addr,
            ops_addr,
            store,
            metrics,
            directory,
            site: site_view,
            uplink,
            shutdown,
            site_task,
            others,
            mqtt,
            committer_task,
            grace: Duration::from_millis(config.ops.shutdown_grace_ms),
        })
    }

    /// A token that stops the daemon when cancelled (for signal handlers).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until something cancels the shutdown token, then stops.
    pub async fn run_until_stopped(self) -> Result<(), DaemonError> {
        self.shutdown.cancelled().await;
        self.stop().await
    }

    /// Stops everything, flushing what the site recorded.
    pub async fn stop(self) -> Result<(), DaemonError> {
        self.shutdown.cancel();
        let site = match tokio::time::timeout(self.grace, self.site_task).await {
            Ok(Ok(result)) => result.map_err(DaemonError::from),
            Ok(Err(e)) => {
                tracing::error!(error = %e, "the site task ended abnormally");
                Ok(())
            }
            Err(_) => {
                tracing::error!("the site did not stop within the grace period");
                Ok(())
            }
        };
        for task in self.others {
            if tokio::time::timeout(self.grace, task).await.is_err() {
                tracing::warn!("a task did not stop within the grace period");
            }
        }
        if let Some(mqtt) = self.mqtt {
            let _ = tokio::time::timeout(self.grace, mqtt.stopped()).await;
        }
        let _ = tokio::time::timeout(self.grace, self.committer_task).await;
        self.store.flush().await?;
        site
    }
}
