//! Starting and stopping a whole cloud instance: the store, the funds, the MQTT side, the
//! command dispatcher and the HTTP server, in that order; stopping reverses it (HTTP drains
//! requests in flight, the dispatcher finishes its tick, MQTT tasks disconnect, the store
//! closes). Tests and the benchmark run instances on `127.0.0.1:0` through [`Running`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::CloudConfig;
use crate::funds::Funds;
use crate::money::{LedgerWriter, SqlFunds, SqlFundsConfig, WriterConfig};
use crate::state::{AppState, WalletOpener};
use crate::Store;
use voltline_protocol::Money;

/// Why the cloud could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Store(#[from] crate::StoreError),
    #[error(transparent)]
    Mqtt(#[from] crate::mqtt::MqttError),
    #[error("cannot listen for HTTP on {addr}: {source}; choose a free address with http.listen")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// Opens the configured store (SQLite in the data directory unless a URL is set).
pub async fn open_store(config: &CloudConfig) -> Result<Store, crate::StoreError> {
    match config.database_url() {
        Some(url) => Store::open(url).await,
        None => Store::open_in_dir(&config.data_dir).await,
    }
}

/// The SQL-backed funds over `store`, and the hook that opens new accounts' wallets.
pub fn sql_funds(store: &Store, config: &CloudConfig) -> (Arc<dyn Funds>, WalletOpener) {
    let writer = LedgerWriter::start(store.clone(), WriterConfig::default(), None);
    let funds = SqlFunds::new(
        writer,
        SqlFundsConfig {
            default_hold: Money::from_yuan(config.sessions.default_hold_yuan),
            minimum_hold: Money::from_yuan(config.sessions.minimum_hold_yuan),
        },
    );
    let opener_funds = funds.clone();
    let opener: WalletOpener = Arc::new(move |account| {
        let f = opener_funds.clone();
        Box::pin(async move {
            f.open_wallet(&account, Money::ZERO)
                .await
                .map_err(|e| e.to_string())
        })
    });
    (Arc::new(funds), opener)
}

/// A running instance.
pub struct Running {
    pub state: AppState,
    pub http_addr: SocketAddr,
    http: JoinHandle<std::io::Result<()>>,
    dispatcher: JoinHandle<()>,
}

/// Starts the MQTT side, the dispatcher and HTTP on `listener` for `state`.
pub async fn start(state: AppState, listener: TcpListener) -> Result<Running, StartError> {
    let http_addr = listener.local_addr().map_err(|source| StartError::Listen {
        addr: state.config.http.listen,
        source,
    })?;
    let sink = crate::mqtt::start(&state).await?;
    let dispatcher = tokio::spawn(crate::dispatch::run(state.clone(), sink));
    let http = tokio::spawn(crate::api::serve(listener, state.clone()));
    state.set_ready(true);
    tracing::info!(%http_addr, mqtt = ?state.config.mqtt.mode, "voltline-cloud serving");
    Ok(Running {
        state,
        http_addr,
        http,
        dispatcher,
    })
}

/// Binds `config.http.listen`, opens the store and the SQL funds, and starts.
pub async fn start_from_config(config: CloudConfig) -> Result<Running, StartError> {
    let store = open_store(&config).await?;
    let (funds, opener) = sql_funds(&store, &config);
    let addr = config.http.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let mut state = AppState::new(store, funds, config);
    state.wallet_opener = Some(opener);
    start(state, listener).await
}

impl Running {
    /// Stops gracefully: not ready, no new requests, requests in flight finish (bounded by
    /// `grace`), background tasks stop, the store closes.
    pub async fn stop(self, grace: Duration) {
        self.state.set_ready(false);
        self.state.shutdown.trigger();
        let _ = tokio::time::timeout(grace, self.http).await;
        let _ = tokio::time::timeout(grace, self.dispatcher).await;
        self.state.store.close().await;
    }
}
