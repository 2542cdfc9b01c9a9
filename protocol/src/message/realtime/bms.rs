//! What the BMS asks for and reports while charging: 0x23 BMS demand, 0x25 BMS information.

use super::common::*;

// ---------------------------------------------------------------------------------------------
// 0x23: BMS demand and charger output
// ---------------------------------------------------------------------------------------------

wire_enum!(
    /// The charging mode the BMS asks for (GB/T 27930 BCL).
    ChargingMode allowed "0 (not reported), 1 (constant voltage) or 2 (constant current)" {
        /// 0x00: not in the reference's table, but its own sample sends it: no BCL yet.
        NotReported = 0,
        ConstantVoltage = 1,
        ConstantCurrent = 2,
    }
);

/// 0x23 (pile→platform, every 15 s while charging): what the BMS asks for (BCL), what it
/// measures (BCS), and what the pile delivers (CCS).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmsDemand {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    #[serde(rename = "voltage_demand_v")]
    pub voltage_demand: Voltage,
    #[serde(rename = "current_demand_a")]
    pub current_demand: Current,
    pub charging_mode: ChargingMode,
    /// Charging voltage measured by the BMS.
    #[serde(rename = "measured_voltage_v")]
    pub measured_voltage: Voltage,
    /// Charging current measured by the BMS.
    #[serde(rename = "measured_current_a")]
    pub measured_current: Current,
    /// Highest cell voltage, 0..=24 V (bits 1-12 of the shared word).
    #[serde(rename = "max_cell_voltage_v")]
    pub max_cell_voltage: CellVoltage,
    /// Group of the highest cell, 0..=15 (bits 13-16 of the shared word).
    pub max_cell_voltage_group: u8,
    #[serde(rename = "soc_pct")]
    pub soc: Soc,
    /// The BMS's estimate of the time to full, 0..=600 min.
    pub remaining_time_min: u16,
    #[serde(rename = "output_voltage_v")]
    pub output_voltage: Voltage,
    #[serde(rename = "output_current_a")]
    pub output_current: Current,
    /// 0..=600 min.
    pub charging_time_min: u16,
}

/// Bytes in a 0x23 body.
pub const BMS_DEMAND_LEN: usize = 44;

impl Body for BmsDemand {
    const TYPE: u8 = 0x23;
    const NAME: &'static str = "bms_demand";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, voltage_demand) = voltage("voltage_demand")(i)?;
        let (i, current_demand) = current("current_demand", BMS_CURRENT_OFFSET)(i)?;
        let (i, charging_mode) = code("charging_mode")(i)?;
        let (i, measured_voltage) = voltage("measured_voltage")(i)?;
        let (i, measured_current) = current("measured_current", BMS_CURRENT_OFFSET)(i)?;
        let at_cell = i;
        let (i, word) = u16_le("max_cell_voltage")(i)?;
        let cell = word & 0x0FFF;
        if cell > CELL_VOLTAGE_MAX {
            return Err(FieldError::out_of_range(
                at_cell,
                "max_cell_voltage",
                cell as i64,
                CELL_VOLTAGE_ALLOWED,
            ));
        }
        let (i, soc) = soc("soc")(i)?;
        let (i, remaining_time_min) = u16_upto("remaining_time", MINUTES_MAX, MINUTES_ALLOWED)(i)?;
        let (i, output_voltage) = voltage("output_voltage")(i)?;
        let (i, output_current) = current("output_current", BMS_CURRENT_OFFSET)(i)?;
        let (i, charging_time_min) = u16_upto("charging_time", MINUTES_MAX, MINUTES_ALLOWED)(i)?;
        Ok((
            i,
            BmsDemand {
                serial,
                pile_code,
                connector,
                voltage_demand,
                current_demand,
                charging_mode,
                measured_voltage,
                measured_current,
                max_cell_voltage: CellVoltage::from_hundredths(cell),
                max_cell_voltage_group: (word >> 12) as u8,
                soc,
                remaining_time_min,
                output_voltage,
                output_current,
                charging_time_min,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.voltage("voltage_demand", self.voltage_demand)?;
        w.current("current_demand", self.current_demand, BMS_CURRENT_OFFSET)?;
        w.code(self.charging_mode);
        w.voltage("measured_voltage", self.measured_voltage)?;
        w.current(
            "measured_current",
            self.measured_current,
            BMS_CURRENT_OFFSET,
        )?;
        let cell = self.max_cell_voltage.hundredths();
        if cell > CELL_VOLTAGE_MAX {
            return Err(w.error(
                "max_cell_voltage",
                format_args!("{} is outside 0..=24 V", self.max_cell_voltage),
            ));
        }
        if self.max_cell_voltage_group > 15 {
            return Err(w.error(
                "max_cell_voltage_group",
                format_args!("{} is outside 0..=15", self.max_cell_voltage_group),
            ));
        }
        w.u16_le(cell | ((self.max_cell_voltage_group as u16) << 12));
        w.soc(self.soc);
        write_u16_upto(
            w,
            "remaining_time",
            self.remaining_time_min,
            MINUTES_MAX,
            MINUTES_ALLOWED,
        )?;
        w.voltage("output_voltage", self.output_voltage)?;
        w.current("output_current", self.output_current, BMS_CURRENT_OFFSET)?;
        write_u16_upto(
            w,
            "charging_time",
            self.charging_time_min,
            MINUTES_MAX,
            MINUTES_ALLOWED,
        )?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// 0x25: BMS information
// ---------------------------------------------------------------------------------------------

/// A two-bit high/low alarm (GB/T 27930 BSM cell voltage and SoC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HighLow {
    /// `00`.
    Normal,
    /// `01`.
    TooHigh,
    /// `10`.
    TooLow,
    /// `11`: not available (J1939; the reference does not list it).
    NotAvailable,
}

impl HighLow {
    /// From the low two bits of `bits`.
    pub const fn from_bits(bits: u8) -> HighLow {
        match bits & 0b11 {
            0 => HighLow::Normal,
            1 => HighLow::TooHigh,
            2 => HighLow::TooLow,
            _ => HighLow::NotAvailable,
        }
    }
}

/// The battery status word of 0x25 (GB/T 27930 BSM bytes 6-7, the reference's items 9-16),
/// read as a little-endian u16. Bits 14-15 are reserved and kept as sent. JSON form: the
/// integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct BmsStatusFlags(pub u16);

impl BmsStatusFlags {
    /// The raw word.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// A cell voltage too high or too low.
    pub const fn cell_voltage(self) -> HighLow {
        HighLow::from_bits(self.0 as u8)
    }

    /// The battery's SoC too high or too low.
    pub const fn soc(self) -> HighLow {
        HighLow::from_bits((self.0 >> 2) as u8)
    }

    /// Charging over-current (`Set`).
    pub const fn over_current(self) -> FlagState {
        FlagState::from_bits((self.0 >> 4) as u8)
    }

    /// Battery over temperature (`Set`; the reference's table repeats "过流" here, a copy
    /// error: GB/T 27930 defines it as over temperature).
    pub const fn over_temperature(self) -> FlagState {
        FlagState::from_bits((self.0 >> 6) as u8)
    }

    /// Battery insulation abnormal (`Set`).
    pub const fn insulation(self) -> FlagState {
        FlagState::from_bits((self.0 >> 8) as u8)
    }

    /// Battery output connector abnormal (`Set`).
    pub const fn output_connector(self) -> FlagState {
        FlagState::from_bits((self.0 >> 10) as u8)
    }

    /// Whether the BMS allows charging ("充电禁止": `00` forbidden, `01` allowed); `None` for
    /// the two values the reference does not define.
    pub const fn charging_allowed(self) -> Option<bool> {
        match (self.0 >> 12) & 0b11 {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
}

/// 0x25 (pile→platform, every 15 s while charging): the BMS's battery status (GB/T 27930
/// BSM): extreme cells and temperatures and the battery alarms.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmsInfo {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    /// Number of the cell with the highest voltage, 1..=256 (wire: number - 1).
    pub max_cell_voltage_no: u16,
    /// -50..=200 °C.
    #[serde(rename = "max_battery_temperature_c")]
    pub max_battery_temperature: Temperature,
    /// Number of the probe reading the highest temperature, 1..=128 (wire: number - 1).
    pub max_temperature_probe_no: u8,
    /// -50..=200 °C.
    #[serde(rename = "min_battery_temperature_c")]
    pub min_battery_temperature: Temperature,
    /// Number of the probe reading the lowest temperature, 1..=128 (wire: number - 1).
    pub min_temperature_probe_no: u8,
    pub status: BmsStatusFlags,
}

/// Bytes in a 0x25 body.
pub const BMS_INFO_LEN: usize = 31;

const PROBE_ALLOWED: &str = "0..=127 (probe 1..=128)";

/// Writes a 1-offset number in one byte, `1..=max`.
fn write_one_based(
    w: &mut BodyWriter<'_>,
    field: &'static str,
    n: u16,
    max: u16,
) -> Result<(), EncodeError> {
    match n.checked_sub(1) {
        Some(raw) if n <= max => {
            w.u8(raw as u8);
            Ok(())
        }
        _ => Err(w.error(field, format_args!("{n} is outside 1..={max}"))),
    }
}

impl Body for BmsInfo {
    const TYPE: u8 = 0x25;
    const NAME: &'static str = "bms_info";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, max_cell) = u8_bin("max_cell_voltage_no")(i)?;
        let (i, max_battery_temperature) = bms_temperature("max_battery_temperature")(i)?;
        let (i, max_probe) = u8_upto("max_temperature_probe_no", 127, PROBE_ALLOWED)(i)?;
        let (i, min_battery_temperature) = bms_temperature("min_battery_temperature")(i)?;
        let (i, min_probe) = u8_upto("min_temperature_probe_no", 127, PROBE_ALLOWED)(i)?;
        let (i, status) = u16_le("status")(i)?;
        Ok((
            i,
            BmsInfo {
                serial,
                pile_code,
                connector,
                max_cell_voltage_no: max_cell as u16 + 1,
                max_battery_temperature,
                max_temperature_probe_no: max_probe + 1,
                min_battery_temperature,
                min_temperature_probe_no: min_probe + 1,
                status: BmsStatusFlags(status),
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        write_one_based(w, "max_cell_voltage_no", self.max_cell_voltage_no, 256)?;
        write_bms_temperature(w, "max_battery_temperature", self.max_battery_temperature)?;
        write_one_based(
            w,
            "max_temperature_probe_no",
            self.max_temperature_probe_no as u16,
            128,
        )?;
        write_bms_temperature(w, "min_battery_temperature", self.min_battery_temperature)?;
        write_one_based(
            w,
            "min_temperature_probe_no",
            self.min_temperature_probe_no as u16,
            128,
        )?;
        w.u16_le(self.status.0);
        Ok(())
    }
}
