//! V2G over HTTP, end to end in the cloud: a discharge order is refused with what to do on a
//! charger that is not V2G-capable and on a connector without a vehicle; started (202,
//! dispatching) once both hold; its start command's result makes it discharging; a stop
//! queues `StopDischarge`; the pile's discharge record completes it; order changes reach the
//! WebSocket; grid events queue a `GridEvent` command that is polled like any other.

use jiff::{SignedDuration, Timestamp};
use serde_json::{json, Value};
use voltline_protocol::domain::{CommandId, ConnectorNo};
use voltline_protocol::message::v2g::{DischargeRecord, DischargeStopReason};
use voltline_protocol::sync::{
    CommandOutcome, CommandResult, ConnectorState, ConnectorStatus, DischargeUp, Record,
    RecordBatch, RecordBody,
};
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::Energy;

use super::harness::{Srv, Tenant};

async fn post_records(srv: &Srv, t: &Tenant, records: Vec<Record>) {
    let batch = RecordBatch::new(t.site.clone(), records);
    let (s, b) = srv
        .post(
            &format!("/v1/edges/{}/records", t.site),
            &t.edge_token,
            serde_json::to_value(&batch).unwrap(),
        )
        .await;
    assert_eq!(s, 200, "{b}");
}

/// The site's edge reports a vehicle plugged into `connector` (as record `seq`).
pub async fn report_plugged(srv: &Srv, t: &Tenant, connector: u8, seq: u64) {
    let body = RecordBody::ConnectorStatus(ConnectorStatus {
        pile: t.pile,
        connector: ConnectorNo::new(connector).unwrap(),
        state: ConnectorState::Plugged,
    });
    post_records(
        srv,
        t,
        vec![Record {
            seq,
            at: Timestamp::now(),
            body,
        }],
    )
    .await;
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// The caller's `/v1/events` WebSocket.
async fn events_of(srv: &Srv, token: &str) -> Socket {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/v1/events", srv.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let sock = tokio_tungstenite::connect_async(req)
        .await
        .expect("ws connects")
        .0;
    // Let the server subscribe the socket before anything is published.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    sock
}

/// The next order event about `order` (bounded: 20 messages, 5 s each).
async fn next_event_for(sock: &mut Socket, order: &str) -> Value {
    use futures::StreamExt;
    for _ in 0..20 {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(5), sock.next())
            .await
            .expect("an event arrives")
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        if event["type"] == "order" && event["id"] == order {
            return event;
        }
    }
    panic!("no event about order {order}");
}

fn start_body(t: &Tenant, connector: u8) -> Value {
    json!({"charger": t.pile.to_string(), "connector": connector, "account": t.account.to_string(),
        "soc_floor_pct": 30, "departure": Timestamp::now() + SignedDuration::from_hours(3),
        "max_power_kw": "7.4"})
}

#[tokio::test]
async fn a_discharge_is_refused_clearly_then_started_stopped_and_completed() {
    let srv = Srv::start().await;
    let t = &srv.a;
    let (s, b) = srv
        .post("/v1/discharges", &t.driver_token, start_body(t, 1))
        .await;
    assert_eq!(s, 422, "{b}");
    assert!(
        b["detail"].as_str().unwrap().contains("not V2G-capable"),
        "{b}"
    );
    let (s, b) = srv
        .call(
            reqwest::Method::PUT,
            &format!("/v1/chargers/{}/v2g", t.pile),
            Some(&t.operator_token),
            Some(json!({"v2g": true})),
        )
        .await;
    assert_eq!((s, &b["v2g"]), (200, &json!(true)), "{b}");
    let (s, b) = srv
        .post("/v1/discharges", &t.driver_token, start_body(t, 1))
        .await;
    assert_eq!(s, 409, "{b}");
    assert!(
        b["detail"]
            .as_str()
            .unwrap()
            .contains("plug the vehicle in"),
        "{b}"
    );
    let mut bad = start_body(t, 1);
    bad["soc_floor_pct"] = json!(100);
    let (s, _) = srv.post("/v1/discharges", &t.driver_token, bad).await;
    assert_eq!(s, 422);

    report_plugged(&srv, t, 1, 1).await;
    let mut events = events_of(&srv, &t.driver_token).await;
    let (s, b) = srv
        .post("/v1/discharges", &t.driver_token, start_body(t, 1))
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["status"], "dispatching");
    let order = b["order_id"].as_str().unwrap().to_owned();
    let command = b["command_id"].as_str().unwrap().to_owned();
    let (s, again) = srv
        .post("/v1/discharges", &t.driver_token, start_body(t, 1))
        .await;
    assert_eq!(s, 409, "one active discharge per connector: {again}");
    let (s, cmd) = srv
        .get(&format!("/v1/commands/{command}"), &t.driver_token)
        .await;
    assert_eq!(s, 200, "{cmd}");
    assert_eq!(cmd["command"]["type"], "start_discharge");
    assert_eq!(cmd["command"]["soc_floor"], json!(30), "{cmd}");
    let path = format!("/v1/discharges/{order}");
    let (s, view) = srv.get(&path, &t.driver_token).await;
    assert_eq!(s, 200, "{view}");
    assert_eq!(view["discharge_state"], "dispatching");
    assert_eq!(view["kind"], "discharge");
    assert_eq!(view["terms"]["soc_floor"], json!(30), "{view}");
    assert!(view["settlement"].is_null());
    let seen = next_event_for(&mut events, &order).await;
    assert_eq!(seen["state"], "pending", "{seen}");

    // The pile accepted: discharging.
    post_records(
        &srv,
        t,
        vec![Record {
            seq: 2,
            at: Timestamp::now(),
            body: RecordBody::CommandResult(CommandResult {
                command_id: CommandId::new(command.clone()).unwrap(),
                outcome: CommandOutcome::Accepted,
            }),
        }],
    )
    .await;
    srv.poll_until(&path, &t.driver_token, 10, |v| {
        v["discharge_state"] == "discharging"
    })
    .await;
    let (s, stop) = srv
        .post(&format!("{path}/stop"), &t.driver_token, json!({}))
        .await;
    assert_eq!(s, 202, "{stop}");
    let stop_cmd = stop["command_id"].as_str().unwrap();
    let (_, cmd) = srv
        .get(&format!("/v1/commands/{stop_cmd}"), &t.driver_token)
        .await;
    assert_eq!(cmd["command"]["type"], "stop_discharge");
    let (s, _) = srv
        .post(&format!("{path}/stop"), &t.driver_token, json!({}))
        .await;
    assert_eq!(s, 202, "a repeated stop queues the command again");
    // The pile's discharge record completes the order (settlement runs with the SQL ledger).
    let (_, view) = srv.get(&path, &t.driver_token).await;
    let serial = view_serial(&srv, &order).await;
    let record = DischargeRecord {
        serial,
        pile_code: t.pile,
        connector: ConnectorNo::new(1).unwrap(),
        start_time: Cp56Time::UNSET,
        end_time: Cp56Time::UNSET,
        export_register_start: Energy::from_wh(0),
        export_register_end: Energy::from_wh(1_000),
        exported_energy: Energy::from_wh(1_000),
        stop_reason: DischargeStopReason(0x40),
    };
    post_records(
        &srv,
        t,
        vec![Record {
            seq: 3,
            at: Timestamp::now(),
            body: RecordBody::Discharge(DischargeUp {
                pile: t.pile,
                order: Some(order.parse().unwrap()),
                record,
                metering: None,
            }),
        }],
    )
    .await;
    srv.poll_until(&path, &t.driver_token, 10, |v| {
        v["discharge_state"] == "completed"
    })
    .await;
    let (s, _) = srv
        .post(&format!("{path}/stop"), &t.driver_token, json!({}))
        .await;
    assert_eq!(s, 409, "nothing runs any more: {view}");
    // A charging session is not a discharge order.
    let (_, started) = srv.start_session(Some("5")).await;
    let charge = started["order_id"].as_str().unwrap();
    let (s, _) = srv
        .get(&format!("/v1/discharges/{charge}"), &t.driver_token)
        .await;
    assert_eq!(s, 404);
    srv.stop().await;
}

async fn view_serial(srv: &Srv, order: &str) -> voltline_protocol::domain::TransactionSerial {
    srv.state()
        .store
        .get_order(&order.parse().unwrap())
        .await
        .unwrap()
        .transaction_serial
        .unwrap()
}

#[tokio::test]
async fn an_operator_may_opt_its_driver_in_but_not_another_operators() {
    let srv = Srv::start().await;
    let (a, b) = (&srv.a, &srv.b);
    for t in [a, b] {
        srv.state()
            .store
            .set_charger_v2g(&t.pile, true)
            .await
            .unwrap();
        report_plugged(&srv, t, 1, 1).await;
    }
    let (s, body) = srv
        .post("/v1/discharges", &a.operator_token, start_body(a, 1))
        .await;
    assert_eq!(s, 202, "{body}");
    let (s, _) = srv
        .post("/v1/discharges", &a.operator_token, start_body(b, 1))
        .await;
    assert_eq!(s, 403);
    let (s, _) = srv
        .post("/v1/discharges", &a.driver_token, start_body(b, 1))
        .await;
    assert_eq!(s, 403);
    srv.stop().await;
}

#[tokio::test]
async fn a_grid_event_queues_a_command_to_the_site_that_is_polled_like_any_other() {
    let srv = Srv::start().await;
    let t = &srv.a;
    let from = Timestamp::now() + SignedDuration::from_mins(10);
    let to = from + SignedDuration::from_hours(1);
    let path = format!("/v1/sites/{}/grid-events", t.site);
    let (s, b) = srv
        .post(
            &path,
            &t.operator_token,
            json!({"power_kw": "150", "from": from, "to": to}),
        )
        .await;
    assert_eq!(s, 202, "{b}");
    assert_eq!(b["status"], "dispatching");
    let event = b["event_id"].as_str().unwrap().to_owned();
    let (s, cmd) = srv
        .get(
            &format!("/v1/commands/{}", b["command_id"].as_str().unwrap()),
            &t.operator_token,
        )
        .await;
    assert_eq!(s, 200, "{cmd}");
    assert_eq!(cmd["command"]["type"], "grid_event");
    assert_eq!(cmd["command"]["event_id"], json!(event));
    assert_eq!(cmd["site"], json!(t.site.to_string()));
    assert_eq!(
        srv.state().store.count_grid_events(&t.site).await.unwrap(),
        1
    );
    for bad in [
        json!({"power_kw": "0", "from": from, "to": to}),
        json!({"power_kw": "10.05", "from": from, "to": to}),
        json!({"power_kw": "10", "from": to, "to": from}),
        json!({"power_kw": "10", "from": from, "to": from + SignedDuration::from_hours(25)}),
    ] {
        let (s, b) = srv.post(&path, &t.operator_token, bad.clone()).await;
        assert_eq!(s, 422, "{bad}: {b}");
    }
    let (s, _) = srv
        .post(
            &path,
            &t.driver_token,
            json!({"power_kw": "10", "from": from, "to": to}),
        )
        .await;
    assert_eq!(s, 403, "drivers send no grid events");
    srv.stop().await;
}

/// A feed-in tariff as the API takes it: one period, a price per exported kWh, no service fee.
fn feed_in(version: u32, price: &str) -> Value {
    let mut t = serde_json::to_value(super::harness::tariff(version)).unwrap();
    t["periods"][0]["energy_price"] = json!(price);
    t["periods"][0]["service_fee"] = json!("0");
    t
}

#[tokio::test]
async fn a_discharge_tariff_is_versioned_assigned_per_site_and_reaches_the_edge() {
    let srv = Srv::start().await;
    let t = &srv.a;
    let id = "feed-in-a";
    for (version, price) in [(1, "0.90"), (2, "1.10")] {
        let body = json!({"tariff_id": id, "operator": t.operator.to_string(), "tariff": feed_in(version, price)});
        let (s, b) = srv.post("/v1/tariffs", &t.operator_token, body).await;
        assert_eq!(s, 201, "{b}");
    }
    // Versions are never edited: the same version again is a conflict (it exists), an older
    // one is invalid.
    let body =
        json!({"tariff_id": id, "operator": t.operator.to_string(), "tariff": feed_in(2, "9")});
    let (s, b) = srv.post("/v1/tariffs", &t.operator_token, body).await;
    assert_eq!(s, 409, "{b}");
    assert!(b.to_string().contains("v2"), "{b}");
    let body =
        json!({"tariff_id": id, "operator": t.operator.to_string(), "tariff": feed_in(1, "9")});
    let (s, b) = srv.post("/v1/tariffs", &t.operator_token, body).await;
    assert_eq!(s, 422, "{b}");
    let path = format!("/v1/sites/{}/tariffs", t.site);
    let now = Timestamp::now();
    for (version, from) in [
        (1, now - SignedDuration::from_hours(1)),
        (2, now + SignedDuration::from_hours(1)),
    ] {
        let body = json!({"tariff_id": id, "version": version, "kind": "discharge", "effective_from": from});
        let (s, b) = srv.post(&path, &t.operator_token, body).await;
        assert_eq!(s, 200, "{b}");
    }
    // In force now: v1 (v2 starts in an hour); the charge tariff is untouched.
    let (s, cfg) = srv
        .get(&format!("/v1/edges/{}/config", t.site), &t.edge_token)
        .await;
    assert_eq!(s, 200, "{cfg}");
    assert_eq!(cfg["discharge_tariff"]["version"], json!(1), "{cfg}");
    assert_eq!(
        cfg["discharge_tariff"]["periods"][0]["energy_price"],
        json!("0.90")
    );
    assert!(cfg["charge_tariff"].is_null(), "{cfg}");
    let in_force = srv
        .state()
        .store
        .tariff_for_site(
            &t.site,
            voltline_cloud::domain::OrderKind::Discharge,
            now + SignedDuration::from_hours(2),
        )
        .await
        .unwrap()
        .unwrap();
    assert_eq!(in_force.version().0, 2);
    // Another operator's tariff cannot be assigned to this site.
    let (s, _) = srv
        .post(
            &format!("/v1/sites/{}/tariffs", srv.b.site),
            &srv.admin,
            json!({"tariff_id": id, "version": 1, "kind": "discharge"}),
        )
        .await;
    assert_eq!(s, 422);
    srv.stop().await;
}
