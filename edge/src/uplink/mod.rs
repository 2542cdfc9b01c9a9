//! The uplink to the cloud: records up, acknowledgements, commands and config notices down.
//!
//! - **MQTT** ([`rumqttc`] to the cloud's broker): a persistent session (clean session off,
//!   client id = username = site id, password = the site's edge credential), QoS 1, a
//!   retained [`SiteStatus`](voltline_protocol::sync::SiteStatus) online message after every
//!   connect and the offline one as the last will, keep-alive, jittered exponential backoff
//!   between reconnects ([`backoff`]).
//! - **Records up** ([`driver`], deciding with the pure [`window::Window`]): only records the
//!   store flushed (`seq <= Store::durable_head`), in batches of at most
//!   `batch_max_records` / `batch_max_bytes`, a bounded window of unacknowledged batches, a
//!   short linger to fill batches. The outbox is trimmed only on the cloud's cumulative
//!   [`Ack`](voltline_protocol::sync::Ack). After a reconnect everything unacknowledged is
//!   sent again (at-least-once; the cloud deduplicates by (site, seq)).
//! - **Backlog replay** ([`replay`]): on connect with more than `replay_threshold_records`
//!   unacknowledged, the backlog goes up over HTTP first — gzip `RecordBatch`es to
//!   `POST {http}/v1/edges/{site}/records` with the bearer token, trimmed on each returned
//!   ack — then live MQTT takes the rest. A failing replay falls back to MQTT.
//! - **Commands down** ([`commands`]): manual MQTT acks. A command is stored durably (the
//!   inbox deduplicates by id) before its delivery is acknowledged; a new one gets a
//!   `Received` result record and goes to the site on the bounded `commands` channel; one
//!   already expired is not forwarded and gets an `Expired` result; duplicates are only
//!   acknowledged; malformed ones are counted and acknowledged (never redelivered forever).
//! - **Site config** ([`site_config`]): `GET {http}/v1/edges/{site}/config` at start, on a
//!   newer config notice and periodically (jittered); validated, cached with
//!   `Store::put_site_config` (version only moves forward), chargers merged into the
//!   [`ChargerDirectory`].
//!
//! Tasks, so that no task both polls the event loop and waits on it (a rumqttc deadlock):
//! the poll task ([`mqtt`]) only polls, sorts incoming messages and uses non-blocking
//! `try_ack`; the driver publishes (rumqttc's request queue is sized above everything that can
//! be queued at once, so `publish` does not wait on the poll task); the command and config
//! tasks never wait on the poll task either.
//!
//! What this module must never do: send a record above the durable head, trim before the
//! cloud's ack, acknowledge a command before it is on disk, log the credential, or let a
//! queue or batch grow without a bound.

mod backoff;
mod commands;
mod driver;
mod mqtt;
mod replay;
mod site_config;
mod window;
mod wire;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use voltline_protocol::domain::SiteId;
use voltline_protocol::sync::{CommandEnvelope, MAX_HTTP_BATCH_RECORDS, MAX_MQTT_BATCH_RECORDS};

use crate::ops::metrics::EdgeMetrics;
pub use crate::ops::metrics::UplinkState;
use crate::ports::ChargerDirectory;
use crate::store::{GroupCommitter, Store};

pub use backoff::Backoff;
pub use window::{AckOutcome, SendPlan, Window, WindowConfig};

/// Where and how the edge reaches the cloud. [`UplinkConfig::new`] fills every bound with its
/// default; units are in the field names.
#[derive(Clone)]
pub struct UplinkConfig {
    /// The site: MQTT client id and username, and the path of the HTTP routes.
    pub site: SiteId,
    /// The cloud's MQTT broker.
    pub mqtt_host: String,
    pub mqtt_port: u16,
    /// The site's edge credential: the MQTT password and the HTTP bearer token. Never logged.
    pub credential: String,
    /// The cloud's HTTP base URL, e.g. `https://cloud.example` (a trailing `/` is ignored).
    pub http_base: String,
    /// MQTT keep-alive, seconds (at least 1).
    pub keep_alive_s: u64,
    /// Longest a connect (TCP + CONNACK) may take, seconds.
    pub connect_timeout_s: u64,
    /// Most records in one MQTT batch (at most `sync::MAX_MQTT_BATCH_RECORDS`).
    pub batch_max_records: usize,
    /// Most bytes of one MQTT batch payload (keep it under the broker's packet limit; one
    /// record larger than this still goes alone).
    pub batch_max_bytes: usize,
    /// Most unacknowledged MQTT batches in flight.
    pub window_batches: usize,
    /// Longest a short batch waits for more records, milliseconds.
    pub linger_ms: u64,
    /// With batches in flight and no ack for this long, send again from the ack, milliseconds.
    pub ack_timeout_ms: u64,
    /// Reconnect and retry backoff: first ceiling and cap, milliseconds.
    pub backoff_base_ms: u64,
    pub backoff_cap_ms: u64,
    /// On connect with more unacknowledged records than this, replay over HTTP first.
    pub replay_threshold_records: u64,
    /// Most records in one HTTP replay batch (at most `sync::MAX_HTTP_BATCH_RECORDS`).
    pub http_batch_max_records: usize,
    /// Most bytes of one HTTP replay batch before compression (keep it under the cloud's
    /// body limit, 16 MiB by default; two batches are in memory at once).
    pub http_batch_max_bytes: usize,
    /// Longest one HTTP request may take, milliseconds.
    pub http_timeout_ms: u64,
    /// Period of the config refresh, seconds (each wait is jittered by ±20 %).
    pub config_refresh_s: u64,
    /// Largest config document accepted, bytes.
    pub config_max_bytes: usize,
    /// Deliveries waiting to be acknowledged in order (commands are stored first).
    pub command_queue: usize,
}

impl UplinkConfig {
    /// A config with the default bounds.
    pub fn new(
        site: SiteId,
        mqtt_host: impl Into<String>,
        mqtt_port: u16,
        credential: impl Into<String>,
        http_base: impl Into<String>,
    ) -> UplinkConfig {
        UplinkConfig {
            site,
            mqtt_host: mqtt_host.into(),
            mqtt_port,
            credential: credential.into(),
            http_base: http_base.into(),
            keep_alive_s: 30,
            connect_timeout_s: 10,
            batch_max_records: MAX_MQTT_BATCH_RECORDS,
            batch_max_bytes: 512 * 1024,
            window_batches: 8,
            linger_ms: 5,
            ack_timeout_ms: 20_000,
            backoff_base_ms: 200,
            backoff_cap_ms: 30_000,
            replay_threshold_records: 5_000,
            http_batch_max_records: MAX_HTTP_BATCH_RECORDS,
            http_batch_max_bytes: 4 * 1024 * 1024,
            http_timeout_ms: 60_000,
            config_refresh_s: 300,
            config_max_bytes: 64 * 1024 * 1024,
            command_queue: 64,
        }
    }

    /// Checks the bounds.
    pub fn validate(&self) -> Result<(), UplinkError> {
        let bad = |what: String| Err(UplinkError::InvalidConfig(what));
        if self.mqtt_host.is_empty() {
            return bad("mqtt_host is empty".into());
        }
        if !(self.http_base.starts_with("http://") || self.http_base.starts_with("https://")) {
            return bad(format!(
                "http_base {:?} must start with http:// or https://",
                self.http_base
            ));
        }
        if self.credential.is_empty() {
            return bad("the edge credential is empty".into());
        }
        if self.batch_max_records == 0 || self.batch_max_records > MAX_MQTT_BATCH_RECORDS {
            return bad(format!(
                "batch_max_records must be 1..={MAX_MQTT_BATCH_RECORDS}"
            ));
        }
        if self.http_batch_max_records == 0 || self.http_batch_max_records > MAX_HTTP_BATCH_RECORDS
        {
            return bad(format!(
                "http_batch_max_records must be 1..={MAX_HTTP_BATCH_RECORDS}"
            ));
        }
        if self.window_batches == 0 || self.window_batches > 1_000 {
            return bad("window_batches must be 1..=1000".into());
        }
        if self.keep_alive_s == 0 || self.command_queue == 0 || self.config_refresh_s == 0 {
            return bad("keep_alive_s, command_queue and config_refresh_s must be above 0".into());
        }
        if self.batch_max_bytes < 1_024 || self.http_batch_max_bytes < 1_024 {
            return bad("batch_max_bytes and http_batch_max_bytes must be at least 1024".into());
        }
        Ok(())
    }

    fn base(&self) -> &str {
        self.http_base.trim_end_matches('/')
    }

    fn records_url(&self) -> String {
        format!("{}/v1/edges/{}/records", self.base(), self.site)
    }

    fn config_url(&self) -> String {
        format!("{}/v1/edges/{}/config", self.base(), self.site)
    }
}

impl fmt::Debug for UplinkConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UplinkConfig")
            .field("site", &self.site)
            .field(
                "mqtt",
                &format_args!("{}:{}", self.mqtt_host, self.mqtt_port),
            )
            .field("credential", &"<redacted>")
            .field("http_base", &self.http_base)
            .field("batch_max_records", &self.batch_max_records)
            .field("window_batches", &self.window_batches)
            .field("replay_threshold_records", &self.replay_threshold_records)
            .finish_non_exhaustive()
    }
}

/// Why the uplink could not start.
#[derive(Debug, thiserror::Error)]
pub enum UplinkError {
    #[error("uplink config: {0}; fix the uplink section of the edge config")]
    InvalidConfig(String),
    #[error("could not build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

/// The running uplink.
#[derive(Debug)]
pub struct UplinkHandle {
    /// Down, replaying the backlog over HTTP, or live on MQTT.
    pub state: watch::Receiver<UplinkState>,
    /// When the cloud was last heard from (any MQTT packet from the broker, or an HTTP
    /// answer), to a second; `None` before the first. The V2G dead-man reads it.
    pub last_cloud_contact: watch::Receiver<Option<Timestamp>>,
    /// Ends after shutdown, once the offline status was published (when connected).
    pub join: JoinHandle<()>,
}

/// What the tasks share.
struct Ctx {
    cfg: UplinkConfig,
    store: Store,
    metrics: Arc<EdgeMetrics>,
    http: reqwest::Client,
    contact: watch::Sender<Option<Timestamp>>,
}

impl Ctx {
    /// The cloud answered: note it, to a second.
    fn contact(&self) {
        let now = Timestamp::now();
        self.contact.send_if_modified(|c| match c {
            Some(t) if now.duration_since(*t) < jiff::SignedDuration::from_secs(1) => false,
            _ => {
                *c = Some(now);
                true
            }
        });
    }
}

/// The connection as the poll task reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct LinkState {
    /// Bumped on every CONNACK.
    generation: u64,
    connected: bool,
    /// The generation whose subscriptions the broker acknowledged (SUBACK).
    subscribed: u64,
}

/// The uplink's entry point.
pub struct Uplink;

impl Uplink {
    /// Starts the uplink's tasks on the current runtime. Commands go to the site on
    /// `commands` (bounded: a slow site slows command intake, never memory). Stops at
    /// `shutdown`, publishing the offline status first when connected.
    pub fn spawn(
        cfg: UplinkConfig,
        store: Store,
        committer: GroupCommitter,
        directory: ChargerDirectory,
        metrics: Arc<EdgeMetrics>,
        commands: mpsc::Sender<CommandEnvelope>,
        shutdown: CancellationToken,
    ) -> Result<UplinkHandle, UplinkError> {
        cfg.validate()?;
        let http = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.http_timeout_ms))
            .connect_timeout(Duration::from_secs(cfg.connect_timeout_s))
            .build()?;
        let (contact, last_cloud_contact) = watch::channel(None);
        let (state_tx, state) = watch::channel(UplinkState::Down);
        metrics.set_uplink(UplinkState::Down);
        let ctx = Arc::new(Ctx {
            cfg,
            store,
            metrics,
            http,
            contact,
        });
        let (client, eventloop) = mqtt::client(&ctx.cfg);
        let (link_tx, link_rx) = watch::channel(LinkState::default());
        let (acks_tx, acks_rx) = watch::channel(0u64);
        let (notice_tx, notice_rx) = watch::channel(0u64);
        let (cmd_tx, cmd_rx) = mpsc::channel(ctx.cfg.command_queue);

        let poll = tokio::spawn(mqtt::poll(
            ctx.clone(),
            eventloop,
            mqtt::Outlets {
                link: link_tx,
                acks: acks_tx,
                notices: notice_tx,
                deliveries: cmd_tx,
            },
            shutdown.clone(),
        ));
        let driver = tokio::spawn(driver::run(
            ctx.clone(),
            client.clone(),
            link_rx,
            acks_rx,
            state_tx,
            shutdown.clone(),
        ));
        let cmds = tokio::spawn(commands::run(
            ctx.clone(),
            client,
            committer,
            cmd_rx,
            commands,
            shutdown.clone(),
        ));
        let conf = tokio::spawn(site_config::run(ctx, directory, notice_rx, shutdown));
        let join = tokio::spawn(async move {
            for (name, task) in [
                ("driver", driver),
                ("poll", poll),
                ("commands", cmds),
                ("config", conf),
            ] {
                if let Err(e) = task.await {
                    tracing::error!(task = name, error = %e, "uplink task ended abnormally");
                }
            }
        });
        Ok(UplinkHandle {
            state,
            last_cloud_contact,
            join,
        })
    }
}
