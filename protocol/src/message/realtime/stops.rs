//! GB/T 27930 communication errors and stops: 0x1B error report, 0x1D BMS stop, 0x21 charger stop.

use super::common::*;

// ---------------------------------------------------------------------------------------------
// 0x1B: error report
// ---------------------------------------------------------------------------------------------

flag_word!(
    /// What the BMS timed out waiting for (GB/T 27930 BEM; the reference's items 4-14): four
    /// bytes read as a little-endian word. Reserved bits are kept as sent.
    BmsTimeouts(u32) {
        /// Charger identification (CRM, SPN2560 = 0x00).
        crm_00 @ 0,
        /// Charger identification (CRM, SPN2560 = 0xAA).
        crm_aa @ 2,
        /// Charger time sync and maximum output (CTS/CML).
        cts_cml @ 8,
        /// Charger ready (CRO).
        cro @ 10,
        /// Charger status (CCS).
        ccs @ 16,
        /// Charger stop (CST).
        cst @ 18,
        /// Charger statistics (CSD).
        csd @ 24,
    }
);

impl BmsTimeouts {
    /// "BMS other" ("BMS 其他"): the top six bits.
    pub const fn other(self) -> u8 {
        (self.0 >> 26) as u8
    }
}

flag_word!(
    /// What the charger timed out waiting for (GB/T 27930 CEM; the reference's items 15-25):
    /// four bytes read as a little-endian word. Reserved bits are kept as sent.
    ChargerTimeouts(u32) {
        /// BMS and vehicle identification (BRM).
        brm @ 0,
        /// Battery charging parameters (BCP).
        bcp @ 8,
        /// BMS ready (BRO).
        bro @ 10,
        /// Battery charging total status (BCS).
        bcs @ 16,
        /// Battery charging requirements (BCL).
        bcl @ 18,
        /// BMS stop (BST).
        bst @ 20,
        /// BMS statistics (BSD).
        bsd @ 24,
    }
);

impl ChargerTimeouts {
    /// "Charger other" ("充电机其他"): the top six bits.
    pub const fn other(self) -> u8 {
        (self.0 >> 26) as u8
    }
}

/// 0x1B (pile→platform): a GB/T 27930 communication error: which messages timed out on the
/// BMS side and on the charger side.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReport {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub bms_timeouts: BmsTimeouts,
    pub charger_timeouts: ChargerTimeouts,
}

/// Bytes in a 0x1B body.
pub const ERROR_REPORT_LEN: usize = 32;

impl Body for ErrorReport {
    const TYPE: u8 = 0x1B;
    const NAME: &'static str = "error_report";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, bms) = u32_le("bms_timeouts")(i)?;
        let (i, charger) = u32_le("charger_timeouts")(i)?;
        Ok((
            i,
            ErrorReport {
                serial,
                pile_code,
                connector,
                bms_timeouts: BmsTimeouts(bms),
                charger_timeouts: ChargerTimeouts(charger),
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.u32_le(self.bms_timeouts.0);
        w.u32_le(self.charger_timeouts.0);
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// 0x1D, 0x21: stops
// ---------------------------------------------------------------------------------------------

flag_word!(
    /// Why the BMS stopped charging (GB/T 27930 BST byte 1); `Set` means the condition was
    /// reached.
    BmsStopReason(u8) {
        /// The requested SoC was reached.
        soc_target_reached @ 0,
        /// The total voltage set point was reached.
        total_voltage_reached @ 2,
        /// The cell voltage set point was reached.
        cell_voltage_reached @ 4,
        /// The charger stopped on its own ("充电机主动中止").
        charger_stopped @ 6,
    }
);

flag_word!(
    /// Faults that made the BMS stop (GB/T 27930 BST bytes 2-3, little-endian).
    BmsStopFaults(u16) {
        insulation @ 0,
        /// Output connector over temperature.
        output_connector_over_temperature @ 2,
        /// BMS component or output connector over temperature.
        bms_component_over_temperature @ 4,
        /// Charging connector fault.
        charging_connector @ 6,
        /// Battery pack over temperature.
        battery_over_temperature @ 8,
        /// High-voltage relay fault.
        hv_relay @ 10,
        /// Detection point 2 voltage fault.
        detection_point_2_voltage @ 12,
        other @ 14,
    }
);

flag_word!(
    /// Errors that made the BMS stop (GB/T 27930 BST byte 4); bits 4-7 reserved, kept as sent.
    BmsStopErrors(u8) {
        over_current @ 0,
        voltage_abnormal @ 2,
    }
);

/// 0x1D (pile→platform): the BMS stopped charging (GB/T 27930 BST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BmsStop {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub reason: BmsStopReason,
    pub faults: BmsStopFaults,
    pub errors: BmsStopErrors,
}

/// Bytes in a 0x1D or 0x21 body.
pub const STOP_LEN: usize = 28;

impl Body for BmsStop {
    const TYPE: u8 = 0x1D;
    const NAME: &'static str = "bms_stop";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, reason) = u8_bin("reason")(i)?;
        let (i, faults) = u16_le("faults")(i)?;
        let (i, errors) = u8_bin("errors")(i)?;
        Ok((
            i,
            BmsStop {
                serial,
                pile_code,
                connector,
                reason: BmsStopReason(reason),
                faults: BmsStopFaults(faults),
                errors: BmsStopErrors(errors),
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.u8(self.reason.0);
        w.u16_le(self.faults.0);
        w.u8(self.errors.0);
        Ok(())
    }
}

flag_word!(
    /// Why the charger stopped (GB/T 27930 CST byte 1); `Set` means the condition occurred.
    ChargerStopReason(u8) {
        /// A condition set on the charger was reached.
        condition_reached @ 0,
        /// Stopped by hand.
        manual @ 2,
        /// Stopped abnormally (on a fault).
        abnormal @ 4,
        /// The BMS stopped on its own ("BMS 主动中止").
        bms_stopped @ 6,
    }
);

flag_word!(
    /// Faults that made the charger stop (GB/T 27930 CST bytes 2-3, little-endian); bits
    /// 12-15 reserved, kept as sent.
    ChargerStopFaults(u16) {
        /// Charger over temperature.
        charger_over_temperature @ 0,
        /// Charging connector fault.
        charging_connector @ 2,
        /// Charger internal over temperature.
        internal_over_temperature @ 4,
        /// The requested energy cannot be delivered.
        energy_not_deliverable @ 6,
        /// Emergency stop.
        emergency_stop @ 8,
        other @ 10,
    }
);

flag_word!(
    /// Errors that made the charger stop (GB/T 27930 CST byte 4); bits 4-7 reserved, kept as
    /// sent.
    ChargerStopErrors(u8) {
        current_mismatch @ 0,
        voltage_abnormal @ 2,
    }
);

/// 0x21 (pile→platform): the charger stopped charging (GB/T 27930 CST).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChargerStop {
    pub serial: TransactionSerial,
    pub pile_code: PileCode,
    pub connector: ConnectorNo,
    pub reason: ChargerStopReason,
    pub faults: ChargerStopFaults,
    pub errors: ChargerStopErrors,
}

impl Body for ChargerStop {
    const TYPE: u8 = 0x21;
    const NAME: &'static str = "charger_stop";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, serial) = serial("serial")(i)?;
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, connector) = connector("connector")(i)?;
        let (i, reason) = u8_bin("reason")(i)?;
        let (i, faults) = u16_le("faults")(i)?;
        let (i, errors) = u8_bin("errors")(i)?;
        Ok((
            i,
            ChargerStop {
                serial,
                pile_code,
                connector,
                reason: ChargerStopReason(reason),
                faults: ChargerStopFaults(faults),
                errors: ChargerStopErrors(errors),
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.serial(&self.serial);
        w.pile_code(&self.pile_code);
        w.connector(self.connector);
        w.u8(self.reason.0);
        w.u16_le(self.faults.0);
        w.u8(self.errors.0);
        Ok(())
    }
}
