//! [`LedgerWriter`]: group commit of transfer sets (see the module doc of [`super`]).
//!
//! A job is a fixed [`TransferSet`], or a planner that makes the set from the batch's view
//! (so a plan that depends on a balance is never stale). The writer takes up to
//! [`WriterConfig::max_batch`] jobs from its bounded queue, and in one database transaction:
//! looks their keys up (a stored key → the first result, or
//! [`LedgerError::IdempotencyConflict`] for other content), reads the touched rows, evaluates
//! each set in queue order against the overlay (a refused set is answered with its error
//! and leaves the overlay as it was), writes every changed account once with its version
//! condition, inserts sets, holds, journal lines and settlement rows, commits, and only then
//! answers. A version conflict or key race replays the whole batch on fresh rows, at most
//! [`MAX_ATTEMPTS`](super::limits::MAX_ATTEMPTS) times.
//!
//! **Session starts** ([`Job::with_start`]) ride the same group commit: the batch first
//! checks every start's order against the database (charger at the site with the connector,
//! order id, idempotency key and serial unused — also within the batch) and answers refused
//! ones without applying their hold; the others' holds are planned against the overlay like
//! any job (so concurrent starts of one account never hold more than its balance), and their
//! orders and start commands are inserted in the same transaction as the journal. A start
//! is answered only after that commit: the hold placed and the command durably queued, or
//! neither. A unique key inserted meanwhile by another instance is a key race (the batch is
//! replayed, and the check then refuses that start alone).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, oneshot};
use voltline_protocol::Money;

use super::db::{BatchReads, BatchWrites, Written};
use super::lease::LeaseManager;
use super::view::{Overlay, PendingRow, Row};
use super::{limits, MoneyError};
use crate::ledger::{
    check_replay, evaluate, journal_lines, IdempotencyKey, JournalLine, LedgerAccountId,
    LedgerError, TransferId, TransferKind, TransferSet,
};
use crate::store::types::DbTime;
use crate::store::{Backend, CommandRecord, NewCommand, NewOrder, Order, Store};

/// What a settlement writes besides its transfer set and journal lines (same database transaction).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SettlementRow {
    pub pile: String,
    pub serial: String,
    pub key: String,
    pub order: Option<String>,
    pub account: String,
    pub cost: Money,
    pub charger_total: Money,
    pub mismatch: bool,
    pub difference: Money,
    pub from_hold: Money,
    pub released: Money,
    pub from_wallet: Money,
    pub receivable: Money,
    pub operator_share: Money,
    pub platform_fee: Money,
    pub breakdown: serde_json::Value,
    /// Operator, site, energy and V2G parts for daily bills (`crate::sharing::record`).
    pub share: crate::sharing::SettlementShare,
}

/// A planner's output.
#[derive(Debug, Clone)]
pub struct Planned {
    pub set: TransferSet,
    pub settlement: Option<SettlementRow>,
}

type Planner = Box<dyn Fn(&Overlay) -> Result<Planned, LedgerError> + Send + Sync>;

enum Work {
    Fixed(TransferSet),
    Planned(Planner),
}

/// A session start's order and start command, written in the same database transaction as
/// its hold (their amount limits are set to the hold the plan placed).
#[derive(Debug, Clone)]
pub struct StartRows {
    pub order: NewOrder,
    pub start: NewCommand,
}

/// One unit of work for the writer.
pub struct Job {
    key: IdempotencyKey,
    work: Work,
    accounts: Vec<LedgerAccountId>,
    pendings: Vec<TransferId>,
    start: Option<StartRows>,
}

impl Job {
    /// Apply `set` as it is (a replay with other content is an idempotency conflict).
    pub fn fixed(set: TransferSet) -> Job {
        let mut accounts = Vec::new();
        let mut pendings = Vec::new();
        for leg in &set.legs {
            accounts.push(leg.debit.clone());
            accounts.push(leg.credit.clone());
            if let TransferKind::Post { pending } | TransferKind::Void { pending } = &leg.kind {
                pendings.push(pending.clone());
            }
        }
        Job {
            key: set.key.clone(),
            work: Work::Fixed(set),
            accounts,
            pendings,
            start: None,
        }
    }

    /// Plan the set inside the batch from the current overlay. If `key` is stored, the first
    /// result is returned without planning (a plan made later may legitimately differ). The
    /// accounts and holds named are read up front; others are read when the plan asks.
    pub fn planned(
        key: IdempotencyKey,
        accounts: Vec<LedgerAccountId>,
        pendings: Vec<TransferId>,
        plan: impl Fn(&Overlay) -> Result<Planned, LedgerError> + Send + Sync + 'static,
    ) -> Job {
        Job {
            key,
            work: Work::Planned(Box::new(plan)),
            accounts,
            pendings,
            start: None,
        }
    }

    /// Also store `rows` (an order and its start command) with this job's set, in the same
    /// database transaction: a session start. The batch first checks them against the
    /// database (charger, repeated id, idempotency key or serial); a refused start is
    /// answered with [`MoneyError::OrderRefused`] and its set is not applied. A replayed key
    /// is refused too (the order exists already).
    pub fn with_start(mut self, rows: StartRows) -> Job {
        self.start = Some(rows);
        self
    }
}

/// The first result for a key.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied {
    pub sequence: i64,
    pub set: TransferSet,
    /// True when the key was applied before (nothing changed now).
    pub replay: bool,
    /// The settlement row written with it (not for replays).
    pub settlement: Option<SettlementRow>,
    /// The order and start command stored with it (jobs [`Job::with_start`]).
    pub started: Option<Box<(Order, CommandRecord)>>,
}

/// Writer settings.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Most sets per database transaction (1 disables group commit).
    pub max_batch: usize,
    pub queue_capacity: usize,
    pub max_attempts: u32,
}

impl Default for WriterConfig {
    fn default() -> Self {
        WriterConfig {
            max_batch: limits::MAX_BATCH,
            queue_capacity: limits::QUEUE_CAPACITY,
            max_attempts: limits::MAX_ATTEMPTS,
        }
    }
}

type Reply = oneshot::Sender<Result<Applied, MoneyError>>;

/// Counters of one writer.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Database transactions committed.
    pub batches: AtomicU64,
    /// Jobs answered.
    pub jobs: AtomicU64,
    /// Batch attempts rolled back and replayed (version conflicts, key races).
    pub retries: AtomicU64,
}

/// Handle to the writer task. Cheap to clone; the task ends when every handle is dropped.
#[derive(Clone)]
pub struct LedgerWriter {
    tx: mpsc::Sender<(Job, Reply)>,
    store: Store,
    stats: Arc<WriterStats>,
}

impl LedgerWriter {
    /// Starts the writer over `store`, optionally fencing writes with a Redis lease.
    pub fn start(store: Store, config: WriterConfig, lease: Option<LeaseManager>) -> LedgerWriter {
        assert!(config.max_batch >= 1 && config.max_batch <= limits::MAX_BATCH);
        assert!(config.queue_capacity >= 1 && config.queue_capacity <= limits::QUEUE_CAPACITY);
        let (tx, rx) = mpsc::channel(config.queue_capacity);
        let stats = Arc::new(WriterStats::default());
        let task = Task {
            store: store.clone(),
            config,
            lease: lease.map(Arc::new),
            stats: stats.clone(),
            last_sequence: std::sync::atomic::AtomicI64::new(0),
        };
        tokio::spawn(task.run(rx));
        LedgerWriter { tx, store, stats }
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.stats
    }

    /// The store it writes to.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// Applies `job`; answers after its batch committed.
    pub async fn submit(&self, job: Job) -> Result<Applied, MoneyError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send((job, reply))
            .await
            .map_err(|_| MoneyError::WriterStopped)?;
        answer.await.map_err(|_| MoneyError::WriterStopped)?
    }

    /// Applies a fixed set.
    pub async fn apply(&self, set: TransferSet) -> Result<Applied, MoneyError> {
        self.submit(Job::fixed(set)).await
    }
}

struct Task {
    store: Store,
    config: WriterConfig,
    lease: Option<Arc<LeaseManager>>,
    stats: Arc<WriterStats>,
    /// The highest set sequence this writer committed (0: unknown, read it). SQLite numbers
    /// sets from it instead of reading the table's maximum in every batch.
    last_sequence: std::sync::atomic::AtomicI64,
}

/// A batch attempt's outcome: answers per job, or a reason to replay the batch.
enum Attempt {
    Done(Vec<Result<Applied, MoneyError>>),
    Retry,
}

impl Task {
    async fn run(self, mut rx: mpsc::Receiver<(Job, Reply)>) {
        let mut batch = Vec::with_capacity(self.config.max_batch);
        while let Some(first) = rx.recv().await {
            batch.push(first);
            while batch.len() < self.config.max_batch {
                match rx.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            let (jobs, replies): (Vec<Job>, Vec<Reply>) = batch.drain(..).unzip();
            let answers = self.apply_batch(&jobs).await;
            self.stats
                .jobs
                .fetch_add(answers.len() as u64, Ordering::Relaxed);
            for (reply, answer) in replies.into_iter().zip(answers) {
                let _ = reply.send(answer);
            }
        }
    }

    async fn apply_batch(&self, jobs: &[Job]) -> Vec<Result<Applied, MoneyError>> {
        let mut failure = MoneyError::Contended {
            attempts: self.config.max_attempts,
        };
        for attempt in 0..self.config.max_attempts {
            if attempt > 0 {
                self.stats.retries.fetch_add(1, Ordering::Relaxed);
                let jitter = u64::from(rand::random::<u8>() % 8);
                let ms = (1u64 << attempt.min(6)).min(50) + jitter;
                tokio::time::sleep(Duration::from_millis(ms)).await;
            }
            match self.attempt(jobs).await {
                Ok(Attempt::Done(answers)) => {
                    self.stats.batches.fetch_add(1, Ordering::Relaxed);
                    return answers;
                }
                Ok(Attempt::Retry) => {}
                Err(MoneyError::Contended { .. }) => {}
                Err(e) => {
                    failure = e;
                    break;
                }
            }
        }
        if let MoneyError::Contended { .. } = failure {
            tracing::warn!(
                jobs = jobs.len(),
                "ledger batch stayed contended; answering with an error"
            );
        }
        jobs.iter().map(|_| Err(failure.clone())).collect()
    }

    async fn attempt(&self, jobs: &[Job]) -> Result<Attempt, MoneyError> {
        let now = DbTime::from(Timestamp::now());
        macro_rules! body {
            ($pool:expr, $ops:ident, $dialect:expr) => {{
                let _turn = self.store.write_turn().await;
                let mut tx = $pool.begin_with($dialect.begin_batch()).await?;
                let conn = &mut *tx;
                let keys: Vec<String> = jobs.iter().map(|j| j.key.to_string()).collect();
                let ids: BTreeSet<String> = jobs
                    .iter()
                    .flat_map(|j| j.accounts.iter().map(|a| a.to_string()))
                    .collect();
                let ids: Vec<String> = ids.into_iter().collect();
                let pids: Vec<String> = jobs
                    .iter()
                    .flat_map(|j| j.pendings.iter().map(|p| p.to_string()))
                    .collect();
                let start_rows: Vec<(usize, &StartRows)> = jobs
                    .iter()
                    .enumerate()
                    .filter_map(|(i, j)| j.start.as_ref().map(|s| (i, s)))
                    .collect();
                let loaded = $ops::load_batch(
                    conn,
                    &BatchReads {
                        keys: &keys,
                        accounts: &ids,
                        pendings: &pids,
                        starts: &start_rows,
                    },
                )
                .await?;
                let stored: BTreeMap<String, (i64, TransferSet)> = loaded
                    .sets
                    .into_iter()
                    .map(|(k, s, set)| (k, (s, set)))
                    .collect();
                let mut ov = Overlay::default();
                for (a, v) in loaded.accounts {
                    ov.accounts.insert(
                        a.id.clone(),
                        Row {
                            account: a,
                            version: v,
                            dirty: false,
                        },
                    );
                }
                for id in &ids {
                    if let Ok(parsed) = id.parse::<LedgerAccountId>() {
                        if !ov.accounts.contains_key(&parsed) {
                            ov.missing_accounts.insert(parsed);
                        }
                    }
                }
                for p in loaded.pendings {
                    ov.pendings.insert(
                        p.id.clone(),
                        PendingRow {
                            pending: p,
                            stored: true,
                            dirty: false,
                        },
                    );
                }
                for j in jobs {
                    for p in &j.pendings {
                        if !ov.pendings.contains_key(p) {
                            ov.missing_pendings.insert(p.clone());
                        }
                    }
                }
                let mut refused: BTreeMap<usize, MoneyError> = loaded.refused.into_iter().collect();
                let mut starts: Vec<(usize, StartRows)> = Vec::new();
                let mut answers: Vec<Option<Result<Applied, MoneyError>>> =
                    Vec::with_capacity(jobs.len());
                let mut in_batch: BTreeMap<String, usize> = BTreeMap::new();
                let mut accepted: Vec<(usize, TransferSet, Option<SettlementRow>)> = Vec::new();
                let mut journal: Vec<JournalLine> = Vec::new();
                for (i, job) in jobs.iter().enumerate() {
                    if let Some(e) = refused.remove(&i) {
                        answers.push(Some(Err(e)));
                        continue;
                    }
                    let key = job.key.to_string();
                    let first: Option<(i64, TransferSet)> = stored
                        .get(&key)
                        .cloned()
                        .or_else(|| in_batch.get(&key).map(|&n| (-1, accepted[n].1.clone())));
                    if let (Some(_), Some(rows)) = (&first, &job.start) {
                        answers.push(Some(Err(MoneyError::OrderRefused {
                            conflict: true,
                            reason: format!(
                                "order {} was started before; start a new session with a new order",
                                rows.order.id
                            ),
                        })));
                        continue;
                    }
                    if let Some((seq, first_set)) = first {
                        let answer = match &job.work {
                            Work::Fixed(set) => check_replay(Some(&first_set), set).map(|_| ()),
                            Work::Planned(_) => Ok(()),
                        };
                        answers.push(Some(answer.map_err(MoneyError::from).map(|()| Applied {
                            sequence: seq,
                            set: first_set,
                            replay: true,
                            settlement: None,
                            started: None,
                        })));
                        continue;
                    }
                    let mut outcome = None;
                    for _ in 0..(2 * crate::ledger::limits::MAX_LEGS + 2) {
                        let planned = match &job.work {
                            Work::Fixed(set) => Ok(Planned {
                                set: set.clone(),
                                settlement: None,
                            }),
                            Work::Planned(plan) => plan(&ov),
                        };
                        let result = planned.and_then(|p| {
                            if p.set.key != job.key {
                                return Err(LedgerError::IdempotencyConflict {
                                    key: job.key.clone(),
                                });
                            }
                            evaluate(&p.set, &ov).map(|ev| (p, ev))
                        });
                        match result {
                            Err(LedgerError::UnknownAccount(id)) if ov.unknown_account(&id) => {
                                match $ops::load_accounts(conn, &[id.to_string()]).await?.pop() {
                                    Some((a, v)) => {
                                        ov.accounts.insert(
                                            id,
                                            Row {
                                                account: a,
                                                version: v,
                                                dirty: false,
                                            },
                                        );
                                    }
                                    None => {
                                        ov.missing_accounts.insert(id);
                                    }
                                }
                            }
                            Err(LedgerError::PendingNotFound(id)) if ov.unknown_pending(&id) => {
                                match $ops::load_pendings(conn, &[id.to_string()]).await?.pop() {
                                    Some(p) => {
                                        ov.pendings.insert(
                                            id,
                                            PendingRow {
                                                pending: p,
                                                stored: true,
                                                dirty: false,
                                            },
                                        );
                                    }
                                    None => {
                                        ov.missing_pendings.insert(id);
                                    }
                                }
                            }
                            other => {
                                outcome = Some(other);
                                break;
                            }
                        }
                    }
                    let outcome = outcome.unwrap_or_else(|| {
                        Err(LedgerError::UnknownAccount(
                            LedgerAccountId::SessionClearing,
                        ))
                    });
                    match outcome {
                        Ok((p, ev)) => {
                            if let Some(rows) = &job.start {
                                let held =
                                    p.set.legs.first().map(|l| l.amount).unwrap_or(Money::ZERO);
                                let mut rows = rows.clone();
                                crate::funds::limit_to_hold(&mut rows.order, &mut rows.start, held);
                                starts.push((i, rows));
                            }
                            ov.absorb(&ev);
                            journal.extend(journal_lines(&ev.postings));
                            in_batch.insert(key, accepted.len());
                            accepted.push((i, p.set, p.settlement));
                            answers.push(None);
                        }
                        Err(e) => answers.push(Some(Err(e.into()))),
                    }
                }
                let token = match &self.lease {
                    Some(lease) => {
                        let hot: Vec<String> = ov
                            .accounts
                            .values()
                            .filter(|r| {
                                r.dirty
                                    && r.account.id.kind()
                                        == crate::ledger::AccountKind::DriverWallet
                            })
                            .map(|r| r.account.id.to_string())
                            .collect();
                        lease.acquire_all(&hot).await
                    }
                    None => None,
                };
                let dirty: Vec<(&crate::ledger::Account, i64)> = ov
                    .accounts
                    .values()
                    .filter(|r| r.dirty)
                    .map(|r| (&r.account, r.version))
                    .collect();
                let holds: Vec<(&crate::ledger::PendingTransfer, bool)> = ov
                    .pendings
                    .values()
                    .filter(|p| p.dirty)
                    .map(|p| (&p.pending, p.stored))
                    .collect();
                let sets: Vec<&TransferSet> = accepted.iter().map(|(_, s, _)| s).collect();
                let rows: Vec<&SettlementRow> =
                    accepted.iter().filter_map(|(_, _, s)| s.as_ref()).collect();
                let fence = token.as_ref().map(|t| t.token());
                let last = match self.last_sequence.load(Ordering::Relaxed) {
                    0 => None,
                    n => Some(n),
                };
                // From here to the commit nothing returns early, so that the lease is
                // released on every path (conflict, error or commit).
                let written = $ops::write_batch(
                    conn,
                    &BatchWrites {
                        accounts: &dirty,
                        lease_token: fence,
                        holds: &holds,
                        sets: &sets,
                        last_sequence: last,
                        journal: &journal,
                        settlements: &rows,
                        starts: &starts,
                        now,
                    },
                )
                .await;
                let written = match written {
                    Ok(Some(written)) => tx
                        .commit()
                        .await
                        .map(|()| Some(written))
                        .map_err(MoneyError::from),
                    other => other,
                };
                // The highest sequence committed, for the next batch (SQLite); forgotten on
                // any other outcome.
                let committed = match &written {
                    Ok(Some(w)) => w.sequences.iter().map(|(_, s)| *s).max().unwrap_or(0),
                    _ => 0,
                };
                if committed > 0 || !matches!(written, Ok(Some(_))) {
                    self.last_sequence.store(committed, Ordering::Relaxed);
                }
                if let (Some(lease), Some(token)) = (&self.lease, token.clone()) {
                    lease.release_all(token).await;
                }
                let Some(Written {
                    sequences,
                    starts: mut stored_starts,
                }) = written?
                else {
                    return Ok(Attempt::Retry);
                };
                let sequences: BTreeMap<String, i64> = sequences.into_iter().collect();
                let mut done = Vec::with_capacity(jobs.len());
                let mut accepted = accepted.into_iter().peekable();
                for (i, answer) in answers.into_iter().enumerate() {
                    match answer {
                        Some(Ok(mut a)) if a.sequence < 0 => {
                            a.sequence =
                                sequences.get(&a.set.key.to_string()).copied().unwrap_or(0);
                            done.push(Ok(a));
                        }
                        Some(other) => done.push(other),
                        None => {
                            let (j, set, settlement) =
                                accepted.next().expect("an accepted job per empty answer");
                            assert_eq!(i, j, "accepted jobs keep queue order");
                            let sequence =
                                sequences.get(&set.key.to_string()).copied().unwrap_or(0);
                            done.push(Ok(Applied {
                                sequence,
                                set,
                                replay: false,
                                settlement,
                                started: stored_starts.remove(&i).map(Box::new),
                            }));
                        }
                    }
                }
                Ok(Attempt::Done(done))
            }};
        }
        match &self.store.backend {
            Backend::Sqlite(pool) => {
                use super::db::sqlite as ops;
                body!(pool, ops, crate::store::Dialect::Sqlite)
            }
            Backend::Postgres(pool) => {
                use super::db::postgres as ops;
                body!(pool, ops, crate::store::Dialect::Postgres)
            }
        }
    }
}
