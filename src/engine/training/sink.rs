//! How the engine reports: progress, cached warm starts, iteration commits, checkpoints.
//! The store implements it for real runs; tests may replace it.
use crate::engine::rl::interrupt::{Interrupt, Phase};
use crate::engine::rl::record::TreeRecord;
use crate::engine::training::control::{ControlEvent, Directive};
use crate::engine::training::records::IterationMetrics;
use crate::engine::training::resume::TrainingCheckpoint;

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct SinkError(pub String);

pub trait Sink {
    /// `done` of `total` units of `phase`; `note` is a short status (loss, accuracy).
    fn progress(&mut self, _phase: Phase, _done: u64, _total: u64, _note: &str) {}
    /// The warm start's loss after step `step` (for its curve on the dashboard).
    fn warm_start_loss(&mut self, _step: u64, _loss: f64) {}
    /// A phase finished.
    fn phase_done(&mut self, _phase: Phase, _note: &str) {}
    /// Weights of a cached warm start, if there is one under `key`.
    fn warm_start(&mut self, key: &str) -> Result<Option<Vec<u8>>, SinkError>;
    /// Caches a warm start.
    fn save_warm_start(
        &mut self,
        key: &str,
        description: serde_json::Value,
        weights: &[u8],
    ) -> Result<(), SinkError>;
    /// Commits one iteration atomically: its metrics and every problem's tree.
    fn commit(&mut self, metrics: &IterationMetrics, trees: &[TreeRecord])
        -> Result<(), SinkError>;
    /// Replaces the committed record of `metrics.iteration` with `metrics` (its phase
    /// times, completed after the commit and checkpoint they include).
    fn amend(&mut self, _metrics: &IterationMetrics) -> Result<(), SinkError> {
        Ok(())
    }
    /// Saves everything needed to resume after `iteration`.
    fn checkpoint(&mut self, iteration: u64, ck: &TrainingCheckpoint) -> Result<(), SinkError>;
    /// Directives to apply at this safe point, before iteration `next` starts. A live
    /// sink blocks here while the run is paused.
    fn directives(&mut self, _next: u64) -> Vec<Directive> {
        Vec::new()
    }
    /// Asked inside `phase` between batches (warm-start steps, evaluation, filter and
    /// rollout batches, tree expansions). A live sink blocks here while the run is paused;
    /// [`Interrupt::Stop`] when a stop (or a signal) is pending, which gives the phase up
    /// and leaves the stop itself to the next `directives`.
    fn interrupt(&mut self, _phase: Phase) -> Interrupt {
        Interrupt::Continue
    }
    /// Asks to pause the run with `reason` (repeated non-finite updates). A sink with a
    /// user to resume it pauses (its next `directives` call blocks) and returns true; a
    /// headless one returns false and the run stops, resumable with `--resume`.
    fn pause(&mut self, _reason: &str) -> bool {
        false
    }
    /// Records a control action.
    fn event(&mut self, _event: &ControlEvent) -> Result<(), SinkError> {
        Ok(())
    }
}

/// A sink that keeps everything in memory, for tests and benchmarks.
#[derive(Default)]
pub struct MemorySink {
    pub warm: std::collections::HashMap<String, Vec<u8>>,
    pub iterations: Vec<IterationMetrics>,
    pub trees: Vec<Vec<TreeRecord>>,
    pub checkpoints: Vec<u64>,
}

impl Sink for MemorySink {
    fn warm_start(&mut self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        Ok(self.warm.get(key).cloned())
    }
    fn save_warm_start(
        &mut self,
        key: &str,
        _d: serde_json::Value,
        weights: &[u8],
    ) -> Result<(), SinkError> {
        self.warm.insert(key.to_string(), weights.to_vec());
        Ok(())
    }
    fn commit(
        &mut self,
        metrics: &IterationMetrics,
        trees: &[TreeRecord],
    ) -> Result<(), SinkError> {
        self.iterations.push(metrics.clone());
        self.trees.push(trees.to_vec());
        Ok(())
    }
    fn amend(&mut self, metrics: &IterationMetrics) -> Result<(), SinkError> {
        if let Some(m) = self
            .iterations
            .iter_mut()
            .rfind(|m| m.iteration == metrics.iteration)
        {
            *m = metrics.clone();
        }
        Ok(())
    }
    fn checkpoint(&mut self, iteration: u64, _ck: &TrainingCheckpoint) -> Result<(), SinkError> {
        self.checkpoints.push(iteration);
        Ok(())
    }
}
