use std::path::{Path, PathBuf};

use super::SCHEMA_VERSION;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("store {0} does not exist (train a run first, or pass --store PATH)")]
    Missing(PathBuf),
    #[error("store {path} was written with schema version {found} by {created_by}; this arbor reads version {SCHEMA_VERSION}. Use a matching arbor build, or a different --store")]
    SchemaVersion {
        path: PathBuf,
        found: u32,
        created_by: String,
    },
    #[error("{path} is not an arbor store ({detail}); pass another --store PATH")]
    NotAStore { path: PathBuf, detail: String },
    #[error("store {0} is in use by another arbor process (sled allows one process at a time)")]
    Locked(PathBuf),
    #[error("run {0:?} already exists in this store; choose another --run name")]
    RunExists(String),
    #[error("no run {name:?} in store {path}; runs there: {}", if known.is_empty() { "none".to_string() } else { known.join(", ") })]
    NoSuchRun {
        name: String,
        path: PathBuf,
        known: Vec<String>,
    },
    #[error("run name {0:?} is not valid: use letters, digits, '-', '_' and '.' (at most 128)")]
    BadRunName(String),
    #[error("store is corrupt: {0}")]
    Corrupt(String),
    #[error("cannot encode a record: {0}")]
    Encode(String),
    #[error("store error: {0}")]
    Sled(sled::Error),
    /// The live run's trainer answered with an error, or went away.
    #[error("live run: {0}")]
    Live(String),
    #[error("store {path}: {}; what was committed before is intact (check with `arbor fsck --store {path}`); {} then continue with `arbor train --resume RUN --store {path}`", describe(source), hint(source))]
    Access { path: PathBuf, source: sled::Error },
}

fn io_kind(e: &sled::Error) -> Option<std::io::ErrorKind> {
    match e {
        sled::Error::Io(io) => Some(io.kind()),
        _ => None,
    }
}

fn describe(e: &sled::Error) -> String {
    match io_kind(e) {
        Some(std::io::ErrorKind::StorageFull) => {
            "the disk is full (no space left on device)".into()
        }
        Some(std::io::ErrorKind::PermissionDenied) => "permission denied".into(),
        Some(std::io::ErrorKind::ReadOnlyFilesystem) => "the file system is read-only".into(),
        _ => e.to_string(),
    }
}

fn hint(e: &sled::Error) -> &'static str {
    match io_kind(e) {
        Some(std::io::ErrorKind::StorageFull) => "free some space,",
        Some(std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem) => {
            "make the store writable,"
        }
        _ => "fix the cause,",
    }
}

impl StoreError {
    pub fn io(path: &Path, source: std::io::Error) -> Self {
        StoreError::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    pub(crate) fn from_open(path: &Path, e: sled::Error) -> Self {
        match e {
            sled::Error::Io(io) if io.kind() == std::io::ErrorKind::WouldBlock => {
                StoreError::Locked(path.to_path_buf())
            }
            sled::Error::Io(io) => {
                if io.to_string().contains("lock") {
                    StoreError::Locked(path.to_path_buf())
                } else {
                    StoreError::io(path, io)
                }
            }
            sled::Error::Corruption { .. } | sled::Error::Unsupported(_) => StoreError::NotAStore {
                path: path.to_path_buf(),
                detail: e.to_string(),
            },
            other => StoreError::Sled(other),
        }
    }
}
