//! What a method's iteration produces (a [`Batch`] of training samples, records and
//! accounting), the context every group builder gets, and groups of independent samples
//! with an advantage rule of the method's choosing.
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::engine::policy::sampler::{SampleStats, SamplingParams};
use crate::engine::policy::{Qwen2, Tokenizer};
use crate::engine::rl::config::TrainConfig;
use crate::engine::rl::interrupt::{Check, Halt};
use crate::engine::rl::record::TreeRecord;
use crate::engine::rl::rollout::{is_repetitive, prompt_tokens, rollouts, Trajectory};
use crate::engine::rl::update::Sample;
use crate::engine::task::{Problem, Rules};

/// What a sampling phase produced for the update and for the metrics.
#[derive(Default)]
pub struct Batch {
    pub samples: Vec<Sample>,
    pub trees: Vec<TreeRecord>,
    pub outcomes: Vec<Outcome>,
    pub sampling: SampleStats,
    pub search: Option<SearchMetrics>,
    /// Problems of the batch with at least one correct trajectory.
    pub solved_problems: usize,
    /// Wall seconds spent turning samples or trees into rewards, advantages, training
    /// samples and records (the rest of the batch's time is sampling or search).
    pub scoring_seconds: f64,
}

/// One trajectory's result, for the metrics. Rewards are on the binary 0/1 scale for
/// searched trajectories (a tree's +-1 terminal values are the search's own math) and
/// the configured reward for sampled ones (binary, 0/1, by default).
pub struct Outcome {
    pub reward: f32,
    pub correct: bool,
    /// Mean exact entropy of the sampling distributions over the tokens (NaN if unknown,
    /// as for cached solutions).
    pub entropy: f64,
    /// Mean negative log-likelihood of the sampled tokens (NaN if unknown).
    pub nll: f64,
    pub tokens: usize,
}

impl Outcome {
    pub fn of(t: &Trajectory) -> Self {
        Self::new(
            t.reward,
            t.correct(),
            &t.logprobs,
            &t.entropies,
            t.tokens.len(),
        )
    }

    /// From a trajectory's parts: its reward, correctness, per-token log-probabilities
    /// and entropies (means are NaN when empty) and length.
    pub fn new(
        reward: f32,
        correct: bool,
        logprobs: &[f32],
        entropies: &[f32],
        tokens: usize,
    ) -> Self {
        let nan_if_empty = |v: &[f32]| {
            if v.is_empty() {
                f64::NAN
            } else {
                v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64
            }
        };
        Outcome {
            reward,
            correct,
            entropy: nan_if_empty(entropies),
            nll: -nan_if_empty(logprobs),
            tokens,
        }
    }
}

/// Tree-search accounting of an iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct SearchMetrics {
    pub trees: u64,
    /// Trees that recorded at least one correct trajectory.
    pub trees_solved: u64,
    pub expansions: u64,
    pub cap_events: u64,
    pub nodes: u64,
    /// Distinct tokens in the trees (prompt once, each node's step once).
    pub tree_tokens_distinct: u64,
    /// Tokens pushed through the model while searching, prefill included.
    pub search_tokens_forwarded: u64,
    /// Trajectories padded with direct rollouts.
    pub padded: u64,
    /// Record nodes the padding added (its lines, merged into identical siblings); none
    /// in stores written before padding was recorded line by line (then one per pad).
    pub pad_nodes: Option<u64>,
    /// Problems whose search was skipped thanks to the solution cache.
    pub cache_hits: u64,
    /// Problems whose solutions were offered to the cache this iteration.
    pub registrations: u64,
    /// Sampled steps merged into an identical sibling (`search.merge_siblings`).
    pub merged: u64,
    /// Nodes whose step the task judged invalid / forced (`search.step_check`).
    pub invalid_nodes: u64,
    pub forced_nodes: u64,
    /// Sum of |advantage| over the update's tokens from searched and cached groups, and
    /// the part of it from unsolved trees (no correct trajectory).
    pub advantage_mass: f64,
    pub unsolved_advantage_mass: f64,
    /// Search distillation: simulations run, and token positions of the prior-and-value
    /// scoring pass (compute beside the sampler's).
    pub simulations: u64,
    pub scoring_tokens: u64,
    /// Search distillation: distilled paths trained on, and the sums of their returns and
    /// of their nodes' advantages (`R - V(parent)`) over those nodes.
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub distilled_paths: u64,
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub return_sum: f64,
    #[serde(skip_serializing_if = "is_zero_u64")]
    pub advantage_nodes: u64,
    #[serde(skip_serializing_if = "is_zero_f64")]
    pub advantage_sum: f64,
}

impl SearchMetrics {
    pub fn add(&mut self, o: &SearchMetrics) {
        self.trees += o.trees;
        self.trees_solved += o.trees_solved;
        self.expansions += o.expansions;
        self.cap_events += o.cap_events;
        self.nodes += o.nodes;
        self.tree_tokens_distinct += o.tree_tokens_distinct;
        self.search_tokens_forwarded += o.search_tokens_forwarded;
        self.padded += o.padded;
        if let Some(n) = o.pad_nodes {
            *self.pad_nodes.get_or_insert(0) += n;
        }
        self.cache_hits += o.cache_hits;
        self.registrations += o.registrations;
        self.merged += o.merged;
        self.invalid_nodes += o.invalid_nodes;
        self.forced_nodes += o.forced_nodes;
        self.advantage_mass += o.advantage_mass;
        self.unsolved_advantage_mass += o.unsolved_advantage_mass;
        self.simulations += o.simulations;
        self.scoring_tokens += o.scoring_tokens;
        self.distilled_paths += o.distilled_paths;
        self.return_sum += o.return_sum;
        self.advantage_nodes += o.advantage_nodes;
        self.advantage_sum += o.advantage_sum;
    }

    /// Search distillation's mean return and mean advantage, when it trained on paths.
    pub fn distill_means(&self) -> Option<(f64, f64)> {
        (self.distilled_paths > 0).then(|| {
            (
                self.return_sum / self.distilled_paths as f64,
                self.advantage_sum / self.advantage_nodes.max(1) as f64,
            )
        })
    }

    /// Share of the update's advantage mass that unsolved trees contribute.
    pub fn unsolved_share(&self) -> f64 {
        if self.advantage_mass > 0.0 {
            self.unsolved_advantage_mass / self.advantage_mass
        } else {
            0.0
        }
    }
}

/// What every group builder needs.
pub struct GroupContext<'a, R: Rng> {
    /// The trainer's model (tree_distill's priors and values).
    pub model: &'a Qwen2,
    /// What samples: the candle sampler over `model`, or an inference engine.
    pub generator: &'a dyn crate::engine::policy::Generator,
    pub tok: &'a Tokenizer,
    pub rules: &'a Rules,
    /// The settings every method shares (temperature, lengths, reward).
    pub train: &'a TrainConfig,
    pub rng: &'a mut R,
    /// Asked before each sampler call (see [`crate::engine::rl::interrupt`]).
    pub stop: &'a mut Check<'a>,
}

impl<R: Rng> GroupContext<'_, R> {
    /// Whole-completion sampling at the training temperature.
    pub fn direct_params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.train.temperature,
            max_tokens: self.train.max_tokens,
            stop_at: None,
            eos: self.tok.eos(),
        }
    }
}

/// Whether the repetition filter (when on) drops a sample from training: a wrong sample
/// that repeats itself (DeepSearch section 7, used by every method that has it on).
pub fn filtered(repetition_filter: bool, t: &Trajectory) -> bool {
    repetition_filter && !t.correct() && is_repetitive(&t.text)
}

/// `group_size` independent samples per problem with the training reward, each weighted
/// by `advantages(group)`; zero-advantage and filtered samples are recorded, not trained.
pub fn sampled_batch<R: Rng>(
    ctx: &mut GroupContext<R>,
    problems: &[Problem],
    group_size: usize,
    repetition_filter: bool,
    advantages: &mut dyn FnMut(&[Trajectory]) -> Vec<f32>,
) -> Result<Batch, Halt> {
    let refs: Vec<&Problem> = problems.iter().collect();
    let params = ctx.direct_params();
    let (groups, sampling) = rollouts(
        ctx.generator,
        ctx.tok,
        &refs,
        group_size,
        &params,
        ctx.rules,
        ctx.train.reward,
        ctx.rng,
        ctx.stop,
    )?;
    let scoring = std::time::Instant::now();
    let mut samples = Vec::new();
    let mut trees = Vec::new();
    let solved_problems = groups
        .iter()
        .filter(|g| g.iter().any(|t| t.correct()))
        .count();
    for (p, group) in problems.iter().zip(&groups) {
        let prompt = prompt_tokens(ctx.tok, p);
        let mut record = TreeRecord::direct(&p.id, &p.prompt());
        for (traj, a) in group.iter().zip(advantages(group)) {
            record.push_sample(traj, a);
            // Zero advantage carries no gradient.
            if a != 0.0 && !traj.tokens.is_empty() && !filtered(repetition_filter, traj) {
                samples.push(Sample {
                    prompt: prompt.clone(),
                    response: traj.tokens.clone(),
                    advantages: vec![a; traj.tokens.len()],
                    returns: Vec::new(),
                });
            }
        }
        trees.push(record);
    }
    let outcomes = groups.iter().flatten().map(Outcome::of).collect();
    Ok(Batch {
        samples,
        trees,
        outcomes,
        sampling,
        search: None,
        solved_problems,
        scoring_seconds: scoring.elapsed().as_secs_f64(),
    })
}

fn is_zero_u64(x: &u64) -> bool {
    *x == 0
}

fn is_zero_f64(x: &f64) -> bool {
    *x == 0.0
}
