//! Seeding a [`TestCloud`] through its real HTTP API (so wallets open and config versions move
//! as in production): operators, sites, chargers with their MQTT passwords, driver accounts
//! topped up, cards, a tariff assigned to the site, and the tokens each party uses.
//!
//! One secret per edge: [`SeededSite::edge_token`] is an edge bearer token for the site; the
//! cloud's broker accepts it as the MQTT password (client id = username = site id) and the
//! HTTP API as the bearer of `/v1/edges/{site}/...`.

use std::sync::atomic::{AtomicU64, Ordering};

use jiff::Timestamp;
use reqwest::Method;
use serde_json::json;
use voltline_cloud::domain::{Actor, OrderKind};
use voltline_protocol::domain::{AccountId, OperatorId, PileCode, SiteId};
use voltline_protocol::message::common::PhysicalCardNo;
use voltline_protocol::tariff::{Tariff, TariffVersion};
use voltline_protocol::Money;

use crate::cloud::TestCloud;
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
    /// Creates operator `id` unless it exists.
    pub async fn ensure_operator(&self, id: &str) -> Result<OperatorId, HarnessError> {
        let (status, body) = self
            .call(
                Method::POST,
                "/v1/operators",
                Some(self.admin_token()),
                Some(&json!({"id": id, "name": id})),
            )
            .await?;
        if status != 201 && status != 409 {
            return Err(HarnessError::Api {
                call: "POST /v1/operators".into(),
                status,
                body: body.to_string(),
            });
        }
        Ok(crate::parse_id(id, "operator id"))
    }

    /// Registers a charger; returns its MQTT password.
    pub async fn create_charger(
        &self,
        site: &SiteId,
        pile: PileCode,
        connectors: u8,
    ) -> Result<String, HarnessError> {
        let body =
            json!({"pile": pile.to_string(), "site": site.to_string(), "connectors": connectors});
        let answer = self
            .expect(
                Method::POST,
                "/v1/chargers",
                self.admin_token(),
                Some(&body),
                201,
            )
            .await?;
        Ok(text(&answer, "credential"))
    }

    /// Creates a driver account scoped to `operator`.
    pub async fn create_account(
        &self,
        operator: &OperatorId,
        id: &str,
    ) -> Result<AccountId, HarnessError> {
        let body = json!({"id": id, "operator": operator.to_string(), "name": id});
        self.expect(
            Method::POST,
            "/v1/accounts",
            self.admin_token(),
            Some(&body),
            201,
        )
        .await?;
        Ok(crate::parse_id(id, "account id"))
    }

    /// Credits `amount` to `account` (provider `test`, a fresh reference); returns the
    /// available balance after it.
    pub async fn top_up(&self, account: &AccountId, amount: Money) -> Result<Money, HarnessError> {
        let reference = format!("seed-{}", NEXT_NUMBER.fetch_add(1, Ordering::Relaxed));
        let body = json!({"amount": amount, "provider": "test", "reference": reference});
        let path = format!("/v1/accounts/{account}/top-ups");
        let answer = self
            .expect(Method::POST, &path, self.admin_token(), Some(&body), 200)
            .await?;
        Ok(crate::parse_id(&text(&answer, "available"), "amount"))
    }

    /// Registers `card` for `account` with `offline_limit` (`None`: the cloud's default).
    pub async fn register_card(
        &self,
        account: &AccountId,
        card: PhysicalCardNo,
        offline_limit: Option<Money>,
    ) -> Result<(), HarnessError> {
        let mut body = json!({"card": card.to_string()});
        if let Some(l) = offline_limit {
            body["offline_limit"] = json!(l);
        }
        let path = format!("/v1/accounts/{account}/cards");
        self.expect(Method::POST, &path, self.admin_token(), Some(&body), 201)
            .await?;
        Ok(())
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
        let from = Timestamp::from_second(946_684_800).expect("2000-01-01");
        let body = json!({"tariff_id": tariff_id, "operator": operator.to_string(), "tariff": tariff, "effective_from": from});
        self.expect(
            Method::POST,
            "/v1/tariffs",
            self.admin_token(),
            Some(&body),
            201,
        )
        .await?;
        let body = json!({"tariff_id": tariff_id, "version": tariff.version(), "kind": kind, "effective_from": from});
        let path = format!("/v1/sites/{site}/tariffs");
        let answer = self
            .expect(Method::POST, &path, self.admin_token(), Some(&body), 200)
            .await?;
        Ok(answer["config_version"].as_u64().unwrap_or_default())
    }

    /// Seeds everything `spec` describes.
    pub async fn seed_site(&self, spec: &SiteSpec) -> Result<SeededSite, HarnessError> {
        let operator = self.ensure_operator(&spec.operator).await?;
        let body = json!({"id": spec.site, "operator": spec.operator, "name": spec.site, "time_zone": spec.time_zone});
        let created = self
            .expect(
                Method::POST,
                "/v1/sites",
                self.admin_token(),
                Some(&body),
                201,
            )
            .await?;
        let site: SiteId = crate::parse_id(&spec.site, "site id");
        let mut chargers = Vec::with_capacity(spec.chargers.len());
        for &(pile, connectors) in &spec.chargers {
            let password = self.create_charger(&site, pile, connectors).await?;
            chargers.push(SeededCharger {
                pile,
                connectors,
                password,
            });
        }
        let mut drivers = Vec::with_capacity(spec.drivers.len());
        for d in &spec.drivers {
            let account = self.create_account(&operator, &d.account).await?;
            if !d.top_up.is_zero() {
                self.top_up(&account, d.top_up).await?;
            }
            for &(card, limit) in &d.cards {
                self.register_card(&account, card, limit).await?;
            }
            drivers.push(SeededDriver {
                token: self.issue_token(Actor::Driver(account.clone())).await?,
                account,
                cards: d.cards.iter().map(|(c, _)| *c).collect(),
            });
        }
        let tariff = match &spec.tariff {
            Some(t) => {
                let tariff_id = format!("tariff-{}", spec.site);
                self.assign_tariff(&operator, &site, &tariff_id, t, OrderKind::Charge)
                    .await?;
                Some((tariff_id, t.version()))
            }
            None => None,
        };
        Ok(SeededSite {
            edge_token: self.issue_token(Actor::Edge(site.clone())).await?,
            edge_credential: text(&created, "edge_credential"),
            operator_token: self.issue_token(Actor::Operator(operator.clone())).await?,
            operator,
            site,
            time_zone: spec.time_zone.clone(),
            chargers,
            drivers,
            tariff,
        })
    }
}

fn text(v: &serde_json::Value, field: &str) -> String {
    v[field]
        .as_str()
        .map(str::to_owned)
        .unwrap_or_else(|| panic!("the cloud's answer has no '{field}': {v}"))
}
