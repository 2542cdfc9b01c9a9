//! A pile's flash on disk (`--state-dir`): one JSON file per pile, `<dir>/<pile code>.json`.
//!
//! Guarantees: a write is atomic (temporary file, fsync, rename over the old file, fsync of
//! the directory), so after a crash at any instant the file holds either the previous state
//! or the new one, never a mix; a file this simulator cannot read is reported, never
//! silently replaced.

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use voltline_protocol::domain::PileCode;

use crate::charger::durable::{DurableState, STATE_VERSION};
use crate::error::SimError;

/// The file of `pile` in `dir`.
pub fn path_for(dir: &Path, pile: &PileCode) -> PathBuf {
    dir.join(format!("{pile}.json"))
}

/// Writes `state` atomically.
pub fn save(dir: &Path, state: &DurableState) -> Result<(), SimError> {
    let io = |source| SimError::StateDir {
        path: dir.to_path_buf(),
        source,
    };
    let path = path_for(dir, &state.pile);
    let tmp = dir.join(format!("{}.json.tmp", state.pile));
    let json = serde_json::to_vec(state).map_err(|e| io(std::io::Error::other(e)))?;
    {
        let mut f = File::create(&tmp).map_err(io)?;
        f.write_all(&json).map_err(io)?;
        f.sync_all().map_err(io)?;
    }
    fs::rename(&tmp, &path).map_err(io)?;
    File::open(dir).and_then(|d| d.sync_all()).map_err(io)?;
    Ok(())
}

/// Reads the state of `pile`, `None` if it has none.
pub fn load(dir: &Path, pile: &PileCode) -> Result<Option<DurableState>, SimError> {
    let path = path_for(dir, pile);
    let bytes = match fs::read(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(source) => return Err(SimError::StateDir { path, source }),
    };
    let state: DurableState =
        serde_json::from_slice(&bytes).map_err(|e| SimError::CorruptState {
            path: path.clone(),
            reason: e.to_string(),
        })?;
    if state.version != STATE_VERSION || state.pile != *pile {
        return Err(SimError::CorruptState {
            path,
            reason: format!(
                "version {} for pile {}, expected version {STATE_VERSION} for pile {pile}",
                state.version, state.pile
            ),
        });
    }
    Ok(Some(state))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_round_trips_and_corruption_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let pile: PileCode = "32010600019236".parse().unwrap();
        assert!(load(dir.path(), &pile).unwrap().is_none());
        let s = DurableState::fresh(pile, 2);
        save(dir.path(), &s).unwrap();
        assert_eq!(load(dir.path(), &pile).unwrap(), Some(s));
        fs::write(path_for(dir.path(), &pile), b"{not json").unwrap();
        assert!(matches!(
            load(dir.path(), &pile),
            Err(SimError::CorruptState { .. })
        ));
    }
}
