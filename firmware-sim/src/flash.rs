//! A pile's flash as the transport keeps it: always in memory (so it survives a simulated
//! power cut inside one process), and in the state dir when one is configured (so it
//! survives the simulator's own restart). See [`crate::state_dir`] for the on-disk rules.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use crate::charger::durable::DurableState;

/// The pile's flash: always in memory (it survives a simulated power cut), and in the state
/// dir when one is configured.
#[derive(Debug, Clone)]
pub struct Flash {
    pub mem: Arc<Mutex<Option<DurableState>>>,
    pub dir: Option<PathBuf>,
}

impl Flash {
    pub async fn write(&self, state: DurableState) {
        if let Some(dir) = self.dir.clone() {
            let s = state.clone();
            let r = tokio::task::spawn_blocking(move || crate::state_dir::save(&dir, &s)).await;
            match r {
                Ok(Ok(())) => {}
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
}
