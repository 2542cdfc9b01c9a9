//! The whole chain (issue #7, item 2): the real cloud, a real edge daemon and simulated
//! chargers as hardware.
//!
//! - A session started through the HTTP API, followed on the WebSocket, stopped and settled:
//!   the ledger, the order and the charger's own record agree to the cent — on SQLite with
//!   the embedded broker, and on PostgreSQL with Mosquitto as an external broker.
//! - The edge↔cloud link cut for a simulated day while the site keeps charging by card
//!   (local authorisation, local pricing, stop at the card's offline limit), then restored:
//!   every session billed exactly once, at the price the pile and the edge computed.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::StreamExt;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use voltline_cloud::config::{CloudConfig, MqttMode};
use voltline_edge::daemon::Running as Edge;
use voltline_edge::ops::config::{EdgeConfig, Secret};
use voltline_protocol::domain::{Energy, Money};
use voltline_protocol::TransactionSerial;
use voltline_sim::{ChargerSpec, FleetConfig, SimEvent, SimFleet, StartBy, VehicleSpec};
use voltline_tests::fixtures::tou_tariff;
use voltline_tests::{CloudOptions, DriverSpec, SeededSite, SiteSpec, TestCloud};

const WAIT: Duration = Duration::from_secs(60);

fn yuan(d: Decimal) -> Money {
    Money::from_yuan(d)
}

fn unique(name: &str) -> String {
    format!("{name}-{}", rand::random::<u32>())
}

/// The edge for `site`, in this process, syncing through the cloud's edge links.
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

/// Waits until the edge has cached the cloud's site configuration (cards, tariff).
async fn wait_config(edge: &Edge) {
    voltline_tests::eventually(WAIT, "the edge caches the site config", || async {
        edge.store
            .site_config()
            .filter(|c| c.tariff.is_some() && !c.cards.is_empty())
            .map(|_| ())
    })
    .await
    .unwrap();
}

async fn api(
    cloud: &TestCloud,
    method: reqwest::Method,
    path: &str,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = reqwest::Client::new()
        .request(method, format!("http://{}{path}", cloud.http_addr()))
        .bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    let text = resp.text().await.unwrap();
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// Reads the WebSocket until `order` reaches `want`, noting every order and command state.
async fn follow<S>(
    ws: &mut S,
    order: &str,
    want: &str,
    seen: &mut Vec<String>,
    commands: &mut Vec<String>,
) where
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
            match v["type"].as_str() {
                Some("order") if v["id"] == order => {
                    let s = v["state"].as_str().unwrap_or_default().to_owned();
                    seen.push(s.clone());
                    if s == want {
                        return true;
                    }
                }
                Some("command") => commands.push(format!(
                    "{}:{}",
                    v["id"].as_str().unwrap_or_default(),
                    v["state"].as_str().unwrap_or_default()
                )),
                _ => {}
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        found,
        "the order did not reach {want}; saw {seen:?}, commands {commands:?}"
    );
}

async fn api_session_settles_to_the_cent(opts: CloudOptions) {
    let cloud = TestCloud::start(opts).await.expect("the cloud starts");
    let mut spec = SiteSpec::new(&unique("chain-api"), 1);
    spec.drivers.push(DriverSpec::with_card(
        "driver-api",
        yuan(dec!(100)),
        yuan(dec!(50)),
    ));
    spec.tariff = Some(tou_tariff(1, "Asia/Shanghai"));
    let site = cloud.seed_site(&spec).await.expect("the site seeds");
    let driver = &site.drivers[0];
    let pile = site.chargers[0].pile;
    let dir = tempfile::tempdir().unwrap();
    let edge = start_edge(&cloud, &site, dir.path()).await;
    wait_config(&edge).await;

    let fleet = SimFleet::spawn(
        FleetConfig::tcp(
            edge.tcp_addr.unwrap().to_string(),
            vec![ChargerSpec::dc(pile, 60)],
        )
        .speed(60.0)
        .unwrap(),
    )
    .await
    .unwrap();
    let mut events = fleet.events();
    let mut view = edge.site.clone();
    tokio::time::timeout(WAIT, view.wait_for(|v| v.piles_connected == 1))
        .await
        .unwrap()
        .unwrap();

    // The driver's app listens for its changes.
    let mut request = format!("ws://{}/v1/events", cloud.http_addr())
        .into_client_request()
        .unwrap();
    request.headers_mut().insert(
        "authorization",
        format!("Bearer {}", driver.token).parse().unwrap(),
    );
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();

    let charger = fleet.charger(&pile).unwrap();
    charger
        .plug_in(
            1,
            VehicleSpec::standard()
                .with_battery(Energy::from_wh(60_000))
                .with_soc(20, 90),
        )
        .await
        .unwrap();
    let body = json!({"charger": pile.to_string(), "connector": 1, "account": driver.account.as_str(), "amount": "60.00"});
    let (status, started) = api(
        &cloud,
        reqwest::Method::POST,
        "/v1/sessions",
        &driver.token,
        Some(body),
    )
    .await;
    assert_eq!(status, 202, "{started}");
    assert_eq!(started["status"], "dispatching");
    let order = started["order_id"].as_str().unwrap().to_owned();
    let start_command = started["command_id"].as_str().unwrap().to_owned();

    // Follow the WebSocket until the order charges.
    let mut seen_states: Vec<String> = Vec::new();
    let mut command_states: Vec<String> = Vec::new();
    follow(
        &mut ws,
        &order,
        "charging",
        &mut seen_states,
        &mut command_states,
    )
    .await;
    tokio::time::sleep(Duration::from_secs(3)).await; // ~3 simulated minutes of charging
    let (status, stopped) = api(
        &cloud,
        reqwest::Method::POST,
        &format!("/v1/sessions/{order}/stop"),
        &driver.token,
        None,
    )
    .await;
    assert_eq!(status, 202, "{stopped}");
    follow(
        &mut ws,
        &order,
        "settled",
        &mut seen_states,
        &mut command_states,
    )
    .await;
    assert!(
        command_states
            .iter()
            .any(|c| c.starts_with(&start_command) && c.ends_with("accepted")),
        "the start command was followed to accepted: {command_states:?}"
    );

    let ended = voltline_sim::fleet::wait_for(&mut events, WAIT, |e| {
        matches!(e, SimEvent::SessionEnded { .. })
    })
    .await
    .unwrap();
    let SimEvent::SessionEnded { summary, .. } = ended else {
        unreachable!()
    };
    let settled = cloud.wait_settled(&site.site, 1, WAIT).await.unwrap();
    assert_eq!(settled.len(), 1);
    let t = &settled[0];
    assert_eq!(t.serial, summary.serial);
    let s = t.settlement.as_ref().unwrap();
    let diff = (s.cost.yuan() - summary.record.total_amount.yuan()).abs();
    assert!(
        diff <= dec!(0.01),
        "cloud {} vs charger {}",
        s.cost,
        summary.record.total_amount
    );
    assert!(!s.mismatch);
    assert!(
        s.cost.yuan() > dec!(0.5),
        "it charged something: {}",
        s.cost
    );
    assert_eq!(s.from_hold, s.cost, "paid from the hold");
    assert_eq!(
        s.from_hold + s.released,
        yuan(dec!(60)),
        "the rest of the hold released"
    );
    assert_eq!(
        cloud.balance(&driver.account).await.unwrap(),
        yuan(dec!(100)) - s.cost,
        "the wallet lost exactly the cost"
    );
    assert_eq!(
        s.operator_share + s.platform_fee,
        s.cost,
        "the split sums to the cost"
    );
    let (status, view) = api(
        &cloud,
        reqwest::Method::GET,
        &format!("/v1/sessions/{order}"),
        &driver.token,
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(view["state"], "settled", "{view}");
    cloud.assert_ledger_balanced().await.unwrap();

    fleet.shutdown().await;
    edge.stop().await.unwrap();
    cloud.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_session_followed_on_the_websocket_settles_to_the_cent() {
    api_session_settles_to_the_cent(CloudOptions::default()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_on_postgres_with_mosquitto_as_the_broker() {
    let (pg, mqtt) = (
        std::env::var("VOLTLINE_TEST_PG").ok(),
        std::env::var("VOLTLINE_TEST_MQTT").ok(),
    );
    let (Some(pg), Some(mqtt)) = (pg, mqtt) else {
        assert!(
            std::env::var_os("VOLTLINE_CI").is_none(),
            "VOLTLINE_TEST_PG and VOLTLINE_TEST_MQTT must be set in CI"
        );
        eprintln!("skipped: the_same_on_postgres_with_mosquitto_as_the_broker because VOLTLINE_TEST_PG or VOLTLINE_TEST_MQTT is unset");
        return;
    };
    let (host, port) = mqtt
        .rsplit_once(':')
        .expect("VOLTLINE_TEST_MQTT is host:port");
    let mut config = CloudConfig::default();
    config.mqtt.mode = MqttMode::External;
    config.mqtt.broker_host = host.to_owned();
    config.mqtt.broker_port = port.parse().unwrap();
    config.mqtt.client_id = unique("voltline-cloud-test");
    let mut opts = CloudOptions::postgres(pg);
    opts.config = config;
    api_session_settles_to_the_cent(opts).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_simulated_day_offline_is_billed_once_at_the_local_price() {
    const CHARGERS: usize = 6;
    let cloud = TestCloud::start(CloudOptions::default())
        .await
        .expect("the cloud starts");
    let mut spec = SiteSpec::new(&unique("chain-offline"), CHARGERS);
    for i in 0..CHARGERS {
        spec.drivers.push(DriverSpec::with_card(
            &format!("driver-off-{i}"),
            yuan(dec!(1000)),
            yuan(dec!(300)),
        ));
    }
    // One card may spend only 5 yuan without the cloud.
    spec.drivers.push(DriverSpec::with_card(
        "driver-small",
        yuan(dec!(1000)),
        yuan(dec!(5)),
    ));
    spec.tariff = Some(tou_tariff(1, "Asia/Shanghai"));
    let site = cloud.seed_site(&spec).await.expect("the site seeds");
    let dir = tempfile::tempdir().unwrap();
    let edge = start_edge(&cloud, &site, dir.path()).await;
    wait_config(&edge).await;

    // The link goes down before any charging: everything below happens offline.
    cloud.mqtt_link().cut();
    cloud.http_link().cut();

    // 720x: a simulated day in two real minutes.
    const SPEED: f64 = 720.0;
    let specs = site
        .chargers
        .iter()
        .map(|c| ChargerSpec::dc(c.pile, 60))
        .collect();
    let mut fleet_config = FleetConfig::tcp(edge.tcp_addr.unwrap().to_string(), specs)
        .speed(SPEED)
        .unwrap();
    fleet_config.event_capacity = 65_536;
    let fleet = SimFleet::spawn(fleet_config).await.unwrap();
    let mut events = fleet.events();
    let mut view = edge.site.clone();
    tokio::time::timeout(WAIT, view.wait_for(|v| v.piles_connected == CHARGERS))
        .await
        .unwrap()
        .unwrap();

    let day = Duration::from_secs_f64(24.0 * 3600.0 / SPEED);
    let started_at = tokio::time::Instant::now();
    let mut ended: HashMap<TransactionSerial, voltline_sim::events::SessionSummary> =
        HashMap::new();
    let small_card = site.drivers.last().unwrap().cards[0];
    let mut busy: HashSet<usize> = HashSet::new();
    let mut sessions_on: HashMap<usize, usize> = HashMap::new();
    let mut next_plug = tokio::time::Instant::now();
    while started_at.elapsed() < day {
        if tokio::time::Instant::now() >= next_plug {
            for (i, c) in site.chargers.iter().enumerate() {
                if busy.insert(i) {
                    let n = sessions_on.entry(i).or_default();
                    *n += 1;
                    // Charger 0's second vehicle pays with the 5-yuan card.
                    let driver = if i == 0 && *n == 2 {
                        site.drivers.last().unwrap()
                    } else {
                        &site.drivers[i]
                    };
                    let vehicle = VehicleSpec::standard()
                        .with_battery(Energy::from_wh(50_000))
                        .with_soc(20, 70);
                    fleet
                        .charger(&c.pile)
                        .unwrap()
                        .plug_in_with(1, vehicle, StartBy::Card(driver.cards[0]))
                        .await
                        .unwrap();
                }
            }
            next_plug = tokio::time::Instant::now() + Duration::from_secs(2);
        }
        while let Ok(e) = events.try_recv() {
            match e {
                SimEvent::SessionEnded { pile, summary, .. } => {
                    let i = site.chargers.iter().position(|c| c.pile == pile).unwrap();
                    fleet.charger(&pile).unwrap().unplug(1).await.unwrap();
                    busy.remove(&i);
                    ended.insert(summary.serial, *summary);
                }
                SimEvent::StartRefused { pile, reason, .. } => {
                    panic!("{pile}: an offline card start was refused: {reason}")
                }
                _ => {}
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        ended.len() >= CHARGERS * 3,
        "the site kept charging offline: only {} sessions",
        ended.len()
    );
    assert_eq!(
        cloud.records_ingested(&site.site).await.unwrap(),
        0,
        "nothing reached the cloud while the link was down"
    );

    // The link comes back: everything reaches the cloud and is billed once.
    cloud.mqtt_link().restore();
    cloud.http_link().restore();
    fleet.shutdown().await; // sessions still running stay unbilled; only ended ones count
    let settled = cloud
        .wait_settled(&site.site, ended.len(), Duration::from_secs(120))
        .await
        .unwrap();
    let all = cloud.transactions(&site.site).await.unwrap();
    let mut once: HashMap<TransactionSerial, usize> = HashMap::new();
    for t in &all {
        *once.entry(t.serial).or_default() += 1;
    }
    assert!(once.values().all(|&n| n == 1), "a session was billed twice");
    for (serial, summary) in &ended {
        let t = settled
            .iter()
            .find(|t| &t.serial == serial)
            .unwrap_or_else(|| panic!("{serial} was not billed"));
        let s = t.settlement.as_ref().unwrap();
        let diff = (s.cost.yuan() - summary.record.total_amount.yuan()).abs();
        assert!(
            diff <= dec!(0.01),
            "{serial}: cloud {} vs the pile's {} (the same tariff, priced online or not)",
            s.cost,
            summary.record.total_amount
        );
        assert!(!s.mismatch, "{serial}");
    }
    let small: Vec<_> = ended
        .values()
        .filter(|s| s.record.physical_card == small_card)
        .collect();
    assert_eq!(small.len(), 1, "the 5-yuan card charged once");
    {
        // The edge stopped it (a platform stop, not a full battery) once the card's 5-yuan
        // offline limit was used up. At 720x a report interval and the pile's stop latency
        // are minutes of simulated charging, so the amount itself is checked at a gentler
        // speed in edge/tests/daemon_offline.rs.
        let t = settled
            .iter()
            .find(|t| t.serial == small[0].serial)
            .unwrap();
        let cost = t.settlement.as_ref().unwrap().cost;
        assert_eq!(
            small[0].record.stop_reason,
            voltline_protocol::message::stop_reason::StopReason::APP_REMOTE_STOP,
            "the edge stopped the 5-yuan session"
        );
        // The edge stops a session before the next report would pass the limit, so at this
        // speed it may stop well short of 5 yuan (or, with a report interval of simulated
        // minutes, somewhat past it). It must have charged, and less than a full battery.
        let full = ended
            .values()
            .filter(|s| s.record.physical_card != small_card)
            .map(|s| s.record.total_energy)
            .min()
            .expect("other sessions ended");
        assert!(
            cost.yuan() > dec!(0),
            "the 5-yuan session charged something"
        );
        assert!(
            small[0].record.total_energy < full,
            "the edge let the 5-yuan session run to a full battery: {} ({cost})",
            small[0].record.total_energy
        );
    }
    cloud.assert_ledger_balanced().await.unwrap();
    edge.stop().await.unwrap();
    cloud.shutdown().await;
}
