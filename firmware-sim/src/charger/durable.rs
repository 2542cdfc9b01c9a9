//! What a pile keeps in flash across a power cut: its meter registers, its billing model, the
//! records not yet confirmed, and a checkpoint of every session in progress.
//!
//! Guarantees (each has a test):
//! - a record is in the durable state before the frame carrying it is written to the link
//!   (the transport persists the state before sending the outputs of the same step);
//! - a record leaves the durable state only when the platform confirmed it;
//! - a session interrupted by a power cut is billed after power returns, up to its last
//!   checkpoint (the energy after it is lost, as on a real pile), with stop reason 0x83
//!   ("pile lost power").

use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{ConnectorNo, Energy, PileCode, TransactionSerial};
use voltline_protocol::message::record::{TransactionOrigin, TransactionRecord};
use voltline_protocol::message::register::BillingModel;
use voltline_protocol::message::transaction::PhysicalCardNo;
use voltline_protocol::message::v2g::DischargeRecord;
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::wire::text::FixedText;

use crate::meter::Meter;
use crate::pricing::PeriodEnergy;

/// The layout version of the state file.
pub const STATE_VERSION: u32 = 1;

/// A record the pile must deliver.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", content = "record", rename_all = "snake_case")]
pub enum StoredRecord {
    /// 0x3B, confirmed by 0x40.
    Transaction(Box<TransactionRecord>),
    /// 0xC9, confirmed by 0xCA.
    Discharge(DischargeRecord),
}

impl StoredRecord {
    /// The record's transaction serial.
    pub fn serial(&self) -> TransactionSerial {
        match self {
            StoredRecord::Transaction(r) => r.serial,
            StoredRecord::Discharge(r) => r.serial,
        }
    }

    /// The frame type it travels in.
    pub fn frame_type(&self) -> u8 {
        match self {
            StoredRecord::Transaction(_) => 0x3B,
            StoredRecord::Discharge(_) => 0xC9,
        }
    }
}

/// A charging session as last checkpointed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargeCheckpoint {
    pub connector: ConnectorNo,
    pub serial: TransactionSerial,
    pub origin: TransactionOrigin,
    pub card: PhysicalCardNo,
    pub vin: FixedText<17>,
    pub start_time: Cp56Time,
    pub meter_start: Energy,
    /// The import register (wire resolution) at the checkpoint.
    pub meter_at: Energy,
    /// Pile time of the checkpoint.
    pub at: Cp56Time,
    pub periods: PeriodEnergy,
    pub model: BillingModel,
}

/// A discharge session as last checkpointed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeCheckpoint {
    pub connector: ConnectorNo,
    pub serial: TransactionSerial,
    pub start_time: Cp56Time,
    pub export_start: Energy,
    pub export_at: Energy,
    pub at: Cp56Time,
}

/// Everything a pile keeps in flash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DurableState {
    pub version: u32,
    pub pile: PileCode,
    /// One per connector, connector 1 first.
    pub meters: Vec<Meter>,
    pub billing_model: Option<BillingModel>,
    /// Oldest first.
    pub pending: Vec<StoredRecord>,
    pub charging: Vec<ChargeCheckpoint>,
    pub discharging: Vec<DischargeCheckpoint>,
}

impl DurableState {
    /// A fresh pile's flash.
    pub fn fresh(pile: PileCode, connectors: usize) -> DurableState {
        DurableState {
            version: STATE_VERSION,
            pile,
            meters: vec![Meter::default(); connectors],
            billing_model: None,
            pending: Vec::new(),
            charging: Vec::new(),
            discharging: Vec::new(),
        }
    }
}
