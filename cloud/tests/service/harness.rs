//! A cloud instance per test on SQLite in a temporary directory, with two tenants:
//! operator A (site A, charger A, driver A) and operator B (the same for B), and a token for
//! every role of each tenant.

#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use rust_decimal_macros::dec;
use serde_json::Value;
use voltline_cloud::config::{CloudConfig, MqttMode};
use voltline_cloud::domain::Actor;
use voltline_cloud::funds::InMemoryFunds;
use voltline_cloud::server::{self, Running};
use voltline_cloud::store::{NewCharger, NewSite, NewToken};
use voltline_cloud::{AppState, Store};
use voltline_protocol::domain::{AccountId, OperatorId, PileCode, SiteId};
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::Money;

pub const PILE_A: &str = "32010600000001";
pub const PILE_B: &str = "32010600000002";

/// One tenant's ids and tokens.
pub struct Tenant {
    pub operator: OperatorId,
    pub site: SiteId,
    pub pile: PileCode,
    pub account: AccountId,
    pub edge_secret: String,
    pub operator_token: String,
    pub driver_token: String,
    pub edge_token: String,
}

pub struct Srv {
    pub running: Option<Running>,
    pub base: String,
    pub http: reqwest::Client,
    pub funds: Arc<InMemoryFunds>,
    pub admin: String,
    pub a: Tenant,
    pub b: Tenant,
    pub dir: tempfile::TempDir,
    pub fixture_orders: tokio::sync::Mutex<std::collections::HashMap<String, (String, String)>>,
}

pub fn test_config() -> CloudConfig {
    let mut c = CloudConfig::default();
    c.mqtt.mode = MqttMode::Disabled;
    c.sessions.dispatch_interval_ms = 50;
    c.sessions.redeliver_after_ms = 1_000;
    c.http.rate_limit_per_s = 100_000;
    c.http.rate_limit_burst = 100_000;
    c
}

pub fn tariff(version: u32) -> Tariff {
    Tariff::new(
        TariffVersion(version),
        jiff::tz::TimeZone::get("Asia/Shanghai").expect("zone"),
        vec![TariffPeriod::new(
            "flat",
            Money::from_yuan(dec!(0.80)),
            Money::from_yuan(dec!(0.40)),
        )],
        vec![ScheduleEntry::new(TimeOfDay::new(0, 0).expect("time"), 0)],
    )
    .expect("tariff")
}

async fn token(store: &Store, actor: Actor) -> String {
    store
        .create_token(&NewToken {
            actor,
            label: "test".into(),
            expires_at: None,
        })
        .await
        .expect("token")
        .secret
        .expose()
        .to_owned()
}

async fn tenant(store: &Store, funds: &InMemoryFunds, tag: &str, pile: &str) -> Tenant {
    let operator = OperatorId::new(format!("op-{tag}")).unwrap();
    let site = SiteId::new(format!("site-{tag}")).unwrap();
    let account = AccountId::new(format!("driver-{tag}")).unwrap();
    let pile: PileCode = pile.parse().unwrap();
    store.create_operator(&operator, tag).await.unwrap();
    let (_, secret) = store
        .create_site(&NewSite {
            id: site.clone(),
            operator: operator.clone(),
            name: format!("site {tag}"),
            time_zone: "Asia/Shanghai".into(),
        })
        .await
        .unwrap();
    store
        .create_charger(&NewCharger {
            pile,
            site: site.clone(),
            connectors: 2,
        })
        .await
        .unwrap();
    store
        .create_account(&account, Some(&operator), &format!("driver {tag}"))
        .await
        .unwrap();
    store
        .create_tariff_version(
            &format!("tariff-{tag}"),
            &operator,
            &tariff(1),
            Timestamp::now(),
        )
        .await
        .unwrap();
    funds
        .deposit(
            &account,
            Money::from_yuan(dec!(100)),
            &format!("seed-{tag}"),
        )
        .unwrap();
    Tenant {
        operator_token: token(store, Actor::Operator(operator.clone())).await,
        driver_token: token(store, Actor::Driver(account.clone())).await,
        edge_token: token(store, Actor::Edge(site.clone())).await,
        operator,
        site,
        pile,
        account,
        edge_secret: secret.expose().to_owned(),
    }
}

impl Srv {
    pub async fn start() -> Srv {
        Srv::start_with(test_config()).await
    }

    pub async fn start_with(config: CloudConfig) -> Srv {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = Store::open_in_dir(dir.path()).await.expect("store");
        let funds = Arc::new(InMemoryFunds::new(
            Money::from_yuan(dec!(50)),
            Money::from_yuan(dec!(1)),
        ));
        let a = tenant(&store, &funds, "a", PILE_A).await;
        let b = tenant(&store, &funds, "b", PILE_B).await;
        let admin = token(&store, Actor::Admin).await;
        let running = Srv::launch(store, funds.clone(), config).await;
        Srv {
            base: format!("http://{}", running.http_addr),
            running: Some(running),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(20))
                .build()
                .unwrap(),
            funds,
            admin,
            a,
            b,
            dir,
            fixture_orders: Default::default(),
        }
    }

    pub async fn launch(store: Store, funds: Arc<InMemoryFunds>, config: CloudConfig) -> Running {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let state = AppState::new(store, funds, config);
        server::start(state, listener).await.expect("server starts")
    }

    /// Stops the instance and starts another on the same database (a cloud restart).
    pub async fn restart(&mut self, config: CloudConfig) {
        if let Some(r) = self.running.take() {
            r.stop(Duration::from_secs(5)).await;
        }
        let store = Store::open_in_dir(self.dir.path()).await.expect("reopen");
        let running = Srv::launch(store, self.funds.clone(), config).await;
        self.base = format!("http://{}", running.http_addr);
        self.running = Some(running);
    }

    pub fn state(&self) -> &AppState {
        &self.running.as_ref().expect("running").state
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.unwrap_or_default();
        let json = serde_json::from_str(&text).unwrap_or(Value::String(text));
        (status, json)
    }

    pub async fn get(&self, path: &str, token: &str) -> (u16, Value) {
        self.call(reqwest::Method::GET, path, Some(token), None)
            .await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> (u16, Value) {
        self.call(reqwest::Method::POST, path, Some(token), Some(body))
            .await
    }

    /// Starts a session for tenant A's driver; returns the 202 body.
    pub async fn start_session(&self, amount: Option<&str>) -> (u16, Value) {
        let mut body = serde_json::json!({
            "charger": self.a.pile.to_string(),
            "connector": 1,
            "account": self.a.account.to_string(),
        });
        if let Some(a) = amount {
            body["amount"] = Value::String(a.into());
        }
        self.post("/v1/sessions", &self.a.driver_token, body).await
    }

    /// Polls `path` until `done` holds of the body (at most `secs`).
    pub async fn poll_until(
        &self,
        path: &str,
        token: &str,
        secs: u64,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let (status, body) = self.get(path, token).await;
            if status == 200 && done(&body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{path} never reached the expected state; last: {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub async fn stop(mut self) {
        if let Some(r) = self.running.take() {
            r.stop(Duration::from_secs(5)).await;
        }
    }
}

/// A free TCP port on 127.0.0.1 (for the embedded broker, which cannot report its port).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}
