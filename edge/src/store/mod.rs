//! The edge's durable store, on `sled`: the outbox of records for the cloud, the inbox of
//! commands, the active sessions, the index of stored transaction serials and the cached site
//! config (tariff, authorisation list, limits).
//!
//! Trees: `outbox` (blocks of records: big-endian `u64` first sequence of the block → a
//! framed list of the records' JSON, each exactly the bytes of a
//! [`Record`](voltline_protocol::sync::Record) that go up, an empty one for a thinned record
//! — see `block.rs`; plus one reserved meta key holding the head, the acknowledged mark and
//! the byte count), `serials` (transaction or discharge serial → the sequence of its record;
//! billing records only), `inbox` (command id → [`InboxEntry`]), `sessions` (pile +
//! connector → [`Session`](crate::connector::Session)), `config` (the [`SiteConfig`]) and
//! `grid` (the V2G grid event and discharge orders, see `grid.rs`).
//!
//! Why blocks: sled manages about 100,000 single-key inserts a second on two cores, far
//! below the ingest goal, so one write (a group commit) stores its records as a few blocks
//! of at most 4 KiB (about 14 records) instead of one key each. Blocks stay that small
//! because sled writes larger pages as blob files its flush does not fsync (see
//! `block.rs`). No store with the earlier one-key-per-record layout has shipped to a site,
//! so there is no migration: a non-empty outbox in that layout is refused at open as
//! damaged (its values are not blocks).
//!
//! What the store owns: sequence allocation, durability marks, the byte ledger and every
//! decision to thin, refuse or drop. What it must never do: reuse or skip a sequence, report
//! as durable a record no flush covered, drop or thin a billing record, re-encode a stored
//! record's bytes, or trim above the cloud's acknowledgement.
//!
//! # Guarantees (each has a test, named in brackets)
//!
//! 1. **Durable before acknowledged.** [`Store::append_batch`] and
//!    [`GroupCommitter::append_durable`] (or a [`Ticket`]'s `durable()`) return only after the
//!    records are flushed (fsync):
//!    a caller that acknowledges a transaction record to the pile after they return never
//!    acknowledges something a crash can lose. [`Store::write_batch`] is the non-durable
//!    half, for callers that flush themselves. (`durable_appends_survive_a_crash`,
//!    `kill9_child_process_acknowledged_sequences_survive`, `group_commit_acks_only_after_flush`)
//! 2. **Sequences are never reused.** Sequence numbers start at 1 and increase by one per
//!    stored record. The head is written in the same atomic batch as the records, so after a
//!    crash the store resumes after the last record that reached the disk: a sequence is
//!    reused only if the record holding it never became durable, and then nothing was
//!    acknowledged for it; a block above the stored head (which no atomic write can leave)
//!    is refused at open rather than overwritten. Blocks hold contiguous sequences, each
//!    block starting where the previous one ends.
//!    (`sequences_continue_after_a_crash_without_reuse`,
//!    `sequences_continue_after_trimming_everything`,
//!    `a_crash_between_writes_leaves_whole_blocks_with_their_meta`,
//!    `a_block_above_the_meta_head_is_refused_rather_than_overwritten`,
//!    `one_write_is_a_few_blocks_not_one_key_per_record`)
//! 3. **A transaction is stored once.** A transaction (0x3B) or discharge (0xC9) record whose
//!    serial is already stored is not appended again: the append answers
//!    [`Appended::Duplicate`] with the first sequence. The serial index is written in the
//!    same transaction as the record. (`resent_transaction_record_is_stored_once`)
//! 4. **Trimming only moves forward.** [`Store::ack_up_to`] removes records up to the cloud's
//!    cumulative acknowledgement; an older acknowledgement is a no-op and one beyond the head
//!    is refused. The mark is written before the records are removed, and an interrupted
//!    removal is finished at the next open. Blocks wholly acknowledged are removed; the block
//!    the mark falls inside is rewritten without its acknowledged records (its other bytes
//!    unchanged) in the same atomic batch. (`ack_only_moves_forward`,
//!    `ack_beyond_head_is_refused`, `interrupted_trim_is_finished_at_open`,
//!    `ack_inside_a_block_rewrites_it_without_the_acknowledged_records`)
//! 5. **Replay is in order and bounded.** [`Store::unacked_after`] and
//!    [`Store::unacked_raw_after`] return unacknowledged records after a sequence, in
//!    sequence order, at most the requested count (and [`MAX_REPLAY_RECORDS`]), starting or
//!    stopping inside a block as needed. (`replay_is_ordered_and_bounded`,
//!    `a_block_larger_than_a_replay_batch_is_split`,
//!    `records_larger_than_a_block_get_a_block_of_their_own`)
//! 6. **Bounded, billing first.** Stored outbox bytes (block keys + block values, counted
//!    exactly as each record is added and persisted with every batch;
//!    `one_write_is_a_few_blocks_not_one_key_per_record` recounts them) are held against
//!    [`StoreConfig::max_bytes`] (1 GiB by
//!    default). At `thin_at_pct` (80 %) [`Store::maintain`] (which the [`GroupCommitter`] runs
//!    in the background, `group_committer_thins_when_the_outbox_nears_its_bound`) thins meter
//!    telemetry: it replaces by a tombstone (an empty record in its block, the block
//!    rewritten whole with its sequences; `thinning_inside_a_block_keeps_its_sequences_and_counts_exactly`)
//!    only `MeterReading`s
//!    that are neither a session's first or last reading nor next to a tariff period change,
//!    so the session's price is unchanged and no sequence silently disappears
//!    (`thinning_keeps_endpoints_boundaries_and_the_price`). At `refuse_at_pct` (90 %)
//!    [`Store::admission`] answers `Refuse` (the connector machines refuse new sessions) and an
//!    alarm record is appended (`near_bound_refuses_sessions_and_raises_an_alarm`). At 100 %
//!    non-billing records are dropped at intake and counted; billing-critical records
//!    ([`voltline_protocol::sync::RecordBody::is_billing_critical`]) are never dropped
//!    (`billing_records_are_never_dropped_at_the_bound`): the space between the refusal
//!    threshold and the bound is their reserve, and the bound is exceeded rather than a
//!    billing record lost.
//! 7. **Commands are stored before they are acknowledged, once.** [`Store::receive_command`]
//!    flushes before it returns and answers `Duplicate` for a command id it already holds;
//!    the inbox is bounded. (`command_delivered_twice_is_stored_once`, `inbox_is_bounded`)
//! 8. **Only durable records leave.** [`Store::durable_head`] is the last sequence a flush
//!    covered; the uplink sends nothing above it. (`durable_head_moves_only_after_a_flush`)
//! 9. **Config only moves forward.** A site config with a version not above the cached one is
//!    ignored. (`older_config_is_ignored_and_config_survives_reopen`)
//!
//! sled's own files are larger than the counted bytes (log structure, page headers, space not
//! yet reclaimed): size the disk at about twice `max_bytes`; [`Store::size_on_disk`] reports
//! sled's figure for monitoring.

mod block;
mod codec;
mod config;
mod error;
mod grid;
mod group_commit;
mod inbox;
mod outbox;
mod prepared;
mod sessions;
mod thin;

#[cfg(test)]
mod tests_blocks;
#[cfg(test)]
mod tests_bounds;
#[cfg(test)]
pub(crate) mod tests_outbox;

pub use config::{
    CardAuthorisation, SessionDefaults, SiteCharger, SiteConfig, SiteLimits,
    DEFAULT_COMMAND_EXPIRY_S, DEFAULT_TIME_ZONE, MAX_CARDS, MAX_CHARGERS,
};
pub use error::StoreError;
pub use group_commit::{GroupCommitConfig, GroupCommitter, Ticket};
pub use inbox::{CommandStatus, InboxEntry, Received};
pub use outbox::{Appended, NewRecord, MAX_REPLAY_RECORDS};
pub use prepared::PreparedRecord;
pub use sessions::MAX_SESSIONS;
pub use thin::ThinReport;

use std::path::Path;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use crate::connector::Admission;

/// Sizes and thresholds of the store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreConfig {
    /// The bound on stored outbox bytes.
    pub max_bytes: u64,
    /// Percent of `max_bytes` at which telemetry is thinned.
    pub thin_at_pct: u8,
    /// Percent of `max_bytes` at which new sessions are refused.
    pub refuse_at_pct: u8,
    /// Most records in one write.
    pub max_batch_records: usize,
    /// Most commands in the inbox.
    pub max_inbox_commands: usize,
    /// sled's page cache, bytes.
    pub cache_bytes: u64,
    /// sled's background flush period; `None` flushes only when asked.
    pub background_flush_ms: Option<u64>,
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            max_bytes: 1 << 30,
            thin_at_pct: 80,
            refuse_at_pct: 90,
            max_batch_records: 100_000,
            max_inbox_commands: 10_000,
            cache_bytes: 256 << 20,
            background_flush_ms: Some(500),
        }
    }
}

/// How full the outbox is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Below the thinning threshold.
    Normal,
    /// At or above `thin_at_pct`: thin telemetry.
    Thin,
    /// At or above `refuse_at_pct`: refuse new sessions.
    Refuse,
    /// At or above the bound: drop non-billing records at intake.
    Full,
}

/// The outbox's ledger: what was written, what the cloud acknowledged, how many bytes are held.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ledger {
    /// The last sequence written (0 before the first).
    pub head: u64,
    /// The cloud's cumulative acknowledgement.
    pub acked: u64,
    /// Stored outbox bytes (keys + values).
    pub bytes: u64,
}

struct Writer {
    ledger: Ledger,
    /// The highest level an alarm was raised for (reset when the level falls).
    alarmed: Level,
}

struct Inner {
    db: sled::Db,
    outbox: sled::Tree,
    serials: sled::Tree,
    inbox: sled::Tree,
    sessions: sled::Tree,
    config_tree: sled::Tree,
    /// V2G dispatch state (`grid.rs`).
    grid: sled::Tree,
    config: StoreConfig,
    writer: Mutex<Writer>,
    inbox_len: AtomicUsize,
    site: RwLock<Option<Arc<SiteConfig>>>,
    dropped_telemetry: AtomicU64,
    /// The highest sequence known to be on disk (see [`Store::durable_head`]).
    durable: tokio::sync::watch::Sender<u64>,
}

/// The store. Cheap to clone: clones share one database.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("ledger", &self.ledger())
            .finish()
    }
}

impl Store {
    /// Opens (or creates) the store at `path`, finishing any trim a crash interrupted.
    pub fn open(path: impl AsRef<Path>, config: StoreConfig) -> Result<Store, StoreError> {
        assert!(config.thin_at_pct <= config.refuse_at_pct && config.refuse_at_pct <= 100);
        assert!(config.max_batch_records > 0 && config.max_inbox_commands > 0);
        let db = sled::Config::new()
            .path(path.as_ref())
            .cache_capacity(config.cache_bytes)
            .flush_every_ms(config.background_flush_ms)
            .mode(sled::Mode::HighThroughput)
            .open()?;
        let outbox = db.open_tree("outbox")?;
        let ledger = outbox::load_ledger(&outbox)?;
        let inner = Inner {
            serials: db.open_tree("serials")?,
            inbox: db.open_tree("inbox")?,
            sessions: db.open_tree("sessions")?,
            config_tree: db.open_tree("config")?,
            grid: db.open_tree("grid")?,
            outbox,
            db,
            config,
            writer: Mutex::new(Writer {
                ledger,
                alarmed: Level::Normal,
            }),
            inbox_len: AtomicUsize::new(0),
            site: RwLock::new(None),
            dropped_telemetry: AtomicU64::new(0),
            // Everything a reopened store holds reached the disk.
            durable: tokio::sync::watch::channel(ledger.head).0,
        };
        inner.inbox_len.store(inner.inbox.len(), Ordering::Relaxed);
        let store = Store {
            inner: Arc::new(inner),
        };
        store.purge_acked()?;
        let level = store.level();
        store.writer().alarmed = level;
        *store.inner.site.write().unwrap_or_else(|p| p.into_inner()) =
            config::load(&store.inner.config_tree)?.map(Arc::new);
        Ok(store)
    }

    /// Flushes everything written so far to disk (fsync), then moves the durable mark.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let head = self.ledger().head;
        self.inner.db.flush_async().await?;
        self.mark_durable(head);
        Ok(())
    }

    /// Flushes from synchronous code.
    pub fn flush_blocking(&self) -> Result<(), StoreError> {
        let head = self.ledger().head;
        self.inner.db.flush()?;
        self.mark_durable(head);
        Ok(())
    }

    /// The highest sequence known to be on disk: every record up to it survives a crash.
    /// Only these may leave the edge — a record the cloud committed but the edge lost could
    /// have its sequence reused by another record after a crash, and the cloud would take
    /// that one for a duplicate. (`durable_head_moves_only_after_a_flush`)
    pub fn durable_head(&self) -> u64 {
        *self.inner.durable.borrow()
    }

    /// A receiver that sees the durable mark move (the uplink waits on it).
    pub fn watch_durable(&self) -> tokio::sync::watch::Receiver<u64> {
        self.inner.durable.subscribe()
    }

    fn mark_durable(&self, head: u64) {
        self.inner.durable.send_if_modified(|d| {
            if head > *d {
                *d = head;
                true
            } else {
                false
            }
        });
    }

    /// The outbox ledger.
    pub fn ledger(&self) -> Ledger {
        self.writer().ledger
    }

    /// How full the outbox is.
    pub fn level(&self) -> Level {
        level_of(&self.inner.config, self.ledger().bytes)
    }

    /// Whether new sessions may start (the connector machines consult this).
    pub fn admission(&self) -> Admission {
        if self.level() >= Level::Refuse {
            Admission::Refuse
        } else {
            Admission::Open
        }
    }

    /// Non-billing records dropped at intake because the outbox was at its bound.
    pub fn dropped_telemetry(&self) -> u64 {
        self.inner.dropped_telemetry.load(Ordering::Relaxed)
    }

    /// sled's own measure of its files (larger than the counted bytes).
    pub fn size_on_disk(&self) -> Result<u64, StoreError> {
        Ok(self.inner.db.size_on_disk()?)
    }

    /// The configuration the store was opened with.
    pub fn config(&self) -> &StoreConfig {
        &self.inner.config
    }

    fn writer(&self) -> MutexGuard<'_, Writer> {
        // A panic while holding the lock cannot leave the ledger half-updated: it is
        // assigned only after sled accepted the write.
        self.inner.writer.lock().unwrap_or_else(|p| p.into_inner())
    }
}

pub(crate) fn level_of(config: &StoreConfig, bytes: u64) -> Level {
    let pct = |p: u8| (config.max_bytes as u128) * (p as u128) / 100;
    let b = bytes as u128;
    if b >= config.max_bytes as u128 {
        Level::Full
    } else if b >= pct(config.refuse_at_pct) {
        Level::Refuse
    } else if b >= pct(config.thin_at_pct) {
        Level::Thin
    } else {
        Level::Normal
    }
}
