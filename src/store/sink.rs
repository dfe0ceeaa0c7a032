//! The store as the engine's [`Sink`]: commits iterations, caches warm starts, writes and
//! indexes checkpoints.
use crate::engine::policy::{checkpoint, Policy};
use crate::engine::sink::{Sink, SinkError};
use crate::engine::trainer::IterationMetrics;

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

    fn commit(&mut self, metrics: &IterationMetrics) -> Result<(), SinkError> {
        self.store
            .commit_iteration(&self.run, metrics.iteration, metrics, Vec::new())
            .map_err(err)?;
        self.run.last_iteration = metrics.iteration;
        Ok(())
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
