//! What a simulated charger tells the outside world: events on a broadcast channel, and the
//! snapshot a test reads with `ChargerHandle::state`.

use serde::Serialize;
use voltline_protocol::domain::{
    ConnectorNo, Energy, Money, PileCode, Power, Soc, TransactionSerial,
};
use voltline_protocol::message::realtime::ConnectorStatus;
use voltline_protocol::message::record::TransactionRecord;
use voltline_protocol::message::stop_reason::StopReason;
use voltline_protocol::message::v2g::{DischargeRecord, DischargeStopReason};

/// How a finished charging session came out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SessionSummary {
    pub serial: TransactionSerial,
    pub stop_reason: StopReason,
    /// What the vehicle model took in, exactly (mWh resolution).
    pub vehicle_energy: Energy,
    /// The record the pile stored and sends until confirmed.
    pub record: TransactionRecord,
}

/// How a finished discharge session came out.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DischargeSummary {
    pub serial: TransactionSerial,
    pub stop_reason: DischargeStopReason,
    /// What the vehicle model gave out, exactly.
    pub vehicle_energy: Energy,
    pub record: DischargeRecord,
}

/// Something that happened on a simulated charger.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum SimEvent {
    /// The transport is up (TCP connected, or MQTT connection acknowledged).
    Connected { pile: PileCode },
    /// The link went down; the charger reconnects with backoff.
    Disconnected { pile: PileCode, reason: String },
    /// The platform accepted the login.
    LoggedIn { pile: PileCode },
    /// The platform rejected the login.
    LoginRejected { pile: PileCode },
    /// A billing model was installed (0x0A or 0x58).
    BillingModelInstalled { pile: PileCode, model_no: String },
    /// Charging started.
    SessionStarted {
        pile: PileCode,
        connector: ConnectorNo,
        serial: TransactionSerial,
    },
    /// A start was refused (remote start failure, or a pile-initiated start not authorised).
    StartRefused {
        pile: PileCode,
        connector: ConnectorNo,
        reason: String,
    },
    /// Charging ended and its record was stored.
    SessionEnded {
        pile: PileCode,
        connector: ConnectorNo,
        summary: Box<SessionSummary>,
    },
    /// Discharging started.
    DischargeStarted {
        pile: PileCode,
        connector: ConnectorNo,
        serial: TransactionSerial,
    },
    /// Discharging ended and its record was stored.
    DischargeEnded {
        pile: PileCode,
        connector: ConnectorNo,
        summary: Box<DischargeSummary>,
    },
    /// A transaction or discharge record went out.
    RecordSent {
        pile: PileCode,
        serial: TransactionSerial,
        frame_type: u8,
        attempt: u32,
    },
    /// The platform confirmed a record; it is deleted.
    RecordConfirmed {
        pile: PileCode,
        serial: TransactionSerial,
        frame_type: u8,
    },
    /// The pile answered a platform command.
    CommandAnswered {
        pile: PileCode,
        request: u8,
        reply: u8,
        ok: bool,
    },
    /// The pile's clock was set by a time sync.
    ClockSet { pile: PileCode, offset_ms: i64 },
    /// The pile goes down for a reboot.
    Rebooting { pile: PileCode, meter_reset: bool },
    /// Power was cut: in-memory state is gone.
    PowerLost { pile: PileCode },
    /// Power came back; the pile restored what its flash held.
    PowerRestored {
        pile: PileCode,
        pending_records: usize,
    },
    /// A fault was injected.
    FaultInjected { pile: PileCode, fault: String },
    /// A frame from the platform could not be decoded.
    BadFrame { pile: PileCode, error: String },
}

impl SimEvent {
    /// The pile the event is about.
    pub fn pile(&self) -> PileCode {
        match self {
            SimEvent::Connected { pile }
            | SimEvent::Disconnected { pile, .. }
            | SimEvent::LoggedIn { pile }
            | SimEvent::LoginRejected { pile }
            | SimEvent::BillingModelInstalled { pile, .. }
            | SimEvent::SessionStarted { pile, .. }
            | SimEvent::StartRefused { pile, .. }
            | SimEvent::SessionEnded { pile, .. }
            | SimEvent::DischargeStarted { pile, .. }
            | SimEvent::DischargeEnded { pile, .. }
            | SimEvent::RecordSent { pile, .. }
            | SimEvent::RecordConfirmed { pile, .. }
            | SimEvent::CommandAnswered { pile, .. }
            | SimEvent::ClockSet { pile, .. }
            | SimEvent::Rebooting { pile, .. }
            | SimEvent::PowerLost { pile }
            | SimEvent::PowerRestored { pile, .. }
            | SimEvent::FaultInjected { pile, .. }
            | SimEvent::BadFrame { pile, .. } => *pile,
        }
    }
}

/// One connector as a test sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectorSnapshot {
    pub connector: ConnectorNo,
    pub status: ConnectorStatus,
    pub plugged: bool,
    pub faulted: bool,
    pub charging: bool,
    pub discharging: bool,
    /// The current session's serial.
    pub serial: Option<TransactionSerial>,
    /// Exact registers.
    pub import_register: Energy,
    pub export_register: Energy,
    /// Registers as the wire carries them (floored to 0.0001 kWh).
    pub import_register_wire: Energy,
    pub export_register_wire: Energy,
    /// Signed power: negative while discharging.
    pub power: Power,
    pub soc: Option<Soc>,
    /// What the vehicle took in / gave out since it arrived (exact).
    pub vehicle_charged: Energy,
    pub vehicle_discharged: Energy,
    /// Amount of the current session so far.
    pub session_amount: Money,
}

/// A stored record awaiting confirmation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PendingRecordInfo {
    pub serial: TransactionSerial,
    pub frame_type: u8,
    pub attempts: u32,
}

/// A charger as a test sees it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChargerSnapshot {
    pub pile: PileCode,
    /// Logged in to the platform.
    pub online: bool,
    /// The pile's wall clock, local time.
    pub pile_time: String,
    /// The pile clock's offset from true time.
    pub clock_offset_ms: i64,
    pub billing_model_no: Option<String>,
    pub connectors: Vec<ConnectorSnapshot>,
    pub pending_records: Vec<PendingRecordInfo>,
}

impl ChargerSnapshot {
    /// The snapshot of connector `n` (1-based).
    pub fn connector(&self, n: u8) -> Option<&ConnectorSnapshot> {
        self.connectors.iter().find(|c| c.connector.get() == n)
    }
}
