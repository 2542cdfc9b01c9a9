//! The outbox: appends with sequence allocation and serial deduplication, the cloud's
//! acknowledgement (trim), and replay.
//!
//! Records are stored in blocks (see [`super::block`]): one write makes one or a few
//! blocks, an acknowledgement removes the blocks it covers entirely, and a replay read
//! starts in the middle of a block when its cursor falls inside one. A block the cloud
//! acknowledged only in part is rewritten without the acknowledged records (under the key
//! of its first unacknowledged sequence, the rest of its bytes unchanged), so what is
//! stored and counted is always exactly the unacknowledged records: at most one small block
//! (≤ 4 KiB) is rewritten per acknowledgement.
//!
//! The ledger counts stored bytes (keys and values as sled holds them, compressed). While a
//! block is being built it is counted at its plain size, which is never below what it
//! becomes; the count is set to the stored size when the block is sealed.

use std::collections::HashMap;

use jiff::Timestamp;
use voltline_protocol::sync::{Alarm, Record, RecordBody, Severity};
use voltline_protocol::TransactionSerial;

use super::block::{self, BlockBuilder, HEADER_BYTES};
use super::codec::{
    block_bytes, decode_meta, encode_meta, seq_key, seq_of, serial_key, SerialKind, META_KEY,
    SEQ_END,
};
use super::error::{corrupt, StoreError};
use super::prepared::PreparedRecord;
use super::{level_of, Ledger, Level, Store};

/// Most blocks (or serials) removed in one trim write.
const TRIM_CHUNK: usize = 2_000;

/// Most records one replay read returns (the HTTP batch limit of the contract).
pub const MAX_REPLAY_RECORDS: usize = voltline_protocol::sync::MAX_HTTP_BATCH_RECORDS;

/// A record to append; the store assigns its sequence.
#[derive(Debug, Clone, PartialEq)]
pub struct NewRecord {
    /// When the edge recorded it.
    pub at: Timestamp,
    pub body: RecordBody,
}

impl NewRecord {
    pub fn new(at: Timestamp, body: RecordBody) -> Self {
        NewRecord { at, body }
    }
}

/// What became of one appended record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Appended {
    /// Stored under `seq`.
    Stored { seq: u64 },
    /// A transaction or discharge record whose serial was already stored under `seq`.
    Duplicate { seq: u64 },
    /// A non-billing record dropped because the outbox is at its bound.
    Dropped,
}

impl Appended {
    /// The sequence holding the record, unless it was dropped.
    pub fn seq(self) -> Option<u64> {
        match self {
            Appended::Stored { seq } | Appended::Duplicate { seq } => Some(seq),
            Appended::Dropped => None,
        }
    }
}

pub(super) fn load_ledger(outbox: &sled::Tree) -> Result<Ledger, StoreError> {
    let mut ledger = match outbox.get(META_KEY)? {
        Some(v) => decode_meta(&v)?,
        None => Ledger {
            head: 0,
            acked: 0,
            bytes: 0,
        },
    };
    // The meta is written in the same atomic batch as every block, so this is a consistency
    // check: a block above the head would be overwritten by the next append.
    if let Some((k, v)) = outbox.range(..SEQ_END).next_back().transpose()? {
        let last = block::last_of(seq_of(&k)?, &v)?;
        if last > ledger.head {
            return Err(corrupt(
                "outbox meta",
                META_KEY,
                format!("head {} is below the stored sequence {last}", ledger.head),
            ));
        }
    }
    ledger.acked = ledger.acked.min(ledger.head);
    Ok(ledger)
}

impl Store {
    /// Appends `records` in one atomic write and flushes: when this returns `Ok`, every
    /// stored record is on disk. Results are in input order.
    pub async fn append_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Appended>, StoreError> {
        let out = self.write_batch(records)?;
        self.flush().await?;
        Ok(out)
    }

    /// Appends `records` in one atomic write without flushing (see [`Store::flush`]).
    pub fn write_batch(&self, records: Vec<NewRecord>) -> Result<Vec<Appended>, StoreError> {
        let prepared = records
            .iter()
            .map(PreparedRecord::new)
            .collect::<Result<Vec<_>, _>>()?;
        self.write_prepared(prepared)
    }

    /// Appends records encoded beforehand in one atomic write without flushing.
    pub fn write_prepared(
        &self,
        records: Vec<PreparedRecord>,
    ) -> Result<Vec<Appended>, StoreError> {
        let max = self.inner.config.max_batch_records;
        if records.len() > max {
            return Err(StoreError::BatchTooLarge {
                len: records.len(),
                max,
            });
        }
        let config = &self.inner.config;
        let mut writer = self.writer();
        let mut ledger = writer.ledger;
        let mut out = Vec::with_capacity(records.len());
        let mut batch = sled::Batch::default();
        let mut blocks = Blocks::default();
        let mut serials: HashMap<[u8; 17], u64> = HashMap::new();
        for r in &records {
            if !r.billing && level_of(config, ledger.bytes) == Level::Full {
                self.inner
                    .dropped_telemetry
                    .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                out.push(Appended::Dropped);
                continue;
            }
            if let Some(key) = &r.serial {
                let known = match serials.get(key) {
                    Some(seq) => Some(*seq),
                    None => self.serial_seq_raw(key)?,
                };
                if let Some(seq) = known {
                    out.push(Appended::Duplicate { seq });
                    continue;
                }
            }
            let seq = blocks.put(&mut ledger, &mut batch, r);
            if let Some(key) = r.serial {
                serials.insert(key, seq);
            }
            out.push(Appended::Stored { seq });
        }
        let level = level_of(config, ledger.bytes);
        if level > writer.alarmed && level >= Level::Thin {
            let alarm = bound_alarm(config.max_bytes, ledger.bytes, level);
            let alarm = NewRecord::new(Timestamp::now(), RecordBody::Alarm(alarm));
            blocks.put(&mut ledger, &mut batch, &PreparedRecord::new(&alarm)?);
        }
        blocks.close(&mut ledger, &mut batch);
        if ledger == writer.ledger {
            return Ok(out);
        }
        batch.insert(META_KEY, &encode_meta(&ledger));
        if serials.is_empty() {
            self.inner.outbox.apply_batch(batch)?;
        } else {
            let trees = (&self.inner.outbox, &self.inner.serials);
            sled::Transactional::transaction(&trees, |(o, s)| {
                o.apply_batch(&batch)?;
                for (k, seq) in &serials {
                    s.insert(&k[..], &seq.to_be_bytes())?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<StoreError>>(())
            })?;
        }
        writer.ledger = ledger;
        if level > writer.alarmed {
            writer.alarmed = level;
        }
        Ok(out)
    }

    /// The sequence of the stored transaction record with `serial`, if any.
    pub fn transaction_seq(&self, serial: &TransactionSerial) -> Result<Option<u64>, StoreError> {
        self.serial_seq_raw(&serial_key(SerialKind::Transaction, serial))
    }

    /// The sequence of the stored discharge record with `serial`, if any.
    pub fn discharge_seq(&self, serial: &TransactionSerial) -> Result<Option<u64>, StoreError> {
        self.serial_seq_raw(&serial_key(SerialKind::Discharge, serial))
    }

    /// Forgets the serials of records stored below sequence `seq` (a pile stops resending a
    /// record once it is acknowledged, so old serials need not be kept for ever; call with
    /// the head of, say, 30 days ago). Returns how many were removed.
    pub fn purge_serials_below(&self, seq: u64) -> Result<u64, StoreError> {
        let mut batch = sled::Batch::default();
        let mut removed = 0u64;
        for item in self.inner.serials.iter() {
            let (k, v) = item?;
            let stored: [u8; 8] = v[..]
                .try_into()
                .map_err(|_| corrupt("serial index", &k, "not 8 bytes"))?;
            if u64::from_be_bytes(stored) < seq {
                batch.remove(k);
                removed += 1;
                if removed.is_multiple_of(TRIM_CHUNK as u64) {
                    self.inner.serials.apply_batch(std::mem::take(&mut batch))?;
                }
            }
        }
        self.inner.serials.apply_batch(batch)?;
        Ok(removed)
    }

    fn serial_seq_raw(&self, key: &[u8; 17]) -> Result<Option<u64>, StoreError> {
        match self.inner.serials.get(key)? {
            None => Ok(None),
            Some(v) => {
                let b: [u8; 8] = v[..]
                    .try_into()
                    .map_err(|_| corrupt("serial index", key, "not 8 bytes"))?;
                Ok(Some(u64::from_be_bytes(b)))
            }
        }
    }

    /// The cloud committed every record up to `seq`: remove them. An acknowledgement at or
    /// below the current mark is a no-op; one beyond the head is refused. Returns how many
    /// records were removed.
    pub fn ack_up_to(&self, seq: u64) -> Result<u64, StoreError> {
        {
            let mut writer = self.writer();
            let ledger = writer.ledger;
            if seq <= ledger.acked {
                return Ok(0);
            }
            if seq > ledger.head {
                return Err(StoreError::AckBeyondHead {
                    acked: seq,
                    head: ledger.head,
                });
            }
            let next = Ledger {
                acked: seq,
                ..ledger
            };
            self.inner.outbox.insert(META_KEY, &encode_meta(&next))?;
            writer.ledger = next;
        }
        self.purge_acked()
    }

    /// Removes records at or below the acknowledged mark, a bounded chunk of blocks per
    /// write: blocks wholly at or below it are removed; the block the mark falls inside is
    /// rewritten without its acknowledged records, under the key of its first
    /// unacknowledged sequence (removal and rewrite in one atomic batch with the ledger).
    /// Returns how many records were removed.
    pub(super) fn purge_acked(&self) -> Result<u64, StoreError> {
        let mut removed = 0u64;
        loop {
            let mut writer = self.writer();
            let mut ledger = writer.ledger;
            let mut batch = sled::Batch::default();
            let mut n = 0usize;
            for item in self
                .inner
                .outbox
                .range(..=seq_key(ledger.acked))
                .take(TRIM_CHUNK)
            {
                let (k, v) = item?;
                let first = seq_of(&k)?;
                let last = block::last_of(first, &v)?;
                ledger.bytes = ledger.bytes.saturating_sub(block_bytes(v.len()));
                batch.remove(k);
                n += 1;
                if last <= ledger.acked {
                    removed += last - first + 1;
                    continue;
                }
                // The mark falls inside: keep the unacknowledged rest, its bytes unchanged.
                let mut rest = BlockBuilder::new(ledger.acked + 1);
                for (seq, bytes) in block::records(first, &v)?.iter() {
                    if seq > ledger.acked {
                        rest.push(bytes);
                    }
                }
                for (first, value) in rest.finish() {
                    ledger.bytes += block_bytes(value.len());
                    batch.insert(&seq_key(first), value);
                }
                removed += ledger.acked - first + 1;
                // Keys are ordered: nothing at or below the mark follows this block.
                break;
            }
            if n == 0 {
                return Ok(removed);
            }
            batch.insert(META_KEY, &encode_meta(&ledger));
            self.inner.outbox.apply_batch(batch)?;
            writer.ledger = ledger;
            if level_of(&self.inner.config, ledger.bytes) < writer.alarmed {
                writer.alarmed = level_of(&self.inner.config, ledger.bytes);
            }
        }
    }

    /// Up to `max` (at most [`MAX_REPLAY_RECORDS`]) unacknowledged records with a sequence
    /// above `after`, in order. A thinned record (tombstone) comes back as
    /// [`RecordBody::Thinned`] dated `now`, so its sequence still reaches the cloud, whose
    /// acknowledgement only moves over contiguous sequences.
    pub fn unacked_after(
        &self,
        after: u64,
        max: usize,
        now: Timestamp,
    ) -> Result<Vec<Record>, StoreError> {
        self.unacked_raw_after(after, max)?
            .into_iter()
            .map(|(seq, v)| {
                if v.is_empty() {
                    return Ok(Record {
                        seq,
                        at: now,
                        body: RecordBody::Thinned,
                    });
                }
                serde_json::from_slice(&v).map_err(|e| corrupt("outbox record", &seq_key(seq), e))
            })
            .collect()
    }

    /// Like [`Store::unacked_after`], but the stored JSON of each record as it goes up, and
    /// with thinned records as empty values (tombstones), so the uplink knows which
    /// sequences of the range were thinned. Each value is a view into its block's bytes (no
    /// copy per record).
    pub fn unacked_raw_after(
        &self,
        after: u64,
        max: usize,
    ) -> Result<Vec<(u64, sled::IVec)>, StoreError> {
        let max = max.min(MAX_REPLAY_RECORDS);
        let from = after.max(self.ledger().acked).saturating_add(1);
        if from == u64::MAX {
            return Ok(Vec::new());
        }
        let mut out = Vec::with_capacity(max.min(4_096));
        if max == 0 {
            return Ok(out);
        }
        // The block holding `from` may start below it (the mark or the cursor fell inside).
        let start = match self.inner.outbox.range(..=seq_key(from)).next_back() {
            Some(item) => {
                let (k, v) = item?;
                let first = seq_of(&k)?;
                if block::last_of(first, &v)? >= from {
                    first
                } else {
                    from
                }
            }
            None => from,
        };
        'blocks: for item in self.inner.outbox.range(seq_key(start)..SEQ_END) {
            let (k, v) = item?;
            let first = seq_of(&k)?;
            for (seq, bytes) in block::records(first, &v)?.shared() {
                if seq < from {
                    continue;
                }
                out.push((seq, bytes));
                if out.len() == max {
                    break 'blocks;
                }
            }
        }
        Ok(out)
    }

    /// Each stored block as (first sequence, records, value bytes), in order.
    #[cfg(test)]
    pub(crate) fn stored_blocks(&self) -> Result<Vec<(u64, u32, usize)>, StoreError> {
        let mut out = Vec::new();
        for item in self.inner.outbox.range(..SEQ_END) {
            let (k, v) = item?;
            let first = seq_of(&k)?;
            out.push((first, block::count_of(first, &v)?, v.len()));
        }
        Ok(out)
    }

    /// The outbox bytes recounted from what is stored (keys + values of every block): what
    /// the ledger's `bytes` must equal.
    #[cfg(test)]
    pub(crate) fn recount_bytes(&self) -> Result<u64, StoreError> {
        Ok(self
            .stored_blocks()?
            .iter()
            .map(|&(_, _, len)| block_bytes(len))
            .sum())
    }
}

/// The blocks of one write: records go into the open block until it is full, then a new
/// one opens at the next sequence. Every byte of an open block (key, header, frames,
/// records) is counted in the ledger as it is added, at its plain size, so the bound is
/// never checked against less than what will be stored; sealing sets the exact figure.
#[derive(Default)]
struct Blocks {
    open: Option<BlockBuilder>,
}

impl Blocks {
    /// Adds `r` with the next sequence; returns it.
    fn put(&mut self, ledger: &mut Ledger, batch: &mut sled::Batch, r: &PreparedRecord) -> u64 {
        let seq = ledger.head + 1;
        let len = r.len_with(seq);
        if self.open.as_ref().is_some_and(|b| !b.fits(len)) {
            self.close(ledger, batch);
        }
        let block = self.open.get_or_insert_with(|| {
            ledger.bytes += block_bytes(HEADER_BYTES);
            BlockBuilder::new(seq)
        });
        debug_assert_eq!(block.next_seq(), seq);
        ledger.bytes += block.push_with(|out| r.write_with(seq, out)) as u64;
        ledger.head = seq;
        seq
    }

    /// Seals the open block, if any, into `batch`, counting it at its stored size.
    fn close(&mut self, ledger: &mut Ledger, batch: &mut sled::Batch) {
        if let Some(b) = self.open.take() {
            ledger.bytes -= block_bytes(b.plain_len());
            for (first, value) in b.finish() {
                ledger.bytes += block_bytes(value.len());
                batch.insert(&seq_key(first), value);
            }
        }
    }
}

fn bound_alarm(max_bytes: u64, bytes: u64, level: Level) -> Alarm {
    let pct = bytes as u128 * 100 / max_bytes.max(1) as u128;
    let (severity, code, what) = match level {
        Level::Thin => (
            Severity::Warning,
            "store_thinning",
            "meter telemetry is being thinned",
        ),
        Level::Refuse => (
            Severity::Critical,
            "store_near_bound",
            "new sessions are refused",
        ),
        _ => (
            Severity::Critical,
            "store_full",
            "non-billing records are dropped; billing records are still kept",
        ),
    };
    Alarm {
        severity,
        code: code.to_owned(),
        message: format!(
            "the edge outbox holds {bytes} bytes ({pct} % of its {max_bytes}-byte bound): {what}; restore the uplink to the cloud so the backlog drains"
        ),
        pile: None,
    }
}
