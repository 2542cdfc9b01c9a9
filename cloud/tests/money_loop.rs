//! The cloud as the binary runs it (`server::start_from_config`: SQL funds, the settlement
//! loop) on SQLite over a real socket: a session started over HTTP is settled by the loop once
//! its transaction record arrives, and `/metrics` exports the settlement counters — with
//! `voltline_settlement_price_db_reads_total` at 0 (prices come from the tariff cache). The
//! loop stops with the server. Own test binary: the Prometheus recorder is per process.

mod common;

use std::time::Duration;

use jiff::Timestamp;
use rust_decimal_macros::dec;
use voltline_cloud::config::{CloudConfig, MqttMode};
use voltline_cloud::domain::{Actor, OrderKind};
use voltline_cloud::funds::PaymentRequest;
use voltline_cloud::server;
use voltline_cloud::store::{NewToken, TariffAssignment};
use voltline_protocol::domain::OrderId;
use voltline_protocol::sync::{RecordBatch, RecordBody};
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::Money;

use common::{acct, op, seed, site};

/// The value of the sample `name` (exact, labels included) in a Prometheus text page.
fn sample(page: &str, name: &str) -> Option<f64> {
    page.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_settlement_loop_settles_a_started_session_and_exports_zero_price_reads() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = CloudConfig {
        data_dir: dir.path().to_path_buf(),
        ..CloudConfig::default()
    };
    config.http.listen = "127.0.0.1:0".parse().unwrap();
    config.mqtt.mode = MqttMode::Disabled;
    config.settlement.interval_ms = 50;
    let running = server::start_from_config(config).await.expect("starts");
    let state = running.state.clone();
    let store = state.store.clone();
    seed(&store, "s-1", 1).await;
    let tariff = Tariff::new(
        TariffVersion(1),
        jiff::tz::TimeZone::get("Asia/Shanghai").unwrap(),
        vec![TariffPeriod::new(
            "flat",
            Money::from_yuan(dec!(0.80)),
            Money::from_yuan(dec!(0.20)),
        )],
        vec![ScheduleEntry::new(TimeOfDay::MIDNIGHT, 0)],
    )
    .unwrap();
    let from = Timestamp::from_second(1_500_000_000).unwrap();
    store
        .create_tariff_version("flat-1", &op("op-1"), &tariff, from)
        .await
        .unwrap();
    store
        .assign_tariff(&TariffAssignment {
            site: site("s-1"),
            kind: OrderKind::Charge,
            tariff_id: "flat-1".into(),
            version: TariffVersion(1),
            effective_from: from,
        })
        .await
        .unwrap();
    let opener = state.wallet_opener.clone().expect("SQL funds open wallets");
    opener(acct("d-1")).await.unwrap();
    state
        .funds
        .top_up(&PaymentRequest {
            account: acct("d-1"),
            amount: Money::from_yuan(dec!(100)),
            provider: "test".into(),
            reference: "seed".into(),
        })
        .await
        .unwrap();
    let token = store
        .create_token(&NewToken {
            actor: Actor::Driver(acct("d-1")),
            label: "test".into(),
            expires_at: None,
        })
        .await
        .unwrap()
        .secret
        .expose()
        .to_owned();
    let base = format!("http://{}", running.http_addr);
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap();

    // Start over HTTP: 202 with the hold placed (the whole 50.00 default... or what is asked).
    let resp = http
        .post(format!("{base}/v1/sessions"))
        .bearer_auth(&token)
        .json(&serde_json::json!({
            "charger": common::pile(1).to_string(),
            "connector": 1,
            "account": "d-1",
            "amount": "30",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let body: serde_json::Value = resp.json().await.unwrap();
    let order: OrderId = body["order_id"].as_str().unwrap().parse().unwrap();
    assert_eq!(
        state.funds.available(&acct("d-1")).await.unwrap(),
        Money::from_yuan(dec!(70))
    );

    // The pile's record arrives; the loop settles it (10 kWh x 1.00 = 10.00).
    let record = common::transaction(1, 1, common::serial(1, 1), Some(order.clone()));
    assert!(matches!(record.body, RecordBody::Transaction(_)));
    store
        .ingest(&site("s-1"), &RecordBatch::new(site("s-1"), vec![record]))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let o = store.get_order(&order).await.unwrap();
        if o.state == voltline_cloud::domain::OrderState::Settled {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never settled: {o:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        state.funds.available(&acct("d-1")).await.unwrap(),
        Money::from_yuan(dec!(90)),
        "10.00 captured, the rest of the hold released"
    );

    let page = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        sample(&page, "voltline_settlement_price_db_reads_total"),
        Some(0.0),
        "prices are read from the cache while settling:\n{page}"
    );
    assert_eq!(
        sample(&page, "voltline_settlements_total{outcome=\"settled\"}"),
        Some(1.0),
        "{page}"
    );
    assert_eq!(
        sample(&page, "voltline_holds_expired_total"),
        Some(0.0),
        "{page}"
    );

    // The loop stops with the server, promptly.
    let stopping = std::time::Instant::now();
    running.stop(Duration::from_secs(5)).await;
    assert!(stopping.elapsed() < Duration::from_secs(5));
}
