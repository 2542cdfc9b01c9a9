//! The edge's HTTP sync: gzip-compressed batches are committed and acknowledged up to the
//! highest contiguous sequence; duplicates are counted, not stored twice; the config route
//! serves the site's `SiteConfigDoc` (chargers with credential hashes, cards, tariffs, limits)
//! to the site's own edge only, and every card or charger change moves its version.

use std::io::Write;

use flate2::write::GzEncoder;
use flate2::Compression;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use voltline_protocol::domain::{Power, SiteId};
use voltline_protocol::sync::{CardGrant, SiteConfigDoc};
use voltline_protocol::Money;

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

fn sha256_hex(secret: &str) -> String {
    use sha2::{Digest, Sha256};
    Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn site_doc(srv: &Srv, site: &str, token: &str) -> SiteConfigDoc {
    let (s, cfg) = srv.get(&format!("/v1/edges/{site}/config"), token).await;
    assert_eq!(s, 200, "{cfg}");
    let doc: SiteConfigDoc = serde_json::from_value(cfg.clone())
        .unwrap_or_else(|e| panic!("not a SiteConfigDoc ({e}): {cfg}"));
    doc.validate(&SiteId::new(site).unwrap()).unwrap();
    doc
}

#[tokio::test]
async fn site_config_serves_chargers_cards_tariff_and_limits() {
    let srv = Srv::start().await;
    let (s, _) = srv
        .post(&format!("/v1/sites/{}/tariffs", srv.a.site), &srv.a.operator_token, json!({"tariff_id": "tariff-a", "version": 1, "effective_from": "2020-01-01T00:00:00Z"}))
        .await;
    assert_eq!(s, 200);
    let (s, charger) = srv
        .post(
            "/v1/chargers",
            &srv.a.operator_token,
            json!({"pile": "32010600000099", "site": srv.a.site.to_string(), "connectors": 1}),
        )
        .await;
    assert_eq!(s, 201, "{charger}");
    let password = charger["credential"].as_str().unwrap().to_owned();
    let (s, card) = srv
        .post(
            &format!("/v1/accounts/{}/cards", srv.a.account),
            &srv.a.driver_token,
            json!({"card": "00000000D14B0A54", "offline_limit": "30"}),
        )
        .await;
    assert_eq!(s, 201, "{card}");

    let doc = site_doc(&srv, srv.a.site.as_str(), &srv.a.edge_token).await;
    assert_eq!(doc.site, srv.a.site);
    assert_eq!(doc.time_zone, "Asia/Shanghai");
    assert!(doc.charge_tariff.is_some());
    assert!(doc.discharge_tariff.is_none());
    let piles: Vec<String> = doc.chargers.iter().map(|c| c.pile.to_string()).collect();
    assert_eq!(piles, [srv.a.pile.to_string(), "32010600000099".to_owned()]);
    let new = &doc.chargers[1];
    assert_eq!(new.connectors, 1);
    assert_eq!(new.credential_sha256, sha256_hex(&password));
    assert_eq!(
        doc.cards,
        vec![CardGrant {
            card: "00000000D14B0A54".parse().unwrap(),
            account: srv.a.account.clone(),
            offline_limit: Money::from_yuan(dec!(30)),
        }]
    );
    assert_eq!(doc.limits.command_expiry_s, 60);
    assert_eq!(
        doc.limits.offline_session_limit,
        Money::from_yuan(dec!(100))
    );
    assert_eq!(
        doc.limits.default_session_amount,
        Money::from_yuan(dec!(50))
    );
    assert_eq!(doc.limits.max_site_power, None);
    // Tenant B's edge sees none of A's cards, and may not read A's configuration.
    let b = site_doc(&srv, srv.b.site.as_str(), &srv.b.edge_token).await;
    assert!(b.cards.is_empty(), "{b:?}");
    let (s, _) = srv
        .get(
            &format!("/v1/edges/{}/config", srv.a.site),
            &srv.b.edge_token,
        )
        .await;
    assert_eq!(s, 403);
    srv.stop().await;
}

#[tokio::test]
async fn card_and_charger_changes_move_the_site_config_version() {
    let srv = Srv::start().await;
    let site = srv.a.site.as_str();
    let cards = format!("/v1/accounts/{}/cards", srv.a.account);
    let v0 = site_doc(&srv, site, &srv.a.edge_token).await.config_version;
    // A card registered without a limit gets the configured default.
    let (s, card) = srv
        .post(
            &cards,
            &srv.a.operator_token,
            json!({"card": "00000000000000A1"}),
        )
        .await;
    assert_eq!(s, 201, "{card}");
    assert_eq!(card["offline_limit"], "50");
    let v1 = site_doc(&srv, site, &srv.a.edge_token).await.config_version;
    assert!(v1 > v0, "{v1} after {v0}");
    // The same card for another account is a conflict; a negative limit is refused.
    let (s, _) = srv
        .post(
            &format!("/v1/accounts/{}/cards", srv.b.account),
            &srv.admin,
            json!({"card": "00000000000000A1"}),
        )
        .await;
    assert_eq!(s, 409);
    let (s, _) = srv
        .post(
            &cards,
            &srv.admin,
            json!({"card": "00000000000000A2", "offline_limit": "-1"}),
        )
        .await;
    assert_eq!(s, 422);
    let (s, _) = srv
        .post(&cards, &srv.admin, json!({"card": "D14B0A54"}))
        .await;
    assert!((400..500).contains(&s), "{s}");
    let (s, list) = srv.get(&cards, &srv.a.driver_token).await;
    assert_eq!(s, 200);
    assert_eq!(list.as_array().unwrap().len(), 1, "{list}");
    // Removing it moves the version again; a second removal is 404.
    let one = format!("{cards}/00000000000000A1");
    let (s, _) = srv
        .call(
            reqwest::Method::DELETE,
            &one,
            Some(&srv.a.driver_token),
            None,
        )
        .await;
    assert_eq!(s, 204);
    let v2 = site_doc(&srv, site, &srv.a.edge_token).await.config_version;
    assert!(v2 > v1, "{v2} after {v1}");
    let (s, _) = srv
        .call(
            reqwest::Method::DELETE,
            &one,
            Some(&srv.a.driver_token),
            None,
        )
        .await;
    assert_eq!(s, 404);
    // A new charger moves it too.
    let (s, _) = srv
        .post(
            "/v1/chargers",
            &srv.a.operator_token,
            json!({"pile": "32010600000098", "site": site, "connectors": 2}),
        )
        .await;
    assert_eq!(s, 201);
    let v3 = site_doc(&srv, site, &srv.a.edge_token).await.config_version;
    assert!(v3 > v2, "{v3} after {v2}");
    // A site power limit set in the store reaches the document.
    srv.state()
        .store
        .set_site_power_limit(&srv.a.site, Some(Power::from_kw(250)))
        .await
        .unwrap();
    let doc = site_doc(&srv, site, &srv.a.edge_token).await;
    assert_eq!(doc.limits.max_site_power, Some(Power::from_kw(250)));
    assert!(doc.config_version > v3);
    srv.stop().await;
}
