//! The MQTT side with a rumqttc client acting as the edge: the embedded broker (per-site
//! credentials) and, when `VOLTLINE_TEST_MQTT` is set, Mosquitto at 127.0.0.1:1883 with
//! shared subscriptions. Commands are delivered, records are committed and acknowledged.

use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, QoS};
use serde_json::{json, Value};
use voltline_cloud::config::MqttMode;
use voltline_protocol::sync::{Ack, CommandEnvelope};
use voltline_protocol::topics::{self, SiteChannel};

use super::harness::{free_port, test_config, Srv};
use super::sessions::command_result;

/// Polls `eventloop` until a publish on `topic` arrives (bounded).
async fn next_on(eventloop: &mut EventLoop, topic: &str, secs: u64) -> Vec<u8> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        assert!(!left.is_zero(), "nothing arrived on {topic}");
        match tokio::time::timeout(left, eventloop.poll()).await {
            Ok(Ok(Event::Incoming(Packet::Publish(p)))) if p.topic == topic => {
                return p.payload.to_vec()
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
                eprintln!("edge client: {e}");
            }
            Err(_) => panic!("nothing arrived on {topic}"),
        }
    }
}

async fn edge_round_trip(srv: &Srv, host: &str, port: u16, user: Option<(&str, &str)>) {
    let site = srv.a.site.clone();
    let mut opts = MqttOptions::new(site.to_string(), host, port);
    opts.set_keep_alive(Duration::from_secs(10));
    if let Some((u, p)) = user {
        opts.set_credentials(u, p);
    }
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    client
        .subscribe(topics::site(&site, SiteChannel::Commands), QoS::AtLeastOnce)
        .await
        .unwrap();
    client
        .subscribe(topics::site(&site, SiteChannel::Acks), QoS::AtLeastOnce)
        .await
        .unwrap();
    // Let the subscription land before the cloud publishes.
    let until = tokio::time::Instant::now() + Duration::from_millis(500);
    while tokio::time::Instant::now() < until {
        let _ = tokio::time::timeout(Duration::from_millis(100), eventloop.poll()).await;
    }
    let (status, body) = srv.start_session(Some("5")).await;
    assert_eq!(status, 202, "{body}");
    let payload = next_on(
        &mut eventloop,
        &topics::site(&site, SiteChannel::Commands),
        15,
    )
    .await;
    let env: CommandEnvelope = serde_json::from_slice(&payload).unwrap();
    assert_eq!(env.id.as_str(), body["command_id"].as_str().unwrap());
    let batch = json!({"v": 1, "site": site.to_string(), "records": [
        command_result(1, env.id.as_str(), json!({"outcome": "received"})),
        command_result(2, env.id.as_str(), json!({"outcome": "accepted"})),
    ]});
    client
        .publish(
            topics::site(&site, SiteChannel::Records),
            QoS::AtLeastOnce,
            false,
            serde_json::to_vec(&batch).unwrap(),
        )
        .await
        .unwrap();
    let payload = next_on(&mut eventloop, &topics::site(&site, SiteChannel::Acks), 15).await;
    let ack: Ack = serde_json::from_slice(&payload).unwrap();
    assert_eq!(ack.up_to_seq, 2);
    let order: Value = srv
        .poll_until(
            &format!("/v1/sessions/{}", body["order_id"].as_str().unwrap()),
            &srv.a.driver_token,
            5,
            |o| o["state"] == "charging",
        )
        .await;
    assert_eq!(order["state"], "charging");
    // A batch naming another site on this site's topic is refused: no ack moves.
    let foreign = json!({"v": 1, "site": srv.b.site.to_string(), "records": [command_result(3, env.id.as_str(), json!({"outcome": "accepted"}))]});
    client
        .publish(
            topics::site(&site, SiteChannel::Records),
            QoS::AtLeastOnce,
            false,
            serde_json::to_vec(&foreign).unwrap(),
        )
        .await
        .unwrap();
    let _ = tokio::time::timeout(Duration::from_millis(500), eventloop.poll()).await;
    assert_eq!(srv.state().store.acked_seq(&srv.b.site).await.unwrap(), 0);
    let _ = client.disconnect().await;
}

#[tokio::test]
async fn embedded_broker_delivers_commands_and_acks_records() {
    let port = free_port();
    let mut config = test_config();
    config.mqtt.mode = MqttMode::Embedded;
    config.mqtt.listen = format!("127.0.0.1:{port}").parse().unwrap();
    let srv = Srv::start_with(config).await;
    let secret = srv.a.edge_secret.clone();
    edge_round_trip(
        &srv,
        "127.0.0.1",
        port,
        Some((srv.a.site.as_str(), &secret)),
    )
    .await;
    let site = srv.a.site.as_str();
    // A wrong credential is refused by the broker.
    assert!(
        !connects(port, site, "wrong").await,
        "a wrong edge credential was accepted"
    );
    // The site's edge bearer token works as its MQTT password too (one secret per edge);
    // another site's token, or a driver's, does not.
    assert!(
        connects(port, site, &srv.a.edge_token).await,
        "the edge token was refused"
    );
    assert!(
        !connects(port, site, &srv.b.edge_token).await,
        "site B's token let site A in"
    );
    assert!(
        !connects(port, site, &srv.a.driver_token).await,
        "a driver token let an edge in"
    );
    srv.stop().await;
}

/// True when the broker accepts the login (bounded).
async fn connects(port: u16, user: &str, password: &str) -> bool {
    let mut opts = MqttOptions::new(user, "127.0.0.1", port);
    opts.set_credentials(user, password);
    let (_c, mut ev) = AsyncClient::new(opts, 8);
    loop {
        match tokio::time::timeout(Duration::from_secs(5), ev.poll()).await {
            Ok(Ok(Event::Incoming(Packet::ConnAck(a)))) => {
                break a.code == rumqttc::ConnectReturnCode::Success
            }
            Ok(Ok(_)) => {}
            Ok(Err(_)) | Err(_) => break false,
        }
    }
}

#[tokio::test]
async fn external_mosquitto_with_shared_subscriptions() {
    if std::env::var("VOLTLINE_TEST_MQTT").is_err() {
        assert!(
            std::env::var("VOLTLINE_CI").is_err(),
            "VOLTLINE_CI is set but VOLTLINE_TEST_MQTT is not: the Mosquitto test must run in CI"
        );
        eprintln!("SKIPPED external_mosquitto_with_shared_subscriptions: set VOLTLINE_TEST_MQTT=1 with Mosquitto on 127.0.0.1:1883");
        return;
    }
    let mut config = test_config();
    config.mqtt.mode = MqttMode::External;
    config.mqtt.broker_host = "127.0.0.1".into();
    config.mqtt.broker_port = 1883;
    config.mqtt.client_id = format!("voltline-cloud-test-{}", std::process::id());
    let srv = Srv::start_with(config).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    edge_round_trip(&srv, "127.0.0.1", 1883, None).await;
    srv.stop().await;
}

#[tokio::test]
async fn command_queued_before_a_restart_is_delivered_after_it() {
    // First instance: no broker, so the start command stays queued in the store.
    let mut srv = Srv::start().await;
    let (status, body) = srv.start_session(Some("5")).await;
    assert_eq!(status, 202, "{body}");
    let port = free_port();
    let mut config = test_config();
    config.mqtt.mode = MqttMode::Embedded;
    config.mqtt.listen = format!("127.0.0.1:{port}").parse().unwrap();
    srv.restart(config).await;
    let site = srv.a.site.clone();
    let mut opts = MqttOptions::new(site.to_string(), "127.0.0.1", port);
    opts.set_credentials(site.as_str(), srv.a.edge_secret.as_str());
    let (client, mut eventloop) = AsyncClient::new(opts, 64);
    client
        .subscribe(topics::site(&site, SiteChannel::Commands), QoS::AtLeastOnce)
        .await
        .unwrap();
    // Redelivery (every second in tests) reaches the edge once it is subscribed.
    let payload = next_on(
        &mut eventloop,
        &topics::site(&site, SiteChannel::Commands),
        15,
    )
    .await;
    let env: CommandEnvelope = serde_json::from_slice(&payload).unwrap();
    assert_eq!(env.id.as_str(), body["command_id"].as_str().unwrap());
    let _ = client.disconnect().await;
    srv.stop().await;
}
