//! The SQL-backed money of the cloud: the ledger in the database, funds held at start,
//! exactly-once settlement of charger transaction records and time-of-use pricing from memory.
//!
//! It owns:
//! - [`writer`]: [`LedgerWriter`], the one task per process that writes the ledger. Callers
//!   send it jobs over a bounded channel; it applies up to `max_batch` of them in one database
//!   transaction (group commit) and answers each caller only after that transaction commits.
//!   Inside the transaction it reads the touched accounts and holds into a [`LedgerView`]
//!   overlay, runs the pure [`rules::evaluate`](crate::ledger::rules::evaluate) (a set refused
//!   by the rules is answered with its error and changes nothing; the batch goes on), and
//!   writes every touched account with `UPDATE ... WHERE id = ? AND version = ?`. Zero rows
//!   (another instance wrote first) or a lost race on an idempotency key rolls the batch back
//!   and replays it on fresh rows, a bounded number of times with backoff, then fails with
//!   [`MoneyError::Contended`].
//! - [`audit`]: reads the ledger back and checks every invariant against the reference model.
//! - [`db`]: the statements, written once and expanded per backend.
//! - [`funds`]: [`SqlFunds`], the [`Funds`](crate::funds::Funds) seam over the writer.
//! - [`tariffs`]: [`TariffCache`], each site's tariff assignments and compiled tariffs in
//!   memory, invalidated when the site's `config_version` moves (polled, so other instances'
//!   changes are seen); it counts every price read from the database during settlement.
//! - [`settle`]: [`Settler`], exactly-once settlement of stored transaction records.
//! - [`reverse`]: [`ReverseSettler`], exactly-once reverse settlement of discharge records
//!   (V2G): the export credited to the driver from the V2G payout account, with the import of
//!   a mixed session in the same set; [`reverse_lines`] measures and prices the two lines.
//! - [`sweep`]: [`HoldSweeper`], the backstop that voids expired holds of sessions that never
//!   started, exactly once (keyed `void:{order}`).
//! - [`lease`]: the optional Redis lease per hot account, whose token is written with the
//!   account row (fencing is the version check; the lease only cuts retries).
//!
//! **Serialisation.** Within one process every ledger write goes through the writer's queue:
//! writes to one account are applied in queue order and no caller holds a lock while waiting.
//! Plans that depend on a balance (a hold lowered to what is available, a settlement overrun)
//! are made by the writer itself against the batch's overlay ([`Job::planned`]), so they are
//! never stale and two concurrent holds cannot together exceed the balance. Across instances
//! the version check decides; the loser replays its batch.
//!
//! It must never keep money in a float, never acknowledge a write before its commit, never
//! bypass the pure ledger rules, never write an account row without the version condition,
//! and never read a price from the database while settling (the cache is warmed first).

pub mod audit;
pub mod db;
pub mod error;
pub mod funds;
pub mod lease;
mod pass_reads;
pub mod reverse;
pub mod reverse_lines;
pub mod settle;
pub mod sweep;
pub mod tariffs;
pub mod view;
pub mod writer;

pub use audit::{audit, Audit};
pub use error::MoneyError;
pub use funds::{SqlFunds, SqlFundsConfig};
pub use lease::{Lease, LeaseManager};
pub use reverse::ReverseSettler;
pub use settle::{SettleOutcome, SettleReport, Settler, SettlerConfig};
pub use sweep::{HoldSweeper, SweepReport};
pub use tariffs::TariffCache;
pub use writer::{
    Applied, Job, LedgerWriter, Planned, SettlementRow, StartRows, WriterConfig, WriterStats,
};

/// Bounds on everything the money module queues, batches or retries.
pub mod limits {
    /// Jobs waiting for the writer; senders wait (backpressure) beyond it.
    pub const QUEUE_CAPACITY: usize = 8_192;
    /// Most transfer sets in one database transaction.
    pub const MAX_BATCH: usize = 1_024;
    /// Attempts of one batch on version conflicts or key races before giving up.
    pub const MAX_ATTEMPTS: u32 = 8;
    /// Rows in one multi-row INSERT.
    pub const INSERT_CHUNK_ROWS: usize = 500;
    /// Transaction records settled per `settle_pending` call at most.
    pub const MAX_SETTLE_BATCH: usize = 4_096;
    /// Expired holds voided per sweeper pass at most.
    pub const MAX_SWEEP_BATCH: usize = 1_000;
}
