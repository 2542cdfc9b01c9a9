//! Seeding a cloud over its HTTP API, wherever it runs: [`RemoteCloud`] is a small client
//! of the cloud's HTTP API for a base URL and an admin token, and the one implementation of
//! the seeding steps — operators, sites, chargers with their MQTT passwords, drivers topped
//! up, cards, a tariff assigned. An in-process [`crate::TestCloud`] seeds through it too
//! ([`crate::TestCloud::remote`]) and adds the tokens it can issue itself.
//!
//! What it cannot do is issue tokens: only `voltline-cloud token create` (against the cloud's
//! data directory or database) does that, so the caller brings the admin token and, for an
//! edge, runs `token create --role edge --subject <site>` itself. Drivers are therefore
//! returned without tokens; an admin may start sessions for any account.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};
use voltline_cloud::domain::OrderKind;
use voltline_protocol::domain::{AccountId, OperatorId, PileCode, SiteId};
use voltline_protocol::message::common::PhysicalCardNo;
use voltline_protocol::tariff::{Tariff, TariffVersion};
use voltline_protocol::Money;

use crate::seed::{SeededCharger, SiteSpec};
use crate::HarnessError;

/// Top-up references handed out in this process.
static NEXT_REFERENCE: AtomicU64 = AtomicU64::new(1);

/// A driver as seeded remotely (no token: see the module doc).
#[derive(Debug, Clone)]
pub struct RemoteDriver {
    pub account: AccountId,
    pub cards: Vec<PhysicalCardNo>,
}

/// A site as seeded remotely.
#[derive(Debug, Clone)]
pub struct RemoteSite {
    pub operator: OperatorId,
    pub site: SiteId,
    /// The site's own MQTT credential from `POST /v1/sites`.
    pub edge_credential: String,
    pub chargers: Vec<SeededCharger>,
    pub drivers: Vec<RemoteDriver>,
    /// The assigned charge tariff (id, version).
    pub tariff: Option<(String, TariffVersion)>,
}

/// A client of a cloud's HTTP API at `base` (e.g. `http://127.0.0.1:8080`) acting as admin.
#[derive(Debug, Clone)]
pub struct RemoteCloud {
    base: String,
    admin_token: String,
    http: reqwest::Client,
}

impl RemoteCloud {
    /// A client of the cloud at `base` with `admin_token`; every request is bounded by 30 s.
    pub fn new(
        base: impl Into<String>,
        admin_token: impl Into<String>,
    ) -> Result<RemoteCloud, HarnessError> {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()?;
        Ok(RemoteCloud {
            base: base.into().trim_end_matches('/').to_owned(),
            admin_token: admin_token.into(),
            http,
        })
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The admin token.
    pub fn admin_token(&self) -> &str {
        &self.admin_token
    }

    /// The HTTP client (for requests this type has no method for).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Sends `body` to `path` with the admin token; returns the status and the JSON body
    /// (`Null` when the body is not JSON).
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(u16, Value), HarnessError> {
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.admin_token);
        if let Some(b) = body {
            req = req.json(b);
        }
        let resp = req.send().await?;
        let status = resp.status().as_u16();
        let text = resp.text().await?;
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// [`RemoteCloud::call`], failing unless the status is one of `ok`.
    pub async fn expect(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        ok: &[u16],
    ) -> Result<Value, HarnessError> {
        let (status, answer) = self.call(method.clone(), path, body).await?;
        if !ok.contains(&status) {
            return Err(HarnessError::Api {
                call: format!("{method} {path}"),
                status,
                body: answer.to_string(),
            });
        }
        Ok(answer)
    }

    /// Waits until `GET /readyz` answers 200, for at most `within`.
    pub async fn wait_ready(&self, within: Duration) -> Result<(), HarnessError> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let ok = self
                .http
                .get(format!("{}/readyz", self.base))
                .send()
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false);
            if ok {
                return Ok(());
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(HarnessError::Timeout(format!(
                    "{}/readyz did not answer 200 within {within:?}; read the cloud's log",
                    self.base
                )));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Creates operator `id` unless it exists.
    pub async fn ensure_operator(&self, id: &str) -> Result<OperatorId, HarnessError> {
        let body = json!({"id": id, "name": id});
        self.expect(Method::POST, "/v1/operators", Some(&body), &[201, 409])
            .await?;
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
            .expect(Method::POST, "/v1/chargers", Some(&body), &[201])
            .await?;
        text(&answer, "credential")
    }

    /// Creates a driver account scoped to `operator`.
    pub async fn create_account(
        &self,
        operator: &OperatorId,
        id: &str,
    ) -> Result<AccountId, HarnessError> {
        let body = json!({"id": id, "operator": operator.to_string(), "name": id});
        self.expect(Method::POST, "/v1/accounts", Some(&body), &[201])
            .await?;
        Ok(crate::parse_id(id, "account id"))
    }

    /// Credits `amount` to `account` (provider `test`, a fresh reference); returns the
    /// available balance after it.
    pub async fn top_up(&self, account: &AccountId, amount: Money) -> Result<Money, HarnessError> {
        let reference = format!(
            "remote-seed-{}-{}",
            std::process::id(),
            NEXT_REFERENCE.fetch_add(1, Ordering::Relaxed)
        );
        let body = json!({"amount": amount, "provider": "test", "reference": reference});
        let path = format!("/v1/accounts/{account}/top-ups");
        let answer = self
            .expect(Method::POST, &path, Some(&body), &[200])
            .await?;
        Ok(crate::parse_id(&text(&answer, "available")?, "amount"))
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
        self.expect(Method::POST, &path, Some(&body), &[201])
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
        let from = "2000-01-01T00:00:00Z";
        let body = json!({"tariff_id": tariff_id, "operator": operator.to_string(), "tariff": tariff, "effective_from": from});
        self.expect(Method::POST, "/v1/tariffs", Some(&body), &[201])
            .await?;
        let body = json!({"tariff_id": tariff_id, "version": tariff.version(), "kind": kind, "effective_from": from});
        let path = format!("/v1/sites/{site}/tariffs");
        let answer = self
            .expect(Method::POST, &path, Some(&body), &[200])
            .await?;
        Ok(answer["config_version"].as_u64().unwrap_or_default())
    }

    /// Seeds everything `spec` describes, as [`crate::TestCloud::seed_site`] does (without
    /// tokens).
    pub async fn seed_site(&self, spec: &SiteSpec) -> Result<RemoteSite, HarnessError> {
        let operator = self.ensure_operator(&spec.operator).await?;
        let body = json!({"id": spec.site, "operator": spec.operator, "name": spec.site, "time_zone": spec.time_zone});
        let created = self
            .expect(Method::POST, "/v1/sites", Some(&body), &[201])
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
            drivers.push(RemoteDriver {
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
        Ok(RemoteSite {
            edge_credential: text(&created, "edge_credential")?,
            operator,
            site,
            chargers,
            drivers,
            tariff,
        })
    }

    /// The cloud's `/metrics` text.
    pub async fn metrics_text(&self) -> Result<String, HarnessError> {
        Ok(self
            .http
            .get(format!("{}/metrics", self.base))
            .send()
            .await?
            .text()
            .await?)
    }
}

/// The sum of every sample of Prometheus metric `name` whose labels contain all of
/// `labels` (`key="value"` strings) in `/metrics` text; 0 when there is none.
pub fn metric_sum(metrics: &str, name: &str, labels: &[&str]) -> f64 {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = match series.split_once('{') {
                Some((m, r)) => (m, r),
                None => (series, ""),
            };
            (metric == name && labels.iter().all(|want| rest.contains(want)))
                .then(|| value.trim().parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

fn text(v: &Value, field: &str) -> Result<String, HarnessError> {
    v[field]
        .as_str()
        .map(str::to_owned)
        .ok_or_else(|| HarnessError::Contract(format!("the cloud's answer has no '{field}': {v}")))
}

#[cfg(test)]
mod tests {
    use super::metric_sum;

    #[test]
    fn metric_sum_adds_the_matching_series_only() {
        let text = "# TYPE voltline_ingest_records_total counter\n\
                    voltline_ingest_records_total{path=\"mqtt\"} 40\n\
                    voltline_ingest_records_total{path=\"http\"} 2\n\
                    voltline_settlements_total{outcome=\"settled\"} 7\n\
                    voltline_settlements_total{outcome=\"failed\"} 1\n";
        assert_eq!(metric_sum(text, "voltline_ingest_records_total", &[]), 42.0);
        assert_eq!(
            metric_sum(text, "voltline_settlements_total", &["outcome=\"settled\""]),
            7.0
        );
        assert_eq!(metric_sum(text, "missing", &[]), 0.0);
    }
}
