//! The computation: task, policy, search, objective, trainer. No terminal, no sled types.
pub mod adaptive;
pub mod batch;
pub mod config;
pub mod control;
pub mod deepsearch;
pub mod error;
pub mod evaluate;
pub mod groups;
pub mod metrics;
pub mod objective;
pub mod optim;
pub mod plateau;
pub mod policy;
pub mod resume;
pub mod rollout;
pub mod rounds;
pub mod search;
pub mod sink;
pub mod split;
pub mod task;
pub mod test_time;
pub mod trainer;
pub mod tree_grpo;
pub mod update;
pub mod warm_start;

pub use error::EngineError;
/// The tasks are peers under `task/`; these paths stay short.
pub use task::{countdown, math};
