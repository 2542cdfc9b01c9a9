//! `BodyWriter`: writes message fields with `bytes`. Conversions from domain values to wire
//! fields are checked: a value the field cannot carry exactly is an [`EncodeError`], never
//! truncated.

use bytes::{BufMut, BytesMut};

use crate::domain::{
    ConnectorNo, Current, Energy, Money, PileCode, Soc, Temperature, TransactionSerial, Voltage,
};
use crate::wire::bcd::Bcd;
use crate::wire::cp56::Cp56Time;
use crate::wire::parse::WireCode;
use crate::wire::text::FixedText;

/// A message that cannot be encoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EncodeError {
    /// A field's value does not fit the wire form.
    #[error("frame {frame}: field '{field}' cannot be encoded: {reason}")]
    Field {
        frame: &'static str,
        field: &'static str,
        reason: String,
    },
    /// The body is longer than a frame can carry.
    #[error("frame {frame}: body of {len} bytes exceeds the protocol's maximum of {max}")]
    TooLong {
        frame: &'static str,
        len: usize,
        max: usize,
    },
}

/// Writes a body into a buffer, remembering the frame name for errors.
pub struct BodyWriter<'a> {
    buf: &'a mut BytesMut,
    frame: &'static str,
}

impl<'a> BodyWriter<'a> {
    /// A writer for the body of `frame` appending to `buf`.
    pub fn new(buf: &'a mut BytesMut, frame: &'static str) -> Self {
        BodyWriter { buf, frame }
    }

    /// An error for `field`.
    pub fn error(&self, field: &'static str, reason: impl std::fmt::Display) -> EncodeError {
        EncodeError::Field {
            frame: self.frame,
            field,
            reason: reason.to_string(),
        }
    }

    /// Raw bytes.
    pub fn bytes(&mut self, b: &[u8]) {
        self.buf.put_slice(b);
    }

    /// One byte.
    pub fn u8(&mut self, v: u8) {
        self.buf.put_u8(v);
    }

    /// Little-endian u16.
    pub fn u16_le(&mut self, v: u16) {
        self.buf.put_u16_le(v);
    }

    /// Little-endian u32.
    pub fn u32_le(&mut self, v: u32) {
        self.buf.put_u32_le(v);
    }

    /// Little-endian i32.
    pub fn i32_le(&mut self, v: i32) {
        self.buf.put_i32_le(v);
    }

    /// Little-endian unsigned integer in `n` bytes; fails if it does not fit.
    pub fn uint_le(&mut self, field: &'static str, v: u64, n: usize) -> Result<(), EncodeError> {
        assert!((1..=8).contains(&n));
        if n < 8 && v >> (8 * n) != 0 {
            return Err(self.error(field, format_args!("{v} does not fit in {n} bytes")));
        }
        self.buf.put_slice(&v.to_le_bytes()[..n]);
        Ok(())
    }

    /// Packed BCD bytes.
    pub fn bcd<const N: usize>(&mut self, v: &Bcd<N>) {
        self.buf.put_slice(v.as_bytes());
    }

    /// A number as `N` BCD bytes; fails above `2 * N` digits.
    pub fn bcd_number<const N: usize>(
        &mut self,
        field: &'static str,
        v: u64,
    ) -> Result<(), EncodeError> {
        let b = crate::wire::bcd::encode_value::<N>(v)
            .ok_or_else(|| self.error(field, format_args!("{v} has more than {} digits", 2 * N)))?;
        self.buf.put_slice(&b);
        Ok(())
    }

    /// A pile code.
    pub fn pile_code(&mut self, p: &PileCode) {
        self.buf.put_slice(p.as_bytes());
    }

    /// A connector number.
    pub fn connector(&mut self, c: ConnectorNo) {
        self.buf.put_u8(c.to_bcd());
    }

    /// A transaction serial.
    pub fn serial(&mut self, s: &TransactionSerial) {
        self.buf.put_slice(s.as_bytes());
    }

    /// A CP56Time2a timestamp.
    pub fn cp56(&mut self, t: &Cp56Time) {
        self.buf.put_slice(t.as_bytes());
    }

    /// A fixed-width text field.
    pub fn text<const N: usize>(&mut self, t: &FixedText<N>) {
        self.buf.put_slice(t.as_bytes());
    }

    /// A one-byte code.
    pub fn code<T: WireCode>(&mut self, v: T) {
        self.buf.put_u8(v.to_wire());
    }

    /// A 0/1 flag.
    pub fn flag(&mut self, v: bool) {
        self.buf.put_u8(v as u8);
    }

    /// Money at 10^-`scale` yuan as an unsigned integer of `n` bytes.
    pub fn money(
        &mut self,
        field: &'static str,
        m: Money,
        scale: u32,
        n: usize,
    ) -> Result<(), EncodeError> {
        let max = if n >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * n)) - 1
        };
        let units = m
            .to_scaled_unsigned(scale, max)
            .map_err(|e| self.error(field, e))?;
        self.uint_le(field, units, n)
    }

    /// Energy at 0.0001 kWh as an unsigned integer of `n` bytes.
    pub fn energy(&mut self, field: &'static str, e: Energy, n: usize) -> Result<(), EncodeError> {
        let max = if n >= 8 {
            u64::MAX
        } else {
            (1u64 << (8 * n)) - 1
        };
        let units = e.to_wire_units(max).map_err(|err| self.error(field, err))?;
        self.uint_le(field, units, n)
    }

    /// Voltage at 0.1 V as a little-endian u16.
    pub fn voltage(&mut self, field: &'static str, v: Voltage) -> Result<(), EncodeError> {
        let t = u16::try_from(v.tenths())
            .map_err(|_| self.error(field, format_args!("{v} is above 6553.5 V")))?;
        self.buf.put_u16_le(t);
        Ok(())
    }

    /// Current at 0.1 A plus `offset_tenths`, as a little-endian u16.
    pub fn current(
        &mut self,
        field: &'static str,
        c: Current,
        offset_tenths: i32,
    ) -> Result<(), EncodeError> {
        let raw = c.tenths() + offset_tenths;
        let t = u16::try_from(raw)
            .map_err(|_| self.error(field, format_args!("{c} is outside the field's range")))?;
        self.buf.put_u16_le(t);
        Ok(())
    }

    /// A temperature with the -50 °C offset.
    pub fn temperature(&mut self, field: &'static str, t: Temperature) -> Result<(), EncodeError> {
        let raw = u8::try_from(t.celsius() + 50)
            .map_err(|_| self.error(field, format_args!("{t} is outside -50..=205 °C")))?;
        self.buf.put_u8(raw);
        Ok(())
    }

    /// A state of charge.
    pub fn soc(&mut self, s: Soc) {
        self.buf.put_u8(s.percent());
    }
}
