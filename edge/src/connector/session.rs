//! The data a connector's states carry: a pending start, a running session, a pending stop.
//!
//! A [`Session`] is what the edge must remember across a restart (it is saved in the store's
//! `sessions` tree through [`super::Effect::SaveSession`]), so it is plain serde data. So is
//! an answered card start ([`super::Effect::SaveStart`]): a pile that got its 0x32 may start
//! charging while the edge restarts, and its session must keep the card's account and limit.

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{CommandId, Energy, Money, OrderId};
use voltline_protocol::message::transaction::PhysicalCardNo;
use voltline_protocol::sync::{Authorisation, SessionLimit};
use voltline_protocol::tariff::MeterReading;
use voltline_protocol::TransactionSerial;

use super::meter::SessionMeter;

/// Which way energy flows in a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Into the vehicle (0x34 / 0x33 / 0x3B).
    Charge,
    /// Out of the vehicle (V2G: 0xC2 / 0xC1 / 0xC9).
    Discharge,
}

/// A start that was sent (0x34, 0xC2) or authorised (0x32) and is not answered yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingStart {
    /// The cloud command, or `None` for a card start at the pile.
    pub command_id: Option<CommandId>,
    pub serial: TransactionSerial,
    pub authorisation: Authorisation,
    pub limit: SessionLimit,
    pub direction: Direction,
    /// When the start counts as failed if the pile has not started.
    pub deadline: Timestamp,
    /// The pile answered "not plugged in": it may still start if the gun is plugged in time.
    pub waiting_for_plug: bool,
    /// For a card start at the pile: what its 0x32 said, to answer a repeated 0x31 alike.
    #[serde(default)]
    pub card: Option<CardAnswer>,
}

/// The authorised 0x32 a card start was answered with.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CardAnswer {
    /// The card the pile asked about.
    pub card: PhysicalCardNo,
    /// The balance the 0x32 showed (rounded down to the cent).
    pub balance: Money,
    /// When the 0x32 was last sent: a pile that reports idle well after it did not start.
    pub answered_at: Timestamp,
    /// The pile was out of sight since the answer (its link dropped, or the edge restarted):
    /// it may have charged and ended the start unseen, so a new 0x31 is decided afresh.
    #[serde(default)]
    pub unseen: bool,
}

/// What the store keeps of a connector across a restart: its running session, or a card
/// start that was answered and has not started yet. A stored value that decodes as a
/// [`Session`] is one (sessions saved before card starts were kept decode unchanged).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Saved {
    Session(Session),
    CardStart(PendingStart),
}

/// Why a session is ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopCause {
    /// The cloud asked (StopCharging / StopDischarge).
    Command,
    /// The session's amount limit was reached.
    SpendingLimit,
    /// The session's energy limit was reached.
    EnergyLimit,
    /// The pile (or the vehicle) ended it (0x19, 0x1B, 0x1D, 0x21, or a 0x13 that is no
    /// longer charging).
    Pile,
}

/// A stop in flight.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PendingStop {
    pub cause: StopCause,
    /// The cloud command, when the cloud asked.
    pub command_id: Option<CommandId>,
    /// Whether a stop frame was sent and its reply (0x35 / 0xC5) is awaited.
    pub awaiting_reply: bool,
    /// When to resend the stop frame (or give up) if nothing happened.
    pub deadline: Timestamp,
    /// Stop frames sent so far (bounded by the machine's config).
    pub attempts: u8,
}

/// Progress as a 0x13 reports it, to tell a newer frame from a stale or repeated one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Progress {
    /// Compared first: energy never goes backwards within a session.
    pub energy_mwh: i64,
    pub charging_time_min: u16,
}

/// A running session.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Session {
    pub serial: TransactionSerial,
    pub authorisation: Authorisation,
    pub limit: SessionLimit,
    pub direction: Direction,
    /// The cloud command that started it, if any.
    pub command_id: Option<CommandId>,
    /// When the edge saw it start.
    pub started_at: Timestamp,
    /// The readings that matter for pricing.
    pub meter: SessionMeter,
    /// The last accepted progress (0x13).
    pub progress: Option<Progress>,
    /// The last import and export registers of a V2G meter (0xC7).
    pub last_registers: Option<(Energy, Energy)>,
    /// The energy so far.
    pub energy: Energy,
    /// What the last report interval added to the cost and to the energy: a limit the next
    /// interval would pass stops the session one report early, so a held amount is not
    /// overspent by a whole interval's energy.
    #[serde(default)]
    pub last_increment: (Money, Energy),
    /// The edge's price so far with the cached tariff, when it could price.
    pub cost: Option<Money>,
    /// Whether an alarm about unpriceable readings was already raised.
    pub pricing_alarm_raised: bool,
    /// Import and export of a V2G meter, tracked apart, with register anomalies (0xC7).
    #[serde(default)]
    pub registers: Box<crate::dispatch::metering::RegisterBook>,
}

impl Session {
    /// A session that starts now from a pending start.
    pub fn from_start(start: PendingStart, now: Timestamp) -> Session {
        Session::new(
            start.serial,
            start.authorisation,
            start.limit,
            start.direction,
            start.command_id,
            now,
        )
    }

    /// A new session; a charging session's meter starts at zero energy now.
    pub fn new(
        serial: TransactionSerial,
        authorisation: Authorisation,
        limit: SessionLimit,
        direction: Direction,
        command_id: Option<CommandId>,
        now: Timestamp,
    ) -> Session {
        let mut meter = SessionMeter::default();
        if direction == Direction::Charge {
            // 0x13 reports the energy of the session, which is zero when it starts: price from
            // the start, not from the first report.
            meter.push(None, MeterReading::new(now, Energy::ZERO));
        }
        Session {
            serial,
            authorisation,
            limit,
            direction,
            command_id,
            started_at: now,
            meter,
            progress: None,
            last_registers: None,
            energy: Energy::ZERO,
            last_increment: (Money::ZERO, Energy::ZERO),
            cost: None,
            pricing_alarm_raised: false,
            registers: Default::default(),
        }
    }

    /// The order behind the session, if a cloud order started it.
    pub fn order(&self) -> Option<&OrderId> {
        match &self.authorisation {
            Authorisation::Order { order } => Some(order),
            _ => None,
        }
    }

    /// Which limit, if any, the session has reached, or would pass within the next report
    /// interval at the pace of the last one.
    pub fn limit_reached(&self) -> Option<StopCause> {
        let (cost_step, energy_step) = self.last_increment;
        if let (Some(max), Some(cost)) = (self.limit.amount, self.cost) {
            if cost >= max || cost + cost_step > max {
                return Some(StopCause::SpendingLimit);
            }
        }
        if let Some(max) = self.limit.energy {
            if self.energy >= max || self.energy + energy_step > max {
                return Some(StopCause::EnergyLimit);
            }
        }
        None
    }
}
