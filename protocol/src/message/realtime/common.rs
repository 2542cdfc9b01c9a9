//! Field helpers and value types shared by the chapter 7 frames.

#![allow(unused_imports)]

pub(super) use std::fmt;

pub(super) use rust_decimal::Decimal;
pub(super) use serde::{Deserialize, Serialize};

pub(super) use crate::domain::money::scale;
pub(super) use crate::domain::{
    ConnectorNo, Current, Energy, Money, PileCode, Power, Soc, Temperature, TransactionSerial,
    Voltage,
};
pub(super) use crate::message::{wire_enum, Body};
pub(super) use crate::wire::parse::{
    bytes, code, connector, current, energy as energy_le, money, pile_code, serial, soc,
    temperature, text, u16_le, u32_le, u8_bin, uint_le, voltage, FieldError, PResult,
};
pub(super) use crate::wire::text::FixedText;
pub(super) use crate::wire::write::{BodyWriter, EncodeError};

// ---------------------------------------------------------------------------------------------
// Field helpers private to this chapter
// ---------------------------------------------------------------------------------------------

/// GB/T 27930 BMS currents carry a -400 A offset (raw 0 is -400.0 A).
pub(super) const BMS_CURRENT_OFFSET: i32 = 4000;

/// The largest raw GB/T temperature byte: -50..=+200 °C with the -50 offset.
pub(super) const BMS_TEMPERATURE_MAX_RAW: u8 = 250;
pub(super) const BMS_TEMPERATURE_ALLOWED: &str = "0..=250 (-50..=200 °C)";

/// The largest cell voltage, 24 V at 0.01 V.
pub(super) const CELL_VOLTAGE_MAX: u16 = 2400;
pub(super) const CELL_VOLTAGE_ALLOWED: &str = "0..=2400 (0..=24 V at 0.01 V)";

/// The largest GB/T energy, 1000 kWh at 0.1 kWh.
pub(super) const ENERGY_TENTHS_MAX: u16 = 10_000;
pub(super) const ENERGY_TENTHS_ALLOWED: &str = "0..=10000 (0..=1000 kWh at 0.1 kWh)";
/// Milliwatt-hours in 0.1 kWh.
pub(super) const MWH_PER_TENTH_KWH: i64 = 100_000;

/// The largest GB/T charging or remaining time, minutes.
pub(super) const MINUTES_MAX: u16 = 600;
pub(super) const MINUTES_ALLOWED: &str = "0..=600 min";

/// A little-endian u16 at most `max`.
pub(super) fn u16_upto<'a>(
    field: &'static str,
    max: u16,
    allowed: &'static str,
) -> impl Fn(&'a [u8]) -> PResult<'a, u16> {
    move |i| {
        let (rest, v) = u16_le(field)(i)?;
        if v > max {
            return Err(FieldError::out_of_range(i, field, v as i64, allowed));
        }
        Ok((rest, v))
    }
}

/// One byte at most `max`.
pub(super) fn u8_upto<'a>(
    field: &'static str,
    max: u8,
    allowed: &'static str,
) -> impl Fn(&'a [u8]) -> PResult<'a, u8> {
    move |i| {
        let (rest, v) = u8_bin(field)(i)?;
        if v > max {
            return Err(FieldError::out_of_range(i, field, v as i64, allowed));
        }
        Ok((rest, v))
    }
}

/// A GB/T 27930 temperature: -50 offset, -50..=+200 °C.
pub(super) fn bms_temperature<'a>(
    field: &'static str,
) -> impl Fn(&'a [u8]) -> PResult<'a, Temperature> {
    move |i| {
        let (rest, raw) = u8_upto(field, BMS_TEMPERATURE_MAX_RAW, BMS_TEMPERATURE_ALLOWED)(i)?;
        Ok((rest, Temperature::from_celsius(raw as i16 - 50)))
    }
}

/// A cell voltage at 0.01 V, 0..=24 V.
pub(super) fn cell_voltage<'a>(
    field: &'static str,
) -> impl Fn(&'a [u8]) -> PResult<'a, CellVoltage> {
    move |i| {
        let (rest, v) = u16_upto(field, CELL_VOLTAGE_MAX, CELL_VOLTAGE_ALLOWED)(i)?;
        Ok((rest, CellVoltage::from_hundredths(v)))
    }
}

/// Energy as a u16 at 0.1 kWh, 0..=1000 kWh.
pub(super) fn energy_tenths_kwh<'a>(
    field: &'static str,
) -> impl Fn(&'a [u8]) -> PResult<'a, Energy> {
    move |i| {
        let (rest, v) = u16_upto(field, ENERGY_TENTHS_MAX, ENERGY_TENTHS_ALLOWED)(i)?;
        Ok((rest, Energy::from_mwh(v as i64 * MWH_PER_TENTH_KWH)))
    }
}

/// Writes a u16 that must be at most `max`.
pub(super) fn write_u16_upto(
    w: &mut BodyWriter<'_>,
    field: &'static str,
    v: u16,
    max: u16,
    allowed: &'static str,
) -> Result<(), EncodeError> {
    if v > max {
        return Err(w.error(field, format_args!("{v} is outside {allowed}")));
    }
    w.u16_le(v);
    Ok(())
}

/// Writes a GB/T 27930 temperature (-50..=200 °C).
pub(super) fn write_bms_temperature(
    w: &mut BodyWriter<'_>,
    field: &'static str,
    t: Temperature,
) -> Result<(), EncodeError> {
    if !(-50..=200).contains(&t.celsius()) {
        return Err(w.error(field, format_args!("{t} is outside -50..=200 °C")));
    }
    w.temperature(field, t)
}

/// Writes a cell voltage (0..=24 V at 0.01 V).
pub(super) fn write_cell_voltage(
    w: &mut BodyWriter<'_>,
    field: &'static str,
    v: CellVoltage,
) -> Result<(), EncodeError> {
    write_u16_upto(
        w,
        field,
        v.hundredths(),
        CELL_VOLTAGE_MAX,
        CELL_VOLTAGE_ALLOWED,
    )
}

/// Writes energy as a u16 at 0.1 kWh (0..=1000 kWh); refuses values finer than 0.1 kWh.
pub(super) fn write_energy_tenths_kwh(
    w: &mut BodyWriter<'_>,
    field: &'static str,
    e: Energy,
) -> Result<(), EncodeError> {
    let mwh = e.mwh();
    if mwh % MWH_PER_TENTH_KWH != 0 {
        return Err(w.error(
            field,
            format_args!("{e} is not a multiple of the field's step 0.1 kWh"),
        ));
    }
    let tenths = mwh / MWH_PER_TENTH_KWH;
    if !(0..=ENERGY_TENTHS_MAX as i64).contains(&tenths) {
        return Err(w.error(field, format_args!("{e} is outside 0..=1000 kWh")));
    }
    w.u16_le(tenths as u16);
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Value types
// ---------------------------------------------------------------------------------------------

/// A battery cell voltage in hundredths of a volt (GB/T 27930 cell voltages: 0.01 V per bit,
/// 0..=24 V). JSON form: a decimal string of volts (`"3.65"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct CellVoltage(u16);

impl CellVoltage {
    /// From hundredths of a volt (the wire form).
    pub const fn from_hundredths(v: u16) -> CellVoltage {
        CellVoltage(v)
    }

    /// Hundredths of a volt.
    pub const fn hundredths(self) -> u16 {
        self.0
    }

    /// The exact value in volts.
    pub fn volts(self) -> Decimal {
        Decimal::new(self.0 as i64, 2)
    }
}

impl fmt::Display for CellVoltage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} V", self.volts())
    }
}

impl Serialize for CellVoltage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(&self.volts())
    }
}

impl<'de> Deserialize<'de> for CellVoltage {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        let text = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        let v = Decimal::from_str_exact(text.trim()).map_err(|_| {
            D::Error::custom(format!(
                "'{text}' is not a cell voltage in V; write a decimal number such as 3.65"
            ))
        })?;
        let hundredths = v * Decimal::ONE_HUNDRED;
        if !hundredths.fract().is_zero() {
            return Err(D::Error::custom(format!(
                "{v} V is not a multiple of the field's step 0.01 V"
            )));
        }
        u16::try_from(hundredths)
            .map(CellVoltage)
            .map_err(|_| D::Error::custom(format!("{v} V is outside 0..=655.35 V")))
    }
}

/// A two-bit GB/T 27930 status field (SAE J1939 convention). What `Set` means depends on the
/// field: a timeout occurred, a stop condition was reached, a fault is present.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagState {
    /// `00`: normal / not reached.
    Normal,
    /// `01`: timeout, reached, or fault (per field).
    Set,
    /// `10`: untrusted ("不可信状态").
    Untrusted,
    /// `11`: not available (J1939; the reference does not list it).
    NotAvailable,
}

impl FlagState {
    /// From the low two bits of `bits`.
    pub const fn from_bits(bits: u8) -> FlagState {
        match bits & 0b11 {
            0 => FlagState::Normal,
            1 => FlagState::Set,
            2 => FlagState::Untrusted,
            _ => FlagState::NotAvailable,
        }
    }

    /// The two wire bits.
    pub const fn bits(self) -> u8 {
        self as u8
    }
}

/// Declares a bit-field word of two-bit [`FlagState`] fields: a newtype over the integer (any
/// value accepted, kept as sent) with one accessor per documented field.
macro_rules! flag_word {
    ($(#[$doc:meta])* $name:ident($repr:ty) {
        $( $(#[$fdoc:meta])* $acc:ident @ $shift:literal ),* $(,)?
    }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub $repr);

        impl $name {
            /// All fields normal (all bits zero).
            pub const NONE: $name = $name(0);

            $(
                $(#[$fdoc])*
                pub const fn $acc(self) -> FlagState {
                    FlagState::from_bits((self.0 >> $shift) as u8)
                }
            )*

            /// The raw word.
            pub const fn bits(self) -> $repr {
                self.0
            }

            /// Every documented field with its state, in bit order.
            pub fn fields(self) -> impl Iterator<Item = (&'static str, FlagState)> {
                [$( (stringify!($acc), self.$acc()) ),*].into_iter()
            }

            /// The documented fields that are not `Normal`.
            pub fn active_fields(self) -> impl Iterator<Item = (&'static str, FlagState)> {
                self.fields().filter(|(_, s)| *s != FlagState::Normal)
            }
        }
    };
}
