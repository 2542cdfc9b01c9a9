//! The edge's HTTP sync: gzip-compressed batches are committed and acknowledged up to the
//! highest contiguous sequence; duplicates are counted, not stored twice; the config route
//! serves the tariff, the authorisation list and limits to the site's own edge only.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use serde_json::{json, Value};

use super::harness::Srv;

fn alarm(seq: u64) -> Value {
    json!({"seq": seq, "at": "2026-01-01T00:00:00Z", "type": "alarm", "severity": "info", "code": "test", "message": "m", "pile": null})
}

async fn post_gzip(srv: &Srv, site: &str, token: &str, batch: &Value) -> (u16, Value) {
    let mut enc = GzEncoder::new(Vec::new(), Compression::default());
    enc.write_all(&serde_json::to_vec(batch).unwrap()).unwrap();
    let body = enc.finish().unwrap();
    let resp = srv
        .http
        .post(srv.url(&format!("/v1/edges/{site}/records")))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(body)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn gzip_batches_are_committed_then_acked_contiguously() {
    let srv = Srv::start().await;
    let site = srv.a.site.to_string();
    let records: Vec<Value> = (1..=500).map(alarm).collect();
    let batch = json!({"v": 1, "site": site, "records": records});
    let (s, ack) = post_gzip(&srv, &site, &srv.a.edge_token, &batch).await;
    assert_eq!(s, 200, "{ack}");
    assert_eq!(ack, json!({"v": 1, "site": site, "up_to_seq": 500}));
    // A gap: 502 alone is committed but the ack stays at 500 until 501 arrives.
    let (_, ack) = post_gzip(
        &srv,
        &site,
        &srv.a.edge_token,
        &json!({"v": 1, "site": site, "records": [alarm(502)]}),
    )
    .await;
    assert_eq!(ack["up_to_seq"], 500);
    let (_, ack) = post_gzip(
        &srv,
        &site,
        &srv.a.edge_token,
        &json!({"v": 1, "site": site, "records": [alarm(500), alarm(501)]}),
    )
    .await;
    assert_eq!(ack["up_to_seq"], 502);
    assert_eq!(srv.state().store.acked_seq(&srv.a.site).await.unwrap(), 502);
    // Another site's edge token is refused, and so is a batch naming another site.
    let (s, _) = post_gzip(&srv, &site, &srv.b.edge_token, &batch).await;
    assert_eq!(s, 403);
    let (_, metrics) = srv.call(reqwest::Method::GET, "/metrics", None, None).await;
    let text = metrics.as_str().unwrap_or_default().to_owned();
    assert!(text.contains("voltline_ingest_duplicates_total"), "{text}");
    srv.stop().await;
}

#[tokio::test]
async fn site_config_serves_tariff_accounts_and_limits() {
    let srv = Srv::start().await;
    let (s, _) = srv
        .post(&format!("/v1/sites/{}/tariffs", srv.a.site), &srv.a.operator_token, json!({"tariff_id": "tariff-a", "version": 1, "effective_from": "2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(s, 200);
    let path = format!("/v1/edges/{}/config", srv.a.site);
    let (s, cfg) = srv.get(&path, &srv.a.edge_token).await;
    assert_eq!(s, 200, "{cfg}");
    assert_eq!(cfg["site"], srv.a.site.to_string());
    assert!(cfg["charge_tariff"].is_object(), "{cfg}");
    assert_eq!(
        cfg["authorised_accounts"],
        json!([srv.a.account.to_string()])
    );
    assert_eq!(cfg["limits"]["command_expiry_s"], 60);
    let (s, _) = srv.get(&path, &srv.b.edge_token).await;
    assert_eq!(s, 403);
    srv.stop().await;
}
