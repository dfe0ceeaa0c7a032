//! Test-time strategies at equal token budgets: is search better than sampling more?
//!
//! For a budget `b` (in units of one sample's mean length L, measured on the same
//! problems), each strategy may spend about `b * L` generated tokens per problem:
//!
//! * `sample`: b independent samples; accuracy is mean@b (what one sample scores).
//! * `best_of_n`: the same b samples, answered two ways: the verifier picks a correct one
//!   if there is one (pass@b, an oracle selection), and majority vote over the claimed
//!   results (no verifier).
//! * `mcts`: the training search run at inference, recording up to b trajectories with
//!   its tree capped at b * L generated tokens and its width at min(width, max(b, 2)); the
//!   verifier gives its terminal values
//!   (as in training), so its `verifier` column is comparable with best_of_n's, and its
//!   `majority` column votes over the recorded trajectories' claimed results.
//!
//! * `puct`: search distillation's pUCT search with the policy's value head (a
//!   tree_distill run's), its generated tokens capped at b * L; `accuracy` is the
//!   verifier over every terminal it reached (comparable with best_of_n's), and
//!   `most_visited` the answer of the most-visited path, chosen without the verifier.
//!
//! * `best_of_n_checked`: sampling with the task's step judgement and nothing else: each
//!   sample is judged line by line as it is written and ends at its first invalid line,
//!   and new samples start while the allowance lasts; verifier pick and majority vote as
//!   best_of_n. The like-for-like baseline for `mcts` with step judgement.
//!
//! Every strategy draws from the evaluation seed, and the tokens each actually spent per
//! problem are reported beside its accuracy.
use std::collections::HashMap;

use candle_core::Result;
use rand::SeedableRng;
use serde::Serialize;

use crate::engine::methods::deepsearch::search::config::SearchConfig;
use crate::engine::methods::deepsearch::search::mcts::search;
use crate::engine::policy::sampler::SamplingParams;
use crate::engine::policy::{Generator, Qwen2, Tokenizer};
use crate::engine::rl::interrupt::{never, Halt};
use crate::engine::rl::rollout::rollouts;
use crate::engine::task::{task_of, verify, Problem, RewardKind, Rules, Task};
use crate::engine::training::checked_sampling::checked_samples;
use crate::engine::training::evaluate::EVAL_SEED;
use crate::engine::training::metrics::{cluster_bootstrap_ci, mean};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Strategy {
    Sample,
    BestOfN,
    Mcts,
    /// Search distillation's pUCT search with the policy's value head.
    Puct,
    /// Samples judged line by line as written, each ending at its first invalid line,
    /// new ones started while the allowance lasts (`checked_sampling`).
    BestOfNChecked,
}

/// A test-time strategy name arbor does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown strategy {0:?}; expected sample, best_of_n, best_of_n_checked, mcts or puct")]
pub struct UnknownStrategy(pub String);

impl std::str::FromStr for Strategy {
    type Err = UnknownStrategy;
    fn from_str(s: &str) -> std::result::Result<Self, UnknownStrategy> {
        match s.trim() {
            "sample" => Ok(Self::Sample),
            "best_of_n" => Ok(Self::BestOfN),
            "mcts" => Ok(Self::Mcts),
            "puct" => Ok(Self::Puct),
            "best_of_n_checked" => Ok(Self::BestOfNChecked),
            other => Err(UnknownStrategy(other.to_string())),
        }
    }
}

/// One strategy at one budget.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct StrategyResult {
    pub strategy: Strategy,
    pub budget: usize,
    /// The headline accuracy: mean@b for sample, the verifier's pick otherwise.
    pub accuracy: f64,
    pub accuracy_ci95: (f64, f64),
    /// Majority vote over claimed results (best_of_n, mcts).
    pub majority: Option<f64>,
    /// puct: the answer of the most-visited path (no verifier in the choice).
    pub most_visited: Option<f64>,
    /// Mean generated tokens per problem actually spent.
    pub tokens_per_problem: f64,
    /// The token allowance per problem (b * L).
    pub token_budget: f64,
    /// Whether the strategy stayed within 5% of its allowance; a row that did not is left
    /// out of the equal-budget comparison (its `overrun` says by how much, as a fraction).
    pub within_allowance: bool,
    pub overrun: f64,
    /// Per problem: the headline score (0/1, or mean@b for sample) and the tokens spent
    /// (the raw data behind the interval; written to the per-problem file).
    #[serde(skip)]
    pub per_problem: Vec<f64>,
    #[serde(skip)]
    pub per_problem_tokens: Vec<u64>,
}

/// The rows' allowance check: 5% over the allowance is the sampler's granularity.
pub const ALLOWANCE_SLACK: f64 = 0.05;

/// Majority vote: the index of a completion carrying the most common claimed result
/// (ties: the result seen first); None when no completion claims anything.
pub fn majority(task: &dyn Task, texts: &[&str]) -> Option<usize> {
    let mut count: HashMap<String, (usize, usize)> = HashMap::new();
    for (i, t) in texts.iter().enumerate() {
        if let Some(r) = task.claimed_answer(t) {
            let e = count.entry(r).or_insert((0, i));
            e.0 += 1;
        }
    }
    count
        .into_values()
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, first)| first)
}

#[allow(clippy::too_many_arguments)]
fn result(
    strategy: Strategy,
    budget: usize,
    per_problem: &[f64],
    clusters: &[u64],
    majority: Option<f64>,
    tokens: &[u64],
    token_budget: f64,
) -> StrategyResult {
    let spent = tokens.iter().sum::<u64>() as f64 / tokens.len().max(1) as f64;
    let overrun = (spent / token_budget.max(1e-9) - 1.0).max(0.0);
    StrategyResult {
        within_allowance: overrun <= ALLOWANCE_SLACK,
        overrun,
        per_problem: per_problem.to_vec(),
        per_problem_tokens: tokens.to_vec(),
        strategy,
        budget,
        accuracy: mean(per_problem),
        accuracy_ci95: cluster_bootstrap_ci(per_problem, clusters, EVAL_SEED),
        majority,
        most_visited: None,
        tokens_per_problem: spent,
        token_budget,
    }
}

/// What to compare.
pub struct TestTimeSettings<'a> {
    pub strategies: &'a [Strategy],
    pub budgets: &'a [usize],
    pub temperature: f32,
    pub max_tokens: usize,
    pub search: &'a SearchConfig,
    /// The `puct` strategy's search (its simulations are capped by the token budget).
    pub distill: &'a crate::engine::methods::tree_distill::TreeDistillConfig,
}

/// Runs every strategy at every budget on `problems`.
///
/// Sampling, best-of-N and `mcts` draw from `generator` (the candle sampler over `model`,
/// or an inference engine serving the same weights); `puct` needs the value head, which
/// only arbor's own `model` has.
#[allow(clippy::too_many_arguments)]
pub fn compare_strategies(
    model: &Qwen2,
    generator: &dyn Generator,
    tok: &Tokenizer,
    problems: &[Problem],
    rules: &Rules,
    s: &TestTimeSettings,
    progress: &mut dyn FnMut(&str),
) -> Result<Vec<StrategyResult>> {
    if s.strategies.contains(&Strategy::Puct) && !model.has_value_head() {
        candle_core::bail!(
            "the puct strategy needs a value head: evaluate a tree_distill run (its checkpoint \
             has value_head.safetensors); use mcts for search without one"
        );
    }
    let c = Ctx {
        model,
        generator,
        tok,
        problems,
        refs: problems.iter().collect(),
        rules,
        s,
        // Intervals resample number multisets.
        clusters: problems.iter().map(Problem::multiset_key).collect(),
        task: task_of(rules),
        params: SamplingParams {
            temperature: s.temperature,
            max_tokens: s.max_tokens,
            stop_at: None,
            eos: tok.eos(),
        },
    };
    // Sampling runs for every budget: it is two strategies, and the unit of the others.
    let (unit, sampled) = c.sample_every_budget(progress)?;
    let mut out = Vec::new();
    for &b in s.budgets {
        let token_budget = b as f64 * unit;
        for &strategy in s.strategies {
            out.push(match strategy {
                Strategy::Sample | Strategy::BestOfN => {
                    let (groups, per) = &sampled[&b];
                    c.of_samples(strategy, b, groups, per, token_budget)
                }
                Strategy::Mcts => c.mcts(b, token_budget, progress)?,
                Strategy::BestOfNChecked => c.best_of_n_checked(b, token_budget, progress)?,
                Strategy::Puct => c.puct(b, token_budget, progress)?,
            });
        }
    }
    Ok(out)
}

/// Independent samples per problem, and what each holds of tokens.
type Sampled = (Vec<Vec<crate::engine::rl::rollout::Trajectory>>, Vec<u64>);

/// What every strategy of one comparison shares.
struct Ctx<'a> {
    model: &'a Qwen2,
    generator: &'a dyn Generator,
    tok: &'a Tokenizer,
    problems: &'a [Problem],
    refs: Vec<&'a Problem>,
    rules: &'a Rules,
    s: &'a TestTimeSettings<'a>,
    clusters: Vec<u64>,
    task: Box<dyn Task>,
    params: SamplingParams,
}

impl Ctx<'_> {
    fn n(&self) -> f64 {
        self.problems.len().max(1) as f64
    }

    /// b samples per problem for every budget b, and one sample's mean length (the unit
    /// of every budget).
    fn sample_every_budget(
        &self,
        progress: &mut dyn FnMut(&str),
    ) -> Result<(f64, HashMap<usize, Sampled>)> {
        let mut unit: Option<f64> = None;
        let mut sampled = HashMap::new();
        for &b in self.s.budgets {
            progress(&format!("sampling {b} per problem"));
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(EVAL_SEED ^ b as u64);
            let (groups, stats) = rollouts(
                self.generator,
                self.tok,
                &self.refs,
                b,
                &self.params,
                self.rules,
                RewardKind::Binary,
                &mut rng,
                &mut never(),
            )
            .map_err(Halt::into_model)?;
            let per = stats.generated_tokens as f64 / self.n();
            unit.get_or_insert(per / b as f64);
            let spent = groups
                .iter()
                .map(|g| g.iter().map(|t| t.tokens.len() as u64).sum())
                .collect();
            sampled.insert(b, (groups, spent));
        }
        Ok((unit.unwrap_or(self.s.max_tokens as f64), sampled))
    }

    /// `sample` (mean@b) and `best_of_n` (the verifier's pick, and a majority vote) from
    /// the same samples.
    fn of_samples(
        &self,
        strategy: Strategy,
        b: usize,
        groups: &[Vec<crate::engine::rl::rollout::Trajectory>],
        per: &[u64],
        token_budget: f64,
    ) -> StrategyResult {
        if strategy == Strategy::Sample {
            let acc: Vec<f64> = groups
                .iter()
                .map(|g| g.iter().filter(|t| t.correct()).count() as f64 / b as f64)
                .collect();
            return result(strategy, b, &acc, &self.clusters, None, per, token_budget);
        }
        let any: Vec<f64> = groups
            .iter()
            .map(|g| f64::from(u8::from(g.iter().any(|t| t.correct()))))
            .collect();
        let vote: Vec<f64> = groups
            .iter()
            .map(|g| {
                let texts: Vec<&str> = g.iter().map(|t| t.text.as_str()).collect();
                f64::from(u8::from(
                    majority(self.task.as_ref(), &texts).is_some_and(|i| g[i].correct()),
                ))
            })
            .collect();
        result(
            strategy,
            b,
            &any,
            &self.clusters,
            Some(mean(&vote)),
            per,
            token_budget,
        )
    }

    /// The training search at inference, its tree capped at the allowance.
    fn mcts(
        &self,
        b: usize,
        token_budget: f64,
        progress: &mut dyn FnMut(&str),
    ) -> Result<StrategyResult> {
        progress(&format!("searching with {b} trajectories per problem"));
        let mut cfg = self.s.search.clone();
        cfg.n = b;
        // A small budget cannot pay for full-width expansions: the tree's width grows with
        // the budget (2 at b = 1, the configured width from b = width).
        cfg.width = cfg.width.min(b.max(2));
        cfg.max_tree_tokens = token_budget.ceil().max(1.0) as usize;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(EVAL_SEED ^ b as u64);
        let (results, _) = search(
            self.generator,
            self.tok,
            &self.refs,
            &cfg,
            self.s.temperature,
            self.rules,
            &mut rng,
            &mut never(),
        )
        .map_err(Halt::into_model)?;
        let mut solved = Vec::new();
        let mut vote = Vec::new();
        let mut tokens = Vec::new();
        for (r, p) in results.iter().zip(self.problems) {
            tokens.push(r.generated_tokens);
            let texts: Vec<String> = r
                .recorded
                .iter()
                .map(|&t| self.tok.decode(&r.tree.response(t)))
                .collect();
            let ok: Vec<bool> = r
                .recorded
                .iter()
                .map(|&t| r.tree.node(t).terminal.as_ref().is_some_and(|x| x.correct))
                .collect();
            solved.push(f64::from(u8::from(ok.iter().any(|&c| c))));
            let refs: Vec<&str> = texts.iter().map(|t| t.as_str()).collect();
            let v = majority(self.task.as_ref(), &refs)
                .is_some_and(|i| verify(p, &texts[i], self.rules).is_correct());
            vote.push(f64::from(u8::from(v)));
        }
        Ok(result(
            Strategy::Mcts,
            b,
            &solved,
            &self.clusters,
            Some(mean(&vote)),
            &tokens,
            token_budget,
        ))
    }

    /// Sampling with the task's step judgement (the search's, `search.step_check`) and
    /// nothing else, while the allowance lasts.
    fn best_of_n_checked(
        &self,
        b: usize,
        token_budget: f64,
        progress: &mut dyn FnMut(&str),
    ) -> Result<StrategyResult> {
        progress(&format!("step-judged sampling with {b} samples' tokens"));
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(EVAL_SEED ^ b as u64);
        let checked = checked_samples(
            self.generator,
            self.tok,
            &self.refs,
            self.rules,
            &self.params,
            self.tok.newline().filter(|_| self.s.search.step_check),
            token_budget,
            &mut rng,
        )?;
        let any: Vec<f64> = checked
            .iter()
            .map(|c| f64::from(u8::from(c.samples.iter().any(|x| x.correct))))
            .collect();
        let vote: Vec<f64> = checked
            .iter()
            .map(|c| {
                let texts: Vec<&str> = c.samples.iter().map(|x| x.text.as_str()).collect();
                f64::from(u8::from(
                    majority(self.task.as_ref(), &texts).is_some_and(|i| c.samples[i].correct),
                ))
            })
            .collect();
        let tokens: Vec<u64> = checked.iter().map(|c| c.tokens).collect();
        Ok(result(
            Strategy::BestOfNChecked,
            b,
            &any,
            &self.clusters,
            Some(mean(&vote)),
            &tokens,
            token_budget,
        ))
    }

    /// Search distillation's pUCT search with the run's value head.
    fn puct(
        &self,
        b: usize,
        token_budget: f64,
        progress: &mut dyn FnMut(&str),
    ) -> Result<StrategyResult> {
        progress(&format!("pUCT search with {b} samples' tokens per problem"));
        let mut cfg = self.s.distill.clone();
        // The token budget ends the search; simulations only bound it.
        cfg.max_tree_tokens = token_budget.ceil().max(1.0) as usize;
        cfg.simulations = cfg.simulations.max(8 * b);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(EVAL_SEED ^ b as u64);
        let (trees, _, _) = crate::engine::methods::tree_distill::run_search(
            self.model,
            self.tok,
            self.problems,
            self.rules,
            &cfg,
            &mut rng,
            &mut never(),
        )
        .map_err(Halt::into_model)?;
        let mut solved = Vec::new();
        let mut chosen = Vec::new();
        let mut tokens = Vec::new();
        for t in &trees {
            tokens.push(t.generated_tokens);
            solved.push(f64::from(u8::from(t.tree.has_correct_terminal())));
            let (path, at_terminal) =
                crate::engine::methods::tree_distill::target::most_visited_path(&t.tree);
            let ok = at_terminal
                && path
                    .last()
                    .is_some_and(|&e| t.tree.node(e).terminal.as_ref().is_some_and(|x| x.correct));
            chosen.push(f64::from(u8::from(ok)));
        }
        let mut r = result(
            Strategy::Puct,
            b,
            &solved,
            &self.clusters,
            None,
            &tokens,
            token_budget,
        );
        r.most_visited = Some(mean(&chosen));
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn majority_picks_the_most_common_claim_first_seen_on_ties() {
        let cd = task_of(&Rules::default());
        let t = cd.as_ref();
        assert_eq!(majority(t, &["1+1=2", "2*2=4", "3+1=4", "x"]), Some(1));
        assert_eq!(majority(t, &["1+1=2", "2*2=4"]), Some(0));
        assert_eq!(majority(t, &["nothing", "claimed"]), None);
        assert_eq!(majority(t, &[]), None);
        // Math votes over normalised boxed answers, not Countdown's `=` lines.
        let m = task_of(&Rules {
            task: crate::engine::task::TaskKind::Math,
            ..Rules::default()
        });
        let texts = ["x = 3 so \\boxed{4}", "\\boxed{5}", "y=1 \\boxed{ 5 }"];
        assert_eq!(majority(m.as_ref(), &texts), Some(1));
    }
}
