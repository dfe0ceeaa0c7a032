//! What search, rollouts and evaluation call to continue contexts, without knowing which
//! engine answers: the candle sampler over arbor's own Qwen2 is one [`Generator`]; a stub
//! that returns fixed children (the bench's bookkeeping figures) is another.
use rand::RngCore;

use super::model::Qwen2;
use super::sampler::{sample, Completion, Request, SampleStats, SamplingParams};

/// Why a generator gave no completions: the local model failed, or the inference engine
/// did (unreachable, an error status, a malformed or short answer).
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    #[error(transparent)]
    Model(#[from] candle_core::Error),
    #[error("{0}")]
    Engine(String),
}

/// For callers whose own errors are the model's (evaluation, test-time strategies).
impl From<GenerateError> for candle_core::Error {
    fn from(e: GenerateError) -> Self {
        match e {
            GenerateError::Model(e) => e,
            GenerateError::Engine(msg) => candle_core::Error::Msg(msg),
        }
    }
}

pub type Result<T> = std::result::Result<T, GenerateError>;

pub trait Generator {
    /// Longest context (prompt and generated tokens) a request may reach.
    fn max_context(&self) -> usize;

    /// Continues every request's context `copies` times. Completions name their request;
    /// with `keep_cache` each carries the cache of its context for branching.
    fn generate(
        &self,
        requests: &[Request],
        params: &SamplingParams,
        keep_cache: bool,
        rng: &mut dyn RngCore,
    ) -> Result<(Vec<Completion>, SampleStats)>;
}

impl Generator for Qwen2 {
    fn max_context(&self) -> usize {
        self.config().max_position_embeddings
    }

    fn generate(
        &self,
        requests: &[Request],
        params: &SamplingParams,
        keep_cache: bool,
        mut rng: &mut dyn RngCore,
    ) -> Result<(Vec<Completion>, SampleStats)> {
        Ok(sample(self, requests, params, keep_cache, &mut rng)?)
    }
}
