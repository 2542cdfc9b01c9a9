//! Daily settlement bills over the SQL store: the adapters around the pure
//! [`crate::sharing`] core.
//!
//! It owns:
//! - [`rules`]: sharing rules and billing settings (time zone, first day) in SQL, and the
//!   [`RuleCache`] settlement splits by;
//! - [`lease`]: [`JobLease`], a database lease row with expiry and a fencing token, so that
//!   among several cloud instances one at a time runs the bill job, and a holder that lost
//!   the lease cannot write;
//! - [`store`]: the bill statements (unbilled sessions, bills, billed-session keys);
//! - [`job`]: [`BillJob`], which cuts every operator's due days at its local midnight, issues
//!   each bill once (under the lease; the database's unique keys make it once even without
//!   it), re-runs a day for comparison, and runs on a schedule;
//! - [`check`]: the reconciliation of a bill against the settlement rows and the ledger's
//!   transfer sets;
//! - [`csv`]: the CSV export; [`http`]: the API handlers;
//! - [`seed`]: bulk seeding of settled sessions for tests and benchmarks (never used by the
//!   service).
//!
//! **Exactly once.** Every session is on at most one bill: `bill_sessions` is keyed by the
//! settlement's idempotency key, and a bill's sessions are written in the same transaction as
//! the bill, under `UNIQUE (operator_id, day)`. A bill takes every session of its operator
//! that settled before the day's end and is on no bill yet, so a record that reached the cloud
//! after its day was billed (an edge that was offline, or a commit that raced the cut) lands
//! on the next bill's adjustment lines, and issued bills are never edited.
//!
//! It must never update or delete an issued bill, never write without holding the current
//! lease token, and never keep money in a float.

pub mod check;
pub mod csv;
pub mod error;
pub mod http;
pub mod job;
pub mod lease;
pub mod rules;
pub mod seed;
pub mod store;

pub use check::{check_day, CheckReport};
pub use error::BillsError;
pub use job::{BillJob, BillJobConfig, PassReport, RerunReport};
pub use lease::{JobLease, LeaseGrant};
pub use rules::{RuleCache, RULE_CACHE_TTL, RULE_LEAD};
pub use store::StoredBill;

/// Bounds on everything the bill side reads, batches or retries.
pub mod limits {
    /// Rule versions read per operator.
    pub const MAX_RULES_PER_OPERATOR: usize = 1_000;
    /// Operators read per page of a pass.
    pub const OPERATOR_PAGE: usize = 1_000;
    /// Days issued per operator in one pass (a catch-up after downtime goes on next pass).
    pub const MAX_DAYS_PER_OPERATOR: usize = 62;
    /// Sessions on one bill at most (the bill is refused, not truncated, beyond it).
    pub const MAX_SESSIONS_PER_BILL: usize = 2_000_000;
    /// Keys per multi-row insert of billed sessions.
    pub const INSERT_CHUNK_ROWS: usize = 1_000;
    /// Operators billed concurrently within a pass.
    pub const PARALLEL_OPERATORS: usize = 4;
    /// Bills answered by one list call at most.
    pub const MAX_LIST: usize = 1_000;
    /// How far back a bill looks for sessions that missed their own day's bill, in days.
    pub const LATE_LOOKBACK_DAYS: i64 = 7;
}
