//! Starts, stops, transaction records and balance updates (reference chapter 8, sections
//! 8.1-8.10, types 0x31-0x42), and the stop-reason code table of appendix 13.1
//! ([`StopReason`]).
//!
//! Every body here has a fixed layout: parsing allocates nothing and every field is kept, so
//! re-encoding a decoded body gives back the same bytes.

use serde::{Deserialize, Serialize};

use crate::domain::money::scale;
use crate::domain::{ConnectorNo, Money, PileCode, TransactionSerial};
use crate::message::{wire_enum, Body};
use crate::wire::parse::{
    bcd_field, code, connector, flag, money, pile_code, serial, text, PResult,
};
use crate::wire::text::FixedText;
use crate::wire::write::{BodyWriter, EncodeError};

use super::common::physical_card;
pub use super::common::{
    AuthFailure, BadPhysicalCardNo, LogicalCardNo, Outcome, PhysicalCardNo, RemoteStartFailure,
    StartMethod,
};
pub use super::record::{
    PeriodLine, RecordAckResult, TransactionOrigin, TransactionRecord, TransactionRecordAck,
};
pub use super::stop_reason::{StopCategory, StopReason};

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
    #[serde(rename = "balance_yuan")]
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
    #[serde(rename = "balance_yuan")]
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
    #[serde(rename = "balance_yuan")]
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
