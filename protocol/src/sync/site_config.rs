//! The site configuration an edge caches to run its site offline: chargers, cards, tariffs and
//! limits, with its bounds.

use serde::{Deserialize, Serialize};

use super::V1;
use crate::domain::{AccountId, Money, PileCode, Power, SiteId};

/// Most chargers in one site configuration.
pub const MAX_SITE_CHARGERS: usize = 20_000;

/// Most cards in one site configuration.
pub const MAX_SITE_CARDS: usize = 200_000;

/// What an edge caches to run its site, also while offline: served by the cloud at
/// `GET /v1/edges/{site}/config` and fetched by the edge at start, on a [`ConfigNotice`] and
/// periodically. `config_version` only moves forward; an edge ignores an older one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteConfigDoc {
    pub v: V1,
    pub site: SiteId,
    /// Bumped by the cloud whenever anything below changes.
    pub config_version: u64,
    /// IANA zone of the site (tariffs are evaluated in it).
    pub time_zone: String,
    /// The charge tariff in force, if one is assigned.
    pub charge_tariff: Option<crate::tariff::Tariff>,
    /// The discharge (feed-in) tariff in force, if one is assigned.
    pub discharge_tariff: Option<crate::tariff::Tariff>,
    /// Chargers allowed to connect, with their MQTT credential hashes.
    pub chargers: Vec<ChargerGrant>,
    /// Cards that may start a session at a pile, also while the cloud is unreachable.
    pub cards: Vec<CardGrant>,
    pub limits: SiteLimitsDoc,
}

impl SiteConfigDoc {
    /// Checks the contract: the document is for `site`, holds at most [`MAX_SITE_CHARGERS`]
    /// chargers and [`MAX_SITE_CARDS`] cards, names no pile or card twice, and every charger's
    /// credential hash is 64 lower-case hex digits.
    pub fn validate(&self, site: &SiteId) -> Result<(), String> {
        if &self.site != site {
            return Err(format!(
                "the configuration is for site {} but was fetched for site {site}",
                self.site
            ));
        }
        if self.chargers.len() > MAX_SITE_CHARGERS {
            return Err(format!(
                "{} chargers; at most {MAX_SITE_CHARGERS} per site",
                self.chargers.len()
            ));
        }
        if self.cards.len() > MAX_SITE_CARDS {
            return Err(format!(
                "{} cards; at most {MAX_SITE_CARDS} per site",
                self.cards.len()
            ));
        }
        let mut piles = std::collections::HashSet::with_capacity(self.chargers.len());
        for c in &self.chargers {
            if !piles.insert(c.pile) {
                return Err(format!("pile {} is listed twice", c.pile));
            }
            if !is_sha256_hex(&c.credential_sha256) {
                return Err(format!(
                    "pile {}: the credential hash must be 64 lower-case hex digits (SHA-256)",
                    c.pile
                ));
            }
        }
        let mut cards = std::collections::HashSet::with_capacity(self.cards.len());
        for c in &self.cards {
            if !cards.insert(c.card) {
                return Err(format!("card {} is listed twice", c.card));
            }
            if c.offline_limit.is_negative() {
                return Err(format!("card {} has a negative offline limit", c.card));
            }
        }
        Ok(())
    }

    /// The grant of `card`, if listed (a linear scan: index the list to look up often).
    pub fn card(&self, card: &crate::message::common::PhysicalCardNo) -> Option<&CardGrant> {
        self.cards.iter().find(|c| &c.card == card)
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A charger registered on a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargerGrant {
    pub pile: PileCode,
    pub connectors: u8,
    /// Lower-case hex SHA-256 of the charger's MQTT password.
    pub credential_sha256: String,
}

/// A card allowed to start sessions at the site's piles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardGrant {
    pub card: crate::message::common::PhysicalCardNo,
    pub account: AccountId,
    /// The most one session started by this card without the cloud may cost.
    pub offline_limit: Money,
}

/// Site-wide limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteLimitsDoc {
    /// The most any session the edge starts on its own (offline card start) may cost.
    pub offline_session_limit: Money,
    /// The amount held for a session when the driver asked for none.
    pub default_session_amount: Money,
    /// Seconds a command stays valid.
    pub command_expiry_s: u64,
    /// The site's grid connection limit, if any.
    pub max_site_power: Option<Power>,
}
