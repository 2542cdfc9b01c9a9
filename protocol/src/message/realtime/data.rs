//! 0x12 read real-time data and 0x13 real-time data (the hot frame), with the hardware fault word.

use super::common::*;

// ---------------------------------------------------------------------------------------------
// 0x12, 0x13: real-time data
// ---------------------------------------------------------------------------------------------

wire_enum!(
    /// A connector's state in real-time data ("状态"); changes are reported at once.
    ConnectorStatus allowed "0 (offline), 1 (fault), 2 (idle) or 3 (charging)" {
        Offline = 0,
        Fault = 1,
        Idle = 2,
        Charging = 3,
    }
);
wire_enum!(
    /// Whether the gun is back in its holster ("枪是否归位").
    GunReturned allowed "0 (no), 1 (yes) or 2 (unknown)" {
        No = 0,
        Yes = 1,
        /// The pile cannot detect the holster.
        Unknown = 2,
    }
);
wire_enum!(
    /// Whether the gun is plugged into a vehicle ("是否插枪"); changes are reported at once.
    GunPlugged allowed "0 (no) or 1 (yes)" { No = 0, Yes = 1 }
);

/// One documented bit of the 0x13 hardware fault word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HardwareFault {
    /// Bit1: the emergency stop button was pressed ("急停按钮动作故障").
    EmergencyStop = 0,
    /// Bit2: no rectifier module available ("无可用整流模块").
    NoRectifierModule = 1,
    /// Bit3: air outlet over temperature ("出风口温度过高").
    OutletOverTemperature = 2,
    /// Bit4: AC surge protection fault ("交流防雷故障").
    AcSurgeProtection = 3,
    /// Bit5: AC/DC module DC20 communication lost.
    Dc20CommLost = 4,
    /// Bit6: insulation monitor FC08 communication lost.
    Fc08CommLost = 5,
    /// Bit7: energy meter communication lost ("电度表通信中断").
    MeterCommLost = 6,
    /// Bit8: card reader communication lost ("读卡器通信中断").
    CardReaderCommLost = 7,
    /// Bit9: RC10 communication lost.
    Rc10CommLost = 8,
    /// Bit10: fan speed controller fault ("风扇调速板故障").
    FanControllerFault = 9,
    /// Bit11: DC fuse fault ("直流熔断器故障").
    DcFuseFault = 10,
    /// Bit12: high-voltage contactor fault ("高压接触器故障").
    HvContactorFault = 11,
    /// Bit13: cabinet door open ("门打开").
    DoorOpen = 12,
}

impl HardwareFault {
    /// Every documented fault, lowest bit first.
    pub const ALL: [HardwareFault; 13] = [
        HardwareFault::EmergencyStop,
        HardwareFault::NoRectifierModule,
        HardwareFault::OutletOverTemperature,
        HardwareFault::AcSurgeProtection,
        HardwareFault::Dc20CommLost,
        HardwareFault::Fc08CommLost,
        HardwareFault::MeterCommLost,
        HardwareFault::CardReaderCommLost,
        HardwareFault::Rc10CommLost,
        HardwareFault::FanControllerFault,
        HardwareFault::DcFuseFault,
        HardwareFault::HvContactorFault,
        HardwareFault::DoorOpen,
    ];

    /// The bit mask in the fault word.
    pub const fn mask(self) -> u16 {
        1 << self as u16
    }

    /// A short English description.
    pub const fn describe(self) -> &'static str {
        match self {
            HardwareFault::EmergencyStop => "emergency stop pressed",
            HardwareFault::NoRectifierModule => "no rectifier module available",
            HardwareFault::OutletOverTemperature => "air outlet over temperature",
            HardwareFault::AcSurgeProtection => "AC surge protection fault",
            HardwareFault::Dc20CommLost => "AC/DC module (DC20) communication lost",
            HardwareFault::Fc08CommLost => "insulation monitor (FC08) communication lost",
            HardwareFault::MeterCommLost => "energy meter communication lost",
            HardwareFault::CardReaderCommLost => "card reader communication lost",
            HardwareFault::Rc10CommLost => "RC10 communication lost",
            HardwareFault::FanControllerFault => "fan speed controller fault",
            HardwareFault::DcFuseFault => "DC fuse fault",
            HardwareFault::HvContactorFault => "high-voltage contactor fault",
            HardwareFault::DoorOpen => "cabinet door open",
        }
    }
}

/// The 0x13 hardware fault word ("硬件故障"): one bit per fault, the reference's Bit1 is the
/// lowest bit. Bits 13-15 are undocumented and kept as sent. JSON form: the integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct HardwareFaults(pub u16);

impl HardwareFaults {
    /// No fault.
    pub const NONE: HardwareFaults = HardwareFaults(0);

    /// The raw word.
    pub const fn bits(self) -> u16 {
        self.0
    }

    /// True when any bit (documented or not) is set.
    pub const fn any(self) -> bool {
        self.0 != 0
    }

    /// True when `fault` is reported.
    pub const fn contains(self, fault: HardwareFault) -> bool {
        self.0 & fault.mask() != 0
    }

    /// This word with `fault` set.
    pub const fn with(self, fault: HardwareFault) -> HardwareFaults {
        HardwareFaults(self.0 | fault.mask())
    }

    /// The documented faults reported, lowest bit first.
    pub fn iter(self) -> impl Iterator<Item = HardwareFault> {
        HardwareFault::ALL
            .into_iter()
            .filter(move |f| self.contains(*f))
    }

    /// Bits set that the reference does not document (bits 13-15).
    pub const fn undocumented(self) -> u16 {
        self.0 & 0xE000
    }

    /// Bit1: emergency stop pressed.
    pub const fn emergency_stop(self) -> bool {
        self.contains(HardwareFault::EmergencyStop)
    }
    /// Bit2: no rectifier module available.
    pub const fn no_rectifier_module(self) -> bool {
        self.contains(HardwareFault::NoRectifierModule)
    }
    /// Bit3: air outlet over temperature.
    pub const fn outlet_over_temperature(self) -> bool {
        self.contains(HardwareFault::OutletOverTemperature)
    }
    /// Bit4: AC surge protection fault.
    pub const fn ac_surge_protection(self) -> bool {
        self.contains(HardwareFault::AcSurgeProtection)
    }
    /// Bit5: AC/DC module DC20 communication lost.
    pub const fn dc20_comm_lost(self) -> bool {
        self.contains(HardwareFault::Dc20CommLost)
    }
    /// Bit6: insulation monitor FC08 communication lost.
    pub const fn fc08_comm_lost(self) -> bool {
        self.contains(HardwareFault::Fc08CommLost)
    }
    /// Bit7: energy meter communication lost.
    pub const fn meter_comm_lost(self) -> bool {
        self.contains(HardwareFault::MeterCommLost)
    }
    /// Bit8: card reader communication lost.
    pub const fn card_reader_comm_lost(self) -> bool {
        self.contains(HardwareFault::CardReaderCommLost)
    }
    /// Bit9: RC10 communication lost.
    pub const fn rc10_comm_lost(self) -> bool {
        self.contains(HardwareFault::Rc10CommLost)
    }
    /// Bit10: fan speed controller fault.
    pub const fn fan_controller_fault(self) -> bool {
        self.contains(HardwareFault::FanControllerFault)
    }
    /// Bit11: DC fuse fault.
    pub const fn dc_fuse_fault(self) -> bool {
        self.contains(HardwareFault::DcFuseFault)
    }
    /// Bit12: high-voltage contactor fault.
    pub const fn hv_contactor_fault(self) -> bool {
        self.contains(HardwareFault::HvContactorFault)
    }
    /// Bit13: cabinet door open.
    pub const fn door_open(self) -> bool {
        self.contains(HardwareFault::DoorOpen)
    }
}

/// 0x12 (platform→pile): the platform asks a connector for its real-time data (answered by
/// 0x13).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReadRealTimeData {
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
}

impl Body for ReadRealTimeData {
    const TYPE: u8 = 0x12;
    const NAME: &'static str = "read_real_time_data";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        Ok((
            i,
            ReadRealTimeData {
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

/// 0x13 (pile→platform): a connector's real-time data, sent every 15 s while charging, every
/// 5 min idle, on every status or plug change, and when asked (0x12). Idle connectors send
/// zeros for every measurement ("待机置零"), so an idle temperature reads -50 °C.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RealTimeData {
    /// The current transaction; all zeros when none.
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub status: ConnectorStatus,
    pub gun_returned: GunReturned,
    pub gun_plugged: GunPlugged,
    #[serde(rename = "output_voltage_v")]
    pub output_voltage: Voltage,
    #[serde(rename = "output_current_a")]
    pub output_current: Current,
    /// The gun cable's temperature ("枪线温度").
    #[serde(rename = "gun_temperature_c")]
    pub gun_temperature: Temperature,
    /// The gun cable's code ("枪线编码", 8 BIN bytes), zeros when the pile has none.
    pub gun_wire_code: [u8; 8],
    /// The vehicle's state of charge; 0 on AC piles.
    #[serde(rename = "soc_pct")]
    pub soc: Soc,
    /// The battery pack's highest temperature; wire 0 (-50 °C) on AC piles.
    #[serde(rename = "battery_max_temperature_c")]
    pub battery_max_temperature: Temperature,
    pub charging_time_min: u16,
    /// Estimated time to full; 0 on AC piles.
    pub remaining_time_min: u16,
    /// Energy delivered in this transaction ("充电度数").
    #[serde(rename = "energy_kwh")]
    pub energy: Energy,
    /// Energy after the billing model's loss ratio ("计损充电度数"); equals `energy` when no
    /// loss ratio is set. The amount is computed from this.
    #[serde(rename = "billed_energy_kwh")]
    pub billed_energy: Energy,
    /// Amount charged so far (energy price + service fee) × billed energy, at 0.0001 yuan.
    #[serde(rename = "amount_yuan")]
    pub amount: Money,
    pub hardware_faults: HardwareFaults,
}

/// Bytes in a 0x13 body.
pub const REAL_TIME_DATA_LEN: usize = 60;

impl RealTimeData {
    /// An idle, unplugged connector with the gun holstered and every measurement at the
    /// wire's zero, as the reference asks piles to send in standby.
    pub fn idle(pile_code: PileCode, connector: ConnectorNo) -> RealTimeData {
        RealTimeData {
            serial: TransactionSerial::NONE,
            pile_code,
            connector,
            status: ConnectorStatus::Idle,
            gun_returned: GunReturned::Yes,
            gun_plugged: GunPlugged::No,
            output_voltage: Voltage::from_tenths(0),
            output_current: Current::from_tenths(0),
            gun_temperature: Temperature::from_celsius(-50),
            gun_wire_code: [0; 8],
            soc: Soc::EMPTY,
            battery_max_temperature: Temperature::from_celsius(-50),
            charging_time_min: 0,
            remaining_time_min: 0,
            energy: Energy::ZERO,
            billed_energy: Energy::ZERO,
            amount: Money::ZERO,
            hardware_faults: HardwareFaults::NONE,
        }
    }

    /// True when the connector reports that it is charging.
    pub fn is_charging(&self) -> bool {
        self.status == ConnectorStatus::Charging
    }

    /// True when the connector reports a fault status or any hardware fault bit.
    pub fn is_faulted(&self) -> bool {
        self.status == ConnectorStatus::Fault || self.hardware_faults.any()
    }

    /// True when the gun is plugged into a vehicle.
    pub fn is_plugged(&self) -> bool {
        self.gun_plugged == GunPlugged::Yes
    }

    /// True when the frame carries a transaction serial (not all zeros).
    pub fn has_transaction(&self) -> bool {
        !self.serial.is_none()
    }

    /// Output power, voltage × current, truncated toward zero to 1 W.
    pub fn output_power(&self) -> Power {
        // 0.1 V × 0.1 A = 0.01 W.
        let centiwatts = self.output_voltage.tenths() as i64 * self.output_current.tenths() as i64;
        Power::from_watts(centiwatts / 100)
    }
}

impl Body for RealTimeData {
    const TYPE: u8 = 0x13;
    const NAME: &'static str = "real_time_data";

    #[inline]
    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, status) = code("status")(i)?;
        let (i, gun_returned) = code("gun_returned")(i)?;
        let (i, gun_plugged) = code("gun_plugged")(i)?;
        let (i, output_voltage) = voltage("output_voltage")(i)?;
        let (i, output_current) = current("output_current", 0)(i)?;
        let (i, gun_temperature) = temperature("gun_temperature")(i)?;
        let (i, gun_wire_code) = bytes::<8>("gun_wire_code")(i)?;
        let (i, soc) = soc("soc")(i)?;
        let (i, battery_max_temperature) = temperature("battery_max_temperature")(i)?;
        let (i, charging_time_min) = u16_le("charging_time")(i)?;
        let (i, remaining_time_min) = u16_le("remaining_time")(i)?;
        let (i, energy) = energy_le::<4>("energy")(i)?;
        let (i, billed_energy) = energy_le::<4>("billed_energy")(i)?;
        let (i, amount) = money::<4>("amount", scale::AMOUNT)(i)?;
        let (i, faults) = u16_le("hardware_faults")(i)?;
        Ok((
            i,
            RealTimeData {
                serial,
                pile_code,
                connector,
                status,
                gun_returned,
                gun_plugged,
                output_voltage,
                output_current,
                gun_temperature,
                gun_wire_code,
                soc,
                battery_max_temperature,
                charging_time_min,
                remaining_time_min,
                energy,
                billed_energy,
                amount,
                hardware_faults: HardwareFaults(faults),
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.code(self.status);
        w.code(self.gun_returned);
        w.code(self.gun_plugged);
        w.voltage("output_voltage", self.output_voltage)?;
        w.current("output_current", self.output_current, 0)?;
        w.temperature("gun_temperature", self.gun_temperature)?;
        w.bytes(&self.gun_wire_code);
        w.soc(self.soc);
        w.temperature("battery_max_temperature", self.battery_max_temperature)?;
        w.u16_le(self.charging_time_min);
        w.u16_le(self.remaining_time_min);
        w.energy("energy", self.energy, 4)?;
        w.energy("billed_energy", self.billed_energy, 4)?;
        w.money("amount", self.amount, scale::AMOUNT, 4)?;
        w.u16_le(self.hardware_faults.0);
        Ok(())
    }
}
