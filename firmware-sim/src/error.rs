//! The library's errors. Each says what went wrong and what to do about it.

use std::path::PathBuf;

/// Something the simulator could not do.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A configuration or scenario value is wrong.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// The scenario file could not be read or parsed.
    #[error("scenario file {path}: {reason}")]
    Scenario { path: PathBuf, reason: String },
    /// The state directory could not be read or written.
    #[error("state directory {path}: {source}; check that it exists and is writable")]
    StateDir {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A state file is not what this simulator writes.
    #[error("state file {path} is corrupt ({reason}); move it aside to start that pile fresh")]
    CorruptState { path: PathBuf, reason: String },
    /// No charger with that pile code in the fleet.
    #[error("no charger {0} in this fleet")]
    UnknownPile(String),
    /// The charger's task has stopped (fleet shut down).
    #[error("charger {0} is not running (the fleet was shut down)")]
    Stopped(String),
    /// Waiting for an event took too long.
    #[error("timed out after {0:?} waiting for {1}")]
    Timeout(std::time::Duration, String),
    /// An I/O error outside the state directory.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}
