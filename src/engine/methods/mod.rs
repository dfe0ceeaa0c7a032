//! Training methods, each behind [`Method`]: what one iteration of the method does.
//!
//! The loop (`training/`) draws problems, hands them to the method, and trains the batch
//! it returns with the objective it names; it knows no method. A method is one file or
//! folder here plus one line in `training::registry`, which builds it from its own config
//! section.
//!
//! * `sampled`: grpo, dapo, best_of_n and cispo (independent samples, an advantage rule);
//! * `grpo_hard`: GRPO on the problems its own samples have not solved yet;
//! * `passk`: GRPO with the analytic pass@k advantage;
//! * `deepsearch/`: MCTS in the loop with Tree-GRPO and adaptive training;
//! * `tree_distill/`: AlphaZero-style search distillation;
//! * `treerl`: TreeRL's entropy-guided forking (EPTree).
pub mod deepsearch;
pub mod grpo_hard;
pub mod passk;
pub mod sampled;
pub mod tree_distill;
pub mod treerl;

use rand_chacha::ChaCha8Rng;
use serde_json::{Map, Value};

use crate::engine::policy::{Generator, Tokenizer};
use crate::engine::rl::config::TrainConfig;
use crate::engine::rl::groups::{Batch, GroupContext};
use crate::engine::rl::interrupt::{Check, Halt, Phase};
use crate::engine::rl::stream::ProblemStream;
use crate::engine::rl::update::PolicyObjective;
use crate::engine::task::{Problem, Rules};

/// How a method's batch is trained.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Objective {
    pub policy: PolicyObjective,
    /// Weight of the k3 KL to the run's initial policy (0: none, and no reference kept).
    pub kl_coef: f64,
    /// Weight of the value head's squared error (methods with a value head).
    pub value_coef: f64,
}

/// What a method may use before its iteration draws problems (DeepSearch's round start).
pub struct Prelude<'a> {
    /// The iteration about to run (1-based).
    pub iteration: u64,
    pub train: &'a TrainConfig,
    pub problems: &'a [Problem],
    pub rules: &'a Rules,
    pub generator: &'a dyn Generator,
    pub tok: &'a Tokenizer,
    pub stream: &'a mut ProblemStream,
    pub rng: &'a mut ChaCha8Rng,
    pub stop: &'a mut Check<'a>,
}

/// What a method's round start did (adaptive training's filtering).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoundStart {
    /// Generated tokens spent (charged to the run's budget).
    pub tokens: u64,
    pub seconds: f64,
    /// Filtering was skipped: the precheck would have kept too many problems.
    pub skipped: bool,
    pub round: u64,
    pub hard_set_size: usize,
    pub cache_size: usize,
}

/// How a method's value head is fitted before RL: `samples` completions of each of
/// `problems` training problems, a quarter of the problems held out to measure the fit,
/// `steps` steps of the head alone at `lr` (`None`: the policy's).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ValuePrefit {
    pub problems: usize,
    pub samples: usize,
    pub steps: usize,
    pub lr: Option<f64>,
    pub temperature: f32,
    pub reward: crate::engine::task::RewardKind,
}

/// Why a method cannot run with the settings given.
#[derive(Debug, thiserror::Error, PartialEq)]
#[error("{0}")]
pub struct MethodError(pub String);

/// One training method: what an iteration does between drawing problems and the update.
pub trait Method: Send {
    /// The phase its batch is produced in (shown to the user; where a stop can land).
    fn phase(&self) -> Phase {
        Phase::Sample
    }

    /// Refuses settings the method cannot run with (a tokenizer without the step
    /// delimiter it needs, an inference engine it cannot sample on).
    fn check(&self, _tok: &Tokenizer, _engine: bool) -> Result<(), MethodError> {
        Ok(())
    }

    /// Whether the policy needs a value head (it joins the optimizer and checkpoints).
    fn value_head(&self) -> bool {
        false
    }

    /// The value head's own learning rate, constant (`None`: the policy's).
    fn value_lr(&self) -> Option<f64> {
        None
    }

    /// A fit of the value head on the starting policy's own samples before the first
    /// iteration (`None`: no fit).
    fn value_prefit(&self) -> Option<ValuePrefit> {
        None
    }

    /// Before the iteration draws problems: DeepSearch starts its rounds here.
    fn prelude(&mut self, _ctx: Prelude) -> Result<Option<RoundStart>, Halt> {
        Ok(None)
    }

    /// The iteration's training problems (indices into the training split).
    fn draw(&mut self, stream: &mut ProblemStream, n: usize) -> Vec<usize> {
        stream.next(n)
    }

    /// The iteration's batch for `problems` (`idx[i]` is `problems[i]`'s index).
    fn batch(
        &mut self,
        ctx: &mut GroupContext<ChaCha8Rng>,
        problems: &[Problem],
        idx: &[usize],
    ) -> Result<Batch, Halt>;

    /// How the batch is trained, under the shared settings.
    fn objective(&self, train: &TrainConfig) -> Objective;

    /// The method's own state between iterations (for checkpoints and rewinds), as
    /// top-level keys of `trainer_state.json`.
    fn save(&self) -> Map<String, Value> {
        Map::new()
    }

    /// Restores what [`Method::save`] wrote (missing keys: the state of a fresh run).
    fn load(&mut self, _state: &Map<String, Value>) -> Result<(), MethodError> {
        Ok(())
    }
}

/// Reads a key of a method's saved state, its default when absent.
pub fn state_key<T: serde::de::DeserializeOwned + Default>(
    state: &Map<String, Value>,
    key: &str,
) -> Result<T, MethodError> {
    match state.get(key) {
        None | Some(Value::Null) => Ok(T::default()),
        Some(v) => serde_json::from_value(v.clone())
            .map_err(|e| MethodError(format!("trainer_state.json: key {key:?}: {e}"))),
    }
}

impl Objective {
    /// The clipped objective with its upper side at `clip_high` (dapo, deepsearch,
    /// treerl) or, for GRPO's symmetric clip, at `clip_low`; no KL, no value head.
    pub fn clipped(train: &TrainConfig, symmetric: bool) -> Self {
        Objective {
            policy: PolicyObjective::Clipped(crate::engine::rl::objective::Clip {
                low: train.clip_low,
                high: if symmetric {
                    train.clip_low
                } else {
                    train.clip_high
                },
                dual: (train.dual_clip > 0.0).then_some(train.dual_clip),
            }),
            kl_coef: 0.0,
            value_coef: 0.0,
        }
    }
}
