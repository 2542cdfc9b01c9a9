//! The reference's sample frames for chapter 8 sections 8.1-8.10 (starts, stops, transaction
//! records, balance updates) decode to their documented values and re-encode byte for byte.
//! Sample checksums are placeholders in the reference: `sample()` recomputes them.

mod common;

use common::{round_trip, sample};
use rust_decimal_macros::dec;
use voltline_protocol::domain::ConnectorNo;
use voltline_protocol::frame::{self, fix_checksum};
use voltline_protocol::message::register::RateKind;
use voltline_protocol::message::transaction::*;
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::wire::text::FixedText;
use voltline_protocol::{EncodeError, Energy, Frame, FrameError, Message, Money};

/// A frame of `frame_type` around `body` (sequence 1, plain), checksum computed.
fn frame_of(frame_type: u8, body: &[u8]) -> Vec<u8> {
    let mut f = vec![0x68, (body.len() + 4) as u8, 0x01, 0x00, 0x00, frame_type];
    f.extend_from_slice(body);
    f.extend_from_slice(&[0, 0]);
    fix_checksum(&mut f);
    f
}

/// The body bytes of a frame.
fn body_of(frame: &[u8]) -> Vec<u8> {
    frame[6..frame.len() - 2].to_vec()
}

/// Encodes a message, checks the body length, decodes it back and compares.
fn encode_decode(message: Message, body_len: usize) -> Vec<u8> {
    let bytes = Frame::new(7, message.clone()).to_bytes().expect("encodes");
    assert_eq!(bytes.len(), 6 + body_len + 2, "body length per field table");
    assert_eq!(bytes[1] as usize, 4 + body_len);
    let f = round_trip(&bytes);
    assert_eq!(f.message, message);
    bytes.to_vec()
}

fn out_of_range(frame: &[u8]) -> (&'static str, usize, i64) {
    match frame::decode(frame) {
        Err(FrameError::OutOfRange {
            field,
            offset,
            value,
            ..
        }) => (field, offset, value),
        other => panic!("expected OutOfRange, got {other:?}"),
    }
}

fn conn(n: u8) -> ConnectorNo {
    ConnectorNo::new(n).unwrap()
}

fn time(b: [u8; 7]) -> Cp56Time {
    Cp56Time::from_bytes(b).unwrap()
}

// ---------------------------------------------------------------------------------------------
// 8.1 0x31 pile-initiated start request

const PILE_START_REQUEST: &str = "68 37 0004 00 31 32010200000001 01 01 00 00000000D14B0A54 \
     00000000000000000000000000000000 0000000000000000000000000000000000 F496";

#[test]
fn pile_start_request_sample_8_1() {
    let f = round_trip(&sample(PILE_START_REQUEST));
    let Message::PileStartRequest(m) = f.message else {
        panic!("not a pile start request: {:?}", f.message)
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.method, StartMethod::Card);
    assert!(!m.password_required);
    assert_eq!(m.card.to_string(), "00000000D14B0A54");
    assert_eq!(m.password_md5, FixedText::EMPTY);
    assert_eq!(m.vin_reversed, FixedText::EMPTY);
}

#[test]
fn pile_start_request_with_vin_and_password() {
    let vin = "LSVAU2180N2183294";
    let reversed: String = vin.chars().rev().collect();
    let m = PileStartRequest {
        pile_code: "32010200000001".parse().unwrap(),
        connector: conn(2),
        method: StartMethod::Vin,
        password_required: true,
        card: "0000000012345678".parse().unwrap(),
        password_md5: FixedText::from_text("49ba59abbe56e057").unwrap(),
        vin_reversed: FixedText::from_text(&reversed).unwrap(),
    };
    assert_eq!(m.vin_in_reading_order().as_text(), Some(vin));
    let bytes = encode_decode(m.into(), 51);
    // The VIN goes on the wire reversed.
    assert_eq!(&bytes[6 + 34..6 + 51], reversed.as_bytes());
}

#[test]
fn pile_start_request_bad_method_and_flag() {
    let mut body = body_of(&sample(PILE_START_REQUEST));
    body[8] = 0x04;
    assert_eq!(out_of_range(&frame_of(0x31, &body)), ("method", 6 + 8, 4));
    body[8] = 0x01;
    body[9] = 0x02;
    assert_eq!(
        out_of_range(&frame_of(0x31, &body)),
        ("password_required", 6 + 9, 2)
    );
}

// ---------------------------------------------------------------------------------------------
// 8.2 0x32 platform confirms a pile-initiated start

const PILE_START_REPLY: &str = "68 2A 00 04 00 32 32 01 02 00 00 00 01 01 20 18 06 12 19 59 57 85 \
     32 01 02 00 00 00 01 01 00 00 00 00 00 00 00 00 00 00 00 00 00 01 E8 29";

#[test]
fn pile_start_reply_sample_8_2() {
    let f = round_trip(&sample(PILE_START_REPLY));
    let Message::PileStartReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.serial.to_string(), "32010200000001012018061219595785");
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.connector.get(), 1);
    assert!(m.logical_card.is_zero());
    assert_eq!(m.balance, Money::ZERO);
    assert_eq!(m.authorised, Outcome::Failed);
    assert_eq!(m.failure, AuthFailure::AccountNotFound);
}

#[test]
fn pile_start_reply_non_trivial() {
    let m = PileStartReply {
        serial: "32010200000001012018061219595785".parse().unwrap(),
        pile_code: "32010200000001".parse().unwrap(),
        connector: conn(1),
        logical_card: "1000000573".parse().unwrap(),
        balance: Money::from_yuan(dec!(1234.56)),
        authorised: Outcome::Succeeded,
        failure: AuthFailure::None,
    };
    let bytes = encode_decode(m.into(), 38);
    // 123456 = 0x0001E240, little-endian.
    assert_eq!(&bytes[6 + 32..6 + 36], &[0x40, 0xE2, 0x01, 0x00]);
}

#[test]
fn pile_start_reply_bad_codes() {
    let mut body = body_of(&sample(PILE_START_REPLY));
    body[36] = 0x02;
    assert_eq!(
        out_of_range(&frame_of(0x32, &body)),
        ("authorised", 6 + 36, 2)
    );
    body[36] = 0x00;
    body[37] = 0x0C;
    assert_eq!(
        out_of_range(&frame_of(0x32, &body)),
        ("failure", 6 + 37, 0x0C)
    );
    // 0x0A and 0x0B (not BCD, though the table says BCD) are accepted.
    body[37] = 0x0B;
    let f = round_trip(&frame_of(0x32, &body));
    let Message::PileStartReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.failure, AuthFailure::CardsNotSupported);
}

#[test]
fn balance_that_is_not_whole_fen_is_refused() {
    let m = PileStartReply {
        serial: "32010200000001012018061219595785".parse().unwrap(),
        pile_code: "32010200000001".parse().unwrap(),
        connector: conn(1),
        logical_card: "1".parse().unwrap(),
        balance: Money::from_yuan(dec!(1.005)),
        authorised: Outcome::Succeeded,
        failure: AuthFailure::None,
    };
    assert!(matches!(
        Frame::new(0, m).to_bytes(),
        Err(EncodeError::Field {
            field: "balance",
            ..
        })
    ));
}

// ---------------------------------------------------------------------------------------------
// 8.3 0x34 remote start, 8.4 0x33 its reply

const REMOTE_START: &str = "68 30 007C 00 34 55031412782305012018061914444680 55031412782305 01 \
     0000001000000573 00000000D14B0A54 A0860100 4622";

#[test]
fn remote_start_sample_8_3() {
    let f = round_trip(&sample(REMOTE_START));
    assert_eq!(f.sequence, 0x7C00);
    let Message::RemoteStart(m) = f.message else {
        panic!()
    };
    assert_eq!(m.serial.to_string(), "55031412782305012018061914444680");
    assert_eq!(m.pile_code.to_string(), "55031412782305");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.logical_card.to_string(), "0000001000000573");
    assert_eq!(m.physical_card.to_string(), "00000000D14B0A54");
    // A0860100 = 100000 at 0.01 yuan.
    assert_eq!(m.balance, Money::from_yuan(dec!(1000.00)));
}

#[test]
fn remote_start_bad_bcd_logical_card() {
    let mut body = body_of(&sample(REMOTE_START));
    body[24 + 3] = 0x1A;
    match frame::decode(&frame_of(0x34, &body)) {
        Err(FrameError::BadBcd {
            field,
            offset,
            byte,
            ..
        }) => assert_eq!((field, offset, byte), ("logical_card", 6 + 27, 0x1A)),
        other => panic!("{other:?}"),
    }
}

const REMOTE_START_REPLY: &str =
    "68 1E 0002 00 33 32010200000000111511161555350260 32010200000001 01 01 00 0FE2";

#[test]
fn remote_start_reply_sample_8_4() {
    let f = round_trip(&sample(REMOTE_START_REPLY));
    let Message::RemoteStartReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.serial.to_string(), "32010200000000111511161555350260");
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.result, Outcome::Succeeded);
    assert_eq!(m.failure, RemoteStartFailure::None);
}

#[test]
fn remote_start_reply_bad_codes() {
    let mut body = body_of(&sample(REMOTE_START_REPLY));
    body[24] = 0x02;
    assert_eq!(out_of_range(&frame_of(0x33, &body)), ("result", 6 + 24, 2));
    body[24] = 0x00;
    body[25] = 0x06;
    assert_eq!(out_of_range(&frame_of(0x33, &body)), ("failure", 6 + 25, 6));
    body[25] = 0x05;
    let f = round_trip(&frame_of(0x33, &body));
    let Message::RemoteStartReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.failure, RemoteStartFailure::NotPluggedIn);
}

// ---------------------------------------------------------------------------------------------
// 8.5 0x36 remote stop, 8.6 0x35 its reply

#[test]
fn remote_stop_sample_8_5() {
    let f = round_trip(&sample("68 0C 0003 00 36 32010200000001 01 C1A9"));
    let Message::RemoteStop(m) = f.message else {
        panic!()
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.connector.get(), 1);
}

const REMOTE_STOP_REPLY: &str = "68 0E 0003 00 35 32010200000001 01 01 00 907E";

#[test]
fn remote_stop_reply_sample_8_6() {
    let f = round_trip(&sample(REMOTE_STOP_REPLY));
    let Message::RemoteStopReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.result, Outcome::Succeeded);
    assert_eq!(m.failure, RemoteStopFailure::None);
}

#[test]
fn remote_stop_reply_bad_codes() {
    let mut body = body_of(&sample(REMOTE_STOP_REPLY));
    body[8] = 0x10;
    assert_eq!(
        out_of_range(&frame_of(0x35, &body)),
        ("result", 6 + 8, 0x10)
    );
    body[8] = 0x00;
    body[9] = 0x04;
    assert_eq!(out_of_range(&frame_of(0x35, &body)), ("failure", 6 + 9, 4));
    body[9] = 0x02;
    let f = round_trip(&frame_of(0x35, &body));
    let Message::RemoteStopReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.result, Outcome::Failed);
    assert_eq!(m.failure, RemoteStopFailure::NotCharging);
}

// ---------------------------------------------------------------------------------------------
// 8.7 0x3B transaction record, 8.8 0x40 its acknowledgement

/// Sample 8.7. Its transaction flag is 0x02, annotated "app 启动" (app start), but the field
/// table says 0x01 is app and 0x02 is card: we follow the table (the record also carries a
/// physical card number). Its stop-reason row points at "appendix 11.1"; the table is 13.1.
const TRANSACTION_RECORD: &str = "68 A2 8001 00 3B 55031412782305012018061910262392 \
     55031412782305 01 98B70E11100314 98B70E11100314 \
     D0FB0100 00000000 00000000 00000000 \
     D0FB0100 00000000 00000000 00000000 \
     D0FB0100 00000000 00000000 00000000 \
     D0FB0100 00000000 00000000 00000000 \
     0000000000 0000000000 00000000 00000000 00000000 \
     0000000000000000000000000000000000 02 98B70E11100314 00 00000000D14B0A54 388C";

#[test]
fn transaction_record_sample_8_7() {
    let bytes = sample(TRANSACTION_RECORD);
    assert_eq!(bytes.len(), 2 + 0xA2 + 2, "158-byte body");
    let f = round_trip(&bytes);
    assert_eq!(f.sequence, 0x0180);
    let Message::TransactionRecord(m) = f.message else {
        panic!()
    };
    assert_eq!(m.serial.to_string(), "55031412782305012018061910262392");
    assert_eq!(m.pile_code.to_string(), "55031412782305");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.start_time.to_string(), "2020-03-16T17:14:47.000");
    assert_eq!(m.end_time.to_string(), "2020-03-16T17:14:47.000");
    for (kind, line) in m.period_lines() {
        // D0FB0100 = 130000 at 0.00001 yuan.
        assert_eq!(line.unit_price, Money::from_yuan(dec!(1.30000)), "{kind:?}");
        assert_eq!(line.energy, Energy::ZERO);
        assert_eq!(line.loss_adjusted_energy, Energy::ZERO);
        assert_eq!(line.amount, Money::ZERO);
    }
    assert_eq!(m.meter_start, Energy::ZERO);
    assert_eq!(m.meter_end, Energy::ZERO);
    assert_eq!(m.meter_delta(), Some(Energy::ZERO));
    assert_eq!(m.total_energy(), Energy::ZERO);
    assert_eq!(m.loss_adjusted_total_energy, Energy::ZERO);
    assert_eq!(m.total_amount(), Money::ZERO);
    assert_eq!(m.vin, FixedText::EMPTY);
    assert_eq!(m.origin, TransactionOrigin::CARD);
    assert_eq!(m.transaction_time.to_string(), "2020-03-16T17:14:47.000");
    assert_eq!(m.stop_reason, StopReason::NONE);
    assert_eq!(m.physical_card.to_string(), "00000000D14B0A54");
}

fn busy_record() -> TransactionRecord {
    let line =
        |price: rust_decimal::Decimal, kwh: &str, amount: rust_decimal::Decimal| PeriodLine {
            unit_price: Money::from_yuan(price),
            energy: kwh.parse().unwrap(),
            loss_adjusted_energy: kwh.parse().unwrap(),
            amount: Money::from_yuan(amount),
        };
    TransactionRecord {
        serial: "32010600019236012001061803423060".parse().unwrap(),
        pile_code: "32010600019236".parse().unwrap(),
        connector: conn(1),
        // 2020-01-06 18:03:42.250 and 2020-01-06 19:45:10.000
        start_time: time([0x0A, 0xA5, 3, 18, 6, 1, 20]),
        end_time: time([0x10, 0x27, 45, 19, 6, 1, 20]),
        periods: [
            line(dec!(1.52345), "1.5", dec!(2.2852)),
            line(dec!(1.20000), "10.1234", dec!(12.1481)),
            line(dec!(0.85000), "3.0001", dec!(2.5501)),
            line(dec!(0.40001), "0", dec!(0)),
        ],
        meter_start: "1099511.0000".parse().unwrap(), // above 2^32 units: needs 5 bytes
        meter_end: "1099525.6235".parse().unwrap(),
        total_energy: "14.6235".parse().unwrap(),
        loss_adjusted_total_energy: "14.6235".parse().unwrap(),
        total_amount: Money::from_yuan(dec!(16.9834)),
        vin: FixedText::from_text("LSVAU2180N2183294").unwrap(),
        origin: TransactionOrigin::APP,
        transaction_time: time([0x10, 0x27, 45, 19, 6, 1, 20]),
        stop_reason: StopReason::SOC_FULL,
        physical_card: PhysicalCardNo::NONE,
    }
}

#[test]
fn transaction_record_non_trivial_round_trip() {
    let m = busy_record();
    assert_eq!(m.meter_delta(), Some(m.total_energy()));
    assert_eq!(m.period_energy_sum(), m.total_energy());
    assert_eq!(m.period_amount_sum(), m.total_amount());
    assert_eq!(
        m.period(RateKind::Peak).unit_price,
        Money::from_yuan(dec!(1.2))
    );
    let bytes = encode_decode(m.into(), 158);
    // Sharp unit price 1.52345 → 152345 = 0x00025319 at 0.00001 yuan.
    assert_eq!(&bytes[6 + 38..6 + 42], &[0x19, 0x53, 0x02, 0x00]);
    // Sharp amount 2.2852 → 22852 = 0x5944 at 0.0001 yuan.
    assert_eq!(&bytes[6 + 50..6 + 54], &[0x44, 0x59, 0x00, 0x00]);
    // Meter start 1099511.0000 kWh = 10995110000 units = 0x028F5C1070 (5 bytes LE).
    assert_eq!(&bytes[6 + 102..6 + 107], &[0x70, 0x10, 0x5C, 0x8F, 0x02]);
    // Stop reason byte.
    assert_eq!(bytes[6 + 149], 0x41);
}

#[test]
fn meter_delta_is_none_when_the_register_goes_backwards() {
    let mut m = busy_record();
    std::mem::swap(&mut m.meter_start, &mut m.meter_end);
    assert_eq!(m.meter_delta(), None);
}

#[test]
fn transaction_record_keeps_an_undocumented_origin_but_refuses_a_bad_time() {
    let mut body = body_of(&sample(TRANSACTION_RECORD));
    assert_eq!(body.len(), 158);
    // 0x03 is not in the transaction flag table, but a bill must never be refused for it:
    // the record decodes, keeps the byte, and says it is undocumented.
    body[141] = 0x03;
    let f = round_trip(&frame_of(0x3B, &body));
    let Message::TransactionRecord(m) = f.message else {
        panic!()
    };
    assert_eq!(m.origin, TransactionOrigin(0x03));
    assert_eq!(m.origin.describe(), None);
    assert_eq!(TransactionOrigin::CARD.describe(), Some("card start"));
    body[141] = 0x02;
    body[24 + 5] = 13; // start time month 13
    assert_eq!(
        out_of_range(&frame_of(0x3B, &body)),
        ("start_time", 6 + 24 + 5, 13)
    );
}

#[test]
fn transaction_record_accepts_any_stop_reason() {
    let mut body = body_of(&sample(TRANSACTION_RECORD));
    body[149] = 0xFF;
    let f = round_trip(&frame_of(0x3B, &body));
    let Message::TransactionRecord(m) = f.message else {
        panic!()
    };
    assert_eq!(m.stop_reason, StopReason(0xFF));
    assert!(!m.stop_reason.is_documented());
}

#[test]
fn transaction_record_truncated_body() {
    let body = body_of(&sample(TRANSACTION_RECORD));
    match frame::decode(&frame_of(0x3B, &body[..150])) {
        Err(FrameError::TruncatedBody {
            field,
            offset,
            needed,
            ..
        }) => assert_eq!((field, offset, needed), ("physical_card", 6 + 150, 8)),
        other => panic!("{other:?}"),
    }
}

#[test]
fn transaction_record_refuses_values_the_fields_cannot_carry() {
    let mut m = busy_record();
    m.total_amount = Money::from_yuan(dec!(16.98345)); // finer than 0.0001 yuan
    assert!(matches!(
        Frame::new(0, m).to_bytes(),
        Err(EncodeError::Field {
            field: "total_amount",
            ..
        })
    ));
    let mut m = busy_record();
    m.periods[2].unit_price = Money::from_yuan(dec!(0.850001)); // finer than 0.00001 yuan
    assert!(matches!(
        Frame::new(0, m).to_bytes(),
        Err(EncodeError::Field {
            field: "flat_unit_price",
            ..
        })
    ));
    let mut m = busy_record();
    m.meter_end = Energy::from_wire_units(1 << 40); // does not fit 5 bytes
    assert!(matches!(
        Frame::new(0, m).to_bytes(),
        Err(EncodeError::Field {
            field: "meter_end",
            ..
        })
    ));
    let mut m = busy_record();
    m.total_energy = Energy::from_mwh(150); // finer than 0.0001 kWh
    assert!(matches!(
        Frame::new(0, m).to_bytes(),
        Err(EncodeError::Field {
            field: "total_energy",
            ..
        })
    ));
}

const TRANSACTION_RECORD_ACK: &str = "68 15 0002 00 40 55031412782305012018061910262392 00 48B1";

#[test]
fn transaction_record_ack_sample_8_8() {
    let f = round_trip(&sample(TRANSACTION_RECORD_ACK));
    let Message::TransactionRecordAck(m) = f.message else {
        panic!()
    };
    assert_eq!(m.serial.to_string(), "55031412782305012018061910262392");
    assert_eq!(m.result, RecordAckResult::Accepted);
}

#[test]
fn transaction_record_ack_bad_result() {
    let mut body = body_of(&sample(TRANSACTION_RECORD_ACK));
    body[16] = 0x02;
    assert_eq!(out_of_range(&frame_of(0x40, &body)), ("result", 6 + 16, 2));
}

// ---------------------------------------------------------------------------------------------
// 8.9 0x42 balance update, 8.10 0x41 its reply

#[test]
fn balance_update_sample_8_9() {
    let f = round_trip(&sample(
        "68 18 0006 00 42 32010200000001 01 00000000D14B0A54 00000000 72EA",
    ));
    let Message::BalanceUpdate(m) = f.message else {
        panic!()
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.physical_card.to_string(), "00000000D14B0A54");
    assert_eq!(m.balance, Money::ZERO);
}

#[test]
fn balance_update_non_trivial() {
    let m = BalanceUpdate {
        pile_code: "32010200000001".parse().unwrap(),
        connector: conn(2),
        physical_card: PhysicalCardNo::NONE,
        balance: Money::from_yuan(dec!(88.88)),
    };
    let bytes = encode_decode(m.into(), 20);
    // 8888 = 0x22B8 at 0.01 yuan.
    assert_eq!(&bytes[6 + 16..6 + 20], &[0xB8, 0x22, 0x00, 0x00]);
}

/// Sample 8.10 writes the length byte as 0x13, but its body (pile code 7 + card 8 + result 1
/// = 16 bytes, as the field table says) needs 0x14: we follow the table.
const BALANCE_UPDATE_REPLY: &str = "68 14 0006 00 41 32010200000001 00000000D14B0A54 01 4AC4";

#[test]
fn balance_update_reply_sample_8_10() {
    let literal = sample("68 13 0006 00 41 32010200000001 00000000D14B0A54 01 4AC4");
    assert!(
        frame::decode(&literal).is_err(),
        "the sample's own length byte is one short"
    );
    let f = round_trip(&sample(BALANCE_UPDATE_REPLY));
    let Message::BalanceUpdateReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.physical_card.to_string(), "00000000D14B0A54");
    assert_eq!(m.result, BalanceUpdateResult::WrongPileCode);
}

#[test]
fn balance_update_reply_bad_result() {
    let mut body = body_of(&sample(BALANCE_UPDATE_REPLY));
    body[15] = 0x03;
    assert_eq!(out_of_range(&frame_of(0x41, &body)), ("result", 6 + 15, 3));
}

// ---------------------------------------------------------------------------------------------
// Helper types

#[test]
fn stop_reason_describes_documented_codes() {
    assert_eq!(
        StopReason(0x40).describe(),
        "Charging finished: stopped remotely from the app"
    );
    assert_eq!(
        StopReason(0x41).describe(),
        "Charging finished: SoC reached 100%"
    );
    assert_eq!(
        StopReason(0x4E).describe(),
        "Start failed: insufficient balance"
    );
    assert_eq!(StopReason(0x6E).describe(), "Aborted: insufficient balance");
    assert_eq!(StopReason(0x90).describe(), "Stopped for an unknown reason");
    assert_eq!(
        StopReason(0x47).describe(),
        "Charging finished: other (reserved)"
    );
    assert_eq!(StopReason(0x91).describe(), "Not in the stop-reason table");
    // Every code in 0x40..=0x90 has a description of its own category.
    for code in 0x40..=0x90u8 {
        let r = StopReason(code);
        assert!(r.is_documented());
        assert_ne!(r.describe(), "Not in the stop-reason table", "0x{code:02X}");
    }
    assert_eq!(
        StopReason(0x83).to_string(),
        "0x83 (Aborted: the pile lost power)"
    );
}

#[test]
fn stop_reason_classes() {
    assert!(StopReason::APP_REMOTE_STOP.is_normal());
    assert!(StopReason::MANUAL_STOP.is_normal());
    assert!(!StopReason::MANUAL_STOP.is_abnormal());
    assert!(StopReason(0x4A).is_start_failure());
    assert!(!StopReason(0x4A).is_normal());
    assert!(StopReason(0x6A).is_abnormal());
    assert!(StopReason::UNKNOWN.is_abnormal());
    assert_eq!(StopReason::NONE.category(), StopCategory::None);
    assert!(!StopReason::NONE.is_normal());
    assert_eq!(StopReason(0x20).category(), StopCategory::Undocumented);
    assert_eq!(serde_json::to_string(&StopReason(0x41)).unwrap(), "65");
}

#[test]
fn physical_card_json_is_hex() {
    let c: PhysicalCardNo = "00000000D14B0A54".parse().unwrap();
    assert_eq!(serde_json::to_string(&c).unwrap(), "\"00000000D14B0A54\"");
    let back: PhysicalCardNo = serde_json::from_str("\"00000000d14b0a54\"").unwrap();
    assert_eq!(back, c);
    assert!(serde_json::from_str::<PhysicalCardNo>("\"D14B0A54\"").is_err());
    assert!(!c.is_none());
    assert!(PhysicalCardNo::NONE.is_none());
}
