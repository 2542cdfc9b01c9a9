//! The bill API over HTTP: an operator lists and downloads its own bills (JSON and CSV, by
//! suffix or `?format=csv`), never another operator's; admins see all; drivers and edges see
//! none; sharing rules are created by admins only and take effect no sooner than the lead
//! time; webhook endpoints are set by the operator and never echo the secret.

use jiff::civil::date;
use jiff::Timestamp;
use reqwest::Method;
use serde_json::json;
use voltline_cloud::bills::store::StoredBill;
use voltline_cloud::bills::{BillJob, BillJobConfig, BillsError};

use super::harness::{Srv, Tenant};

/// `t`'s bill for 2026-01-01 (issued once; empty), for the matrix and these tests.
pub async fn fixture_bill(srv: &Srv, t: &Tenant) -> String {
    let day = date(2026, 1, 1);
    let job = BillJob::new(
        srv.state().store.clone(),
        BillJobConfig::default(),
        "fixture",
    );
    match job.issue_day(&t.operator, day, Timestamp::now()).await {
        Ok(b) => b.id,
        Err(BillsError::AlreadyIssued { .. }) => StoredBill::id_for(&t.operator, day),
        Err(e) => panic!("fixture bill: {e}"),
    }
}

#[tokio::test]
async fn operators_read_only_their_own_bills_as_json_and_csv() {
    let srv = Srv::start().await;
    let (a, b) = (
        fixture_bill(&srv, &srv.a).await,
        fixture_bill(&srv, &srv.b).await,
    );
    let (s, body) = srv.get("/v1/bills", &srv.a.operator_token).await;
    assert_eq!(s, 200, "{body}");
    let ids: Vec<&str> = body["bills"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        vec![a.as_str()],
        "an operator lists its own bills only"
    );
    let (s, body) = srv.get("/v1/bills", &srv.admin).await;
    assert_eq!(s, 200);
    assert_eq!(body["bills"].as_array().unwrap().len(), 2, "admins see all");
    for (path, want) in [
        (format!("/v1/bills?operator={}", srv.b.operator), 403),
        (format!("/v1/bills/{b}"), 403),
        (format!("/v1/bills/{b}.csv"), 403),
        (format!("/v1/bills/{b}?format=csv"), 403),
        (format!("/v1/bills/{a}"), 200),
        ("/v1/bills/bill-nope".to_owned(), 404),
        (format!("/v1/bills/{a}?format=xml"), 400),
    ] {
        let (s, body) = srv.get(&path, &srv.a.operator_token).await;
        assert_eq!(s, want, "{path}: {body}");
    }
    for token in [&srv.a.driver_token, &srv.a.edge_token] {
        assert_eq!(srv.get("/v1/bills", token).await.0, 403);
        assert_eq!(srv.get(&format!("/v1/bills/{a}"), token).await.0, 403);
    }
    let (s, body) = srv
        .get(&format!("/v1/bills/{a}"), &srv.a.operator_token)
        .await;
    assert_eq!(s, 200);
    assert_eq!(body["operator"], srv.a.operator.as_str());
    assert_eq!(body["day"], "2026-01-01");
    assert_eq!(body["totals"]["sessions"], 0);
    assert_eq!(body["net_payable"], "0.00");
    for path in [
        format!("/v1/bills/{a}.csv"),
        format!("/v1/bills/{a}?format=csv"),
    ] {
        let resp = srv
            .http
            .get(srv.url(&path))
            .bearer_auth(&srv.a.operator_token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
        assert_eq!(
            resp.headers()["content-type"].to_str().unwrap(),
            "text/csv; charset=utf-8"
        );
        let text = resp.text().await.unwrap();
        assert!(text.starts_with("bill_id,operator,day,"), "{text}");
        assert!(
            text.contains(&format!("{a},{},2026-01-01,", srv.a.operator)),
            "{text}"
        );
    }
    srv.stop().await;
}

#[tokio::test]
async fn sharing_rules_are_admin_made_and_webhook_secrets_never_echo() {
    let srv = Srv::start().await;
    let path = format!("/v1/operators/{}/sharing-rules", srv.a.operator);
    let body = json!({"terms": {"service_fee_pct": "25"}});
    let (s, _) = srv.post(&path, &srv.a.operator_token, body.clone()).await;
    assert_eq!(s, 403, "an operator cannot set its own terms");
    let (s, rule) = srv.post(&path, &srv.admin, body).await;
    assert_eq!(s, 201, "{rule}");
    assert_eq!(rule["version"], 1);
    let soon = json!({"effective_from": Timestamp::now(), "terms": {}});
    let (s, problem) = srv.post(&path, &srv.admin, soon).await;
    assert_eq!(s, 422, "{problem}");
    let bad = json!({"terms": {"service_fee_pct": "120"}});
    assert_eq!(srv.post(&path, &srv.admin, bad).await.0, 422);
    let other_site = json!({"site": srv.b.site.to_string(), "terms": {}});
    assert_eq!(srv.post(&path, &srv.admin, other_site).await.0, 422);
    let (s, list) = srv.get(&path, &srv.a.operator_token).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let foreign = format!("/v1/operators/{}/sharing-rules", srv.b.operator);
    assert_eq!(srv.get(&foreign, &srv.a.operator_token).await.0, 403);

    let hook = format!("/v1/operators/{}/webhook", srv.a.operator);
    let (s, answer) = srv
        .call(
            Method::PUT,
            &hook,
            Some(&srv.a.operator_token),
            Some(
                json!({"url": "https://example.invalid/hook", "secret": "0123456789abcdef-secret"}),
            ),
        )
        .await;
    assert_eq!(s, 200, "{answer}");
    assert!(
        answer.get("secret").is_none(),
        "the secret is never shown again"
    );
    let (s, _) = srv
        .call(
            Method::PUT,
            &hook,
            Some(&srv.a.operator_token),
            Some(json!({"url": "ftp://x", "secret": "short"})),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = srv
        .call(
            Method::PUT,
            &format!("/v1/operators/{}/webhook", srv.b.operator),
            Some(&srv.a.operator_token),
            Some(
                json!({"url": "https://example.invalid/hook", "secret": "0123456789abcdef-secret"}),
            ),
        )
        .await;
    assert_eq!(s, 403);
    let billing = format!("/v1/operators/{}/billing", srv.a.operator);
    let tz = json!({"time_zone": "Europe/Berlin"});
    let (s, _) = srv
        .call(
            Method::PUT,
            &billing,
            Some(&srv.a.operator_token),
            Some(tz.clone()),
        )
        .await;
    assert_eq!(s, 403, "the bill time zone is an admin's setting");
    let (s, answer) = srv
        .call(Method::PUT, &billing, Some(&srv.admin), Some(tz))
        .await;
    assert_eq!(s, 200, "{answer}");
    let (s, _) = srv
        .call(
            Method::PUT,
            &billing,
            Some(&srv.admin),
            Some(json!({"time_zone": "Mars/Olympus"})),
        )
        .await;
    assert_eq!(s, 422);
    srv.stop().await;
}
