//! `nom` field parsers for message bodies.
//!
//! Every parser takes the field's name, so an error can say which field failed; the error
//! keeps the input remaining at the failure, from which the frame decoder computes the byte
//! offset. A body parser is a plain sequence of these:
//!
//! ```ignore
//! fn parse(i: &[u8]) -> PResult<'_, Heartbeat> {
//!     let (i, pile) = pile_code("pile_code")(i)?;
//!     let (i, connector) = connector("connector")(i)?;
//!     let (i, status) = code::<GunStatus>("status")(i)?;
//!     Ok((i, Heartbeat { pile, connector, status }))
//! }
//! ```
//!
//! Values convert to domain types exactly or fail: a nibble above 9, a code outside its
//! table, a percentage above 100 are errors, never clamped.

use nom::error::{ErrorKind, ParseError};
use nom::{Err, IResult};

use crate::domain::{
    ConnectorNo, Current, Energy, Money, PileCode, Soc, Temperature, TransactionSerial, Voltage,
};
use crate::wire::bcd::{self, Bcd};
use crate::wire::cp56::Cp56Time;
use crate::wire::text::FixedText;

/// What is wrong with a body field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldErrorKind {
    /// The body ends before the field does.
    Truncated { needed: usize },
    /// A BCD field with a nibble above 9.
    BadBcd { byte: u8 },
    /// A value outside what the field allows.
    OutOfRange { value: i64, allowed: &'static str },
    /// A structural rule of the body (e.g. a count that disagrees with the length).
    Invalid { reason: &'static str },
}

/// A field that failed, with the input remaining where it failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FieldError<'a> {
    /// The input from the start of the failing field (or the byte at fault within it, as
    /// `fault_at` says).
    pub rest: &'a [u8],
    /// Bytes from `rest` to the byte at fault.
    pub fault_at: usize,
    /// The field's name.
    pub field: &'static str,
    /// What is wrong.
    pub kind: FieldErrorKind,
}

impl<'a> FieldError<'a> {
    /// An error at the start of `rest`.
    pub fn new(rest: &'a [u8], field: &'static str, kind: FieldErrorKind) -> Self {
        FieldError {
            rest,
            fault_at: 0,
            field,
            kind,
        }
    }

    /// A value out of range at the start of `rest`, as a nom failure.
    pub fn out_of_range(
        rest: &'a [u8],
        field: &'static str,
        value: i64,
        allowed: &'static str,
    ) -> Err<Self> {
        Err::Failure(FieldError::new(
            rest,
            field,
            FieldErrorKind::OutOfRange { value, allowed },
        ))
    }

    /// A structural error at the start of `rest`, as a nom failure.
    pub fn invalid(rest: &'a [u8], field: &'static str, reason: &'static str) -> Err<Self> {
        Err::Failure(FieldError::new(
            rest,
            field,
            FieldErrorKind::Invalid { reason },
        ))
    }
}

impl<'a> ParseError<&'a [u8]> for FieldError<'a> {
    fn from_error_kind(input: &'a [u8], _kind: ErrorKind) -> Self {
        FieldError::new(input, "body", FieldErrorKind::Truncated { needed: 1 })
    }

    fn append(_input: &'a [u8], _kind: ErrorKind, other: Self) -> Self {
        other
    }
}

/// The result type of every body parser.
pub type PResult<'a, T> = IResult<&'a [u8], T, FieldError<'a>>;

/// `N` raw bytes.
#[inline]
pub fn bytes<'a, const N: usize>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, [u8; N]> {
    move |i: &'a [u8]| match i.split_first_chunk::<N>() {
        Some((head, rest)) => Ok((rest, *head)),
        None => Err(Err::Error(FieldError::new(
            i,
            field,
            FieldErrorKind::Truncated {
                needed: N - i.len(),
            },
        ))),
    }
}

/// A variable number of raw bytes.
pub fn take<'a>(field: &'static str, n: usize) -> impl Fn(&'a [u8]) -> PResult<'a, &'a [u8]> {
    move |i: &'a [u8]| {
        if i.len() >= n {
            Ok((&i[n..], &i[..n]))
        } else {
            Err(Err::Error(FieldError::new(
                i,
                field,
                FieldErrorKind::Truncated {
                    needed: n - i.len(),
                },
            )))
        }
    }
}

/// One BIN byte.
#[inline]
pub fn u8_bin<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, u8> {
    move |i| bytes::<1>(field)(i).map(|(r, b)| (r, b[0]))
}

/// A little-endian u16.
#[inline]
pub fn u16_le<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, u16> {
    move |i| bytes::<2>(field)(i).map(|(r, b)| (r, u16::from_le_bytes(b)))
}

/// A little-endian u32.
#[inline]
pub fn u32_le<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, u32> {
    move |i| bytes::<4>(field)(i).map(|(r, b)| (r, u32::from_le_bytes(b)))
}

/// A little-endian i32.
#[inline]
pub fn i32_le<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, i32> {
    move |i| bytes::<4>(field)(i).map(|(r, b)| (r, i32::from_le_bytes(b)))
}

/// A little-endian unsigned integer of `N` (1..=8) bytes, e.g. 5-byte meter registers.
#[inline]
pub fn uint_le<'a, const N: usize>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, u64> {
    const { assert!(N >= 1 && N <= 8) };
    move |i| {
        bytes::<N>(field)(i).map(|(r, b)| {
            let mut full = [0u8; 8];
            full[..N].copy_from_slice(&b);
            (r, u64::from_le_bytes(full))
        })
    }
}

/// `N` bytes of packed BCD.
#[inline]
pub fn bcd_field<'a, const N: usize>(
    field: &'static str,
) -> impl Fn(&'a [u8]) -> PResult<'a, Bcd<N>> {
    move |i| {
        let (rest, b) = bytes::<N>(field)(i)?;
        Bcd::from_bytes(b).map(|v| (rest, v)).map_err(|bad| {
            Err::Failure(FieldError {
                rest: i,
                fault_at: bad.index,
                field,
                kind: FieldErrorKind::BadBcd { byte: bad.byte },
            })
        })
    }
}

/// `N` bytes of packed BCD read as a decimal number (e.g. a billing model number).
#[inline]
pub fn bcd_number<'a, const N: usize>(
    field: &'static str,
) -> impl Fn(&'a [u8]) -> PResult<'a, u64> {
    move |i| {
        let (rest, b) = bcd_field::<N>(field)(i)?;
        Ok((rest, bcd::value(b.as_bytes()).expect("validated BCD")))
    }
}

/// A pile code (7 BCD bytes).
#[inline]
pub fn pile_code<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, PileCode> {
    move |i| bcd_field::<7>(field)(i).map(|(r, b)| (r, PileCode(b)))
}

/// A connector number (1 BCD byte).
#[inline]
pub fn connector<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, ConnectorNo> {
    move |i| {
        let (rest, b) = bcd_field::<1>(field)(i)?;
        let n = bcd::byte_value(b.as_bytes()[0]).expect("validated BCD");
        Ok((
            rest,
            ConnectorNo::new(n).expect("two BCD digits are at most 99"),
        ))
    }
}

/// A transaction serial (16 BCD bytes).
#[inline]
pub fn serial<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, TransactionSerial> {
    move |i| bcd_field::<16>(field)(i).map(|(r, b)| (r, TransactionSerial(b)))
}

/// A CP56Time2a timestamp.
pub fn cp56<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, Cp56Time> {
    move |i| {
        let (rest, b) = bytes::<7>(field)(i)?;
        Cp56Time::from_bytes(b).map(|t| (rest, t)).map_err(|bad| {
            Err::Failure(FieldError {
                rest: i,
                fault_at: bad.index,
                field,
                kind: FieldErrorKind::OutOfRange {
                    value: bad.value as i64,
                    allowed: bad.allowed,
                },
            })
        })
    }
}

/// A fixed-width text field (ASCII, padded with NUL or '0').
pub fn text<'a, const N: usize>(
    field: &'static str,
) -> impl Fn(&'a [u8]) -> PResult<'a, FixedText<N>> {
    move |i| bytes::<N>(field)(i).map(|(r, b)| (r, FixedText::from_bytes(b)))
}

/// A one-byte code converted through its table; a byte outside the table is out of range.
#[inline]
pub fn code<'a, T>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, T>
where
    T: TryFrom<u8> + WireCode,
{
    move |i| {
        let (rest, b) = u8_bin(field)(i)?;
        match T::try_from(b) {
            Ok(v) => Ok((rest, v)),
            Err(_) => Err(FieldError::out_of_range(i, field, b as i64, T::ALLOWED)),
        }
    }
}

/// A one-byte code type: says what values it allows, for error messages.
pub trait WireCode: Copy {
    /// The allowed values, e.g. `"0 (ok) or 1 (fault)"`.
    const ALLOWED: &'static str;
    /// The wire byte.
    fn to_wire(self) -> u8;
}

/// A 0/1 flag byte.
#[inline]
pub fn flag<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, bool> {
    move |i| {
        let (rest, b) = u8_bin(field)(i)?;
        match b {
            0 => Ok((rest, false)),
            1 => Ok((rest, true)),
            _ => Err(FieldError::out_of_range(i, field, b as i64, "0 or 1")),
        }
    }
}

/// Money as an unsigned little-endian integer of `N` bytes at 10^-`scale` yuan.
#[inline]
pub fn money<'a, const N: usize>(
    field: &'static str,
    scale: u32,
) -> impl Fn(&'a [u8]) -> PResult<'a, Money> {
    move |i| {
        let (rest, v) = uint_le::<N>(field)(i)?;
        Ok((rest, Money::from_scaled(v as i64, scale)))
    }
}

/// Energy as an unsigned little-endian integer of `N` bytes at 0.0001 kWh.
#[inline]
pub fn energy<'a, const N: usize>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, Energy> {
    move |i| {
        let (rest, v) = uint_le::<N>(field)(i)?;
        Ok((rest, Energy::from_wire_units(v)))
    }
}

/// Voltage as a little-endian u16 at 0.1 V.
#[inline]
pub fn voltage<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, Voltage> {
    move |i| u16_le(field)(i).map(|(r, v)| (r, Voltage::from_tenths(v as u32)))
}

/// Current as a little-endian u16 at 0.1 A, minus `offset_tenths` (GB/T 27930 currents carry
/// a -400 A offset: pass 4000; plain currents pass 0).
#[inline]
pub fn current<'a>(
    field: &'static str,
    offset_tenths: i32,
) -> impl Fn(&'a [u8]) -> PResult<'a, Current> {
    move |i| u16_le(field)(i).map(|(r, v)| (r, Current::from_tenths(v as i32 - offset_tenths)))
}

/// A temperature byte with the protocol's -50 °C offset.
#[inline]
pub fn temperature<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, Temperature> {
    move |i| u8_bin(field)(i).map(|(r, v)| (r, Temperature::from_celsius(v as i16 - 50)))
}

/// A state-of-charge byte, 0..=100.
#[inline]
pub fn soc<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, Soc> {
    move |i| {
        let (rest, v) = u8_bin(field)(i)?;
        match Soc::new(v) {
            Some(s) => Ok((rest, s)),
            None => Err(FieldError::out_of_range(i, field, v as i64, "0..=100 %")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn truncation_reports_the_field_and_the_shortfall() {
        let err = u32_le("amount")(&[1, 2]).unwrap_err();
        match err {
            Err::Error(e) => {
                assert_eq!(e.field, "amount");
                assert_eq!(e.kind, FieldErrorKind::Truncated { needed: 2 });
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn bad_bcd_points_at_the_byte() {
        let input = [0x12, 0x34, 0x5F, 0, 0, 0, 0];
        let result = pile_code("pile_code")(&input);
        match result.unwrap_err() {
            Err::Failure(e) => {
                assert_eq!(e.fault_at, 2);
                assert_eq!(e.kind, FieldErrorKind::BadBcd { byte: 0x5F });
            }
            other => panic!("unexpected {other:?}"),
        };
    }

    #[test]
    fn five_byte_registers_read_little_endian() {
        let (rest, v) = uint_le::<5>("r")(&[1, 0, 0, 0, 1, 9]).unwrap();
        assert_eq!(v, 1 + (1 << 32));
        assert_eq!(rest, &[9]);
    }

    #[test]
    fn soc_above_100_is_out_of_range() {
        assert!(soc("soc")(&[100]).is_ok());
        assert!(matches!(
            soc("soc")(&[101]),
            Err(Err::Failure(FieldError {
                kind: FieldErrorKind::OutOfRange { value: 101, .. },
                ..
            }))
        ));
    }
}
