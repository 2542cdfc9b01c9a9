//! [`SimProcess`]: the simulator as a child process (`voltline-sim`) with its piles' flash in
//! a state directory, so that it can be SIGKILLed — every pile losing power at once — and
//! started again on the same flash, where the piles resend what was never confirmed and
//! bill the sessions the crash cut short.
//!
//! What the piles produced is read from disk, as the simulator wrote it: each pile's record
//! journal (`--record-journal`: every record that entered its flash) and its flash (the
//! records still unconfirmed), through `voltline_sim::state_dir`. It must never leave the
//! child running (the [`ChildGuard`] kills it on drop).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use voltline_protocol::domain::{PileCode, TransactionSerial};
use voltline_sim::charger::durable::StoredRecord;
use voltline_sim::state_dir;

use crate::process::{spawn_binary, ChildGuard};
use crate::HarnessError;

/// A `voltline-sim` child and its state directory.
pub struct SimProcess {
    args: Vec<String>,
    state_dir: PathBuf,
    piles: Vec<PileCode>,
    child: Option<ChildGuard>,
    starts: usize,
}

impl SimProcess {
    /// Starts `voltline-sim` with `args` plus `--state-dir <state_dir> --record-journal`,
    /// for the chargers `piles` (which `args` must describe).
    pub async fn start(
        args: Vec<String>,
        state_dir: &Path,
        piles: Vec<PileCode>,
    ) -> Result<SimProcess, HarnessError> {
        let mut sim = SimProcess {
            args,
            state_dir: state_dir.to_owned(),
            piles,
            child: None,
            starts: 0,
        };
        sim.start_again(&[]).await?;
        Ok(sim)
    }

    /// Starts it again on the same flash (a no-op while it runs), with `extra` arguments
    /// after the first start's (a later flag overrides an earlier one).
    pub async fn start_again(&mut self, extra: &[&str]) -> Result<(), HarnessError> {
        if self.child.is_some() {
            return Ok(());
        }
        let mut args = self.args.clone();
        args.extend(extra.iter().map(|s| (*s).to_owned()));
        args.extend([
            "--state-dir".to_owned(),
            self.state_dir.display().to_string(),
            "--record-journal".to_owned(),
        ]);
        let child = tokio::task::spawn_blocking(move || {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            spawn_binary("voltline-sim", &args, &[("RUST_LOG", "warn")])
        })
        .await
        .map_err(|e| HarnessError::Contract(format!("spawning the simulator: {e}")))??;
        self.child = Some(child);
        self.starts += 1;
        Ok(())
    }

    /// SIGKILL: every pile loses power at once.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
        }
    }

    /// `Some(log)` when the child exited by itself.
    pub fn exited(&mut self) -> Option<String> {
        let c = self.child.as_mut()?;
        match c.try_wait() {
            Ok(Some(status)) => Some(format!("exited ({status}):\n{}", c.log())),
            _ => None,
        }
    }

    /// How many times it was started.
    pub fn starts(&self) -> usize {
        self.starts
    }

    /// The piles.
    pub fn piles(&self) -> &[PileCode] {
        &self.piles
    }

    /// Every transaction record the piles ever stored, by serial (a record journaled twice
    /// must be the same record: anything else is an error), read from their journals.
    pub fn records(&self) -> Result<BTreeMap<TransactionSerial, StoredRecord>, HarnessError> {
        let mut all = BTreeMap::new();
        for pile in &self.piles {
            for r in state_dir::read_journal(&self.state_dir, pile).map_err(sim_error)? {
                if !matches!(r, StoredRecord::Transaction(_)) {
                    continue;
                }
                let serial = r.serial();
                if let Some(old) = all.insert(serial, r.clone()) {
                    if old != r {
                        return Err(HarnessError::Contract(format!(
                            "pile {pile} journaled two different records with serial {serial}:\n{old:?}\n{r:?}"
                        )));
                    }
                }
            }
        }
        Ok(all)
    }

    /// How many records the piles hold unconfirmed in flash now.
    pub fn unconfirmed(&self) -> Result<usize, HarnessError> {
        let mut n = 0;
        for pile in &self.piles {
            if let Some(s) = state_dir::load(&self.state_dir, pile).map_err(sim_error)? {
                n += s.pending.len();
            }
        }
        Ok(n)
    }

    /// How many sessions the piles have in progress in flash now (charging or discharging).
    pub fn in_progress(&self) -> Result<usize, HarnessError> {
        let mut n = 0;
        for pile in &self.piles {
            if let Some(s) = state_dir::load(&self.state_dir, pile).map_err(sim_error)? {
                n += s.charging.len() + s.discharging.len();
            }
        }
        Ok(n)
    }
}

fn sim_error(e: voltline_sim::SimError) -> HarnessError {
    HarnessError::Contract(format!("the simulator's state directory: {e}"))
}
