//! Telemetry thinning: when the outbox nears its bound, delete the meter readings that do not
//! change any session's price.
//!
//! The rule is [`crate::connector::meter::same_segment`]'s: within one session's readings,
//! a reading may go when the span from the last kept reading to the next one lies in a single
//! tariff segment; the first and last reading of the session are always kept. The scan goes
//! through the unacknowledged outbox in windows of [`THIN_WINDOW`] records (bounded memory);
//! each window keeps its own first and last reading per session, which only keeps a few more.
//!
//! A thinned record leaves a tombstone (an empty record in its block: 4 bytes of framing
//! instead of ~300 before compression): the cloud acknowledges the highest *contiguous* sequence, so the
//! uplink must be able to say which sequences were thinned rather than leave silent gaps.
//! Thinning rewrites each touched block whole (same key, same sequences, the other records'
//! bytes unchanged), together with the ledger, in one atomic batch.

use std::collections::HashMap;

use jiff::Timestamp;
use voltline_protocol::sync::{Record, RecordBody};

use super::block::{self, BlockBuilder};
use super::codec::{block_bytes, encode_meta, seq_key, seq_of, META_KEY};
use super::error::{corrupt, StoreError};
use super::{level_of, Level, Store};
use crate::connector::meter::same_segment;

/// Records examined per thinning window.
pub const THIN_WINDOW: usize = 20_000;

/// What a thinning pass did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ThinReport {
    pub scanned: u64,
    pub deleted: u64,
    pub bytes_freed: u64,
}

type SessionKey = ([u8; 7], u8, [u8; 16]);

impl Store {
    /// Thins when the outbox is at or above the thinning threshold, with the cached tariff.
    /// Returns `None` when there was nothing to do.
    pub fn maintain(&self) -> Result<Option<ThinReport>, StoreError> {
        if self.level() < Level::Thin {
            return Ok(None);
        }
        let site = self.site_config();
        let tariff = site.as_ref().and_then(|c| c.tariff.as_ref());
        self.thin_telemetry(&|a, b| same_segment(tariff, a, b), true)
            .map(Some)
    }

    /// Deletes meter readings that `same_segment` shows to be irrelevant to pricing. With
    /// `until_below_threshold`, stops once the outbox is below the thinning threshold.
    pub fn thin_telemetry(
        &self,
        same_segment: &dyn Fn(Timestamp, Timestamp) -> bool,
        until_below_threshold: bool,
    ) -> Result<ThinReport, StoreError> {
        let mut report = ThinReport::default();
        let mut after = 0u64;
        loop {
            let window = self.unacked_raw_after(after, THIN_WINDOW)?;
            let Some(&(last, _)) = window.last() else {
                return Ok(report);
            };
            after = last;
            report.scanned += window.len() as u64;
            let mut sessions: HashMap<SessionKey, Vec<(u64, Timestamp, u64)>> = HashMap::new();
            for (seq, value) in &window {
                if value.is_empty() {
                    continue; // already thinned
                }
                let record: Record = serde_json::from_slice(value)
                    .map_err(|e| corrupt("outbox record", &seq_key(*seq), e))?;
                if let RecordBody::MeterReading(m) = record.body {
                    let key = (*m.pile.as_bytes(), m.connector.get(), *m.serial.as_bytes());
                    sessions.entry(key).or_default().push((
                        *seq,
                        m.measured_at,
                        value.len() as u64,
                    ));
                }
            }
            let mut doomed = Vec::new();
            for readings in sessions.values() {
                removable(readings, same_segment, &mut doomed);
            }
            let (deleted, freed) = self.delete_unacked(&doomed)?;
            report.deleted += deleted;
            report.bytes_freed += freed;
            if until_below_threshold && self.level() < Level::Thin {
                return Ok(report);
            }
        }
    }

    /// Replaces the given (sequence, value bytes) entries that are still unacknowledged by
    /// tombstones, rewriting each block that holds one. Returns (records thinned, bytes
    /// freed).
    fn delete_unacked(&self, doomed: &[(u64, u64)]) -> Result<(u64, u64), StoreError> {
        if doomed.is_empty() {
            return Ok((0, 0));
        }
        let mut seqs: Vec<u64> = doomed.iter().map(|&(seq, _)| seq).collect();
        seqs.sort_unstable();
        seqs.dedup();
        // The lock is held while blocks are read and rewritten: no append, trim or other
        // thinning pass can change them in between.
        let mut writer = self.writer();
        let mut ledger = writer.ledger;
        let mut batch = sled::Batch::default();
        let mut n = 0u64;
        let mut i = 0;
        while i < seqs.len() {
            let seq = seqs[i];
            // Entries at or below the mark are the trim's to remove (and to count).
            if seq <= ledger.acked {
                i += 1;
                continue;
            }
            let Some(item) = self.inner.outbox.range(..=seq_key(seq)).next_back() else {
                i += 1;
                continue;
            };
            let (k, v) = item?;
            let first = seq_of(&k)?;
            let last = block::last_of(first, &v)?;
            if last < seq {
                i += 1;
                continue;
            }
            // Every doomed sequence of this block.
            let start = i;
            while i < seqs.len() && seqs[i] <= last {
                i += 1;
            }
            let mine = &seqs[start..i];
            let mut rewritten = BlockBuilder::new(first);
            let mut hit = 0u64;
            for (s, bytes) in block::records(first, &v)?.iter() {
                if !bytes.is_empty() && s > ledger.acked && mine.binary_search(&s).is_ok() {
                    // A tombstone, not a removal: the sequence stays known as thinned, so the
                    // uplink can tell the cloud (whose acknowledgement stops at a gap) what
                    // is missing.
                    rewritten.push(&[]);
                    hit += 1;
                } else {
                    rewritten.push(bytes);
                }
            }
            if hit == 0 {
                continue;
            }
            // Usually one block under the same key; more only if the rest compressed worse.
            let old = block_bytes(v.len());
            let mut new = 0u64;
            for (first, value) in rewritten.finish() {
                new += block_bytes(value.len());
                batch.insert(&seq_key(first), value);
            }
            ledger.bytes = ledger.bytes.saturating_sub(old) + new;
            n += hit;
        }
        if n == 0 {
            return Ok((0, 0));
        }
        batch.insert(META_KEY, &encode_meta(&ledger));
        self.inner.outbox.apply_batch(batch)?;
        let freed = writer.ledger.bytes.saturating_sub(ledger.bytes);
        writer.ledger = ledger;
        let level = level_of(&self.inner.config, ledger.bytes);
        if level < writer.alarmed {
            writer.alarmed = level;
        }
        Ok((n, freed))
    }
}

/// Pushes onto `doomed` the (sequence, bytes) of the readings of one session (in sequence
/// order) that can go: never the first or the last; an inner one when the span from the last
/// kept reading to the next reading is one segment.
fn removable(
    readings: &[(u64, Timestamp, u64)],
    same_segment: &dyn Fn(Timestamp, Timestamp) -> bool,
    doomed: &mut Vec<(u64, u64)>,
) {
    if readings.len() < 3 {
        return;
    }
    let mut kept_at = readings[0].1;
    for i in 1..readings.len() - 1 {
        let (seq, at, bytes) = readings[i];
        if same_segment(kept_at, readings[i + 1].1) {
            doomed.push((seq, bytes));
        } else {
            kept_at = at;
        }
    }
}
