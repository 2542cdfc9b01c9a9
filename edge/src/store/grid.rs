//! The site's V2G dispatch state, cached like the site config so that a grid event survives
//! an edge restart and runs to its end while the cloud is unreachable: the current grid event
//! (key `event`) and each connector's discharge order (`optin` + pile + connector →
//! [`OptIn`]), in the `grid` tree.
//!
//! What this module must never do: keep an order without its connector, or read back a
//! value it cannot decode as anything but a typed error.

use voltline_protocol::domain::{ConnectorNo, PileCode};

use super::codec::connector_key;
use super::error::{corrupt, encode, StoreError};
use super::Store;
use crate::connector::ConnectorId;
use crate::dispatch::{GridEvent, OptIn, MAX_OPT_INS};

const EVENT_KEY: &[u8] = b"event";
const OPT_IN_PREFIX: &[u8] = b"optin";

fn opt_in_key(id: &ConnectorId) -> Vec<u8> {
    let mut k = OPT_IN_PREFIX.to_vec();
    k.extend_from_slice(&connector_key(&id.pile, id.connector));
    k
}

fn connector_of(key: &[u8]) -> Result<ConnectorId, StoreError> {
    let bad = |why: &str| corrupt("discharge order key", key, why);
    let rest = key
        .strip_prefix(OPT_IN_PREFIX)
        .filter(|r| r.len() == 8)
        .ok_or_else(|| bad("not the order prefix and 8 bytes"))?;
    let mut pile = [0u8; 7];
    pile.copy_from_slice(&rest[..7]);
    let pile = voltline_protocol::wire::bcd::Bcd::from_bytes(pile)
        .map(PileCode::from_bcd)
        .map_err(|_| bad("pile code is not BCD"))?;
    let connector = ConnectorNo::new(rest[7]).ok_or_else(|| bad("connector out of range"))?;
    Ok(ConnectorId { pile, connector })
}

impl Store {
    /// Caches the grid event (`None` forgets it) and flushes: the event must survive a crash
    /// once its command is answered.
    pub async fn put_grid_event(&self, event: Option<&GridEvent>) -> Result<(), StoreError> {
        match event {
            Some(e) => {
                let v = serde_json::to_vec(e).map_err(|e| encode("grid event", e))?;
                self.inner.grid.insert(EVENT_KEY, v)?;
            }
            None => {
                self.inner.grid.remove(EVENT_KEY)?;
            }
        }
        self.flush().await
    }

    /// The cached grid event.
    pub fn grid_event(&self) -> Result<Option<GridEvent>, StoreError> {
        let Some(v) = self.inner.grid.get(EVENT_KEY)? else {
            return Ok(None);
        };
        serde_json::from_slice(&v)
            .map(Some)
            .map_err(|e| corrupt("grid event", EVENT_KEY, e))
    }

    /// Saves (or with `None` forgets) the discharge order of a connector; written with the
    /// next flush.
    pub fn put_opt_in(&self, id: ConnectorId, opt_in: Option<&OptIn>) -> Result<(), StoreError> {
        let key = opt_in_key(&id);
        match opt_in {
            Some(o) => {
                let v = serde_json::to_vec(o).map_err(|e| encode("discharge order", e))?;
                self.inner.grid.insert(key, v)?;
            }
            None => {
                self.inner.grid.remove(key)?;
            }
        }
        Ok(())
    }

    /// Every cached discharge order (at most [`MAX_OPT_INS`]).
    pub fn opt_ins(&self) -> Result<Vec<(ConnectorId, OptIn)>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.grid.scan_prefix(OPT_IN_PREFIX).take(MAX_OPT_INS) {
            let (k, v) = item?;
            let id = connector_of(&k)?;
            let o = serde_json::from_slice(&v).map_err(|e| corrupt("discharge order", &k, e))?;
            out.push((id, o));
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use jiff::Timestamp;
    use voltline_protocol::domain::{OrderId, Power, Soc};

    use super::*;
    use crate::connector::tests_support::{id, serial};
    use crate::store::tests_outbox::{open, test_config};

    #[tokio::test]
    async fn grid_event_and_orders_survive_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let event = GridEvent {
            id: "evt-1".into(),
            power: Power::from_kw(50),
            from: Timestamp::from_second(1_790_000_000).unwrap(),
            to: Timestamp::from_second(1_790_003_600).unwrap(),
        };
        let order = OptIn {
            order: OrderId::new("dis-1").unwrap(),
            serial: serial(1),
            soc_floor: Soc::new(30).unwrap(),
            max_power: Power::from_kw(11),
            until: Timestamp::from_second(1_790_007_200).unwrap(),
            in_event: true,
            battery: Default::default(),
        };
        {
            let store = open(dir.path(), test_config());
            store.put_grid_event(Some(&event)).await.unwrap();
            store.put_opt_in(id(), Some(&order)).unwrap();
            store.flush().await.unwrap();
        }
        let store = open(dir.path(), test_config());
        assert_eq!(store.grid_event().unwrap(), Some(event));
        assert_eq!(store.opt_ins().unwrap(), vec![(id(), order)]);
        store.put_opt_in(id(), None).unwrap();
        store.put_grid_event(None).await.unwrap();
        assert!(store.opt_ins().unwrap().is_empty());
        assert_eq!(store.grid_event().unwrap(), None);
    }
}
