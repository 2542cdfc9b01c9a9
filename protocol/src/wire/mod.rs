//! Wire encodings used inside frame bodies: packed BCD, CP56Time2a, fixed-width text, the
//! CRC, and the `nom` field parsers / `bytes` field writers built on them.

pub mod bcd;
pub mod cp56;
pub mod crc;
pub mod fixed_array;
pub mod parse;
pub mod text;
pub mod write;
