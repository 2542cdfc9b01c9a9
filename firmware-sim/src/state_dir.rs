//! A pile's flash on disk (`--state-dir`): one JSON file per pile, `<dir>/<pile code>.json`,
//! and, when asked for (`--record-journal`), the pile's record journal
//! `<dir>/<pile code>.records.jsonl`: every transaction or discharge record that ever entered
//! its flash, one JSON line each, appended after the flash write that stored it — an audit
//! trail for tests, which keeps growing (one line per session) and is never read back by the
//! pile itself.
//!
//! Guarantees: a write is atomic (temporary file, fsync, rename over the old file, fsync of
//! the directory), so after a crash at any instant the file holds either the previous state
//! or the new one, never a mix; a file this simulator cannot read is reported, never
//! silently replaced. A journal line cut short by a crash is dropped when the journal is
//! next read or appended to (the record is still in flash then, and is journaled again when
//! the fleet loads it). The journal is not fsynced: it survives the simulator's crash, not
//! the machine's.

use std::fs::{self, File, OpenOptions};
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use voltline_protocol::domain::PileCode;

use crate::charger::durable::{DurableState, StoredRecord, STATE_VERSION};
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

/// The record journal of `pile` in `dir`.
pub fn journal_path(dir: &Path, pile: &PileCode) -> PathBuf {
    dir.join(format!("{pile}.records.jsonl"))
}

/// Appends `records` to the journal of `pile`, first dropping a last line a crash cut short.
pub fn append_journal(
    dir: &Path,
    pile: &PileCode,
    records: &[StoredRecord],
) -> Result<(), SimError> {
    let path = journal_path(dir, pile);
    let io = |source| SimError::StateDir {
        path: path.clone(),
        source,
    };
    let mut text = Vec::new();
    for r in records {
        serde_json::to_writer(&mut text, r).map_err(|e| io(std::io::Error::other(e)))?;
        text.push(b'\n');
    }
    let mut f = OpenOptions::new()
        .create(true)
        .read(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    let old = fs::read(&path).map_err(io)?;
    let whole = old.iter().rposition(|b| *b == b'\n').map_or(0, |i| i + 1);
    if whole < old.len() {
        f.set_len(whole as u64).map_err(io)?;
    }
    f.seek(SeekFrom::Start(whole as u64)).map_err(io)?;
    f.write_all(&text).map_err(io)
}

/// Every record in the journal of `pile`, oldest first (empty when there is none). A last
/// line without its newline (cut short by a crash) is skipped; any other line that does not
/// parse is reported.
pub fn read_journal(dir: &Path, pile: &PileCode) -> Result<Vec<StoredRecord>, SimError> {
    let path = journal_path(dir, pile);
    let text = match fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => return Err(SimError::StateDir { path, source }),
    };
    let whole = text.rfind('\n').map_or(0, |i| i + 1);
    text[..whole]
        .lines()
        .enumerate()
        .map(|(i, line)| {
            serde_json::from_str(line).map_err(|e| SimError::CorruptState {
                path: path.clone(),
                reason: format!("line {}: {e}", i + 1),
            })
        })
        .collect()
}

/// A discharge record of `pile` with transaction counter `counter`, for tests.
#[cfg(test)]
pub(crate) fn test_record(pile: PileCode, counter: u16) -> StoredRecord {
    use voltline_protocol::domain::{ConnectorNo, Energy, SerialTime, TransactionSerial};
    use voltline_protocol::message::v2g::{DischargeRecord, DischargeStopReason};
    use voltline_protocol::wire::cp56::Cp56Time;
    let connector = ConnectorNo::new(1).expect("connector 1");
    let at = SerialTime {
        year: 26,
        month: 12,
        day: 1,
        hour: 12,
        minute: 0,
        second: 0,
    };
    StoredRecord::Discharge(DischargeRecord {
        serial: TransactionSerial::compose(pile, connector, at, counter).expect("a serial"),
        pile_code: pile,
        connector,
        start_time: Cp56Time::UNSET,
        end_time: Cp56Time::UNSET,
        export_register_start: Energy::ZERO,
        export_register_end: Energy::from_wh(1_000),
        exported_energy: Energy::from_wh(1_000),
        stop_reason: DischargeStopReason(0x40),
    })
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

    #[test]
    fn the_journal_appends_and_drops_a_line_cut_short() {
        let dir = tempfile::tempdir().unwrap();
        let pile: PileCode = "32010600019236".parse().unwrap();
        assert!(read_journal(dir.path(), &pile).unwrap().is_empty());
        let record = |counter| test_record(pile, counter);
        let (a, b) = (record(1), record(2));
        append_journal(dir.path(), &pile, std::slice::from_ref(&a)).unwrap();
        // A crash in the middle of the next line.
        let mut f = OpenOptions::new()
            .append(true)
            .open(journal_path(dir.path(), &pile))
            .unwrap();
        f.write_all(b"{\"kind\":\"transac").unwrap();
        assert_eq!(read_journal(dir.path(), &pile).unwrap(), vec![a.clone()]);
        append_journal(dir.path(), &pile, std::slice::from_ref(&b)).unwrap();
        assert_eq!(read_journal(dir.path(), &pile).unwrap(), vec![a, b]);
        fs::write(journal_path(dir.path(), &pile), b"garbage\n").unwrap();
        assert!(matches!(
            read_journal(dir.path(), &pile),
            Err(SimError::CorruptState { .. })
        ));
    }
}
