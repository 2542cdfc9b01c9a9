//! V2G through the whole chain (issue #8): the real cloud, a real edge daemon and a
//! V2G-capable simulated charger. A driver opts a plugged-in vehicle into discharge with
//! `POST /v1/discharges`; the edge starts the pile discharging; the driver stops it; the
//! pile's discharge record (0xC9) goes up through the edge and the cloud's reverse
//! settlement credits the driver's wallet from the V2G payout account — to the cent of the
//! exported energy at the discharge tariff — with the ledger balanced. On SQLite with the
//! embedded broker, and on PostgreSQL when `VOLTLINE_TEST_PG` is set.

use std::time::Duration;

use futures::StreamExt;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use voltline_cloud::domain::OrderKind;
use voltline_edge::daemon::Running as Edge;
use voltline_edge::ops::config::{EdgeConfig, Secret};
use voltline_protocol::domain::{Energy, Money};
use voltline_protocol::sync::ConnectorState;
use voltline_sim::{ChargerSpec, FleetConfig, SimEvent, SimFleet, VehicleSpec};
use voltline_tests::fixtures::flat_tariff;
use voltline_tests::{CloudOptions, DriverSpec, SeededSite, SiteSpec, TestCloud};

const WAIT: Duration = Duration::from_secs(60);
const ZONE: &str = "Asia/Shanghai";

fn yuan(d: Decimal) -> Money {
    Money::from_yuan(d)
}

async fn start_edge(cloud: &TestCloud, site: &SeededSite, dir: &std::path::Path) -> Edge {
    let mut c = EdgeConfig::default();
    c.site.id = site.site.to_string();
    c.site.time_zone = site.time_zone.clone();
    c.site.data_dir = dir.to_owned();
    c.tcp.listen = "127.0.0.1:0".parse().unwrap();
    c.mqtt.enabled = false;
    c.ops.listen = "127.0.0.1:0".parse().unwrap();
    c.cloud.mqtt = cloud.edge_mqtt_addr().to_string();
    c.cloud.http = cloud.edge_http_base();
    c.cloud.credential = Secret::new(site.edge_token.clone());
    Edge::start(c).await.expect("the edge starts")
}

/// Reads the WebSocket until `order` reaches `want`; returns the states seen on the way.
async fn follow<S>(ws: &mut S, order: &str, want: &str, seen: &mut Vec<String>)
where
    S: futures::Stream<
            Item = Result<
                tokio_tungstenite::tungstenite::Message,
                tokio_tungstenite::tungstenite::Error,
            >,
        > + Unpin,
{
    let found = tokio::time::timeout(WAIT, async {
        while let Some(Ok(msg)) = ws.next().await {
            let Ok(text) = msg.to_text() else { continue };
            let Ok(v) = serde_json::from_str::<Value>(text) else {
                continue;
            };
            if v["type"] == "order" && v["id"] == order {
                let s = v["state"].as_str().unwrap_or_default().to_owned();
                seen.push(s.clone());
                if s == want {
                    return true;
                }
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(found, "the order did not reach {want}; saw {seen:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v2g_discharge_through_a_real_edge_credits_the_driver_to_the_cent() {
    discharge_credits_to_the_cent(CloudOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_postgres() {
    let Some(pg) = std::env::var("VOLTLINE_TEST_PG").ok() else {
        assert!(
            std::env::var_os("VOLTLINE_CI").is_none(),
            "VOLTLINE_TEST_PG must be set in CI"
        );
        eprintln!("skipped: the_same_on_postgres because VOLTLINE_TEST_PG is unset");
        return;
    };
    discharge_credits_to_the_cent(CloudOptions::postgres(pg)).await;
}

async fn discharge_credits_to_the_cent(opts: CloudOptions) {
    let cloud = TestCloud::start(opts).await.expect("the cloud starts");
    let mut spec = SiteSpec::new(&format!("v2g-{}", rand::random::<u32>()), 1);
    spec.drivers.push(DriverSpec::with_card(
        "driver-v2g",
        yuan(dec!(10)),
        yuan(dec!(5)),
    ));
    spec.tariff = Some(flat_tariff(1, ZONE, yuan(dec!(0.80)), yuan(dec!(0.40))));
    let site = cloud.seed_site(&spec).await.expect("the site seeds");
    // The feed-in tariff: 1.20 yuan per exported kWh, all day.
    cloud
        .assign_tariff(
            &site.operator,
            &site.site,
            &format!("feed-in-{}", site.site),
            &flat_tariff(3, ZONE, yuan(dec!(1.20)), Money::ZERO),
            OrderKind::Discharge,
        )
        .await
        .expect("the discharge tariff is assigned");
    let driver = &site.drivers[0];
    let pile = site.chargers[0].pile;
    cloud
        .expect(
            reqwest::Method::PUT,
            &format!("/v1/chargers/{pile}/v2g"),
            &site.operator_token,
            Some(&json!({"v2g": true})),
            200,
        )
        .await
        .expect("the charger is marked V2G-capable");

    let dir = tempfile::tempdir().unwrap();
    let edge = start_edge(&cloud, &site, dir.path()).await;
    voltline_tests::eventually(WAIT, "the edge caches the site config", || async {
        edge.store
            .site_config()
            .filter(|c| c.tariff.is_some() && !c.cards.is_empty())
            .map(|_| ())
    })
    .await
    .unwrap();
    let fleet = SimFleet::spawn(
        FleetConfig::tcp(
            edge.tcp_addr.unwrap().to_string(),
            vec![ChargerSpec::dc(pile, 60).with_v2g()],
        )
        .speed(60.0)
        .unwrap(),
    )
    .await
    .unwrap();
    let mut sim_events = fleet.events();
    let mut view = edge.site.clone();
    tokio::time::timeout(WAIT, view.wait_for(|v| v.piles_connected == 1))
        .await
        .unwrap()
        .unwrap();
    fleet
        .charger(&pile)
        .unwrap()
        .plug_in(
            1,
            VehicleSpec::standard()
                .with_v2g()
                .with_battery(Energy::from_wh(60_000))
                .with_soc(80, 90),
        )
        .await
        .unwrap();
    let store = cloud.store().clone();
    let connector = voltline_protocol::domain::ConnectorNo::new(1).unwrap();
    voltline_tests::eventually(WAIT, "the cloud hears the vehicle is plugged in", || {
        let store = store.clone();
        async move {
            (store.connector_state(&pile, connector).await.ok()? == Some(ConnectorState::Plugged))
                .then_some(())
        }
    })
    .await
    .unwrap();

    let mut request = format!("ws://{}/v1/events", cloud.http_addr())
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", driver.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let departure = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(6);
    let body = json!({"charger": pile.to_string(), "connector": 1, "account": driver.account.as_str(),
        "soc_floor_pct": 30, "departure": departure, "max_power_kw": "7"});
    let started = cloud
        .expect(
            reqwest::Method::POST,
            "/v1/discharges",
            &driver.token,
            Some(&body),
            202,
        )
        .await
        .expect("the discharge starts");
    assert_eq!(started["status"], "dispatching");
    let order = started["order_id"].as_str().unwrap().to_owned();
    let mut seen = Vec::new();
    follow(&mut ws, &order, "discharging", &mut seen).await;
    tokio::time::sleep(Duration::from_secs(3)).await; // ~3 simulated minutes at 7 kW
    cloud
        .expect(
            reqwest::Method::POST,
            &format!("/v1/discharges/{order}/stop"),
            &driver.token,
            None,
            202,
        )
        .await
        .expect("the stop is queued");
    follow(&mut ws, &order, "settled", &mut seen).await;

    let ended = voltline_sim::fleet::wait_for(&mut sim_events, WAIT, |e| {
        matches!(e, SimEvent::DischargeEnded { .. })
    })
    .await
    .unwrap();
    let SimEvent::DischargeEnded { summary, .. } = ended else {
        unreachable!()
    };
    let exported = summary.record.exported_energy;
    assert!(exported > Energy::from_wh(100), "it discharged: {exported}");
    let view = cloud
        .expect(
            reqwest::Method::GET,
            &format!("/v1/discharges/{order}"),
            &driver.token,
            None,
            200,
        )
        .await
        .unwrap();
    assert_eq!(view["discharge_state"], "settled", "{view}");
    let settlement = &view["settlement"];
    let billed: Energy = serde_json::from_value(settlement["export_energy"].clone()).unwrap();
    assert_eq!(
        billed, exported,
        "the cloud billed the pile's exported energy: {view}"
    );
    assert_eq!(settlement["meter_anomaly"], json!(false), "{view}");
    let credit = yuan(exported.kwh() * dec!(1.20)).round_cents();
    let figures: Money =
        serde_json::from_value(settlement["figures"]["driver_credit"].clone()).unwrap();
    assert_eq!(figures, credit, "credited to the cent");
    assert_eq!(
        cloud.balance(&driver.account).await.unwrap(),
        yuan(dec!(10)) + credit,
        "the wallet gained exactly the credit"
    );
    cloud.assert_ledger_balanced().await.unwrap();

    fleet.shutdown().await;
    edge.stop().await.unwrap();
    cloud.shutdown().await;
}
