//! Real-time data and the GB/T 27930 charging stages (reference chapter 7, types 0x12-0x25).
//!
//! 0x13 is the hot frame (every 15 s per charging connector, every 5 min idle): its parser
//! reads fixed-size fields only and allocates nothing. The GB/T 27930 frames (0x15-0x25) relay
//! what the pile and the vehicle's BMS exchange over CAN; their two-bit status fields follow
//! the SAE J1939 convention GB/T 27930 is built on (`00` normal, `01` set, `10` untrusted,
//! `11` not available) and are kept as whole words with accessors ([`FlagState`]).
//!
//! Where the reference's own sample frames send 0 for a field whose table starts at 1 (battery
//! type, production month and day in 0x15, charging mode in 0x23), 0 is accepted as "not
//! reported": piles send zeros for BMS data they have not received.

#[macro_use]
mod common;
mod bms;
mod data;
mod handshake;
mod stops;

pub use bms::*;
pub use common::{CellVoltage, FlagState};
pub use data::*;
pub use handshake::*;
pub use stops::*;

#[cfg(test)]
mod tests {
    use super::common::*;

    #[test]
    fn flag_state_reads_two_bits() {
        assert_eq!(FlagState::from_bits(0b00), FlagState::Normal);
        assert_eq!(FlagState::from_bits(0b01), FlagState::Set);
        assert_eq!(FlagState::from_bits(0b10), FlagState::Untrusted);
        assert_eq!(FlagState::from_bits(0b11), FlagState::NotAvailable);
        assert_eq!(FlagState::from_bits(0b101), FlagState::Set, "only two bits");
        assert_eq!(FlagState::Untrusted.bits(), 0b10);
    }

    #[test]
    fn cell_voltage_serde_is_exact() {
        let v = CellVoltage::from_hundredths(365);
        assert_eq!(v.to_string(), "3.65 V");
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"3.65\"");
        assert_eq!(serde_json::from_str::<CellVoltage>("\"3.65\"").unwrap(), v);
        assert!(serde_json::from_str::<CellVoltage>("\"3.655\"").is_err());
        assert!(serde_json::from_str::<CellVoltage>("\"-1\"").is_err());
        assert!(serde_json::from_str::<CellVoltage>("\"x\"").is_err());
    }
}
