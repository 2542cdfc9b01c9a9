//! The reference's sample frames for the offline card list (8.11-8.16), the platform settings
//! (chapter 9) and the parking lock (chapter 10) decode to their documented values and
//! re-encode byte for byte. Sample checksums are recomputed by `sample` (they are placeholders
//! in the reference).
//!
//! Several samples in these sections disagree with their own field tables; the tables are
//! followed and each test says what was corrected.

#[path = "../common/mod.rs"]
mod common;

use common::{round_trip, sample};
use jiff::civil::date;
use rust_decimal_macros::dec;
use voltline_protocol::domain::{ConnectorNo, Soc};
use voltline_protocol::frame::{self, MAX_BODY_LEN};
use voltline_protocol::message::cards::*;
use voltline_protocol::message::register::{BillingModel, Rate, RateKind};
use voltline_protocol::message::settings::*;
use voltline_protocol::wire::cp56::Cp56Time;
use voltline_protocol::{EncodeError, Frame, FrameError, Message, Money, PileCode};

fn pile(code: &str) -> PileCode {
    code.parse().unwrap()
}

fn card(hex: &str) -> PhysicalCardNo {
    hex.parse().unwrap()
}

fn connector(n: u8) -> ConnectorNo {
    ConnectorNo::new(n).unwrap()
}

/// Encodes a message in a frame, checks the body length, decodes it and compares.
fn encode_decode(message: impl Into<Message>, body_len: usize) -> Vec<u8> {
    let message = message.into();
    let bytes = Frame::new(0x1234, message.clone())
        .to_bytes()
        .expect("message encodes");
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

fn decode_err(hex: &str) -> FrameError {
    frame::decode(&sample(hex)).expect_err("frame must be refused")
}

// ---------------------------------------------------------------------------------------------
// 8.11-8.16: offline cards
// ---------------------------------------------------------------------------------------------

#[test]
fn card_sync_sample_8_11() {
    // The reference's length byte is 0x2C (40-byte body), but the frame it shows holds one card:
    // pile (7) + count (1) + logical (8) + physical (8) = 24 bytes, so the length is 0x1C.
    let f = round_trip(&sample(
        "68 1C 0007 00 44 32010200000001 01 0000000010000001 00000000D14B0A54 F264",
    ));
    assert_eq!(f.sequence, 0x0700);
    let Message::CardSync(m) = f.message else {
        panic!("not a card sync: {:?}", f.message)
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.cards.len(), 1);
    assert_eq!(m.cards[0].logical_card_no.to_string(), "0000000010000001");
    assert_eq!(m.cards[0].physical_card_no.to_string(), "00000000D14B0A54");
}

#[test]
fn card_sync_reply_sample_8_12() {
    let f = round_trip(&sample("68 0D 0007 00 43 32010200000001 01 00 6890"));
    let Message::CardSyncReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.result, Outcome::Succeeded);
    assert_eq!(m.failure, SyncFailure::NoError);
}

#[test]
fn card_clear_sample_8_13() {
    // The reference's length byte is 0x2C; one card is pile (7) + count (1) + card (8) = 16
    // bytes, so the length is 0x14.
    let f = round_trip(&sample(
        "68 14 0007 00 46 32010200000001 01 00000000D14B0A54 F264",
    ));
    let Message::CardClear(m) = f.message else {
        panic!()
    };
    assert_eq!(m.cards, vec![card("00000000D14B0A54")]);
}

#[test]
fn card_clear_reply_sample_8_14() {
    // The table gives each entry as card (8) + clear flag (1) + failure reason (1); the sample
    // leaves out the clear flag and its length byte (0x0D) covers only the pile code. The flag
    // is inserted here (0x01 cleared, 0x00 failed) and the length is 7 + 2 × 10 + 4 = 0x1F.
    let f = round_trip(&sample(
        "68 1F 0007 00 45 32010200000001 \
         00000000D14B0A54 01 00 \
         00000000E14C0A54 00 01 \
         6890",
    ));
    let Message::CardClearReply(m) = f.message else {
        panic!()
    };
    assert_eq!(
        m.results,
        vec![
            CardClearResult {
                physical_card_no: card("00000000D14B0A54"),
                result: Outcome::Succeeded,
                failure: ClearFailure::NoError,
            },
            CardClearResult {
                physical_card_no: card("00000000E14C0A54"),
                result: Outcome::Failed,
                failure: ClearFailure::BadCardNumber,
            },
        ]
    );
}

#[test]
fn card_query_sample_8_15() {
    // The reference's length byte is 0x2C; one card makes a 16-byte body, length 0x14.
    let f = round_trip(&sample(
        "68 14 0007 00 48 32010200000001 01 00000000D14B0A54 F264",
    ));
    let Message::CardQuery(m) = f.message else {
        panic!()
    };
    assert_eq!(m.pile_code.to_string(), "32010200000001");
    assert_eq!(m.cards, vec![card("00000000D14B0A54")]);
}

#[test]
fn card_query_reply_sample_8_16() {
    // Entries match the table (card + result), but the length byte 0x0D covers only the pile
    // code: 7 + 2 × 9 + 4 = 0x1D.
    let f = round_trip(&sample(
        "68 1D 0007 00 47 32010200000001 00000000D14B0A54 01 00000000E14C0A54 00 6890",
    ));
    let Message::CardQueryReply(m) = f.message else {
        panic!()
    };
    assert_eq!(m.results.len(), 2);
    assert_eq!(m.results[0].physical_card_no, card("00000000D14B0A54"));
    assert_eq!(m.results[0].presence, CardPresence::Present);
    assert_eq!(
        m.results[1].physical_card_no.to_string(),
        "00000000E14C0A54"
    );
    assert_eq!(m.results[1].presence, CardPresence::Absent);
}

fn sync_cards(n: usize) -> Vec<OfflineCard> {
    (0..n)
        .map(|k| OfflineCard {
            logical_card_no: format!("10000000{k:08}").parse().unwrap(),
            physical_card_no: PhysicalCardNo::from_bytes([
                0xA0, 0, 0, 0, 0xD1, 0x4B, 0x0A, k as u8,
            ]),
        })
        .collect()
}

fn physical_cards(n: usize) -> Vec<PhysicalCardNo> {
    (0..n)
        .map(|k| PhysicalCardNo::from_bytes([k as u8, 0xFF, 0, 0, 0xE1, 0x4C, 0x0A, 0x54]))
        .collect()
}

#[test]
fn card_lists_at_their_bounds_round_trip() {
    let p = pile("32010200000001");
    assert_eq!(MAX_SYNC_CARDS, 11);
    let bytes = encode_decode(
        CardSync {
            pile_code: p,
            cards: sync_cards(MAX_SYNC_CARDS),
        },
        8 + 16 * 11,
    );
    assert_eq!(bytes[6 + 7], 11, "count byte");
    encode_decode(
        CardSync {
            pile_code: p,
            cards: vec![],
        },
        8,
    );
    encode_decode(
        CardClear {
            pile_code: p,
            cards: physical_cards(MAX_CLEAR_CARDS),
        },
        8 + 8 * 23,
    );
    encode_decode(
        CardQuery {
            pile_code: p,
            cards: physical_cards(MAX_QUERY_CARDS),
        },
        8 + 8 * 23,
    );
    let results = physical_cards(MAX_CLEAR_RESULTS)
        .into_iter()
        .enumerate()
        .map(|(k, c)| CardClearResult {
            physical_card_no: c,
            result: if k % 2 == 0 {
                Outcome::Succeeded
            } else {
                Outcome::Failed
            },
            failure: [
                ClearFailure::NoError,
                ClearFailure::BadCardNumber,
                ClearFailure::Cleared,
            ][k % 3],
        })
        .collect();
    encode_decode(
        CardClearReply {
            pile_code: p,
            results,
        },
        7 + 10 * 18,
    );
    let results = physical_cards(MAX_QUERY_RESULTS)
        .into_iter()
        .enumerate()
        .map(|(k, c)| CardQueryResult {
            physical_card_no: c,
            presence: if k % 3 == 0 {
                CardPresence::Absent
            } else {
                CardPresence::Present
            },
        })
        .collect();
    encode_decode(
        CardQueryReply {
            pile_code: p,
            results,
        },
        7 + 9 * 21,
    );
    encode_decode(
        CardSyncReply {
            pile_code: p,
            result: Outcome::Failed,
            failure: SyncFailure::StorageFull,
        },
        9,
    );
}

#[test]
fn card_lists_above_the_body_limit_are_refused_on_encode() {
    let p = pile("32010200000001");
    let too_long = |m: Message| Frame::new(1, m).to_bytes().unwrap_err();
    assert_eq!(
        too_long(
            CardSync {
                pile_code: p,
                cards: sync_cards(12),
            }
            .into()
        ),
        EncodeError::TooLong {
            frame: "card_sync",
            len: 8 + 12 * 16,
            max: MAX_BODY_LEN,
        }
    );
    assert!(matches!(
        too_long(
            CardClear {
                pile_code: p,
                cards: physical_cards(24),
            }
            .into()
        ),
        EncodeError::TooLong {
            frame: "card_clear",
            len: 200,
            ..
        }
    ));
    assert!(matches!(
        too_long(
            CardQuery {
                pile_code: p,
                cards: physical_cards(26),
            }
            .into()
        ),
        EncodeError::TooLong {
            frame: "card_query",
            ..
        }
    ));
    let clear_results = (0..19)
        .map(|_| CardClearResult {
            physical_card_no: card("00000000D14B0A54"),
            result: Outcome::Succeeded,
            failure: ClearFailure::NoError,
        })
        .collect();
    assert!(matches!(
        too_long(
            CardClearReply {
                pile_code: p,
                results: clear_results,
            }
            .into()
        ),
        EncodeError::TooLong {
            frame: "card_clear_reply",
            len: 197,
            ..
        }
    ));
    let query_results = (0..22)
        .map(|_| CardQueryResult {
            physical_card_no: card("00000000D14B0A54"),
            presence: CardPresence::Present,
        })
        .collect();
    assert!(matches!(
        too_long(
            CardQueryReply {
                pile_code: p,
                results: query_results,
            }
            .into()
        ),
        EncodeError::TooLong {
            frame: "card_query_reply",
            ..
        }
    ));
}

#[test]
fn card_count_above_the_bound_is_out_of_range() {
    // Count 12: the reference allows 15, but 12 cards cannot fit a 196-byte body.
    let e = decode_err("68 0C 0007 00 44 32010200000001 0C 0000");
    assert!(
        matches!(
            e,
            FrameError::OutOfRange {
                frame_type: 0x44,
                field: "card_count",
                offset: 13,
                value: 12,
                ..
            }
        ),
        "{e:?}"
    );
    let e = decode_err("68 0C 0007 00 46 32010200000001 18 0000");
    assert!(
        matches!(
            e,
            FrameError::OutOfRange {
                field: "card_count",
                offset: 13,
                value: 24,
                ..
            }
        ),
        "{e:?}"
    );
    let e = decode_err("68 0C 0007 00 48 32010200000001 FF 0000");
    assert!(
        matches!(
            e,
            FrameError::OutOfRange {
                field: "card_count",
                offset: 13,
                value: 255,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn card_count_larger_than_the_body_is_invalid() {
    // Count 2, one card.
    let e = decode_err("68 1C 0007 00 44 32010200000001 02 0000000010000001 00000000D14B0A54 0000");
    assert!(
        matches!(
            e,
            FrameError::Invalid {
                frame_type: 0x44,
                field: "card_count",
                offset: 13,
                ..
            }
        ),
        "{e:?}"
    );
    let e = decode_err("68 14 0007 00 48 32010200000001 03 00000000D14B0A54 0000");
    assert!(
        matches!(
            e,
            FrameError::Invalid {
                field: "card_count",
                offset: 13,
                ..
            }
        ),
        "{e:?}"
    );
    // Count 1, two cards: the second is trailing.
    let e = decode_err("68 1C 0007 00 46 32010200000001 01 00000000D14B0A54 00000000E14C0A54 0000");
    assert!(
        matches!(
            e,
            FrameError::TrailingBody {
                frame_type: 0x46,
                offset: 22,
                extra: 8
            }
        ),
        "{e:?}"
    );
}

#[test]
fn reply_lists_must_be_whole_entries() {
    // A 0x47 body ending inside its second entry.
    let e = decode_err("68 19 0007 00 47 32010200000001 00000000D14B0A54 01 00000000E1 0000");
    assert!(
        matches!(
            e,
            FrameError::TruncatedBody {
                frame_type: 0x47,
                field: "physical_card_no",
                offset: 22,
                needed: 3
            }
        ),
        "{e:?}"
    );
    // A 0x45 body missing the failure reason of its only entry.
    let e = decode_err("68 14 0007 00 45 32010200000001 00000000D14B0A54 01 0000");
    assert!(
        matches!(
            e,
            FrameError::TruncatedBody {
                field: "failure",
                offset: 22,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn reply_lists_longer_than_a_frame_are_invalid() {
    // Only reachable through decode_body (a frame cannot carry it): 19 whole 0x45 entries.
    let mut body = pile("32010200000001").as_bytes().to_vec();
    for _ in 0..19 {
        body.extend_from_slice(&[0, 0, 0, 0, 0xD1, 0x4B, 0x0A, 0x54, 1, 0]);
    }
    assert!(body.len() > MAX_BODY_LEN);
    let e = Message::decode_body(0x45, &body).unwrap_err();
    assert!(
        matches!(
            e,
            FrameError::Invalid {
                field: "results",
                offset: 13,
                ..
            }
        ),
        "{e:?}"
    );
    let mut body = pile("32010200000001").as_bytes().to_vec();
    body.extend(std::iter::repeat_n(0u8, 10_000 * 9));
    let e = Message::decode_body(0x47, &body).unwrap_err();
    assert!(
        matches!(
            e,
            FrameError::Invalid {
                field: "results",
                offset: 13,
                ..
            }
        ),
        "{e:?}"
    );
}

#[test]
fn card_codes_outside_their_tables_are_out_of_range() {
    let e = decode_err("68 0D 0007 00 43 32010200000001 02 00 0000");
    assert!(
        matches!(
            e,
            FrameError::OutOfRange {
                frame_type: 0x43,
                field: "result",
                offset: 13,
                value: 2,
                ..
            }
        ),
        "{e:?}"
    );
    let e = decode_err("68 0D 0007 00 43 32010200000001 00 03 0000");
    assert!(
        matches!(
            e,
            FrameError::OutOfRange {
                field: "failure",
                offset: 14,
                value: 3,
                ..
            }
        ),
        "{e:?}"
    );
    // Second entry's clear flag (offset 6 + 7 + 10 + 8) and failure reason.
    let e = decode_err(
        "68 1F 0007 00 45 32010200000001 00000000D14B0A54 01 00 00000000E14C0A54 05 00 0000",
    );
    assert!(
        matches!(
            e,
            FrameError::OutOfRange {
                field: "result",
                offset: 31,
                value: 5,
                ..
            }
        ),
        "{e:?}"
    );
    let e = decode_err("68 15 0007 00 45 32010200000001 00000000D14B0A54 00 03 0000");
    assert!(
        matches!(
            e,
            FrameError::OutOfRange {
                field: "failure",
                offset: 22,
                value: 3,
                ..
            }
        ),
        "{e:?}"
    );
    let e = decode_err("68 14 0007 00 47 32010200000001 00000000D14B0A54 02 0000");
    assert!(
        matches!(
            e,
            FrameError::OutOfRange {
                frame_type: 0x47,
                field: "presence",
                offset: 21,
                value: 2,
                ..
            }
        ),
        "{e:?}"
    );
    // A logical card number is BCD.
    let e = decode_err("68 1C 0007 00 44 32010200000001 01 000000001000000A 00000000D14B0A54 0000");
    assert!(
        matches!(
            e,
            FrameError::BadBcd {
                field: "logical_card_no",
                offset: 21,
                byte: 0x0A,
                ..
            }
        ),
        "{e:?}"
    );
}

mod later_frames;
