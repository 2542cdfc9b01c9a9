//! Commands and config down, status and last will up, against real MQTT brokers on loopback
//! (an embedded rumqttd, and Mosquitto when `VOLTLINE_TEST_MQTT` is set), with a test cloud and
//! a proxy that sees when the edge acknowledges a delivery.

mod uplink_support;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use voltline_edge::ports::directory::hash_credential;
use voltline_edge::ports::{ChargerDirectory, ChargerEntry, Verdict};
use voltline_edge::store::CommandStatus;
use voltline_edge::uplink::UplinkState;
use voltline_protocol::domain::{CommandId, PileCode, SiteId};
use voltline_protocol::sync::{
    CardGrant, ChargerGrant, Command, CommandEnvelope, CommandOutcome, ConfigNotice, RecordBody,
    SiteConfigDoc, SiteLimitsDoc, V1,
};
use voltline_protocol::topics::SiteChannel;
use voltline_protocol::Money;

use uplink_support::*;

// ---------------------------------------------------------------------------------------

fn envelope(site: &SiteId, id: &str, expires_in_s: i64) -> CommandEnvelope {
    let now = Timestamp::now();
    CommandEnvelope {
        v: V1,
        id: CommandId::new(id).unwrap(),
        site: site.clone(),
        issued_at: now,
        expires_at: now + SignedDuration::from_secs(expires_in_s),
        command: Command::Reboot {
            pile: "32010600019236".parse().unwrap(),
        },
    }
}

fn outcome_of(cloud: &Cloud, id: &str) -> Vec<CommandOutcome> {
    cloud
        .lock()
        .records
        .values()
        .filter_map(|r| match &r.body {
            RecordBody::CommandResult(c) if c.command_id.as_str() == id => Some(c.outcome.clone()),
            _ => None,
        })
        .collect()
}

/// A command delivery the edge acknowledged, and whether the inbox held it at that moment.
type Seen = (Vec<u8>, bool);

async fn commands_stored_before_ack(broker: SocketAddr) {
    let (cloud, proxy, mut edge) = setup(broker).await;
    // (command payload, was it in the inbox when the edge's PUBACK went by)
    let pubacks: Arc<Mutex<Vec<Seen>>> = Arc::default();
    let (seen, store) = (pubacks.clone(), edge.store.clone());
    proxy.on_edge_puback(move |topic, payload| {
        if topic.ends_with("/commands") {
            let stored = serde_json::from_slice::<serde_json::Value>(payload)
                .ok()
                .and_then(|v| v["id"].as_str().map(str::to_owned))
                .and_then(|id| store.command(&CommandId::new(id).ok()?).ok()?)
                .is_some();
            seen.lock().unwrap().push((payload.to_vec(), stored));
        }
    });
    let site = cloud.site.clone();
    let fresh = envelope(&site, "cmd-fresh", 60);
    cloud.publish(SiteChannel::Commands, serde_json::to_vec(&fresh).unwrap());
    let got = tokio::time::timeout(Duration::from_secs(10), edge.commands.recv())
        .await
        .expect("the command reached the site")
        .unwrap();
    assert_eq!(got, fresh);
    eventually("the edge acknowledged the command", 10, || {
        !pubacks.lock().unwrap().is_empty()
    })
    .await;
    assert!(
        pubacks.lock().unwrap()[0].1,
        "acknowledged before it was stored"
    );
    eventually("Received went up", 10, || {
        outcome_of(&cloud, "cmd-fresh") == vec![CommandOutcome::Received]
    })
    .await;

    // The same delivery again: acknowledged, not forwarded.
    cloud.publish(SiteChannel::Commands, serde_json::to_vec(&fresh).unwrap());
    eventually("the duplicate is counted", 10, || {
        edge.metrics.commands_duplicate.get() == 1
    })
    .await;
    eventually("the duplicate is acknowledged", 10, || {
        pubacks.lock().unwrap().len() == 2
    })
    .await;

    // Already expired: reported, not forwarded.
    let stale = envelope(&site, "cmd-stale", -1);
    cloud.publish(SiteChannel::Commands, serde_json::to_vec(&stale).unwrap());
    eventually("Expired went up", 10, || {
        outcome_of(&cloud, "cmd-stale") == vec![CommandOutcome::Expired]
    })
    .await;
    let entry = edge.store.command(&stale.id).unwrap().unwrap();
    assert_eq!(entry.status, CommandStatus::Done);
    assert_eq!(edge.metrics.commands_expired.get(), 1);

    // Malformed and foreign deliveries: counted and acknowledged.
    cloud.publish(SiteChannel::Commands, b"not a command".to_vec());
    let foreign = envelope(&SiteId::new("site-elsewhere").unwrap(), "cmd-foreign", 60);
    cloud.publish(SiteChannel::Commands, serde_json::to_vec(&foreign).unwrap());
    eventually("bad deliveries are counted", 10, || {
        edge.metrics.commands_malformed.get() == 2
    })
    .await;
    eventually("bad deliveries are acknowledged", 10, || {
        pubacks.lock().unwrap().len() == 5
    })
    .await;
    assert!(edge.store.command(&foreign.id).unwrap().is_none());

    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        edge.commands.try_recv().is_err(),
        "a command was forwarded twice or after expiry"
    );
    assert_eq!(edge.metrics.commands_received.get(), 2);
    edge.stop().await;
    forget_site(broker, &cloud.site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_stored_before_acked_once_and_expired_ones_are_reported() {
    commands_stored_before_ack(start_rumqttd()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_are_stored_before_acked_once_and_expired_ones_are_reported_on_mosquitto() {
    if let Some(b) = mosquitto("commands_are_stored_before_acked") {
        commands_stored_before_ack(b).await;
    }
}

/// What a delivery was: a command's id, or a config notice's version.
fn label(topic: &str, payload: &[u8]) -> String {
    let json = serde_json::from_slice::<serde_json::Value>(payload).unwrap_or_default();
    if topic.ends_with("/commands") {
        format!("command {}", json["id"])
    } else {
        format!("{topic} {}", json["config_version"])
    }
}

/// MQTT acknowledges QoS 1 deliveries in the order they arrived, and a broker may drop a
/// client that does not (rumqttd does): commands, stored before they are acknowledged, and
/// config notices, handled at once, arrive interleaved and are acknowledged in that order.
async fn deliveries_acked_in_order(broker: SocketAddr) {
    const COMMANDS: usize = 12;
    let (cloud, proxy, mut edge) = setup(broker).await;
    let acked: Arc<Mutex<Vec<String>>> = Arc::default();
    let seen = acked.clone();
    proxy.on_edge_puback(move |topic, payload| seen.lock().unwrap().push(label(topic, payload)));
    let site = cloud.site.clone();
    for i in 0..COMMANDS {
        let env = envelope(&site, &format!("cmd-order-{i}"), 60);
        cloud.publish(SiteChannel::Commands, serde_json::to_vec(&env).unwrap());
        // An old config version: nothing to fetch, acknowledged at once.
        cloud.publish(SiteChannel::Config, notice(&site, i as u64 % 2));
    }
    for _ in 0..COMMANDS {
        tokio::time::timeout(Duration::from_secs(10), edge.commands.recv())
            .await
            .expect("every command reached the site")
            .unwrap();
    }
    // The cloud's acks of the edge's `Received` results arrive too, on their own topic.
    let ours = |labels: &[String]| labels.iter().filter(|l| !l.contains("/acks ")).count();
    eventually("every command and notice is acknowledged", 10, || {
        ours(&acked.lock().unwrap()) == 2 * COMMANDS
    })
    .await;
    // The broker chooses the order it delivers in; the edge must acknowledge in that order.
    let acked = acked.lock().unwrap().clone();
    let delivered: Vec<String> = proxy
        .delivered()
        .iter()
        .map(|(topic, payload)| label(topic, payload))
        .collect();
    assert!(
        delivered.starts_with(&acked),
        "acknowledged out of order:\n acked {acked:?}\n delivered {delivered:?}"
    );
    assert_eq!(
        edge.metrics.uplink_failures.get(),
        0,
        "the broker never dropped the edge"
    );
    edge.stop().await;
    forget_site(broker, &cloud.site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_acknowledged_in_the_order_they_arrived() {
    deliveries_acked_in_order(start_rumqttd()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_are_acknowledged_in_the_order_they_arrived_on_mosquitto() {
    if let Some(b) = mosquitto("deliveries_are_acknowledged_in_order") {
        deliveries_acked_in_order(b).await;
    }
}

// ---------------------------------------------------------------------------------------

fn pile(n: u64) -> PileCode {
    PileCode::from_number(32_010_600_019_200 + n).unwrap()
}

fn doc(site: &SiteId, version: u64, piles: &[u64]) -> SiteConfigDoc {
    SiteConfigDoc {
        v: V1,
        site: site.clone(),
        config_version: version,
        time_zone: "Asia/Shanghai".into(),
        charge_tariff: None,
        discharge_tariff: None,
        chargers: piles
            .iter()
            .map(|&n| ChargerGrant {
                pile: pile(n),
                connectors: 2,
                credential_sha256: hash_credential(&format!("pw-{n}")),
            })
            .collect(),
        cards: vec![CardGrant {
            card: "00000000D14B0A54".parse().unwrap(),
            account: "acct-1".parse().unwrap(),
            offline_limit: Money::from_cents(8_000),
        }],
        limits: SiteLimitsDoc {
            offline_session_limit: Money::from_cents(5_000),
            default_session_amount: Money::from_cents(10_000),
            command_expiry_s: 90,
            max_site_power: None,
        },
    }
}

fn notice(site: &SiteId, version: u64) -> Vec<u8> {
    serde_json::to_vec(&ConfigNotice {
        v: V1,
        site: site.clone(),
        config_version: version,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_fetch_updates_store_and_directory_and_older_versions_are_ignored() {
    let broker = start_rumqttd();
    let site = fresh_site();
    let cloud = Cloud::start(broker, &site).await;
    cloud.lock().config = Some(doc(&site, 3, &[1]));
    let local = ChargerDirectory::new([ChargerEntry {
        pile: pile(99),
        credential_sha256: None,
    }]);
    let edge = Edge::start_with(test_config(&site, broker, &cloud.http_base()), local).await;
    let version = || edge.store.site_config().map_or(0, |c| c.version);
    eventually("the config is fetched at start", 10, || version() == 3).await;
    let cached = edge.store.site_config().unwrap();
    assert_eq!(cached.sessions.command_expiry_s, 90);
    assert_eq!(cached.time_zone, "Asia/Shanghai");
    assert_eq!(
        cached.offline_limit(&"00000000D14B0A54".parse().unwrap()),
        Some(Money::from_cents(5_000))
    );
    // The directory is merged right after the config is cached.
    eventually("the cloud's charger is admitted", 10, || {
        edge.directory.verify_mqtt(&pile(1).to_string(), "pw-1") == Verdict::Accepted
    })
    .await;
    assert_eq!(
        edge.directory.verify_tcp(&pile(99)),
        Verdict::Accepted,
        "local chargers stay"
    );
    wait_state(&edge, UplinkState::Live).await;

    cloud.lock().config = Some(doc(&site, 4, &[1, 2]));
    cloud.publish(SiteChannel::Config, notice(&site, 4));
    eventually("a newer notice fetches", 10, || version() == 4).await;
    eventually("the new charger is admitted", 10, || {
        edge.directory.verify_mqtt(&pile(2).to_string(), "pw-2") == Verdict::Accepted
    })
    .await;

    // The cloud announces 5 but serves an older document: ignored.
    let gets = cloud.lock().config_gets;
    cloud.lock().config = Some(doc(&site, 2, &[3]));
    cloud.publish(SiteChannel::Config, notice(&site, 5));
    eventually("the notice fetches", 10, || {
        cloud.lock().config_gets == gets + 1
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(version(), 4, "an older config replaced a newer one");
    assert_eq!(edge.directory.verify_tcp(&pile(3)), Verdict::UnknownPile);

    // A notice not above the cached version does not fetch.
    cloud.publish(SiteChannel::Config, notice(&site, 4));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(cloud.lock().config_gets, gets + 1);
    assert_eq!(edge.metrics.configs_applied.get(), 2);
    edge.stop().await;
}

// ---------------------------------------------------------------------------------------

async fn last_will_and_graceful_offline(broker: SocketAddr) {
    let site = fresh_site();
    let cloud = Cloud::start(broker, &site).await;
    let cfg = test_config(&site, broker, &cloud.http_base());
    let last_status = |c: &Cloud| c.lock().statuses.last().map(|s| (s.online, s.at.is_some()));

    // An edge in its own runtime, dropped without shutdown: it dies.
    let (up_tx, up_rx) = std::sync::mpsc::channel();
    let (die_tx, die_rx) = tokio::sync::oneshot::channel::<()>();
    let c = cfg.clone();
    let edge_thread = std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async move {
            let edge = Edge::start(c).await;
            wait_state(&edge, UplinkState::Live).await;
            up_tx.send(()).unwrap();
            let _ = die_rx.await;
            drop(edge);
        });
        drop(rt);
    });
    tokio::task::spawn_blocking(move || up_rx.recv_timeout(Duration::from_secs(10)))
        .await
        .unwrap()
        .expect("the edge came up");
    eventually("the edge reports online", 10, || {
        last_status(&cloud) == Some((true, true))
    })
    .await;
    die_tx.send(()).unwrap();
    tokio::task::spawn_blocking(move || edge_thread.join())
        .await
        .unwrap()
        .unwrap();
    eventually("the last will reports offline", 10, || {
        last_status(&cloud) == Some((false, false))
    })
    .await;

    // A graceful stop publishes offline itself; the online status is retained.
    let edge = Edge::start(cfg).await;
    wait_state(&edge, UplinkState::Live).await;
    eventually("online again", 10, || {
        last_status(&cloud) == Some((true, true))
    })
    .await;
    let late = Cloud::start(broker, &site).await;
    eventually(
        "a late subscriber sees the retained online status",
        10,
        || last_status(&late) == Some((true, true)),
    )
    .await;
    edge.stop().await;
    eventually("the graceful stop reports offline", 10, || {
        last_status(&cloud) == Some((false, true))
    })
    .await;
    forget_site(broker, &site).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_shows_offline_when_the_edge_dies_and_shutdown_publishes_offline() {
    last_will_and_graceful_offline(start_rumqttd()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_will_shows_offline_when_the_edge_dies_and_shutdown_publishes_offline_on_mosquitto() {
    if let Some(b) = mosquitto("last_will_shows_offline") {
        last_will_and_graceful_offline(b).await;
    }
}
