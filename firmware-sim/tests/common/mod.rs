//! Shared test setup: a harness platform on 127.0.0.1:0 and a fleet pointed at it.
#![allow(dead_code)]

use std::time::Duration;

use voltline_protocol::domain::{PileCode, TransactionSerial};
use voltline_protocol::frame::Frame;
use voltline_protocol::message::Message;
use voltline_sim::fleet::{FleetConfig, SimFleet};
use voltline_sim::harness::{HarnessConfig, PileConn, Platform};
use voltline_sim::ChargerSpec;

/// Upper bound of any single wait in a test.
pub const WAIT: Duration = Duration::from_secs(10);
/// Upper bound of a whole test.
pub const TEST: Duration = Duration::from_secs(60);

pub fn pile(n: u64) -> PileCode {
    PileCode::from_number(32_010_600_000_000 + n).expect("14 digits")
}

/// A platform, a one-charger fleet at `speed`, and the pile's connection, logged in with a
/// billing model.
pub async fn setup(
    spec: ChargerSpec,
    speed: f64,
    config: HarnessConfig,
) -> (Platform, SimFleet, PileConn) {
    let spec_pile = spec.pile;
    let platform = Platform::bind(config).await.expect("bind");
    let fleet = SimFleet::spawn(
        FleetConfig::tcp(platform.addr().to_string(), vec![spec])
            .speed(speed)
            .expect("speed"),
    )
    .await
    .expect("spawn");
    let conn = logged_in(&platform).await;
    let charger = fleet.charger(&spec_pile).expect("charger");
    until(&charger, "the pile to hold a billing model", |s| {
        s.online && s.billing_model_no.is_some()
    })
    .await;
    (platform, fleet, conn)
}

/// Polls the charger's state until `pred` holds (bounded by [`WAIT`]).
pub async fn until(
    charger: &voltline_sim::ChargerHandle,
    what: &str,
    mut pred: impl FnMut(&voltline_sim::ChargerSnapshot) -> bool,
) -> voltline_sim::ChargerSnapshot {
    let poll = async {
        loop {
            if let Ok(s) = charger.state().await {
                if pred(&s) {
                    return s;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(WAIT, poll)
        .await
        .unwrap_or_else(|_| panic!("timed out waiting for {what}"))
}

/// Accepts the next pile and waits until it has its billing model (0x0A sent).
pub async fn logged_in(platform: &Platform) -> PileConn {
    let mut conn = platform.accept_within(WAIT).await.expect("accept");
    conn.wait_logged_in(WAIT).await.expect("login");
    conn
}

/// Waits for the first 0x3B; returns it.
pub async fn record(conn: &mut PileConn) -> voltline_protocol::message::record::TransactionRecord {
    conn.expect(WAIT, "a transaction record (0x3B)", |f| match &f.message {
        Message::TransactionRecord(r) => Some((**r).clone()),
        _ => None,
    })
    .await
    .expect("record")
}

/// Waits for the reply of type `ty` to request `seq`.
pub async fn reply(conn: &mut PileConn, seq: u16, ty: u8) -> Frame {
    conn.expect(WAIT, &format!("reply 0x{ty:02X} to sequence {seq}"), |f| {
        (f.sequence == seq && f.frame_type() == ty).then(|| f.clone())
    })
    .await
    .expect("reply")
}

pub fn serial(p: PileCode, counter: u16) -> TransactionSerial {
    voltline_sim::harness::new_serial(p, 1, counter)
}

/// Runs `f` bounded by [`TEST`].
pub async fn bounded<F: std::future::Future<Output = ()>>(f: F) {
    tokio::time::timeout(TEST, f)
        .await
        .expect("test took too long");
}
