//! The settings every method shares: sampling, rewards, the update and the loop's budget
//! (`[train]` of a run's config). A method's own settings live in its own section.
use serde::{Deserialize, Serialize};

use crate::engine::task::RewardKind;

/// The RL loop.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TrainConfig {
    /// Iterations (one sampling round and update each). Default 1000.
    pub iterations: u64,
    /// Stop once this many tokens were generated for training (evaluation excluded).
    /// Default none.
    pub budget_tokens: Option<u64>,
    /// Problems per iteration (paper: 256 on GPUs). Default 16.
    pub problems_per_step: usize,
    /// Samples per problem, n (paper: 8). Default 8.
    pub group_size: usize,
    /// AdamW learning rate (paper: 1e-6 for 1.5B; a tiny model needs far more). Default 1e-4. (R)
    pub lr: f64,
    /// Linear warm-up, in optimizer steps (paper: 10), applied per step also when an
    /// iteration takes several. Default 10; `arbor compare` turns it off.
    pub warmup_steps: u64,
    /// AdamW weight decay (paper: 0.1). Default 0.0 for the tiny model.
    pub weight_decay: f64,
    /// Global gradient-norm clip (paper: 1.0). Default 1.0.
    pub max_grad_norm: f64,
    /// Lower ratio clip, 1 - clip_low (paper: 0.2). Default 0.2.
    pub clip_low: f64,
    /// Upper ratio clip for dapo and deepsearch, 1 + clip_high (paper: 0.28); grpo uses
    /// clip_low on both sides. Default 0.28.
    pub clip_high: f64,
    /// Dual-clip cap on negative-advantage losses (paper: 10); 0 disables. Default 10.
    pub dual_clip: f64,
    /// Sampling temperature (paper: 1.0). Default 1.0. (R)
    pub temperature: f32,
    /// Most tokens in a completion. Default 64.
    pub max_tokens: usize,
    /// Reward for training: binary, tinyzero or dense. Default binary.
    pub reward: RewardKind,
    /// Mini-batches per iteration (paper: 8). Default 1. Ignored when
    /// `tokens_per_step` is set.
    pub minibatches: usize,
    /// Equal learning per token: one optimizer step per this many generated training
    /// tokens (the owed fraction carries over between iterations), so methods whose
    /// iterations cost more tokens take more steps. Never fewer than
    /// `min_sequences_per_step` sequences in a step. 0: off (`minibatches` per
    /// iteration). Default 0; `arbor compare` sets 2048.
    pub tokens_per_step: u64,
    /// Equal optimizer steps per token: this many optimizer steps per 1,000 generated
    /// training tokens, for every method; samples wait in a buffer across iterations until
    /// a step is owed and `min_sequences_per_step` of them are there, and no owed step is
    /// forgiven (unlike `tokens_per_step`, whose debt is capped at 4 steps). Overrides
    /// `tokens_per_step` and `minibatches`. 0: off. Default 0.
    pub steps_per_1k_tokens: f64,
    /// Fewest sequences in one optimizer step under `tokens_per_step` or
    /// `steps_per_1k_tokens`. Default 32.
    pub min_sequences_per_step: usize,
    /// Stop once the evaluations plateau (`engine::plateau`: none of the last three
    /// beats the best before them by more than its 95% half-width); use with
    /// `eval.split = "validation"`. Default false.
    pub stop_at_plateau: bool,
    /// Passes over an iteration's samples. Default 1.
    pub epochs: usize,
    /// What the update computes in: `f32`; `bf16` (weights and activations cast to
    /// bf16 from f32 master weights, gradients and AdamW's moments in f32; bf16 has f32's
    /// exponent range, so no loss scaling); `auto` (default): bf16 on CUDA, f32 on the
    /// CPU, where arbor's f32 kernels are faster than candle's bf16 ops.
    pub precision: Precision,
    /// Save a resumable checkpoint every this many iterations (and at the end); 0: only
    /// at the end. A resume recomputes at most this many - 1 iterations. Default 10; the
    /// newest 3 scheduled checkpoints are kept.
    pub checkpoint_every: u64,
}

impl Default for TrainConfig {
    fn default() -> Self {
        Self {
            iterations: 1000,
            budget_tokens: None,
            problems_per_step: 16,
            group_size: 8,
            lr: 1e-4,
            warmup_steps: 10,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
            clip_low: 0.2,
            clip_high: 0.28,
            dual_clip: 10.0,
            temperature: 1.0,
            max_tokens: 64,
            reward: RewardKind::Binary,
            minibatches: 1,
            tokens_per_step: 0,
            steps_per_1k_tokens: 0.0,
            min_sequences_per_step: 32,
            stop_at_plateau: false,
            epochs: 1,
            precision: Precision::Auto,
            checkpoint_every: 10,
        }
    }
}

impl TrainConfig {
    /// How optimizer steps follow generated tokens, when they do (`steps_per_1k_tokens`
    /// first, then `tokens_per_step`); `None`: `minibatches` steps every iteration.
    pub fn step_pace(&self) -> Option<crate::engine::rl::update::StepPace> {
        use crate::engine::rl::update::{StepPace, MAX_STEPS_OWED};
        if self.steps_per_1k_tokens > 0.0 {
            Some(StepPace {
                tokens_per_step: 1000.0 / self.steps_per_1k_tokens,
                min_sequences: self.min_sequences_per_step,
                max_owed: f64::INFINITY,
            })
        } else if self.tokens_per_step > 0 {
            Some(StepPace {
                tokens_per_step: self.tokens_per_step as f64,
                min_sequences: self.min_sequences_per_step,
                max_owed: MAX_STEPS_OWED,
            })
        } else {
            None
        }
    }
}

/// `train.precision`: what the update computes in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Precision {
    #[default]
    Auto,
    F32,
    Bf16,
}

impl Precision {
    /// The dtype of the update's forward and backward on `device`.
    pub fn dtype(self, device: &candle_core::Device) -> candle_core::DType {
        match self {
            Precision::F32 => candle_core::DType::F32,
            Precision::Bf16 => candle_core::DType::BF16,
            Precision::Auto if device.is_cpu() => candle_core::DType::F32,
            Precision::Auto => candle_core::DType::BF16,
        }
    }
}
