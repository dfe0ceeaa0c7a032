//! Training: the trainer's loop, the run's configuration and errors, the warm start,
//! held-out and test-time evaluation, resumable checkpoints, live control, and the sink
//! results go through.
pub mod checked_sampling;
pub mod config;
pub mod control;
pub mod directives;
pub mod error;
pub mod evaluate;
pub mod iteration;
pub mod metrics;
pub mod phases;
pub mod plateau;
pub mod records;
pub mod registry;
pub mod resume;
pub mod run;
pub mod sink;
pub mod split;
pub mod test_time;
pub mod trainer;
pub mod value_prefit;
pub mod warm_start;
