//! [`TestCloud`]: the real cloud (`voltline_cloud::server::start_from_config`: SQL store, SQL
//! ledger, settlement loop, embedded MQTT broker, HTTP API) in this process, on SQLite in a
//! temporary directory or on PostgreSQL in a schema of its own, with HTTP on 127.0.0.1:0 and
//! the broker on a free 127.0.0.1 port.
//!
//! Edges reach it through two [`LinkCutter`]s, one in front of the broker and one in front of
//! HTTP ([`TestCloud::edge_mqtt_addr`], [`TestCloud::edge_http_base`]): those addresses stay
//! the same across [`TestCloud::restart`], and a test cuts or stalls the edge's link with
//! [`TestCloud::mqtt_link`] / [`TestCloud::http_link`]. The test's own calls
//! ([`TestCloud::call`] and the seeding helpers in `seed.rs`) go straight to HTTP.
//!
//! Restarts: [`TestCloud::stop`] cuts both links (edges see the cloud go away) and stops the
//! instance, keeping its data; [`TestCloud::start_again`] starts a new instance on the same
//! data and points the links at it. rumqttd cannot be stopped, so the old broker thread keeps
//! its port (refusing every login, its auth task being gone) and each start takes a new one;
//! the links hide that from edges.
//!
//! It must never listen beyond 127.0.0.1 and never leave a PostgreSQL schema behind (dropped
//! with the `TestCloud`).

use std::net::SocketAddr;
use std::time::Duration;

use reqwest::Method;
use serde_json::Value;
use voltline_cloud::config::{CloudConfig, MqttMode};
use voltline_cloud::domain::Actor;
use voltline_cloud::server::{self, Running};
use voltline_cloud::store::NewToken;
use voltline_cloud::{AppState, Store};

use crate::link::LinkCutter;
use crate::pg::PgSchema;
use crate::process::free_port;
use crate::HarnessError;

/// How long requests in flight get when the cloud stops.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long the embedded broker may take to listen.
const BROKER_START: Duration = Duration::from_secs(10);

/// How to run the cloud.
#[derive(Debug, Clone)]
pub struct CloudOptions {
    /// The configuration to start from; the harness sets the data directory, the database
    /// URL, both listen addresses and the MQTT mode (embedded) on top of it.
    pub config: CloudConfig,
    /// `Some(postgres://...)`: run on PostgreSQL, in a fresh schema of that database.
    pub postgres_url: Option<String>,
}

impl Default for CloudOptions {
    /// SQLite, with test-friendly timings: dispatch every 50 ms, redelivery after 1 s,
    /// settlement every 100 ms, no rate limit to speak of.
    fn default() -> Self {
        let mut config = CloudConfig::default();
        config.sessions.dispatch_interval_ms = 50;
        config.sessions.redeliver_after_ms = 1_000;
        config.settlement.interval_ms = 100;
        config.http.rate_limit_per_s = 1_000_000;
        config.http.rate_limit_burst = 1_000_000;
        CloudOptions {
            config,
            postgres_url: None,
        }
    }
}

impl CloudOptions {
    /// The defaults on PostgreSQL at `url`.
    pub fn postgres(url: impl Into<String>) -> CloudOptions {
        CloudOptions {
            postgres_url: Some(url.into()),
            ..CloudOptions::default()
        }
    }

    /// PostgreSQL when `VOLTLINE_TEST_PG` is set, SQLite otherwise.
    pub fn from_env() -> CloudOptions {
        match std::env::var("VOLTLINE_TEST_PG") {
            Ok(url) if !url.is_empty() => CloudOptions::postgres(url),
            _ => CloudOptions::default(),
        }
    }
}

/// A cloud instance for one test. Stop it with [`TestCloud::shutdown`] (dropping it also
/// stops its tasks, less gracefully).
pub struct TestCloud {
    running: Option<Running>,
    config: CloudConfig,
    mqtt_link: LinkCutter,
    http_link: LinkCutter,
    pub(crate) http: reqwest::Client,
    admin: String,
    // Dropped last: the schema after the pools close, the directory after the files.
    pg: Option<PgSchema>,
    dir: tempfile::TempDir,
}

impl TestCloud {
    /// Starts the cloud and issues an admin token.
    pub async fn start(opts: CloudOptions) -> Result<TestCloud, HarnessError> {
        let dir = tempfile::tempdir()?;
        let mut config = opts.config;
        config.data_dir = dir.path().join("cloud");
        let pg = match &opts.postgres_url {
            Some(url) => Some(PgSchema::create(url).await?),
            None => None,
        };
        config.database_url = pg.as_ref().map(PgSchema::url).unwrap_or_default();
        let running = launch(&mut config).await?;
        let mqtt_link = LinkCutter::start(broker_addr(&config)?).await?;
        let http_link = LinkCutter::start(running.http_addr).await?;
        let admin = issue(&running.state.store, Actor::Admin).await?;
        Ok(TestCloud {
            running: Some(running),
            config,
            mqtt_link,
            http_link,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(30))
                .build()?,
            admin,
            pg,
            dir,
        })
    }

    /// The running instance's shared state (store, funds, config). Panics while stopped.
    pub fn state(&self) -> &AppState {
        &self
            .running
            .as_ref()
            .expect("the cloud is stopped: start_again() first")
            .state
    }

    /// The running instance's store.
    pub fn store(&self) -> &Store {
        &self.state().store
    }

    /// True between a start and a stop.
    pub fn is_running(&self) -> bool {
        self.running.is_some()
    }

    /// The configuration the instance runs with (actual ports filled in).
    pub fn config(&self) -> &CloudConfig {
        &self.config
    }

    /// The PostgreSQL schema the instance runs in (`None` on SQLite).
    pub fn postgres_schema(&self) -> Option<&str> {
        self.pg.as_ref().map(PgSchema::name)
    }

    /// The data directory (SQLite database and anything else the cloud writes).
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    /// HTTP of the running instance, directly (not through the link).
    pub fn http_addr(&self) -> SocketAddr {
        self.running
            .as_ref()
            .map_or(self.config.http.listen, |r| r.http_addr)
    }

    /// The embedded broker of the running instance, directly.
    pub fn mqtt_addr(&self) -> SocketAddr {
        self.config.mqtt.listen
    }

    /// Where an edge connects for MQTT (through [`TestCloud::mqtt_link`]); stable across
    /// restarts.
    pub fn edge_mqtt_addr(&self) -> SocketAddr {
        self.mqtt_link.addr()
    }

    /// The HTTP base URL an edge uses (through [`TestCloud::http_link`]), e.g.
    /// `http://127.0.0.1:40123`; stable across restarts.
    pub fn edge_http_base(&self) -> String {
        format!("http://{}", self.http_link.addr())
    }

    /// The proxy between edges and the broker.
    pub fn mqtt_link(&self) -> &LinkCutter {
        &self.mqtt_link
    }

    /// The proxy between edges and HTTP.
    pub fn http_link(&self) -> &LinkCutter {
        &self.http_link
    }

    /// An admin bearer token.
    pub fn admin_token(&self) -> &str {
        &self.admin
    }

    /// Issues a bearer token for `actor` (as `voltline-cloud token create` does).
    pub async fn issue_token(&self, actor: Actor) -> Result<String, HarnessError> {
        issue(self.store(), actor).await
    }

    /// Cuts both edge links and stops the instance gracefully, keeping its data.
    pub async fn stop(&mut self) {
        self.mqtt_link.cut();
        self.http_link.cut();
        if let Some(r) = self.running.take() {
            r.stop(STOP_GRACE).await;
        }
    }

    /// Starts a new instance on the same data (new ports), points the links at it and
    /// restores them.
    pub async fn start_again(&mut self) -> Result<(), HarnessError> {
        if self.running.is_some() {
            return Ok(());
        }
        let running = launch(&mut self.config).await?;
        self.mqtt_link.set_upstream(broker_addr(&self.config)?)?;
        self.http_link.set_upstream(running.http_addr)?;
        self.running = Some(running);
        self.mqtt_link.restore();
        self.http_link.restore();
        Ok(())
    }

    /// [`TestCloud::stop`] then [`TestCloud::start_again`].
    pub async fn restart(&mut self) -> Result<(), HarnessError> {
        self.stop().await;
        self.start_again().await
    }

    /// Stops the instance and removes its data.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// An HTTP call to the running instance: (status, JSON body, or the text as a JSON string).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Result<(u16, Value), HarnessError> {
        let mut req = self
            .http
            .request(method, format!("http://{}{path}", self.http_addr()));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        Ok((status, json))
    }

    /// A call that must answer `want`; returns the body.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
        want: u16,
    ) -> Result<Value, HarnessError> {
        let (status, answer) = self.call(method.clone(), path, Some(token), body).await?;
        if status == want {
            Ok(answer)
        } else {
            Err(HarnessError::Api {
                call: format!("{method} {path}"),
                status,
                body: answer.to_string(),
            })
        }
    }
}

/// Starts an instance with `config`, choosing a free broker port and HTTP port 0, and waits
/// until the broker listens. Writes the ports used back into `config`.
/// Starts an instance: the embedded broker on a fresh free port (rumqttd cannot be stopped,
/// so a restart needs a new one), or the external broker the config names.
async fn launch(config: &mut CloudConfig) -> Result<Running, HarnessError> {
    if config.mqtt.mode == MqttMode::Embedded {
        config.mqtt.listen = SocketAddr::from(([127, 0, 0, 1], free_port()));
    }
    config.http.listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let running = server::start_from_config(config.clone()).await?;
    wait_listening(broker_addr(config)?, BROKER_START).await?;
    Ok(running)
}

/// Where edges reach the cloud's broker: the embedded one, or the external one.
fn broker_addr(config: &CloudConfig) -> Result<SocketAddr, HarnessError> {
    match config.mqtt.mode {
        MqttMode::External => {
            let addr = format!("{}:{}", config.mqtt.broker_host, config.mqtt.broker_port);
            std::net::ToSocketAddrs::to_socket_addrs(&addr)?
                .next()
                .ok_or_else(|| HarnessError::Contract(format!("no address for broker {addr}")))
        }
        _ => Ok(config.mqtt.listen),
    }
}

async fn issue(store: &Store, actor: Actor) -> Result<String, HarnessError> {
    let issued = store
        .create_token(&NewToken {
            actor,
            label: "voltline-tests".into(),
            expires_at: None,
        })
        .await?;
    Ok(issued.secret.expose().to_owned())
}

/// Waits until something accepts TCP connections at `addr`.
pub async fn wait_listening(addr: SocketAddr, within: Duration) -> Result<(), HarnessError> {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if tokio::net::TcpStream::connect(addr).await.is_ok() {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(HarnessError::Timeout(format!(
                "nothing listens at {addr} after {within:?}"
            )));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
