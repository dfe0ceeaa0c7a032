//! `grpo_hard`: GRPO on the problems it has not solved yet, the control for "training
//! on hard problems" (updating only on problems with no observed success raises pass@k,
//! arXiv 2606.15455). A problem leaves the hard set once one of this method's own
//! training samples solves it; the set is never refreshed from evaluation. The stream
//! passes solved problems over (all are drawn again once every problem is solved).
//! Groups are GRPO's (mean/std advantages, symmetric clip); a group with no success has
//! zero advantage under the binary reward, so the updates come from first successes.
use std::collections::BTreeSet;

use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::engine::methods::sampled::{advantages, Rule};
use crate::engine::methods::{state_key, Method, MethodError, Objective};
use crate::engine::rl::config::TrainConfig;
use crate::engine::rl::groups::{sampled_batch, Batch, GroupContext};
use crate::engine::rl::interrupt::Halt;
use crate::engine::rl::stream::ProblemStream;
use crate::engine::task::Problem;

/// The key of the solved set in `trainer_state.json`.
const SOLVED: &str = "grpo_hard_solved";

pub struct GrpoHard {
    group_size: usize,
    repetition_filter: bool,
    /// Training problems (indices) one of this method's samples has solved.
    solved: BTreeSet<usize>,
}

impl GrpoHard {
    pub fn new(train: &TrainConfig, repetition_filter: bool) -> Self {
        Self {
            group_size: train.group_size,
            repetition_filter,
            solved: BTreeSet::new(),
        }
    }

    /// Problems solved so far.
    pub fn solved(&self) -> usize {
        self.solved.len()
    }
}

impl Method for GrpoHard {
    fn draw(&mut self, stream: &mut ProblemStream, n: usize) -> Vec<usize> {
        let solved = &self.solved;
        stream.next_where(n, |i| !solved.contains(&i))
    }

    fn batch(
        &mut self,
        ctx: &mut GroupContext<ChaCha8Rng>,
        problems: &[Problem],
        idx: &[usize],
    ) -> Result<Batch, Halt> {
        let batch = sampled_batch(
            ctx,
            problems,
            self.group_size,
            self.repetition_filter,
            &mut |group| advantages(Rule::MeanStd, group),
        )?;
        for (record, &i) in batch.trees.iter().zip(idx) {
            if record.solved() {
                self.solved.insert(i);
            }
        }
        Ok(batch)
    }

    fn objective(&self, train: &TrainConfig) -> Objective {
        Objective::clipped(train, true)
    }

    fn save(&self) -> Map<String, Value> {
        let mut m = Map::new();
        m.insert(SOLVED.into(), serde_json::json!(self.solved));
        m
    }

    fn load(&mut self, state: &Map<String, Value>) -> Result<(), MethodError> {
        self.solved = state_key(state, SOLVED)?;
        Ok(())
    }
}
