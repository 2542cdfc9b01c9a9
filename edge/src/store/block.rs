//! Outbox blocks: one sled value holds the records of one write, compressed, so a group
//! commit of N records costs about N / 50 sled inserts instead of N (sled tops out near
//! 100,000 single-key inserts a second on two cores, and every byte it stores it writes
//! three to four times: log, page rewrites, segment cleaning).
//!
//! A block is stored under the big-endian first sequence it holds; its records have the
//! sequences `first, first + 1, …` (sequences are contiguous, so none is written down).
//! The records are framed as `count × ([len: u32 LE][len bytes of record JSON])`, and the
//! value is one of two formats:
//!
//! ```text
//! 1 (plain):      [1][count: u32 LE][frames]
//! 2 (compressed): [2][count: u32 LE][frames length: u32 LE][LZ4 block of the frames]
//! ```
//!
//! Each record's bytes are exactly the JSON that goes up (`serde_json::to_vec(&Record)`); a
//! length of 0 is a tombstone (a thinned record: the sequence stays, the bytes are freed).
//! The count stays outside the compressed part, so finding a block's last sequence (trim,
//! replay start, the consistency check at open) never decompresses.
//!
//! A builder takes up to [`RAW_MAX_BYTES`] of frames; its finished value is at most
//! [`BLOCK_MAX_BYTES`]: when the frames do not compress that far, the builder splits them into
//! several blocks at record boundaries (a single record larger than that is a block of its
//! own, plain when it does not compress). The bound on the value is sled's, not ours: sled
//! 0.34 writes a page larger than about 128 KiB (a quarter of its 512 KiB segment) as a
//! separate blob file, and its flush fsyncs the log but not blob files, so such a page would
//! not be durable after a power cut. A leaf page holds up to about 17 (after a merge about
//! 20) items, so 20 × 4 KiB stays well inside the log.
//!
//! What this module must never do: reorder, renumber or re-encode a record's bytes, or let
//! a tombstone drop its sequence.

use sled::IVec;

use super::error::{corrupt, StoreError};

/// Most bytes of a stored block value (unless a single record is larger and incompressible).
pub(super) const BLOCK_MAX_BYTES: usize = 4_096;

/// Most bytes of frames a builder takes before it is full (unless its first record is
/// larger). Meter-reading JSON compresses about six to one, so a full builder usually makes
/// one block of 2-3 KiB.
pub(super) const RAW_MAX_BYTES: usize = 16_384;

/// Frames shorter than this are not worth compressing.
const COMPRESS_FROM_BYTES: usize = 256;

/// The longest frames a compressed block may claim (a damaged length must not make a reader
/// allocate without bound).
const MAX_FRAMES_BYTES: usize = 64 << 20;

const PLAIN: u8 = 1;
const COMPRESSED: u8 = 2;
/// Format byte and record count.
pub(super) const HEADER_BYTES: usize = 5;
/// Format byte, record count and frames length of a compressed block.
const COMPRESSED_HEADER_BYTES: usize = 9;
/// The length prefix of one record.
pub(super) const FRAME_BYTES: usize = 4;

/// A block being written.
#[derive(Debug)]
pub(super) struct BlockBuilder {
    pub(super) first: u64,
    count: u32,
    /// A plain block's header followed by the frames.
    buf: Vec<u8>,
}

impl BlockBuilder {
    pub(super) fn new(first: u64) -> BlockBuilder {
        let mut buf = Vec::with_capacity(RAW_MAX_BYTES / 2);
        buf.push(PLAIN);
        buf.extend_from_slice(&0u32.to_le_bytes());
        BlockBuilder {
            first,
            count: 0,
            buf,
        }
    }

    /// Whether a record of `len` bytes still fits (an empty block takes any record).
    pub(super) fn fits(&self, len: usize) -> bool {
        self.count == 0 || self.buf.len() + FRAME_BYTES + len <= RAW_MAX_BYTES
    }

    /// The sequence the next record gets.
    pub(super) fn next_seq(&self) -> u64 {
        self.first + u64::from(self.count)
    }

    /// The bytes of the plain value so far (header and frames), which is what a block is
    /// counted as until it is finished.
    pub(super) fn plain_len(&self) -> usize {
        self.buf.len()
    }

    /// Appends one record written by `write` (which appends its bytes to the buffer);
    /// returns the bytes the record adds to the plain value (frame + record).
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

    #[cfg(test)]
    pub(super) fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// The finished blocks as `(first sequence, value)`, in order: usually one, several when
    /// the frames do not compress below [`BLOCK_MAX_BYTES`]. Empty for an empty builder.
    pub(super) fn finish(self) -> Vec<(u64, Vec<u8>)> {
        let mut out = Vec::with_capacity(1);
        if self.count > 0 {
            seal(self.first, self.count, &self.buf[HEADER_BYTES..], &mut out);
        }
        out
    }
}

/// Encodes the `count` records framed in `frames` as one or more blocks from `first` on.
fn seal(first: u64, count: u32, frames: &[u8], out: &mut Vec<(u64, Vec<u8>)>) {
    debug_assert!(count > 0);
    let plain_len = HEADER_BYTES + frames.len();
    if frames.len() >= COMPRESS_FROM_BYTES {
        let bound = lz4_flex::block::get_maximum_output_size(frames.len());
        let mut value = vec![0u8; COMPRESSED_HEADER_BYTES + bound];
        value[0] = COMPRESSED;
        value[1..5].copy_from_slice(&count.to_le_bytes());
        let frames_len = u32::try_from(frames.len()).expect("frames are far below 4 GiB");
        value[5..9].copy_from_slice(&frames_len.to_le_bytes());
        // The output has the room the compressor asks for, so this cannot fail.
        let n = lz4_flex::block::compress_into(frames, &mut value[COMPRESSED_HEADER_BYTES..])
            .expect("the output has the maximum compressed size");
        value.truncate(COMPRESSED_HEADER_BYTES + n);
        if value.len() < plain_len && (value.len() <= BLOCK_MAX_BYTES || count == 1) {
            out.push((first, value));
            return;
        }
    }
    if plain_len <= BLOCK_MAX_BYTES || count == 1 {
        let mut value = Vec::with_capacity(plain_len);
        value.push(PLAIN);
        value.extend_from_slice(&count.to_le_bytes());
        value.extend_from_slice(frames);
        out.push((first, value));
        return;
    }
    // Too big either way: split at the record boundary nearest the middle.
    let (mut at, mut n) = (0usize, 0u32);
    while n < count / 2 {
        at += FRAME_BYTES + read_u32(frames, at).unwrap_or(0) as usize;
        n += 1;
    }
    seal(first, n, &frames[..at], out);
    seal(first + u64::from(n), count - n, &frames[at..], out);
}

/// The records of a stored block, read once: a view into the value (plain) or into the
/// decompressed frames, so each record's bytes can be handed out without a copy.
pub(super) struct Records {
    data: IVec,
    /// `(sequence, offset in data, length)` of each record, in order.
    entries: Vec<(u64, usize, usize)>,
}

impl Records {
    /// `(sequence, bytes)` of each record, in order (empty bytes: a tombstone).
    pub(super) fn iter(&self) -> impl Iterator<Item = (u64, &[u8])> + '_ {
        self.entries
            .iter()
            .map(|&(seq, at, len)| (seq, &self.data[at..at + len]))
    }

    /// `(sequence, bytes)` of each record as views sharing the block's buffer.
    pub(super) fn shared(&self) -> impl Iterator<Item = (u64, IVec)> + '_ {
        self.entries
            .iter()
            .map(|&(seq, at, len)| (seq, self.data.subslice(at, len)))
    }
}

/// Reads the records of the block stored under `first`, checking its framing.
pub(super) fn records(first: u64, value: &IVec) -> Result<Records, StoreError> {
    let key = first.to_be_bytes();
    let count = count_of(first, value)?;
    let (data, start) = if value[0] == COMPRESSED {
        let frames_len = read_u32(value, 5)
            .ok_or_else(|| corrupt("outbox block", &key, "truncated header"))?
            as usize;
        if frames_len > MAX_FRAMES_BYTES {
            return Err(corrupt("outbox block", &key, "implausible frames length"));
        }
        let mut frames = vec![0u8; frames_len];
        let n = lz4_flex::block::decompress_into(&value[COMPRESSED_HEADER_BYTES..], &mut frames)
            .map_err(|e| corrupt("outbox block", &key, format!("does not decompress: {e}")))?;
        if n != frames_len {
            return Err(corrupt("outbox block", &key, "frames shorter than stated"));
        }
        (IVec::from(frames), 0)
    } else {
        (value.clone(), HEADER_BYTES)
    };
    // Every record takes at least its frame: a count beyond that is damage, not a block.
    if count as usize > (data.len() - start) / FRAME_BYTES {
        return Err(corrupt("outbox block", &key, "more records than bytes"));
    }
    let mut entries = Vec::with_capacity(count as usize);
    let mut at = start;
    for i in 0..count {
        let len =
            read_u32(&data, at).ok_or_else(|| corrupt("outbox block", &key, "truncated"))? as usize;
        let begin = at + FRAME_BYTES;
        at = begin + len;
        if at > data.len() {
            return Err(corrupt("outbox block", &key, "record runs past the end"));
        }
        entries.push((first + u64::from(i), begin, len));
    }
    if at != data.len() {
        return Err(corrupt("outbox block", &key, "bytes after the last record"));
    }
    Ok(Records { data, entries })
}

/// How many records a stored block holds.
pub(super) fn count_of(first: u64, value: &[u8]) -> Result<u32, StoreError> {
    let key = first.to_be_bytes();
    let header = match value.first() {
        Some(&PLAIN) => HEADER_BYTES,
        Some(&COMPRESSED) => COMPRESSED_HEADER_BYTES,
        _ => 0,
    };
    if header == 0 || value.len() < header {
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

    fn read(first: u64, value: Vec<u8>) -> Vec<(u64, Vec<u8>)> {
        records(first, &IVec::from(value))
            .unwrap()
            .iter()
            .map(|(s, b)| (s, b.to_vec()))
            .collect()
    }

    /// A meter reading's JSON with `i` in its changing fields.
    fn reading(i: u64) -> Vec<u8> {
        format!(
            "{{\"seq\":{i},\"at\":\"2026-12-01T10:00:{:02}Z\",\"body\":{{\"meter_reading\":{{\"pile\":\"32010600000001\",\"import_wh\":{}}}}}}}",
            i % 60,
            1_000 + i * 7
        )
        .into_bytes()
    }

    /// Bytes that do not compress (an LCG's high bytes).
    fn noise(len: usize, seed: u64) -> Vec<u8> {
        let mut x = seed;
        (0..len)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect()
    }

    #[test]
    fn small_block_round_trips_records_and_tombstones() {
        let mut b = BlockBuilder::new(41);
        assert!(b.is_empty());
        assert_eq!(b.push(b"{\"seq\":41}"), 4 + 10);
        assert_eq!(b.push(b""), 4);
        b.push(b"{\"seq\":43}");
        assert_eq!(b.next_seq(), 44);
        assert_eq!(b.plain_len(), HEADER_BYTES + 4 + 10 + 4 + 4 + 10);
        let blocks = b.finish();
        assert_eq!(blocks.len(), 1);
        let (first, v) = blocks.into_iter().next().unwrap();
        assert_eq!(first, 41);
        assert_eq!(v[0], PLAIN, "too small to be worth compressing");
        assert_eq!(last_of(41, &v).unwrap(), 43);
        assert_eq!(
            read(41, v),
            vec![
                (41, b"{\"seq\":41}".to_vec()),
                (42, Vec::new()),
                (43, b"{\"seq\":43}".to_vec())
            ]
        );
    }

    #[test]
    fn a_full_builder_of_json_compresses_into_one_block_within_the_bound() {
        let mut b = BlockBuilder::new(1);
        let mut want = Vec::new();
        let mut i = 1;
        while b.fits(reading(i).len()) {
            if i % 10 == 0 {
                b.push(b"");
                want.push((i, Vec::new()));
            } else {
                b.push(&reading(i));
                want.push((i, reading(i)));
            }
            i += 1;
        }
        assert!(b.plain_len() > BLOCK_MAX_BYTES * 3);
        let blocks = b.finish();
        assert_eq!(blocks.len(), 1, "JSON compresses far below the bound");
        let (first, v) = blocks.into_iter().next().unwrap();
        assert_eq!(v[0], COMPRESSED);
        assert!(v.len() <= BLOCK_MAX_BYTES, "{} bytes", v.len());
        assert_eq!(last_of(first, &v).unwrap(), i - 1);
        assert_eq!(read(first, v), want);
    }

    #[test]
    fn incompressible_frames_split_into_blocks_within_the_bound() {
        let mut b = BlockBuilder::new(100);
        let mut want = Vec::new();
        for i in 0..40u64 {
            let r = noise(300 + i as usize, i);
            assert!(b.fits(r.len()));
            b.push(&r);
            want.push((100 + i, r));
        }
        let blocks = b.finish();
        assert!(blocks.len() >= 3, "{} blocks", blocks.len());
        let mut next = 100;
        let mut got = Vec::new();
        for (first, v) in blocks {
            assert_eq!(first, next, "contiguous");
            assert!(v.len() <= BLOCK_MAX_BYTES, "{} bytes", v.len());
            next = last_of(first, &v).unwrap() + 1;
            got.extend(read(first, v));
        }
        assert_eq!(got, want);
    }

    #[test]
    fn a_single_large_record_is_a_block_of_its_own() {
        let mut big = BlockBuilder::new(1);
        assert!(big.fits(100_000), "an empty block takes any record");
        big.push(&noise(RAW_MAX_BYTES + 1, 7));
        assert!(!big.fits(1));
        let blocks = big.finish();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].1[0], PLAIN, "noise stays plain");
        assert_eq!(
            read(1, blocks[0].1.clone())[0].1,
            noise(RAW_MAX_BYTES + 1, 7)
        );
        let mut text = BlockBuilder::new(5);
        text.push(&vec![b'x'; 100_000]);
        let blocks = text.finish();
        assert_eq!(blocks.len(), 1);
        assert_eq!(blocks[0].1[0], COMPRESSED);
        assert!(blocks[0].1.len() < BLOCK_MAX_BYTES);
        assert_eq!(read(5, blocks[0].1.clone()), vec![(5, vec![b'x'; 100_000])]);
        assert!(BlockBuilder::new(9).finish().is_empty());
    }

    #[test]
    fn damaged_blocks_are_refused() {
        let mut b = BlockBuilder::new(1);
        b.push(b"abc");
        let v = b.finish().remove(0).1;
        assert!(records(1, &IVec::from(&v[..v.len() - 1])).is_err());
        let mut longer = v.clone();
        longer.push(0);
        assert!(records(1, &IVec::from(longer)).is_err());
        assert!(count_of(1, &[3, 1, 0, 0, 0]).is_err());
        assert!(count_of(1, &[1, 0, 0, 0, 0]).is_err());
        assert!(
            count_of(1, &[2, 1, 0, 0, 0]).is_err(),
            "compressed header too short"
        );

        let mut c = BlockBuilder::new(1);
        for i in 0..30 {
            c.push(&reading(i));
        }
        let v = c.finish().remove(0).1;
        assert_eq!(v[0], COMPRESSED);
        // A cut compressed body, a wrong frames length, a wrong count: refused, no panic.
        assert!(records(1, &IVec::from(&v[..v.len() - 3])).is_err());
        let mut wrong_len = v.clone();
        wrong_len[5] ^= 0x01;
        assert!(records(1, &IVec::from(wrong_len)).is_err());
        let mut wrong_count = v.clone();
        wrong_count[1] = 31;
        assert!(records(1, &IVec::from(wrong_count)).is_err());
        let mut huge = v.clone();
        huge[5..9].copy_from_slice(&u32::MAX.to_le_bytes());
        assert!(records(1, &IVec::from(huge)).is_err());
        for cut in 0..v.len() {
            let mut flipped = v.clone();
            flipped[cut] ^= 0x5a;
            // Either refused or decoded to something framed; never a panic.
            let _ = records(1, &IVec::from(flipped));
        }
    }
}
