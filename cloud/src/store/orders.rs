//! Orders (charging and discharging sessions).
//!
//! An order and its start command are created in one transaction: the API can answer 202
//! with both ids at once, and a crash never leaves an order without its command. Every later
//! change goes through the state machine in [`crate::domain::order`] and is conditional on
//! the order's `version` (optimistic concurrency: a lost race is a
//! [`StoreError::VersionConflict`], never a silent overwrite).

use jiff::Timestamp;
use voltline_protocol::domain::OrderId;

use super::types::DbTime;
use super::Store;
use super::{with_pool, CommandRecord, NewCommand, NewOrder, Order, StoreError, StoreResult};
use crate::domain::OrderEvent;

/// Longest idempotency key or hold id.
const MAX_KEY_CHARS: usize = 128;

pub(crate) fn check_new_order(new: &NewOrder, start: &NewCommand) -> StoreResult<()> {
    if new.connector.get() == 0 {
        return Err(StoreError::invalid("order", "connector numbers start at 1"));
    }
    for (what, v) in [
        ("idempotency key", &new.idempotency_key),
        ("hold id", &new.hold_id),
    ] {
        if v.as_ref()
            .is_some_and(|k| k.is_empty() || k.chars().count() > MAX_KEY_CHARS)
        {
            return Err(StoreError::invalid(
                what,
                format!("use 1-{MAX_KEY_CHARS} characters"),
            ));
        }
    }
    if new
        .limit
        .amount
        .is_some_and(|a| a.is_negative() || a.is_zero())
    {
        return Err(StoreError::invalid(
            "order limit",
            "an amount limit must be above zero",
        ));
    }
    if new.limit.energy.is_some_and(|e| e.mwh() <= 0) {
        return Err(StoreError::invalid(
            "order limit",
            "an energy limit must be above zero",
        ));
    }
    if start.site != new.site || start.order.as_ref() != Some(&new.id) {
        return Err(StoreError::invalid(
            "start command",
            "it must be for the order's site and name the order",
        ));
    }
    Ok(())
}

impl Store {
    /// Creates an order in state `pending` together with its start command (`queued`), in one
    /// transaction. The charger must be at the order's site and have the connector.
    pub async fn create_order(
        &self,
        new: &NewOrder,
        start: &NewCommand,
    ) -> StoreResult<(Order, CommandRecord)> {
        check_new_order(new, start)?;
        let now = DbTime::from(Timestamp::now());
        let pile = new.pile.to_string();
        with_pool!(self, |pool, d, ops| {
            let _turn = self.write_turn().await;
            let mut txn = pool.begin_with(d.begin_write()).await?;
            let charger: Option<(String, i64)> = sqlx::query_as(
                "SELECT site_id, connector_count FROM chargers WHERE pile_code = $1",
            )
            .bind(&pile)
            .fetch_optional(&mut *txn)
            .await?;
            match charger {
                None => return Err(StoreError::not_found("charger", &pile)),
                Some((site, _)) if site != new.site.as_str() => {
                    return Err(StoreError::invalid(
                        "order",
                        format!("charger {pile} is at site {site}, not {}: start the session at the charger's site", new.site),
                    ))
                }
                Some((_, count)) if i64::from(new.connector.get()) > count => {
                    return Err(StoreError::invalid(
                        "order",
                        format!("charger {pile} has {count} connectors; choose connector 1-{count}"),
                    ))
                }
                Some(_) => {}
            }
            let order = ops::insert_order(&mut txn, new, now).await?;
            let command = ops::insert_command(&mut txn, start, now).await?;
            txn.commit().await?;
            Ok((order, command))
        })
    }

    /// An order by id.
    pub async fn get_order(&self, id: &OrderId) -> StoreResult<Order> {
        let order = with_pool!(self, |pool, d, ops| {
            let mut conn = pool.acquire().await?;
            ops::fetch_order(&mut conn, id.as_str()).await?
        });
        order.ok_or_else(|| StoreError::not_found("order", id))
    }

    /// Applies `event` to the order if it is still at `expected_version` and the state machine
    /// allows it.
    pub async fn transition_order(
        &self,
        id: &OrderId,
        expected_version: i64,
        event: OrderEvent,
    ) -> StoreResult<Order> {
        let now = DbTime::from(Timestamp::now());
        with_pool!(self, |pool, d, ops| {
            let _turn = self.write_turn().await;
            let mut txn = pool.begin_with(d.begin_write()).await?;
            let order = ops::fetch_order(&mut txn, id.as_str())
                .await?
                .ok_or_else(|| StoreError::not_found("order", id))?;
            if order.version != expected_version {
                return Err(StoreError::VersionConflict {
                    what: "order",
                    id: id.to_string(),
                    expected: expected_version,
                    found: order.version,
                });
            }
            let next = order.state.apply(order.kind, event)?;
            let order = ops::write_order_state(&mut txn, order, next, now).await?;
            txn.commit().await?;
            Ok(order)
        })
    }

    /// Records the ledger's hold for the order, if it is still at `expected_version`.
    pub async fn set_order_hold(
        &self,
        id: &OrderId,
        expected_version: i64,
        hold_id: &str,
    ) -> StoreResult<Order> {
        if hold_id.is_empty() || hold_id.chars().count() > MAX_KEY_CHARS {
            return Err(StoreError::invalid(
                "hold id",
                format!("use 1-{MAX_KEY_CHARS} characters"),
            ));
        }
        let now = DbTime::from(Timestamp::now());
        let done = with_pool!(self, |pool, d| {
            sqlx::query(
                "UPDATE orders SET hold_id = $1, version = version + 1, updated_at = $2 WHERE id = $3 AND version = $4",
            )
            .bind(hold_id)
            .bind(now)
            .bind(id.as_str())
            .bind(expected_version)
            .execute(pool)
            .await?
            .rows_affected()
        });
        let order = self.get_order(id).await?;
        if done == 0 {
            return Err(StoreError::VersionConflict {
                what: "order",
                id: id.to_string(),
                expected: expected_version,
                found: order.version,
            });
        }
        Ok(order)
    }
}
