//! Outbox blocks: one sled value holds the records of one write, so a group commit of N
//! records costs about N / 14 sled inserts instead of N (sled tops out near 100,000
//! single-key inserts a second on two cores; the JSON bytes are cheap to copy).
//!
//! A block is stored under the big-endian first sequence it holds; its records have the
//! sequences `first, first + 1, …` (sequences are contiguous, so none is written down).
//! The value is framed, little-endian:
//!
//! ```text
//! [format: u8 = 1][count: u32] then count × ([len: u32][len bytes of record JSON])
//! ```
//!
//! Each record's bytes are exactly the JSON that goes up (`serde_json::to_vec(&Record)`); a
//! length of 0 is a tombstone (a thinned record: the sequence stays, the bytes are freed).
//!
//! A block holds at most [`BLOCK_MAX_BYTES`] (a single larger record gets a block of its own).
//! The bound is sled's, not ours: sled 0.34 writes a page larger than about 128 KiB (a
//! quarter of its 512 KiB segment) as a separate blob file, and its flush fsyncs the log but
//! not blob files, so such a page would not be durable after a power cut. A leaf page holds
//! up to about 17 (after a merge about 20) items, so 20 × 4 KiB stays well inside the log.
//!
//! What this module must never do: reorder, renumber or re-encode a record's bytes, or let
//! a tombstone drop its sequence.

use super::error::{corrupt, StoreError};

/// Most bytes of a block value (unless a single record is larger).
pub(super) const BLOCK_MAX_BYTES: usize = 4_096;

const FORMAT: u8 = 1;
/// Format byte and record count.
pub(super) const HEADER_BYTES: usize = 5;
/// The length prefix of one record.
pub(super) const FRAME_BYTES: usize = 4;

/// A block being written.
#[derive(Debug)]
pub(super) struct BlockBuilder {
    pub(super) first: u64,
    count: u32,
    buf: Vec<u8>,
}

impl BlockBuilder {
    pub(super) fn new(first: u64) -> BlockBuilder {
        let mut buf = Vec::with_capacity(BLOCK_MAX_BYTES);
        buf.push(FORMAT);
        buf.extend_from_slice(&0u32.to_le_bytes());
        BlockBuilder {
            first,
            count: 0,
            buf,
        }
    }

    /// Whether a record of `len` bytes still fits (an empty block takes any record).
    pub(super) fn fits(&self, len: usize) -> bool {
        self.count == 0 || self.buf.len() + FRAME_BYTES + len <= BLOCK_MAX_BYTES
    }

    /// The sequence the next record gets.
    pub(super) fn next_seq(&self) -> u64 {
        self.first + u64::from(self.count)
    }

    /// Appends one record written by `write` (which appends its bytes to the buffer);
    /// returns the bytes the record adds to the value (frame + record).
    pub(super) fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> usize {
        let at = self.buf.len();
        self.buf.extend_from_slice(&[0u8; FRAME_BYTES]);
        write(&mut self.buf);
        let len = self.buf.len() - at - FRAME_BYTES;
        let len32 = u32::try_from(len).expect("a record is far below 4 GiB");
        self.buf[at..at + FRAME_BYTES].copy_from_slice(&len32.to_le_bytes());
        self.count += 1;
        FRAME_BYTES + len
    }

    /// Appends one record's bytes (empty: a tombstone).
    pub(super) fn push(&mut self, record: &[u8]) -> usize {
        self.push_with(|b| b.extend_from_slice(record))
    }

    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished value.
    pub(super) fn finish(mut self) -> Vec<u8> {
        self.buf[1..HEADER_BYTES].copy_from_slice(&self.count.to_le_bytes());
        self.buf
    }
}

/// The records of a stored block: `(sequence, offset, length)` of each, in order.
pub(super) fn entries(
    first: u64,
    value: &[u8],
) -> Result<impl Iterator<Item = (u64, usize, usize)> + '_, StoreError> {
    let key = first.to_be_bytes();
    let count = count_of(first, value)?;
    // Check the framing once, so the iterator below cannot run off the value.
    let mut at = HEADER_BYTES;
    for _ in 0..count {
        let len = read_u32(value, at).ok_or_else(|| corrupt("outbox block", &key, "truncated"))?;
        at += FRAME_BYTES + len as usize;
        if at > value.len() {
            return Err(corrupt("outbox block", &key, "record runs past the end"));
        }
    }
    if at != value.len() {
        return Err(corrupt("outbox block", &key, "bytes after the last record"));
    }
    let mut at = HEADER_BYTES;
    Ok((0..count).map(move |i| {
        let len = read_u32(value, at).unwrap_or(0) as usize;
        let e = (first + u64::from(i), at + FRAME_BYTES, len);
        at += FRAME_BYTES + len;
        e
    }))
}

/// How many records a stored block holds.
pub(super) fn count_of(first: u64, value: &[u8]) -> Result<u32, StoreError> {
    let key = first.to_be_bytes();
    if value.len() < HEADER_BYTES || value[0] != FORMAT {
        return Err(corrupt(
            "outbox block",
            &key,
            "not a block (unknown format byte or too short)",
        ));
    }
    let count = read_u32(value, 1).unwrap_or(0);
    if count == 0 {
        return Err(corrupt("outbox block", &key, "empty block"));
    }
    Ok(count)
}

/// The last sequence a stored block holds.
pub(super) fn last_of(first: u64, value: &[u8]) -> Result<u64, StoreError> {
    Ok(first + u64::from(count_of(first, value)?) - 1)
}

fn read_u32(v: &[u8], at: usize) -> Option<u32> {
    let b: [u8; 4] = v.get(at..at + 4)?.try_into().ok()?;
    Some(u32::from_le_bytes(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_round_trips_records_and_tombstones() {
        let mut b = BlockBuilder::new(41);
        assert!(b.is_empty());
        assert_eq!(b.push(b"{\"seq\":41}"), 4 + 10);
        assert_eq!(b.push(b""), 4);
        b.push(b"{\"seq\":43}");
        assert_eq!(b.next_seq(), 44);
        let v = b.finish();
        assert_eq!(v.len(), HEADER_BYTES + 4 + 10 + 4 + 4 + 10);
        let got: Vec<(u64, &[u8])> = entries(41, &v)
            .unwrap()
            .map(|(s, at, len)| (s, &v[at..at + len]))
            .collect();
        assert_eq!(
            got,
            vec![
                (41, &b"{\"seq\":41}"[..]),
                (42, &b""[..]),
                (43, &b"{\"seq\":43}"[..])
            ]
        );
        assert_eq!(last_of(41, &v).unwrap(), 43);
    }

    #[test]
    fn block_stays_within_its_bound_unless_one_record_is_larger() {
        let mut b = BlockBuilder::new(1);
        let record = [b'x'; 300];
        while b.fits(record.len()) {
            b.push(&record);
        }
        assert!(b.finish().len() <= BLOCK_MAX_BYTES);
        let mut big = BlockBuilder::new(1);
        assert!(big.fits(10_000), "an empty block takes any record");
        big.push(&[b'y'; 10_000]);
        assert!(!big.fits(1));
    }

    #[test]
    fn damaged_blocks_are_refused() {
        let mut b = BlockBuilder::new(1);
        b.push(b"abc");
        let v = b.finish();
        assert!(entries(1, &v[..v.len() - 1]).is_err());
        let mut longer = v.clone();
        longer.push(0);
        assert!(entries(1, &longer).is_err());
        assert!(count_of(1, &[2, 1, 0, 0, 0]).is_err());
        assert!(count_of(1, &[1, 0, 0, 0, 0]).is_err());
    }
}
