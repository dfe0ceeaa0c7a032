//! The computation, grouped by the stages of the loop: the task (`task/`: Countdown and
//! math behind one trait), the policy (`policy/`: model, tokenizers, sampler,
//! checkpoints), DeepSearch (`deepsearch/`: search, Tree-GRPO, adaptive training) and
//! training (`training/`: trainer, update, objective, optimizer, warm start, evaluation,
//! resume, control). No terminal, no sled types: results go through `training::sink`.
pub mod config;
pub mod deepsearch;
pub mod error;
pub mod policy;
pub mod task;
pub mod training;
pub mod tree_distill;

pub use error::EngineError;
// Short paths for the stages' modules.
pub use deepsearch::{adaptive, rounds, search, tree_grpo};
pub use task::{countdown, math};
pub use training::{
    batch, cispo, control, evaluate, groups, interrupt, metrics, objective, optim, phases, plateau,
    resume, rollout, sink, split, test_time, trainer, update, warm_start,
};
