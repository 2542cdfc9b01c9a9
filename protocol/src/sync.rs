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

/// Most register anomalies one session's metering lists (later ones are only counted).
pub const MAX_LISTED_ANOMALIES: usize = 16;

/// Import and export of one session, kept apart end to end (never netted): each is the sum
/// of its register's increases between readings. An interval in which a register read
/// lower than before (reset, rollover, meter swap) counts nothing for that register and is
/// listed in `anomalies`; the next reading is the new baseline.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidirectionalMetering {
    /// Energy into the vehicle over the session.
    pub import_energy: Energy,
    /// Energy out of the vehicle over the session.
    pub export_energy: Energy,
    /// The first and the last import and export registers the edge read.
    pub first_registers: Option<RegisterPair>,
    pub last_registers: Option<RegisterPair>,
    /// The first [`MAX_LISTED_ANOMALIES`] anomalies.
    #[serde(default)]
    pub anomalies: Vec<RegisterAnomaly>,
    /// Every anomaly, listed or not.
    #[serde(default)]
    pub anomaly_count: u32,
}

/// An import and an export register read together.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterPair {
    pub import: Energy,
    pub export: Energy,
}

/// Which register of a bidirectional meter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Register {
    Import,
    Export,
}

/// What kind of register anomaly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AnomalyKind {
    /// The register read lower than the last reading (a reset or a meter swap).
    Decreased,
    /// The register went from near its 5-byte maximum to near zero (a rollover).
    Rollover,
    /// The pile's discharge record contradicts itself: the end register below the start,
    /// or the exported energy not the difference of the two.
    RecordInconsistent,
}

/// A register reading that is not billed as energy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegisterAnomaly {
    pub register: Register,
    pub kind: AnomalyKind,
    /// When the edge saw it.
    pub at: Timestamp,
    /// The reading before, and the reading itself.
    pub before: Energy,
    pub reading: Energy,
}

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

/// Most chargers in one site configuration.
pub const MAX_SITE_CHARGERS: usize = 20_000;

/// Most cards in one site configuration.
pub const MAX_SITE_CARDS: usize = 200_000;

/// What an edge caches to run its site, also while offline: served by the cloud at
/// `GET /v1/edges/{site}/config` and fetched by the edge at start, on a [`ConfigNotice`] and
/// periodically. `config_version` only moves forward; an edge ignores an older one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SiteConfigDoc {
    pub v: V1,
    pub site: SiteId,
    /// Bumped by the cloud whenever anything below changes.
    pub config_version: u64,
    /// IANA zone of the site (tariffs are evaluated in it).
    pub time_zone: String,
    /// The charge tariff in force, if one is assigned.
    pub charge_tariff: Option<crate::tariff::Tariff>,
    /// The discharge (feed-in) tariff in force, if one is assigned.
    pub discharge_tariff: Option<crate::tariff::Tariff>,
    /// Chargers allowed to connect, with their MQTT credential hashes.
    pub chargers: Vec<ChargerGrant>,
    /// Cards that may start a session at a pile, also while the cloud is unreachable.
    pub cards: Vec<CardGrant>,
    pub limits: SiteLimitsDoc,
}

impl SiteConfigDoc {
    /// Checks the contract: the document is for `site`, holds at most [`MAX_SITE_CHARGERS`]
    /// chargers and [`MAX_SITE_CARDS`] cards, names no pile or card twice, and every charger's
    /// credential hash is 64 lower-case hex digits.
    pub fn validate(&self, site: &SiteId) -> Result<(), String> {
        if &self.site != site {
            return Err(format!(
                "the configuration is for site {} but was fetched for site {site}",
                self.site
            ));
        }
        if self.chargers.len() > MAX_SITE_CHARGERS {
            return Err(format!(
                "{} chargers; at most {MAX_SITE_CHARGERS} per site",
                self.chargers.len()
            ));
        }
        if self.cards.len() > MAX_SITE_CARDS {
            return Err(format!(
                "{} cards; at most {MAX_SITE_CARDS} per site",
                self.cards.len()
            ));
        }
        let mut piles = std::collections::HashSet::with_capacity(self.chargers.len());
        for c in &self.chargers {
            if !piles.insert(c.pile) {
                return Err(format!("pile {} is listed twice", c.pile));
            }
            if !is_sha256_hex(&c.credential_sha256) {
                return Err(format!(
                    "pile {}: the credential hash must be 64 lower-case hex digits (SHA-256)",
                    c.pile
                ));
            }
        }
        let mut cards = std::collections::HashSet::with_capacity(self.cards.len());
        for c in &self.cards {
            if !cards.insert(c.card) {
                return Err(format!("card {} is listed twice", c.card));
            }
            if c.offline_limit.is_negative() {
                return Err(format!("card {} has a negative offline limit", c.card));
            }
        }
        Ok(())
    }

    /// The grant of `card`, if listed (a linear scan: index the list to look up often).
    pub fn card(&self, card: &crate::message::common::PhysicalCardNo) -> Option<&CardGrant> {
        self.cards.iter().find(|c| &c.card == card)
    }
}

fn is_sha256_hex(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// A charger registered on a site.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargerGrant {
    pub pile: PileCode,
    pub connectors: u8,
    /// Lower-case hex SHA-256 of the charger's MQTT password.
    pub credential_sha256: String,
}

/// A card allowed to start sessions at the site's piles.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardGrant {
    pub card: crate::message::common::PhysicalCardNo,
    pub account: AccountId,
    /// The most one session started by this card without the cloud may cost.
    pub offline_limit: Money,
}

/// Site-wide limits.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SiteLimitsDoc {
    /// The most any session the edge starts on its own (offline card start) may cost.
    pub offline_session_limit: Money,
    /// The amount held for a session when the driver asked for none.
    pub default_session_amount: Money,
    /// Seconds a command stays valid.
    pub command_expiry_s: u64,
    /// The site's grid connection limit, if any.
    pub max_site_power: Option<Power>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn site() -> SiteId {
        SiteId::new("site-1").unwrap()
    }

    fn alarm(seq: u64) -> Record {
        Record {
            seq,
            at: Timestamp::from_second(1_700_000_000).unwrap(),
            body: RecordBody::Alarm(Alarm {
                severity: Severity::Warning,
                code: "store_near_bound".into(),
                message: "outbox at 90 % of its bound".into(),
                pile: None,
            }),
        }
    }

    #[test]
    fn batch_json_is_versioned_and_round_trips() {
        let b = RecordBatch::new(site(), vec![alarm(1), alarm(2)]);
        let json = serde_json::to_value(&b).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["records"][0]["type"], "alarm");
        let back: RecordBatch = serde_json::from_value(json).unwrap();
        assert_eq!(back, b);
    }

    #[test]
    fn other_versions_are_refused_with_a_clear_error() {
        let json = r#"{"v":2,"site":"site-1","up_to_seq":5}"#;
        let err = serde_json::from_str::<Ack>(json).unwrap_err().to_string();
        assert!(err.contains("version 2 is not supported"), "{err}");
    }

    #[test]
    fn batch_validation() {
        let ok = RecordBatch::new(site(), vec![alarm(3), alarm(7)]);
        assert_eq!(ok.validate(&site(), 10), Ok(()));
        assert_eq!(ok.last_seq(), Some(7));
        let empty = RecordBatch::new(site(), vec![]);
        assert_eq!(empty.validate(&site(), 10), Err(SyncError::Empty));
        let dup = RecordBatch::new(site(), vec![alarm(3), alarm(3)]);
        assert!(matches!(
            dup.validate(&site(), 10),
            Err(SyncError::BadSequence { index: 1, .. })
        ));
        let zero = RecordBatch::new(site(), vec![alarm(0)]);
        assert!(matches!(
            zero.validate(&site(), 10),
            Err(SyncError::BadSequence { .. })
        ));
        assert!(matches!(
            ok.validate(&site(), 1),
            Err(SyncError::TooLarge { .. })
        ));
        let other = SiteId::new("site-2").unwrap();
        assert!(matches!(
            ok.validate(&other, 10),
            Err(SyncError::WrongSite { .. })
        ));
    }

    #[test]
    fn command_envelope_round_trips_and_expires() {
        let t0 = Timestamp::from_second(1_700_000_000).unwrap();
        let env = CommandEnvelope {
            v: V1,
            id: CommandId::new("cmd-1").unwrap(),
            site: site(),
            issued_at: t0,
            expires_at: Timestamp::from_second(1_700_000_060).unwrap(),
            command: Command::StopCharging {
                pile: "32010600019236".parse().unwrap(),
                connector: ConnectorNo::new(1).unwrap(),
                order: OrderId::new("ord-1").unwrap(),
            },
        };
        let json = serde_json::to_string(&env).unwrap();
        assert!(json.contains(r#""type":"stop_charging""#), "{json}");
        let back: CommandEnvelope = serde_json::from_str(&json).unwrap();
        assert_eq!(back, env);
        assert!(!env.is_expired(t0));
        assert!(env.is_expired(env.expires_at));
    }

    #[test]
    fn command_results_flatten_the_outcome() {
        let r = CommandResult {
            command_id: CommandId::new("c").unwrap(),
            outcome: CommandOutcome::Rejected {
                reason: "connector busy".into(),
            },
        };
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(json["outcome"], "rejected");
        assert_eq!(json["reason"], "connector busy");
        assert_eq!(serde_json::from_value::<CommandResult>(json).unwrap(), r);
    }

    #[test]
    fn thinned_sequences_travel_as_tiny_records() {
        let r = Record {
            seq: 9,
            at: Timestamp::from_second(1_700_000_000).unwrap(),
            body: RecordBody::Thinned,
        };
        let json = serde_json::to_string(&r).unwrap();
        assert_eq!(
            json,
            r#"{"seq":9,"at":"2023-11-14T22:13:20Z","type":"thinned"}"#
        );
        assert_eq!(serde_json::from_str::<Record>(&json).unwrap(), r);
        assert!(!r.body.is_billing_critical());
    }

    fn site_doc() -> SiteConfigDoc {
        SiteConfigDoc {
            v: V1,
            site: site(),
            config_version: 3,
            time_zone: "Asia/Shanghai".into(),
            charge_tariff: None,
            discharge_tariff: None,
            chargers: vec![ChargerGrant {
                pile: "32010600019236".parse().unwrap(),
                connectors: 2,
                credential_sha256:
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad".into(),
            }],
            cards: vec![CardGrant {
                card: "00000000D14B0A54".parse().unwrap(),
                account: AccountId::new("driver-1").unwrap(),
                offline_limit: Money::from_cents(3_000),
            }],
            limits: SiteLimitsDoc {
                offline_session_limit: Money::from_cents(10_000),
                default_session_amount: Money::from_cents(5_000),
                command_expiry_s: 60,
                max_site_power: Some(Power::from_kw(250)),
            },
        }
    }

    #[test]
    fn site_config_round_trips_and_validates() {
        let doc = site_doc();
        let json = serde_json::to_value(&doc).unwrap();
        assert_eq!(json["v"], 1);
        assert_eq!(json["cards"][0]["card"], "00000000D14B0A54");
        let back: SiteConfigDoc = serde_json::from_value(json).unwrap();
        assert_eq!(back, doc);
        assert_eq!(doc.validate(&site()), Ok(()));
        assert!(doc.card(&"00000000D14B0A54".parse().unwrap()).is_some());
        let other = SiteId::new("site-2").unwrap();
        assert!(doc.validate(&other).unwrap_err().contains("site-2"));
    }

    #[test]
    fn site_config_with_duplicates_or_bad_hashes_is_refused() {
        let mut twice = site_doc();
        twice.cards.push(twice.cards[0].clone());
        assert!(twice.validate(&site()).unwrap_err().contains("twice"));
        let mut upper = site_doc();
        upper.chargers[0].credential_sha256 = upper.chargers[0].credential_sha256.to_uppercase();
        assert!(upper.validate(&site()).unwrap_err().contains("SHA-256"));
        let mut short = site_doc();
        short.chargers[0].credential_sha256 = "abc".into();
        assert!(short.validate(&site()).is_err());
    }

    #[test]
    fn billing_critical_records_are_marked() {
        assert!(!alarm(1).body.is_billing_critical());
        let r = RecordBody::CommandResult(CommandResult {
            command_id: CommandId::new("c").unwrap(),
            outcome: CommandOutcome::Accepted,
        });
        assert!(r.is_billing_critical());
    }
}
