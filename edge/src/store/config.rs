//! The cached site configuration from the cloud: charge and discharge tariffs, time zone,
//! authorisation list, chargers and limits, with a version that only moves forward. Cached on
//! disk so that a site restarts and charges while offline.
//!
//! The wire form is [`voltline_protocol::sync::SiteConfigDoc`] (served by the cloud at
//! `GET /v1/edges/{site}/config`); [`SiteConfig::from_doc`] turns it into this edge form,
//! which adds the card index. Fields added after the first cached form carry serde defaults,
//! so a config cached by an older edge still loads (and is replaced by the next fetch).
//!
//! What this module must never do: take a config whose version is not above the cached one,
//! or hold more cards or chargers than the contract's bounds.

use std::collections::HashMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, Money, PileCode, Power};
use voltline_protocol::message::transaction::PhysicalCardNo;
use voltline_protocol::sync::{SiteConfigDoc, MAX_SITE_CARDS, MAX_SITE_CHARGERS};
use voltline_protocol::tariff::Tariff;

use super::error::{corrupt, encode, StoreError};
use super::Store;

/// Most cards on a site's authorisation list.
pub const MAX_CARDS: usize = MAX_SITE_CARDS;

/// Most chargers in a site's config.
pub const MAX_CHARGERS: usize = MAX_SITE_CHARGERS;

/// The time zone of a config that names none (a config made with [`SiteConfig::new`]).
pub const DEFAULT_TIME_ZONE: &str = "UTC";

/// Seconds a command stays valid when the config does not say.
pub const DEFAULT_COMMAND_EXPIRY_S: u64 = 60;

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

/// Defaults for the sessions and commands of the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionDefaults {
    /// The amount held for a session when the driver asked for none.
    pub default_session_amount: Money,
    /// Seconds a command stays valid.
    pub command_expiry_s: u64,
}

impl Default for SessionDefaults {
    fn default() -> Self {
        SessionDefaults {
            default_session_amount: Money::ZERO,
            command_expiry_s: DEFAULT_COMMAND_EXPIRY_S,
        }
    }
}

/// A charger the cloud registered on the site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteCharger {
    pub pile: PileCode,
    pub connectors: u8,
    /// Lower-case hex SHA-256 of the charger's MQTT password.
    pub credential_sha256: String,
}

/// What the cloud configures for a site.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteConfig {
    /// Strictly increasing; an older or equal version is ignored.
    pub version: u64,
    /// The charge tariff in force, if one is assigned.
    pub tariff: Option<Tariff>,
    pub cards: Vec<CardAuthorisation>,
    pub limits: SiteLimits,
    /// The discharge (feed-in, V2G) tariff in force, if one is assigned.
    #[serde(default)]
    pub discharge_tariff: Option<Tariff>,
    /// IANA zone of the site (tariffs are evaluated in it); checked by [`SiteConfig::from_doc`].
    #[serde(default = "default_time_zone")]
    pub time_zone: String,
    /// Chargers the cloud registered on the site.
    #[serde(default)]
    pub chargers: Vec<SiteCharger>,
    #[serde(default)]
    pub sessions: SessionDefaults,
    /// Index of `cards` (built on load, not stored).
    #[serde(skip)]
    by_card: HashMap<PhysicalCardNo, usize>,
}

fn default_time_zone() -> String {
    DEFAULT_TIME_ZONE.to_owned()
}

impl SiteConfig {
    /// A config with no discharge tariff, no chargers, the UTC zone and default session
    /// settings; fails when the list is longer than [`MAX_CARDS`].
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
            discharge_tariff: None,
            time_zone: default_time_zone(),
            chargers: Vec::new(),
            sessions: SessionDefaults::default(),
            by_card: HashMap::new(),
        };
        c.index()?;
        Ok(c)
    }

    /// The edge form of the cloud's document. Fails when the document holds more cards or
    /// chargers than the bounds, or names a time zone the edge's zone database does not know
    /// (the site could not price sessions offline). The caller checks the document's site
    /// (`SiteConfigDoc::validate`).
    pub fn from_doc(doc: SiteConfigDoc) -> Result<SiteConfig, StoreError> {
        if doc.chargers.len() > MAX_CHARGERS {
            return Err(StoreError::ConfigTooLarge {
                what: "chargers",
                len: doc.chargers.len(),
                max: MAX_CHARGERS,
            });
        }
        if let Err(e) = jiff::tz::TimeZone::get(&doc.time_zone) {
            return Err(encode(
                "site config",
                format!(
                    "time zone {:?} is not in the edge's zone database ({e}); fix the site's time zone in the cloud",
                    doc.time_zone
                ),
            ));
        }
        let mut c = SiteConfig {
            version: doc.config_version,
            tariff: doc.charge_tariff,
            cards: doc
                .cards
                .into_iter()
                .map(|g| CardAuthorisation {
                    card: g.card,
                    account: g.account,
                    offline_limit: g.offline_limit,
                })
                .collect(),
            limits: SiteLimits {
                offline_session_limit: doc.limits.offline_session_limit,
                max_site_power: doc.limits.max_site_power,
            },
            discharge_tariff: doc.discharge_tariff,
            time_zone: doc.time_zone,
            chargers: doc
                .chargers
                .into_iter()
                .map(|g| SiteCharger {
                    pile: g.pile,
                    connectors: g.connectors,
                    credential_sha256: g.credential_sha256.to_ascii_lowercase(),
                })
                .collect(),
            sessions: SessionDefaults {
                default_session_amount: doc.limits.default_session_amount,
                command_expiry_s: doc.limits.command_expiry_s,
            },
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

    /// The cloud's chargers as charger-directory entries (to merge with the local ones).
    pub fn charger_entries(&self) -> Vec<crate::ports::ChargerEntry> {
        self.chargers
            .iter()
            .map(|c| crate::ports::ChargerEntry {
                pile: c.pile,
                credential_sha256: Some(c.credential_sha256.clone()),
            })
            .collect()
    }

    /// The site's time zone (UTC if the cached name is unknown, which
    /// [`SiteConfig::from_doc`] refuses, so only a hand-made config can have one).
    pub fn time_zone(&self) -> jiff::tz::TimeZone {
        jiff::tz::TimeZone::get(&self.time_zone).unwrap_or(jiff::tz::TimeZone::UTC)
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

#[cfg(test)]
mod tests {
    use super::*;
    use voltline_protocol::sync::{CardGrant, ChargerGrant, SiteLimitsDoc, V1};

    fn doc(version: u64, zone: &str) -> SiteConfigDoc {
        SiteConfigDoc {
            v: V1,
            site: voltline_protocol::domain::SiteId::new("site-1").unwrap(),
            config_version: version,
            time_zone: zone.into(),
            charge_tariff: None,
            discharge_tariff: None,
            chargers: vec![ChargerGrant {
                pile: "32010600019236".parse().unwrap(),
                connectors: 2,
                credential_sha256: "AB".repeat(32),
            }],
            cards: vec![CardGrant {
                card: "00000000D14B0A54".parse().unwrap(),
                account: "acct-1".parse().unwrap(),
                offline_limit: Money::from_cents(8_000),
            }],
            limits: SiteLimitsDoc {
                offline_session_limit: Money::from_cents(5_000),
                default_session_amount: Money::from_cents(10_000),
                command_expiry_s: 90,
                max_site_power: None,
            },
        }
    }

    #[test]
    fn doc_becomes_an_indexed_config_with_every_field() {
        let c = SiteConfig::from_doc(doc(7, "Asia/Shanghai")).unwrap();
        assert_eq!(c.version, 7);
        let card: PhysicalCardNo = "00000000D14B0A54".parse().unwrap();
        assert_eq!(c.offline_limit(&card), Some(Money::from_cents(5_000)));
        assert_eq!(c.chargers.len(), 1);
        assert_eq!(c.chargers[0].credential_sha256, "ab".repeat(32));
        assert_eq!(c.sessions.command_expiry_s, 90);
        assert_eq!(c.sessions.default_session_amount, Money::from_cents(10_000));
        assert_eq!(c.time_zone().iana_name(), Some("Asia/Shanghai"));
        let json = serde_json::to_vec(&c).unwrap();
        let mut back: SiteConfig = serde_json::from_slice(&json).unwrap();
        back.index().unwrap();
        assert_eq!(back, c);
    }

    #[test]
    fn unknown_time_zone_is_refused() {
        let err = SiteConfig::from_doc(doc(1, "Mars/Olympus")).unwrap_err();
        assert!(err.to_string().contains("Mars/Olympus"), "{err}");
    }

    #[test]
    fn config_cached_before_the_new_fields_still_loads() {
        let old = r#"{"version":3,"tariff":null,"cards":[],"limits":{"offline_session_limit":"10","max_site_power":null}}"#;
        let c: SiteConfig = serde_json::from_str(old).unwrap();
        assert_eq!(c.time_zone, DEFAULT_TIME_ZONE);
        assert!(c.chargers.is_empty() && c.discharge_tariff.is_none());
        assert_eq!(c.sessions, SessionDefaults::default());
    }
}
