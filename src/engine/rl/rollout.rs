//! Direct rollouts: sample whole completions for a set of problems and verify them.
use std::collections::HashMap;

use rand::Rng;

use crate::engine::policy::sampler::{Finish, Request, SampleStats, SamplingParams};
use crate::engine::policy::{Generator, Tokenizer};
use crate::engine::rl::interrupt::{ask, Check, Halt};
use crate::engine::task::{reward, verify, Problem, RewardKind, Rules, Verdict};

/// Rows per sampler call: large batches amortise the per-op overhead of tiny models.
pub const MAX_ROWS: usize = 256;

/// One sampled and verified completion.
#[derive(Clone, Debug)]
pub struct Trajectory {
    pub tokens: Vec<u32>,
    pub logprobs: Vec<f32>,
    pub entropies: Vec<f32>,
    pub finish: Finish,
    pub text: String,
    pub verdict: Verdict,
    pub reward: f32,
}

impl Trajectory {
    pub fn correct(&self) -> bool {
        self.verdict.is_correct()
    }
    /// Mean entropy over the trajectory's tokens.
    pub fn mean_entropy(&self) -> f32 {
        if self.entropies.is_empty() {
            0.0
        } else {
            self.entropies.iter().sum::<f32>() / self.entropies.len() as f32
        }
    }
}

/// The token ids of a problem's prompt: BOS then the prompt text.
pub fn prompt_tokens(tok: &Tokenizer, p: &Problem) -> Vec<u32> {
    tok.prompt_ids(&p.prompt())
}

/// The groups of a rollout call (one per problem) and what sampling them cost.
pub type Groups = (Vec<Vec<Trajectory>>, SampleStats);

/// Samples `n` completions of every problem and verifies them; `stop` is asked before
/// each sampler call.
#[allow(clippy::too_many_arguments)]
pub fn rollouts<R: Rng>(
    model: &dyn Generator,
    tok: &Tokenizer,
    problems: &[&Problem],
    n: usize,
    params: &SamplingParams,
    rules: &Rules,
    reward_kind: RewardKind,
    rng: &mut R,
    stop: &mut Check,
) -> Result<Groups, Halt> {
    let counts = vec![n; problems.len()];
    rollouts_n(
        model,
        tok,
        problems,
        &counts,
        params,
        rules,
        reward_kind,
        rng,
        stop,
    )
}

/// Samples `counts[i]` completions of problem `i` and verifies them; `stop` is asked
/// before each sampler call (of at most [`MAX_ROWS`] rows).
#[allow(clippy::too_many_arguments)]
pub fn rollouts_n<R: Rng>(
    model: &dyn Generator,
    tok: &Tokenizer,
    problems: &[&Problem],
    counts: &[usize],
    params: &SamplingParams,
    rules: &Rules,
    reward_kind: RewardKind,
    rng: &mut R,
    stop: &mut Check,
) -> Result<Groups, Halt> {
    let prompts: Vec<Vec<u32>> = problems.iter().map(|p| prompt_tokens(tok, p)).collect();
    let mut groups: Vec<Vec<Trajectory>> = counts.iter().map(|&n| Vec::with_capacity(n)).collect();
    let mut stats = SampleStats::default();
    let mut start = 0;
    while start < problems.len() {
        ask(stop)?;
        // As many problems as fit in MAX_ROWS rows (at least one).
        let mut end = start;
        let mut rows = 0;
        while end < problems.len() && (end == start || rows + counts[end] <= MAX_ROWS) {
            rows += counts[end];
            end += 1;
        }
        let requests: Vec<Request> = (start..end)
            .map(|i| Request {
                context: &prompts[i],
                cache: None,
                copies: counts[i],
                max_tokens: None,
            })
            .collect();
        let (completions, s) = model.generate(&requests, params, false, rng)?;
        stats.add(&s);
        for c in completions {
            let i = start + c.request;
            let text = tok.decode(&c.tokens);
            let verdict = verify(problems[i], &text, rules);
            let r = reward(reward_kind, &verdict, problems[i]);
            groups[i].push(Trajectory {
                tokens: c.tokens,
                logprobs: c.logprobs,
                entropies: c.entropies,
                finish: c.finish,
                text,
                verdict,
                reward: r,
            });
        }
        start = end;
    }
    Ok((groups, stats))
}

/// A sample repeats itself when one line occurs three or more times, or a chunk of 2 to
/// 12 characters recurs at least four times in a row.
pub fn is_repetitive(text: &str) -> bool {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for l in text.lines().filter(|l| !l.trim().is_empty()) {
        let c = counts.entry(l.trim()).or_default();
        *c += 1;
        if *c >= 3 {
            return true;
        }
    }
    let b = text.as_bytes();
    (2..=12).any(|w| {
        b.len() >= 4 * w
            && (0..=b.len() - 4 * w).any(|start| {
                let chunk = &b[start..start + w];
                (1..4).all(|k| &b[start + k * w..start + (k + 1) * w] == chunk)
            })
    })
}
