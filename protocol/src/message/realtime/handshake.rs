//! The GB/T 27930 handshake, parameter configuration and end-of-charge stages (0x15, 0x17, 0x19).

use super::common::*;

// ---------------------------------------------------------------------------------------------
// 0x15: handshake
// ---------------------------------------------------------------------------------------------

wire_enum!(
    /// The traction battery's chemistry (GB/T 27930 BRM "电池类型").
    BatteryType allowed "0 (not reported), 1..=8 (see the reference, 7.3) or 0xFF (other)" {
        /// 0x00: not in the reference's table, but its own sample sends it: no BMS data yet.
        NotReported = 0x00,
        LeadAcid = 0x01,
        /// 0x02: "氢电池" in the reference (nickel-metal hydride in GB/T 27930).
        NickelMetalHydride = 0x02,
        LithiumIronPhosphate = 0x03,
        LithiumManganeseOxide = 0x04,
        LithiumCobaltOxide = 0x05,
        /// 0x06: ternary (NMC/NCA) lithium.
        Ternary = 0x06,
        LithiumPolymer = 0x07,
        LithiumTitanate = 0x08,
        Other = 0xFF,
    }
);
wire_enum!(
    /// Who owns the battery pack ("电池组产权标识").
    BatteryOwnership allowed "0 (leased) or 1 (owned by the vehicle)" { Leased = 0, VehicleOwned = 1 }
);

/// The first year the 0x15 production year can carry (the wire byte is years since 1985).
const PRODUCTION_YEAR_BASE: u16 = 1985;

/// 0x15 (pile→platform): the GB/T 27930 handshake stage: what the BMS says about itself and
/// its battery (from BHM/BRM).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargingHandshake {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    /// The BMS's GB/T 27930 version as sent: V1.1 is `[0x01, 0x01, 0x00]` (byte1 minor,
    /// byte2-3 major, little-endian).
    pub bms_protocol_version: [u8; 3],
    pub battery_type: BatteryType,
    /// Rated capacity of the traction battery, in 0.1 Ah.
    pub rated_capacity_ah_x10: u16,
    #[serde(rename = "rated_voltage_v")]
    pub rated_voltage: Voltage,
    /// Battery manufacturer, 4 ASCII bytes.
    pub battery_manufacturer: FixedText<4>,
    /// Battery pack number, manufacturer-defined ("预留，由厂商自行定义").
    pub battery_pack_no: u32,
    /// 1985..=2235.
    pub production_year: u16,
    /// 1..=12, or 0 when not reported (as in the reference's sample).
    pub production_month: u8,
    /// 1..=31, or 0 when not reported (as in the reference's sample).
    pub production_day: u8,
    /// Charge cycles counted by the BMS (3 bytes).
    pub charge_cycles: u32,
    pub ownership: BatteryOwnership,
    /// Reserved ("预留位"), kept as sent.
    pub reserved: u8,
    /// The vehicle's VIN, 17 ASCII bytes.
    pub vin: FixedText<17>,
    /// BMS software version as sent: bytes 6-8 reserved (0xFFFFFF), bytes 2-5 the build date,
    /// byte 1 the build number.
    pub bms_software_version: [u8; 8],
}

/// Bytes in a 0x15 body.
pub const CHARGING_HANDSHAKE_LEN: usize = 73;

impl Body for ChargingHandshake {
    const TYPE: u8 = 0x15;
    const NAME: &'static str = "charging_handshake";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, bms_protocol_version) = bytes::<3>("bms_protocol_version")(i)?;
        let (i, battery_type) = code("battery_type")(i)?;
        let (i, rated_capacity_ah_x10) = u16_le("rated_capacity")(i)?;
        let (i, rated_voltage) = voltage("rated_voltage")(i)?;
        let (i, battery_manufacturer) = text("battery_manufacturer")(i)?;
        let (i, battery_pack_no) = u32_le("battery_pack_no")(i)?;
        let (i, year) = u8_upto("production_year", 250, "0..=250 (1985..=2235)")(i)?;
        let (i, production_month) =
            u8_upto("production_month", 12, "0 (not reported) or 1..=12")(i)?;
        let (i, production_day) = u8_upto("production_day", 31, "0 (not reported) or 1..=31")(i)?;
        let (i, charge_cycles) = uint_le::<3>("charge_cycles")(i)?;
        let (i, ownership) = code("ownership")(i)?;
        let (i, reserved) = u8_bin("reserved")(i)?;
        let (i, vin) = text("vin")(i)?;
        let (i, bms_software_version) = bytes::<8>("bms_software_version")(i)?;
        Ok((
            i,
            ChargingHandshake {
                serial,
                pile_code,
                connector,
                bms_protocol_version,
                battery_type,
                rated_capacity_ah_x10,
                rated_voltage,
                battery_manufacturer,
                battery_pack_no,
                production_year: PRODUCTION_YEAR_BASE + year as u16,
                production_month,
                production_day,
                charge_cycles: charge_cycles as u32,
                ownership,
                reserved,
                vin,
                bms_software_version,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.bytes(&self.bms_protocol_version);
        w.code(self.battery_type);
        w.u16_le(self.rated_capacity_ah_x10);
        w.voltage("rated_voltage", self.rated_voltage)?;
        w.text(&self.battery_manufacturer);
        w.u32_le(self.battery_pack_no);
        let year = self
            .production_year
            .checked_sub(PRODUCTION_YEAR_BASE)
            .filter(|y| *y <= 250)
            .ok_or_else(|| {
                w.error(
                    "production_year",
                    format_args!("{} is outside 1985..=2235", self.production_year),
                )
            })?;
        w.u8(year as u8);
        if self.production_month > 12 {
            return Err(w.error(
                "production_month",
                format_args!("{} is outside 0..=12", self.production_month),
            ));
        }
        w.u8(self.production_month);
        if self.production_day > 31 {
            return Err(w.error(
                "production_day",
                format_args!("{} is outside 0..=31", self.production_day),
            ));
        }
        w.u8(self.production_day);
        w.uint_le("charge_cycles", self.charge_cycles as u64, 3)?;
        w.code(self.ownership);
        w.u8(self.reserved);
        w.text(&self.vin);
        w.bytes(&self.bms_software_version);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// 0x17: parameter configuration
// ---------------------------------------------------------------------------------------------

/// 0x17 (pile→platform): the GB/T 27930 parameter configuration stage: the battery's limits
/// (BCP) and the pile's output range (CML).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ParameterConfig {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    /// Highest allowed charging voltage of one cell, 0..=24 V.
    #[serde(rename = "max_cell_charge_voltage_v")]
    pub max_cell_charge_voltage: CellVoltage,
    #[serde(rename = "max_charge_current_a")]
    pub max_charge_current: Current,
    /// Nominal energy of the traction battery, 0..=1000 kWh at 0.1 kWh.
    #[serde(rename = "nominal_energy_kwh")]
    pub nominal_energy: Energy,
    /// Highest allowed total charging voltage.
    #[serde(rename = "max_charge_voltage_v")]
    pub max_charge_voltage: Voltage,
    /// Highest allowed battery temperature, -50..=200 °C.
    #[serde(rename = "max_temperature_c")]
    pub max_temperature: Temperature,
    /// State of charge in 0.1 %, 0..=1000.
    pub soc_pct_x10: u16,
    /// Present total voltage of the traction battery.
    #[serde(rename = "battery_voltage_v")]
    pub battery_voltage: Voltage,
    #[serde(rename = "pile_max_output_voltage_v")]
    pub pile_max_output_voltage: Voltage,
    #[serde(rename = "pile_min_output_voltage_v")]
    pub pile_min_output_voltage: Voltage,
    #[serde(rename = "pile_max_output_current_a")]
    pub pile_max_output_current: Current,
    #[serde(rename = "pile_min_output_current_a")]
    pub pile_min_output_current: Current,
}

/// Bytes in a 0x17 body.
pub const PARAMETER_CONFIG_LEN: usize = 45;

impl Body for ParameterConfig {
    const TYPE: u8 = 0x17;
    const NAME: &'static str = "parameter_config";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, max_cell_charge_voltage) = cell_voltage("max_cell_charge_voltage")(i)?;
        let (i, max_charge_current) = current("max_charge_current", BMS_CURRENT_OFFSET)(i)?;
        let (i, nominal_energy) = energy_tenths_kwh("nominal_energy")(i)?;
        let (i, max_charge_voltage) = voltage("max_charge_voltage")(i)?;
        let (i, max_temperature) = bms_temperature("max_temperature")(i)?;
        let (i, soc_pct_x10) = u16_upto("soc", 1000, "0..=1000 (0..=100 % at 0.1 %)")(i)?;
        let (i, battery_voltage) = voltage("battery_voltage")(i)?;
        let (i, pile_max_output_voltage) = voltage("pile_max_output_voltage")(i)?;
        let (i, pile_min_output_voltage) = voltage("pile_min_output_voltage")(i)?;
        let (i, pile_max_output_current) =
            current("pile_max_output_current", BMS_CURRENT_OFFSET)(i)?;
        let (i, pile_min_output_current) =
            current("pile_min_output_current", BMS_CURRENT_OFFSET)(i)?;
        Ok((
            i,
            ParameterConfig {
                serial,
                pile_code,
                connector,
                max_cell_charge_voltage,
                max_charge_current,
                nominal_energy,
                max_charge_voltage,
                max_temperature,
                soc_pct_x10,
                battery_voltage,
                pile_max_output_voltage,
                pile_min_output_voltage,
                pile_max_output_current,
                pile_min_output_current,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        write_cell_voltage(w, "max_cell_charge_voltage", self.max_cell_charge_voltage)?;
        w.current(
            "max_charge_current",
            self.max_charge_current,
            BMS_CURRENT_OFFSET,
        )?;
        write_energy_tenths_kwh(w, "nominal_energy", self.nominal_energy)?;
        w.voltage("max_charge_voltage", self.max_charge_voltage)?;
        write_bms_temperature(w, "max_temperature", self.max_temperature)?;
        write_u16_upto(w, "soc", self.soc_pct_x10, 1000, "0..=1000")?;
        w.voltage("battery_voltage", self.battery_voltage)?;
        w.voltage("pile_max_output_voltage", self.pile_max_output_voltage)?;
        w.voltage("pile_min_output_voltage", self.pile_min_output_voltage)?;
        w.current(
            "pile_max_output_current",
            self.pile_max_output_current,
            BMS_CURRENT_OFFSET,
        )?;
        w.current(
            "pile_min_output_current",
            self.pile_min_output_current,
            BMS_CURRENT_OFFSET,
        )?;
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// 0x19: charging finished
// ---------------------------------------------------------------------------------------------

/// 0x19 (pile→platform): the GB/T 27930 end-of-charge stage: the BMS's and the charger's
/// statistics (BSD/CSD).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargingFinished {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    /// State of charge when the BMS stopped.
    #[serde(rename = "final_soc_pct")]
    pub final_soc: Soc,
    #[serde(rename = "min_cell_voltage_v")]
    pub min_cell_voltage: CellVoltage,
    #[serde(rename = "max_cell_voltage_v")]
    pub max_cell_voltage: CellVoltage,
    /// -50..=200 °C.
    #[serde(rename = "min_battery_temperature_c")]
    pub min_battery_temperature: Temperature,
    /// -50..=200 °C.
    #[serde(rename = "max_battery_temperature_c")]
    pub max_battery_temperature: Temperature,
    /// 0..=600 min.
    pub charging_time_min: u16,
    /// Energy the pile delivered, 0..=1000 kWh at 0.1 kWh.
    #[serde(rename = "output_energy_kwh")]
    pub output_energy: Energy,
    /// The charger's number ("电桩充电机编号"), as sent (the reference's "1 offset" is not
    /// applied: its range 0..=0xFFFFFFFF is the raw range).
    pub charger_no: u32,
}

/// Bytes in a 0x19 body.
pub const CHARGING_FINISHED_LEN: usize = 39;

impl Body for ChargingFinished {
    const TYPE: u8 = 0x19;
    const NAME: &'static str = "charging_finished";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, final_soc) = soc("final_soc")(i)?;
        let (i, min_cell_voltage) = cell_voltage("min_cell_voltage")(i)?;
        let (i, max_cell_voltage) = cell_voltage("max_cell_voltage")(i)?;
        let (i, min_battery_temperature) = bms_temperature("min_battery_temperature")(i)?;
        let (i, max_battery_temperature) = bms_temperature("max_battery_temperature")(i)?;
        let (i, charging_time_min) = u16_upto("charging_time", MINUTES_MAX, MINUTES_ALLOWED)(i)?;
        let (i, output_energy) = energy_tenths_kwh("output_energy")(i)?;
        let (i, charger_no) = u32_le("charger_no")(i)?;
        Ok((
            i,
            ChargingFinished {
                serial,
                pile_code,
                connector,
                final_soc,
                min_cell_voltage,
                max_cell_voltage,
                min_battery_temperature,
                max_battery_temperature,
                charging_time_min,
                output_energy,
                charger_no,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.soc(self.final_soc);
        write_cell_voltage(w, "min_cell_voltage", self.min_cell_voltage)?;
        write_cell_voltage(w, "max_cell_voltage", self.max_cell_voltage)?;
        write_bms_temperature(w, "min_battery_temperature", self.min_battery_temperature)?;
        write_bms_temperature(w, "max_battery_temperature", self.max_battery_temperature)?;
        write_u16_upto(
            w,
            "charging_time",
            self.charging_time_min,
            MINUTES_MAX,
            MINUTES_ALLOWED,
        )?;
        write_energy_tenths_kwh(w, "output_energy", self.output_energy)?;
        w.u32_le(self.charger_no);
        Ok(())
    }
}
