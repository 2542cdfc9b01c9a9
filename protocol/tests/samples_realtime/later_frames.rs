//! The second half of the samples_realtime cases (split to keep files focused).

use super::*;

#[test]
fn charging_finished_sample_7_5() {
    // Serial fixed to 32 digits (see the top of the file).
    let f = round_trip(&sample(&format!(
        "68 2B 0016 00 19 {SERIAL} {PILE} 01 00 0000 0000 00 00 0000 0000 00000000 AE36"
    )));
    let Message::ChargingFinished(m) = f.message else {
        panic!("not 0x19: {:?}", f.message)
    };
    assert_eq!(m.serial.to_string(), SERIAL);
    assert_eq!(m.final_soc, Soc::EMPTY);
    assert_eq!(m.min_cell_voltage, CellVoltage::from_hundredths(0));
    assert_eq!(m.max_cell_voltage, CellVoltage::from_hundredths(0));
    assert_eq!(m.min_battery_temperature, Temperature::from_celsius(-50));
    assert_eq!(m.max_battery_temperature, Temperature::from_celsius(-50));
    assert_eq!(m.charging_time_min, 0);
    assert_eq!(m.output_energy, Energy::ZERO);
    assert_eq!(m.charger_no, 0);
}

fn charging_finished() -> ChargingFinished {
    ChargingFinished {
        serial: serial(),
        pile_code: pile(PILE),
        connector: connector(1),
        final_soc: Soc::new(95).unwrap(),
        min_cell_voltage: CellVoltage::from_hundredths(402),
        max_cell_voltage: CellVoltage::from_hundredths(415),
        min_battery_temperature: Temperature::from_celsius(-5),
        max_battery_temperature: Temperature::from_celsius(38),
        charging_time_min: 600,
        output_energy: Energy::from_kwh(dec!(1000)).unwrap(),
        charger_no: 0xDEAD_BEEF,
    }
}

#[test]
fn charging_finished_values_round_trip() {
    let bytes = encode_decode(charging_finished(), CHARGING_FINISHED_LEN);
    let body = &bytes[6..];
    assert_eq!(body[29], 45, "-5 °C + 50");
    assert_eq!(
        &body[33..35],
        &10_000u16.to_le_bytes(),
        "1000 kWh at 0.1 kWh"
    );
}

#[test]
fn charging_finished_validation() {
    let with = |fields: &str| format!("68 2B 0016 00 19 {SERIAL} {PILE} 01 {fields} 00000000 AE36");
    // Body offsets: SoC 24, min cell 25, max cell 27, min temp 29, max temp 30, time 31,
    // energy 33.
    assert_out_of_range(
        decode_err(&with("65 0000 0000 00 00 0000 0000")),
        "final_soc",
        6 + 24,
        101,
    );
    assert_out_of_range(
        decode_err(&with("64 6109 0000 00 00 0000 0000")),
        "min_cell_voltage",
        6 + 25,
        2401,
    );
    assert_out_of_range(
        decode_err(&with("64 6009 FFFF 00 00 0000 0000")),
        "max_cell_voltage",
        6 + 27,
        0xFFFF,
    );
    assert_out_of_range(
        decode_err(&with("64 6009 6009 FF 00 0000 0000")),
        "min_battery_temperature",
        6 + 29,
        255,
    );
    assert_out_of_range(
        decode_err(&with("64 6009 6009 FA FB 0000 0000")),
        "max_battery_temperature",
        6 + 30,
        251,
    );
    assert_out_of_range(
        decode_err(&with("64 6009 6009 FA FA 5902 0000")),
        "charging_time",
        6 + 31,
        601,
    );
    assert_out_of_range(
        decode_err(&with("64 6009 6009 FA FA 5802 1127")),
        "output_energy",
        6 + 33,
        10001,
    );
    assert!(frame::decode(&sample(&with("64 6009 6009 FA FA 5802 1027"))).is_ok());

    let mut m = charging_finished();
    m.charging_time_min = 601;
    assert_encode_field(encode_err(m), "charging_time");
    let mut m = charging_finished();
    m.min_cell_voltage = CellVoltage::from_hundredths(2401);
    assert_encode_field(encode_err(m), "min_cell_voltage");
    let mut m = charging_finished();
    m.output_energy = Energy::from_mwh(-100_000);
    assert_encode_field(encode_err(m), "output_energy");
}

// ---------------------------------------------------------------------------------------------
// 0x1B
// ---------------------------------------------------------------------------------------------

#[test]
fn error_report_sample_7_6() {
    // Serial fixed to 32 digits (see the top of the file). The eight bytes after the
    // connector hold items 4-6, 7-9, 10-12, 13-14, 15-16, 17-19, 20-23, 24-25.
    let f = round_trip(&sample(&format!(
        "68 24 0017 00 1B {SERIAL} {PILE} 01 00 00 00 00 00 00 00 00 A2F3"
    )));
    let Message::ErrorReport(m) = f.message else {
        panic!("not 0x1B: {:?}", f.message)
    };
    assert_eq!(m.serial.to_string(), SERIAL);
    assert_eq!(m.bms_timeouts, BmsTimeouts::NONE);
    assert_eq!(m.charger_timeouts, ChargerTimeouts::NONE);
    assert_eq!(m.bms_timeouts.active_fields().count(), 0);
}

#[test]
fn error_report_bits_map_to_gbt_messages() {
    // Byte 1: CRM 0x00 timeout (01), CRM 0xAA untrusted (10), reserved 1111 kept.
    // Byte 4: CSD not available (11), "BMS other" = 0b101010.
    // Byte 5: BRM timeout. Byte 7: BST untrusted (bits 5-6). Byte 8: BSD timeout, other 1.
    let f = round_trip(&sample(&format!(
        "68 24 0017 00 1B {SERIAL} {PILE} 01 F9 00 00 AB 01 00 20 05 0000"
    )));
    let Message::ErrorReport(m) = f.message else {
        panic!()
    };
    let b = m.bms_timeouts;
    assert_eq!(b.crm_00(), FlagState::Set);
    assert_eq!(b.crm_aa(), FlagState::Untrusted);
    assert_eq!(b.cts_cml(), FlagState::Normal);
    assert_eq!(b.csd(), FlagState::NotAvailable);
    assert_eq!(b.other(), 0b10_1010);
    assert_eq!(b.bits() & 0xF0, 0xF0, "reserved bits kept");
    let c = m.charger_timeouts;
    assert_eq!(c.brm(), FlagState::Set);
    assert_eq!(c.bst(), FlagState::Untrusted);
    assert_eq!(c.bsd(), FlagState::Set);
    assert_eq!(c.other(), 1);
    assert_eq!(
        c.active_fields().map(|(n, _)| n).collect::<Vec<_>>(),
        vec!["brm", "bst", "bsd"]
    );
    let b2 = BmsTimeouts((0b01 << 8) | (0b10 << 10) | (0b01 << 16) | (0b10 << 18));
    assert_eq!(b2.cts_cml(), FlagState::Set);
    assert_eq!(b2.cro(), FlagState::Untrusted);
    assert_eq!(b2.ccs(), FlagState::Set);
    assert_eq!(b2.cst(), FlagState::Untrusted);
    let c2 = ChargerTimeouts((0b01 << 8) | (0b10 << 10) | (0b01 << 16) | (0b11 << 18));
    assert_eq!(c2.bcp(), FlagState::Set);
    assert_eq!(c2.bro(), FlagState::Untrusted);
    assert_eq!(c2.bcs(), FlagState::Set);
    assert_eq!(c2.bcl(), FlagState::NotAvailable);
    assert_eq!(c2.fields().count(), 7);
}

// ---------------------------------------------------------------------------------------------
// 0x1D, 0x21
// ---------------------------------------------------------------------------------------------

#[test]
fn bms_stop_sample_7_7() {
    // Serial fixed to 32 digits (see the top of the file).
    let f = round_trip(&sample(&format!(
        "68 20 0018 00 1D {SERIAL} {PILE} 01 00 0000 00 8445"
    )));
    assert_eq!(f.sequence, 0x1800);
    let Message::BmsStop(m) = f.message else {
        panic!("not 0x1D: {:?}", f.message)
    };
    assert_eq!(m.serial.to_string(), SERIAL);
    assert_eq!(m.reason, BmsStopReason::NONE);
    assert_eq!(m.faults, BmsStopFaults::NONE);
    assert_eq!(m.errors, BmsStopErrors::NONE);
}

#[test]
fn bms_stop_bits() {
    let f = round_trip(&sample(&format!(
        "68 20 0018 00 1D {SERIAL} {PILE} 01 41 0840 F5 0000"
    )));
    let Message::BmsStop(m) = f.message else {
        panic!()
    };
    assert_eq!(m.reason.soc_target_reached(), FlagState::Set);
    assert_eq!(m.reason.charger_stopped(), FlagState::Set);
    assert_eq!(m.reason.total_voltage_reached(), FlagState::Normal);
    assert_eq!(m.reason.cell_voltage_reached(), FlagState::Normal);
    // Faults word 0x4008 (LE bytes 08 40): output connector over temperature untrusted, other set.
    assert_eq!(m.faults.bits(), 0x4008);
    assert_eq!(m.faults.insulation(), FlagState::Normal);
    assert_eq!(
        m.faults.output_connector_over_temperature(),
        FlagState::Untrusted
    );
    assert_eq!(m.faults.other(), FlagState::Set);
    assert_eq!(m.faults.active_fields().count(), 2);
    let all = BmsStopFaults(0x5555);
    assert!(all.fields().all(|(_, s)| s == FlagState::Set));
    assert_eq!(all.fields().count(), 8);
    assert_eq!(all.bms_component_over_temperature(), FlagState::Set);
    assert_eq!(all.charging_connector(), FlagState::Set);
    assert_eq!(all.battery_over_temperature(), FlagState::Set);
    assert_eq!(all.hv_relay(), FlagState::Set);
    assert_eq!(all.detection_point_2_voltage(), FlagState::Set);
    // Errors 0xF5: over-current set, voltage abnormal set, reserved 1111 kept.
    assert_eq!(m.errors.over_current(), FlagState::Set);
    assert_eq!(m.errors.voltage_abnormal(), FlagState::Set);
    assert_eq!(m.errors.bits(), 0xF5);
}

#[test]
fn charger_stop_sample_7_8() {
    // Serial fixed to 32 digits (see the top of the file). The sample's annotations repeat
    // 0x1D's "BMS ..." labels; the field table (7.8) names the charger's reasons.
    let f = round_trip(&sample(&format!(
        "68 20 0018 00 21 {SERIAL} {PILE} 01 00 0000 00 8445"
    )));
    let Message::ChargerStop(m) = f.message else {
        panic!("not 0x21: {:?}", f.message)
    };
    assert_eq!(m.serial.to_string(), SERIAL);
    assert_eq!(m.reason, ChargerStopReason::NONE);
    assert_eq!(m.faults, ChargerStopFaults::NONE);
    assert_eq!(m.errors, ChargerStopErrors::NONE);
}

#[test]
fn charger_stop_bits() {
    let m = ChargerStop {
        serial: serial(),
        pile_code: pile(PILE),
        connector: connector(2),
        reason: ChargerStopReason(0b0001_0100),
        faults: ChargerStopFaults(0xF100),
        errors: ChargerStopErrors(0b1000),
    };
    let bytes = encode_decode(m.clone(), STOP_LEN);
    assert_eq!(&bytes[6 + 24..6 + 28], &[0x14, 0x00, 0xF1, 0x08]);
    assert_eq!(m.reason.manual(), FlagState::Set);
    assert_eq!(m.reason.abnormal(), FlagState::Set);
    assert_eq!(m.reason.condition_reached(), FlagState::Normal);
    assert_eq!(m.reason.bms_stopped(), FlagState::Normal);
    assert_eq!(m.faults.emergency_stop(), FlagState::Set);
    assert_eq!(m.faults.other(), FlagState::Normal);
    assert_eq!(m.faults.charger_over_temperature(), FlagState::Normal);
    assert_eq!(
        m.faults.active_fields().count(),
        1,
        "reserved bits 12-15 ignored"
    );
    assert_eq!(m.errors.voltage_abnormal(), FlagState::Untrusted);
    assert_eq!(m.errors.current_mismatch(), FlagState::Normal);
    let all = ChargerStopFaults(0x0555);
    assert_eq!(all.charging_connector(), FlagState::Set);
    assert_eq!(all.internal_over_temperature(), FlagState::Set);
    assert_eq!(all.energy_not_deliverable(), FlagState::Set);
    assert_eq!(all.active_fields().count(), 6);
}

// ---------------------------------------------------------------------------------------------
// 0x23
// ---------------------------------------------------------------------------------------------

fn demand_hex(mode: &str, cell: &str, soc: &str, remaining: &str, time: &str) -> String {
    format!(
        "68 30 0019 00 23 {SERIAL} {PILE} 01 0000 0000 {mode} 0000 0000 {cell} {soc} {remaining} \
         0000 0000 {time} 1D57"
    )
}

#[test]
fn bms_demand_sample_7_9() {
    // Serial fixed to 32 digits (see the top of the file). The sample's charging mode is 00,
    // outside the table (01 CV, 02 CC): accepted as "not reported".
    let f = round_trip(&sample(&demand_hex("00", "0000", "00", "0000", "0000")));
    assert_eq!(f.sequence, 0x1900);
    let Message::BmsDemand(m) = f.message else {
        panic!("not 0x23: {:?}", f.message)
    };
    assert_eq!(m.serial.to_string(), SERIAL);
    assert_eq!(m.voltage_demand, Voltage::from_tenths(0));
    assert_eq!(m.current_demand, Current::from_tenths(-4000));
    assert_eq!(m.charging_mode, ChargingMode::NotReported);
    assert_eq!(m.measured_voltage, Voltage::from_tenths(0));
    assert_eq!(m.measured_current, Current::from_tenths(-4000));
    assert_eq!(m.max_cell_voltage, CellVoltage::from_hundredths(0));
    assert_eq!(m.max_cell_voltage_group, 0);
    assert_eq!(m.soc, Soc::EMPTY);
    assert_eq!(m.remaining_time_min, 0);
    assert_eq!(m.output_voltage, Voltage::from_tenths(0));
    assert_eq!(m.output_current, Current::from_tenths(-4000));
    assert_eq!(m.charging_time_min, 0);
}

fn bms_demand() -> BmsDemand {
    BmsDemand {
        serial: serial(),
        pile_code: pile(PILE),
        connector: connector(1),
        voltage_demand: Voltage::from_tenths(4020),
        current_demand: Current::from_tenths(1500),
        charging_mode: ChargingMode::ConstantCurrent,
        measured_voltage: Voltage::from_tenths(3987),
        measured_current: Current::from_tenths(1495),
        max_cell_voltage: CellVoltage::from_hundredths(412),
        max_cell_voltage_group: 11,
        soc: Soc::new(54).unwrap(),
        remaining_time_min: 38,
        output_voltage: Voltage::from_tenths(3990),
        output_current: Current::from_tenths(1496),
        charging_time_min: 17,
    }
}

#[test]
fn bms_demand_values_round_trip() {
    let bytes = encode_decode(bms_demand(), BMS_DEMAND_LEN);
    let body = &bytes[6..];
    assert_eq!(
        &body[26..28],
        &5500u16.to_le_bytes(),
        "150 A + 400 A offset"
    );
    assert_eq!(body[28], 2, "constant current");
    // 4.12 V = 412 = 0x19C in bits 0-11, group 11 in bits 12-15 → 0xB19C.
    assert_eq!(&body[33..35], &[0x9C, 0xB1]);
}

#[test]
fn bms_demand_validation() {
    // Body offsets: mode 28, cell word 33, SoC 35, remaining 36, charging time 42.
    assert_out_of_range(
        decode_err(&demand_hex("03", "0000", "00", "0000", "0000")),
        "charging_mode",
        6 + 28,
        3,
    );
    assert_out_of_range(
        decode_err(&demand_hex("01", "61F9", "00", "0000", "0000")),
        "max_cell_voltage",
        6 + 33,
        2401,
    );
    assert_out_of_range(
        decode_err(&demand_hex("01", "60F9", "65", "0000", "0000")),
        "soc",
        6 + 35,
        101,
    );
    assert_out_of_range(
        decode_err(&demand_hex("01", "60F9", "64", "5902", "0000")),
        "remaining_time",
        6 + 36,
        601,
    );
    assert_out_of_range(
        decode_err(&demand_hex("01", "60F9", "64", "5802", "5902")),
        "charging_time",
        6 + 42,
        601,
    );
    let f = frame::decode(&sample(&demand_hex("01", "60F9", "64", "5802", "5802"))).unwrap();
    let Message::BmsDemand(m) = f.message else {
        panic!()
    };
    assert_eq!(m.charging_mode, ChargingMode::ConstantVoltage);
    assert_eq!(m.max_cell_voltage, CellVoltage::from_hundredths(2400));
    assert_eq!(m.max_cell_voltage_group, 15);

    let mut m = bms_demand();
    m.max_cell_voltage_group = 16;
    assert_encode_field(encode_err(m), "max_cell_voltage_group");
    let mut m = bms_demand();
    m.max_cell_voltage = CellVoltage::from_hundredths(2401);
    assert_encode_field(encode_err(m), "max_cell_voltage");
    let mut m = bms_demand();
    m.remaining_time_min = 601;
    assert_encode_field(encode_err(m), "remaining_time");
    let mut m = bms_demand();
    m.charging_time_min = 601;
    assert_encode_field(encode_err(m), "charging_time");
}

// ---------------------------------------------------------------------------------------------
// 0x25
// ---------------------------------------------------------------------------------------------

fn info_hex(fields: &str) -> String {
    format!("68 23 0021 00 25 {SERIAL} {PILE} 01 {fields} 72B9")
}

#[test]
fn bms_info_sample_7_10() {
    // Serial fixed to 32 digits (see the top of the file).
    let f = round_trip(&sample(&info_hex("00 00 00 00 00 00 00")));
    assert_eq!(f.sequence, 0x2100);
    let Message::BmsInfo(m) = f.message else {
        panic!("not 0x25: {:?}", f.message)
    };
    assert_eq!(m.serial.to_string(), SERIAL);
    assert_eq!(m.max_cell_voltage_no, 1, "1 offset: wire 0 is cell 1");
    assert_eq!(m.max_battery_temperature, Temperature::from_celsius(-50));
    assert_eq!(m.max_temperature_probe_no, 1);
    assert_eq!(m.min_battery_temperature, Temperature::from_celsius(-50));
    assert_eq!(m.min_temperature_probe_no, 1);
    assert_eq!(m.status, BmsStatusFlags(0));
    assert_eq!(m.status.charging_allowed(), Some(false));
}

#[test]
fn bms_info_values_and_status_bits() {
    let m = BmsInfo {
        serial: serial(),
        pile_code: pile(PILE),
        connector: connector(1),
        max_cell_voltage_no: 256,
        max_battery_temperature: Temperature::from_celsius(200),
        max_temperature_probe_no: 128,
        min_battery_temperature: Temperature::from_celsius(-50),
        min_temperature_probe_no: 3,
        // cell high, SoC low, over-current, over-temp untrusted, insulation n/a, connector ok,
        // charging allowed, reserved bits 11.
        status: BmsStatusFlags(0b11_01_00_11_10_01_10_01),
    };
    let bytes = encode_decode(m.clone(), BMS_INFO_LEN);
    assert_eq!(&bytes[6 + 24..6 + 29], &[255, 250, 127, 0, 2]);
    let s = m.status;
    assert_eq!(s.cell_voltage(), HighLow::TooHigh);
    assert_eq!(s.soc(), HighLow::TooLow);
    assert_eq!(s.over_current(), FlagState::Set);
    assert_eq!(s.over_temperature(), FlagState::Untrusted);
    assert_eq!(s.insulation(), FlagState::NotAvailable);
    assert_eq!(s.output_connector(), FlagState::Normal);
    assert_eq!(s.charging_allowed(), Some(true));
    assert_eq!(BmsStatusFlags(0b10 << 12).charging_allowed(), None);
    assert_eq!(HighLow::from_bits(3), HighLow::NotAvailable);
    assert_eq!(HighLow::from_bits(0), HighLow::Normal);
}

#[test]
fn bms_info_validation() {
    // Body offsets: max temperature 25, max probe 26, min temperature 27, min probe 28.
    assert_out_of_range(
        decode_err(&info_hex("FF FB 00 00 00 0000")),
        "max_battery_temperature",
        6 + 25,
        251,
    );
    assert_out_of_range(
        decode_err(&info_hex("FF FA 80 00 00 0000")),
        "max_temperature_probe_no",
        6 + 26,
        128,
    );
    assert_out_of_range(
        decode_err(&info_hex("FF FA 7F FB 00 0000")),
        "min_battery_temperature",
        6 + 27,
        251,
    );
    assert_out_of_range(
        decode_err(&info_hex("FF FA 7F FA 80 0000")),
        "min_temperature_probe_no",
        6 + 28,
        128,
    );
    assert!(frame::decode(&sample(&info_hex("FF FA 7F FA 7F FFFF"))).is_ok());

    let base = || BmsInfo {
        serial: TransactionSerial::NONE,
        pile_code: pile(PILE),
        connector: connector(1),
        max_cell_voltage_no: 1,
        max_battery_temperature: Temperature::from_celsius(20),
        max_temperature_probe_no: 1,
        min_battery_temperature: Temperature::from_celsius(20),
        min_temperature_probe_no: 1,
        status: BmsStatusFlags(0),
    };
    let mut m = base();
    m.max_cell_voltage_no = 0;
    assert_encode_field(encode_err(m), "max_cell_voltage_no");
    let mut m = base();
    m.max_cell_voltage_no = 257;
    assert_encode_field(encode_err(m), "max_cell_voltage_no");
    let mut m = base();
    m.max_temperature_probe_no = 129;
    assert_encode_field(encode_err(m), "max_temperature_probe_no");
    let mut m = base();
    m.min_temperature_probe_no = 0;
    assert_encode_field(encode_err(m), "min_temperature_probe_no");
    let mut m = base();
    m.min_battery_temperature = Temperature::from_celsius(201);
    assert_encode_field(encode_err(m), "min_battery_temperature");
}

// ---------------------------------------------------------------------------------------------
// All chapter 7 bodies
// ---------------------------------------------------------------------------------------------

const CHAPTER_7: [(u8, usize); 10] = [
    (ReadRealTimeData::TYPE, 8),
    (RealTimeData::TYPE, REAL_TIME_DATA_LEN),
    (ChargingHandshake::TYPE, CHARGING_HANDSHAKE_LEN),
    (ParameterConfig::TYPE, PARAMETER_CONFIG_LEN),
    (ChargingFinished::TYPE, CHARGING_FINISHED_LEN),
    (ErrorReport::TYPE, ERROR_REPORT_LEN),
    (BmsStop::TYPE, STOP_LEN),
    (ChargerStop::TYPE, STOP_LEN),
    (BmsDemand::TYPE, BMS_DEMAND_LEN),
    (BmsInfo::TYPE, BMS_INFO_LEN),
];

#[test]
fn names_match_the_registry() {
    assert_eq!(RealTimeData::NAME, "real_time_data");
    assert_eq!(ReadRealTimeData::NAME, "read_real_time_data");
    assert_eq!(ChargingHandshake::NAME, "charging_handshake");
    assert_eq!(ParameterConfig::NAME, "parameter_config");
    assert_eq!(ChargingFinished::NAME, "charging_finished");
    assert_eq!(ErrorReport::NAME, "error_report");
    assert_eq!(BmsStop::NAME, "bms_stop");
    assert_eq!(ChargerStop::NAME, "charger_stop");
    assert_eq!(BmsDemand::NAME, "bms_demand");
    assert_eq!(BmsInfo::NAME, "bms_info");
}

#[test]
fn every_prefix_of_a_body_is_a_truncation_error() {
    for (t, len) in CHAPTER_7 {
        // An all-zero body with valid BCD is valid for every chapter 7 type.
        let body = vec![0u8; len];
        assert!(Message::decode_body(t, &body).is_ok(), "type 0x{t:02X}");
        for cut in 0..len {
            match Message::decode_body(t, &body[..cut]) {
                Err(FrameError::TruncatedBody { offset, .. }) => assert!(offset <= 6 + cut),
                other => panic!("type 0x{t:02X} cut at {cut}: {other:?}"),
            }
        }
    }
}

/// Re-encodes a decoded body.
fn body_bytes(m: &Message) -> Vec<u8> {
    let mut buf = BytesMut::new();
    Frame::new(0, m.clone()).encode(&mut buf).unwrap();
    buf[6..buf.len() - 2].to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, .. ProptestConfig::default() })]

    /// Any bytes either fail to decode with an error or decode to a message that re-encodes
    /// to exactly those bytes and survives JSON.
    #[test]
    fn any_body_round_trips_or_errors(
        which in 0usize..CHAPTER_7.len(),
        mut body in proptest::collection::vec(any::<u8>(), 0..80),
        bcd_prefix in any::<bool>(),
    ) {
        let (t, len) = CHAPTER_7[which];
        if bcd_prefix {
            // Make the id fields valid BCD so that the later fields get exercised.
            for b in body.iter_mut().take(len.min(24)) {
                *b = (((*b >> 4) % 10) << 4) | ((*b & 0x0F) % 10);
            }
        }
        if let Ok(m) = Message::decode_body(t, &body) {
            prop_assert_eq!(body_bytes(&m), body.clone());
            let json = serde_json::to_value(&m).unwrap();
            let back: Message = serde_json::from_value(json).unwrap();
            prop_assert_eq!(back, m);
        }
    }

    /// Exact-length bodies with valid ids and in-range values always round-trip.
    #[test]
    fn real_time_data_in_range_round_trips(
        rest in proptest::collection::vec(any::<u8>(), 33),
        status in 0u8..4, returned in 0u8..3, plugged in 0u8..2, soc in 0u8..=100,
    ) {
        let mut body = vec![0u8; 24];
        body.extend_from_slice(&[status, returned, plugged]);
        body.extend_from_slice(&rest);
        body[40] = soc;
        let m = Message::decode_body(RealTimeData::TYPE, &body).unwrap();
        prop_assert_eq!(body_bytes(&m), body);
    }
}
