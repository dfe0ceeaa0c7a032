//! The store as the engine's [`Sink`]: commits iterations, caches warm starts, writes and
//! indexes checkpoints.
use crate::engine::rl::record::TreeRecord;
use crate::engine::training::control::ControlEvent;
use crate::engine::training::records::IterationMetrics;
use crate::engine::training::resume::{self, CheckpointKind, TrainingCheckpoint};
use crate::engine::training::sink::{Sink, SinkError};

use super::keys::tree_key;
use super::{RunRecord, Store, WarmStartMeta};

/// Scheduled checkpoints kept per run.
pub const KEEP_SCHEDULED: usize = 3;

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

    fn amend(&mut self, metrics: &IterationMetrics) -> Result<(), SinkError> {
        self.store
            .amend_iteration(&self.run.name, metrics.iteration, metrics)
            .map_err(err)
    }

    fn event(&mut self, event: &ControlEvent) -> Result<(), SinkError> {
        self.store.append_event(&self.run.name, event).map_err(err)
    }

    fn checkpoint(&mut self, iteration: u64, ck: &TrainingCheckpoint) -> Result<(), SinkError> {
        let name = &self.run.name;
        let dir = self
            .store
            .run_dir(name)
            .join(format!("iter-{iteration:06}"));
        resume::save(&dir, ck).map_err(err)?;
        self.store
            .record_checkpoint(name, iteration, &dir, ck.kind)
            .map_err(err)?;
        // Scheduled checkpoints are kept to the newest few; requested and final ones stay.
        let scheduled: Vec<_> = self
            .store
            .checkpoints(name)
            .map_err(err)?
            .into_iter()
            .filter(|c| c.kind == CheckpointKind::Scheduled && c.iteration != iteration)
            .collect();
        let excess = scheduled.len().saturating_sub(KEEP_SCHEDULED - 1);
        for old in &scheduled[..excess] {
            self.store
                .forget_checkpoint(name, old.iteration)
                .map_err(err)?;
            let _ = std::fs::remove_dir_all(&old.dir);
        }
        Ok(())
    }
}
