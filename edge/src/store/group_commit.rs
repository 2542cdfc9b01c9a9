//! Group commit: many connections append, one task writes and flushes for all of them.
//!
//! A flush (fsync) costs milliseconds whether it carries one record or thousands, so the
//! committer collects requests for up to `max_wait_ms` or `max_records`, writes them in one
//! atomic batch, flushes once, and only then answers each caller. A caller that acknowledges
//! a transaction record to its pile after [`GroupCommitter::append_durable`] returns has the
//! record on disk. The request queue is bounded: when it is full, callers wait (backpressure
//! reaches the charger connections instead of memory growing).

use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use super::outbox::{Appended, NewRecord};
use super::prepared::PreparedRecord;
use super::{Level, Store, StoreError};

/// Sizes of the committer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupCommitConfig {
    /// Most records in one write + flush.
    pub max_records: usize,
    /// Longest a request waits for company before the batch is written.
    pub max_wait_ms: u64,
    /// Most requests queued.
    pub queue_depth: usize,
    /// While the outbox is at or above its thinning threshold, thin again (in the
    /// background, one pass at a time) after this many more records were appended.
    pub thin_every_records: u64,
}

impl Default for GroupCommitConfig {
    fn default() -> Self {
        GroupCommitConfig {
            max_records: 8_192,
            max_wait_ms: 2,
            queue_depth: 4_096,
            thin_every_records: 50_000,
        }
    }
}

/// Where a request's answer goes.
type Reply = oneshot::Sender<Result<Vec<Appended>, StoreError>>;

struct Request {
    records: Vec<PreparedRecord>,
    reply: Reply,
}

/// A handle to the group-commit task. Clone it for every connection.
#[derive(Clone, Debug)]
pub struct GroupCommitter {
    tx: mpsc::Sender<Request>,
}

impl GroupCommitter {
    /// Starts the committer on the current tokio runtime. It stops when every handle is
    /// dropped, after answering what it holds.
    pub fn spawn(store: Store, config: GroupCommitConfig) -> (GroupCommitter, JoinHandle<()>) {
        assert!(config.max_records > 0 && config.queue_depth > 0);
        assert!(config.max_records <= store.config().max_batch_records);
        let (tx, rx) = mpsc::channel(config.queue_depth);
        let task = tokio::spawn(run(store, config, rx));
        (GroupCommitter { tx }, task)
    }

    /// Appends `records` and returns once they are durable. Results are in input order.
    pub async fn append_durable(
        &self,
        records: Vec<NewRecord>,
    ) -> Result<Vec<Appended>, StoreError> {
        self.submit(records).await?.durable().await
    }

    /// Queues `records` (waiting only for queue space) and returns a ticket that resolves
    /// once they are durable. Lets a connection go on reading frames while its earlier
    /// records are being flushed; only what must be durable before a reply (a transaction
    /// record before its 0x40) needs its ticket awaited before acting.
    pub async fn submit(&self, records: Vec<NewRecord>) -> Result<Ticket, StoreError> {
        // Encoded here, in the caller's task, so the single writer only splices sequences.
        let records = records
            .iter()
            .map(PreparedRecord::new)
            .collect::<Result<Vec<_>, _>>()?;
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request { records, reply })
            .await
            .map_err(|_| StoreError::CommitterStopped)?;
        Ok(Ticket { answer })
    }
}

/// Records queued for a group commit.
#[derive(Debug)]
pub struct Ticket {
    answer: oneshot::Receiver<Result<Vec<Appended>, StoreError>>,
}

impl Ticket {
    /// Waits until the records are on disk; results are in input order.
    pub async fn durable(self) -> Result<Vec<Appended>, StoreError> {
        self.answer
            .await
            .map_err(|_| StoreError::CommitterStopped)?
    }
}

async fn run(store: Store, config: GroupCommitConfig, mut rx: mpsc::Receiver<Request>) {
    let wait = Duration::from_millis(config.max_wait_ms);
    // At most one group is flushing while the next one is written: flush N started before
    // write N+1, so it covers everything of group N, and group N is answered only after it.
    let mut flushing: Option<Flushing> = None;
    let mut thinner = Thinner::default();
    while let Some(first) = rx.recv().await {
        let mut count = first.records.len();
        let mut group = vec![first];
        let deadline = tokio::time::Instant::now() + wait;
        while count < config.max_records {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(r)) => {
                    count += r.records.len();
                    group.push(r);
                }
                Ok(None) | Err(_) => break,
            }
        }
        let next = write(&store, group).await;
        thinner.poke(&store, config.thin_every_records);
        if let Some(previous) = flushing.take() {
            previous.answer().await;
        }
        flushing = Some(next);
        if rx.is_empty() {
            // Nobody is waiting to be written: do not hold this group's answers back.
            if let Some(current) = flushing.take() {
                current.answer().await;
            }
        }
    }
    if let Some(current) = flushing.take() {
        current.answer().await;
    }
}

/// Starts telemetry thinning in the background when the outbox needs it: one pass at a time,
/// and not again before `every` more records were appended (so an outbox that thinning
/// cannot shrink, because it holds billing records, is not rescanned after every group).
#[derive(Default)]
struct Thinner {
    running: Option<JoinHandle<()>>,
    next_at_head: u64,
}

impl Thinner {
    fn poke(&mut self, store: &Store, every: u64) {
        if self.running.as_ref().is_some_and(|t| !t.is_finished()) {
            return;
        }
        let head = store.ledger().head;
        if store.level() < Level::Thin || head < self.next_at_head {
            return;
        }
        self.next_at_head = head.saturating_add(every);
        let store = store.clone();
        self.running = Some(tokio::task::spawn_blocking(move || {
            match store.maintain() {
                Ok(Some(r)) => tracing::info!(
                    deleted = r.deleted,
                    bytes_freed = r.bytes_freed,
                    "thinned meter telemetry"
                ),
                Ok(None) => {}
                Err(e) => tracing::error!(error = %e, "telemetry thinning failed"),
            }
        }));
    }
}

/// A written group whose flush is under way.
struct Flushing {
    replies: Vec<(Reply, usize)>,
    written: Result<Vec<Appended>, StoreError>,
    flush: Option<JoinHandle<Result<(), StoreError>>>,
}

impl Flushing {
    /// Waits for the flush, then answers every request of the group.
    async fn answer(self) {
        let flushed = match self.flush {
            Some(f) => f.await.unwrap_or(Err(StoreError::CommitterStopped)),
            None => Ok(()),
        };
        let result = self.written.and_then(|all| flushed.map(|()| all));
        match result {
            Ok(all) => {
                let mut rest = all.into_iter();
                for (reply, n) in self.replies {
                    let mine: Vec<Appended> = rest.by_ref().take(n).collect();
                    let _ = reply.send(Ok(mine));
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "group commit failed; no record of the group is acknowledged");
                for (reply, _) in self.replies {
                    let _ = reply.send(Err(e.clone()));
                }
            }
        }
    }
}

/// Writes a group in as few batches as the limit allows and starts its flush.
async fn write(store: &Store, group: Vec<Request>) -> Flushing {
    let max = store.config().max_batch_records;
    let mut replies = Vec::with_capacity(group.len());
    let mut chunks: Vec<Vec<PreparedRecord>> = vec![Vec::new()];
    for r in group {
        let n = r.records.len();
        let last_len = chunks.last().map_or(0, Vec::len);
        if last_len > 0 && last_len + n > max {
            chunks.push(Vec::new());
        }
        replies.push((r.reply, n));
        if let Some(chunk) = chunks.last_mut() {
            chunk.extend(r.records);
        }
    }
    let writer = store.clone();
    let written = tokio::task::spawn_blocking(move || {
        let mut all = Vec::new();
        for chunk in chunks {
            all.extend(writer.write_prepared(chunk)?);
        }
        Ok::<_, StoreError>(all)
    })
    .await
    .unwrap_or(Err(StoreError::CommitterStopped));
    let flush = written.is_ok().then(|| {
        let store = store.clone();
        tokio::spawn(async move { store.flush().await })
    });
    Flushing {
        replies,
        written,
        flush,
    }
}
