//! The MQTT charger port with real `rumqttc` clients and the simulator: per-charger logins,
//! the topic ACL of the front end, bad messages counted and contained, no way around the
//! front end.

mod ports_support;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use ports_support::*;
use rumqttc::SubscribeReasonCode;
use rumqttc::{AsyncClient, ConnectReturnCode, ConnectionError, Event, MqttOptions, Packet, QoS};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_edge::ops::metrics::{EdgeMetrics, Port, ReasonLabels};
use voltline_edge::ports::mqtt::{MqttPort, MqttPortConfig};
use voltline_edge::ports::ChargerDirectory;
use voltline_protocol::domain::PileCode;
use voltline_protocol::message::register::LoginResult;
use voltline_protocol::message::Message;
use voltline_protocol::{frame, topics};
use voltline_sim::fleet::{FleetConfig, SimFleet};
use voltline_sim::{ChargerSpec, SimEvent};

struct Running {
    port: MqttPort,
    site: Site,
    metrics: Arc<EdgeMetrics>,
    shutdown: CancellationToken,
}

async fn start(directory: ChargerDirectory) -> Running {
    let (tx, rx) = mpsc::channel(1_024);
    let metrics = metrics();
    let shutdown = CancellationToken::new();
    let cfg = MqttPortConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        ..MqttPortConfig::default()
    };
    let port = MqttPort::start(cfg, directory, tx, metrics.clone(), shutdown.clone())
        .await
        .unwrap();
    Running {
        port,
        site: Site::spawn(rx),
        metrics,
        shutdown,
    }
}

impl Running {
    fn addr(&self) -> SocketAddr {
        self.port.local_addr()
    }
    fn acl_denied(&self, reason: &'static str) -> u64 {
        self.metrics
            .acl_denied
            .get_or_create(&ReasonLabels {
                port: Port::Mqtt,
                reason,
            })
            .get()
    }
    async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(WAIT, self.port.stopped())
            .await
            .unwrap();
    }
}

/// A charger-side MQTT client; its event loop runs in its own task (never publish from the
/// task that polls it) and reports here.
struct Client {
    client: AsyncClient,
    events: mpsc::UnboundedReceiver<Result<Packet, String>>,
}

async fn connect(
    addr: SocketAddr,
    id: &str,
    user: &str,
    pass: &str,
) -> Result<Client, ConnectionError> {
    let mut opts = MqttOptions::new(id, addr.ip().to_string(), addr.port());
    opts.set_credentials(user, pass);
    opts.set_keep_alive(Duration::from_secs(30));
    let (client, mut el) = AsyncClient::new(opts, 64);
    loop {
        match el.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(_))) => break,
            Ok(_) => {}
            Err(e) => return Err(e),
        }
    }
    let (tx, events) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        loop {
            match el.poll().await {
                Ok(Event::Incoming(p)) => {
                    if tx.send(Ok(p)).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    let _ = tx.send(Err(e.to_string()));
                    return;
                }
            }
        }
    });
    Ok(Client { client, events })
}

async fn charger(r: &Running, p: &PileCode) -> Client {
    connect(r.addr(), &p.to_string(), &p.to_string(), &password(p))
        .await
        .unwrap()
}

impl Client {
    async fn expect<T>(&mut self, what: &str, mut pick: impl FnMut(&Packet) -> Option<T>) -> T {
        let search = async {
            loop {
                match self.events.recv().await {
                    Some(Ok(p)) => {
                        if let Some(t) = pick(&p) {
                            return t;
                        }
                    }
                    other => panic!("client connection ended waiting for {what}: {other:?}"),
                }
            }
        };
        tokio::time::timeout(WAIT, search)
            .await
            .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
    }

    async fn subscribe(&mut self, filter: &str) -> SubscribeReasonCode {
        self.client
            .subscribe(filter, QoS::AtLeastOnce)
            .await
            .unwrap();
        self.expect("SUBACK", |p| match p {
            Packet::SubAck(s) => Some(s.return_codes[0]),
            _ => None,
        })
        .await
    }

    async fn publish(&self, topic: String, payload: Vec<u8>) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn registered_charger_logs_in_and_frames_flow_both_ways() {
    let mut r = start(directory(2)).await;
    let p = pile(1);
    let mut c = charger(&r, &p).await;
    let conn = r
        .site
        .expect("Connected", |s| match s {
            Seen::Connected(q, c) if *q == p => Some(*c),
            _ => None,
        })
        .await;
    assert!(matches!(
        c.subscribe(&topics::pile_down(&p)).await,
        SubscribeReasonCode::Success(_)
    ));
    c.publish(topics::pile_up(&p), bytes(&login(p, 11))).await;
    r.site
        .expect("the login frame", |s| {
            matches!(s, Seen::Frame(q, k, f) if *q == p && *k == conn && matches!(f.message, Message::Login(_))).then_some(())
        })
        .await;
    let reply = c
        .expect("the site's login reply", |pk| match pk {
            Packet::Publish(m) if m.topic == topics::pile_down(&p) => {
                Some(frame::decode(&m.payload).unwrap())
            }
            _ => None,
        })
        .await;
    assert_eq!(reply.sequence, 11);
    assert!(matches!(&reply.message, Message::LoginReply(l) if l.result == LoginResult::Accepted));
    c.client.disconnect().await.unwrap();
    r.site
        .expect("Disconnected", |s| {
            matches!(s, Seen::Disconnected(q, k) if *q == p && *k == conn).then_some(())
        })
        .await;
    r.stop().await;
}

#[tokio::test]
async fn wrong_password_unknown_pile_and_foreign_client_id_are_refused_and_counted() {
    let mut r = start(directory(2)).await;
    let p = pile(1);
    let refused = |e: Result<Client, ConnectionError>| match e {
        Err(ConnectionError::ConnectionRefused(code)) => code,
        Err(e) => panic!("expected a CONNACK refusal, got {e}"),
        Ok(_) => panic!("expected a refusal"),
    };
    let code = refused(connect(r.addr(), &p.to_string(), &p.to_string(), "wrong").await);
    assert_eq!(code, ConnectReturnCode::BadUserNamePassword);
    let stranger = pile(77);
    let code = refused(connect(r.addr(), &stranger.to_string(), &stranger.to_string(), "x").await);
    assert_eq!(code, ConnectReturnCode::NotAuthorized);
    // Pile 1's credentials under pile 2's client id would take over pile 2's session.
    let code = refused(
        connect(
            r.addr(),
            &pile(2).to_string(),
            &p.to_string(),
            &password(&p),
        )
        .await,
    );
    assert_eq!(code, ConnectReturnCode::BadClientId);
    assert_eq!(
        r.metrics.auth_refused_count(Port::Mqtt, "bad_credential"),
        1
    );
    assert_eq!(r.metrics.auth_refused_count(Port::Mqtt, "unknown_pile"), 1);
    assert_eq!(
        r.metrics
            .auth_refused_count(Port::Mqtt, "client_id_mismatch"),
        1
    );
    assert!(
        r.site.seen.try_recv().is_err(),
        "the site never hears of refused chargers"
    );
    r.stop().await;
}

#[tokio::test]
async fn a_charger_cannot_publish_or_subscribe_outside_its_own_topics() {
    let mut r = start(directory(2)).await;
    let (a, b) = (pile(1), pile(2));
    let mut ca = charger(&r, &a).await;
    let mut cb = charger(&r, &b).await;
    for f in [
        topics::pile_down(&b),
        "#".to_string(),
        topics::all_piles_up(),
        "voltline/v1/piles/+/down".into(),
        topics::pile_up(&a),
    ] {
        assert_eq!(ca.subscribe(&f).await, SubscribeReasonCode::Failure, "{f}");
    }
    assert_eq!(r.acl_denied("subscribe"), 5);
    assert!(matches!(
        ca.subscribe(&topics::pile_down(&a)).await,
        SubscribeReasonCode::Success(_)
    ));
    assert!(matches!(
        cb.subscribe(&topics::pile_down(&b)).await,
        SubscribeReasonCode::Success(_)
    ));
    // A forges a frame on B's up topic and on its own down topic: acknowledged, dropped.
    ca.publish(topics::pile_up(&b), bytes(&heartbeat(b, 1)))
        .await;
    ca.publish(topics::pile_down(&a), bytes(&heartbeat(a, 2)))
        .await;
    ca.expect("PUBACK of the dropped publish", |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;
    // A's own topic still works, and the site only ever sees A's frame as A's.
    ca.publish(topics::pile_up(&a), bytes(&heartbeat(a, 3)))
        .await;
    r.site
        .expect("A's own heartbeat", |s| match s {
            Seen::Frame(p, _, f) => {
                assert_eq!(*p, a, "a forged frame reached the site as another pile's");
                (f.sequence == 3).then_some(())
            }
            _ => None,
        })
        .await;
    assert_eq!(r.acl_denied("publish"), 2);
    // The site's heartbeat reply to A goes to A only; B gets its own.
    cb.publish(topics::pile_up(&b), bytes(&heartbeat(b, 4)))
        .await;
    let got = cb
        .expect("B's reply", |p| match p {
            Packet::Publish(m) => {
                Some((m.topic.clone(), frame::decode(&m.payload).unwrap().sequence))
            }
            _ => None,
        })
        .await;
    assert_eq!(got, (topics::pile_down(&b), 4));
    let got = ca
        .expect("A's reply", |p| match p {
            Packet::Publish(m) => {
                Some((m.topic.clone(), frame::decode(&m.payload).unwrap().sequence))
            }
            _ => None,
        })
        .await;
    assert_eq!(
        got,
        (topics::pile_down(&a), 3),
        "A sees only its own downlink"
    );
    r.stop().await;
}

#[tokio::test]
async fn garbage_payloads_and_malformed_packets_are_counted_and_others_keep_working() {
    let mut r = start(directory(2)).await;
    let (a, b) = (pile(1), pile(2));
    let ca = charger(&r, &a).await;
    let mut cb = charger(&r, &b).await;
    assert!(matches!(
        cb.subscribe(&topics::pile_down(&b)).await,
        SubscribeReasonCode::Success(_)
    ));
    // Payloads that are not exactly one frame.
    ca.publish(topics::pile_up(&a), vec![0xde, 0xad, 0xbe, 0xef])
        .await;
    let mut two = bytes(&heartbeat(a, 1));
    two.extend(bytes(&heartbeat(a, 2)));
    ca.publish(topics::pile_up(&a), two).await;
    let mut bad_crc = bytes(&heartbeat(a, 3));
    let n = bad_crc.len();
    bad_crc[n - 1] ^= 0xff;
    ca.publish(topics::pile_up(&a), bad_crc).await;
    ca.publish(topics::pile_up(&a), vec![0x68; 300]).await;
    let m = r.metrics.clone();
    eventually("four decode errors", || {
        [
            "bad_start",
            "extra_bytes",
            "checksum",
            "bad_length",
            "truncated",
        ]
        .iter()
        .map(|k| m.decode_error_count(Port::Mqtt, k))
        .sum::<u64>()
            >= 4
    })
    .await;
    // A raw socket that logs in and then sends a packet with a broken length.
    let mut raw = tokio::net::TcpStream::connect(r.addr()).await.unwrap();
    let mut connect = bytes::BytesMut::new();
    let mut c = rumqttc::mqttbytes::v4::Connect::new(a.to_string());
    c.set_login(a.to_string(), password(&a));
    rumqttc::mqttbytes::v4::Packet::Connect(c)
        .write(&mut connect, 1 << 16)
        .unwrap();
    raw.write_all(&connect).await.unwrap();
    let mut ack = [0u8; 4];
    raw.read_exact(&mut ack).await.unwrap();
    assert_eq!(ack, [0x20, 2, 0, 0]);
    raw.write_all(&[0x30, 0xff, 0xff, 0xff, 0xff, 0x7f])
        .await
        .unwrap();
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(WAIT, raw.read_to_end(&mut rest))
        .await
        .expect("closed");
    assert!(r.metrics.decode_error_count(Port::Mqtt, "mqtt_bad_length") >= 1);
    // And oversize: a 64 KiB publish is refused before it is buffered.
    let mut raw2 = tokio::net::TcpStream::connect(r.addr()).await.unwrap();
    raw2.write_all(&[0x10, 0xff, 0xff, 0x03]).await.unwrap();
    let _ = tokio::time::timeout(WAIT, raw2.read_to_end(&mut rest))
        .await
        .expect("closed");
    assert!(r.metrics.decode_error_count(Port::Mqtt, "mqtt_too_large") >= 1);
    // B never noticed.
    cb.publish(topics::pile_up(&b), bytes(&heartbeat(b, 5)))
        .await;
    cb.expect("B's heartbeat reply", |p| {
        matches!(p, Packet::Publish(_)).then_some(())
    })
    .await;
    while let Ok(s) = r.site.seen.try_recv() {
        if let Seen::Frame(_, _, f) = s {
            assert!(
                matches!(f.message, Message::Heartbeat(_)),
                "only valid frames reach the site"
            );
        }
    }
    drop(ca);
    r.stop().await;
}

#[tokio::test]
async fn nobody_gets_around_the_front_end_by_connecting_to_the_broker_directly() {
    let r = start(directory(1)).await;
    let p = pile(1);
    let direct = connect(
        r.port.internal_addr(),
        &p.to_string(),
        &p.to_string(),
        &password(&p),
    )
    .await;
    assert!(
        direct.is_err(),
        "the internal broker accepted a charger credential"
    );
    let anon = connect(r.port.internal_addr(), "x", "", "").await;
    assert!(anon.is_err());
    r.stop().await;
}

#[tokio::test]
async fn simulated_mqtt_chargers_log_in_through_the_front_end() {
    let secret = "fleet-secret";
    let piles: Vec<_> = (1..=5).map(pile).collect();
    let dir = ChargerDirectory::new(piles.iter().map(|p| voltline_edge::ports::ChargerEntry {
        pile: *p,
        credential_sha256: Some(voltline_edge::ports::directory::hash_credential(secret)),
    }));
    let r = start(dir).await;
    let specs = piles.iter().map(|p| ChargerSpec::ac(*p)).collect();
    let fleet = SimFleet::spawn(FleetConfig::mqtt(r.addr().to_string(), secret, specs))
        .await
        .unwrap();
    let mut events = fleet.events();
    let mut logged_in = std::collections::HashSet::new();
    tokio::time::timeout(WAIT, async {
        while logged_in.len() < piles.len() {
            if let Ok(SimEvent::LoggedIn { pile }) = events.recv().await {
                logged_in.insert(pile);
            }
        }
    })
    .await
    .expect("every simulated charger logged in over MQTT");
    fleet.shutdown().await;
    let _ = Bytes::new();
    r.stop().await;
}

#[tokio::test]
async fn a_chargers_last_frames_reach_the_site_before_its_disconnect() {
    let mut r = start(directory(1)).await;
    let p = pile(1);
    let mut c = charger(&r, &p).await;
    for i in 0..50u16 {
        c.publish(topics::pile_up(&p), bytes(&heartbeat(p, i)))
            .await;
    }
    let mut acks = 0;
    c.expect("50 PUBACKs", |pk| {
        acks += u32::from(matches!(pk, Packet::PubAck(_)));
        (acks == 50).then_some(())
    })
    .await;
    c.client.disconnect().await.unwrap();
    let mut frames = 0;
    r.site
        .expect("Disconnected", |s| match s {
            Seen::Frame(q, _, _) if *q == p => {
                frames += 1;
                None
            }
            Seen::Disconnected(q, _) if *q == p => Some(()),
            _ => None,
        })
        .await;
    assert_eq!(
        frames, 50,
        "every frame the broker acknowledged came before Disconnected"
    );
    r.stop().await;
}
