//! One test per way a frame can be wrong: each gives its typed error, naming the frame type
//! (when known) and the byte offset, and a message that says what is wrong.

mod common;

use voltline_protocol::error::FrameErrorKind;
use voltline_protocol::frame::{decode, fix_checksum};
use voltline_protocol::FrameError;

/// A valid heartbeat: 68 0D | seq 01 00 | enc 00 | type 03 | pile 32010200000001 | conn 01 | health 00 | crc.
fn heartbeat() -> Vec<u8> {
    common::sample("68 0D 0100 00 03 32010200000001 01 00 0000")
}

fn with(mut f: Vec<u8>, at: usize, byte: u8) -> Vec<u8> {
    f[at] = byte;
    fix_checksum(&mut f);
    f
}

fn assert_kind(e: &FrameError, kind: FrameErrorKind, offset: usize) {
    assert_eq!(e.kind(), kind, "{e}");
    assert_eq!(e.offset(), offset, "{e}");
    assert!(!e.to_string().is_empty());
}

#[test]
fn valid_heartbeat_decodes() {
    assert!(decode(&heartbeat()).is_ok());
}

#[test]
fn bad_start_byte() {
    let e = decode(&with(heartbeat(), 0, 0x69)).unwrap_err();
    assert_eq!(e, FrameError::BadStart { found: 0x69 });
    assert_kind(&e, FrameErrorKind::BadStart, 0);
    assert!(e.to_string().contains("0x68"));
}

#[test]
fn length_field_out_of_range() {
    for declared in [0u8, 3, 201, 255] {
        let mut f = heartbeat();
        f[1] = declared;
        let e = decode(&f).unwrap_err();
        assert_eq!(e, FrameError::BadLength { declared });
        assert_kind(&e, FrameErrorKind::BadLength, 1);
    }
}

#[test]
fn input_shorter_than_the_length_field() {
    let f = heartbeat();
    let e = decode(&f[..10]).unwrap_err();
    assert_eq!(e, FrameError::Truncated { have: 10, need: 17 });
    assert_kind(&e, FrameErrorKind::Truncated, 10);
}

#[test]
fn bytes_after_the_checksum() {
    let mut f = heartbeat();
    f.push(0x00);
    let e = decode(&f).unwrap_err();
    assert!(matches!(
        e,
        FrameError::ExtraBytes {
            frame_type: 0x03,
            offset: 17,
            extra: 1
        }
    ));
    assert_kind(&e, FrameErrorKind::ExtraBytes, 17);
}

#[test]
fn checksum_mismatch() {
    let mut f = heartbeat();
    f[15] ^= 0xFF;
    let e = decode(&f).unwrap_err();
    assert!(matches!(
        e,
        FrameError::Checksum {
            frame_type: 0x03,
            offset: 15,
            ..
        }
    ));
    assert_kind(&e, FrameErrorKind::Checksum, 15);
    assert!(e.to_string().contains("heartbeat"), "{e}");
}

#[test]
fn unknown_encryption_flag() {
    let e = decode(&with(heartbeat(), 4, 0x02)).unwrap_err();
    assert_eq!(
        e,
        FrameError::BadEncryptionFlag {
            frame_type: 0x03,
            flag: 0x02
        }
    );
    assert_kind(&e, FrameErrorKind::BadEncryptionFlag, 4);
}

#[test]
fn encrypted_body_without_a_key() {
    let e = decode(&with(heartbeat(), 4, 0x01)).unwrap_err();
    assert_eq!(e, FrameError::Encrypted { frame_type: 0x03 });
    assert_kind(&e, FrameErrorKind::Encrypted, 4);
    assert!(e.to_string().contains("3DES key"), "says what to do: {e}");
}

#[test]
fn unknown_frame_type() {
    let e = decode(&with(heartbeat(), 5, 0x07)).unwrap_err();
    assert_eq!(e, FrameError::UnknownType { frame_type: 0x07 });
    assert_kind(&e, FrameErrorKind::UnknownType, 5);
}

#[test]
fn body_ends_inside_a_field() {
    // Drop the health byte and shorten the length field accordingly.
    let mut f = heartbeat();
    f.remove(14);
    f[1] = 0x0C;
    fix_checksum(&mut f);
    let e = decode(&f).unwrap_err();
    assert_eq!(
        e,
        FrameError::TruncatedBody {
            frame_type: 0x03,
            field: "health",
            offset: 14,
            needed: 1
        }
    );
    assert_kind(&e, FrameErrorKind::TruncatedBody, 14);
}

#[test]
fn bad_bcd_names_the_field_and_byte() {
    let e = decode(&with(heartbeat(), 9, 0x0A)).unwrap_err();
    assert_eq!(
        e,
        FrameError::BadBcd {
            frame_type: 0x03,
            field: "pile_code",
            offset: 9,
            byte: 0x0A
        }
    );
    assert_kind(&e, FrameErrorKind::BadBcd, 9);
}

#[test]
fn value_out_of_range() {
    let e = decode(&with(heartbeat(), 14, 0x02)).unwrap_err();
    assert!(matches!(
        e,
        FrameError::OutOfRange {
            frame_type: 0x03,
            field: "health",
            offset: 14,
            value: 2,
            ..
        }
    ));
    assert_kind(&e, FrameErrorKind::OutOfRange, 14);
    assert!(e.to_string().contains("allowed"), "{e}");
}

#[test]
fn body_longer_than_the_message() {
    let mut f = heartbeat();
    f.insert(15, 0xAA);
    f[1] = 0x0E;
    fix_checksum(&mut f);
    let e = decode(&f).unwrap_err();
    assert_eq!(
        e,
        FrameError::TrailingBody {
            frame_type: 0x03,
            offset: 15,
            extra: 1
        }
    );
    assert_kind(&e, FrameErrorKind::TrailingBody, 15);
}

#[test]
fn every_kind_has_a_distinct_metrics_label() {
    use std::collections::HashSet;
    let kinds = [
        FrameErrorKind::BadStart,
        FrameErrorKind::BadLength,
        FrameErrorKind::Garbage,
        FrameErrorKind::Truncated,
        FrameErrorKind::ExtraBytes,
        FrameErrorKind::Checksum,
        FrameErrorKind::BadEncryptionFlag,
        FrameErrorKind::Encrypted,
        FrameErrorKind::UnknownType,
        FrameErrorKind::TruncatedBody,
        FrameErrorKind::BadBcd,
        FrameErrorKind::OutOfRange,
        FrameErrorKind::Invalid,
        FrameErrorKind::TrailingBody,
    ];
    let labels: HashSet<_> = kinds.iter().map(|k| k.as_str()).collect();
    assert_eq!(labels.len(), kinds.len());
}
