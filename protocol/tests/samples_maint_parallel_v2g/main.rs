//! Remote maintenance (chapter 11), parallel charging (chapter 12) and Voltline's V2G
//! extension (PROTOCOL.md).
//!
//! Chapters 11 and 12: every sample frame of the reference decodes to its documented values
//! and re-encodes byte for byte. Sample checksums are placeholders in the reference, so
//! `sample()` recomputes them. V2G frames have no samples: each is built from PROTOCOL.md's
//! table, encoded, checked for length, decoded and compared.

#[path = "../common/mod.rs"]
mod common;

use common::{round_trip, sample};
use jiff::civil::date;
use rust_decimal_macros::dec;
use voltline_protocol::domain::{ConnectorNo, Soc};
use voltline_protocol::frame::{self, fix_checksum};
use voltline_protocol::message::maintenance::*;
use voltline_protocol::message::parallel::*;
use voltline_protocol::message::v2g::*;
use voltline_protocol::message::{direction_of, Direction};
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::wire::text::FixedText;
use voltline_protocol::{EncodeError, Energy, Frame, FrameError, Message, Money, PileCode, Power};

// ---------------------------------------------------------------------------------------------
// helpers

fn pile(code: &str) -> PileCode {
    code.parse().unwrap()
}

fn gun(n: u8) -> ConnectorNo {
    ConnectorNo::new(n).unwrap()
}

fn txn(s: &str) -> voltline_protocol::TransactionSerial {
    voltline_protocol::TransactionSerial(s.parse().unwrap())
}

/// Encodes `message`, checks the body length against the field table, decodes it back,
/// compares, and checks the JSON round trip. Returns the frame bytes.
fn build_and_round_trip(message: impl Into<Message>, body_len: usize) -> Vec<u8> {
    let message = message.into();
    let bytes = Frame::new(0x1234, message.clone())
        .to_bytes()
        .expect("encodes")
        .to_vec();
    assert_eq!(
        bytes.len(),
        body_len + 8,
        "frame = start, length, sequence (2), flag, type, body, CRC (2)"
    );
    assert_eq!(bytes[1] as usize, body_len + 4, "length byte = 4 + body");
    let f = round_trip(&bytes);
    assert_eq!(f.sequence, 0x1234);
    assert_eq!(f.message, message);
    bytes
}

/// Sets body byte `at` (offset within the body) of a frame to `value`, fixes the checksum
/// and decodes.
fn decode_with_body_byte(frame_bytes: &[u8], at: usize, value: u8) -> FrameError {
    let mut b = frame_bytes.to_vec();
    b[6 + at] = value;
    fix_checksum(&mut b);
    frame::decode(&b).expect_err("mutated frame must not decode")
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
            assert_eq!(offset, want_offset);
            assert_eq!(value, want_value);
        }
        other => panic!("expected OutOfRange on {want_field}, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// chapter 11: remote reboot and update

#[test]
fn reboot_sample_11_1() {
    let f = round_trip(&sample("68 0C 0011 00 92 32010200000001 01 C1A9"));
    assert_eq!(f.sequence, 0x1100);
    let Message::Reboot(m) = f.message else {
        panic!("not a reboot: {:?}", f.message)
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.when, ExecuteWhen::Immediately);
}

#[test]
fn reboot_reply_sample_11_2() {
    let f = round_trip(&sample("68 0C 0011 00 91 32010200000001 01 C1A9"));
    let Message::RebootReply(m) = f.message else {
        panic!("not a reboot reply: {:?}", f.message)
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.result, RebootResult::Succeeded);
}

const UPDATE_SAMPLE: &str = "68 62 0026 00 94 55031412782305 01 0F00 \
     3131342E35352E3131342E3137340000 1500 73720000000000000000000000000000 \
     73723132330000000000000000000000 \
     41432D374B572F32303138303133310000000000000000000000000000000000 02 3C 7A2C";

#[test]
fn update_sample_11_3() {
    let bytes = sample(UPDATE_SAMPLE);
    assert_eq!(bytes[1], 4 + 94, "the field table totals 94 body bytes");
    let f = round_trip(&bytes);
    assert_eq!(f.sequence, 0x2600);
    let Message::Update(m) = f.message else {
        panic!("not an update: {:?}", f.message)
    };
    assert_eq!(m.pile_code.to_string(), "55031412782305");
    assert_eq!(m.pile_kind, UpdatePileKind::Dc);
    assert_eq!(m.pile_power_kw, 15);
    assert_eq!(m.server_address.as_text(), Some("114.55.114.174"));
    assert_eq!(m.server_port, 21, "15 00 little-endian: the FTP port");
    assert_eq!(m.username.as_text(), Some("sr"));
    assert_eq!(m.password.0.as_text(), Some("sr123"));
    assert_eq!(m.file_path.as_text(), Some("AC-7KW/20180131"));
    assert_eq!(m.when, ExecuteWhen::WhenIdle);
    assert_eq!(m.download_timeout_min, 60);
    // The password never shows in logs.
    let debug = format!("{m:?}");
    assert!(!debug.contains("sr123"), "{debug}");
    assert!(debug.contains("<redacted>"));
}

#[test]
fn update_reply_sample_11_4() {
    let f = round_trip(&sample("68 0C 0012 00 93 32010200000001 01 C1A9"));
    assert_eq!(f.sequence, 0x1200);
    let Message::UpdateReply(m) = f.message else {
        panic!("not an update reply: {:?}", f.message)
    };
    assert_eq!(m.status, UpdateStatus::WrongPileCode);
}

#[test]
fn update_built_from_values() {
    let m = Update {
        pile_code: pile("32010200000001"),
        pile_kind: UpdatePileKind::Ac,
        pile_power_kw: 7,
        server_address: FixedText::from_text("ftp.example.cn").unwrap(),
        server_port: 2121,
        username: FixedText::from_text("pileuser").unwrap(),
        password: UpdatePassword(FixedText::from_text("s3cret!").unwrap()),
        file_path: FixedText::from_text("/fw/AC-7KW/2024-05-01.bin").unwrap(),
        when: ExecuteWhen::Immediately,
        download_timeout_min: 15,
    };
    build_and_round_trip(m, 7 + 1 + 2 + 16 + 2 + 16 + 16 + 32 + 1 + 1);
}

#[test]
fn maintenance_codes_out_of_range() {
    let reboot = sample("68 0C 0011 00 92 32010200000001 01 C1A9");
    assert_out_of_range(decode_with_body_byte(&reboot, 7, 0x03), "when", 13, 3);
    assert_out_of_range(decode_with_body_byte(&reboot, 7, 0x00), "when", 13, 0);

    let reply = sample("68 0C 0011 00 91 32010200000001 01 C1A9");
    assert_out_of_range(decode_with_body_byte(&reply, 7, 0x02), "result", 13, 2);

    let update = sample(UPDATE_SAMPLE);
    assert_out_of_range(decode_with_body_byte(&update, 7, 0x00), "pile_kind", 13, 0);
    // execution control is at body offset 7+1+2+16+2+16+16+32 = 92
    assert_out_of_range(decode_with_body_byte(&update, 92, 0x07), "when", 98, 7);

    let update_reply = sample("68 0C 0012 00 93 32010200000001 01 C1A9");
    assert_out_of_range(
        decode_with_body_byte(&update_reply, 7, 0x04),
        "status",
        13,
        4,
    );
}

// ---------------------------------------------------------------------------------------------
// chapter 12: parallel charging

const PARALLEL_START_REQUEST_SAMPLE: &str = "68 3E 0004 00 A1 32010200000001 01 01 00 \
     00000000D14B0A54 00000000000000000000000000000000 \
     0000000000000000000000000000000000 00 201029112801 F496";

#[test]
fn parallel_start_request_sample_12_1() {
    let bytes = sample(PARALLEL_START_REQUEST_SAMPLE);
    assert_eq!(bytes[1], 4 + 58);
    let f = round_trip(&bytes);
    assert_eq!(f.sequence, 0x0400);
    let Message::ParallelStartRequest(m) = f.message else {
        panic!("not 0xA1: {:?}", f.message)
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.start_method, StartMethod::Card);
    assert!(!m.password_required);
    assert_eq!(m.account_or_card, [0, 0, 0, 0, 0xD1, 0x4B, 0x0A, 0x54]);
    assert_eq!(m.password_md5, FixedText::EMPTY);
    assert_eq!(m.vin(), None);
    assert_eq!(m.gun_role, GunRole::Main);
    assert_eq!(m.parallel_serial.to_string(), "201029112801");
    let json = serde_json::to_value(&m).unwrap();
    assert_eq!(json["account_or_card"], "00000000D14B0A54");
}

#[test]
fn parallel_start_request_by_vin() {
    let mut vin = *b"LSVAU2A37N2123456";
    vin.reverse();
    let m = ParallelStartRequest {
        pile_code: pile("32010200000001"),
        connector: gun(2),
        start_method: StartMethod::Vin,
        password_required: true,
        account_or_card: [0; 8],
        password_md5: FixedText::from_text("49ba59abbe56e057").unwrap(),
        vin_reversed: FixedText::from_bytes(vin),
        gun_role: GunRole::Auxiliary,
        parallel_serial: "240501120000".parse().unwrap(),
    };
    assert_eq!(m.vin().as_deref(), Some("LSVAU2A37N2123456"));
    build_and_round_trip(m, 7 + 1 + 1 + 1 + 8 + 16 + 17 + 1 + 6);
}

// The reference's sample for 0xA2 carries type byte 0x32 (copied from 0x32's sample): the
// section and the field table are 0xA2's, so the type byte is corrected to A2 here. Its
// length byte 0x30 = 4 + 44 agrees with the field table.
const PARALLEL_START_REPLY_SAMPLE: &str = "68 30 0004 00 A2 \
     32010200000001012018061219595785 32010200000001 01 0000000000000000 00000000 00 01 \
     201029112801 E829";

#[test]
fn parallel_start_reply_sample_12_2() {
    let f = round_trip(&sample(PARALLEL_START_REPLY_SAMPLE));
    let Message::ParallelStartReply(m) = f.message else {
        panic!("not 0xA2: {:?}", f.message)
    };
    assert_eq!(m.serial.to_string(), "32010200000001012018061219595785");
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.logical_card.to_string(), "0000000000000000");
    assert_eq!(m.balance, Money::ZERO);
    assert_eq!(m.authorized, Outcome::Failed);
    assert_eq!(m.failure, AuthFailure::AccountNotFound);
    assert_eq!(m.parallel_serial.to_string(), "201029112801");
}

#[test]
fn parallel_start_reply_built_from_values() {
    let m = ParallelStartReply {
        serial: txn("32010200000001022405011200000001"),
        pile_code: pile("32010200000001"),
        connector: gun(2),
        logical_card: "1000000573".parse().unwrap(),
        balance: Money::from_yuan(dec!(123.45)),
        authorized: Outcome::Failed,
        failure: AuthFailure::CardsNotSupported,
        parallel_serial: "240501120000".parse().unwrap(),
    };
    let bytes = build_and_round_trip(m.clone(), 44);
    // balance 12345 fen little-endian at body offset 32
    assert_eq!(&bytes[6 + 32..6 + 36], &[0x39, 0x30, 0, 0]);
    // failure code 0x0B is written as a binary byte (not BCD "11")
    assert_eq!(bytes[6 + 37], 0x0B);

    let too_precise = ParallelStartReply {
        balance: Money::from_yuan(dec!(1.005)),
        ..m.clone()
    };
    assert!(Frame::new(0, too_precise).to_bytes().is_err());
    let negative = ParallelStartReply {
        balance: Money::from_yuan(dec!(-1)),
        ..m
    };
    assert!(matches!(
        Frame::new(0, negative).to_bytes(),
        Err(EncodeError::Field {
            field: "balance",
            ..
        })
    ));
}

const PARALLEL_REMOTE_START_SAMPLE: &str = "68 36 007C 00 A4 \
     55031412782305012018061914444680 55031412782305 01 0000001000000573 00000000D14B0A54 \
     A0860100 201029112801 4622";

#[test]
fn parallel_remote_start_sample_12_3() {
    let f = round_trip(&sample(PARALLEL_REMOTE_START_SAMPLE));
    assert_eq!(f.sequence, 0x7C00);
    let Message::ParallelRemoteStart(m) = f.message else {
        panic!("not 0xA4: {:?}", f.message)
    };
    assert_eq!(m.serial.to_string(), "55031412782305012018061914444680");
    assert_eq!(m.pile_code.to_string(), "55031412782305");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.logical_card.to_string(), "0000001000000573");
    assert_eq!(m.physical_card, [0, 0, 0, 0, 0xD1, 0x4B, 0x0A, 0x54]);
    assert_eq!(m.balance, Money::from_yuan(dec!(1000.00)));
    assert_eq!(m.parallel_serial.to_string(), "201029112801");
}

const PARALLEL_REMOTE_START_REPLY_SAMPLE: &str = "68 25 0002 00 A3 \
     32010200000000111511161555350260 32010200000001 01 01 00 00 201029112801 0FE2";

#[test]
fn parallel_remote_start_reply_sample_12_4() {
    let f = round_trip(&sample(PARALLEL_REMOTE_START_REPLY_SAMPLE));
    let Message::ParallelRemoteStartReply(m) = f.message else {
        panic!("not 0xA3: {:?}", f.message)
    };
    assert_eq!(m.serial.to_string(), "32010200000000111511161555350260");
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.connector.get(), 1);
    assert_eq!(m.started, Outcome::Succeeded);
    assert_eq!(m.failure, RemoteStartFailure::None);
    assert_eq!(m.gun_role, GunRole::Main);
    assert_eq!(m.parallel_serial.to_string(), "201029112801");
}

#[test]
fn parallel_frames_follow_the_parity_rule() {
    // The reference's type table swaps 0xA3/0xA4; the section text makes 0xA4 the platform's
    // command and 0xA3 the pile's reply.
    assert_eq!(direction_of(0xA1), Direction::FromPile);
    assert_eq!(direction_of(0xA2), Direction::ToPile);
    assert_eq!(direction_of(0xA3), Direction::FromPile);
    assert_eq!(direction_of(0xA4), Direction::ToPile);
}

#[test]
fn parallel_codes_out_of_range() {
    let req = sample(PARALLEL_START_REQUEST_SAMPLE);
    assert_out_of_range(decode_with_body_byte(&req, 8, 0x04), "start_method", 14, 4);
    assert_out_of_range(
        decode_with_body_byte(&req, 9, 0x02),
        "password_required",
        15,
        2,
    );
    assert_out_of_range(decode_with_body_byte(&req, 51, 0x02), "gun_role", 57, 2);

    let reply = sample(PARALLEL_START_REPLY_SAMPLE);
    assert_out_of_range(decode_with_body_byte(&reply, 36, 0x02), "authorized", 42, 2);
    assert_out_of_range(decode_with_body_byte(&reply, 37, 0x0C), "failure", 43, 12);

    let remote_reply = sample(PARALLEL_REMOTE_START_REPLY_SAMPLE);
    assert_out_of_range(
        decode_with_body_byte(&remote_reply, 24, 0x02),
        "started",
        30,
        2,
    );
    assert_out_of_range(
        decode_with_body_byte(&remote_reply, 25, 0x06),
        "failure",
        31,
        6,
    );
    assert_out_of_range(
        decode_with_body_byte(&remote_reply, 26, 0x02),
        "gun_role",
        32,
        2,
    );
}

mod later_frames;
