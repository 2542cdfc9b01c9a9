//! One state machine per connector: the pure core of the edge.
//!
//! [`ConnectorMachine::step`] takes one [`Input`] (a decoded frame from the pile for this
//! connector, a command from the cloud, or a local event) and the [`Context`] of the moment
//! (the current instant, the cached tariff, the store's [`Admission`]), changes the state and
//! returns the [`Effect`]s the adapters must carry out. It never does I/O and never reads a
//! clock: time comes in with the context, so every transition is replayable in a unit test.
//!
//! States ([`State`]): `Offline` (the pile is not connected; an unfinished session is kept),
//! `Idle` (plugged or not), `StartRequested` (a start is in flight with its command id and
//! deadline), `Charging` (also discharging, for V2G), `Stopping` (a stop is in flight or the
//! pile is ending the session), `Finished` (the pile's record was received and is being stored
//! durably) and `Faulted`.
//!
//! Idempotency rules (each has a test in `tests_idempotency.rs`):
//! - a transaction record (0x3B / 0xC9) whose serial is already durable yields only a re-ack;
//!   one whose store is still in flight yields nothing (the ack follows the store); a new one
//!   yields exactly one [`Effect::StoreThenAck`]. The store deduplicates serials durably as
//!   well, so the rule also holds across restarts;
//! - a 0x13 that is not newer than the last one (charging time and energy not increased) is
//!   ignored for pricing and records nothing;
//! - a start or stop reply for a command that is no longer pending is ignored;
//! - a command past its expiry is never sent to the pile; it is reported `expired`;
//! - a repeated 0x31 of the card whose start is pending gets the same 0x32 (same serial)
//!   again; another card drops a pending card start and is decided afresh; a 0x13 showing
//!   the pile idle after the 0x32 reached it drops the pending card start (`cards.rs`).
//!
//! Ordering rule: the acknowledgement of a transaction record travels inside
//! [`Effect::StoreThenAck`]; the adapter sends it only after the store has flushed the record,
//! then feeds [`Input::RecordDurable`] back.

mod cards;
mod commands;
mod frames;
mod machine;
pub mod meter;
mod replies;
mod session;

#[cfg(test)]
mod tests_card_starts;
#[cfg(test)]
mod tests_idempotency;
#[cfg(test)]
pub(crate) mod tests_support;
#[cfg(test)]
mod tests_table;

pub(crate) use frames::target as frame_target;
pub use machine::{ConnectorMachine, MachineConfig};
pub use meter::SessionMeter;
pub use session::{
    CardAnswer, Direction, PendingStart, PendingStop, Progress, Saved, Session, StopCause,
};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use voltline_protocol::domain::{AccountId, ConnectorNo, Money, PileCode, Power};
use voltline_protocol::message::transaction::{AuthFailure, PhysicalCardNo, StartMethod};
use voltline_protocol::sync::{CommandEnvelope, RecordBody, SessionLimit};
use voltline_protocol::tariff::Tariff;
use voltline_protocol::{Message, TransactionSerial};

/// Most effects one step can produce (asserted).
pub const MAX_EFFECTS_PER_STEP: usize = 8;

/// Which connector a machine drives.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct ConnectorId {
    pub pile: PileCode,
    pub connector: ConnectorNo,
}

/// Whether the store accepts new sessions (see `store` for the thresholds).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Admission {
    /// New sessions may start.
    Open,
    /// The store is near its bound: refuse new sessions so billing records always fit.
    Refuse,
}

/// What the machine needs to know about the moment of a step.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    /// The current instant (UTC), read by the caller.
    pub now: Timestamp,
    /// The site's cached tariff, used to price sessions and enforce spending limits.
    pub tariff: Option<&'a Tariff>,
    /// The store's answer for new sessions.
    pub admission: Admission,
}

/// The edge's verdict on a card the pile asked about (0x31), from the cached authorisation
/// list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CardDecision {
    /// Start: the platform assigns `serial`; the session is limited to `limit`.
    Authorised {
        account: AccountId,
        serial: TransactionSerial,
        limit: SessionLimit,
        /// Shown on the pile's screen.
        balance: Money,
    },
    /// Refuse, with the code the pile shows.
    Refused(AuthFailure),
}

/// Everything that can happen to a connector.
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// A decoded frame the pile sent for this connector.
    Frame(Message),
    /// A command from the cloud, already stored in the inbox.
    Command(CommandEnvelope),
    /// The edge's verdict on a card the pile asked about.
    CardDecision {
        card: PhysicalCardNo,
        decision: CardDecision,
    },
    /// The record of `serial` (handed over in [`Effect::StoreThenAck`]) is on disk and its
    /// acknowledgement was sent.
    RecordDurable { serial: TransactionSerial },
    /// The store could not make the record of `serial` durable (nothing was acknowledged):
    /// forget that it is in flight, so the pile's resend is stored again.
    RecordFailed { serial: TransactionSerial },
    /// The pile's link came up (login accepted).
    PileConnected,
    /// The pile's link went down.
    PileDisconnected,
    /// Site dispatch asks a discharging connector for `power` (V2G).
    Setpoint { power: Power, valid_for_s: u16 },
    /// Time passed: check deadlines and liveness.
    Tick,
}

/// What the adapters must do after a step, in order.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// Send a frame to the pile.
    Send(Message),
    /// Append a record to the outbox (group-committed; no ordering promise to the pile).
    Record(RecordBody),
    /// Store `record` durably (flushed), then send `ack` to the pile, then feed
    /// [`Input::RecordDurable`] back. If the store reports the serial as already stored,
    /// send `ack` all the same: it is durable.
    StoreThenAck {
        serial: TransactionSerial,
        record: RecordBody,
        ack: Message,
    },
    /// Look the card up in the cached authorisation list and answer with
    /// [`Input::CardDecision`].
    AuthoriseCard {
        card: PhysicalCardNo,
        method: StartMethod,
    },
    /// Save the active session (the store's `sessions` tree) so a restart resumes it.
    SaveSession(Session),
    /// Save an answered card start in place of a session, **flush**, then send `reply` (its
    /// 0x32): a pile may start on the answer at once, and a restart must still know whose
    /// session it is. `SaveSession` replaces the start when the session starts;
    /// `ClearSession` forgets it.
    SaveStart { start: PendingStart, reply: Message },
    /// The connector has no active session (nor answered card start) any more.
    ClearSession,
}

/// Why a step changed nothing (for counters and for tests).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ignored {
    /// A frame not newer than one already seen.
    Stale,
    /// A record whose store is in flight.
    InFlight,
    /// A reply to a command that is not pending.
    NotPending,
    /// A frame for another pile or connector, or for another transaction.
    NotOurs,
    /// A frame this state has no use for.
    Irrelevant,
}

/// The outcome of one step.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Step {
    pub effects: Vec<Effect>,
    pub ignored: Option<Ignored>,
}

impl Step {
    fn push(&mut self, e: Effect) {
        self.effects.push(e);
        assert!(
            self.effects.len() <= MAX_EFFECTS_PER_STEP,
            "a step produced more than {MAX_EFFECTS_PER_STEP} effects"
        );
    }

    fn ignore(reason: Ignored) -> Step {
        Step {
            effects: Vec::new(),
            ignored: Some(reason),
        }
    }

    /// The records this step appends (plain and store-then-ack), for tests and counters.
    pub fn records(&self) -> impl Iterator<Item = &RecordBody> {
        self.effects.iter().filter_map(|e| match e {
            Effect::Record(r) | Effect::StoreThenAck { record: r, .. } => Some(r),
            _ => None,
        })
    }

    /// The frames this step sends at once.
    pub fn frames(&self) -> impl Iterator<Item = &Message> {
        self.effects.iter().filter_map(|e| match e {
            Effect::Send(m) => Some(m),
            _ => None,
        })
    }
}

/// The state of a connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum State {
    /// The pile is not connected. A session that was running is kept: piles go on charging
    /// and send their record when they are back.
    Offline { session: Option<Session> },
    /// No session. `plugged` as the last 0x13 said.
    Idle { plugged: bool },
    /// A start is in flight.
    StartRequested(PendingStart),
    /// Energy flows (either way, see [`Session::direction`]).
    Charging(Session),
    /// The session is ending: a stop is in flight, or the pile announced the end.
    Stopping { session: Session, stop: PendingStop },
    /// The pile's record of the session was received and is being stored.
    Finished { session: Session },
    /// The pile reports a fault. A session that was running is kept.
    Faulted { session: Option<Session> },
}

impl State {
    /// A short name for logs and the transition table.
    pub fn name(&self) -> &'static str {
        match self {
            State::Offline { .. } => "offline",
            State::Idle { .. } => "idle",
            State::StartRequested(_) => "start_requested",
            State::Charging(_) => "charging",
            State::Stopping { .. } => "stopping",
            State::Finished { .. } => "finished",
            State::Faulted { .. } => "faulted",
        }
    }

    /// The session the state holds, if any.
    pub fn session(&self) -> Option<&Session> {
        match self {
            State::Offline { session } | State::Faulted { session } => session.as_ref(),
            State::Charging(s)
            | State::Stopping { session: s, .. }
            | State::Finished { session: s } => Some(s),
            State::Idle { .. } | State::StartRequested(_) => None,
        }
    }
}
