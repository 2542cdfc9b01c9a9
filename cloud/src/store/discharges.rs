//! V2G rows of the store: which chargers can discharge, the connector a discharge order
//! needs, discharge orders with their terms, and grid events for a site's edge.
//!
//! A discharge order, its terms (`discharge_orders`) and its `StartDischarge` command are
//! written in one transaction, like a charging order and its start (no hold: a discharge
//! order reserves no money — the platform pays the driver). The transaction re-checks what
//! the API checked that can change under it: the charger is V2G-capable and at the order's
//! site, and no other discharge order of the connector is still running (pending or discharging;
//! a unique partial index closes the race between two concurrent starts). A grid event and its
//! command are written together too, so the 202 can name the command to poll.
//!
//! It must never move money (reverse settlement does, in `crate::money::reverse`).

use jiff::Timestamp;
use voltline_protocol::domain::{ConnectorNo, OrderId, PileCode, Power, SiteId, Soc};
use voltline_protocol::sync::ConnectorState;

use super::orders::check_new_order;
use super::types::DbTime;
use super::{to_u64, StoreResult};
use super::{with_pool, CommandRecord, NewCommand, NewOrder, Order, Store, StoreError};
use crate::domain::discharge::DischargeTerms;
use crate::domain::OrderKind;

/// A grid event to store with its command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGridEvent {
    pub event_id: String,
    pub site: SiteId,
    pub power: Power,
    pub from: Timestamp,
    pub to: Timestamp,
}

fn connector_state(text: &str) -> StoreResult<ConnectorState> {
    Ok(match text {
        "available" => ConnectorState::Available,
        "plugged" => ConnectorState::Plugged,
        "charging" => ConnectorState::Charging,
        "discharging" => ConnectorState::Discharging,
        "faulted" => ConnectorState::Faulted,
        "offline" => ConnectorState::Offline,
        other => return Err(StoreError::corrupt(format!("connector state '{other}'"))),
    })
}

impl Store {
    /// Marks a charger V2G-capable (or not).
    pub async fn set_charger_v2g(&self, pile: &PileCode, v2g: bool) -> StoreResult<()> {
        let now = DbTime::from(Timestamp::now());
        let done = with_pool!(self, |pool, d| {
            let _turn = self.write_turn().await;
            sqlx::query("UPDATE chargers SET v2g = $1, updated_at = $2 WHERE pile_code = $3")
                .bind(v2g)
                .bind(now)
                .bind(pile.to_string())
                .execute(pool)
                .await?
                .rows_affected()
        });
        if done == 0 {
            return Err(StoreError::not_found("charger", pile));
        }
        Ok(())
    }

    /// Whether a charger is V2G-capable.
    pub async fn charger_v2g(&self, pile: &PileCode) -> StoreResult<bool> {
        let v: Option<bool> = with_pool!(self, |pool, d| {
            sqlx::query_scalar("SELECT v2g FROM chargers WHERE pile_code = $1")
                .bind(pile.to_string())
                .fetch_optional(pool)
                .await?
        });
        v.ok_or_else(|| StoreError::not_found("charger", pile))
    }

    /// The connector's last reported state, if its site ever reported one.
    pub async fn connector_state(
        &self,
        pile: &PileCode,
        connector: ConnectorNo,
    ) -> StoreResult<Option<ConnectorState>> {
        let text: Option<String> = with_pool!(self, |pool, d| {
            sqlx::query_scalar(
                "SELECT state FROM connector_states WHERE pile_code = $1 AND connector = $2",
            )
            .bind(pile.to_string())
            .bind(i64::from(connector.get()))
            .fetch_optional(pool)
            .await?
        });
        text.as_deref().map(connector_state).transpose()
    }

    /// The running (pending or discharging) discharge order of a connector, if any.
    pub async fn active_discharge(
        &self,
        pile: &PileCode,
        connector: ConnectorNo,
    ) -> StoreResult<Option<OrderId>> {
        let id: Option<String> = with_pool!(self, |pool, d| {
            sqlx::query_scalar(
                "SELECT id FROM orders WHERE pile_code = $1 AND connector = $2 AND kind = 'discharge' \
                 AND state IN ('pending', 'discharging') ORDER BY created_at LIMIT 1",
            )
            .bind(pile.to_string())
            .bind(i64::from(connector.get()))
            .fetch_optional(pool)
            .await?
        });
        id.map(|i| super::parse_stored(&i, "order id")).transpose()
    }

    /// Creates a discharge order (`pending`), its terms and its start command in one
    /// transaction (see the module doc).
    pub async fn create_discharge_order(
        &self,
        new: &NewOrder,
        terms: &DischargeTerms,
        start: &NewCommand,
    ) -> StoreResult<(Order, CommandRecord)> {
        check_new_order(new, start)?;
        if new.kind != OrderKind::Discharge || new.hold_id.is_some() {
            return Err(StoreError::invalid(
                "discharge order",
                "a discharge order is of kind discharge and holds no funds",
            ));
        }
        let now = DbTime::from(Timestamp::now());
        let pile = new.pile.to_string();
        with_pool!(self, |pool, d, ops| {
            let _turn = self.write_turn().await;
            let mut txn = pool.begin_with(d.begin_write()).await?;
            let charger: Option<(String, i64, bool)> = sqlx::query_as(
                "SELECT site_id, connector_count, v2g FROM chargers WHERE pile_code = $1",
            )
            .bind(&pile)
            .fetch_optional(&mut *txn)
            .await?;
            let Some((site, count, v2g)) = charger else {
                return Err(StoreError::not_found("charger", &pile));
            };
            if site != new.site.as_str() || i64::from(new.connector.get()) > count || !v2g {
                return Err(StoreError::invalid(
                    "discharge order",
                    format!("charger {pile} is not a V2G charger of site {} with connector {}: check the charger", new.site, new.connector),
                ));
            }
            let active: Option<String> = sqlx::query_scalar(
                "SELECT id FROM orders WHERE pile_code = $1 AND connector = $2 AND kind = 'discharge' \
                 AND state IN ('pending', 'discharging') LIMIT 1",
            )
            .bind(&pile)
            .bind(i64::from(new.connector.get()))
            .fetch_optional(&mut *txn)
            .await?;
            if let Some(other) = active {
                return Err(StoreError::Duplicate {
                    what: "active discharge order of the connector",
                    id: other,
                });
            }
            let order = ops::insert_order(&mut txn, new, now).await?;
            sqlx::query(
                "INSERT INTO discharge_orders (order_id, soc_floor_pct, departure, max_power_w, created_at) \
                 VALUES ($1, $2, $3, $4, $5)",
            )
            .bind(new.id.as_str())
            .bind(i64::from(terms.soc_floor.percent()))
            .bind(DbTime::from(terms.departure))
            .bind(terms.max_power.watts())
            .bind(now)
            .execute(&mut *txn)
            .await?;
            let command = ops::insert_command(&mut txn, start, now).await?;
            txn.commit().await?;
            Ok((order, command))
        })
    }

    /// A discharge order's terms (`None` for an order that is not a discharge order).
    pub async fn discharge_terms(&self, order: &OrderId) -> StoreResult<Option<DischargeTerms>> {
        let row: Option<(i64, DbTime, i64)> = with_pool!(self, |pool, d| {
            sqlx::query_as(
                "SELECT soc_floor_pct, departure, max_power_w FROM discharge_orders WHERE order_id = $1",
            )
            .bind(order.as_str())
            .fetch_optional(pool)
            .await?
        });
        row.map(|(floor, departure, power)| {
            let soc_floor = u8::try_from(floor)
                .ok()
                .and_then(Soc::new)
                .ok_or_else(|| StoreError::corrupt(format!("SoC floor {floor}")))?;
            Ok(DischargeTerms {
                soc_floor,
                departure: departure.0,
                max_power: Power::from_watts(power),
            })
        })
        .transpose()
    }

    /// Stores a grid event and its command in one transaction.
    pub async fn create_grid_event(
        &self,
        event: &NewGridEvent,
        command: &NewCommand,
    ) -> StoreResult<CommandRecord> {
        if event.power.watts() <= 0 || event.to <= event.from || command.site != event.site {
            return Err(StoreError::invalid(
                "grid event",
                "a grid event discharges a positive power over a non-empty span at its own site",
            ));
        }
        let now = DbTime::from(Timestamp::now());
        with_pool!(self, |pool, d, ops| {
            let _turn = self.write_turn().await;
            let mut txn = pool.begin_with(d.begin_write()).await?;
            let record = ops::insert_command(&mut txn, command, now).await?;
            sqlx::query(
                "INSERT INTO grid_events (event_id, site_id, command_id, power_w, from_at, to_at, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
            )
            .bind(&event.event_id)
            .bind(event.site.as_str())
            .bind(command.id.as_str())
            .bind(event.power.watts())
            .bind(DbTime::from(event.from))
            .bind(DbTime::from(event.to))
            .bind(now)
            .execute(&mut *txn)
            .await
            .map_err(|e| StoreError::on_insert(e, "grid event", &event.event_id))?;
            txn.commit().await?;
            Ok(record)
        })
    }

    /// How many grid events a site was sent.
    pub async fn count_grid_events(&self, site: &SiteId) -> StoreResult<u64> {
        let n: i64 = with_pool!(self, |pool, d| {
            sqlx::query_scalar("SELECT COUNT(*) FROM grid_events WHERE site_id = $1")
                .bind(site.as_str())
                .fetch_one(pool)
                .await?
        });
        to_u64(n, "count")
    }
}
