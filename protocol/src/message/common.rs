//! Types several chapters share: card numbers, the success flag, start methods and the
//! failure-code tables of pile-initiated and remote starts (used by single and parallel
//! charging alike).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::message::wire_enum;
use crate::wire::bcd::Bcd;
use crate::wire::parse::{bytes, PResult};

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
    /// A yes/no result (0 failed, 1 succeeded): authorisation flags, start and stop results,
    /// settings replies, V2G replies.
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
    /// Wraps the 8 wire bytes.
    pub const fn from_bytes(b: [u8; 8]) -> PhysicalCardNo {
        PhysicalCardNo(b)
    }

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
