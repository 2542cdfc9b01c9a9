//! [`TariffCache`]: time-of-use pricing from memory.
//!
//! Per site it keeps the site's operator and time zone, its `config_version`, and every
//! tariff assignment with its compiled [`Tariff`] (`Arc`, shared by sites on the same
//! version). Settlement resolves the version in force at a session's start from memory and
//! prices with it; it reads no price from the database. A site that is not cached is loaded
//! (that is a database read of prices, counted in
//! [`TariffCache::tariff_db_reads_during_settlement`], which stays 0 once warmed).
//!
//! Invalidation: assigning a tariff bumps `sites.config_version` in the same transaction
//! ([`Store::assign_tariff`]); [`TariffCache::refresh`] reads every site's config version (no
//! prices) and reloads the sites whose version moved — so changes made by other instances are
//! seen within one poll interval ([`TariffCache::spawn_poller`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::tz::TimeZone;
use jiff::Timestamp;
use sqlx::types::Json;
use voltline_protocol::domain::{OperatorId, SiteId};
use voltline_protocol::tariff::Tariff;

use super::MoneyError;
use crate::domain::OrderKind;
use crate::store::types::DbTime;
use crate::store::{with_pool, Store};

/// The Prometheus counter of prices read from the database while settling (process-wide:
/// the sum over every cache; see [`crate::metrics`]).
pub const PRICE_DB_READS_METRIC: &str = "voltline_settlement_price_db_reads_total";

/// Most sites cached per process.
const MAX_SITES: u64 = 200_000;

/// One site's pricing, compiled.
#[derive(Debug)]
pub struct SitePricing {
    pub site: SiteId,
    pub operator: OperatorId,
    pub time_zone: TimeZone,
    pub config_version: i64,
    /// (kind, effective from, tariff), sorted by effective from.
    assignments: Vec<(OrderKind, Timestamp, Arc<Tariff>)>,
}

impl SitePricing {
    /// The tariff of `kind` in force at `at`.
    pub fn tariff_at(&self, kind: OrderKind, at: Timestamp) -> Option<Arc<Tariff>> {
        self.assignments
            .iter()
            .rev()
            .find(|(k, from, _)| *k == kind && *from <= at)
            .map(|(_, _, t)| t.clone())
    }
}

/// The per-process cache of compiled site tariffs.
pub struct TariffCache {
    sites: moka::sync::Cache<String, Arc<SitePricing>>,
    db_reads_during_settlement: AtomicU64,
    loads: AtomicU64,
}

impl Default for TariffCache {
    fn default() -> Self {
        TariffCache::new()
    }
}

impl TariffCache {
    pub fn new() -> TariffCache {
        TariffCache {
            sites: moka::sync::Cache::new(MAX_SITES),
            db_reads_during_settlement: AtomicU64::new(0),
            loads: AtomicU64::new(0),
        }
    }

    /// How often settlement had to read prices from the database (0 when warmed).
    pub fn tariff_db_reads_during_settlement(&self) -> u64 {
        self.db_reads_during_settlement.load(Ordering::Relaxed)
    }

    /// How many site loads (warm-up, refresh, misses) read prices from the database.
    pub fn loads(&self) -> u64 {
        self.loads.load(Ordering::Relaxed)
    }

    /// Loads every site (at start-up, before settling).
    pub async fn warm(&self, store: &Store) -> Result<usize, MoneyError> {
        let ids: Vec<(String, i64)> = with_pool!(store, |pool, d| {
            sqlx::query_as("SELECT id, config_version FROM sites")
                .fetch_all(pool)
                .await?
        });
        for (id, _) in &ids {
            self.load(store, id).await?;
        }
        Ok(ids.len())
    }

    /// Reloads the cached sites whose `config_version` moved and loads the sites not cached
    /// yet (registered since, here or on another instance), so that settlement finds them in
    /// memory. Returns how many cached sites were reloaded.
    pub async fn refresh(&self, store: &Store) -> Result<usize, MoneyError> {
        let rows: Vec<(String, i64)> = with_pool!(store, |pool, d| {
            sqlx::query_as("SELECT id, config_version FROM sites")
                .fetch_all(pool)
                .await?
        });
        let mut reloaded = 0;
        for (id, version) in rows {
            match self.sites.get(&id) {
                Some(cached) if cached.config_version == version => {}
                Some(_) => {
                    self.sites.invalidate(&id);
                    self.load(store, &id).await?;
                    reloaded += 1;
                }
                None => {
                    self.load(store, &id).await?;
                }
            }
        }
        Ok(reloaded)
    }

    /// Polls [`TariffCache::refresh`] every `every` until the cache is dropped.
    pub fn spawn_poller(
        self: &Arc<Self>,
        store: Store,
        every: Duration,
    ) -> tokio::task::JoinHandle<()> {
        let weak = Arc::downgrade(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            loop {
                tick.tick().await;
                let Some(cache) = weak.upgrade() else { return };
                if let Err(e) = cache.refresh(&store).await {
                    tracing::warn!(%e, "tariff cache refresh failed; keeping the cached tariffs");
                }
            }
        })
    }

    /// The site's pricing from memory, or `None` when not cached.
    pub fn cached(&self, site: &SiteId) -> Option<Arc<SitePricing>> {
        self.sites.get(site.as_str())
    }

    /// The site's pricing for settlement: from memory; a miss is loaded and counted.
    pub async fn for_settlement(
        &self,
        store: &Store,
        site: &SiteId,
    ) -> Result<Arc<SitePricing>, MoneyError> {
        if let Some(p) = self.cached(site) {
            return Ok(p);
        }
        self.db_reads_during_settlement
            .fetch_add(1, Ordering::Relaxed);
        metrics::counter!(PRICE_DB_READS_METRIC).increment(1);
        self.load(store, site.as_str()).await
    }

    async fn load(&self, store: &Store, site: &str) -> Result<Arc<SitePricing>, MoneyError> {
        self.loads.fetch_add(1, Ordering::Relaxed);
        let head: Option<(String, String, i64)> = with_pool!(store, |pool, d| {
            sqlx::query_as("SELECT operator_id, time_zone, config_version FROM sites WHERE id = $1")
                .bind(site)
                .fetch_optional(pool)
                .await?
        });
        let Some((operator, zone, config_version)) = head else {
            return Err(MoneyError::Invalid(format!(
                "site {site} does not exist; register it before settling its records"
            )));
        };
        let rows: Vec<(String, DbTime, Json<Tariff>)> = with_pool!(store, |pool, d| {
            sqlx::query_as(
                "SELECT a.kind, a.effective_from, t.tariff FROM site_tariffs a \
                 JOIN tariffs t ON t.tariff_id = a.tariff_id AND t.version = a.version \
                 WHERE a.site_id = $1 ORDER BY a.effective_from",
            )
            .bind(site)
            .fetch_all(pool)
            .await?
        });
        let mut assignments = Vec::with_capacity(rows.len());
        for (kind, from, tariff) in rows {
            let kind: OrderKind = super::db::parse(&kind, "tariff kind")?;
            assignments.push((kind, from.0, Arc::new(tariff.0)));
        }
        let pricing = Arc::new(SitePricing {
            site: super::db::parse(site, "site id")?,
            operator: super::db::parse(&operator, "operator id")?,
            time_zone: TimeZone::get(&zone)
                .map_err(|e| MoneyError::Corrupt(format!("site {site} time zone '{zone}': {e}")))?,
            config_version,
            assignments,
        });
        self.sites.insert(site.to_owned(), pricing.clone());
        Ok(pricing)
    }
}
