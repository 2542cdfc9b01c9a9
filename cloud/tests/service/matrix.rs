//! Nobody reaches what is not theirs: every role (and no token) against every route, on its
//! own tenant's ids and on the other tenant's; the OpenAPI document matches the routes; bad
//! input is a 4xx problem, never a 500.

use std::sync::atomic::{AtomicU32, Ordering};

use reqwest::Method;
use serde_json::{json, Value};
use voltline_cloud::api::routes;

use super::harness::{Srv, Tenant};

static N: AtomicU32 = AtomicU32::new(0);

fn n() -> u32 {
    N.fetch_add(1, Ordering::Relaxed)
}

/// The request for `path` on `t`'s resources (fresh ids where it creates something).
async fn request(srv: &Srv, method: &Method, path: &str, t: &Tenant) -> (String, Option<Value>) {
    let i = n();
    let order = srv.fixture_order(t).await;
    let discharge = srv.fixture_discharge(t).await;
    let bill = super::bills::fixture_bill(srv, t).await;
    // Each removal needs a card of its own (the previous caller may have removed one).
    let card = format!("{:016X}", 0xC0DE_0000_u64 + u64::from(i));
    if *method == Method::DELETE && path == "/v1/accounts/{id}/cards/{card}" {
        let (s, b) = srv
            .post(
                &format!("/v1/accounts/{}/cards", t.account),
                &srv.admin,
                json!({"card": card}),
            )
            .await;
        assert_eq!(s, 201, "{b}");
    }
    let fill = |p: &str| {
        p.replace(
            "/v1/operators/{id}",
            &format!("/v1/operators/{}", t.operator),
        )
        .replace("/v1/sites/{id}", &format!("/v1/sites/{}", t.site))
        .replace("{pile}", &t.pile.to_string())
        .replace("/v1/accounts/{id}", &format!("/v1/accounts/{}", t.account))
        .replace("/v1/sessions/{id}", &format!("/v1/sessions/{}", order.0))
        .replace(
            "/v1/discharges/{id}",
            &format!("/v1/discharges/{discharge}"),
        )
        .replace("/v1/commands/{id}", &format!("/v1/commands/{}", order.1))
        .replace("{site}", t.site.as_str())
        .replace("{card}", &card)
        .replace("/v1/bills/{id}", &format!("/v1/bills/{bill}"))
    };
    let body = match (method.as_str(), path) {
        ("POST", "/v1/operators") => Some(json!({"id": format!("op-new-{i}"), "name": "n"})),
        ("POST", "/v1/sites") => Some(
            json!({"id": format!("site-new-{i}"), "operator": t.operator.to_string(), "name": "n", "time_zone": "Europe/Berlin"}),
        ),
        ("POST", "/v1/sites/{id}/tariffs") => Some(
            json!({"tariff_id": format!("tariff-{}", &t.operator.as_str()[3..]), "version": 1}),
        ),
        ("POST", "/v1/chargers") => Some(
            json!({"pile": format!("3201070{:07}", i), "site": t.site.to_string(), "connectors": 1}),
        ),
        ("POST", "/v1/accounts") => Some(
            json!({"id": format!("acct-new-{i}"), "operator": t.operator.to_string(), "name": "n"}),
        ),
        ("POST", "/v1/accounts/{id}/cards") => Some(json!({"card": card, "offline_limit": "20"})),
        ("POST", "/v1/accounts/{id}/top-ups") | ("POST", "/v1/accounts/{id}/refunds") => {
            Some(json!({"amount": "0.01", "provider": "test", "reference": format!("ref-{i}")}))
        }
        ("POST", "/v1/tariffs") => Some(
            json!({"tariff_id": format!("t-new-{i}"), "operator": t.operator.to_string(), "tariff": super::harness::tariff(1)}),
        ),
        ("POST", "/v1/sessions") => Some(
            json!({"charger": t.pile.to_string(), "connector": 2, "account": t.account.to_string(), "amount": "1"}),
        ),
        ("POST", "/v1/sessions/{id}/stop") => None,
        ("POST", "/v1/sessions/{id}/refunds") => {
            Some(json!({"amount": "0.01", "request_id": format!("r-{i}")}))
        }
        ("POST", "/v1/discharges") => Some(
            json!({"charger": t.pile.to_string(), "connector": 1, "account": t.account.to_string(), "soc_floor_pct": 30, "departure": jiff::Timestamp::now() + jiff::SignedDuration::from_hours(3)}),
        ),
        ("POST", "/v1/sites/{id}/grid-events") => Some(
            json!({"power_kw": "50", "from": jiff::Timestamp::now(), "to": jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)}),
        ),
        ("PUT", "/v1/chargers/{pile}/v2g") => Some(json!({"v2g": true})),
        ("POST", "/v1/operators/{id}/sharing-rules") => {
            Some(json!({"terms": {"service_fee_pct": "10", "per_session": "0.10"}}))
        }
        ("PUT", "/v1/operators/{id}/billing") => Some(json!({"time_zone": "Asia/Shanghai"})),
        ("PUT", "/v1/operators/{id}/webhook") => {
            Some(json!({"url": "http://127.0.0.1:9/hook", "secret": "0123456789abcdef0123"}))
        }
        ("POST", "/v1/edges/{site}/records") => {
            Some(json!({"v": 1, "site": t.site.to_string(), "records": [
                {"seq": 1, "at": "2026-01-01T00:00:00Z", "type": "alarm", "severity": "info", "code": "test", "message": "m", "pile": null}
            ]}))
        }
        _ => None,
    };
    let path = match path {
        // The list names the tenant it asks for (an operator's own list needs no filter).
        "/v1/bills" => format!("/v1/bills?operator={}", t.operator),
        p => fill(p),
    };
    (path, body)
}

/// Which callers of tenant A may use `path` on A's resources.
fn allowed(method: &Method, path: &str, role: &str) -> bool {
    let r = role;
    match (method.as_str(), path) {
        ("POST", "/v1/operators")
        | ("POST", "/v1/operators/{id}/sharing-rules")
        | ("PUT", "/v1/operators/{id}/billing") => r == "admin",
        ("GET", "/v1/events") => r != "none",
        ("GET", "/v1/accounts/{id}")
        | ("POST", "/v1/accounts/{id}/top-ups")
        | ("GET", "/v1/accounts/{id}/ledger")
        | ("POST", "/v1/accounts/{id}/cards")
        | ("GET", "/v1/accounts/{id}/cards")
        | ("DELETE", "/v1/accounts/{id}/cards/{card}") => {
            matches!(r, "admin" | "operator" | "driver")
        }
        ("GET", "/v1/sessions/{id}")
        | ("GET", "/v1/sessions/{id}/payment")
        | ("POST", "/v1/sessions/{id}/stop")
        | ("GET", "/v1/commands/{id}") => {
            matches!(r, "admin" | "operator" | "driver")
        }
        ("POST", "/v1/sessions") => matches!(r, "admin" | "driver"),
        // An operator may opt its own accounts in on their behalf.
        ("POST", "/v1/discharges")
        | ("GET", "/v1/discharges/{id}")
        | ("POST", "/v1/discharges/{id}/stop") => matches!(r, "admin" | "operator" | "driver"),
        ("POST", "/v1/edges/{site}/records") | ("GET", "/v1/edges/{site}/config") => {
            matches!(r, "admin" | "edge")
        }
        _ => matches!(r, "admin" | "operator"),
    }
}

impl Srv {
    /// A session of `t`'s driver, created once per tenant: (order id, command id).
    pub async fn fixture_order(&self, t: &Tenant) -> (String, String) {
        if let Some(o) = self.fixture_orders.lock().await.get(t.site.as_str()) {
            return o.clone();
        }
        let body = json!({"charger": t.pile.to_string(), "connector": 1, "account": t.account.to_string(), "amount": "1"});
        let (s, b) = self.post("/v1/sessions", &self.admin, body).await;
        assert_eq!(s, 202, "{b}");
        let o = (
            b["order_id"].as_str().unwrap().to_owned(),
            b["command_id"].as_str().unwrap().to_owned(),
        );
        self.fixture_orders
            .lock()
            .await
            .insert(t.site.to_string(), o.clone());
        o
    }
}

impl Srv {
    /// A discharge order of `t`'s driver on connector 2 of its charger (made V2G-capable,
    /// with a vehicle reported plugged in), created once per tenant: its id.
    pub async fn fixture_discharge(&self, t: &Tenant) -> String {
        let key = format!("discharge-{}", t.site);
        if let Some(o) = self.fixture_orders.lock().await.get(&key) {
            return o.0.clone();
        }
        let store = &self.state().store;
        store.set_charger_v2g(&t.pile, true).await.unwrap();
        super::discharges::report_plugged(self, t, 2, 900_000).await;
        let body = json!({"charger": t.pile.to_string(), "connector": 2, "account": t.account.to_string(),
            "soc_floor_pct": 30, "departure": jiff::Timestamp::now() + jiff::SignedDuration::from_hours(3)});
        let (s, b) = self.post("/v1/discharges", &self.admin, body).await;
        assert_eq!(s, 202, "{b}");
        let o = b["order_id"].as_str().unwrap().to_owned();
        self.fixture_orders
            .lock()
            .await
            .insert(key, (o.clone(), String::new()));
        o
    }
}

#[tokio::test]
async fn every_role_against_every_route_on_own_and_foreign_ids() {
    let srv = Srv::start().await;
    let a = &srv.a;
    let callers = [
        ("none", None),
        ("admin", Some(srv.admin.clone())),
        ("operator", Some(a.operator_token.clone())),
        ("driver", Some(a.driver_token.clone())),
        ("edge", Some(a.edge_token.clone())),
    ];
    let mut failures = Vec::new();
    let mut checked = 0;
    for route in routes().into_iter().filter(|r| r.authenticated) {
        for (tenant_name, tenant) in [("own", &srv.a), ("foreign", &srv.b)] {
            for (role, token) in &callers {
                let (path, body) = request(&srv, &route.method, route.path, tenant).await;
                let (status, answer) = srv
                    .call(route.method.clone(), &path, token.as_deref(), body)
                    .await;
                checked += 1;
                let want_ok = tenant_name == "own" && allowed(&route.method, route.path, role)
                    || (*role == "admin")
                    || (route.path == "/v1/events" && *role != "none");
                let ok = match *role {
                    "none" => status == 401,
                    _ if want_ok => !matches!(status, 401 | 403 | 404) && status < 500,
                    _ => matches!(status, 403 | 404),
                };
                if !ok {
                    failures.push(format!(
                        "{role} {} {path} ({tenant_name}): {status} {answer}",
                        route.method
                    ));
                }
            }
        }
    }
    assert!(checked >= 200, "the matrix ran only {checked} checks");
    assert!(
        failures.is_empty(),
        "{} of {checked} checks failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    srv.stop().await;
}

#[tokio::test]
async fn openapi_documents_exactly_the_routes() {
    let srv = Srv::start().await;
    let (s, doc) = srv.call(Method::GET, "/openapi.json", None, None).await;
    assert_eq!(s, 200);
    let mut documented: Vec<(String, String)> = Vec::new();
    for (path, methods) in doc["paths"].as_object().unwrap() {
        for method in methods.as_object().unwrap().keys() {
            documented.push((method.to_uppercase(), path.clone()));
        }
    }
    let mut served: Vec<(String, String)> = routes()
        .into_iter()
        .map(|r| (r.method.to_string(), r.path.to_owned()))
        .collect();
    documented.sort();
    served.sort();
    assert_eq!(documented, served);
    // Each documented route is really served: a request without a token is 401 (or 200 for
    // the public ones), never the router's 404/405.
    for (method, path) in &documented {
        let concrete = path
            .replace("{id}", "x")
            .replace("{pile}", "32010600000001")
            .replace("{site}", "x")
            .replace("{card}", "00000000D14B0A54");
        let m = Method::from_bytes(method.as_bytes()).unwrap();
        let (status, body) = srv.call(m, &concrete, None, None).await;
        assert!(
            matches!(status, 200 | 401),
            "{method} {path}: {status} {body}"
        );
    }
    let (status, body) = srv.call(Method::GET, "/v1/nothing-here", None, None).await;
    assert_eq!(status, 404);
    assert_eq!(body["status"], 404);
    srv.stop().await;
}

#[tokio::test]
async fn malformed_input_is_a_4xx_problem_never_a_500() {
    let srv = Srv::start().await;
    let t = srv.admin.clone();
    let cases: Vec<(Method, &str, Option<&str>)> = vec![
        (Method::POST, "/v1/sessions", Some("{not json")),
        (
            Method::POST,
            "/v1/sessions",
            Some(r#"{"charger": "abc", "connector": 1, "account": "x"}"#),
        ),
        (
            Method::POST,
            "/v1/sessions",
            Some(
                r#"{"charger": "32010600000001", "connector": 1, "account": "driver-a", "amount": "-5"}"#,
            ),
        ),
        (
            Method::POST,
            "/v1/sessions",
            Some(r#"{"charger": "32010600000001", "connector": 9, "account": "driver-a"}"#),
        ),
        (
            Method::POST,
            "/v1/sessions",
            Some(r#"{"charger": "32010699999999", "connector": 1, "account": "driver-a"}"#),
        ),
        (
            Method::POST,
            "/v1/sessions",
            Some(
                r#"{"charger": "32010600000001", "connector": 1, "account": "driver-a", "surprise": 1}"#,
            ),
        ),
        (Method::GET, "/v1/sessions/ord-unknown", None),
        (Method::GET, "/v1/chargers/not-a-pile", None),
        (Method::GET, "/v1/commands/%00bad", None),
        (Method::GET, "/v1/accounts/driver-a/ledger?limit=abc", None),
        (Method::GET, "/v1/accounts/driver-a/ledger?limit=0", None),
        (
            Method::POST,
            "/v1/sites",
            Some(r#"{"id": "s-x", "operator": "op-a", "name": "n", "time_zone": "Mars/Olympus"}"#),
        ),
        (
            Method::POST,
            "/v1/edges/site-a/records",
            Some(r#"{"v": 2, "site": "site-a", "records": []}"#),
        ),
        (
            Method::POST,
            "/v1/edges/site-a/records",
            Some(
                r#"{"v": 1, "site": "site-b", "records": [{"seq": 1, "at": "2026-01-01T00:00:00Z", "type": "alarm", "severity": "info", "code": "c", "message": "m", "pile": null}]}"#,
            ),
        ),
        (Method::DELETE, "/v1/sessions", None),
    ];
    for (method, path, body) in cases {
        let mut req = srv
            .http
            .request(method.clone(), srv.url(path))
            .bearer_auth(&t);
        if let Some(b) = body {
            req = req
                .header("content-type", "application/json")
                .body(b.to_owned());
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let ctype = resp
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap_or("").to_owned());
        let text = resp.text().await.unwrap();
        assert!(
            (400..500).contains(&status),
            "{method} {path}: {status} {text}"
        );
        assert_eq!(
            ctype.as_deref(),
            Some("application/problem+json"),
            "{method} {path}: {text}"
        );
        let problem: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(problem["status"], status);
        assert!(!problem["detail"].as_str().unwrap().is_empty());
    }
    srv.stop().await;
}

#[tokio::test]
async fn unknown_tokens_are_401_and_health_needs_none() {
    let srv = Srv::start().await;
    let (s, _) = srv.get("/v1/sessions/x", "vlt_nope.nope").await;
    assert_eq!(s, 401);
    for p in ["/healthz", "/readyz", "/metrics"] {
        let (s, body) = srv.call(Method::GET, p, None, None).await;
        assert_eq!(s, 200, "{p}: {body}");
    }
    srv.stop().await;
}
