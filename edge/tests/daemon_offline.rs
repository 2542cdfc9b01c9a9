//! The whole edge daemon with the cloud unreachable (the link disabled): simulated piles on
//! both charger ports start sessions by card against the cached authorisation list, the
//! edge prices them with the cached tariff and stops a session when its offline limit is
//! used up, and every record a pile got acknowledged is in the outbox exactly once, waiting
//! for the cloud.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use rust_decimal_macros::dec;
use voltline_edge::daemon::Running;
use voltline_edge::ops::config::EdgeConfig;
use voltline_edge::store::{CardAuthorisation, SiteConfig, SiteLimits};
use voltline_protocol::domain::{AccountId, Energy, Money, PileCode};
use voltline_protocol::message::transaction::PhysicalCardNo;
use voltline_protocol::sync::{Authorisation, RecordBody};
use voltline_protocol::tariff::{ScheduleEntry, Tariff, TariffPeriod, TariffVersion, TimeOfDay};
use voltline_protocol::TransactionSerial;
use voltline_sim::fleet::{FleetConfig, SimFleet};
use voltline_sim::{ChargerSpec, SimEvent, StartBy, VehicleSpec};

const WAIT: Duration = Duration::from_secs(60);
const PASSWORD: &str = "pile-secret";

fn pile(n: u64) -> PileCode {
    PileCode::from_number(32_010_600_000_000 + n).unwrap()
}

fn card(n: u64) -> PhysicalCardNo {
    PhysicalCardNo::from_bytes((0xCA00_0000 + n).to_be_bytes())
}

fn tariff() -> Tariff {
    let money = |s: &str| Money::from_yuan(s.parse().unwrap());
    Tariff::new(
        TariffVersion(1),
        jiff::tz::TimeZone::get("Asia/Shanghai").unwrap(),
        vec![
            TariffPeriod::new("flat", money("0.80"), money("0.40")),
            TariffPeriod::new("peak", money("1.20"), money("0.60")),
        ],
        vec![
            ScheduleEntry::new(TimeOfDay::new(0, 0).unwrap(), 0),
            ScheduleEntry::new(TimeOfDay::new(8, 0).unwrap(), 1),
            ScheduleEntry::new(TimeOfDay::new(20, 0).unwrap(), 0),
        ],
    )
    .unwrap()
}

fn config(dir: &std::path::Path, piles: &[PileCode]) -> EdgeConfig {
    let mut text = format!(
        r#"
        [site]
        id = "test-site"
        time_zone = "Asia/Shanghai"
        data_dir = "{}"
        [tcp]
        listen = "127.0.0.1:0"
        [mqtt]
        listen = "127.0.0.1:0"
        [ops]
        listen = "127.0.0.1:0"
        [cloud]
        enabled = false
        "#,
        dir.display()
    );
    for p in piles {
        text.push_str(&format!(
            "[[chargers]]\npile = \"{p}\"\npassword = \"{PASSWORD}\"\n"
        ));
    }
    EdgeConfig::from_parts(&text, Vec::new()).unwrap()
}

/// Cards 1..=n may spend 500 yuan offline; card 99 only 2 yuan.
fn site_config(n: u64) -> SiteConfig {
    let mut cards: Vec<CardAuthorisation> = (1..=n)
        .map(|i| CardAuthorisation {
            card: card(i),
            account: AccountId::new(format!("driver-{i}")).unwrap(),
            offline_limit: Money::from_yuan(dec!(500)),
        })
        .collect();
    cards.push(CardAuthorisation {
        card: card(99),
        account: AccountId::new("driver-small").unwrap(),
        offline_limit: Money::from_yuan(dec!(2)),
    });
    SiteConfig::new(
        5,
        Some(tariff()),
        cards,
        SiteLimits {
            offline_session_limit: Money::from_yuan(dec!(800)),
            max_site_power: None,
        },
    )
    .unwrap()
}

/// A vehicle that charges a few kWh and then stops by itself (target SoC).
fn small_vehicle() -> VehicleSpec {
    VehicleSpec::standard()
        .with_battery(Energy::from_wh(20_000))
        .with_soc(40, 60)
}

/// Transaction records in the outbox, by serial.
fn stored_transactions(running: &Running) -> HashMap<TransactionSerial, Vec<RecordBody>> {
    let mut out: HashMap<TransactionSerial, Vec<RecordBody>> = HashMap::new();
    for r in running
        .store
        .unacked_after(0, 100_000, jiff::Timestamp::now())
        .unwrap()
    {
        if let RecordBody::Transaction(t) = &r.body {
            out.entry(t.record.serial).or_default().push(r.body.clone());
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_site_charges_by_card_prices_locally_and_keeps_every_record_once() {
    let dir = tempfile::tempdir().unwrap();
    let tcp_piles: Vec<PileCode> = (1..=6).map(pile).collect();
    let mqtt_piles: Vec<PileCode> = (7..=10).map(pile).collect();
    let all: Vec<PileCode> = tcp_piles.iter().chain(&mqtt_piles).copied().collect();
    let running = Running::start(config(dir.path(), &all)).await.unwrap();
    assert!(running
        .store
        .put_site_config(site_config(10))
        .await
        .unwrap());

    let tcp = FleetConfig::tcp(
        running.tcp_addr.unwrap().to_string(),
        tcp_piles.iter().map(|p| ChargerSpec::dc(*p, 120)).collect(),
    )
    .speed(120.0)
    .unwrap();
    let mqtt = FleetConfig::mqtt(
        running.mqtt_addr.unwrap().to_string(),
        PASSWORD,
        mqtt_piles
            .iter()
            .map(|p| ChargerSpec::dc(*p, 120))
            .collect(),
    )
    .speed(120.0)
    .unwrap();
    let tcp_fleet = SimFleet::spawn(tcp).await.unwrap();
    let mqtt_fleet = SimFleet::spawn(mqtt).await.unwrap();
    let mut events = vec![tcp_fleet.events(), mqtt_fleet.events()];

    let mut view = running.site.clone();
    tokio::time::timeout(WAIT, view.wait_for(|v| v.piles_connected == all.len()))
        .await
        .expect("every pile logs in")
        .unwrap();

    // Every pile: one card session to the vehicle's target; pile 1 also has the 2-yuan card
    // on its second connector, which the edge must stop at its limit.
    for (i, p) in all.iter().enumerate() {
        let fleet = if i < tcp_piles.len() {
            &tcp_fleet
        } else {
            &mqtt_fleet
        };
        let charger = fleet.charger(p).unwrap();
        charger
            .plug_in_with(1, small_vehicle(), StartBy::Card(card(i as u64 + 1)))
            .await
            .unwrap();
    }
    let big = VehicleSpec::standard()
        .with_battery(Energy::from_wh(80_000))
        .with_soc(10, 100);
    tcp_fleet
        .charger(&pile(1))
        .unwrap()
        .plug_in_with(2, big, StartBy::Card(card(99)))
        .await
        .unwrap();

    // Wait until every session ended and its record was confirmed by the edge.
    let expected = all.len() + 1;
    let mut ended: HashSet<TransactionSerial> = HashSet::new();
    let mut confirmed: HashSet<TransactionSerial> = HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    while confirmed.len() < expected || ended.len() < expected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "ended {} confirmed {} of {expected}",
            ended.len(),
            confirmed.len()
        );
        for rx in &mut events {
            while let Ok(e) = rx.try_recv() {
                match e {
                    SimEvent::SessionEnded { summary, .. } => {
                        ended.insert(summary.serial);
                    }
                    SimEvent::RecordConfirmed { serial, .. } => {
                        confirmed.insert(serial);
                    }
                    SimEvent::StartRefused { pile, reason, .. } => {
                        panic!("pile {pile} start refused: {reason}")
                    }
                    _ => {}
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        ended, confirmed,
        "every ended session's record was acknowledged"
    );

    running.store.flush().await.unwrap();
    let stored = stored_transactions(&running);
    for serial in &confirmed {
        let records = stored
            .get(serial)
            .expect("an acknowledged record is stored");
        assert_eq!(records.len(), 1, "stored once: {serial}");
        let RecordBody::Transaction(t) = &records[0] else {
            unreachable!()
        };
        assert!(
            matches!(t.authorisation, Authorisation::OfflineCard { .. }),
            "{:?}",
            t.authorisation
        );
        let edge_cost = t.edge_cost.expect("the edge priced the session");
        let diff = (edge_cost.yuan() - t.record.total_amount.yuan()).abs();
        assert!(
            diff <= dec!(0.05),
            "edge price {edge_cost} vs pile's {} for {serial}",
            t.record.total_amount
        );
        if let Authorisation::OfflineCard { account, .. } = &t.authorisation {
            if account.as_str() == "driver-small" {
                assert!(
                    edge_cost.yuan() <= dec!(2.5),
                    "the 2-yuan session was stopped near its limit, cost {edge_cost}"
                );
                assert!(
                    edge_cost.yuan() >= dec!(1.5),
                    "it ran up to its limit: {edge_cost}"
                );
            }
        }
    }

    // The operations endpoint tells the same story.
    let health: serde_json::Value = reqwest::get(format!("http://{}/healthz", running.ops_addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(health["uplink"], "down");
    assert_eq!(health["piles_connected"], all.len());
    let metrics = reqwest::get(format!("http://{}/metrics", running.ops_addr))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("voltline_edge_records_acknowledged_total"),
        "{metrics}"
    );

    tcp_fleet.shutdown().await;
    mqtt_fleet.shutdown().await;
    running.stop().await.unwrap();
}
