//! Typed messages: one struct per frame type, grouped by the reference's chapters, and the
//! [`Message`] enum that dispatches between them.
//!
//! Each body type implements [`Body`]: a `nom` parser built from [`crate::wire::parse`] and a
//! writer built on [`BodyWriter`]. Decoding then encoding a valid body gives back the same
//! bytes: every field, including reserved ones, is kept.
//!
//! Field names carry their unit where the type alone does not say it (`_min`, `_s`, `_pct`),
//! and physical quantities use the domain types (`Energy` in kWh, `Money` in yuan, `Voltage`
//! in V, ...), so the JSON form of a frame is readable without the reference at hand.

use serde::{Deserialize, Serialize};

use crate::error::FrameError;
use crate::wire::parse::PResult;
use crate::wire::write::{BodyWriter, EncodeError};

pub mod cards;
pub mod common;
pub mod maintenance;
pub mod parallel;
pub mod realtime;
pub mod record;
pub mod register;
pub mod settings;
pub mod stop_reason;
pub mod transaction;
pub mod v2g;

/// A message body of one frame type.
pub trait Body: Sized {
    /// The frame type byte.
    const TYPE: u8;
    /// The snake_case name used in JSON, logs and metrics.
    const NAME: &'static str;
    /// Parses the body. The caller checks that the whole body was consumed.
    fn parse(input: &[u8]) -> PResult<'_, Self>;
    /// Writes the body.
    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError>;
}

/// Large, rare bodies are boxed in [`Message`] so that the enum stays the size of the hot
/// real-time data frame (every move of a decoded frame copies the whole enum).
impl<T: Body> Body for Box<T> {
    const TYPE: u8 = T::TYPE;
    const NAME: &'static str = T::NAME;

    #[inline]
    fn parse(input: &[u8]) -> PResult<'_, Self> {
        T::parse(input).map(|(rest, m)| (rest, Box::new(m)))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        (**self).write(w)
    }
}

macro_rules! from_unboxed {
    ($($variant:ident($ty:ty)),* $(,)?) => {
        $(
            impl From<$ty> for Message {
                fn from(m: $ty) -> Message { Message::$variant(Box::new(m)) }
            }
        )*
    };
}

from_unboxed! {
    BillingModelReply(register::BillingModelReply),
    TransactionRecord(transaction::TransactionRecord),
    BillingModelSet(settings::BillingModelSet),
    Update(maintenance::Update),
}

/// Which way a frame travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// Charger → platform (odd type codes).
    FromPile,
    /// Platform → charger (even type codes).
    ToPile,
}

macro_rules! messages {
    ($( $code:literal => $variant:ident($ty:ty) ),* $(,)?) => {
        /// Every message Voltline understands, by frame type.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "name", content = "body", rename_all = "snake_case")]
        #[allow(clippy::large_enum_variant)]
        pub enum Message {
            $( #[doc = concat!("Frame type ", stringify!($code), ".")] $variant($ty), )*
        }

        impl Message {
            /// The frame type byte.
            pub fn frame_type(&self) -> u8 {
                match self { $( Message::$variant(_) => $code, )* }
            }

            /// The snake_case name.
            pub fn name(&self) -> &'static str {
                match self { $( Message::$variant(_) => <$ty as Body>::NAME, )* }
            }

            /// Decodes the body of a frame of `frame_type`. The whole body must be consumed.
            #[inline]
            pub fn decode_body(frame_type: u8, body: &[u8]) -> Result<Message, FrameError> {
                let parsed = match frame_type {
                    $( $code => <$ty as Body>::parse(body).map(|(rest, m)| (rest, Message::$variant(m))), )*
                    _ => return Err(FrameError::UnknownType { frame_type }),
                };
                match parsed {
                    Ok((rest, message)) if rest.is_empty() => Ok(message),
                    Ok((rest, _)) => Err(FrameError::TrailingBody {
                        frame_type,
                        offset: crate::error::HEADER_LEN + body.len() - rest.len(),
                        extra: rest.len(),
                    }),
                    Err(nom::Err::Error(e) | nom::Err::Failure(e)) => {
                        Err(FrameError::from_field(frame_type, body, e))
                    }
                    Err(nom::Err::Incomplete(_)) => Err(FrameError::TruncatedBody {
                        frame_type,
                        field: "body",
                        offset: crate::error::HEADER_LEN + body.len(),
                        needed: 1,
                    }),
                }
            }

            /// Writes the body.
            pub fn write_body(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
                match self { $( Message::$variant(m) => m.write(w), )* }
            }
        }

        /// The name of a frame type, if Voltline knows it.
        pub fn type_name(code: u8) -> Option<&'static str> {
            match code {
                $( $code => Some(<$ty as Body>::NAME), )*
                _ => None,
            }
        }

        /// Every frame type Voltline knows, ascending.
        pub const ALL_TYPES: &[u8] = &[$($code),*];

        $(
            impl From<$ty> for Message {
                fn from(m: $ty) -> Message { Message::$variant(m) }
            }
            const _: () = assert!(<$ty as Body>::TYPE == $code, "Body::TYPE must match the registry");
        )*
    };
}

messages! {
    // register.rs: login, heartbeat, billing model (chapter 6)
    0x01 => Login(register::Login),
    0x02 => LoginReply(register::LoginReply),
    0x03 => Heartbeat(register::Heartbeat),
    0x04 => HeartbeatReply(register::HeartbeatReply),
    0x05 => BillingModelVerify(register::BillingModelVerify),
    0x06 => BillingModelVerifyReply(register::BillingModelVerifyReply),
    0x09 => BillingModelRequest(register::BillingModelRequest),
    0x0A => BillingModelReply(Box<register::BillingModelReply>),
    // realtime.rs: real-time data and the GB/T 27930 charging stages (chapter 7)
    0x12 => ReadRealTimeData(realtime::ReadRealTimeData),
    0x13 => RealTimeData(realtime::RealTimeData),
    0x15 => ChargingHandshake(realtime::ChargingHandshake),
    0x17 => ParameterConfig(realtime::ParameterConfig),
    0x19 => ChargingFinished(realtime::ChargingFinished),
    0x1B => ErrorReport(realtime::ErrorReport),
    0x1D => BmsStop(realtime::BmsStop),
    0x21 => ChargerStop(realtime::ChargerStop),
    0x23 => BmsDemand(realtime::BmsDemand),
    0x25 => BmsInfo(realtime::BmsInfo),
    // transaction.rs: starts, stops, transaction records, balances (chapter 8)
    0x31 => PileStartRequest(transaction::PileStartRequest),
    0x32 => PileStartReply(transaction::PileStartReply),
    0x33 => RemoteStartReply(transaction::RemoteStartReply),
    0x34 => RemoteStart(transaction::RemoteStart),
    0x35 => RemoteStopReply(transaction::RemoteStopReply),
    0x36 => RemoteStop(transaction::RemoteStop),
    0x3B => TransactionRecord(Box<transaction::TransactionRecord>),
    0x40 => TransactionRecordAck(transaction::TransactionRecordAck),
    0x41 => BalanceUpdateReply(transaction::BalanceUpdateReply),
    0x42 => BalanceUpdate(transaction::BalanceUpdate),
    // cards.rs: offline card list (chapter 8)
    0x43 => CardSyncReply(cards::CardSyncReply),
    0x44 => CardSync(cards::CardSync),
    0x45 => CardClearReply(cards::CardClearReply),
    0x46 => CardClear(cards::CardClear),
    0x47 => CardQueryReply(cards::CardQueryReply),
    0x48 => CardQuery(cards::CardQuery),
    // settings.rs: working parameters, time sync, billing model set, parking lock (chapters 9-10)
    0x51 => WorkingParamsReply(settings::WorkingParamsReply),
    0x52 => WorkingParams(settings::WorkingParams),
    0x55 => TimeSyncReply(settings::TimeSyncReply),
    0x56 => TimeSync(settings::TimeSync),
    0x57 => BillingModelSetReply(settings::BillingModelSetReply),
    0x58 => BillingModelSet(Box<settings::BillingModelSet>),
    0x61 => ParkingLockStatus(settings::ParkingLockStatus),
    0x62 => ParkingLockCommand(settings::ParkingLockCommand),
    0x63 => ParkingLockReply(settings::ParkingLockReply),
    // maintenance.rs: remote reboot and update (chapter 11)
    0x91 => RebootReply(maintenance::RebootReply),
    0x92 => Reboot(maintenance::Reboot),
    0x93 => UpdateReply(maintenance::UpdateReply),
    0x94 => Update(Box<maintenance::Update>),
    // parallel.rs: parallel charging (chapter 12)
    0xA1 => ParallelStartRequest(parallel::ParallelStartRequest),
    0xA2 => ParallelStartReply(parallel::ParallelStartReply),
    0xA3 => ParallelRemoteStartReply(parallel::ParallelRemoteStartReply),
    0xA4 => ParallelRemoteStart(parallel::ParallelRemoteStart),
    // v2g.rs: Voltline's V2G extension (PROTOCOL.md)
    0xC1 => DischargeStartReply(v2g::DischargeStartReply),
    0xC2 => DischargeStart(v2g::DischargeStart),
    0xC3 => DischargeSetpointReply(v2g::DischargeSetpointReply),
    0xC4 => DischargeSetpoint(v2g::DischargeSetpoint),
    0xC5 => DischargeStopReply(v2g::DischargeStopReply),
    0xC6 => DischargeStop(v2g::DischargeStop),
    0xC7 => BidirectionalMeter(v2g::BidirectionalMeter),
    0xC9 => DischargeRecord(v2g::DischargeRecord),
    0xCA => DischargeRecordAck(v2g::DischargeRecordAck),
}

impl Message {
    /// Which way this message travels: odd codes come from the pile, even codes go to it.
    /// (The reference's type table lists 0xA3/0xA4 the other way round; its section text,
    /// which `parallel` follows, keeps the rule.)
    pub fn direction(&self) -> Direction {
        direction_of(self.frame_type())
    }
}

/// Which way a frame type travels.
pub fn direction_of(code: u8) -> Direction {
    if !code.is_multiple_of(2) {
        Direction::FromPile
    } else {
        Direction::ToPile
    }
}

/// Declares a one-byte code table: an enum with `TryFrom<u8>` (a byte outside the table is an
/// error), [`crate::wire::parse::WireCode`] and snake_case serde names.
macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident allowed $allowed:literal { $( $(#[$vdoc:meta])* $variant:ident = $val:literal ),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $( $(#[$vdoc])* $variant = $val ),* }

        impl TryFrom<u8> for $name {
            type Error = u8;
            fn try_from(v: u8) -> Result<Self, u8> {
                match v { $( $val => Ok($name::$variant), )* other => Err(other) }
            }
        }

        impl crate::wire::parse::WireCode for $name {
            const ALLOWED: &'static str = $allowed;
            fn to_wire(self) -> u8 { self as u8 }
        }
    };
}
pub(crate) use wire_enum;
