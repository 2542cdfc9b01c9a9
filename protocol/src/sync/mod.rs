//! The edge ↔ cloud contract: JSON messages on the topics of [`crate::topics`] (and the same
//! record batches over HTTP for backlog replay).
//!
//! - Up: [`RecordBatch`]es. Every [`Record`] carries the site's own sequence number, strictly
//!   increasing from 1 and never reused. Delivery is at-least-once; the cloud deduplicates by
//!   (site, sequence) and answers with an [`Ack`] naming the highest *contiguous* sequence it
//!   has committed. The edge trims its outbox only up to that number.
//! - Down: [`CommandEnvelope`]s with an id and an expiry; their outcomes go up as
//!   [`RecordBody::CommandResult`] records.
//! - [`SiteStatus`] is retained and doubles as the edge's MQTT last will.
//!
//! Every payload carries `"v": 1`; a payload of another version is refused with an error that
//! names both versions, so a mixed fleet fails loudly instead of misreading fields.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use crate::domain::{
    AccountId, CommandId, ConnectorNo, Energy, Money, OrderId, PileCode, Power, SiteId, Soc,
    TransactionSerial,
};
use crate::message::transaction::TransactionRecord;
use crate::message::v2g::DischargeRecord;

/// The contract version this crate speaks.
pub const VERSION: u16 = 1;

/// Most records in one MQTT batch (keeps a message well under broker limits).
pub const MAX_MQTT_BATCH_RECORDS: usize = 1_000;

/// Most records in one HTTP replay batch.
pub const MAX_HTTP_BATCH_RECORDS: usize = 50_000;

/// The `"v"` field: serialises as 1 and refuses anything else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct V1;

impl Serialize for V1 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u16(VERSION)
    }
}

impl<'de> Deserialize<'de> for V1 {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = u16::deserialize(d)?;
        if v == VERSION {
            Ok(V1)
        } else {
            Err(serde::de::Error::custom(format!(
                "contract version {v} is not supported: this side speaks version {VERSION}; upgrade the older side"
            )))
        }
    }
}

/// A batch that breaks the contract.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SyncError {
    /// No records.
    #[error("a record batch must hold at least one record")]
    Empty,
    /// Too many records.
    #[error("a record batch holds {len} records; the limit is {max}: split it")]
    TooLarge { len: usize, max: usize },
    /// Sequence numbers are not strictly increasing from 1.
    #[error("record sequence {seq} at position {index} does not follow {previous}: sequences start at 1 and strictly increase")]
    BadSequence {
        index: usize,
        seq: u64,
        previous: u64,
    },
    /// The batch names another site than the one it arrived for.
    #[error("batch is for site {found} but arrived for site {expected}")]
    WrongSite { expected: SiteId, found: SiteId },
}

/// Records from an edge, in sequence order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordBatch {
    pub v: V1,
    pub site: SiteId,
    pub records: Vec<Record>,
}

impl RecordBatch {
    /// A batch of `records` for `site`.
    pub fn new(site: SiteId, records: Vec<Record>) -> Self {
        RecordBatch {
            v: V1,
            site,
            records,
        }
    }

    /// Checks the contract: for `site`, non-empty, at most `max` records, sequences strictly
    /// increasing from 1.
    pub fn validate(&self, site: &SiteId, max: usize) -> Result<(), SyncError> {
        if &self.site != site {
            return Err(SyncError::WrongSite {
                expected: site.clone(),
                found: self.site.clone(),
            });
        }
        if self.records.is_empty() {
            return Err(SyncError::Empty);
        }
        if self.records.len() > max {
            return Err(SyncError::TooLarge {
                len: self.records.len(),
                max,
            });
        }
        let mut previous = 0u64;
        for (index, r) in self.records.iter().enumerate() {
            if r.seq <= previous {
                return Err(SyncError::BadSequence {
                    index,
                    seq: r.seq,
                    previous,
                });
            }
            previous = r.seq;
        }
        Ok(())
    }

    /// The highest sequence in the batch.
    pub fn last_seq(&self) -> Option<u64> {
        self.records.last().map(|r| r.seq)
    }
}

/// One record from an edge.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    /// The site's sequence number (from 1, strictly increasing, never reused).
    pub seq: u64,
    /// When the edge recorded it (UTC).
    pub at: Timestamp,
    /// What happened.
    #[serde(flatten)]
    pub body: RecordBody,
}

/// What a record reports.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[allow(clippy::large_enum_variant)]
pub enum RecordBody {
    /// A pile's transaction record (0x3B), stored by the edge before it was acknowledged to
    /// the pile. Billing-critical: never dropped.
    Transaction(TransactionUp),
    /// A pile's discharge record (0xC9, V2G). Billing-critical: never dropped.
    Discharge(DischargeUp),
    /// A meter reading during a session. Telemetry: may be thinned when the edge's store is
    /// near its bound (register endpoints and tariff-boundary readings are kept).
    MeterReading(MeterReading),
    /// A connector changed state.
    ConnectorStatus(ConnectorStatus),
    /// The outcome of a command. Billing-critical: never dropped.
    CommandResult(CommandResult),
    /// Something an operator should look at.
    Alarm(Alarm),
    /// A meter reading the edge dropped to stay within its disk bound (its sequence number
    /// must still reach the cloud: the cloud acknowledges only contiguous sequences). Only
    /// telemetry is ever thinned; `at` is when the edge reported the gap.
    Thinned,
}

impl RecordBody {
    /// True for records that must never be dropped.
    pub fn is_billing_critical(&self) -> bool {
        matches!(
            self,
            RecordBody::Transaction(_) | RecordBody::Discharge(_) | RecordBody::CommandResult(_)
        )
    }
}

/// How a session was authorised.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum Authorisation {
    /// Started by a cloud order.
    Order { order: OrderId },
    /// Started at the pile by a card on the cached authorisation list (offline start).
    OfflineCard { card: String, account: AccountId },
    /// Started by the pile without the platform (e.g. a free-vend button).
    Pile,
}

/// A transaction record going up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransactionUp {
    pub pile: PileCode,
    pub authorisation: Authorisation,
    /// The edge's own price of the session with its cached tariff, when it priced it.
    pub edge_cost: Option<Money>,
    /// The record exactly as the pile sent it.
    pub record: TransactionRecord,
}

/// A discharge record going up.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DischargeUp {
    pub pile: PileCode,
    pub order: Option<OrderId>,
    /// The record exactly as the pile sent it.
    pub record: DischargeRecord,
    /// What the edge measured of the session from the pile's bidirectional meter (0xC7),
    /// when it saw the session's meter data (absent from older edges).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metering: Option<BidirectionalMetering>,
}

mod registers;
mod site_config;

pub use registers::*;
pub use site_config::*;

/// A meter reading of a session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeterReading {
    pub pile: PileCode,
    pub connector: ConnectorNo,
    pub serial: TransactionSerial,
    /// When the pile measured it (UTC, as the edge received it).
    pub measured_at: Timestamp,
    /// Import register (energy into the vehicle), cumulative.
    pub import_register: Energy,
    /// Export register (energy out of the vehicle, V2G), cumulative, if the meter has one.
    pub export_register: Option<Energy>,
    /// Active power; negative while discharging.
    pub power: Option<Power>,
    pub soc: Option<Soc>,
    /// The amount the pile shows so far.
    pub amount: Option<Money>,
}

/// The state of a connector.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConnectorState {
    /// No vehicle.
    Available,
    /// A vehicle is plugged in, not charging.
    Plugged,
    /// Charging.
    Charging,
    /// Discharging (V2G).
    Discharging,
    /// Faulted.
    Faulted,
    /// The pile is not connected.
    Offline,
}

/// A connector changed state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConnectorStatus {
    pub pile: PileCode,
    pub connector: ConnectorNo,
    pub state: ConnectorState,
}

/// What became of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum CommandOutcome {
    /// The edge stored the command (it is "delivered to edge").
    Received,
    /// The pile accepted it.
    Accepted,
    /// The pile refused it.
    Rejected { reason: String },
    /// It could not be delivered before its expiry.
    Expired,
    /// Delivery failed (pile offline, no answer in time).
    Failed { reason: String },
}

/// The outcome of a command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommandResult {
    pub command_id: CommandId,
    #[serde(flatten)]
    pub outcome: CommandOutcome,
}

/// How bad an alarm is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

/// Something an operator should look at (store near its bound, a pile's fault, ...).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alarm {
    pub severity: Severity,
    /// A stable machine-readable code, e.g. `store_near_bound`.
    pub code: String,
    /// What happened and what to do, for a person.
    pub message: String,
    pub pile: Option<PileCode>,
}

/// The cloud's cumulative acknowledgement: every record up to and including `up_to_seq` is
/// committed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ack {
    pub v: V1,
    pub site: SiteId,
    pub up_to_seq: u64,
}

impl Ack {
    /// An acknowledgement of everything up to `up_to_seq`.
    pub fn new(site: SiteId, up_to_seq: u64) -> Self {
        Ack {
            v: V1,
            site,
            up_to_seq,
        }
    }
}

/// A spending or energy limit for one session; the edge stops the session when it is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct SessionLimit {
    /// The amount held or authorised for the session.
    pub amount: Option<Money>,
    /// An energy cap.
    pub energy: Option<Energy>,
}

/// What the cloud asks an edge to do.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Command {
    /// Start charging (sent to the pile as 0x34).
    StartCharging {
        pile: PileCode,
        connector: ConnectorNo,
        order: OrderId,
        account: AccountId,
        serial: TransactionSerial,
        limit: SessionLimit,
    },
    /// Stop charging (0x36).
    StopCharging {
        pile: PileCode,
        connector: ConnectorNo,
        order: OrderId,
    },
    /// Start discharging (0xC2, V2G).
    StartDischarge {
        pile: PileCode,
        connector: ConnectorNo,
        order: OrderId,
        serial: TransactionSerial,
        soc_floor: Soc,
        max_power: Power,
        until: Timestamp,
    },
    /// Stop discharging (0xC6, V2G).
    StopDischarge {
        pile: PileCode,
        connector: ConnectorNo,
        order: OrderId,
    },
    /// Discharge `power` (positive = export) from the site between `from` and `to`.
    GridEvent {
        event_id: String,
        power: Power,
        from: Timestamp,
        to: Timestamp,
    },
    /// Set the pile's clock (0x56).
    SyncTime { pile: PileCode },
    /// Reboot the pile (0x92).
    Reboot { pile: PileCode },
}

/// A command with its identity and lifetime.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CommandEnvelope {
    pub v: V1,
    pub id: CommandId,
    pub site: SiteId,
    pub issued_at: Timestamp,
    /// After this instant the edge must not deliver it; it reports `expired` instead.
    pub expires_at: Timestamp,
    pub command: Command,
}

impl CommandEnvelope {
    /// True once `now` is at or past the expiry.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }
}

/// Whether the edge is connected, retained on the status topic; the offline form is the last
/// will.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteStatus {
    pub v: V1,
    pub site: SiteId,
    pub online: bool,
    /// When the edge said so (absent in the last will, which is written in advance).
    pub at: Option<Timestamp>,
}

/// The cloud tells an edge that its configuration (tariff, authorisation list, limits) has a
/// new version to fetch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ConfigNotice {
    pub v: V1,
    pub site: SiteId,
    pub config_version: u64,
}

#[cfg(test)]
mod tests;
