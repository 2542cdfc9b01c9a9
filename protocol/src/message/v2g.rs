//! Voltline's V2G extension, frame types 0xC1..0xCA (PROTOCOL.md, "Voltline V2G extension").
//!
//! Same envelope and encodings as YKC; odd types come from the pile. Powers are at 0.1 kW:
//! the start and setpoint powers are unsigned discharge magnitudes (2 BIN bytes), the meter's
//! active power is signed (4 BIN bytes, negative = discharging, as [`Power`] itself).

use serde::{Deserialize, Serialize};

use crate::domain::{ConnectorNo, Energy, PileCode, Power, Soc, TransactionSerial};
pub use crate::message::common::Outcome;
use crate::message::{wire_enum, Body};
use crate::wire::cp56::Cp56Time;
use crate::wire::parse::{
    code, connector, cp56, energy, i32_le, pile_code, serial, soc, u16_le, u8_bin, PResult,
};
use crate::wire::write::{BodyWriter, EncodeError};

wire_enum!(
    /// Why a pile refused (or could not complete) a discharge start or stop.
    DischargeReason allowed "0 (none), 1 (not V2G-capable), 2 (busy), 3 (not plugged), 4 (SoC at or below floor) or 5 (faulted)" {
        None = 0,
        /// The pile or the vehicle cannot discharge.
        NotV2gCapable = 1,
        Busy = 2,
        NotPlugged = 3,
        /// The vehicle's SoC is at or below the requested floor.
        SocAtOrBelowFloor = 4,
        Faulted = 5,
    }
);

/// Reads a 2-byte unsigned power at 0.1 kW.
fn power_u16<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, Power> {
    move |i| u16_le(field)(i).map(|(r, v)| (r, Power::from_wire_units(v as i64)))
}

/// Reads a 4-byte signed power at 0.1 kW.
fn power_i32<'a>(field: &'static str) -> impl Fn(&'a [u8]) -> PResult<'a, Power> {
    move |i| i32_le(field)(i).map(|(r, v)| (r, Power::from_wire_units(v as i64)))
}

/// Writes a 2-byte unsigned power at 0.1 kW; refuses negatives, values above 6553.5 kW and
/// values finer than 0.1 kW.
fn write_power_u16(
    w: &mut BodyWriter<'_>,
    field: &'static str,
    p: Power,
) -> Result<(), EncodeError> {
    let units = p
        .to_wire_units(0, u16::MAX as i64)
        .map_err(|e| w.error(field, e))?;
    w.u16_le(units as u16);
    Ok(())
}

/// Writes a 4-byte signed power at 0.1 kW.
fn write_power_i32(
    w: &mut BodyWriter<'_>,
    field: &'static str,
    p: Power,
) -> Result<(), EncodeError> {
    let units = p
        .to_wire_units(i32::MIN as i64, i32::MAX as i64)
        .map_err(|e| w.error(field, e))?;
    w.i32_le(units as i32);
    Ok(())
}

/// Bytes of a meter register (5 BIN bytes at 0.0001 kWh).
const REGISTER_BYTES: usize = 5;

/// 0xC2 (platform→pile): start discharging the plugged-in vehicle into the grid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeStart {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    /// The pile stops discharging when the vehicle's SoC reaches this floor.
    #[serde(rename = "soc_floor_pct")]
    pub soc_floor: Soc,
    /// Upper bound of the discharge power (a positive magnitude, 0.1 kW steps, at most
    /// 6553.5 kW).
    #[serde(rename = "max_discharge_power_kw")]
    pub max_discharge_power: Power,
    /// When the pile must stop discharging at the latest (pile wall-clock time).
    pub end_time: Cp56Time,
}

impl Body for DischargeStart {
    const TYPE: u8 = 0xC2;
    const NAME: &'static str = "discharge_start";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, soc_floor) = soc("soc_floor")(i)?;
        let (i, max_discharge_power) = power_u16("max_discharge_power")(i)?;
        let (i, end_time) = cp56("end_time")(i)?;
        Ok((
            i,
            DischargeStart {
                serial,
                pile_code,
                connector,
                soc_floor,
                max_discharge_power,
                end_time,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.soc(self.soc_floor);
        write_power_u16(w, "max_discharge_power", self.max_discharge_power)?;
        w.cp56(&self.end_time);
        Ok(())
    }
}

/// 0xC1 (pile→platform): the pile accepts or refuses a discharge start.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeStartReply {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub result: Outcome,
    /// `None` when the start succeeded.
    pub reason: DischargeReason,
}

impl Body for DischargeStartReply {
    const TYPE: u8 = 0xC1;
    const NAME: &'static str = "discharge_start_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, result) = code("result")(i)?;
        let (i, reason) = code("reason")(i)?;
        Ok((
            i,
            DischargeStartReply {
                serial,
                pile_code,
                connector,
                result,
                reason,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.code(self.result);
        w.code(self.reason);
        Ok(())
    }
}

/// 0xC4 (platform→pile): the discharge power to hold, for at most `valid_for_s` seconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeSetpoint {
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    /// Discharge power to hold: a positive magnitude (0.1 kW steps, at most 6553.5 kW).
    #[serde(rename = "discharge_power_kw")]
    pub discharge_power: Power,
    /// Dead-man time: the pile stops discharging unless a new setpoint arrives within this
    /// many seconds.
    pub valid_for_s: u16,
}

impl Body for DischargeSetpoint {
    const TYPE: u8 = 0xC4;
    const NAME: &'static str = "discharge_setpoint";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, discharge_power) = power_u16("discharge_power")(i)?;
        let (i, valid_for_s) = u16_le("valid_for")(i)?;
        Ok((
            i,
            DischargeSetpoint {
                pile_code,
                connector,
                discharge_power,
                valid_for_s,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        write_power_u16(w, "discharge_power", self.discharge_power)?;
        w.u16_le(self.valid_for_s);
        Ok(())
    }
}

/// 0xC3 (pile→platform): the pile acknowledges a discharge setpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeSetpointReply {
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub result: Outcome,
}

impl Body for DischargeSetpointReply {
    const TYPE: u8 = 0xC3;
    const NAME: &'static str = "discharge_setpoint_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, result) = code("result")(i)?;
        Ok((
            i,
            DischargeSetpointReply {
                pile_code,
                connector,
                result,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.code(self.result);
        Ok(())
    }
}

/// 0xC6 (platform→pile): stop discharging.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeStop {
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
}

impl Body for DischargeStop {
    const TYPE: u8 = 0xC6;
    const NAME: &'static str = "discharge_stop";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        Ok((
            i,
            DischargeStop {
                pile_code,
                connector,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        Ok(())
    }
}

/// 0xC5 (pile→platform): the pile acknowledges a discharge stop.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeStopReply {
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub result: Outcome,
    /// Same table as the start reply's reason (PROTOCOL.md gives no other); `None` on success.
    pub reason: DischargeReason,
}

impl Body for DischargeStopReply {
    const TYPE: u8 = 0xC5;
    const NAME: &'static str = "discharge_stop_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, result) = code("result")(i)?;
        let (i, reason) = code("reason")(i)?;
        Ok((
            i,
            DischargeStopReply {
                pile_code,
                connector,
                result,
                reason,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.code(self.result);
        w.code(self.reason);
        Ok(())
    }
}

/// 0xC7 (pile→platform): bidirectional meter data, sent with every 0x13 while a V2G-capable
/// pile is plugged in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BidirectionalMeter {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    /// Import (grid → vehicle) register, 5 BIN bytes at 0.0001 kWh.
    #[serde(rename = "import_register_kwh")]
    pub import_register: Energy,
    /// Export (vehicle → grid) register, 5 BIN bytes at 0.0001 kWh.
    #[serde(rename = "export_register_kwh")]
    pub export_register: Energy,
    /// Active power, signed: negative while discharging.
    #[serde(rename = "active_power_kw")]
    pub active_power: Power,
    #[serde(rename = "soc_pct")]
    pub soc: Soc,
}

impl Body for BidirectionalMeter {
    const TYPE: u8 = 0xC7;
    const NAME: &'static str = "bidirectional_meter";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, import_register) = energy::<REGISTER_BYTES>("import_register")(i)?;
        let (i, export_register) = energy::<REGISTER_BYTES>("export_register")(i)?;
        let (i, active_power) = power_i32("active_power")(i)?;
        let (i, soc) = soc("soc")(i)?;
        Ok((
            i,
            BidirectionalMeter {
                serial,
                pile_code,
                connector,
                import_register,
                export_register,
                active_power,
                soc,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.energy("import_register", self.import_register, REGISTER_BYTES)?;
        w.energy("export_register", self.export_register, REGISTER_BYTES)?;
        write_power_i32(w, "active_power", self.active_power)?;
        w.soc(self.soc);
        Ok(())
    }
}

/// Why a discharge session ended (0xC9). PROTOCOL.md gives no table for it; since the
/// discharge record mirrors 0x3B, the code is read in the space of the reference's stop-reason
/// table (appendix 13.1). Any byte is accepted and kept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DischargeStopReason(pub u8);

impl DischargeStopReason {
    /// The meaning of the code in appendix 13.1, or `None` for codes it does not assign
    /// (including its reserved codes).
    pub fn describe(self) -> Option<&'static str> {
        Some(match self.0 {
            0x40 => "finished: remote stop from the app",
            0x41 => "finished: SoC reached 100 %",
            0x42 => "finished: energy target reached",
            0x43 => "finished: amount target reached",
            0x44 => "finished: time target reached",
            0x45 => "finished: stopped manually",
            0x4A => "start failed: pile control system fault",
            0x4B => "start failed: control pilot disconnected",
            0x4C => "start failed: circuit breaker tripped",
            0x4D => "start failed: meter communication lost",
            0x4E => "start failed: insufficient balance",
            0x4F => "start failed: power module fault",
            0x50 => "start failed: emergency stop",
            0x51 => "start failed: surge protector fault",
            0x52 => "start failed: BMS not ready",
            0x53 => "start failed: temperature fault",
            0x54 => "start failed: battery polarity reversed",
            0x55 => "start failed: electronic lock fault",
            0x56 => "start failed: contactor failed to close",
            0x57 => "start failed: insulation fault",
            0x59 => "start failed: BMS handshake (BHM) timeout",
            0x5A => "start failed: BMS and vehicle identification (BRM) timeout",
            0x5B => "start failed: battery charging parameters (BCP) timeout",
            0x5C => "start failed: BMS ready (BRO AA) timeout",
            0x5D => "start failed: battery charging status (BCS) timeout",
            0x5E => "start failed: battery charging demand (BCL) timeout",
            0x5F => "start failed: battery status (BSM) timeout",
            0x60 => "start failed: GB2015 battery voltage present at BHM stage",
            0x61 => {
                "start failed: GB2015 battery voltage differs from BCP by more than 5 % at BRO_AA"
            }
            0x62 => "start failed: GB2015 BRO_AA changed to BRO_00 during precharge",
            0x63 => "start failed: host configuration timeout",
            0x64 => "start failed: charger not ready (no CRO AA, old GB/T)",
            0x6A => "aborted: system locked",
            0x6B => "aborted: control pilot disconnected",
            0x6C => "aborted: circuit breaker tripped",
            0x6D => "aborted: meter communication lost",
            0x6E => "aborted: insufficient balance",
            0x6F => "aborted: AC protection",
            0x70 => "aborted: DC protection",
            0x71 => "aborted: power module fault",
            0x72 => "aborted: emergency stop",
            0x73 => "aborted: surge protector fault",
            0x74 => "aborted: temperature fault",
            0x75 => "aborted: output fault",
            0x76 => "aborted: no current",
            0x77 => "aborted: electronic lock fault",
            0x79 => "aborted: total voltage fault",
            0x7A => "aborted: total current fault",
            0x7B => "aborted: cell voltage fault",
            0x7C => "aborted: battery pack over-temperature",
            0x7D => "aborted: highest cell voltage fault",
            0x7E => "aborted: highest battery pack over-temperature",
            0x7F => "aborted: BMV cell voltage fault",
            0x80 => "aborted: BMT battery pack over-temperature",
            0x81 => "aborted: battery status fault",
            0x82 => "aborted: vehicle forbade charging",
            0x83 => "aborted: pile lost power",
            0x84 => "aborted: battery charging status (BCS) timeout",
            0x85 => "aborted: battery charging demand (BCL) timeout",
            0x86 => "aborted: battery status (BSM) timeout",
            0x87 => "aborted: BMS stop (BST) timeout",
            0x88 => "aborted: BMS statistics (BSD) timeout",
            0x89 => "aborted: CCS timeout",
            0x90 => "stopped for an unknown reason",
            _ => return None,
        })
    }
}

/// 0xC9 (pile→platform): the record of a finished discharge session (the export counterpart
/// of 0x3B); the platform confirms it with 0xCA.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeRecord {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub start_time: Cp56Time,
    pub end_time: Cp56Time,
    /// Export register at the start, 5 BIN bytes at 0.0001 kWh.
    #[serde(rename = "export_register_start_kwh")]
    pub export_register_start: Energy,
    /// Export register at the end, 5 BIN bytes at 0.0001 kWh.
    #[serde(rename = "export_register_end_kwh")]
    pub export_register_end: Energy,
    /// Energy exported in the session, 4 BIN bytes at 0.0001 kWh. Kept as sent: it is not
    /// checked against the registers (see [`DischargeRecord::register_delta`]).
    #[serde(rename = "exported_energy_kwh")]
    pub exported_energy: Energy,
    pub stop_reason: DischargeStopReason,
}

impl DischargeRecord {
    /// The end register less the start register (negative if the pile's registers went
    /// backwards).
    pub fn register_delta(&self) -> Energy {
        self.export_register_end - self.export_register_start
    }
}

impl Body for DischargeRecord {
    const TYPE: u8 = 0xC9;
    const NAME: &'static str = "discharge_record";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, start_time) = cp56("start_time")(i)?;
        let (i, end_time) = cp56("end_time")(i)?;
        let (i, export_register_start) = energy::<REGISTER_BYTES>("export_register_start")(i)?;
        let (i, export_register_end) = energy::<REGISTER_BYTES>("export_register_end")(i)?;
        let (i, exported_energy) = energy::<4>("exported_energy")(i)?;
        let (i, stop_reason) = u8_bin("stop_reason")(i)?;
        Ok((
            i,
            DischargeRecord {
                serial,
                pile_code,
                connector,
                start_time,
                end_time,
                export_register_start,
                export_register_end,
                exported_energy,
                stop_reason: DischargeStopReason(stop_reason),
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.cp56(&self.start_time);
        w.cp56(&self.end_time);
        w.energy(
            "export_register_start",
            self.export_register_start,
            REGISTER_BYTES,
        )?;
        w.energy(
            "export_register_end",
            self.export_register_end,
            REGISTER_BYTES,
        )?;
        w.energy("exported_energy", self.exported_energy, 4)?;
        w.u8(self.stop_reason.0);
        Ok(())
    }
}

/// 0xCA (platform→pile): the platform confirms a discharge record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DischargeRecordAck {
    pub serial: TransactionSerial,
    /// PROTOCOL.md's result table: 0 failed, 1 succeeded (note: the opposite polarity of
    /// 0x40, where 0 means accepted).
    pub result: Outcome,
}

impl Body for DischargeRecordAck {
    const TYPE: u8 = 0xCA;
    const NAME: &'static str = "discharge_record_ack";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, result) = code("result")(i)?;
        Ok((i, DischargeRecordAck { serial, result }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.code(self.result);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reason_describes_appendix_codes() {
        assert_eq!(
            DischargeStopReason(0x40).describe(),
            Some("finished: remote stop from the app")
        );
        assert_eq!(
            DischargeStopReason(0x90).describe(),
            Some("stopped for an unknown reason")
        );
        assert_eq!(DischargeStopReason(0x46).describe(), None, "reserved");
        assert_eq!(DischargeStopReason(0x00).describe(), None);
        assert_eq!(DischargeStopReason(0xFF).describe(), None);
    }
}
