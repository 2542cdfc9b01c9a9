//! Packed BCD: two decimal digits per byte, most significant digit first, left-padded with
//! zeros. `Bcd<N>` holds `N` bytes that are known to be valid digits, so turning it back into
//! bytes is infallible and byte-exact.

use std::fmt;
use std::str::FromStr;

/// A nibble above 9 (or a non-digit character in text form).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("byte {index} (0x{byte:02X}) is not packed BCD: each half must be 0-9")]
pub struct BadBcd {
    /// Index of the offending byte within the field.
    pub index: usize,
    /// The byte.
    pub byte: u8,
}

/// Why a text could not become a BCD field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BcdTextError {
    /// More digits than the field holds.
    #[error("'{text}' has {len} digits; this field holds at most {max}")]
    TooLong {
        text: String,
        len: usize,
        max: usize,
    },
    /// A character that is not 0-9.
    #[error("'{text}' contains a character that is not a digit 0-9")]
    NotDigits { text: String },
}

/// True when every nibble of `bytes` is 0-9.
#[inline]
pub fn is_valid(bytes: &[u8]) -> bool {
    first_invalid(bytes).is_none()
}

/// Index of the first byte with a nibble above 9, if any.
#[inline]
pub fn first_invalid(bytes: &[u8]) -> Option<usize> {
    // Word-at-a-time check: a nibble x > 9 iff (x + 6) carries into bit 4.
    const LO: u64 = 0x0F0F_0F0F_0F0F_0F0F;
    const SIX: u64 = 0x0606_0606_0606_0606;
    const CARRY: u64 = 0x1010_1010_1010_1010;
    let mut chunks = bytes.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let w = u64::from_le_bytes(chunk.try_into().expect("chunk of 8"));
        let bad = (((w & LO) + SIX) | (((w >> 4) & LO) + SIX)) & CARRY;
        if bad != 0 {
            return Some(base + (bad.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks
        .remainder()
        .iter()
        .position(|&b| (b & 0x0F) > 9 || (b >> 4) > 9)
        .map(|i| base + i)
}

/// The decimal value of one packed BCD byte (0x42 → 42), if valid.
#[inline]
pub fn byte_value(b: u8) -> Option<u8> {
    let (hi, lo) = (b >> 4, b & 0x0F);
    (hi <= 9 && lo <= 9).then_some(hi * 10 + lo)
}

/// The packed BCD byte for 0..=99 (42 → 0x42).
#[inline]
pub const fn byte_of(v: u8) -> u8 {
    assert!(v <= 99);
    ((v / 10) << 4) | (v % 10)
}

/// The decimal value of up to 9 BCD bytes, if every nibble is a digit.
pub fn value(bytes: &[u8]) -> Option<u64> {
    debug_assert!(bytes.len() <= 9, "u64 holds at most 18 BCD digits");
    let mut v: u64 = 0;
    for &b in bytes {
        v = v * 100 + byte_value(b)? as u64;
    }
    Some(v)
}

/// Writes `v` as `N` BCD bytes, or `None` if it needs more than `2 * N` digits.
pub fn encode_value<const N: usize>(mut v: u64) -> Option<[u8; N]> {
    let mut out = [0u8; N];
    for slot in out.iter_mut().rev() {
        *slot = byte_of((v % 100) as u8);
        v /= 100;
    }
    (v == 0).then_some(out)
}

/// `N` bytes of valid packed BCD (`2 * N` digits).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Bcd<const N: usize>([u8; N]);

impl<const N: usize> Bcd<N> {
    /// All zeros.
    pub const ZERO: Self = Bcd([0; N]);

    /// Wraps bytes after checking every nibble.
    pub fn from_bytes(bytes: [u8; N]) -> Result<Self, BadBcd> {
        match first_invalid(&bytes) {
            None => Ok(Bcd(bytes)),
            Some(index) => Err(BadBcd {
                index,
                byte: bytes[index],
            }),
        }
    }

    /// The packed bytes.
    pub const fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }

    /// True when all digits are zero.
    pub fn is_zero(&self) -> bool {
        self.0.iter().all(|&b| b == 0)
    }

    /// The digit at `i` (0 is the most significant).
    pub fn digit(&self, i: usize) -> u8 {
        let b = self.0[i / 2];
        if i.is_multiple_of(2) {
            b >> 4
        } else {
            b & 0x0F
        }
    }

    /// Writes the `2 * N` digits into `out`.
    pub fn write_digits(&self, out: &mut String) {
        for &b in &self.0 {
            out.push((b'0' + (b >> 4)) as char);
            out.push((b'0' + (b & 0x0F)) as char);
        }
    }
}

impl<const N: usize> fmt::Display for Bcd<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = String::with_capacity(2 * N);
        self.write_digits(&mut s);
        f.write_str(&s)
    }
}

impl<const N: usize> fmt::Debug for Bcd<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Bcd({self})")
    }
}

/// Parses up to `2 * N` digits, left-padding with zeros as the protocol does.
impl<const N: usize> FromStr for Bcd<N> {
    type Err = BcdTextError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let digits = s.trim().as_bytes();
        if !digits.iter().all(u8::is_ascii_digit) || digits.is_empty() {
            return Err(BcdTextError::NotDigits { text: s.into() });
        }
        if digits.len() > 2 * N {
            return Err(BcdTextError::TooLong {
                text: s.into(),
                len: digits.len(),
                max: 2 * N,
            });
        }
        let mut out = [0u8; N];
        let pad = 2 * N - digits.len();
        for (i, &d) in digits.iter().enumerate() {
            let pos = pad + i;
            let nibble = d - b'0';
            if pos.is_multiple_of(2) {
                out[pos / 2] |= nibble << 4;
            } else {
                out[pos / 2] |= nibble;
            }
        }
        Ok(Bcd(out))
    }
}

impl<const N: usize> serde::Serialize for Bcd<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de, const N: usize> serde::Deserialize<'de> for Bcd<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn word_check_finds_the_bad_byte() {
        let mut bytes = [0x12u8; 16];
        assert_eq!(first_invalid(&bytes), None);
        for i in 0..16 {
            bytes = [0x99; 16];
            bytes[i] = 0x9A;
            assert_eq!(first_invalid(&bytes), Some(i));
            bytes[i] = 0xA9;
            assert_eq!(first_invalid(&bytes), Some(i));
        }
    }

    #[test]
    fn text_is_left_padded() {
        let b: Bcd<7> = "55031412782305".parse().unwrap();
        assert_eq!(b.as_bytes(), &[0x55, 0x03, 0x14, 0x12, 0x78, 0x23, 0x05]);
        let short: Bcd<2> = "1".parse().unwrap();
        assert_eq!(short.as_bytes(), &[0x00, 0x01]);
        assert!("123".parse::<Bcd<1>>().is_err());
        assert!("12a".parse::<Bcd<2>>().is_err());
    }

    #[test]
    fn values_round_trip() {
        assert_eq!(value(&[0x01, 0x00]), Some(100));
        assert_eq!(encode_value::<2>(100), Some([0x01, 0x00]));
        assert_eq!(encode_value::<1>(100), None);
        assert_eq!(value(&[0x1A]), None);
    }

    proptest! {
        #[test]
        fn word_check_agrees_with_bytewise(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
            let slow = bytes.iter().position(|&b| (b & 0x0F) > 9 || (b >> 4) > 9);
            prop_assert_eq!(first_invalid(&bytes), slow);
        }

        #[test]
        fn text_round_trips(v in 0u64..100_000_000_000_000) {
            let text = format!("{v:014}");
            let b: Bcd<7> = text.parse().unwrap();
            prop_assert_eq!(b.to_string(), text);
            prop_assert_eq!(value(b.as_bytes()), Some(v));
        }
    }
}
