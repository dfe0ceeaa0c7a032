//! Where the explorer reads a run from: the store itself (a finished or stopped run), or
//! the live run's trainer over its socket. Both answer the same questions; new commits
//! are fetched incrementally (`iterations_after`, `events_from`).
use std::sync::Arc;

use crate::app::serve::client::Client;
use crate::engine::rl::record::TreeRecord;
use crate::engine::training::control::ControlEvent;
use crate::engine::training::records::IterationMetrics;
use crate::store::{RunRecord, Store, StoreError};

pub trait RunSource {
    fn runs(&self) -> Result<Vec<RunRecord>, StoreError>;
    fn run(&self, name: &str) -> Result<RunRecord, StoreError>;
    fn iterations_after(&self, name: &str, after: u64)
        -> Result<Vec<IterationMetrics>, StoreError>;
    fn events_from(&self, name: &str, from: usize) -> Result<Vec<ControlEvent>, StoreError>;
    fn trees(&self, name: &str, iteration: u64) -> Result<Vec<TreeRecord>, StoreError>;
    /// Every committed iteration's record as stored (what `export --metrics` writes).
    fn iteration_values(&self, name: &str) -> Result<Vec<serde_json::Value>, StoreError>;
}

impl RunSource for Store {
    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        Store::runs(self)
    }
    fn run(&self, name: &str) -> Result<RunRecord, StoreError> {
        self.require_run(name)
    }
    fn iterations_after(
        &self,
        name: &str,
        after: u64,
    ) -> Result<Vec<IterationMetrics>, StoreError> {
        Store::iterations_after(self, name, after)
    }
    fn events_from(&self, name: &str, from: usize) -> Result<Vec<ControlEvent>, StoreError> {
        let mut ev = self.events(name)?;
        Ok(ev.split_off(from.min(ev.len())))
    }
    fn trees(&self, name: &str, iteration: u64) -> Result<Vec<TreeRecord>, StoreError> {
        Store::trees(self, name, iteration)
    }
    fn iteration_values(&self, name: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        self.iterations(name)
    }
}

impl RunSource for Arc<Client> {
    fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        Client::runs(self)
    }
    fn run(&self, name: &str) -> Result<RunRecord, StoreError> {
        Client::run(self, name)
    }
    fn iterations_after(
        &self,
        name: &str,
        after: u64,
    ) -> Result<Vec<IterationMetrics>, StoreError> {
        Client::iterations_after(self, name, after)
    }
    fn events_from(&self, name: &str, from: usize) -> Result<Vec<ControlEvent>, StoreError> {
        Client::events_from(self, name, from)
    }
    fn trees(&self, name: &str, iteration: u64) -> Result<Vec<TreeRecord>, StoreError> {
        Client::trees(self, name, iteration)
    }
    fn iteration_values(&self, name: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        Client::iteration_values(self, name)
    }
}
