//! What the writer reads and writes per batch, as one value each, so that a backend can do
//! either in as few round trips as it can: SQLite runs its per-table statements in turn
//! (a statement costs no network round trip there), PostgreSQL one statement each way
//! (`postgres_batch.rs`).

use std::collections::BTreeMap;

use crate::ledger::{Account, JournalLine, PendingTransfer, TransferSet};
use crate::money::writer::{SettlementRow, StartRows};
use crate::money::MoneyError;
use crate::store::types::DbTime;
use crate::store::{CommandRecord, Order};

/// The rows a batch reads before planning.
pub struct BatchReads<'a> {
    /// The jobs' idempotency keys (stored sets are answered as replays).
    pub keys: &'a [String],
    /// Ledger accounts the jobs name.
    pub accounts: &'a [String],
    /// Holds the jobs name.
    pub pendings: &'a [String],
    /// Session starts (by job index), checked against the database.
    pub starts: &'a [(usize, &'a StartRows)],
}

/// What [`BatchReads`] found.
pub struct Loaded {
    /// (key, sequence, set) of the keys stored already.
    pub sets: Vec<(String, i64, TransferSet)>,
    /// The accounts that exist, with their versions.
    pub accounts: Vec<(Account, i64)>,
    /// The holds that exist.
    pub pendings: Vec<PendingTransfer>,
    /// The starts the database refuses (by job index).
    pub refused: Vec<(usize, MoneyError)>,
}

/// Everything a batch writes, in its one database transaction.
pub struct BatchWrites<'a> {
    /// Changed accounts, each with the version it was read at.
    pub accounts: &'a [(&'a Account, i64)],
    /// The Redis lease token that fences the account writes, if any.
    pub lease_token: Option<&'a str>,
    /// Changed holds: `true` when stored already (then it was open and is now closed).
    pub holds: &'a [(&'a PendingTransfer, bool)],
    /// Applied sets, in queue order.
    pub sets: &'a [&'a TransferSet],
    /// The writer's note of the highest set sequence it committed (SQLite numbers from it).
    pub last_sequence: Option<i64>,
    pub journal: &'a [JournalLine],
    pub settlements: &'a [&'a SettlementRow],
    /// Accepted session starts (by job index): their orders and start commands.
    pub starts: &'a [(usize, StartRows)],
    pub now: DbTime,
}

/// What a committed-to-be batch stored.
pub struct Written {
    /// (key, sequence) of every set inserted.
    pub sequences: Vec<(String, i64)>,
    /// The stored order and start command per accepted start (by job index).
    pub starts: BTreeMap<usize, (Order, CommandRecord)>,
}
