//! Records up, against real MQTT brokers on loopback — an embedded rumqttd started here, and
//! Mosquitto when `VOLTLINE_TEST_MQTT` is set (the `_on_mosquitto` tests) — with a test cloud
//! (MQTT collector/acker + axum HTTP replay route) and a cuttable proxy as the link.

mod uplink_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use voltline_edge::uplink::UplinkState;

use uplink_support::*;

// ---------------------------------------------------------------------------------------

async fn records_in_order_trimmed_after_acks(broker: SocketAddr) {
    let (cloud, _proxy, edge) = setup(broker).await;
    cloud.set_hold_acks(true);
    edge.append(1..251).await;
    eventually("the cloud holds 250 records", 10, || {
        cloud.lock().contiguous == 250
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let ledger = edge.store.ledger();
    assert_eq!(
        (ledger.head, ledger.acked),
        (250, 0),
        "trimmed before any ack"
    );
    assert_eq!(edge.metrics.outbox_depth.get(), 250);
    {
        let g = cloud.lock();
        let mut next = 1;
        for &(via, first, last) in &g.batches {
            assert_eq!(via, Via::Mqtt);
            assert_eq!(first, next, "batches arrive in order: {:?}", g.batches);
            assert!(
                last - first < 100,
                "a batch above the bound: {first}..={last}"
            );
            next = last + 1;
        }
    }
    cloud.set_hold_acks(false);
    eventually("the outbox is trimmed to the ack", 10, || {
        edge.store.ledger().acked == 250
    })
    .await;
    assert_complete(&cloud, 250);
    assert!(edge.metrics.records_sent_mqtt.get() >= 250);
    edge.stop().await;
    forget_site(broker, &cloud.site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_the_cloud_in_order_and_are_trimmed_only_after_acks() {
    records_in_order_trimmed_after_acks(start_rumqttd()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_reach_the_cloud_in_order_and_are_trimmed_only_after_acks_on_mosquitto() {
    if let Some(b) = mosquitto("records_reach_the_cloud_in_order") {
        records_in_order_trimmed_after_acks(b).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_flushed_records_leave_the_edge() {
    let (cloud, _proxy, edge) = setup(start_rumqttd()).await;
    edge.store.write_batch((1..6).map(alarm).collect()).unwrap();
    tokio::time::sleep(Duration::from_millis(400)).await;
    assert!(
        cloud.lock().records.is_empty(),
        "a record left before its flush"
    );
    edge.store.flush().await.unwrap();
    eventually("the flushed records arrive", 10, || {
        cloud.lock().contiguous == 5
    })
    .await;
    edge.stop().await;
}

// ---------------------------------------------------------------------------------------

async fn cut_link_replays_over_http_then_goes_live(broker: SocketAddr) {
    let (cloud, proxy, edge) = setup(broker).await;
    let states = Arc::new(Mutex::new(Vec::new()));
    let mut rx = edge.handle.state.clone();
    let log = states.clone();
    tokio::spawn(async move {
        while rx.changed().await.is_ok() {
            let s = *rx.borrow_and_update();
            log.lock().unwrap().push(s);
        }
    });
    edge.append(1..101).await;
    eventually("the first 100 are acked", 10, || {
        edge.store.ledger().acked == 100
    })
    .await;
    let before_cut = cloud.lock().batches.len();

    proxy.cut();
    wait_state(&edge, UplinkState::Down).await;
    edge.append(101..3101).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        cloud.lock().contiguous,
        100,
        "records went up while the link was cut"
    );

    proxy.restore();
    eventually("the backlog is acked", 20, || {
        edge.store.ledger().acked == 3100
    })
    .await;
    wait_state(&edge, UplinkState::Live).await;
    edge.append(3101..3151).await;
    eventually("live records are acked", 10, || {
        edge.store.ledger().acked == 3150
    })
    .await;

    assert_complete(&cloud, 3150);
    let (after, encodings) = {
        let g = cloud.lock();
        (g.batches[before_cut..].to_vec(), g.http_encodings.clone())
    };
    assert_eq!(
        after[0].0,
        Via::Http,
        "the backlog went over HTTP first: {after:?}"
    );
    let http_last = after
        .iter()
        .filter(|b| b.0 == Via::Http)
        .map(|b| b.2)
        .max()
        .unwrap();
    assert!(http_last >= 3000, "HTTP carried the backlog: {after:?}");
    for &(via, first, last) in &after {
        if via == Via::Mqtt {
            assert!(
                first > http_last,
                "MQTT resent {first}..={last} during the replay: {after:?}"
            );
        }
    }
    assert!(encodings.len() >= 2 && encodings.iter().all(|e| e == "gzip"));
    assert!(edge.metrics.records_replayed_http.get() >= 2_900);
    assert!(edge.metrics.replay_bytes_http.get() > 0);
    let seen = states.lock().unwrap().clone();
    let pos = |s: UplinkState| seen.iter().position(|x| *x == s);
    let (down, replaying) = (pos(UplinkState::Down), pos(UplinkState::Replaying));
    assert!(
        down.is_some() && replaying > down && seen.last() == Some(&UplinkState::Live),
        "states: {seen:?}"
    );
    edge.stop().await;
    forget_site(broker, &cloud.site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_http_replay_falls_back_to_mqtt_and_loses_nothing() {
    let (cloud, proxy, edge) = setup(start_rumqttd()).await;
    proxy.cut();
    wait_state(&edge, UplinkState::Down).await;
    edge.append(1..2001).await;
    cloud.lock().http_down = true;
    proxy.restore();
    eventually("the backlog is acked over MQTT", 20, || {
        edge.store.ledger().acked == 2000
    })
    .await;
    assert_complete(&cloud, 2000);
    assert!(cloud.lock().batches.iter().all(|b| b.0 == Via::Mqtt));
    assert!(edge.metrics.replay_failures.get() >= 1);
    assert_eq!(edge.metrics.records_replayed_http.get(), 0);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_link_backlog_goes_over_http_before_live_mqtt_resumes() {
    cut_link_replays_over_http_then_goes_live(start_rumqttd()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cut_link_backlog_goes_over_http_before_live_mqtt_resumes_on_mosquitto() {
    if let Some(b) = mosquitto("cut_link_backlog_goes_over_http") {
        cut_link_replays_over_http_then_goes_live(b).await;
    }
}
