//! Identifier newtypes. Charger-side ids (`PileCode`, `ConnectorNo`, `TransactionSerial`) are
//! the protocol's BCD forms; platform-side ids (`SiteId`, `AccountId`, `OperatorId`) are short
//! strings that are safe inside MQTT topics and URLs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::wire::bcd::{self, Bcd, BcdTextError};

/// A pile (charger) code: 14 BCD digits assigned by the platform, e.g. `32010600019236`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PileCode(pub Bcd<7>);

impl PileCode {
    /// Wraps validated BCD bytes.
    pub const fn from_bcd(bcd: Bcd<7>) -> PileCode {
        PileCode(bcd)
    }

    /// A pile code from a number (left-padded to 14 digits); `None` above 14 digits.
    pub fn from_number(n: u64) -> Option<PileCode> {
        bcd::encode_value::<7>(n).map(|b| PileCode(Bcd::from_bytes(b).expect("encoded BCD")))
    }

    /// The packed bytes.
    pub const fn as_bytes(&self) -> &[u8; 7] {
        self.0.as_bytes()
    }
}

impl fmt::Display for PileCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for PileCode {
    type Err = BcdTextError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(PileCode)
    }
}

/// A connector ("gun") number on a pile, 0..=99 (one BCD byte; real piles use 1 and 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct ConnectorNo(u8);

/// A connector number above 99.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("connector number {0} does not fit one BCD byte (0-99)")]
pub struct BadConnectorNo(pub u8);

impl ConnectorNo {
    /// A connector number, or `None` above 99.
    pub const fn new(n: u8) -> Option<ConnectorNo> {
        if n <= 99 {
            Some(ConnectorNo(n))
        } else {
            None
        }
    }

    /// The number.
    pub const fn get(self) -> u8 {
        self.0
    }

    /// The BCD wire byte.
    pub const fn to_bcd(self) -> u8 {
        bcd::byte_of(self.0)
    }
}

impl TryFrom<u8> for ConnectorNo {
    type Error = BadConnectorNo;
    fn try_from(n: u8) -> Result<Self, Self::Error> {
        ConnectorNo::new(n).ok_or(BadConnectorNo(n))
    }
}

impl From<ConnectorNo> for u8 {
    fn from(c: ConnectorNo) -> u8 {
        c.0
    }
}

impl fmt::Display for ConnectorNo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:02}", self.0)
    }
}

/// A transaction serial: 32 BCD digits = pile code (14) + connector (2) + start time
/// `yymmddhhmmss` (12) + a counter (4). All zeros means "no transaction".
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TransactionSerial(pub Bcd<16>);

/// The parts of a start time in a transaction serial, as the pile's local clock shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SerialTime {
    /// Years since 2000.
    pub year: u8,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl TransactionSerial {
    /// The all-zero serial that idle connectors report.
    pub const NONE: TransactionSerial = TransactionSerial(Bcd::ZERO);

    /// Builds a serial the way the protocol specifies (platform-generated, or pile-generated
    /// when offline). Returns `None` if a time part is out of range or the counter is above 9999.
    pub fn compose(
        pile: PileCode,
        connector: ConnectorNo,
        at: SerialTime,
        counter: u16,
    ) -> Option<TransactionSerial> {
        let parts = [at.year, at.month, at.day, at.hour, at.minute, at.second];
        if parts.iter().any(|&p| p > 99) || counter > 9999 {
            return None;
        }
        let mut bytes = [0u8; 16];
        bytes[..7].copy_from_slice(pile.as_bytes());
        bytes[7] = connector.to_bcd();
        for (i, p) in parts.iter().enumerate() {
            bytes[8 + i] = bcd::byte_of(*p);
        }
        bytes[14..].copy_from_slice(&bcd::encode_value::<2>(counter as u64)?);
        Bcd::from_bytes(bytes).ok().map(TransactionSerial)
    }

    /// True for the all-zero serial.
    pub fn is_none(&self) -> bool {
        self.0.is_zero()
    }

    /// The pile code embedded in the serial.
    pub fn pile_code(&self) -> PileCode {
        let b = self.0.as_bytes();
        let mut p = [0u8; 7];
        p.copy_from_slice(&b[..7]);
        PileCode(Bcd::from_bytes(p).expect("sub-slice of valid BCD"))
    }

    /// The connector number embedded in the serial.
    pub fn connector(&self) -> ConnectorNo {
        ConnectorNo(bcd::byte_value(self.0.as_bytes()[7]).expect("valid BCD"))
    }

    /// The counter (last 4 digits).
    pub fn counter(&self) -> u16 {
        bcd::value(&self.0.as_bytes()[14..]).expect("valid BCD") as u16
    }

    /// The packed bytes.
    pub const fn as_bytes(&self) -> &[u8; 16] {
        self.0.as_bytes()
    }
}

impl fmt::Display for TransactionSerial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl FromStr for TransactionSerial {
    type Err = BcdTextError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(TransactionSerial)
    }
}

/// A platform id that is not valid: empty, too long, or with characters outside
/// `A-Z a-z 0-9 - _ .`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not a valid {what}: use 1-64 characters from A-Z a-z 0-9 - _ .")]
pub struct BadId {
    pub text: String,
    pub what: &'static str,
}

macro_rules! text_id {
    ($(#[$doc:meta])* $name:ident, $what:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates and wraps an id.
            pub fn new(text: impl Into<String>) -> Result<Self, BadId> {
                let text = text.into();
                let ok = !text.is_empty()
                    && text.len() <= 64
                    && text
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
                if ok {
                    Ok(Self(text))
                } else {
                    Err(BadId { text, what: $what })
                }
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = BadId;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Self::new(s)
            }
        }

        impl TryFrom<String> for $name {
            type Error = BadId;
            fn try_from(s: String) -> Result<Self, Self::Error> {
                Self::new(s)
            }
        }

        impl From<$name> for String {
            fn from(id: $name) -> String {
                id.0
            }
        }
    };
}

text_id!(
    /// A charging site (one edge daemon).
    SiteId, "site id"
);
text_id!(
    /// A driver's account.
    AccountId, "account id"
);
text_id!(
    /// An operator (tenant) that owns sites.
    OperatorId, "operator id"
);
text_id!(
    /// A command sent from the cloud to an edge (and on to a pile).
    CommandId, "command id"
);
text_id!(
    /// A charging or discharging order.
    OrderId, "order id"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serial_parts_come_back_out() {
        let pile: PileCode = "32010600019236".parse().unwrap();
        let c = ConnectorNo::new(1).unwrap();
        let at = SerialTime {
            year: 20,
            month: 1,
            day: 6,
            hour: 18,
            minute: 3,
            second: 42,
        };
        let s = TransactionSerial::compose(pile, c, at, 3060).unwrap();
        assert_eq!(s.to_string(), "32010600019236012001061803423060");
        assert_eq!(s.pile_code(), pile);
        assert_eq!(s.connector(), c);
        assert_eq!(s.counter(), 3060);
        assert!(!s.is_none());
        assert!(TransactionSerial::NONE.is_none());
    }

    #[test]
    fn text_ids_are_topic_safe() {
        assert!(SiteId::new("site-01").is_ok());
        assert!(SiteId::new("a/b").is_err());
        assert!(SiteId::new("+").is_err());
        assert!(SiteId::new("").is_err());
        assert!(SiteId::new("x".repeat(65)).is_err());
        assert!(serde_json::from_str::<AccountId>("\"#\"").is_err());
    }

    #[test]
    fn connector_numbers_fit_one_bcd_byte() {
        assert_eq!(ConnectorNo::new(12).unwrap().to_bcd(), 0x12);
        assert!(ConnectorNo::new(100).is_none());
    }
}
