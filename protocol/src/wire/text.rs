//! Fixed-width text fields (program versions, VINs, BMS names). The bytes are kept exactly as
//! received so re-encoding is byte-exact; the text view trims the padding.

use std::fmt;

use serde::{Deserialize, Serialize};

/// `N` bytes of (usually ASCII) text, padded with NUL bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct FixedText<const N: usize>([u8; N]);

/// Text that does not fit a fixed-width field.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is {len} bytes; the field holds {max} bytes of ASCII")]
pub struct TextTooLong {
    pub text: String,
    pub len: usize,
    pub max: usize,
}

impl<const N: usize> FixedText<N> {
    /// All NUL bytes.
    pub const EMPTY: Self = FixedText([0; N]);

    /// Wraps raw bytes.
    pub const fn from_bytes(b: [u8; N]) -> Self {
        FixedText(b)
    }

    /// Text padded with NUL bytes; fails if longer than `N` or not ASCII.
    pub fn from_text(text: &str) -> Result<Self, TextTooLong> {
        if text.len() > N || !text.is_ascii() {
            return Err(TextTooLong {
                text: text.into(),
                len: text.len(),
                max: N,
            });
        }
        let mut b = [0u8; N];
        b[..text.len()].copy_from_slice(text.as_bytes());
        Ok(FixedText(b))
    }

    /// The raw bytes.
    pub const fn as_bytes(&self) -> &[u8; N] {
        &self.0
    }

    /// The text up to the first NUL, if it is printable ASCII and only NULs follow.
    pub fn as_text(&self) -> Option<&str> {
        let end = self.0.iter().position(|&b| b == 0).unwrap_or(N);
        let (text, pad) = self.0.split_at(end);
        let clean =
            text.iter().all(|b| b.is_ascii_graphic() || *b == b' ') && pad.iter().all(|&b| b == 0);
        clean.then(|| std::str::from_utf8(text).expect("ASCII"))
    }
}

impl<const N: usize> fmt::Debug for FixedText<N> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.as_text() {
            Some(t) => write!(f, "{t:?}"),
            None => write!(f, "0x{}", hex::encode_upper(self.0)),
        }
    }
}

/// JSON form: the text when it is clean padded ASCII, else `"0x"` and the hex of the bytes.
impl<const N: usize> Serialize for FixedText<N> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self.as_text() {
            Some(t) if !t.starts_with("0x") => s.serialize_str(t),
            _ => s.collect_str(&format_args!("0x{}", hex::encode_upper(self.0))),
        }
    }
}

impl<'de, const N: usize> Deserialize<'de> for FixedText<N> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let t = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        if let Some(h) = t.strip_prefix("0x") {
            let v = hex::decode(h).map_err(D::Error::custom)?;
            let b: [u8; N] = v
                .try_into()
                .map_err(|_| D::Error::custom(format!("hex text field must be {N} bytes")))?;
            return Ok(FixedText(b));
        }
        FixedText::from_text(&t).map_err(D::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn padded_ascii_reads_as_text() {
        let t = FixedText::<8>::from_bytes(*b"V4.1.50\0");
        assert_eq!(t.as_text(), Some("V4.1.50"));
        assert_eq!(serde_json::to_string(&t).unwrap(), "\"V4.1.50\"");
    }

    #[test]
    fn binary_survives_json_as_hex() {
        let t = FixedText::<3>::from_bytes([0xFF, 0, 1]);
        let json = serde_json::to_string(&t).unwrap();
        assert_eq!(json, "\"0xFF0001\"");
        assert_eq!(serde_json::from_str::<FixedText<3>>(&json).unwrap(), t);
    }

    #[test]
    fn too_long_text_is_refused() {
        assert!(FixedText::<2>::from_text("abc").is_err());
    }
}
