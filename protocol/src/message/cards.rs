//! The offline card list: sync, clear, query (reference sections 8.11-8.16, types 0x43-0x48).
//!
//! While online, the platform keeps a list of cards on the pile so that card holders can
//! charge while the pile is offline. The requests carry a count and that many cards; the
//! replies carry one entry per card and no count (the body length says how many). Every list
//! is bounded by what fits the protocol's 196-byte body, which for some frames is fewer than
//! the reference's stated maximum: see the `MAX_*` constants. Decoding refuses a count above
//! the bound or larger than the body, and encoding refuses a longer list
//! ([`EncodeError::TooLong`]); a platform with more cards sends several frames.

use serde::{Deserialize, Serialize};

use crate::domain::PileCode;
use crate::frame::MAX_BODY_LEN;
use crate::message::common::physical_card;
pub use crate::message::common::{BadPhysicalCardNo, LogicalCardNo, PhysicalCardNo};
use crate::message::settings::Outcome;
use crate::message::{wire_enum, Body};
use crate::wire::parse::{bcd_field, code, pile_code, u8_bin, FieldError, PResult};
use crate::wire::write::{BodyWriter, EncodeError};

wire_enum!(
    /// Why a pile could not store the synced cards (0x43).
    SyncFailure allowed "0 (no error), 1 (bad card number) or 2 (storage full)" {
        /// 0x00: no failure (sent with a successful result).
        NoError = 0,
        /// 0x01: a card number is malformed.
        BadCardNumber = 1,
        /// 0x02: not enough storage for the cards.
        StorageFull = 2
    }
);
wire_enum!(
    /// Why a pile could not clear a card (0x45). The reference lists the codes twice and
    /// inconsistently: once as 0x01 "bad card number" / 0x02 "cleared", once as 0x00
    /// "cleared" / 0x01 "bad card number". All three codes are accepted and kept as sent.
    ClearFailure allowed "0 (no error), 1 (bad card number) or 2 (cleared)" {
        /// 0x00: no failure: the card was cleared.
        NoError = 0,
        /// 0x01: the card number is malformed.
        BadCardNumber = 1,
        /// 0x02: the card was cleared (the first row of the reference's table).
        Cleared = 2
    }
);
wire_enum!(
    /// Whether a queried card is in the pile's offline list (0x47).
    CardPresence allowed "0 (absent) or 1 (present)" { Absent = 0, Present = 1 }
);

/// The reference's maximum cards per 0x44 sync.
const SYNC_REFERENCE_MAX: usize = 15;
/// The reference's maximum cards per 0x46 clear.
const CLEAR_REFERENCE_MAX: usize = 24;
/// The reference's maximum cards per 0x48 query.
const QUERY_REFERENCE_MAX: usize = 26;

/// Body bytes before a counted list: pile code (7) and count (1).
const COUNTED_HEADER: usize = 8;
/// Body bytes before an uncounted list: the pile code.
const UNCOUNTED_HEADER: usize = 7;
/// One 0x44 entry: logical (8 BCD) and physical (8 BIN) card number.
const SYNC_ENTRY: usize = 16;
/// One 0x46 / 0x48 entry: a physical card number.
const CARD_ENTRY: usize = 8;
/// One 0x45 entry: physical card number, result, failure reason.
const CLEAR_RESULT_ENTRY: usize = 10;
/// One 0x47 entry: physical card number, presence.
const QUERY_RESULT_ENTRY: usize = 9;

const fn min(a: usize, b: usize) -> usize {
    if a < b {
        a
    } else {
        b
    }
}

/// Cards per 0x44 sync: 11 (the reference says 15, but only 11 fit a 196-byte body).
pub const MAX_SYNC_CARDS: usize = min(
    SYNC_REFERENCE_MAX,
    (MAX_BODY_LEN - COUNTED_HEADER) / SYNC_ENTRY,
);
/// Cards per 0x46 clear: 23 (the reference says 24, but only 23 fit a 196-byte body).
pub const MAX_CLEAR_CARDS: usize = min(
    CLEAR_REFERENCE_MAX,
    (MAX_BODY_LEN - COUNTED_HEADER) / CARD_ENTRY,
);
/// Cards per 0x48 query: 23 (the reference says 26, but only 23 fit a 196-byte body).
pub const MAX_QUERY_CARDS: usize = min(
    QUERY_REFERENCE_MAX,
    (MAX_BODY_LEN - COUNTED_HEADER) / CARD_ENTRY,
);
/// Entries per 0x45 clear reply (what fits a 196-byte body).
pub const MAX_CLEAR_RESULTS: usize = (MAX_BODY_LEN - UNCOUNTED_HEADER) / CLEAR_RESULT_ENTRY;
/// Entries per 0x47 query reply (what fits a 196-byte body).
pub const MAX_QUERY_RESULTS: usize = (MAX_BODY_LEN - UNCOUNTED_HEADER) / QUERY_RESULT_ENTRY;

// The `allowed` texts below quote these numbers.
const _: () = assert!(MAX_SYNC_CARDS == 11);
const _: () = assert!(MAX_CLEAR_CARDS == 23);
const _: () = assert!(MAX_QUERY_CARDS == 23);
const _: () = assert!(MAX_CLEAR_RESULTS == 18);
const _: () = assert!(MAX_QUERY_RESULTS == 21);

/// A count byte followed by that many entries of `entry_len` bytes each. The count must be at
/// most `max` (out of range otherwise) and the body must hold that many entries (invalid
/// otherwise), checked before anything is allocated.
fn counted<'a, T>(
    i: &'a [u8],
    field: &'static str,
    max: usize,
    allowed: &'static str,
    entry_len: usize,
    entry: impl Fn(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    let (mut rest, n) = u8_bin(field)(i)?;
    let n = n as usize;
    if n > max {
        return Err(FieldError::out_of_range(i, field, n as i64, allowed));
    }
    if n * entry_len > rest.len() {
        return Err(FieldError::invalid(
            i,
            field,
            "the count needs more bytes than the body has",
        ));
    }
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let (r, e) = entry(rest)?;
        out.push(e);
        rest = r;
    }
    Ok((rest, out))
}

/// Entries of `entry_len` bytes up to the end of the body (no count). A body that ends inside
/// an entry fails as truncated; one longer than a frame can carry is invalid.
fn uncounted<'a, T>(
    i: &'a [u8],
    field: &'static str,
    entry_len: usize,
    entry: impl Fn(&'a [u8]) -> PResult<'a, T>,
) -> PResult<'a, Vec<T>> {
    if i.len() > MAX_BODY_LEN - UNCOUNTED_HEADER {
        return Err(FieldError::invalid(
            i,
            field,
            "more entries than fit the protocol's 196-byte body",
        ));
    }
    let mut out = Vec::with_capacity(i.len() / entry_len);
    let mut rest = i;
    while !rest.is_empty() {
        let (r, e) = entry(rest)?;
        out.push(e);
        rest = r;
    }
    Ok((rest, out))
}

/// Refuses a list longer than `max` entries, naming the body length it would need.
fn check_len<B: Body>(
    n: usize,
    max: usize,
    header: usize,
    entry_len: usize,
) -> Result<(), EncodeError> {
    if n > max {
        return Err(EncodeError::TooLong {
            frame: B::NAME,
            len: header + n * entry_len,
            max: MAX_BODY_LEN,
        });
    }
    Ok(())
}

/// The body of 0x46 and 0x48: a pile code and a counted list of physical cards.
fn card_list<'a>(
    i: &'a [u8],
    max: usize,
    allowed: &'static str,
) -> PResult<'a, (PileCode, Vec<PhysicalCardNo>)> {
    let (i, pile_code) = pile_code("pile_code")(i)?;
    let (i, cards) = counted(
        i,
        "card_count",
        max,
        allowed,
        CARD_ENTRY,
        physical_card("physical_card_no"),
    )?;
    Ok((i, (pile_code, cards)))
}

/// Writes a [`card_list`] body, refusing more than `max` cards.
fn write_card_list<B: Body>(
    w: &mut BodyWriter<'_>,
    pile: &PileCode,
    cards: &[PhysicalCardNo],
    max: usize,
) -> Result<(), EncodeError> {
    check_len::<B>(cards.len(), max, COUNTED_HEADER, CARD_ENTRY)?;
    w.pile_code(pile);
    w.u8(cards.len() as u8);
    for card in cards {
        w.bytes(card.as_bytes());
    }
    Ok(())
}

/// One card of an offline list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OfflineCard {
    pub logical_card_no: LogicalCardNo,
    pub physical_card_no: PhysicalCardNo,
}

/// 0x44: the platform adds or updates cards in the pile's offline list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSync {
    pub pile_code: PileCode,
    /// At most [`MAX_SYNC_CARDS`]; the count byte on the wire is this list's length.
    pub cards: Vec<OfflineCard>,
}

impl Body for CardSync {
    const TYPE: u8 = 0x44;
    const NAME: &'static str = "card_sync";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, cards) = counted(
            i,
            "card_count",
            MAX_SYNC_CARDS,
            "0..=11 (the reference allows 15; 11 fill a 196-byte body)",
            SYNC_ENTRY,
            |i| {
                let (i, logical_card_no) = bcd_field("logical_card_no")(i)?;
                let (i, physical_card_no) = physical_card("physical_card_no")(i)?;
                Ok((
                    i,
                    OfflineCard {
                        logical_card_no,
                        physical_card_no,
                    },
                ))
            },
        )?;
        Ok((i, CardSync { pile_code, cards }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        check_len::<Self>(self.cards.len(), MAX_SYNC_CARDS, COUNTED_HEADER, SYNC_ENTRY)?;
        w.pile_code(&self.pile_code);
        w.u8(self.cards.len() as u8);
        for card in &self.cards {
            w.bcd(&card.logical_card_no);
            w.bytes(card.physical_card_no.as_bytes());
        }
        Ok(())
    }
}

/// 0x43: the pile answers a card sync.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardSyncReply {
    pub pile_code: PileCode,
    pub result: Outcome,
    pub failure: SyncFailure,
}

impl Body for CardSyncReply {
    const TYPE: u8 = 0x43;
    const NAME: &'static str = "card_sync_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, result) = code("result")(i)?;
        let (i, failure) = code("failure")(i)?;
        Ok((
            i,
            CardSyncReply {
                pile_code,
                result,
                failure,
            },
        ))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        w.pile_code(&self.pile_code);
        w.code(self.result);
        w.code(self.failure);
        Ok(())
    }
}

/// 0x46: the platform removes cards from the pile's offline list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardClear {
    pub pile_code: PileCode,
    /// At most [`MAX_CLEAR_CARDS`]; the count byte on the wire is this list's length.
    pub cards: Vec<PhysicalCardNo>,
}

impl Body for CardClear {
    const TYPE: u8 = 0x46;
    const NAME: &'static str = "card_clear";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, (pile_code, cards)) = card_list(
            i,
            MAX_CLEAR_CARDS,
            "0..=23 (the reference allows 24; 23 fill a 196-byte body)",
        )?;
        Ok((i, CardClear { pile_code, cards }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        write_card_list::<Self>(w, &self.pile_code, &self.cards, MAX_CLEAR_CARDS)
    }
}

/// The outcome of clearing one card.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardClearResult {
    pub physical_card_no: PhysicalCardNo,
    pub result: Outcome,
    pub failure: ClearFailure,
}

/// 0x45: the pile answers a card clear, one entry per card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardClearReply {
    pub pile_code: PileCode,
    /// At most [`MAX_CLEAR_RESULTS`]; the wire has no count, the body length gives it.
    pub results: Vec<CardClearResult>,
}

impl Body for CardClearReply {
    const TYPE: u8 = 0x45;
    const NAME: &'static str = "card_clear_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, results) = uncounted(i, "results", CLEAR_RESULT_ENTRY, |i| {
            let (i, physical_card_no) = physical_card("physical_card_no")(i)?;
            let (i, result) = code("result")(i)?;
            let (i, failure) = code("failure")(i)?;
            Ok((
                i,
                CardClearResult {
                    physical_card_no,
                    result,
                    failure,
                },
            ))
        })?;
        Ok((i, CardClearReply { pile_code, results }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        check_len::<Self>(
            self.results.len(),
            MAX_CLEAR_RESULTS,
            UNCOUNTED_HEADER,
            CLEAR_RESULT_ENTRY,
        )?;
        w.pile_code(&self.pile_code);
        for r in &self.results {
            w.bytes(r.physical_card_no.as_bytes());
            w.code(r.result);
            w.code(r.failure);
        }
        Ok(())
    }
}

/// 0x48: the platform asks whether cards are in the pile's offline list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardQuery {
    pub pile_code: PileCode,
    /// At most [`MAX_QUERY_CARDS`]; the count byte on the wire is this list's length.
    pub cards: Vec<PhysicalCardNo>,
}

impl Body for CardQuery {
    const TYPE: u8 = 0x48;
    const NAME: &'static str = "card_query";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, (pile_code, cards)) = card_list(
            i,
            MAX_QUERY_CARDS,
            "0..=23 (the reference allows 26; 23 fill a 196-byte body)",
        )?;
        Ok((i, CardQuery { pile_code, cards }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        write_card_list::<Self>(w, &self.pile_code, &self.cards, MAX_QUERY_CARDS)
    }
}

/// Whether one queried card is in the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardQueryResult {
    pub physical_card_no: PhysicalCardNo,
    pub presence: CardPresence,
}

/// 0x47: the pile answers a card query, one entry per card.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardQueryReply {
    pub pile_code: PileCode,
    /// At most [`MAX_QUERY_RESULTS`]; the wire has no count, the body length gives it.
    pub results: Vec<CardQueryResult>,
}

impl Body for CardQueryReply {
    const TYPE: u8 = 0x47;
    const NAME: &'static str = "card_query_reply";

    fn parse(i: &[u8]) -> PResult<'_, Self> {
        let (i, pile_code) = pile_code("pile_code")(i)?;
        let (i, results) = uncounted(i, "results", QUERY_RESULT_ENTRY, |i| {
            let (i, physical_card_no) = physical_card("physical_card_no")(i)?;
            let (i, presence) = code("presence")(i)?;
            Ok((
                i,
                CardQueryResult {
                    physical_card_no,
                    presence,
                },
            ))
        })?;
        Ok((i, CardQueryReply { pile_code, results }))
    }

    fn write(&self, w: &mut BodyWriter<'_>) -> Result<(), EncodeError> {
        check_len::<Self>(
            self.results.len(),
            MAX_QUERY_RESULTS,
            UNCOUNTED_HEADER,
            QUERY_RESULT_ENTRY,
        )?;
        w.pile_code(&self.pile_code);
        for r in &self.results {
            w.bytes(r.physical_card_no.as_bytes());
            w.code(r.presence);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn physical_card_text_is_wire_order_hex() {
        let c: PhysicalCardNo = "00000000D14B0A54".parse().unwrap();
        assert_eq!(c.as_bytes(), &[0, 0, 0, 0, 0xD1, 0x4B, 0x0A, 0x54]);
        assert_eq!(c.to_string(), "00000000D14B0A54");
        assert_eq!("00000000d14b0a54".parse::<PhysicalCardNo>(), Ok(c));
        assert!("D14B0A54".parse::<PhysicalCardNo>().is_err());
        assert!("00000000D14B0A5G".parse::<PhysicalCardNo>().is_err());
        assert!("00000000D14B0A5400".parse::<PhysicalCardNo>().is_err());
    }
}
