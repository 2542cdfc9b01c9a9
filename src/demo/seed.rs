//! The demo's world, created through the cloud's own HTTP API the way an operator's tools
//! would: an operator, a site, the chargers, drivers with a topped-up wallet and a card each,
//! and a time-of-use tariff. Idempotent: on a second run everything already exists (409) and
//! is kept, so the demo continues from the stored state.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use voltline_protocol::domain::{AccountId, PileCode, SiteId};
use voltline_protocol::message::transaction::PhysicalCardNo;
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::Money;

pub const OPERATOR: &str = "demo-operator";
pub const SITE: &str = "demo-site";
pub const TIME_ZONE: &str = "Asia/Shanghai";

/// Pile `n` (1-based) of the demo site.
pub fn pile(n: u32) -> PileCode {
    PileCode::from_number(32_010_900_000_000 + u64::from(n)).expect("a 14-digit pile code")
}

/// The card of driver `n`.
pub fn card(n: u32) -> PhysicalCardNo {
    PhysicalCardNo::from_bytes((0xDE40_0000_u64 + u64::from(n)).to_be_bytes())
}

/// Driver `n`'s account.
pub fn driver(n: u32) -> AccountId {
    AccountId::new(format!("demo-driver-{n}")).expect("a valid account id")
}

/// Sharp/peak/flat/valley, the shape of a Chinese commercial tariff (yuan per kWh).
pub fn tariff() -> Tariff {
    let yuan = |s: &str| Money::from_yuan(s.parse().expect("a decimal"));
    let at = |h| TimeOfDay::new(h, 0).expect("an hour");
    Tariff::new(
        TariffVersion(1),
        jiff::tz::TimeZone::get(TIME_ZONE).expect("the bundled zone"),
        vec![
            TariffPeriod::new("sharp", yuan("1.30"), yuan("0.80")),
            TariffPeriod::new("peak", yuan("1.05"), yuan("0.70")),
            TariffPeriod::new("flat", yuan("0.70"), yuan("0.60")),
            TariffPeriod::new("valley", yuan("0.35"), yuan("0.40")),
        ],
        vec![
            ScheduleEntry::new(at(0), 3),
            ScheduleEntry::new(at(8), 2),
            ScheduleEntry::new(at(10), 1),
            ScheduleEntry::new(at(18), 0),
            ScheduleEntry::new(at(21), 1),
            ScheduleEntry::new(at(23), 3),
        ],
    )
    .expect("a valid tariff")
}

/// Why seeding failed.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("the cloud's API: {0}")]
    Http(#[from] reqwest::Error),
    #[error("{call} answered {status}: {body}")]
    Refused {
        call: String,
        status: StatusCode,
        body: String,
    },
}

/// A small client of the cloud's API with one bearer token.
pub struct Api {
    base: String,
    token: String,
    http: reqwest::Client,
}

impl Api {
    pub fn new(base: String, token: String) -> Api {
        Api {
            base,
            token,
            http: reqwest::Client::new(),
        }
    }

    /// Sends `body` to `path`; `ok` lists the statuses that count as success.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
        ok: &[u16],
    ) -> Result<Value, SeedError> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.base))
            .bearer_auth(&self.token);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await?;
        let status = resp.status();
        let text = resp.text().await?;
        if !ok.contains(&status.as_u16()) {
            return Err(SeedError::Refused {
                call: format!("{method} {path}"),
                status,
                body: text,
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

/// Creates what is missing of the demo world. `fresh_top_up` credits each new driver.
pub async fn seed(api: &Api, chargers: u32, drivers: u32) -> Result<SiteId, SeedError> {
    const CREATED_OR_KEPT: &[u16] = &[200, 201, 409];
    api.send(
        Method::POST,
        "/v1/operators",
        Some(json!({"id": OPERATOR, "name": "Demo Charging Co."})),
        CREATED_OR_KEPT,
    )
    .await?;
    api.send(
        Method::POST,
        "/v1/sites",
        Some(
            json!({"id": SITE, "operator": OPERATOR, "name": "Demo site", "time_zone": TIME_ZONE}),
        ),
        CREATED_OR_KEPT,
    )
    .await?;
    for n in 1..=chargers {
        api.send(
            Method::POST,
            "/v1/chargers",
            Some(json!({"pile": pile(n).to_string(), "site": SITE, "connectors": 2})),
            CREATED_OR_KEPT,
        )
        .await?;
    }
    for n in 1..=drivers {
        let account = driver(n);
        let created = api
            .send(
                Method::POST,
                "/v1/accounts",
                Some(json!({"id": account.as_str(), "operator": OPERATOR, "name": format!("Driver {n}")})),
                CREATED_OR_KEPT,
            )
            .await;
        created?;
        // Idempotent by reference: a second run does not credit again.
        api.send(
            Method::POST,
            &format!("/v1/accounts/{account}/top-ups"),
            Some(json!({"amount": "500.00", "provider": "demo", "reference": format!("demo-seed-{n}")})),
            &[200],
        )
        .await?;
        api.send(
            Method::POST,
            &format!("/v1/accounts/{account}/cards"),
            Some(json!({"card": card(n).to_string(), "offline_limit": "80.00"})),
            CREATED_OR_KEPT,
        )
        .await?;
    }
    let from = "2000-01-01T00:00:00Z";
    let t = tariff();
    api.send(
        Method::POST,
        "/v1/tariffs",
        Some(json!({"tariff_id": "demo-tou", "operator": OPERATOR, "tariff": t, "effective_from": from})),
        CREATED_OR_KEPT,
    )
    .await?;
    api.send(
        Method::POST,
        &format!("/v1/sites/{SITE}/tariffs"),
        Some(json!({"tariff_id": "demo-tou", "version": t.version(), "kind": "charge", "effective_from": from})),
        CREATED_OR_KEPT,
    )
    .await?;
    Ok(SiteId::new(SITE).expect("a valid site id"))
}
