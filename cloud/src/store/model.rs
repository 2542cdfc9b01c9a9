//! The records the store takes and returns. Plain data: no I/O, no SQL.

use std::fmt;

use jiff::Timestamp;
use voltline_protocol::domain::{
    AccountId, CommandId, ConnectorNo, OperatorId, OrderId, PileCode, SiteId, TransactionSerial,
};
use voltline_protocol::message::common::PhysicalCardNo;
use voltline_protocol::sync::{Ack, Command, CommandEnvelope, SessionLimit, V1};
use voltline_protocol::tariff::{Tariff, TariffVersion};
use voltline_protocol::Money;

use crate::domain::{Actor, CommandKind, CommandState, OrderKind, OrderState, PaymentMethod};

/// A fresh, time-ordered order id (`ord-` + UUID v7).
pub fn new_order_id() -> OrderId {
    OrderId::new(format!("ord-{}", uuid::Uuid::now_v7()))
        .unwrap_or_else(|e| unreachable!("a UUID is always a valid id: {e}"))
}

/// A fresh, time-ordered command id (`cmd-` + UUID v7).
pub fn new_command_id() -> CommandId {
    CommandId::new(format!("cmd-{}", uuid::Uuid::now_v7()))
        .unwrap_or_else(|e| unreachable!("a UUID is always a valid id: {e}"))
}

/// An operator (tenant).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operator {
    pub id: OperatorId,
    pub name: String,
    pub created_at: Timestamp,
}

/// A site to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSite {
    pub id: SiteId,
    pub operator: OperatorId,
    pub name: String,
    /// IANA time-zone name, checked against the bundled database (e.g. `Asia/Shanghai`).
    pub time_zone: String,
}

/// A registered site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    pub id: SiteId,
    pub operator: OperatorId,
    pub name: String,
    pub time_zone: String,
    /// Bumped whenever what the edge caches (tariff, authorisation list, limits) changes.
    pub config_version: u64,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A charger to register.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCharger {
    pub pile: PileCode,
    pub site: SiteId,
    /// Number of connectors, 1..=99.
    pub connectors: u8,
}

/// A registered charger.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Charger {
    pub pile: PileCode,
    pub site: SiteId,
    pub connectors: u8,
    pub created_at: Timestamp,
}

/// A card to register for an account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCard {
    /// The YKC physical card number (what the pile's reader reports); never all zeros.
    pub card: PhysicalCardNo,
    pub account: AccountId,
    /// The most one session started by this card without the cloud may cost (at least 0).
    pub offline_limit: Money,
}

/// A registered card. A card belongs to one account; the edges of every site of the
/// account's operator may start sessions with it, also offline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Card {
    pub card: PhysicalCardNo,
    pub account: AccountId,
    pub offline_limit: Money,
    pub created_at: Timestamp,
}

/// A site whose configuration version a change moved (its edge is told to refetch).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigBump {
    pub site: SiteId,
    pub config_version: u64,
}

/// A driver account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    pub id: AccountId,
    /// The operator that scopes the account, or `None` for a platform-wide account.
    pub operator: Option<OperatorId>,
    pub name: String,
    pub created_at: Timestamp,
}

/// One immutable version of an operator's tariff.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffRecord {
    pub tariff_id: String,
    pub operator: OperatorId,
    /// The tariff; its own [`Tariff::version`] is the stored version.
    pub tariff: Tariff,
    pub effective_from: Timestamp,
    pub created_at: Timestamp,
}

impl TariffRecord {
    /// The version.
    pub fn version(&self) -> TariffVersion {
        self.tariff.version()
    }
}

/// A tariff version assigned to a site from an instant on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TariffAssignment {
    pub site: SiteId,
    /// Charge tariff or discharge (feed-in) tariff.
    pub kind: OrderKind,
    pub tariff_id: String,
    pub version: TariffVersion,
    pub effective_from: Timestamp,
}

/// A secret shown once (a bearer token, an edge or charger credential). Its `Debug` and
/// `Display` never print it; call [`Secret::expose`] to hand it out.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub(crate) String);

impl Secret {
    /// The secret text, to give to its owner once.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// A token to issue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewToken {
    pub actor: Actor,
    /// What the token is for, for people ("ops laptop", "site-7 edge").
    pub label: String,
    pub expires_at: Option<Timestamp>,
}

/// A token as issued: the bearer text is in `secret`, shown this once.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub id: String,
    pub secret: Secret,
}

/// What the store knows about a token (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenInfo {
    pub id: String,
    pub actor: Actor,
    pub label: String,
    pub created_at: Timestamp,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
}

/// An order to create.
#[derive(Debug, Clone, PartialEq)]
pub struct NewOrder {
    pub id: OrderId,
    pub account: AccountId,
    pub site: SiteId,
    pub pile: PileCode,
    pub connector: ConnectorNo,
    pub kind: OrderKind,
    pub payment_method: PaymentMethod,
    pub limit: SessionLimit,
    /// The ledger's hold (pending transfer), once the money side places it.
    pub hold_id: Option<String>,
    /// The serial the start command gives the pile.
    pub transaction_serial: Option<TransactionSerial>,
    /// The client's idempotency key: one order per (account, key).
    pub idempotency_key: Option<String>,
}

/// A stored order.
#[derive(Debug, Clone, PartialEq)]
pub struct Order {
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
    pub transaction_serial: Option<TransactionSerial>,
    pub idempotency_key: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// Bumped by every change; updates are conditional on it.
    pub version: i64,
}

/// A command to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewCommand {
    pub id: CommandId,
    pub site: SiteId,
    pub order: Option<OrderId>,
    pub command: Command,
    pub expires_at: Timestamp,
}

/// A stored command.
#[derive(Debug, Clone, PartialEq)]
pub struct CommandRecord {
    pub id: CommandId,
    pub site: SiteId,
    pub order: Option<OrderId>,
    pub kind: CommandKind,
    pub command: Command,
    pub state: CommandState,
    /// The edge's or pile's reason for a rejection or failure.
    pub reason: Option<String>,
    pub expires_at: Timestamp,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
    /// How many times it was published to the edge.
    pub attempts: u32,
}

impl CommandRecord {
    /// The envelope to publish to the site's command topic.
    pub fn envelope(&self) -> CommandEnvelope {
        CommandEnvelope {
            v: V1,
            id: self.id.clone(),
            site: self.site.clone(),
            issued_at: self.created_at,
            expires_at: self.expires_at,
            command: self.command.clone(),
        }
    }
}

/// What one ingested batch did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IngestOutcome {
    /// The acknowledgement to send back: everything up to it is committed.
    pub ack: Ack,
    /// Records stored for the first time.
    pub fresh: usize,
    /// Records seen before (at or below the ack, or committed out of order earlier).
    pub duplicates: usize,
    /// Transaction or discharge records whose (pile, serial) was already stored under
    /// another sequence (the edge re-sent a record it had not seen acknowledged).
    pub duplicate_transactions: usize,
    /// Command results that changed a command's state.
    pub command_results_applied: usize,
}
