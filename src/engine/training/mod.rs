//! Training: the trainer's loop, the update and its objective, the optimizer, the warm
//! start, held-out and test-time evaluation, resumable checkpoints, live control, and the
//! sink results go through.
pub mod batch;
pub mod cispo;
pub mod control;
pub mod evaluate;
pub mod groups;
pub mod interrupt;
pub mod metrics;
pub mod objective;
pub mod optim;
pub mod phases;
pub mod plateau;
pub mod resume;
pub mod rollout;
pub mod sink;
pub mod split;
pub mod test_time;
pub mod trainer;
pub mod update;
pub mod warm_start;
