//! The store as the engine's [`Sink`]: commits iterations, caches warm starts, writes and
//! indexes checkpoints.
use crate::engine::control::ControlEvent;
use crate::engine::policy::{checkpoint, Policy};
use crate::engine::search::record::TreeRecord;
use crate::engine::sink::{Sink, SinkError};
use crate::engine::trainer::IterationMetrics;

use super::keys::tree_key;
use super::{RunRecord, Store, WarmStartMeta};

pub struct StoreSink {
    pub store: Store,
    pub run: RunRecord,
}

fn err(e: impl std::fmt::Display) -> SinkError {
    SinkError(e.to_string())
}

impl Sink for StoreSink {
    fn warm_start(&mut self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        Ok(self.store.warm_start(key).map_err(err)?.map(|(_, w)| w))
    }

    fn save_warm_start(
        &mut self,
        key: &str,
        description: serde_json::Value,
        weights: &[u8],
    ) -> Result<(), SinkError> {
        let meta = WarmStartMeta {
            key: key.to_string(),
            description,
        };
        self.store.put_warm_start(&meta, weights).map_err(err)
    }

    fn commit(
        &mut self,
        metrics: &IterationMetrics,
        trees: &[TreeRecord],
    ) -> Result<(), SinkError> {
        let mut extra = Vec::with_capacity(trees.len());
        for (i, t) in trees.iter().enumerate() {
            let key = tree_key(&self.run.name, metrics.iteration, i as u32);
            extra.push((key, postcard::to_allocvec(t).map_err(err)?));
        }
        self.store
            .commit_iteration(&self.run, metrics.iteration, metrics, extra)
            .map_err(err)?;
        self.run.last_iteration = metrics.iteration;
        Ok(())
    }

    fn event(&mut self, event: &ControlEvent) -> Result<(), SinkError> {
        self.store.append_event(&self.run.name, event).map_err(err)
    }

    fn checkpoint(&mut self, iteration: u64, policy: &Policy) -> Result<(), SinkError> {
        let dir = self
            .store
            .run_dir(&self.run.name)
            .join(format!("iter-{iteration:06}"));
        checkpoint::save(policy, &dir).map_err(err)?;
        self.store
            .record_checkpoint(&self.run.name, iteration, &dir)
            .map_err(err)
    }
}
