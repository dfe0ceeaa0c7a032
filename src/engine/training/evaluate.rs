//! Held-out evaluation: k samples per test problem, no search.
use rand::SeedableRng;

use crate::engine::policy::sampler::{SampleStats, SamplingParams};
use crate::engine::policy::{Generator, Tokenizer};
use crate::engine::rl::interrupt::{Check, Halt};
use crate::engine::rl::rollout::rollouts;
use crate::engine::task::{Problem, RewardKind, Rules};
use crate::engine::training::metrics::{summarise, EvalResult};

/// Every evaluation draws from this seed, so two evaluations of the same weights agree and
/// before/after comparisons share their sampling noise.
pub const EVAL_SEED: u64 = 0x5eed_e7a1;

/// How to evaluate.
#[derive(Clone, Copy, Debug)]
pub struct EvalSettings {
    /// Samples per problem.
    pub k: usize,
    pub temperature: f32,
    pub max_tokens: usize,
}

/// Evaluates the policy behind `model` (the candle sampler or an engine) on `problems` with `k` samples each at `temperature`; `stop` is
/// asked before each sampler call, and an interrupted evaluation has no result.
pub fn evaluate(
    model: &dyn Generator,
    tok: &Tokenizer,
    problems: &[Problem],
    settings: EvalSettings,
    rules: &Rules,
    progress: &mut dyn FnMut(u64, u64),
    stop: &mut Check,
) -> Result<(EvalResult, SampleStats), Halt> {
    let EvalSettings {
        k,
        temperature,
        max_tokens,
    } = settings;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(EVAL_SEED);
    let params = SamplingParams {
        temperature,
        max_tokens,
        stop_at: None,
        eos: tok.eos(),
    };
    let mut correct = Vec::with_capacity(problems.len());
    let mut stats = SampleStats::default();
    let chunk = (crate::engine::rl::rollout::MAX_ROWS / k.max(1)).max(1) * 4;
    for (ci, part) in problems.chunks(chunk).enumerate() {
        let refs: Vec<&Problem> = part.iter().collect();
        let (groups, s) = rollouts(
            model,
            tok,
            &refs,
            k,
            &params,
            rules,
            RewardKind::Binary,
            &mut rng,
            stop,
        )?;
        stats.add(&s);
        correct.extend(
            groups
                .iter()
                .map(|g| g.iter().filter(|t| t.correct()).count()),
        );
        progress(
            ((ci + 1) * chunk).min(problems.len()) as u64,
            problems.len() as u64,
        );
    }
    let protocol = format!(
        "mean@{k} and unbiased pass@{k}, {k} samples per problem at temperature {temperature}, no search, binary reward; 95% intervals resample number multisets"
    );
    let clusters: Vec<u64> = problems.iter().map(Problem::multiset_key).collect();
    Ok((
        summarise(&correct, k, protocol, EVAL_SEED, &clusters),
        stats,
    ))
}
