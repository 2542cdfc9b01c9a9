//! What to seed ([`SiteSpec`], [`DriverSpec`]) and what was seeded ([`SeededSite`]), and
//! seeding a [`TestCloud`] through its real HTTP API (so wallets open and config versions
//! move as in production) — the steps are [`RemoteCloud`]'s, shared with a cloud that runs
//! as a process of its own — plus the tokens each party uses, which only an in-process
//! cloud can issue.
//!
//! One secret per edge: [`SeededSite::edge_token`] is an edge bearer token for the site; the
//! cloud's broker accepts it as the MQTT password (client id = username = site id) and the
//! HTTP API as the bearer of `/v1/edges/{site}/...`.

use std::sync::atomic::{AtomicU64, Ordering};

use voltline_cloud::domain::{Actor, OrderKind};
use voltline_protocol::domain::{AccountId, OperatorId, PileCode, SiteId};
use voltline_protocol::message::common::PhysicalCardNo;
use voltline_protocol::tariff::{Tariff, TariffVersion};
use voltline_protocol::Money;

use crate::cloud::TestCloud;
use crate::remote::RemoteCloud;
use crate::HarnessError;

/// Pile and card numbers handed out in this process (unique across every cloud it runs).
static NEXT_NUMBER: AtomicU64 = AtomicU64::new(1);

/// A fresh pile code (`3201069xxxxxxx`).
pub fn next_pile() -> PileCode {
    let n = NEXT_NUMBER.fetch_add(1, Ordering::Relaxed);
    PileCode::from_number(32_010_690_000_000 + n).expect("a 14-digit pile code")
}

/// A fresh physical card number.
pub fn next_card() -> PhysicalCardNo {
    let n = NEXT_NUMBER.fetch_add(1, Ordering::Relaxed);
    PhysicalCardNo::from_bytes((0xCA4D_0000_0000_0000_u64 + n).to_be_bytes())
}

/// A driver to create at a site's operator.
#[derive(Debug, Clone)]
pub struct DriverSpec {
    pub account: String,
    /// Credited through a top-up (provider `test`); zero for none.
    pub top_up: Money,
    /// Cards to register, with their offline limit (`None`: the cloud's default).
    pub cards: Vec<(PhysicalCardNo, Option<Money>)>,
}

impl DriverSpec {
    /// `account` topped up with `top_up`, holding one fresh card with `card_limit`.
    pub fn with_card(account: &str, top_up: Money, card_limit: Money) -> DriverSpec {
        DriverSpec {
            account: account.to_owned(),
            top_up,
            cards: vec![(next_card(), Some(card_limit))],
        }
    }
}

/// A site to seed.
#[derive(Debug, Clone)]
pub struct SiteSpec {
    /// Created if it does not exist yet.
    pub operator: String,
    pub site: String,
    pub time_zone: String,
    /// (pile, connectors) of each charger.
    pub chargers: Vec<(PileCode, u8)>,
    pub drivers: Vec<DriverSpec>,
    /// Stored as `tariff-<site>` and assigned as the charge tariff from 2000-01-01.
    pub tariff: Option<Tariff>,
}

impl SiteSpec {
    /// Site `site` of operator `op-<site>` in Asia/Shanghai with `chargers` fresh
    /// two-connector piles, no drivers and no tariff.
    pub fn new(site: &str, chargers: usize) -> SiteSpec {
        SiteSpec {
            operator: format!("op-{site}"),
            site: site.to_owned(),
            time_zone: "Asia/Shanghai".into(),
            chargers: (0..chargers).map(|_| (next_pile(), 2)).collect(),
            drivers: Vec::new(),
            tariff: None,
        }
    }
}

/// A charger as seeded.
#[derive(Debug, Clone)]
pub struct SeededCharger {
    pub pile: PileCode,
    pub connectors: u8,
    /// Its MQTT password at the edge (the cloud keeps only its SHA-256).
    pub password: String,
}

/// A driver as seeded.
#[derive(Debug, Clone)]
pub struct SeededDriver {
    pub account: AccountId,
    pub token: String,
    pub cards: Vec<PhysicalCardNo>,
}

/// A site as seeded.
#[derive(Debug, Clone)]
pub struct SeededSite {
    pub operator: OperatorId,
    pub site: SiteId,
    pub time_zone: String,
    /// The edge's one secret: MQTT password (username = client id = site id) and HTTP bearer.
    pub edge_token: String,
    /// The site's own MQTT credential from `POST /v1/sites` (MQTT only).
    pub edge_credential: String,
    pub operator_token: String,
    pub chargers: Vec<SeededCharger>,
    pub drivers: Vec<SeededDriver>,
    /// The assigned charge tariff (id, version).
    pub tariff: Option<(String, TariffVersion)>,
}

impl TestCloud {
    /// A [`RemoteCloud`] on this instance's HTTP (directly, not through the edge's link) with
    /// its admin token: the seeding steps live there.
    pub fn remote(&self) -> Result<RemoteCloud, HarnessError> {
        RemoteCloud::new(format!("http://{}", self.http_addr()), self.admin_token())
    }

    /// Creates operator `id` unless it exists.
    pub async fn ensure_operator(&self, id: &str) -> Result<OperatorId, HarnessError> {
        self.remote()?.ensure_operator(id).await
    }

    /// Registers a charger; returns its MQTT password.
    pub async fn create_charger(
        &self,
        site: &SiteId,
        pile: PileCode,
        connectors: u8,
    ) -> Result<String, HarnessError> {
        self.remote()?.create_charger(site, pile, connectors).await
    }

    /// Creates a driver account scoped to `operator`.
    pub async fn create_account(
        &self,
        operator: &OperatorId,
        id: &str,
    ) -> Result<AccountId, HarnessError> {
        self.remote()?.create_account(operator, id).await
    }

    /// Credits `amount` to `account` (provider `test`, a fresh reference); returns the
    /// available balance after it.
    pub async fn top_up(&self, account: &AccountId, amount: Money) -> Result<Money, HarnessError> {
        self.remote()?.top_up(account, amount).await
    }

    /// Registers `card` for `account` with `offline_limit` (`None`: the cloud's default).
    pub async fn register_card(
        &self,
        account: &AccountId,
        card: PhysicalCardNo,
        offline_limit: Option<Money>,
    ) -> Result<(), HarnessError> {
        self.remote()?
            .register_card(account, card, offline_limit)
            .await
    }

    /// Stores `tariff` as `tariff_id` of `operator` and assigns it to `site` as its `kind`
    /// tariff from 2000-01-01 on; returns the site's new configuration version.
    pub async fn assign_tariff(
        &self,
        operator: &OperatorId,
        site: &SiteId,
        tariff_id: &str,
        tariff: &Tariff,
        kind: OrderKind,
    ) -> Result<u64, HarnessError> {
        self.remote()?
            .assign_tariff(operator, site, tariff_id, tariff, kind)
            .await
    }

    /// Seeds everything `spec` describes (through [`RemoteCloud::seed_site`]) and issues the
    /// edge's, the operator's and each driver's token.
    pub async fn seed_site(&self, spec: &SiteSpec) -> Result<SeededSite, HarnessError> {
        let seeded = self.remote()?.seed_site(spec).await?;
        let mut drivers = Vec::with_capacity(seeded.drivers.len());
        for d in seeded.drivers {
            drivers.push(SeededDriver {
                token: self.issue_token(Actor::Driver(d.account.clone())).await?,
                account: d.account,
                cards: d.cards,
            });
        }
        Ok(SeededSite {
            edge_token: self.issue_token(Actor::Edge(seeded.site.clone())).await?,
            edge_credential: seeded.edge_credential,
            operator_token: self
                .issue_token(Actor::Operator(seeded.operator.clone()))
                .await?,
            operator: seeded.operator,
            site: seeded.site,
            time_zone: spec.time_zone.clone(),
            chargers: seeded.chargers,
            drivers,
            tariff: seeded.tariff,
        })
    }
}
