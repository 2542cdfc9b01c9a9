//! Sessions and commands: 202 at once, polling, 402 without a command, holds voided when a
//! start fails or expires, WebSocket events for their owner only, durability across restart.

use std::time::Duration;

use futures::StreamExt;
use jiff::Timestamp;
use rust_decimal_macros::dec;
use serde_json::{json, Value};
use voltline_cloud::funds::Funds;
use voltline_protocol::Money;

use super::harness::{test_config, Srv};

async fn available(srv: &Srv) -> Money {
    srv.funds.available(&srv.a.account).await.unwrap()
}

#[tokio::test]
async fn start_answers_202_at_once_and_polling_shows_order_and_command() {
    let srv = Srv::start().await;
    let (status, body) = srv.start_session(Some("10")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(body["status"], "dispatching");
    let order_id = body["order_id"].as_str().unwrap().to_owned();
    let command_id = body["command_id"].as_str().unwrap().to_owned();
    let (s, order) = srv
        .get(&format!("/v1/sessions/{order_id}"), &srv.a.driver_token)
        .await;
    assert_eq!(s, 200, "{order}");
    assert_eq!(order["state"], "pending");
    assert_eq!(order["limit"]["amount"], "10");
    let (s, cmd) = srv
        .get(&format!("/v1/commands/{command_id}"), &srv.a.driver_token)
        .await;
    assert_eq!(s, 200, "{cmd}");
    assert_eq!(cmd["state"], "queued");
    assert_eq!(cmd["command"]["type"], "start_charging");
    assert_eq!(available(&srv).await, Money::from_yuan(dec!(90)));
    srv.stop().await;
}

#[tokio::test]
async fn short_wallet_is_402_and_no_command_is_queued() {
    let srv = Srv::start().await;
    // A hold never exceeds what is available: asking for more holds everything but 0.50.
    let (status, first) = srv.start_session(Some("99.50")).await;
    assert_eq!(status, 202, "{first}");
    let queued = srv
        .state()
        .store
        .pending_commands(None, Timestamp::now(), 100)
        .await
        .unwrap()
        .len();
    // 0.50 left is below the minimum hold: refused, and no command is sent.
    let (status, body) = srv.start_session(Some("1000")).await;
    assert_eq!(status, 402, "{body}");
    assert_eq!(
        body["type"],
        "https://voltline.invalid/problems/insufficient-funds"
    );
    assert!(
        body["detail"].as_str().unwrap().contains("top up"),
        "{body}"
    );
    let pending = srv
        .state()
        .store
        .pending_commands(None, Timestamp::now(), 100)
        .await
        .unwrap();
    assert_eq!(pending.len(), queued, "no command after a 402: {pending:?}");
    assert_eq!(available(&srv).await, Money::from_yuan(dec!(0.50)));
    srv.stop().await;
}

#[tokio::test]
async fn hold_is_voided_when_the_start_command_expires() {
    let mut config = test_config();
    config.sessions.command_expiry_s = 1;
    let srv = Srv::start_with(config).await;
    let (status, body) = srv.start_session(Some("30")).await;
    assert_eq!(status, 202, "{body}");
    assert_eq!(available(&srv).await, Money::from_yuan(dec!(70)));
    let cmd_path = format!("/v1/commands/{}", body["command_id"].as_str().unwrap());
    srv.poll_until(&cmd_path, &srv.a.driver_token, 10, |c| {
        c["state"] == "expired"
    })
    .await;
    let order_path = format!("/v1/sessions/{}", body["order_id"].as_str().unwrap());
    srv.poll_until(&order_path, &srv.a.driver_token, 5, |o| {
        o["state"] == "failed"
    })
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while available(&srv).await != Money::from_yuan(dec!(100)) {
        assert!(tokio::time::Instant::now() < deadline, "hold never voided");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    srv.stop().await;
}

pub fn command_result(seq: u64, command_id: &str, outcome: Value) -> Value {
    let mut record = json!({
        "seq": seq,
        "at": Timestamp::now().to_string(),
        "type": "command_result",
        "command_id": command_id,
    });
    for (k, v) in outcome.as_object().unwrap() {
        record[k] = v.clone();
    }
    record
}

#[tokio::test]
async fn hold_is_voided_when_the_pile_rejects_the_start() {
    let srv = Srv::start().await;
    let (_, body) = srv.start_session(Some("25")).await;
    let command_id = body["command_id"].as_str().unwrap();
    let batch = json!({"v": 1, "site": srv.a.site.to_string(), "records": [
        command_result(1, command_id, json!({"outcome": "received"})),
        command_result(2, command_id, json!({"outcome": "rejected", "reason": "connector busy"})),
    ]});
    let path = format!("/v1/edges/{}/records", srv.a.site);
    let (s, ack) = srv.post(&path, &srv.a.edge_token, batch).await;
    assert_eq!(s, 200, "{ack}");
    assert_eq!(ack["up_to_seq"], 2);
    let (_, cmd) = srv
        .get(&format!("/v1/commands/{command_id}"), &srv.a.driver_token)
        .await;
    assert_eq!(cmd["state"], "rejected", "{cmd}");
    assert_eq!(cmd["reason"], "connector busy");
    let (_, order) = srv
        .get(
            &format!("/v1/sessions/{}", body["order_id"].as_str().unwrap()),
            &srv.a.driver_token,
        )
        .await;
    assert_eq!(order["state"], "failed");
    assert_eq!(available(&srv).await, Money::from_yuan(dec!(100)));
    srv.stop().await;
}

async fn ws(
    srv: &Srv,
    token: &str,
) -> tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>> {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest;
    let url = format!("{}/v1/events", srv.base.replace("http://", "ws://"));
    let mut req = url.into_client_request().unwrap();
    req.headers_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    tokio_tungstenite::connect_async(req)
        .await
        .expect("ws connects")
        .0
}

#[tokio::test]
async fn websocket_pushes_changes_to_their_owner_only() {
    let srv = Srv::start().await;
    let mut mine = ws(&srv, &srv.a.driver_token).await;
    let mut operator = ws(&srv, &srv.a.operator_token).await;
    let mut other = ws(&srv, &srv.b.driver_token).await;
    let mut other_op = ws(&srv, &srv.b.operator_token).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let (status, body) = srv.start_session(Some("5")).await;
    assert_eq!(status, 202);
    for sock in [&mut mine, &mut operator] {
        let msg = tokio::time::timeout(Duration::from_secs(5), sock.next())
            .await
            .expect("an event arrives")
            .unwrap()
            .unwrap();
        let event: Value = serde_json::from_str(msg.to_text().unwrap()).unwrap();
        assert!(
            event["type"] == "order" || event["type"] == "command",
            "{event}"
        );
        let id = if event["type"] == "order" {
            &body["order_id"]
        } else {
            &body["command_id"]
        };
        assert_eq!(&event["id"], id);
    }
    for sock in [&mut other, &mut other_op] {
        let got = tokio::time::timeout(Duration::from_millis(500), sock.next()).await;
        assert!(got.is_err(), "another tenant saw an event: {got:?}");
    }
    let (s, _) = srv
        .call(reqwest::Method::GET, "/v1/events", None, None)
        .await;
    assert_eq!(s, 401);
    srv.stop().await;
}

#[tokio::test]
async fn pending_commands_survive_a_cloud_restart() {
    let mut srv = Srv::start().await;
    let (_, body) = srv.start_session(Some("5")).await;
    let command_id = body["command_id"].as_str().unwrap().to_owned();
    srv.restart(test_config()).await;
    let pending = srv
        .state()
        .store
        .pending_commands(None, Timestamp::now(), 100)
        .await
        .unwrap();
    assert!(
        pending.iter().any(|c| c.id.as_str() == command_id),
        "{pending:?}"
    );
    let (s, cmd) = srv
        .get(&format!("/v1/commands/{command_id}"), &srv.a.driver_token)
        .await;
    assert_eq!((s, cmd["state"].as_str()), (200, Some("queued")));
    srv.stop().await;
}
