//! The demo's drivers: each connector gets a vehicle now and then; half the sessions start
//! from the driver's app (`POST /v1/sessions`, answered 202 at once, the start travelling as
//! a command to the edge and the pile), half by the driver's card at the pile (decided by the
//! edge from its cached authorisation list). The vehicle leaves when it is full.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use voltline_protocol::domain::{Energy, PileCode};
use voltline_sim::{SimEvent, SimFleet, StartBy, VehicleSpec};

use super::seed::{card, driver, Api};

/// What the demo has seen the chargers do.
#[derive(Debug, Default)]
pub struct Tally {
    pub started: AtomicU64,
    pub ended: AtomicU64,
    pub refused: AtomicU64,
    /// Energy of ended sessions, in mWh.
    pub energy_mwh: AtomicU64,
}

/// Routes the fleet's session events to one channel per connector, and counts them.
pub fn route_events(
    fleet: &SimFleet,
    connectors: u8,
    tally: Arc<Tally>,
    stop: CancellationToken,
) -> HashMap<(PileCode, u8), mpsc::Receiver<SimEvent>> {
    let mut senders = HashMap::new();
    let mut receivers = HashMap::new();
    for p in fleet.piles() {
        for c in 1..=connectors {
            let (tx, rx) = mpsc::channel(64);
            senders.insert((*p, c), tx);
            receivers.insert((*p, c), rx);
        }
    }
    let mut events = fleet.events();
    tokio::spawn(async move {
        loop {
            let e = tokio::select! {
                () = stop.cancelled() => return,
                e = events.recv() => e,
            };
            let e = match e {
                Ok(e) => e,
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(_) => return,
            };
            let connector = match &e {
                SimEvent::SessionStarted { connector, .. } => {
                    tally.started.fetch_add(1, Ordering::Relaxed);
                    connector.get()
                }
                SimEvent::SessionEnded {
                    summary, connector, ..
                } => {
                    tally.ended.fetch_add(1, Ordering::Relaxed);
                    tally.energy_mwh.fetch_add(
                        u64::try_from(summary.record.total_energy.mwh()).unwrap_or(0),
                        Ordering::Relaxed,
                    );
                    connector.get()
                }
                SimEvent::StartRefused { connector, .. } => {
                    tally.refused.fetch_add(1, Ordering::Relaxed);
                    connector.get()
                }
                _ => continue,
            };
            if let Some(tx) = senders.get(&(e.pile(), connector)) {
                let _ = tx.try_send(e);
            }
        }
    });
    receivers
}

/// A vehicle between 20 % and 40 % that wants 80 %, battery 40 to 80 kWh.
fn vehicle(seed: u64) -> VehicleSpec {
    let battery = 40 + (seed * 7919) % 41;
    let start = 20 + ((seed * 104_729) % 21) as u8;
    VehicleSpec::standard()
        .with_battery(Energy::from_wh(battery as i64 * 1_000))
        .with_soc(start, 80)
}

/// Drives connector `connector` of `pile` (driver `n`) until `stop`: idle a while, plug in,
/// start by app (even n) or card (odd n), wait for the end, unplug.
#[allow(clippy::too_many_arguments)]
pub async fn drive_connector(
    fleet: Arc<SimFleet>,
    api: Arc<Api>,
    pile: PileCode,
    connector: u8,
    n: u32,
    mut events: mpsc::Receiver<SimEvent>,
    idle: Duration,
    stop: CancellationToken,
) {
    let Ok(charger) = fleet.charger(&pile) else {
        return;
    };
    let mut round = 0u64;
    loop {
        // Stagger the connectors so the site fills up gradually.
        let wait = idle.mul_f64(0.2 + ((u64::from(n) * 31 + round * 17) % 100) as f64 / 100.0);
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(wait) => {}
        }
        round += 1;
        let by_app = n.is_multiple_of(2);
        let start = if by_app {
            StartBy::Remote
        } else {
            StartBy::Card(card(n))
        };
        if charger
            .plug_in_with(connector, vehicle(u64::from(n) * 1_000 + round), start)
            .await
            .is_err()
        {
            return;
        }
        if by_app {
            let body = json!({
                "charger": pile.to_string(),
                "connector": connector,
                "account": driver(n).as_str(),
                "amount": "120.00",
            });
            if let Err(e) = api
                .send(Method::POST, "/v1/sessions", Some(body), &[202])
                .await
            {
                tracing::warn!(%pile, error = %e, "the app could not start a session");
            }
        }
        let ended = tokio::select! {
            () = stop.cancelled() => return,
            r = tokio::time::timeout(Duration::from_secs(3_600), async {
                while let Some(e) = events.recv().await {
                    match e {
                        SimEvent::SessionEnded { connector: c, .. } if c.get() == connector => return true,
                        SimEvent::StartRefused { connector: c, .. } if c.get() == connector => return false,
                        _ => {}
                    }
                }
                false
            }) => r.unwrap_or(false),
        };
        let _ = ended;
        let _ = charger.unplug(connector).await;
    }
}
