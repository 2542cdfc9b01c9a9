//! `FrameCodec`: frames over a byte stream (TCP), as a `tokio_util::codec` pair.
//!
//! The decoder yields `Result<Frame, FrameError>` items rather than failing the stream, so one
//! bad frame never ends a charger's connection:
//!
//! - any chunking works: a frame split at any byte waits for the rest; many frames in one read
//!   come out one by one;
//! - bytes that are not a frame are skipped up to the next start byte `0x68`, counted, and
//!   reported once per run as [`FrameError::Garbage`];
//! - a frame whose checksum fails is reported and only its start byte is dropped (its length
//!   byte may itself be garbage), so a real frame hidden behind it is still found;
//! - a start byte followed by a length that cannot be satisfied yet does not hold back a
//!   complete, valid frame that is already buffered behind it (lookahead resync);
//! - the buffer is never asked to grow beyond one maximum frame (204 bytes) on the decoder's
//!   account: the length field is at most 200, and nothing is allocated from a length that
//!   was not bounds-checked first.

use std::io;

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error::FrameError;
use crate::frame::{self, Check, Frame, MAX_FRAME_LEN, START};
use crate::wire::write::EncodeError;

/// Counters a connection exports as metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CodecStats {
    /// Frames decoded successfully.
    pub frames: u64,
    /// Frames or byte runs reported as errors.
    pub errors: u64,
    /// Bytes dropped while looking for a start byte.
    pub skipped_bytes: u64,
}

/// A frame could not be sent.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// The message cannot be encoded.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The transport failed.
    #[error(transparent)]
    Io(#[from] io::Error),
}

/// The YKC frame codec.
#[derive(Debug, Default)]
pub struct FrameCodec {
    stats: CodecStats,
    /// Bytes skipped since the last report.
    unreported_garbage: usize,
}

impl FrameCodec {
    /// A new codec.
    pub fn new() -> Self {
        Self::default()
    }

    /// Counters so far.
    pub fn stats(&self) -> CodecStats {
        self.stats
    }

    fn skip(&mut self, buf: &mut BytesMut, n: usize) {
        buf.advance(n);
        self.stats.skipped_bytes += n as u64;
        self.unreported_garbage += n;
    }

    fn report_garbage(&mut self) -> Option<Result<Frame, FrameError>> {
        if self.unreported_garbage == 0 {
            return None;
        }
        let skipped = std::mem::take(&mut self.unreported_garbage);
        self.stats.errors += 1;
        Some(Err(FrameError::Garbage { skipped }))
    }

    /// Position of the next start byte at or after `from`, or the buffer's length.
    fn next_start(buf: &[u8], from: usize) -> usize {
        buf.get(from..)
            .and_then(|tail| tail.iter().position(|&b| b == START))
            .map_or(buf.len(), |p| p + from)
    }

    /// When the front of the buffer claims a frame longer than what is buffered, looks for a
    /// complete frame with a valid checksum further on; returns its position.
    fn complete_frame_behind(buf: &[u8]) -> Option<usize> {
        let mut at = Self::next_start(buf, 1);
        while at < buf.len() {
            if let Ok(Check::Complete(len)) = frame::check(&buf[at..]) {
                let f = &buf[at..at + len];
                let crc = u16::from_le_bytes([f[len - 2], f[len - 1]]);
                if crc == crate::wire::crc::checksum(&f[2..len - 2]) {
                    return Some(at);
                }
            }
            at = Self::next_start(buf, at + 1);
        }
        None
    }
}

impl Decoder for FrameCodec {
    type Item = Result<Frame, FrameError>;
    type Error = io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> io::Result<Option<Self::Item>> {
        loop {
            if buf.is_empty() {
                return Ok(None);
            }
            match frame::check(buf) {
                Err(FrameError::BadStart { .. }) => {
                    let next = Self::next_start(buf, 0);
                    self.skip(buf, next);
                }
                Err(_) => {
                    // A start byte with an impossible length: it was garbage.
                    let next = Self::next_start(buf, 1);
                    self.skip(buf, next);
                }
                Ok(Check::Incomplete(need)) => {
                    if let Some(at) = Self::complete_frame_behind(buf) {
                        self.skip(buf, at);
                        continue;
                    }
                    debug_assert!(need <= MAX_FRAME_LEN);
                    buf.reserve(need.saturating_sub(buf.len()));
                    return Ok(None);
                }
                Ok(Check::Complete(len)) => {
                    if let Some(report) = self.report_garbage() {
                        return Ok(Some(report));
                    }
                    let result = frame::decode_checked_len(&buf[..len]);
                    match result {
                        Err(e @ FrameError::Checksum { .. }) => {
                            // Drop only the start byte; what follows may be a real frame.
                            buf.advance(1);
                            self.stats.skipped_bytes += 1;
                            self.stats.errors += 1;
                            return Ok(Some(Err(e)));
                        }
                        Err(e) => {
                            buf.advance(len);
                            self.stats.errors += 1;
                            return Ok(Some(Err(e)));
                        }
                        Ok(f) => {
                            buf.advance(len);
                            self.stats.frames += 1;
                            return Ok(Some(Ok(f)));
                        }
                    }
                }
            }
            if buf.is_empty() {
                return Ok(None);
            }
        }
    }

    fn decode_eof(&mut self, buf: &mut BytesMut) -> io::Result<Option<Self::Item>> {
        if let Some(item) = self.decode(buf)? {
            return Ok(Some(item));
        }
        if !buf.is_empty() {
            let have = buf.len();
            let need = match frame::check(buf) {
                Ok(Check::Incomplete(need)) => need,
                _ => have + 1,
            };
            self.stats.skipped_bytes += have as u64;
            self.stats.errors += 1;
            buf.clear();
            self.unreported_garbage = 0;
            return Ok(Some(Err(FrameError::Truncated { have, need })));
        }
        Ok(self.report_garbage())
    }
}

impl Encoder<Frame> for FrameCodec {
    type Error = SendError;

    fn encode(&mut self, item: Frame, dst: &mut BytesMut) -> Result<(), SendError> {
        item.encode(dst).map_err(SendError::from)
    }
}

impl Encoder<&Frame> for FrameCodec {
    type Error = SendError;

    fn encode(&mut self, item: &Frame, dst: &mut BytesMut) -> Result<(), SendError> {
        item.encode(dst).map_err(SendError::from)
    }
}
