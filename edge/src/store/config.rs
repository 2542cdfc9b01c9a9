//! The cached site configuration from the cloud: tariff, authorisation list and limits, with a
//! version that only moves forward. Cached on disk so that a site restarts and charges while
//! offline.
//!
//! The cloud↔edge payload of this config is not in `voltline_protocol::sync` yet (only the
//! `ConfigNotice`); [`SiteConfig`] is the edge's form until it moves there.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, Money, Power};
use voltline_protocol::message::transaction::PhysicalCardNo;
use voltline_protocol::tariff::Tariff;

use super::error::{corrupt, encode, StoreError};
use super::Store;

/// Most cards on a site's authorisation list.
pub const MAX_CARDS: usize = 200_000;

const CONFIG_KEY: &[u8] = b"site";

/// One card allowed to start offline.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardAuthorisation {
    pub card: PhysicalCardNo,
    pub account: AccountId,
    /// The most one offline session of this card may cost.
    pub offline_limit: Money,
}

/// Site-wide limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteLimits {
    /// The most an offline card session may cost, whatever the card's own limit.
    pub offline_session_limit: Money,
    /// The site's grid connection limit, if any.
    pub max_site_power: Option<Power>,
}

/// What the cloud configures for a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteConfig {
    /// Strictly increasing; an older or equal version is ignored.
    pub version: u64,
    pub tariff: Option<Tariff>,
    pub cards: Vec<CardAuthorisation>,
    pub limits: SiteLimits,
    /// Index of `cards` (built on load, not stored).
    #[serde(skip)]
    by_card: HashMap<PhysicalCardNo, usize>,
}

impl SiteConfig {
    /// A config; fails when the list is longer than [`MAX_CARDS`].
    pub fn new(
        version: u64,
        tariff: Option<Tariff>,
        cards: Vec<CardAuthorisation>,
        limits: SiteLimits,
    ) -> Result<SiteConfig, StoreError> {
        let mut c = SiteConfig {
            version,
            tariff,
            cards,
            limits,
            by_card: HashMap::new(),
        };
        c.index()?;
        Ok(c)
    }

    fn index(&mut self) -> Result<(), StoreError> {
        if self.cards.len() > MAX_CARDS {
            return Err(StoreError::ConfigTooLarge {
                what: "cards",
                len: self.cards.len(),
                max: MAX_CARDS,
            });
        }
        self.by_card = self
            .cards
            .iter()
            .enumerate()
            .map(|(i, c)| (c.card, i))
            .collect();
        Ok(())
    }

    /// The card's entry on the authorisation list.
    pub fn card(&self, card: &PhysicalCardNo) -> Option<&CardAuthorisation> {
        self.by_card.get(card).map(|&i| &self.cards[i])
    }

    /// The spending limit of an offline session by `card`: the smaller of the card's and the
    /// site's.
    pub fn offline_limit(&self, card: &PhysicalCardNo) -> Option<Money> {
        self.card(card)
            .map(|c| c.offline_limit.min(self.limits.offline_session_limit))
    }
}

pub(super) fn load(tree: &sled::Tree) -> Result<Option<SiteConfig>, StoreError> {
    let Some(v) = tree.get(CONFIG_KEY)? else {
        return Ok(None);
    };
    let mut c: SiteConfig =
        serde_json::from_slice(&v).map_err(|e| corrupt("site config", CONFIG_KEY, e))?;
    c.index()?;
    Ok(Some(c))
}

impl Store {
    /// The cached config.
    pub fn site_config(&self) -> Option<Arc<SiteConfig>> {
        self.inner
            .site
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Caches `config` durably if its version is newer than the cached one. Returns whether
    /// it was taken.
    pub async fn put_site_config(&self, config: SiteConfig) -> Result<bool, StoreError> {
        let value = serde_json::to_vec(&config).map_err(|e| encode("site config", e))?;
        {
            let mut site = self.inner.site.write().unwrap_or_else(|p| p.into_inner());
            if site.as_ref().is_some_and(|c| c.version >= config.version) {
                return Ok(false);
            }
            self.inner.config_tree.insert(CONFIG_KEY, value)?;
            *site = Some(Arc::new(config));
        }
        self.flush().await?;
        Ok(true)
    }
}
