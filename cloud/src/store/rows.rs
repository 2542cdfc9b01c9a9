//! Row shapes read by more than one file, and their conversion into records. Queries read
//! into plain tuples (which decode on both backends), and these functions turn a tuple into a
//! checked record, reporting anything unreadable as [`StoreError::Corrupt`].

use sqlx::types::Json;
use voltline_protocol::domain::{ConnectorNo, Energy};
use voltline_protocol::sync::{Command, SessionLimit};

use super::types::{DbMoney, DbTime};
use super::{parse_stored, CommandRecord, Order, StoreError, StoreResult};

/// The columns of [`ORDER_COLUMNS`], in order.
pub(crate) type OrderRow = (
    String,
    String,
    String,
    String,
    i64,
    String,
    String,
    Option<DbMoney>,
    Option<i64>,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
    DbTime,
    DbTime,
    i64,
);

pub(crate) const ORDER_BY_ID: &str = "SELECT id, account_id, site_id, pile_code, connector, kind, payment_method, \
     limit_amount, limit_energy_mwh, state, hold_id, transaction_serial, idempotency_key, created_at, updated_at, version \
     FROM orders WHERE id = $1";

pub(crate) fn order_from_row(r: OrderRow) -> StoreResult<Order> {
    let connector = u8::try_from(r.4)
        .ok()
        .and_then(ConnectorNo::new)
        .ok_or_else(|| StoreError::corrupt(format!("order {}: connector {}", r.0, r.4)))?;
    Ok(Order {
        id: parse_stored(&r.0, "order id")?,
        account: parse_stored(&r.1, "account id")?,
        site: parse_stored(&r.2, "site id")?,
        pile: parse_stored(&r.3, "pile code")?,
        connector,
        kind: parse_stored(&r.5, "order kind")?,
        payment_method: parse_stored(&r.6, "payment method")?,
        limit: SessionLimit {
            amount: r.7.map(|m| m.0),
            energy: r.8.map(Energy::from_mwh),
        },
        state: parse_stored(&r.9, "order state")?,
        hold_id: r.10,
        transaction_serial: r
            .11
            .map(|s| parse_stored(&s, "transaction serial"))
            .transpose()?,
        idempotency_key: r.12,
        created_at: r.13 .0,
        updated_at: r.14 .0,
        version: r.15,
    })
}

/// The columns of [`COMMAND_COLUMNS`], in order.
pub(crate) type CommandRow = (
    String,
    String,
    Option<String>,
    String,
    Json<Command>,
    String,
    Option<String>,
    DbTime,
    DbTime,
    DbTime,
    i64,
);

pub(crate) const COMMAND_BY_ID: &str =
    "SELECT id, site_id, order_id, kind, payload, state, reason, expires_at, \
     created_at, updated_at, attempts FROM commands WHERE id = $1";

pub(crate) fn command_from_row(r: CommandRow) -> StoreResult<CommandRecord> {
    Ok(CommandRecord {
        id: parse_stored(&r.0, "command id")?,
        site: parse_stored(&r.1, "site id")?,
        order: r.2.map(|o| parse_stored(&o, "order id")).transpose()?,
        kind: parse_stored(&r.3, "command kind")?,
        command: r.4 .0,
        state: parse_stored(&r.5, "command state")?,
        reason: r.6,
        expires_at: r.7 .0,
        created_at: r.8 .0,
        updated_at: r.9 .0,
        attempts: u32::try_from(r.10)
            .map_err(|_| StoreError::corrupt(format!("command {}: attempts {}", r.0, r.10)))?,
    })
}
