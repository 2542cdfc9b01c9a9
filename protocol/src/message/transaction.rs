//! Starts, stops, transaction records and balance updates (reference chapter 8, sections
//! 8.1-8.10, types 0x31-0x42), and the stop-reason code table of appendix 13.1
//! ([`StopReason`]).
//!
//! Every body here has a fixed layout: parsing allocates nothing and every field is kept, so
//! re-encoding a decoded body gives back the same bytes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::domain::money::scale;
use crate::domain::{ConnectorNo, Money, PileCode, TransactionSerial};
use crate::message::{wire_enum, Body};
use crate::wire::bcd::Bcd;
use crate::wire::parse::{
    bcd_field, bytes, code, connector, flag, money, pile_code, serial, text, PResult,
};
use crate::wire::text::FixedText;
use crate::wire::write::{BodyWriter, EncodeError};

pub use super::record::{
    PeriodLine, RecordAckResult, TransactionOrigin, TransactionRecord, TransactionRecordAck,
};
pub use super::stop_reason::{StopCategory, StopReason};

wire_enum!(
    /// How a user asks the pile to start charging (0x31).
    StartMethod allowed "1 (card), 2 (account) or 3 (VIN)" {
        /// Swiping a card.
        Card = 1,
        /// Account and password on the pile (the reference marks it "not yet supported").
        Account = 2,
        /// The vehicle's VIN (plug and charge).
        Vin = 3,
    }
);
wire_enum!(
    /// A yes/no result: the authorisation flag of 0x32, the start result of 0x33, the stop
    /// result of 0x35.
    Outcome allowed "0 (failed) or 1 (succeeded)" { Failed = 0, Succeeded = 1 }
);
wire_enum!(
    /// Why the platform refused a pile-initiated start (0x32). The reference types this
    /// field "BCD" but lists 0x0A and 0x0B, which are not BCD: it is a BIN code.
    AuthFailure allowed "0 (none) or 1..=11 (see reference 8.2)" {
        /// No failure (sent with a successful authorisation).
        None = 0x00,
        AccountNotFound = 0x01,
        AccountFrozen = 0x02,
        InsufficientBalance = 0x03,
        /// The card has a transaction that has not been settled.
        CardHasUnsettledRecord = 0x04,
        PileDisabled = 0x05,
        /// The account may not charge on this pile.
        AccountNotAllowedOnPile = 0x06,
        WrongPassword = 0x07,
        /// The station has no capacity left ("电站电容不足").
        StationCapacityInsufficient = 0x08,
        /// The VIN is not registered with the platform.
        VinNotRegistered = 0x09,
        /// The pile has a transaction that has not been settled.
        PileHasUnsettledRecord = 0x0A,
        /// The pile does not accept cards.
        CardsNotSupported = 0x0B,
    }
);
wire_enum!(
    /// Why a remote start failed (0x33).
    RemoteStartFailure allowed "0 (none) or 1..=5 (see reference 8.4)" {
        None = 0x00,
        /// The pile code does not match this pile.
        PileMismatch = 0x01,
        /// The connector is already charging.
        AlreadyCharging = 0x02,
        DeviceFault = 0x03,
        DeviceOffline = 0x04,
        /// No vehicle plugged in. The pile sends a success reply later if the gun is plugged
        /// in within 60 s of the 0x34.
        NotPluggedIn = 0x05,
    }
);
wire_enum!(
    /// Why a remote stop failed (0x35).
    RemoteStopFailure allowed "0 (none), 1 (pile mismatch), 2 (not charging) or 3 (other)" {
        None = 0x00,
        /// The pile code does not match this pile.
        PileMismatch = 0x01,
        /// The connector is not charging.
        NotCharging = 0x02,
        Other = 0x03,
    }
);
wire_enum!(
    /// The pile's answer to a balance update (0x41).
    BalanceUpdateResult allowed "0 (updated), 1 (wrong pile code) or 2 (wrong card number)" {
        Updated = 0x00,
        WrongPileCode = 0x01,
        WrongCardNo = 0x02,
    }
);

/// A logical card number: the number printed on the card and shown on the pile's screen,
/// 16 BCD digits left-padded with zeros.
pub type LogicalCardNo = Bcd<8>;

/// A physical card number: what the reader reads from sector 0 block 0 of an M1 card, used
/// between pile and platform. 8 BIN bytes kept exactly as sent (shorter numbers are
/// left-padded with zero bytes: card D14B0A54 is `00000000D14B0A54`). JSON: 16 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct PhysicalCardNo(pub [u8; 8]);

/// Text that is not 16 hex digits.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a physical card number: write 16 hex digits such as 00000000D14B0A54")]
pub struct BadPhysicalCardNo(pub String);

impl PhysicalCardNo {
    /// All zeros: no card.
    pub const NONE: PhysicalCardNo = PhysicalCardNo([0; 8]);

    /// The wire bytes.
    pub const fn as_bytes(&self) -> &[u8; 8] {
        &self.0
    }

    /// True when all zeros (no card; e.g. a balance update not tied to a card).
    pub fn is_none(&self) -> bool {
        self.0 == [0; 8]
    }
}

impl fmt::Display for PhysicalCardNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for b in self.0 {
            write!(f, "{b:02X}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for PhysicalCardNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PhysicalCardNo({self})")
    }
}

impl FromStr for PhysicalCardNo {
    type Err = BadPhysicalCardNo;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        let mut out = [0u8; 8];
        if t.len() != 16 || hex::decode_to_slice(t, &mut out).is_err() {
            return Err(BadPhysicalCardNo(s.to_owned()));
        }
        Ok(PhysicalCardNo(out))
    }
}

impl Serialize for PhysicalCardNo {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for PhysicalCardNo {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

pub(crate) fn physical_card<'a>(
    field: &'static str,
) -> impl Fn(&'a [u8]) -> PResult<'a, PhysicalCardNo> {
    move |i| bytes::<8>(field)(i).map(|(r, b)| (r, PhysicalCardNo(b)))
}

/// 0x31: a user asks the pile to start charging (card, account or VIN); the platform
/// authorises with 0x32.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PileStartRequest {
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub method: StartMethod,
    /// Whether the platform must check a password ("是否需要密码").
    pub password_required: bool,
    /// The account number or physical card number ("账号或者物理卡号").
    pub card: PhysicalCardNo,
    /// The password as the reference specifies it: the 16-character MD5 of what the user
    /// typed, lowercase ("16 位 MD5, 小写"); zeros when there is none. Kept byte for byte.
    pub password_md5: FixedText<16>,
    /// The VIN when `method` is VIN, zeros otherwise. Sent REVERSED ("VIN码需要反序上送"):
    /// see [`PileStartRequest::vin_in_reading_order`].
    pub vin_reversed: FixedText<17>,
}

impl PileStartRequest {
    /// The VIN turned back into reading order (the wire carries it reversed).
    pub fn vin_in_reading_order(&self) -> FixedText<17> {
        let mut b = *self.vin_reversed.as_bytes();
        b.reverse();
        FixedText::from_bytes(b)
    }
}

impl Body for PileStartRequest {
    const TYPE: u8 = 0x31;
    const NAME: &'static str = "pile_start_request";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, method) = code("method")(i)?;
        let (i, password_required) = flag("password_required")(i)?;
        let (i, card) = physical_card("card")(i)?;
        let (i, password_md5) = text("password_md5")(i)?;
        let (i, vin_reversed) = text("vin_reversed")(i)?;
        Ok((
            i,
            PileStartRequest {
                pile_code,
                connector,
                method,
                password_required,
                card,
                password_md5,
                vin_reversed,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.code(self.method);
        w.flag(self.password_required);
        w.bytes(self.card.as_bytes());
        w.text(&self.password_md5);
        w.text(&self.vin_reversed);
        Ok(())
    }
}

/// 0x32: the platform authorises (or refuses) a pile-initiated start and assigns the
/// transaction serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PileStartReply {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    /// Shown on the pile's screen.
    pub logical_card: LogicalCardNo,
    /// The account balance, at 0.01 yuan.
    pub balance: Money,
    /// Whether the start is authorised ("鉴权成功标志").
    pub authorised: Outcome,
    pub failure: AuthFailure,
}

impl Body for PileStartReply {
    const TYPE: u8 = 0x32;
    const NAME: &'static str = "pile_start_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, logical_card) = bcd_field("logical_card")(i)?;
        let (i, balance) = money::<4>("balance", scale::CENT)(i)?;
        let (i, authorised) = code("authorised")(i)?;
        let (i, failure) = code("failure")(i)?;
        Ok((
            i,
            PileStartReply {
                serial,
                pile_code,
                connector,
                logical_card,
                balance,
                authorised,
                failure,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.bcd(&self.logical_card);
        w.money("balance", self.balance, scale::CENT, 4)?;
        w.code(self.authorised);
        w.code(self.failure);
        Ok(())
    }
}

/// 0x33: the pile answers a remote start (0x34).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteStartReply {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub result: Outcome,
    pub failure: RemoteStartFailure,
}

impl Body for RemoteStartReply {
    const TYPE: u8 = 0x33;
    const NAME: &'static str = "remote_start_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, result) = code("result")(i)?;
        let (i, failure) = code("failure")(i)?;
        Ok((
            i,
            RemoteStartReply {
                serial,
                pile_code,
                connector,
                result,
                failure,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.code(self.result);
        w.code(self.failure);
        Ok(())
    }
}

/// 0x34: the platform starts charging remotely (e.g. from the app).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteStart {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    /// The number printed on the card, shown on the pile's screen.
    pub logical_card: LogicalCardNo,
    /// The card number pile and platform use between them.
    pub physical_card: PhysicalCardNo,
    /// The account balance, at 0.01 yuan.
    pub balance: Money,
}

impl Body for RemoteStart {
    const TYPE: u8 = 0x34;
    const NAME: &'static str = "remote_start";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, logical_card) = bcd_field("logical_card")(i)?;
        let (i, physical_card) = physical_card("physical_card")(i)?;
        let (i, balance) = money::<4>("balance", scale::CENT)(i)?;
        Ok((
            i,
            RemoteStart {
                serial,
                pile_code,
                connector,
                logical_card,
                physical_card,
                balance,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.bcd(&self.logical_card);
        w.bytes(self.physical_card.as_bytes());
        w.money("balance", self.balance, scale::CENT, 4)?;
        Ok(())
    }
}

/// 0x35: the pile answers a remote stop (0x36).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteStopReply {
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub result: Outcome,
    pub failure: RemoteStopFailure,
}

impl Body for RemoteStopReply {
    const TYPE: u8 = 0x35;
    const NAME: &'static str = "remote_stop_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, result) = code("result")(i)?;
        let (i, failure) = code("failure")(i)?;
        Ok((
            i,
            RemoteStopReply {
                pile_code,
                connector,
                result,
                failure,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.code(self.result);
        w.code(self.failure);
        Ok(())
    }
}

/// 0x36: the platform stops charging remotely (e.g. from the app); it closes the order on
/// sending, and the pile must stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteStop {
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
}

impl Body for RemoteStop {
    const TYPE: u8 = 0x36;
    const NAME: &'static str = "remote_stop";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        Ok((
            i,
            RemoteStop {
                pile_code,
                connector,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        Ok(())
    }
}

/// 0x41: the pile answers a balance update (0x42). The reference's table has no connector.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceUpdateReply {
    pub pile_code: PileCode,
    /// The card of the update; zeros when it was not tied to a card.
    pub physical_card: PhysicalCardNo,
    pub result: BalanceUpdateResult,
}

impl Body for BalanceUpdateReply {
    const TYPE: u8 = 0x41;
    const NAME: &'static str = "balance_update_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, physical_card) = physical_card("physical_card")(i)?;
        let (i, result) = code("result")(i)?;
        Ok((
            i,
            BalanceUpdateReply {
                pile_code,
                physical_card,
                result,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.bytes(self.physical_card.as_bytes());
        w.code(self.result);
        Ok(())
    }
}

/// 0x42: after a top-up, the platform sends the user's new balance to the pile charging them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BalanceUpdate {
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    /// When not zero, the pile checks that the current session is this card's; when zero it
    /// updates the current user's balance without checking.
    pub physical_card: PhysicalCardNo,
    /// The new balance, at 0.01 yuan.
    pub balance: Money,
}

impl Body for BalanceUpdate {
    const TYPE: u8 = 0x42;
    const NAME: &'static str = "balance_update";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, physical_card) = physical_card("physical_card")(i)?;
        let (i, balance) = money::<4>("balance", scale::CENT)(i)?;
        Ok((
            i,
            BalanceUpdate {
                pile_code,
                connector,
                physical_card,
                balance,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.bytes(self.physical_card.as_bytes());
        w.money("balance", self.balance, scale::CENT, 4)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_card_text_round_trips() {
        let c: PhysicalCardNo = "00000000D14B0A54".parse().unwrap();
        assert_eq!(c.as_bytes(), &[0, 0, 0, 0, 0xD1, 0x4B, 0x0A, 0x54]);
        assert_eq!(c.to_string(), "00000000D14B0A54");
        assert!("D14B0A54".parse::<PhysicalCardNo>().is_err());
        assert!("00000000D14B0A5G".parse::<PhysicalCardNo>().is_err());
    }
}
