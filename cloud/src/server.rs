//! Starting and stopping a whole cloud instance: the store, the funds, the MQTT side, the
//! command dispatcher, the settlement loop (SQL funds only) and the HTTP server, in that
//! order; stopping reverses it (HTTP drains requests in flight, the dispatcher and the
//! settlement loop finish their pass, MQTT tasks disconnect, the store closes). Tests and the
//! benchmark run instances on `127.0.0.1:0` through [`Running`].

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::config::CloudConfig;
use crate::funds::Funds;
use crate::ledger::PlatformFeeRule;
use crate::money::{
    HoldSweeper, LedgerWriter, Settler, SettlerConfig, SqlFunds, SqlFundsConfig, TariffCache,
    WriterConfig,
};
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
    #[error("settlement.platform_fee_percent is invalid: {0}")]
    Settlement(String),
    #[error("the [webhooks] configuration is invalid: {0}")]
    Billing(String),
    #[error("the [payments] configuration is invalid: {0}")]
    Payments(String),
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
    let (funds, opener) = sql_ledger(store, config);
    (Arc::new(funds), opener)
}

/// [`SqlFunds`] over a new ledger writer on `store` (its [`SqlFunds::writer`] serves the
/// settlement loop too), and the hook that opens new accounts' wallets.
pub fn sql_ledger(store: &Store, config: &CloudConfig) -> (SqlFunds, WalletOpener) {
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
    (funds, opener)
}

/// Most settlement batches one tick runs back to back while the backlog keeps them full.
const MAX_BATCHES_PER_TICK: usize = 64;
/// How often the settlement loop sweeps expired holds of sessions that never started.
const SWEEP_EVERY: Duration = Duration::from_secs(30);

/// The money loop: settles stored transaction records through `writer` and sweeps expired
/// holds, until the state's shutdown (finishing the batch in flight).
///
/// - The tariff cache is warmed before the first pass and refreshed before each tick (new
///   sites are loaded, moved config versions reloaded), so settlement reads no price from the
///   database; the counter `voltline_settlement_price_db_reads_total` shows it.
/// - Each tick (every `settlement.interval_ms`, missed ticks delayed, never bunched) settles
///   batches of at most `settlement.batch` records; while batches come back full *and* make
///   progress, the next runs at once, at most [`MAX_BATCHES_PER_TICK`] per tick. A batch
///   that settles nothing (every record failing) ends the tick: no busy loop.
/// - Every [`SWEEP_EVERY`] a [`HoldSweeper`] pass voids expired holds of sessions that never
///   started (at most [`limits::MAX_SWEEP_BATCH`](crate::money::limits::MAX_SWEEP_BATCH)).
/// - Shutdown is checked before every batch and preferred over a ready tick.
pub fn spawn_settlement(
    state: &AppState,
    writer: LedgerWriter,
) -> Result<JoinHandle<()>, StartError> {
    let cfg = state.config.settlement.clone();
    let fee = PlatformFeeRule::new(cfg.platform_fee_percent)
        .map_err(|e| StartError::Settlement(e.to_string()))?;
    let cache = Arc::new(TariffCache::new());
    let sweeper = HoldSweeper::new(writer.clone());
    // V2G: discharge records settle in their own pass of the same loop (issue #8).
    let reverse = crate::money::ReverseSettler::new(
        writer.clone(),
        cache.clone(),
        SettlerConfig { platform_fee: fee },
    )
    .with_rules(crate::bills::RuleCache::new(state.store.clone()));
    let settler = Settler::new(writer, cache.clone(), SettlerConfig { platform_fee: fee })
        .with_rules(crate::bills::RuleCache::new(state.store.clone()));
    let store = state.store.clone();
    let shutdown = state.shutdown.clone();
    let metrics = state.metrics.clone();
    let app = state.clone();
    metrics.settlement_registered();
    let batch = cfg.batch.clamp(1, crate::money::limits::MAX_SETTLE_BATCH);
    Ok(tokio::spawn(async move {
        if let Err(e) = cache.warm(&store).await {
            tracing::warn!(error = %e, "tariff cache warm-up failed; the first pass loads what it needs");
        }
        let mut tick = tokio::time::interval(Duration::from_millis(cfg.interval_ms.max(1)));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last_sweep: Option<tokio::time::Instant> = None;
        loop {
            tokio::select! {
                biased;
                () = shutdown.wait() => return,
                _ = tick.tick() => {}
            }
            if let Err(e) = cache.refresh(&store).await {
                tracing::warn!(error = %e, "tariff cache refresh failed; settling with the cached tariffs");
            }
            for _ in 0..MAX_BATCHES_PER_TICK {
                if shutdown.is_triggered() {
                    return;
                }
                let report = match settler.settle_pending(batch).await {
                    Ok(report) => report,
                    Err(e) => {
                        tracing::warn!(error = %e, "settlement pass failed; retrying next tick");
                        break;
                    }
                };
                // Watchers (the driver's app on /v1/events) see the order settle.
                for (_, outcome) in &report.outcomes {
                    if let crate::money::SettleOutcome::Settled(row) = outcome {
                        let id = row
                            .order
                            .as_deref()
                            .and_then(|o| voltline_protocol::domain::OrderId::new(o).ok());
                        if let Some(order) = id {
                            if let Ok(order) = app.store.get_order(&order).await {
                                app.order_changed(&order).await;
                            }
                        }
                    }
                }
                let picked = report.outcomes.len();
                let (settled, failed) = (report.settled(), report.failed());
                let replayed = picked - settled - failed;
                metrics.settlement_pass(settled, replayed, failed, picked);
                if settled > 0 || failed > 0 {
                    tracing::info!(settled, failed, replayed, "settlement pass");
                }
                if picked < batch || settled + replayed == 0 {
                    break;
                }
            }
            if !shutdown.is_triggered() {
                match reverse.settle_pending(batch).await {
                    Ok(report) => {
                        announce_settled(&app, &report).await;
                        let picked = report.outcomes.len();
                        let (settled, failed) = (report.settled(), report.failed());
                        metrics.settlement_pass(settled, picked - settled - failed, failed, picked);
                        if settled > 0 || failed > 0 {
                            tracing::info!(settled, failed, "reverse (V2G) settlement pass");
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "reverse settlement pass failed; retrying next tick")
                    }
                }
            }
            if last_sweep.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
                last_sweep = Some(tokio::time::Instant::now());
                match sweeper
                    .sweep(
                        jiff::Timestamp::now(),
                        crate::money::limits::MAX_SWEEP_BATCH,
                    )
                    .await
                {
                    Ok(r) => metrics.holds_expired(r.voided),
                    Err(e) => tracing::warn!(error = %e, "hold sweep failed; retrying next sweep"),
                }
            }
        }
    }))
}

/// Tells watchers (the driver's app on /v1/events) that the orders `report` settled moved.
async fn announce_settled(app: &AppState, report: &crate::money::SettleReport) {
    for (_, outcome) in &report.outcomes {
        if let crate::money::SettleOutcome::Settled(row) = outcome {
            let id = row
                .order
                .as_deref()
                .and_then(|o| voltline_protocol::domain::OrderId::new(o).ok());
            if let Some(order) = id {
                if let Ok(order) = app.store.get_order(&order).await {
                    app.order_changed(&order).await;
                }
            }
        }
    }
}

/// A running instance.
pub struct Running {
    pub state: AppState,
    pub http_addr: SocketAddr,
    http: JoinHandle<std::io::Result<()>>,
    dispatcher: JoinHandle<()>,
    settlement: Option<JoinHandle<()>>,
    /// The daily bill job and the webhook dispatcher, when running.
    background: Vec<JoinHandle<()>>,
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
        settlement: None,
        background: Vec::new(),
    })
}

/// Binds `config.http.listen`, opens the store and the SQL funds, starts, and (unless
/// `settlement.enabled` is off) runs the settlement loop.
pub async fn start_from_config(config: CloudConfig) -> Result<Running, StartError> {
    let store = open_store(&config).await?;
    let (funds, opener) = sql_ledger(&store, &config);
    let writer = funds.writer().clone();
    let addr = config.http.listen;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Listen { addr, source })?;
    let settle = config.settlement.enabled;
    let payments = crate::payment::Payments::from_config(writer.clone(), &config.payments)
        .map_err(|e| StartError::Payments(e.to_string()))?;
    if let Some(p) = &payments {
        p.open_accounts()
            .await
            .map_err(|e| StartError::Payments(e.to_string()))?;
    }
    let mut state = AppState::new(store, Arc::new(funds), config);
    state.wallet_opener = Some(opener);
    state.payments = payments.clone();
    let mut running = start(state, listener).await?;
    if settle {
        running.settlement = Some(spawn_settlement(&running.state, writer)?);
    }
    running.background = spawn_billing(&running.state)?;
    if let Some(p) = payments {
        // Captures settled sessions, resolves unknown outcomes, cancels unused credit.
        let resolver = crate::payment::resolver::Resolver::new(p);
        running
            .background
            .push(resolver.spawn(running.state.shutdown.clone()));
    }
    Ok(running)
}

/// Starts the daily bill job and the webhook dispatcher as configured (`bills.enabled`,
/// `webhooks.enabled`); each stops at the state's shutdown.
pub fn spawn_billing(state: &AppState) -> Result<Vec<JoinHandle<()>>, StartError> {
    let mut tasks = Vec::new();
    if state.config.bills.enabled {
        let holder = format!("voltline-cloud-{}", uuid::Uuid::new_v4());
        let job =
            crate::bills::BillJob::new(state.store.clone(), state.config.bills.clone(), &holder);
        tasks.push(job.spawn(state.shutdown.clone()));
    }
    if state.config.webhooks.enabled {
        let dispatcher = crate::webhooks::WebhookDispatcher::new(
            state.store.clone(),
            state.config.webhooks.clone(),
        )
        .map_err(|e| StartError::Billing(e.to_string()))?;
        tasks.push(dispatcher.spawn(state.shutdown.clone()));
    }
    Ok(tasks)
}

impl Running {
    /// Stops gracefully: not ready, no new requests, requests in flight finish (bounded by
    /// `grace`), background tasks stop, the store closes.
    pub async fn stop(self, grace: Duration) {
        self.state.set_ready(false);
        self.state.shutdown.trigger();
        let _ = tokio::time::timeout(grace, self.http).await;
        let _ = tokio::time::timeout(grace, self.dispatcher).await;
        if let Some(settlement) = self.settlement {
            let _ = tokio::time::timeout(grace, settlement).await;
        }
        for task in self.background {
            let _ = tokio::time::timeout(grace, task).await;
        }
        self.state.store.close().await;
    }
}
