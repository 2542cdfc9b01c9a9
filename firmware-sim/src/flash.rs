//! A pile's flash as the transport keeps it: always in memory (so it survives a simulated
//! power cut inside one process), and in the state dir when one is configured (so it
//! survives the simulator's own restart). See [`crate::state_dir`] for the on-disk rules.
//!
//! With a record journal, every record that enters the flash is appended to the pile's
//! journal right after the flash write that stored it (never before: a journaled record is
//! always one the pile holds or held). It must never let a failed journal append stop the
//! pile: the failure is logged and the record is journaled again on the next write.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use voltline_protocol::domain::TransactionSerial;

use crate::charger::durable::{DurableState, StoredRecord};

/// The records of one pile already in its journal, by (frame type, serial): only those still
/// pending are kept, so the set stays as small as the pile's queue of unconfirmed records.
pub type Journaled = Arc<Mutex<HashSet<(u8, TransactionSerial)>>>;

/// The pile's flash: always in memory (it survives a simulated power cut), and in the state
/// dir when one is configured.
#[derive(Debug, Clone)]
pub struct Flash {
    pub mem: Arc<Mutex<Option<DurableState>>>,
    pub dir: Option<PathBuf>,
    /// `Some`: keep the record journal in `dir` (ignored without a dir).
    pub journal: Option<Journaled>,
}

impl Flash {
    pub async fn write(&self, state: DurableState) {
        if let Some(dir) = self.dir.clone() {
            let fresh = self.unjournaled(&state);
            let s = state.clone();
            let r = tokio::task::spawn_blocking(move || {
                crate::state_dir::save(&dir, &s)?;
                if !fresh.is_empty() {
                    crate::state_dir::append_journal(&dir, &s.pile, &fresh)?;
                }
                Ok::<_, crate::SimError>(())
            })
            .await;
            match r {
                Ok(Ok(())) => self.mark_journaled(&state),
                Ok(Err(e)) => tracing::error!(pile = %state.pile, "cannot write flash: {e}"),
                Err(e) => tracing::error!(pile = %state.pile, "flash writer failed: {e}"),
            }
        }
        if let Ok(mut m) = self.mem.lock() {
            *m = Some(state);
        }
    }

    pub fn read(&self) -> Option<DurableState> {
        self.mem.lock().ok().and_then(|m| m.clone())
    }

    /// The pending records of `state` not in the journal yet (none without a journal).
    fn unjournaled(&self, state: &DurableState) -> Vec<StoredRecord> {
        let Some(done) = self.journal.as_ref().and_then(|j| j.lock().ok()) else {
            return Vec::new();
        };
        state
            .pending
            .iter()
            .filter(|r| !done.contains(&key(r)))
            .cloned()
            .collect()
    }

    /// After a successful write: every pending record of `state` is journaled, and the
    /// records no longer pending are forgotten.
    fn mark_journaled(&self, state: &DurableState) {
        if let Some(mut done) = self.journal.as_ref().and_then(|j| j.lock().ok()) {
            *done = state.pending.iter().map(key).collect();
        }
    }
}

fn key(r: &StoredRecord) -> (u8, TransactionSerial) {
    (r.frame_type(), r.serial())
}

/// Journals the pending records of `state` that the journal of its pile lacks (a crash
/// between a flash write and its journal append leaves such records), and returns the set
/// a [`Flash`] starts from. Called when a fleet loads the pile's flash, before the pile runs.
pub fn journal_loaded(
    dir: &std::path::Path,
    state: Option<&DurableState>,
) -> Result<Journaled, crate::SimError> {
    let Some(state) = state else {
        return Ok(Journaled::default());
    };
    let written: HashSet<_> = crate::state_dir::read_journal(dir, &state.pile)?
        .iter()
        .map(key)
        .collect();
    let missing: Vec<StoredRecord> = state
        .pending
        .iter()
        .filter(|r| !written.contains(&key(r)))
        .cloned()
        .collect();
    if !missing.is_empty() {
        crate::state_dir::append_journal(dir, &state.pile, &missing)?;
    }
    Ok(Arc::new(Mutex::new(
        state.pending.iter().map(key).collect(),
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state_dir::{read_journal, test_record};
    use voltline_protocol::domain::PileCode;

    fn flash(dir: &std::path::Path, journal: Journaled) -> Flash {
        Flash {
            mem: Arc::default(),
            dir: Some(dir.to_owned()),
            journal: Some(journal),
        }
    }

    #[tokio::test]
    async fn a_record_is_journaled_once_after_the_write_that_stores_it() {
        let dir = tempfile::tempdir().unwrap();
        let pile: PileCode = "32010600019236".parse().unwrap();
        let f = flash(dir.path(), Journaled::default());
        let mut s = DurableState::fresh(pile, 1);
        f.write(s.clone()).await;
        assert!(read_journal(dir.path(), &pile).unwrap().is_empty());
        let (a, b) = (test_record(pile, 1), test_record(pile, 2));
        s.pending.push(a.clone());
        f.write(s.clone()).await;
        f.write(s.clone()).await;
        s.pending.push(b.clone());
        f.write(s.clone()).await;
        // Confirmed: gone from flash, still in the journal.
        s.pending.clear();
        f.write(s.clone()).await;
        assert_eq!(read_journal(dir.path(), &pile).unwrap(), vec![a.clone(), b]);
        assert_eq!(crate::state_dir::load(dir.path(), &pile).unwrap(), Some(s));
        assert!(f.journal.as_ref().unwrap().lock().unwrap().is_empty());
    }

    #[tokio::test]
    async fn loading_journals_what_a_crash_left_unjournaled() {
        let dir = tempfile::tempdir().unwrap();
        let pile: PileCode = "32010600019236".parse().unwrap();
        let (a, b) = (test_record(pile, 1), test_record(pile, 2));
        crate::state_dir::append_journal(dir.path(), &pile, std::slice::from_ref(&a)).unwrap();
        // The flash holds a and b; the crash came before b's journal line.
        let mut s = DurableState::fresh(pile, 1);
        s.pending = vec![a.clone(), b.clone()];
        let journaled = journal_loaded(dir.path(), Some(&s)).unwrap();
        assert_eq!(journaled.lock().unwrap().len(), 2);
        assert_eq!(read_journal(dir.path(), &pile).unwrap(), vec![a, b]);
        let f = flash(dir.path(), journaled);
        f.write(s).await;
        assert_eq!(read_journal(dir.path(), &pile).unwrap().len(), 2);
        assert!(journal_loaded(dir.path(), None)
            .unwrap()
            .lock()
            .unwrap()
            .is_empty());
    }
}
