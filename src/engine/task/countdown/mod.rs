//! Countdown, arbor's default task: reach a target from a few numbers with
//! the four operations and parentheses. Generation, exact solving, leak-free splits, a
//! parsing verifier with reasons, step judgements, and JSONL files. Its problems are
//! [`crate::engine::task::Problem`]s whose spec is an [`Instance`].
pub mod data;
pub mod generator;
pub mod held_out;
pub mod preset;
pub mod problem;
pub mod rational;
pub mod rules;
pub mod solver;
pub mod step;
pub mod trace;
pub mod verifier;

#[cfg(test)]
mod properties;

pub use data::{load_jsonl, BadNumbers};
pub use generator::{generate, GenerateError, Split};
pub use held_out::{generate_held_out, HeldOutSplit};
pub use preset::{Preset, PresetError, TargetChoice};
pub use problem::{problem, Instance};
pub use rational::Rational;
pub use rules::{Rules, UseRule};
pub use solver::{solve, Shape, SolutionInfo, Solutions};
pub use trace::random_trace;
pub use verifier::{verify, Reason, Verdict};
