//! The reference's sample frames for chapter 7 (real-time data and the GB/T 27930 charging
//! stages, types 0x12-0x25) decode to their documented values and re-encode byte for byte.
//! Sample checksums are recomputed by `sample()` (they are placeholders in the reference).
//!
//! Every GB/T sample of chapter 7 (0x15-0x25) prints its transaction serial as
//! `3201020000000011151116155535026`: 31 digits, one short of the 16 BCD bytes the field
//! tables give. The same serial appears with 32 digits in chapter 8's samples
//! (`32010200000000111511161555350260`, e.g. 8.3), so these tests use that form: the field
//! table wins, and every sample's length byte then equals 4 + the table's body length.

#[path = "../common/mod.rs"]
mod common;

use bytes::BytesMut;
use common::{round_trip, sample};
use proptest::prelude::*;
use rust_decimal_macros::dec;
use voltline_protocol::domain::{ConnectorNo, Current, Energy, Soc, Temperature, Voltage};
use voltline_protocol::message::realtime::*;
use voltline_protocol::message::Body;
use voltline_protocol::wire::text::FixedText;
use voltline_protocol::{
    frame, EncodeError, Frame, FrameError, Message, Money, PileCode, Power, TransactionSerial,
};

/// The serial of the chapter 7 samples, with the missing final digit restored (see above).
const SERIAL: &str = "32010200000000111511161555350260";
/// The pile code of the chapter 7 GB/T samples.
const PILE: &str = "32010200000001";

fn serial() -> TransactionSerial {
    SERIAL.parse().unwrap()
}

fn pile(s: &str) -> PileCode {
    s.parse().unwrap()
}

fn connector(n: u8) -> ConnectorNo {
    ConnectorNo::new(n).unwrap()
}

/// Encodes `message` in a frame, checks the body length against the field table, decodes it
/// again and checks it is unchanged; returns the frame bytes.
fn encode_decode(message: impl Into<Message>, body_len: usize) -> Vec<u8> {
    let message = message.into();
    let bytes = Frame::new(0x0102, message.clone()).to_bytes().unwrap();
    assert_eq!(
        bytes.len(),
        6 + body_len + 2,
        "body length per the field table"
    );
    assert_eq!(bytes[1] as usize, 4 + body_len, "length byte");
    let f = round_trip(&bytes);
    assert_eq!(f.message, message);
    bytes.to_vec()
}

/// Decodes a frame built from `hex` (checksum recomputed) and returns the error.
fn decode_err(hex_text: &str) -> FrameError {
    frame::decode(&sample(hex_text)).expect_err("frame must not decode")
}

fn encode_err(message: impl Into<Message>) -> EncodeError {
    Frame::new(0, message)
        .to_bytes()
        .expect_err("must not encode")
}

fn assert_out_of_range(err: FrameError, want_field: &str, want_offset: usize, want_value: i64) {
    match err {
        FrameError::OutOfRange {
            field,
            offset,
            value,
            ..
        } => {
            assert_eq!(field, want_field);
            assert_eq!(offset, want_offset, "offset of field '{field}'");
            assert_eq!(value, want_value);
        }
        other => panic!("expected OutOfRange on '{want_field}', got {other:?}"),
    }
}

fn assert_encode_field(err: EncodeError, want: &str) {
    match err {
        EncodeError::Field { field, .. } => assert_eq!(field, want),
        other => panic!("expected a field error on '{want}', got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// 0x12, 0x13
// ---------------------------------------------------------------------------------------------

#[test]
fn read_real_time_data_sample_7_1() {
    let f = round_trip(&sample("68 0C 0000 00 12 32010200000001 01 0069"));
    assert_eq!(f.sequence, 0);
    let Message::ReadRealTimeData(m) = f.message else {
        panic!("not 0x12: {:?}", f.message)
    };
    assert_eq!(m.pile_code.to_string(), PILE);
    assert_eq!(m.connector.get(), 1);
}

/// The 0x13 sample as printed in 7.2.
const REAL_TIME_SAMPLE: &str = "68 40 1A03 00 13 \
     00000000000000000000000000000000 55031412782305 01 \
     00 01 01 0200 0000 00 0000000000000000 00 00 0000 0000 \
     00000000 00000000 00000000 0000 9DAC";

#[test]
fn real_time_data_sample_7_2() {
    let f = round_trip(&sample(REAL_TIME_SAMPLE));
    assert_eq!(f.sequence, 0x031A);
    let Message::RealTimeData(m) = f.message else {
        panic!("not 0x13: {:?}", f.message)
    };
    assert!(m.serial.is_none());
    assert!(!m.has_transaction());
    assert_eq!(m.pile_code.to_string(), "55031412782305");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.status, ConnectorStatus::Offline);
    assert_eq!(m.gun_returned, GunReturned::Yes);
    assert_eq!(m.gun_plugged, GunPlugged::Yes);
    assert!(m.is_plugged());
    // The sample annotates "0200" as "输出电压：0", but by the field table (LE, 0.1 V) it is
    // 2 → 0.2 V; the table wins.
    assert_eq!(m.output_voltage, Voltage::from_tenths(2));
    assert_eq!(m.output_current, Current::from_tenths(0));
    // Annotated "枪线温度：10", but wire 0 with the table's -50 offset is -50 °C ("待机置零").
    assert_eq!(m.gun_temperature, Temperature::from_celsius(-50));
    assert_eq!(m.gun_wire_code, [0; 8]);
    assert_eq!(m.soc, Soc::EMPTY);
    assert_eq!(m.battery_max_temperature, Temperature::from_celsius(-50));
    assert_eq!(m.charging_time_min, 0);
    assert_eq!(m.remaining_time_min, 0);
    assert_eq!(m.energy, Energy::ZERO);
    assert_eq!(m.billed_energy, Energy::ZERO);
    assert_eq!(m.amount, Money::ZERO);
    assert_eq!(m.hardware_faults, HardwareFaults::NONE);
    assert!(!m.is_charging());
    assert!(!m.is_faulted());
    assert_eq!(m.output_power(), Power::ZERO);
}

fn charging_real_time_data() -> RealTimeData {
    RealTimeData {
        serial: serial(),
        pile_code: pile(PILE),
        connector: connector(2),
        status: ConnectorStatus::Charging,
        gun_returned: GunReturned::No,
        gun_plugged: GunPlugged::Yes,
        output_voltage: Voltage::from_tenths(7503),
        output_current: Current::from_tenths(1205),
        gun_temperature: Temperature::from_celsius(35),
        gun_wire_code: [1, 2, 3, 4, 5, 6, 7, 8],
        soc: Soc::new(67).unwrap(),
        battery_max_temperature: Temperature::from_celsius(28),
        charging_time_min: 42,
        remaining_time_min: 31,
        energy: Energy::from_kwh(dec!(12.3456)).unwrap(),
        billed_energy: Energy::from_kwh(dec!(12.5925)).unwrap(),
        amount: Money::from_yuan(dec!(23.4567)),
        hardware_faults: HardwareFaults::NONE.with(HardwareFault::DoorOpen),
    }
}

#[test]
fn real_time_data_charging_values_round_trip() {
    let m = charging_real_time_data();
    let bytes = encode_decode(m.clone(), REAL_TIME_DATA_LEN);
    let body = &bytes[6..6 + REAL_TIME_DATA_LEN];
    assert_eq!(body[24], 3, "status");
    assert_eq!(&body[27..29], &7503u16.to_le_bytes(), "voltage at 0.1 V");
    assert_eq!(
        &body[29..31],
        &1205u16.to_le_bytes(),
        "current at 0.1 A, no offset"
    );
    assert_eq!(body[31], 85, "35 °C + 50");
    assert_eq!(
        &body[46..50],
        &123_456u32.to_le_bytes(),
        "energy at 0.0001 kWh"
    );
    assert_eq!(
        &body[54..58],
        &234_567u32.to_le_bytes(),
        "amount at 0.0001 yuan"
    );
    assert_eq!(
        &body[58..60],
        &0x1000u16.to_le_bytes(),
        "Bit13 (door) is bit 12"
    );
    assert!(m.is_charging());
    assert!(m.is_faulted(), "a hardware fault bit counts as faulted");
    assert!(m.has_transaction());
    // 750.3 V × 120.5 A = 90411.15 W → 90411 W.
    assert_eq!(m.output_power(), Power::from_watts(90_411));
}

#[test]
fn real_time_data_json_is_readable() {
    let json = serde_json::to_value(Message::from(charging_real_time_data())).unwrap();
    assert_eq!(json["name"], "real_time_data");
    let body = &json["body"];
    assert_eq!(body["serial"], SERIAL);
    assert_eq!(body["status"], "charging");
    assert_eq!(body["gun_returned"], "no");
    assert_eq!(body["gun_plugged"], "yes");
    assert_eq!(body["output_voltage_v"], "750.3");
    assert_eq!(body["output_current_a"], "120.5");
    assert_eq!(body["gun_temperature_c"], 35);
    assert_eq!(body["soc_pct"], 67);
    assert_eq!(body["charging_time_min"], 42);
    assert_eq!(body["energy_kwh"], "12.3456");
    assert_eq!(body["amount_yuan"], "23.4567");
    assert_eq!(body["hardware_faults"], 4096);
}

#[test]
fn real_time_data_idle_is_the_standby_zero_form() {
    let m = RealTimeData::idle(pile("55031412782305"), connector(1));
    let bytes = encode_decode(m.clone(), REAL_TIME_DATA_LEN);
    let body = &bytes[6..6 + REAL_TIME_DATA_LEN];
    assert_eq!(&body[24..27], &[2, 1, 0], "idle, holstered, unplugged");
    assert!(
        body[27..].iter().all(|&b| b == 0),
        "every measurement at wire zero"
    );
    assert!(!m.is_charging() && !m.is_faulted() && !m.is_plugged());
}

#[test]
fn real_time_data_bad_codes_are_out_of_range() {
    // Body offsets 24, 25, 26 → frame offsets 30, 31, 32.
    let with = |status: &str, returned: &str, plugged: &str, soc: &str| {
        format!(
            "68 40 1A03 00 13 00000000000000000000000000000000 55031412782305 01 \
             {status} {returned} {plugged} 0200 0000 00 0000000000000000 {soc} 00 0000 0000 \
             00000000 00000000 00000000 0000 9DAC"
        )
    };
    assert_out_of_range(decode_err(&with("04", "01", "01", "00")), "status", 30, 4);
    assert_out_of_range(
        decode_err(&with("00", "03", "01", "00")),
        "gun_returned",
        31,
        3,
    );
    assert_out_of_range(
        decode_err(&with("00", "01", "02", "00")),
        "gun_plugged",
        32,
        2,
    );
    // SoC at body offset 40 → frame offset 46.
    assert_out_of_range(decode_err(&with("03", "01", "01", "65")), "soc", 46, 101);
    assert!(frame::decode(&sample(&with("03", "01", "01", "64"))).is_ok());
}

#[test]
fn real_time_data_truncated_and_long_bodies_are_errors() {
    let full = sample(REAL_TIME_SAMPLE);
    // Drop the last body byte: the hardware fault word is cut.
    let mut short = full[..full.len() - 3].to_vec();
    short[1] -= 1;
    short.extend_from_slice(&[0, 0]);
    frame::fix_checksum(&mut short);
    match frame::decode(&short).unwrap_err() {
        FrameError::TruncatedBody { field, offset, .. } => {
            assert_eq!(field, "hardware_faults");
            assert_eq!(offset, 6 + 58);
        }
        other => panic!("{other:?}"),
    }
    // One byte too many.
    let mut long = full[..full.len() - 2].to_vec();
    long[1] += 1;
    long.extend_from_slice(&[0xAA, 0, 0]);
    frame::fix_checksum(&mut long);
    assert!(matches!(
        frame::decode(&long).unwrap_err(),
        FrameError::TrailingBody { extra: 1, .. }
    ));
}

#[test]
fn real_time_data_refuses_unencodable_values() {
    let mut m = charging_real_time_data();
    m.energy = Energy::from_mwh(150); // finer than 0.0001 kWh
    assert_encode_field(encode_err(m), "energy");
    let mut m = charging_real_time_data();
    m.amount = Money::from_yuan(dec!(-1));
    assert_encode_field(encode_err(m), "amount");
    let mut m = charging_real_time_data();
    m.gun_temperature = Temperature::from_celsius(-51);
    assert_encode_field(encode_err(m), "gun_temperature");
}

#[test]
fn hardware_fault_accessors_follow_bit_order() {
    let f = HardwareFaults(0b0001_0000_0000_0001);
    assert!(f.emergency_stop(), "Bit1 is the lowest bit");
    assert!(f.door_open(), "Bit13 is bit 12");
    assert!(!f.no_rectifier_module());
    assert_eq!(
        f.iter().collect::<Vec<_>>(),
        vec![HardwareFault::EmergencyStop, HardwareFault::DoorOpen]
    );
    assert_eq!(f.undocumented(), 0);
    type Accessor = fn(HardwareFaults) -> bool;
    let each: [(u16, Accessor); 13] = [
        (1 << 0, HardwareFaults::emergency_stop),
        (1 << 1, HardwareFaults::no_rectifier_module),
        (1 << 2, HardwareFaults::outlet_over_temperature),
        (1 << 3, HardwareFaults::ac_surge_protection),
        (1 << 4, HardwareFaults::dc20_comm_lost),
        (1 << 5, HardwareFaults::fc08_comm_lost),
        (1 << 6, HardwareFaults::meter_comm_lost),
        (1 << 7, HardwareFaults::card_reader_comm_lost),
        (1 << 8, HardwareFaults::rc10_comm_lost),
        (1 << 9, HardwareFaults::fan_controller_fault),
        (1 << 10, HardwareFaults::dc_fuse_fault),
        (1 << 11, HardwareFaults::hv_contactor_fault),
        (1 << 12, HardwareFaults::door_open),
    ];
    for (i, (mask, get)) in each.iter().enumerate() {
        let word = HardwareFaults(*mask);
        assert!(get(word), "bit {i}");
        assert_eq!(word.iter().count(), 1);
        assert_eq!(HardwareFault::ALL[i].mask(), *mask);
        assert!(!HardwareFault::ALL[i].describe().is_empty());
        assert!(!get(HardwareFaults(!*mask)), "bit {i} alone");
    }
    let undocumented = HardwareFaults(0x8000);
    assert!(undocumented.any());
    assert_eq!(undocumented.iter().count(), 0);
    assert_eq!(undocumented.undocumented(), 0x8000);
    assert_eq!(HardwareFault::DoorOpen.describe(), "cabinet door open");
    assert_eq!(
        serde_json::to_string(&HardwareFaults(0x1001)).unwrap(),
        "4097"
    );
}

// ---------------------------------------------------------------------------------------------
// 0x15
// ---------------------------------------------------------------------------------------------

fn handshake_hex(battery_type: &str, ymd: &str, ownership: &str) -> String {
    format!(
        "68 4D 0015 00 15 {SERIAL} {PILE} 01 000000 {battery_type} 0000 0000 00000000 00000000 \
         {ymd} 000000 {ownership} 00 0000000000000000000000000000000000 0000000000000000 FED2"
    )
}

#[test]
fn charging_handshake_sample_7_3() {
    // Serial fixed to 32 digits (see the top of the file). The sample's battery type, month
    // and day are 00, outside the table (01-08/FF, 1-12, 1-31): accepted as "not reported".
    let f = round_trip(&sample(&handshake_hex("00", "00 00 00", "00")));
    assert_eq!(f.sequence, 0x1500);
    let Message::ChargingHandshake(m) = f.message else {
        panic!("not 0x15: {:?}", f.message)
    };
    assert_eq!(m.serial.to_string(), SERIAL);
    assert_eq!(m.pile_code.to_string(), PILE);
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.bms_protocol_version, [0, 0, 0]);
    assert_eq!(m.battery_type, BatteryType::NotReported);
    assert_eq!(m.rated_capacity_ah_x10, 0);
    assert_eq!(m.rated_voltage, Voltage::from_tenths(0));
    assert_eq!(m.battery_manufacturer, FixedText::EMPTY);
    assert_eq!(m.battery_pack_no, 0);
    assert_eq!(m.production_year, 1985, "wire 0 is 1985");
    assert_eq!(m.production_month, 0);
    assert_eq!(m.production_day, 0);
    assert_eq!(m.charge_cycles, 0);
    assert_eq!(m.ownership, BatteryOwnership::Leased);
    assert_eq!(m.reserved, 0);
    assert_eq!(m.vin, FixedText::EMPTY);
    assert_eq!(m.bms_software_version, [0; 8]);
}

#[test]
fn charging_handshake_values_round_trip() {
    let m = ChargingHandshake {
        serial: serial(),
        pile_code: pile(PILE),
        connector: connector(1),
        bms_protocol_version: [0x01, 0x01, 0x00],
        battery_type: BatteryType::LithiumIronPhosphate,
        rated_capacity_ah_x10: 1500,
        rated_voltage: Voltage::from_tenths(3500),
        battery_manufacturer: FixedText::from_text("CATL").unwrap(),
        battery_pack_no: 0x1234_5678,
        production_year: 2023,
        production_month: 11,
        production_day: 30,
        charge_cycles: 0x01_0203,
        ownership: BatteryOwnership::VehicleOwned,
        reserved: 0xFF,
        vin: FixedText::from_text("LSVAU2180N2123456").unwrap(),
        bms_software_version: [0x10, 0x0A, 0x0B, 0x07, 0xDF, 0xFF, 0xFF, 0xFF],
    };
    let bytes = encode_decode(m, CHARGING_HANDSHAKE_LEN);
    let body = &bytes[6..];
    assert_eq!(body[27], 0x03, "battery type");
    assert_eq!(body[40], 38, "2023 - 1985");
    assert_eq!(
        &body[43..46],
        &[0x03, 0x02, 0x01],
        "charge cycles, 3 bytes LE"
    );
}

#[test]
fn charging_handshake_validation() {
    // Offsets in the body: battery type 27, year 40, month 41, day 42, ownership 46.
    assert_out_of_range(
        decode_err(&handshake_hex("09", "00 00 00", "00")),
        "battery_type",
        6 + 27,
        9,
    );
    assert!(frame::decode(&sample(&handshake_hex("FF", "FA 0C 1F", "01"))).is_ok());
    assert_out_of_range(
        decode_err(&handshake_hex("01", "FB 01 01", "00")),
        "production_year",
        6 + 40,
        251,
    );
    assert_out_of_range(
        decode_err(&handshake_hex("01", "00 0D 01", "00")),
        "production_month",
        6 + 41,
        13,
    );
    assert_out_of_range(
        decode_err(&handshake_hex("01", "00 01 20", "00")),
        "production_day",
        6 + 42,
        32,
    );
    assert_out_of_range(
        decode_err(&handshake_hex("01", "00 01 01", "02")),
        "ownership",
        6 + 46,
        2,
    );

    let Message::ChargingHandshake(ok) =
        frame::decode(&sample(&handshake_hex("01", "00 01 01", "00")))
            .unwrap()
            .message
    else {
        panic!()
    };
    let mut m = ok.clone();
    m.production_year = 1984;
    assert_encode_field(encode_err(m), "production_year");
    let mut m = ok.clone();
    m.production_year = 2236;
    assert_encode_field(encode_err(m), "production_year");
    let mut m = ok.clone();
    m.production_month = 13;
    assert_encode_field(encode_err(m), "production_month");
    let mut m = ok.clone();
    m.production_day = 32;
    assert_encode_field(encode_err(m), "production_day");
    let mut m = ok;
    m.charge_cycles = 1 << 24;
    assert_encode_field(encode_err(m), "charge_cycles");
}

// ---------------------------------------------------------------------------------------------
// 0x17
// ---------------------------------------------------------------------------------------------

const PARAMETER_SAMPLE: &str =
    "68 31 0016 00 17 32010200000000111511161555350260 32010200000001 01 \
     0000 0000 0000 0000 00 0000 0000 0000 0000 0000 0000 D18A";

#[test]
fn parameter_config_sample_7_4() {
    // Serial fixed to 32 digits (see the top of the file).
    let f = round_trip(&sample(PARAMETER_SAMPLE));
    assert_eq!(f.sequence, 0x1600);
    let Message::ParameterConfig(m) = f.message else {
        panic!("not 0x17: {:?}", f.message)
    };
    assert_eq!(m.serial.to_string(), SERIAL);
    assert_eq!(m.max_cell_charge_voltage, CellVoltage::from_hundredths(0));
    assert_eq!(
        m.max_charge_current,
        Current::from_tenths(-4000),
        "-400 A offset"
    );
    assert_eq!(m.nominal_energy, Energy::ZERO);
    assert_eq!(m.max_charge_voltage, Voltage::from_tenths(0));
    assert_eq!(m.max_temperature, Temperature::from_celsius(-50));
    assert_eq!(m.soc_pct_x10, 0);
    assert_eq!(m.battery_voltage, Voltage::from_tenths(0));
    assert_eq!(m.pile_max_output_voltage, Voltage::from_tenths(0));
    assert_eq!(m.pile_min_output_voltage, Voltage::from_tenths(0));
    assert_eq!(m.pile_max_output_current, Current::from_tenths(-4000));
    assert_eq!(m.pile_min_output_current, Current::from_tenths(-4000));
}

fn parameter_config() -> ParameterConfig {
    ParameterConfig {
        serial: serial(),
        pile_code: pile(PILE),
        connector: connector(1),
        max_cell_charge_voltage: CellVoltage::from_hundredths(365),
        max_charge_current: Current::from_tenths(2500),
        nominal_energy: Energy::from_kwh(dec!(75.5)).unwrap(),
        max_charge_voltage: Voltage::from_tenths(4100),
        max_temperature: Temperature::from_celsius(55),
        soc_pct_x10: 235,
        battery_voltage: Voltage::from_tenths(3655),
        pile_max_output_voltage: Voltage::from_tenths(7500),
        pile_min_output_voltage: Voltage::from_tenths(2000),
        pile_max_output_current: Current::from_tenths(2000),
        pile_min_output_current: Current::from_tenths(0),
    }
}

#[test]
fn parameter_config_values_round_trip() {
    let bytes = encode_decode(parameter_config(), PARAMETER_CONFIG_LEN);
    let body = &bytes[6..];
    assert_eq!(&body[24..26], &365u16.to_le_bytes(), "0.01 V");
    assert_eq!(
        &body[26..28],
        &6500u16.to_le_bytes(),
        "250 A + 400 A offset"
    );
    assert_eq!(&body[28..30], &755u16.to_le_bytes(), "0.1 kWh");
    assert_eq!(body[32], 105, "55 °C + 50");
    assert_eq!(&body[43..45], &4000u16.to_le_bytes(), "0 A + 400 A offset");
}

#[test]
fn parameter_config_validation() {
    let with = |fields: &str| {
        format!("68 31 0016 00 17 {SERIAL} {PILE} 01 {fields} 0000 0000 0000 0000 0000 D18A")
    };
    // Body offsets: cell voltage 24, energy 28, temperature 32, SoC 33.
    assert_out_of_range(
        decode_err(&with("6109 0000 0000 0000 00 0000")),
        "max_cell_charge_voltage",
        6 + 24,
        2401,
    );
    assert_out_of_range(
        decode_err(&with("6009 0000 1127 0000 00 0000")),
        "nominal_energy",
        6 + 28,
        10001,
    );
    assert_out_of_range(
        decode_err(&with("6009 0000 1027 0000 FB 0000")),
        "max_temperature",
        6 + 32,
        251,
    );
    assert_out_of_range(
        decode_err(&with("6009 0000 1027 0000 FA E903")),
        "soc",
        6 + 33,
        1001,
    );
    assert!(frame::decode(&sample(&with("6009 0000 1027 0000 FA E803"))).is_ok());

    let mut m = parameter_config();
    m.max_cell_charge_voltage = CellVoltage::from_hundredths(2401);
    assert_encode_field(encode_err(m), "max_cell_charge_voltage");
    let mut m = parameter_config();
    m.nominal_energy = Energy::from_kwh(dec!(75.55)).unwrap();
    assert_encode_field(encode_err(m), "nominal_energy");
    let mut m = parameter_config();
    m.nominal_energy = Energy::from_kwh(dec!(1000.1)).unwrap();
    assert_encode_field(encode_err(m), "nominal_energy");
    let mut m = parameter_config();
    m.max_temperature = Temperature::from_celsius(201);
    assert_encode_field(encode_err(m), "max_temperature");
    let mut m = parameter_config();
    m.soc_pct_x10 = 1001;
    assert_encode_field(encode_err(m), "soc");
    let mut m = parameter_config();
    m.max_charge_current = Current::from_tenths(-4001);
    assert_encode_field(encode_err(m), "max_charge_current");
}

// ---------------------------------------------------------------------------------------------
// 0x19
// ---------------------------------------------------------------------------------------------

mod later_frames;
