//! The second half of the samples_maint_parallel_v2g cases (split to keep files focused).

use super::*;

#[test]
fn parallel_serial_must_be_bcd() {
    let cmd = sample(PARALLEL_REMOTE_START_SAMPLE);
    // parallel serial at body offset 16+7+1+8+8+4 = 44
    match decode_with_body_byte(&cmd, 45, 0x1A) {
        FrameError::BadBcd {
            field,
            offset,
            byte,
            ..
        } => {
            assert_eq!(field, "parallel_serial");
            assert_eq!(offset, 6 + 45);
            assert_eq!(byte, 0x1A);
        }
        other => panic!("expected BadBcd, got {other:?}"),
    }
}

#[test]
fn parallel_truncated_and_trailing_bodies_are_errors() {
    let cmd = sample(PARALLEL_REMOTE_START_REPLY_SAMPLE);
    // drop the last body byte
    let mut short = cmd[..cmd.len() - 3].to_vec();
    short.extend_from_slice(&[0, 0]);
    short[1] -= 1;
    fix_checksum(&mut short);
    assert!(matches!(
        frame::decode(&short),
        Err(FrameError::TruncatedBody {
            field: "parallel_serial",
            ..
        })
    ));
    // one byte too many
    let mut long = cmd[..cmd.len() - 2].to_vec();
    long.extend_from_slice(&[0x00, 0, 0]);
    long[1] += 1;
    fix_checksum(&mut long);
    assert!(matches!(
        frame::decode(&long),
        Err(FrameError::TrailingBody { extra: 1, .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// V2G extension (PROTOCOL.md): no samples exist; frames are built from the table.

const SERIAL: &str = "32010200000001012405011200000007";
const PILE: &str = "32010200000001";

fn at(h: i8, m: i8) -> Cp56Time {
    Cp56Time::from_civil(date(2024, 5, 1).at(h, m, 0, 0)).unwrap()
}

fn discharge_start() -> DischargeStart {
    DischargeStart {
        serial: txn(SERIAL),
        pile_code: pile(PILE),
        connector: gun(1),
        soc_floor: Soc::new(30).unwrap(),
        max_discharge_power: Power::from_watts(11_000),
        end_time: at(21, 30),
    }
}

#[test]
fn discharge_start_0xc2() {
    let bytes = build_and_round_trip(discharge_start(), 16 + 7 + 1 + 1 + 2 + 7);
    assert_eq!(bytes[5], 0xC2);
    assert_eq!(bytes[6 + 24], 30, "SoC floor");
    assert_eq!(
        &bytes[6 + 25..6 + 27],
        &[110, 0],
        "11 kW = 110 × 0.1 kW, LE"
    );
    // largest power the 2 unsigned bytes carry
    build_and_round_trip(
        DischargeStart {
            max_discharge_power: Power::from_wire_units(65_535),
            ..discharge_start()
        },
        34,
    );
}

#[test]
fn discharge_start_refuses_unencodable_power() {
    for watts in [-100, 6_553_600, 11_050] {
        let m = DischargeStart {
            max_discharge_power: Power::from_watts(watts),
            ..discharge_start()
        };
        assert!(
            matches!(
                Frame::new(0, m).to_bytes(),
                Err(EncodeError::Field {
                    field: "max_discharge_power",
                    ..
                })
            ),
            "{watts} W must not encode"
        );
    }
}

#[test]
fn discharge_start_soc_floor_above_100_is_out_of_range() {
    let bytes = build_and_round_trip(discharge_start(), 34);
    assert_out_of_range(decode_with_body_byte(&bytes, 24, 101), "soc_floor", 30, 101);
}

#[test]
fn discharge_start_reply_0xc1() {
    let m = DischargeStartReply {
        serial: txn(SERIAL),
        pile_code: pile(PILE),
        connector: gun(1),
        result: Outcome::Failed,
        reason: DischargeReason::SocAtOrBelowFloor,
    };
    let bytes = build_and_round_trip(m, 16 + 7 + 1 + 1 + 1);
    assert_eq!(&bytes[6 + 24..6 + 26], &[0, 4]);
    assert_out_of_range(decode_with_body_byte(&bytes, 24, 2), "result", 30, 2);
    assert_out_of_range(decode_with_body_byte(&bytes, 25, 6), "reason", 31, 6);
}

#[test]
fn discharge_setpoint_0xc4() {
    let m = DischargeSetpoint {
        pile_code: pile(PILE),
        connector: gun(2),
        discharge_power: Power::from_watts(7_400),
        valid_for_s: 90,
    };
    let bytes = build_and_round_trip(m.clone(), 7 + 1 + 2 + 2);
    assert_eq!(&bytes[6 + 8..6 + 12], &[74, 0, 90, 0]);
    let negative = DischargeSetpoint {
        discharge_power: Power::from_watts(-7_400),
        ..m.clone()
    };
    assert!(Frame::new(0, negative).to_bytes().is_err());
    let too_fine = DischargeSetpoint {
        discharge_power: Power::from_watts(7_450),
        ..m
    };
    assert!(Frame::new(0, too_fine).to_bytes().is_err());
}

#[test]
fn discharge_setpoint_reply_0xc3() {
    let m = DischargeSetpointReply {
        pile_code: pile(PILE),
        connector: gun(2),
        result: Outcome::Succeeded,
    };
    let bytes = build_and_round_trip(m, 7 + 1 + 1);
    assert_out_of_range(decode_with_body_byte(&bytes, 8, 0xFF), "result", 14, 255);
}

#[test]
fn discharge_stop_0xc6() {
    let m = DischargeStop {
        pile_code: pile(PILE),
        connector: gun(1),
    };
    build_and_round_trip(m, 7 + 1);
}

#[test]
fn discharge_stop_reply_0xc5() {
    let m = DischargeStopReply {
        pile_code: pile(PILE),
        connector: gun(1),
        result: Outcome::Failed,
        reason: DischargeReason::Faulted,
    };
    let bytes = build_and_round_trip(m, 7 + 1 + 1 + 1);
    assert_out_of_range(decode_with_body_byte(&bytes, 8, 3), "result", 14, 3);
    assert_out_of_range(decode_with_body_byte(&bytes, 9, 9), "reason", 15, 9);
}

fn meter() -> BidirectionalMeter {
    BidirectionalMeter {
        serial: txn(SERIAL),
        pile_code: pile(PILE),
        connector: gun(1),
        // 5-byte registers beyond 32 bits
        import_register: Energy::from_wire_units(0x01_2345_6789),
        export_register: Energy::from_wire_units(98_765),
        active_power: Power::from_watts(-7_400),
        soc: Soc::new(64).unwrap(),
    }
}

#[test]
fn bidirectional_meter_0xc7() {
    let bytes = build_and_round_trip(meter(), 16 + 7 + 1 + 5 + 5 + 4 + 1);
    let body = &bytes[6..bytes.len() - 2];
    assert_eq!(&body[24..29], &[0x89, 0x67, 0x45, 0x23, 0x01]);
    assert_eq!(
        &body[34..38],
        &(-74i32).to_le_bytes(),
        "negative = discharging"
    );
    let Message::BidirectionalMeter(m) = frame::decode(&bytes).unwrap().message else {
        panic!()
    };
    assert_eq!(m.active_power.kw(), dec!(-7.4));
    assert_eq!(m.export_register.kwh(), dec!(9.8765));
    // charging is positive
    build_and_round_trip(
        BidirectionalMeter {
            active_power: Power::from_kw(22),
            ..meter()
        },
        39,
    );
}

#[test]
fn bidirectional_meter_range_checks() {
    let bytes = build_and_round_trip(meter(), 39);
    assert_out_of_range(decode_with_body_byte(&bytes, 38, 101), "soc", 44, 101);
    let too_big = BidirectionalMeter {
        import_register: Energy::from_wire_units(1 << 40),
        ..meter()
    };
    assert!(matches!(
        Frame::new(0, too_big).to_bytes(),
        Err(EncodeError::Field {
            field: "import_register",
            ..
        })
    ));
}

fn record() -> DischargeRecord {
    DischargeRecord {
        serial: txn(SERIAL),
        pile_code: pile(PILE),
        connector: gun(1),
        start_time: at(18, 0),
        end_time: at(21, 30),
        export_register_start: Energy::from_wire_units(1_000_000),
        export_register_end: Energy::from_wire_units(1_251_234),
        exported_energy: Energy::from_wire_units(251_234),
        stop_reason: DischargeStopReason(0x40),
    }
}

#[test]
fn discharge_record_0xc9() {
    let bytes = build_and_round_trip(record(), 16 + 7 + 1 + 7 + 7 + 5 + 5 + 4 + 1);
    assert_eq!(
        bytes[bytes.len() - 3],
        0x40,
        "stop reason is the last body byte"
    );
    assert_eq!(record().register_delta(), record().exported_energy);
    // any stop-reason byte is kept
    for code in [0x00, 0x58, 0xFF] {
        build_and_round_trip(
            DischargeRecord {
                stop_reason: DischargeStopReason(code),
                ..record()
            },
            53,
        );
    }
    // the exported energy has only 4 bytes
    let too_big = DischargeRecord {
        exported_energy: Energy::from_wire_units(1 << 32),
        ..record()
    };
    assert!(matches!(
        Frame::new(0, too_big).to_bytes(),
        Err(EncodeError::Field {
            field: "exported_energy",
            ..
        })
    ));
}

#[test]
fn discharge_record_bad_time_is_out_of_range() {
    let bytes = build_and_round_trip(record(), 53);
    // start time at body offset 24; its month byte is the 6th
    assert_out_of_range(
        decode_with_body_byte(&bytes, 24 + 5, 13),
        "start_time",
        6 + 29,
        13,
    );
}

#[test]
fn discharge_record_ack_0xca() {
    let m = DischargeRecordAck {
        serial: txn(SERIAL),
        result: Outcome::Succeeded,
    };
    let bytes = build_and_round_trip(m, 16 + 1);
    assert_eq!(bytes[6 + 16], 1);
    assert_out_of_range(decode_with_body_byte(&bytes, 16, 2), "result", 22, 2);
}

#[test]
fn v2g_json_is_readable() {
    let json = serde_json::to_value(Message::from(meter())).unwrap();
    assert_eq!(json["name"], "bidirectional_meter");
    assert_eq!(json["body"]["active_power_kw"], "-7.4");
    assert_eq!(json["body"]["soc_pct"], 64);
    let json = serde_json::to_value(Message::from(DischargeStartReply {
        serial: txn(SERIAL),
        pile_code: pile(PILE),
        connector: gun(1),
        result: Outcome::Failed,
        reason: DischargeReason::NotV2gCapable,
    }))
    .unwrap();
    assert_eq!(json["body"]["result"], "failed");
    assert_eq!(json["body"]["reason"], "not_v2g_capable");
}

// ---------------------------------------------------------------------------------------------
// robustness: arbitrary bodies never panic, and whatever decodes re-encodes byte for byte

#[test]
fn arbitrary_bodies_decode_without_panic_and_round_trip() {
    use voltline_protocol::wire::write::BodyWriter;
    // (type, body length per the field table)
    const TYPES: [(u8, usize); 17] = [
        (0x91, 8),
        (0x92, 8),
        (0x93, 8),
        (0x94, 94),
        (0xA1, 58),
        (0xA2, 44),
        (0xA3, 33),
        (0xA4, 50),
        (0xC1, 26),
        (0xC2, 34),
        (0xC3, 9),
        (0xC4, 12),
        (0xC5, 10),
        (0xC6, 8),
        (0xC7, 39),
        (0xC9, 53),
        (0xCA, 17),
    ];
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for (frame_type, len) in TYPES {
        let mut decoded = 0;
        for round in 0..2_000 {
            // Mostly small bytes (valid BCD and codes), sometimes anything; lengths around the
            // table's.
            let n = match round % 4 {
                0 => (next() % (len as u64 + 4)) as usize,
                _ => len,
            };
            let body: Vec<u8> = (0..n)
                .map(|_| {
                    let r = next();
                    if r % 8 == 0 {
                        (r >> 8) as u8
                    } else {
                        ((r >> 8) % 2) as u8
                    }
                })
                .collect();
            if let Ok(m) = Message::decode_body(frame_type, &body) {
                decoded += 1;
                assert_eq!(
                    body.len(),
                    len,
                    "0x{frame_type:02X} decoded a body of wrong length"
                );
                let mut out = bytes::BytesMut::new();
                m.write_body(&mut BodyWriter::new(&mut out, m.name()))
                    .expect("a decoded body encodes");
                assert_eq!(&out[..], &body[..], "0x{frame_type:02X} is not byte-exact");
            }
        }
        assert!(decoded > 0, "0x{frame_type:02X}: no random body decoded");
    }
}
