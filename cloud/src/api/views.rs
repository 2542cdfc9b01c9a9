//! The JSON shapes the API answers with. Kept apart from the store's records so the wire
//! format changes only on purpose (secrets, hashes and versions stay inside).

use jiff::Timestamp;
use serde::Serialize;
use voltline_protocol::domain::{
    AccountId, CommandId, ConnectorNo, OperatorId, OrderId, PileCode, SiteId,
};
use voltline_protocol::sync::{Command, SessionLimit};

use crate::domain::{CommandState, OrderKind, OrderState, PaymentMethod};
use crate::store::{Account, Charger, CommandRecord, Operator, Order, Site};

#[derive(Debug, Clone, Serialize)]
pub struct OrderView {
    pub id: OrderId,
    pub account: AccountId,
    pub site: SiteId,
    pub pile: PileCode,
    pub connector: ConnectorNo,
    pub kind: OrderKind,
    pub payment_method: PaymentMethod,
    pub limit: SessionLimit,
    pub state: OrderState,
    pub hold_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

impl From<&Order> for OrderView {
    fn from(o: &Order) -> OrderView {
        OrderView {
            id: o.id.clone(),
            account: o.account.clone(),
            site: o.site.clone(),
            pile: o.pile,
            connector: o.connector,
            kind: o.kind,
            payment_method: o.payment_method.clone(),
            limit: o.limit,
            state: o.state,
            hold_id: o.hold_id.clone(),
            created_at: o.created_at,
            updated_at: o.updated_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct CommandView {
    pub id: CommandId,
    pub site: SiteId,
    pub order: Option<OrderId>,
    pub state: CommandState,
    pub reason: Option<String>,
    pub command: Command,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    pub attempts: u32,
}

impl From<&CommandRecord> for CommandView {
    fn from(c: &CommandRecord) -> CommandView {
        CommandView {
            id: c.id.clone(),
            site: c.site.clone(),
            order: c.order.clone(),
            state: c.state,
            reason: c.reason.clone(),
            command: c.command.clone(),
            expires_at: c.expires_at,
            created_at: c.created_at,
            updated_at: c.updated_at,
            attempts: c.attempts,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct OperatorView {
    pub id: OperatorId,
    pub name: String,
    pub created_at: Timestamp,
}

impl From<&Operator> for OperatorView {
    fn from(o: &Operator) -> Self {
        OperatorView {
            id: o.id.clone(),
            name: o.name.clone(),
            created_at: o.created_at,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteView {
    pub id: SiteId,
    pub operator: OperatorId,
    pub name: String,
    pub time_zone: String,
    pub config_version: u64,
    /// The edge's MQTT/HTTP credential; present only in the answer that created the site.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub edge_credential: Option<String>,
}

impl SiteView {
    pub fn new(s: &Site, credential: Option<String>) -> Self {
        SiteView {
            id: s.id.clone(),
            operator: s.operator.clone(),
            name: s.name.clone(),
            time_zone: s.time_zone.clone(),
            config_version: s.config_version,
            edge_credential: credential,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct ChargerView {
    pub pile: PileCode,
    pub site: SiteId,
    pub connectors: u8,
    /// The charger's credential; present only in the answer that registered it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

impl ChargerView {
    pub fn new(c: &Charger, credential: Option<String>) -> Self {
        ChargerView {
            pile: c.pile,
            site: c.site.clone(),
            connectors: c.connectors,
            credential,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct AccountView {
    pub id: AccountId,
    pub operator: Option<OperatorId>,
    pub name: String,
    pub created_at: Timestamp,
}

impl From<&Account> for AccountView {
    fn from(a: &Account) -> Self {
        AccountView {
            id: a.id.clone(),
            operator: a.operator.clone(),
            name: a.name.clone(),
            created_at: a.created_at,
        }
    }
}
