//! Persistence: one sled database holding many runs.
//!
//! Keys are ordered byte strings (a one-letter table, the run name, a zero byte, a
//! big-endian integer) so prefix scans return a run's records in order. Values are JSON
//! for the small, evolving records (runs, metrics) and raw bytes for weights. A header
//! record carries the schema version; a store of another version is refused before
//! anything is written. An iteration is one sled batch followed by a flush: it is either
//! entirely visible or not at all.
mod error;
pub mod fsck;
pub mod keys;
mod migrate;
pub mod sink;

use std::path::{Path, PathBuf};

use serde::{de::DeserializeOwned, Deserialize, Serialize};

pub use error::StoreError;

use crate::engine::rl::record::TreeRecord;
use crate::engine::training::control::{ControlEvent, EventKind};
use crate::engine::training::resume::CheckpointKind;
use keys::{checkpoint_key, iteration_key, prefix, run_key, Table};

/// Version of the key layout and record encodings this build reads and writes.
/// 2: tree nodes gained `step` and `multiplicity`; 3: `prior`, `value`, `distilled`,
/// `expanded_at` and `runner_up` (older stores are migrated on open, see `migrate.rs`).
pub const SCHEMA_VERSION: u32 = 4;

/// Default location, relative to the working directory.
pub const DEFAULT_PATH: &str = "runs/arbor.sled";

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Header {
    pub schema_version: u32,
    pub created_by: String,
}

/// Lifecycle of a run.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    Running,
    Finished,
    Stopped,
    Failed,
}

/// A run and the settings it was started with.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub name: String,
    pub method: String,
    pub seed: u64,
    pub status: RunStatus,
    pub created_unix: u64,
    /// The full run config, as TOML text.
    pub config_toml: String,
    /// Key of the warm start the run began from.
    pub warm_start: Option<String>,
    /// Last committed iteration (0 before the first).
    pub last_iteration: u64,
    /// The summary line printed when the run ended.
    pub summary: Option<serde_json::Value>,
    /// The `arbor compare` this run belongs to, if any.
    #[serde(default)]
    pub comparison: Option<String>,
}

/// An `arbor compare`: its settings and its runs, grouped.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ComparisonRecord {
    pub name: String,
    pub created_unix: u64,
    pub methods: Vec<String>,
    pub seeds: Vec<u64>,
    pub budget_tokens: u64,
    /// Held-out evaluations happen each time this many tokens are crossed.
    pub milestone_tokens: u64,
    pub threshold: f64,
    pub runs: Vec<String>,
    /// Where the table and plot were written.
    pub out_dir: PathBuf,
}

/// A complete checkpoint on disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CheckpointRecord {
    pub iteration: u64,
    pub dir: PathBuf,
    #[serde(default)]
    pub kind: CheckpointKind,
}

impl RunRecord {
    /// A new run, not started yet.
    pub fn new(name: &str, method: &str, seed: u64, config_toml: String) -> Self {
        Self {
            name: name.to_string(),
            method: method.to_string(),
            seed,
            status: RunStatus::Running,
            created_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_secs())
                .unwrap_or(0),
            config_toml,
            warm_start: None,
            last_iteration: 0,
            summary: None,
            comparison: None,
        }
    }
}

/// A cached warm start: its description and safetensors weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct WarmStartMeta {
    pub key: String,
    pub description: serde_json::Value,
}

/// The store handle; cheap to clone.
#[derive(Clone)]
pub struct Store {
    db: sled::Db,
    path: PathBuf,
}

/// Run names become folder names and key parts.
pub fn validate_run_name(name: &str) -> Result<(), StoreError> {
    let ok = !name.is_empty()
        && name.len() <= 128
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(StoreError::BadRunName(name.to_string()))
    }
}

/// How long an open waits for a lock that is being released. sled frees its
/// file lock only when its background threads let go of the file, a moment
/// after the last handle in this process is dropped; a store held by another
/// process is still refused, after this wait.
const LOCK_RELEASE_WAIT: std::time::Duration = std::time::Duration::from_millis(1500);

fn open_sled(path: &Path) -> Result<sled::Db, StoreError> {
    let start = std::time::Instant::now();
    loop {
        match sled::Config::new().path(path).open() {
            Ok(db) => return Ok(db),
            Err(e) => match StoreError::from_open(path, e) {
                StoreError::Locked(_) if start.elapsed() < LOCK_RELEASE_WAIT => {
                    std::thread::sleep(std::time::Duration::from_millis(25));
                }
                other => return Err(other),
            },
        }
    }
}

impl Store {
    /// Opens the store at `path`, creating it (and its parent folders) if absent.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        if path.exists() && !path.is_dir() {
            return Err(StoreError::NotAStore {
                path: path.to_path_buf(),
                detail: "it is a file, not a sled database folder".into(),
            });
        }
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|e| StoreError::io(parent, e))?;
        }
        Self::open_inner(path)
    }

    /// Opens an existing store; never creates one.
    pub fn open_existing(path: &Path) -> Result<Self, StoreError> {
        if !path.exists() {
            return Err(StoreError::Missing(path.to_path_buf()));
        }
        Self::open(path)
    }

    fn open_inner(path: &Path) -> Result<Self, StoreError> {
        let db = open_sled(path)?;
        let store = Self {
            db,
            path: path.to_path_buf(),
        };
        match store.get_json::<Header>(keys::HEADER)? {
            Some(h) if h.schema_version == SCHEMA_VERSION => {}
            Some(h) if migrate::can_migrate(h.schema_version) => {
                let n = migrate::migrate(&store, h.schema_version)?;
                eprintln!(
                    "arbor: migrated store {} from schema {} to {SCHEMA_VERSION} ({n} trees \
                     rewritten; runs, warm starts and checkpoints unchanged)",
                    path.display(),
                    h.schema_version
                );
            }
            Some(h) => {
                return Err(StoreError::SchemaVersion {
                    path: path.to_path_buf(),
                    found: h.schema_version,
                    created_by: h.created_by,
                })
            }
            None if store.db.is_empty() => {
                let header = Header {
                    schema_version: SCHEMA_VERSION,
                    created_by: format!("arbor {}", env!("CARGO_PKG_VERSION")),
                };
                store.put_json(keys::HEADER, &header)?;
                store.flush()?;
            }
            None => {
                return Err(StoreError::NotAStore {
                    path: path.to_path_buf(),
                    detail: "it has records but no arbor header".into(),
                })
            }
        }
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A sled error on this store, named with its path and what to do.
    fn access(&self, e: sled::Error) -> StoreError {
        StoreError::Access {
            path: self.path.clone(),
            source: e,
        }
    }

    /// Folder for a run's checkpoints, beside the store: `<store>.checkpoints/<run>/`.
    pub fn run_dir(&self, run: &str) -> PathBuf {
        let mut name = self.path.as_os_str().to_os_string();
        name.push(".checkpoints");
        PathBuf::from(name).join(run)
    }

    pub fn header(&self) -> Result<Header, StoreError> {
        self.get_json(keys::HEADER)?
            .ok_or_else(|| StoreError::Corrupt("missing header".into()))
    }

    /// Registers a new run; refuses an existing name.
    pub fn create_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        validate_run_name(&run.name)?;
        let key = run_key(&run.name);
        let value = serde_json::to_vec(run).map_err(|e| StoreError::Encode(e.to_string()))?;
        let res = self
            .db
            .compare_and_swap(key, None as Option<&[u8]>, Some(value))
            .map_err(|e| self.access(e))?;
        if res.is_err() {
            return Err(StoreError::RunExists(run.name.clone()));
        }
        self.flush()
    }

    pub fn run(&self, name: &str) -> Result<Option<RunRecord>, StoreError> {
        self.get_json(&run_key(name))
    }

    /// The run, or an error listing the runs there are.
    pub fn require_run(&self, name: &str) -> Result<RunRecord, StoreError> {
        self.run(name)?.ok_or_else(|| StoreError::NoSuchRun {
            name: name.to_string(),
            path: self.path.clone(),
            known: self
                .runs()
                .map(|r| r.into_iter().map(|r| r.name).collect())
                .unwrap_or_default(),
        })
    }

    pub fn update_run(&self, run: &RunRecord) -> Result<(), StoreError> {
        self.put_json(&run_key(&run.name), run)?;
        self.flush()
    }

    /// Every run, in name order.
    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.scan(&prefix(Table::Run, None))
    }

    /// Commits iteration `iteration` of `run` atomically: the metrics record, the run's
    /// `last_iteration`, and `extra` records (trees, events) in one batch, then flushes.
    pub fn commit_iteration<T: Serialize>(
        &self,
        run: &RunRecord,
        iteration: u64,
        metrics: &T,
        extra: Vec<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let m = serde_json::to_vec(metrics).map_err(|e| StoreError::Encode(e.to_string()))?;
        batch.insert(iteration_key(&run.name, iteration), m);
        let mut rec = run.clone();
        rec.last_iteration = iteration;
        let r = serde_json::to_vec(&rec).map_err(|e| StoreError::Encode(e.to_string()))?;
        batch.insert(run_key(&run.name), r);
        for (k, v) in extra {
            batch.insert(k, v);
        }
        self.db.apply_batch(batch).map_err(|e| self.access(e))?;
        self.flush()
    }

    /// Rewrites the record of an already committed iteration (its phase times, completed
    /// after the commit). Not flushed: the next commit or the run's end flushes it, and a
    /// crash in between keeps the committed record.
    pub fn amend_iteration<T: Serialize>(
        &self,
        run: &str,
        iteration: u64,
        metrics: &T,
    ) -> Result<(), StoreError> {
        self.put_json(&iteration_key(run, iteration), metrics)
    }

    /// A run's committed iteration records, in order.
    pub fn iterations<T: DeserializeOwned>(&self, run: &str) -> Result<Vec<T>, StoreError> {
        self.scan(&prefix(Table::Iteration, Some(run)))
    }

    /// A run's committed iteration records after `after`, in order (what a live viewer
    /// has not seen yet).
    pub fn iterations_after<T: DeserializeOwned>(
        &self,
        run: &str,
        after: u64,
    ) -> Result<Vec<T>, StoreError> {
        let p = prefix(Table::Iteration, Some(run));
        let Some(start) = after.checked_add(1) else {
            return Ok(Vec::new());
        };
        self.db
            .range(iteration_key(run, start)..)
            .take_while(|kv| kv.as_ref().map_or(true, |(k, _)| k.starts_with(&p)))
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.access(e))?;
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Corrupt(format!("record {}: {e}", keys::show(&k))))
            })
            .collect()
    }

    /// Records that the checkpoint of `iteration` is complete in `dir`.
    pub fn record_checkpoint(
        &self,
        run: &str,
        iteration: u64,
        dir: &Path,
        kind: CheckpointKind,
    ) -> Result<(), StoreError> {
        let rec = CheckpointRecord {
            iteration,
            dir: dir.to_path_buf(),
            kind,
        };
        self.put_json(&checkpoint_key(run, iteration), &rec)?;
        self.flush()
    }

    /// Drops a checkpoint's record (its folder is the caller's to remove).
    pub fn forget_checkpoint(&self, run: &str, iteration: u64) -> Result<(), StoreError> {
        self.db
            .remove(checkpoint_key(run, iteration))
            .map_err(|e| self.access(e))?;
        self.flush()
    }

    /// Rolls a run back to `iteration`: every record of a later iteration (metrics, trees,
    /// checkpoints) is removed in one batch and `last_iteration` set. Used by resume,
    /// which recomputes those iterations from the checkpoint of `iteration`.
    pub fn roll_back(&self, run: &RunRecord, iteration: u64) -> Result<RunRecord, StoreError> {
        let mut batch = sled::Batch::default();
        for table in [Table::Iteration, Table::Checkpoint] {
            for kv in self.db.range(
                {
                    let mut k = prefix(table, Some(&run.name));
                    k.extend_from_slice(&(iteration + 1).to_be_bytes());
                    k
                }..{
                    let mut k = prefix(table, Some(&run.name));
                    k.extend_from_slice(&u64::MAX.to_be_bytes());
                    k.push(0);
                    k
                },
            ) {
                batch.remove(kv.map_err(|e| self.access(e))?.0);
            }
        }
        for kv in self.db.range(
            keys::tree_prefix(&run.name, iteration + 1)..{
                let mut k = keys::tree_prefix(&run.name, u64::MAX);
                k.push(0xff);
                k
            },
        ) {
            batch.remove(kv.map_err(|e| self.access(e))?.0);
        }
        let mut rec = run.clone();
        rec.last_iteration = iteration;
        rec.status = RunStatus::Running;
        rec.summary = None;
        let r = serde_json::to_vec(&rec).map_err(|e| StoreError::Encode(e.to_string()))?;
        batch.insert(run_key(&run.name), r);
        self.db.apply_batch(batch).map_err(|e| self.access(e))?;
        self.flush()?;
        Ok(rec)
    }

    /// Records (or updates) a comparison.
    pub fn put_comparison(&self, c: &ComparisonRecord) -> Result<(), StoreError> {
        let mut k = prefix(Table::Comparison, None);
        k.extend_from_slice(c.name.as_bytes());
        self.put_json(&k, c)?;
        self.flush()
    }

    /// Every comparison, in name order.
    pub fn comparisons(&self) -> Result<Vec<ComparisonRecord>, StoreError> {
        self.scan(&prefix(Table::Comparison, None))
    }

    /// The run's checkpoints, oldest first.
    pub fn checkpoints(&self, run: &str) -> Result<Vec<CheckpointRecord>, StoreError> {
        self.scan(&prefix(Table::Checkpoint, Some(run)))
    }

    /// The trees of one committed iteration, in problem order.
    pub fn trees(&self, run: &str, iteration: u64) -> Result<Vec<TreeRecord>, StoreError> {
        self.db
            .scan_prefix(keys::tree_prefix(run, iteration))
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.access(e))?;
                postcard::from_bytes(&v)
                    .map_err(|e| StoreError::Corrupt(format!("record {}: {e}", keys::show(&k))))
            })
            .collect()
    }

    /// Bytes of the stored tree records of one iteration and their node count.
    pub fn tree_bytes(&self, run: &str, iteration: u64) -> Result<(u64, u64), StoreError> {
        let mut bytes = 0u64;
        let mut nodes = 0u64;
        for kv in self.db.scan_prefix(keys::tree_prefix(run, iteration)) {
            let (k, v) = kv.map_err(|e| self.access(e))?;
            bytes += (k.len() + v.len()) as u64;
            let t: TreeRecord = postcard::from_bytes(&v)
                .map_err(|e| StoreError::Corrupt(format!("record {}: {e}", keys::show(&k))))?;
            nodes += t.nodes.len() as u64;
        }
        Ok((bytes, nodes))
    }

    /// Appends a control event to the run's log and flushes.
    pub fn append_event(&self, run: &str, event: &ControlEvent) -> Result<(), StoreError> {
        let seq = self.db.generate_id().map_err(|e| self.access(e))?;
        self.put_json(&keys::event_key(run, seq), event)?;
        self.flush()
    }

    /// Removes the run's events of `kinds` recorded for iterations after `iteration`
    /// (the trainer's own notes of iterations a resume recomputes).
    pub fn forget_events_after(
        &self,
        run: &str,
        iteration: u64,
        kinds: &[EventKind],
    ) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        for kv in self.db.scan_prefix(prefix(Table::Event, Some(run))) {
            let (k, v) = kv.map_err(|e| self.access(e))?;
            let e: ControlEvent = serde_json::from_slice(&v)
                .map_err(|e| StoreError::Corrupt(format!("record {}: {e}", keys::show(&k))))?;
            if e.iteration > iteration && kinds.contains(&e.kind) {
                batch.remove(k);
            }
        }
        self.db.apply_batch(batch).map_err(|e| self.access(e))?;
        self.flush()
    }

    /// The run's control events, oldest first.
    pub fn events(&self, run: &str) -> Result<Vec<ControlEvent>, StoreError> {
        self.scan(&prefix(Table::Event, Some(run)))
    }

    pub fn put_warm_start(&self, meta: &WarmStartMeta, weights: &[u8]) -> Result<(), StoreError> {
        let mut batch = sled::Batch::default();
        let m = serde_json::to_vec(meta).map_err(|e| StoreError::Encode(e.to_string()))?;
        batch.insert(keys::warm_key(&meta.key, false), m);
        batch.insert(keys::warm_key(&meta.key, true), weights);
        self.db.apply_batch(batch).map_err(|e| self.access(e))?;
        self.flush()
    }

    /// The keys of every cached warm start.
    pub fn warm_start_keys(&self) -> Result<Vec<String>, StoreError> {
        self.db
            .scan_prefix(b"w")
            .map(|kv| {
                let (k, _) = kv.map_err(|e| self.access(e))?;
                Ok(String::from_utf8_lossy(&k[1..]).into_owned())
            })
            .collect()
    }

    pub fn warm_start(&self, key: &str) -> Result<Option<(WarmStartMeta, Vec<u8>)>, StoreError> {
        let meta: Option<WarmStartMeta> = self.get_json(&keys::warm_key(key, false))?;
        let weights = self
            .db
            .get(keys::warm_key(key, true))
            .map_err(|e| self.access(e))?;
        Ok(match (meta, weights) {
            (Some(m), Some(w)) => Some((m, w.to_vec())),
            _ => None,
        })
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(|e| self.access(e))?;
        Ok(())
    }

    fn get_json<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StoreError> {
        match self.db.get(key).map_err(|e| self.access(e))? {
            None => Ok(None),
            Some(v) => serde_json::from_slice(&v)
                .map(Some)
                .map_err(|e| StoreError::Corrupt(format!("record {}: {e}", keys::show(key)))),
        }
    }

    fn put_json<T: Serialize>(&self, key: &[u8], value: &T) -> Result<(), StoreError> {
        let v = serde_json::to_vec(value).map_err(|e| StoreError::Encode(e.to_string()))?;
        self.db.insert(key, v).map_err(|e| self.access(e))?;
        Ok(())
    }

    fn scan<T: DeserializeOwned>(&self, p: &[u8]) -> Result<Vec<T>, StoreError> {
        self.db
            .scan_prefix(p)
            .map(|kv| {
                let (k, v) = kv.map_err(|e| self.access(e))?;
                serde_json::from_slice(&v)
                    .map_err(|e| StoreError::Corrupt(format!("record {}: {e}", keys::show(&k))))
            })
            .collect()
    }

    /// Writes a raw header, for tests of version checks.
    #[doc(hidden)]
    pub fn overwrite_header_for_tests(&self, header: &Header) -> Result<(), StoreError> {
        self.put_json(keys::HEADER, header)?;
        self.flush()
    }
}

#[cfg(test)]
mod tests;
