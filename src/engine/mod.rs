//! The computation, in layers that depend one way (a test keeps them so):
//! `task/` (Countdown and math behind one trait) <- `policy/` (model, tokenizers,
//! sampler, generators, checkpoints) <- `rl/` (rollouts, groups, objectives, the update,
//! the optimizer: knows no method) <- `methods/` (one file or folder per training method
//! behind `Method`) <- `training/` (the loop, evaluation, resume, control, config).
//! No terminal, no sled types: results go through `training::sink`.
pub mod methods;
pub mod policy;
pub mod rl;
pub mod task;
pub mod training;
