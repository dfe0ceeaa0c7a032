//! The plumbing under every training method, knowing none of them: rollouts and their
//! trajectories, groups and batches, interrupts, the policy objectives (clipped and
//! CISPO), the update step, the optimizer and tensor packing.
pub mod batch;
pub mod cispo;
pub mod config;
pub mod groups;
pub mod interrupt;
pub mod objective;
pub mod optim;
pub mod record;
pub mod replay;
pub mod rollout;
pub mod stream;
pub mod tree;
pub mod update;
pub mod value_fit;
