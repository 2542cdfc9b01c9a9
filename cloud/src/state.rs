//! [`AppState`]: what the HTTP API, the command dispatcher and the MQTT side share — the
//! store, the funds seam, the event broadcaster, the configuration, metrics and the shutdown
//! signal — plus the few lookups and effects all three need (a site's operator, publishing an
//! order or command change, waking the dispatcher).
//!
//! Cheap to clone: every field is a handle.

use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::Arc;

use tokio::sync::Notify;
use voltline_protocol::domain::{AccountId, OperatorId, PileCode, SiteId};
use voltline_protocol::sync::{ConfigNotice, V1};

use crate::api::error::{ApiError, ApiResult};
use crate::api::events::{Event, EventBody, Events};
use crate::api::extract::{token_cache, RateLimiter, TokenCache};
use crate::config::CloudConfig;
use crate::domain::{can, Action, Actor, Resource};
use crate::funds::Funds;
use crate::metrics::Metrics;
use crate::shutdown::Shutdown;
use crate::store::{Account, Charger, CommandRecord, Order};
use crate::Store;

/// Sites cached for their operator (a site never changes operator).
const OWNER_CACHE_CAPACITY: u64 = 100_000;

/// Chargers and accounts cached for session starts. Neither changes once registered (no
/// update route); a charger can be deleted, which the start's own transaction catches, so an
/// entry lives at most [`LOOKUP_TTL`] and the hot path reads neither from the database.
const LOOKUP_CACHE_CAPACITY: u64 = 100_000;
const LOOKUP_TTL: std::time::Duration = std::time::Duration::from_secs(30);

/// Config notices buffered for the MQTT publisher.
const CONFIG_NOTICE_BUFFER: usize = 1_024;

/// Opens a new account's wallet in the ledger (the `Funds` seam has no such call yet; the
/// binary wires it to `SqlFunds::open_wallet`).
pub type WalletOpener =
    Arc<dyn Fn(AccountId) -> futures::future::BoxFuture<'static, Result<(), String>> + Send + Sync>;

/// The shared services.
#[derive(Clone)]
pub struct AppState {
    pub store: Store,
    pub funds: Arc<dyn Funds>,
    pub events: Events,
    pub config: Arc<CloudConfig>,
    pub metrics: Metrics,
    pub shutdown: Shutdown,
    pub tokens: TokenCache,
    pub limiter: RateLimiter,
    /// Wakes the dispatcher when a command is queued.
    pub dispatch_now: Arc<Notify>,
    /// False until the server has started its background tasks, and again while stopping.
    pub ready: Arc<AtomicBool>,
    /// Called after an account is created, when set.
    pub wallet_opener: Option<WalletOpener>,
    /// Credit payments, when a provider is configured (`[payments.*]`).
    pub payments: Option<crate::payment::Payments>,
    /// Configuration-changed notices for the MQTT side to publish to edges.
    pub config_notices: tokio::sync::broadcast::Sender<ConfigNotice>,
    owners: moka::future::Cache<SiteId, OperatorId>,
    chargers: moka::future::Cache<PileCode, Charger>,
    accounts: moka::future::Cache<AccountId, Account>,
    serial_counter: Arc<AtomicU32>,
}

impl AppState {
    pub fn new(store: Store, funds: Arc<dyn Funds>, config: CloudConfig) -> AppState {
        let limiter = RateLimiter::new(config.http.rate_limit_per_s, config.http.rate_limit_burst);
        AppState {
            store,
            funds,
            events: Events::default(),
            config: Arc::new(config),
            metrics: Metrics::install(),
            shutdown: Shutdown::default(),
            tokens: token_cache(),
            limiter,
            dispatch_now: Arc::new(Notify::new()),
            ready: Arc::new(AtomicBool::new(false)),
            wallet_opener: None,
            payments: None,
            config_notices: tokio::sync::broadcast::channel(CONFIG_NOTICE_BUFFER).0,
            owners: moka::future::Cache::new(OWNER_CACHE_CAPACITY),
            chargers: moka::future::Cache::builder()
                .max_capacity(LOOKUP_CACHE_CAPACITY)
                .time_to_live(LOOKUP_TTL)
                .build(),
            accounts: moka::future::Cache::builder()
                .max_capacity(LOOKUP_CACHE_CAPACITY)
                .time_to_live(LOOKUP_TTL)
                .build(),
            serial_counter: Arc::new(AtomicU32::new(0)),
        }
    }

    /// The operator a site belongs to (404 if the site is unknown).
    pub async fn site_operator(&self, site: &SiteId) -> ApiResult<OperatorId> {
        if let Some(op) = self.owners.get(site).await {
            return Ok(op);
        }
        let op = self.store.get_site(site).await?.operator;
        self.owners.insert(site.clone(), op.clone()).await;
        Ok(op)
    }

    /// A charger, from memory when seen within [`LOOKUP_TTL`] (404 if unknown).
    pub async fn charger(&self, pile: &PileCode) -> ApiResult<Charger> {
        if let Some(c) = self.chargers.get(pile).await {
            return Ok(c);
        }
        let c = self.store.get_charger(pile).await?;
        self.chargers.insert(*pile, c.clone()).await;
        Ok(c)
    }

    /// An account, from memory when seen within [`LOOKUP_TTL`] (404 if unknown).
    pub async fn account(&self, id: &AccountId) -> ApiResult<Account> {
        if let Some(a) = self.accounts.get(id).await {
            return Ok(a);
        }
        let a = self.store.get_account(id).await?;
        self.accounts.insert(id.clone(), a.clone()).await;
        Ok(a)
    }

    /// Forgets a cached charger (after deleting it).
    pub async fn forget_charger(&self, pile: &PileCode) {
        self.chargers.invalidate(pile).await;
    }

    /// 403 unless `actor` may do `action` on `resource`.
    pub fn authorize(&self, actor: &Actor, action: Action, resource: &Resource) -> ApiResult<()> {
        if can(actor, action, resource) {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    /// The next counter for a transaction serial (0..=9999, wrapping).
    pub fn next_serial_counter(&self) -> u16 {
        let n = self.serial_counter.fetch_add(1, Ordering::Relaxed) % 10_000;
        u16::try_from(n).unwrap_or(0)
    }

    /// Tells watchers an order changed.
    pub async fn order_changed(&self, order: &Order) {
        let Ok(operator) = self.site_operator(&order.site).await else {
            return;
        };
        self.events.publish(Event {
            body: EventBody::Order(order.into()),
            account: Some(order.account.clone()),
            operator,
        });
    }

    /// Tells watchers a command changed; `account` is its order's driver, if any.
    pub async fn command_changed(&self, cmd: &CommandRecord, account: Option<AccountId>) {
        self.metrics.command_state(cmd.state);
        let Ok(operator) = self.site_operator(&cmd.site).await else {
            return;
        };
        self.events.publish(Event {
            body: EventBody::Command(cmd.into()),
            account,
            operator,
        });
    }

    /// Re-reads a command and its order after something changed them, tells watchers, and
    /// voids the order's hold when a start ended without charging (rejected, failed, expired).
    pub async fn after_command_change(&self, id: &voltline_protocol::domain::CommandId) {
        let Ok(cmd) = self.store.get_command(id).await else {
            return;
        };
        let order = match &cmd.order {
            Some(o) => self.store.get_order(o).await.ok(),
            None => None,
        };
        self.command_changed(&cmd, order.as_ref().map(|o| o.account.clone()))
            .await;
        let Some(order) = order else { return };
        self.order_changed(&order).await;
        if order.state == crate::domain::OrderState::Failed {
            if let Some(hold) = &order.hold_id {
                if let Some(p) = &self.payments {
                    match p.void_hold(&order.id, hold).await {
                        Ok(true) => {
                            self.metrics.hold_voided();
                            return;
                        }
                        Ok(false) => {}
                        Err(e) => {
                            tracing::warn!(order = %order.id, error = %e, "could not release the credit authorisation of a failed start; the payment resolver retries");
                            return;
                        }
                    }
                }
                match self.funds.void_hold(&order.id, hold).await {
                    Ok(()) => self.metrics.hold_voided(),
                    Err(e) => {
                        tracing::warn!(order = %order.id, error = %e, "could not void the hold of a failed start; it lapses at its expiry")
                    }
                }
            }
        }
    }

    /// Tells the site's edge (over MQTT, when running) that its configuration moved on.
    pub fn config_changed(&self, site: &SiteId, config_version: u64) {
        let _ = self.config_notices.send(ConfigNotice {
            v: V1,
            site: site.clone(),
            config_version,
        });
    }

    /// Marks the service ready (or not) for `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::SeqCst);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }
}
