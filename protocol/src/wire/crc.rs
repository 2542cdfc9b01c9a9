//! CRC-16/MODBUS (reflected polynomial 0xA001, init 0xFFFF, no final xor), the frame
//! checksum. It covers sequence..body and travels low byte first.

use crc::{Crc, CRC_16_MODBUS};

const MODBUS: Crc<u16> = Crc::<u16>::new(&CRC_16_MODBUS);

/// The frame checksum of `bytes` (sequence number through the end of the body).
#[inline]
pub fn checksum(bytes: &[u8]) -> u16 {
    MODBUS.checksum(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_modbus_check_value() {
        // The catalogue check value of CRC-16/MODBUS over "123456789".
        assert_eq!(checksum(b"123456789"), 0x4B37);
    }

    #[test]
    fn empty_input_is_the_init_value() {
        assert_eq!(checksum(&[]), 0xFFFF);
    }
}
