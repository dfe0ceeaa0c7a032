//! AlphaZero-style search distillation, as the Countdown write-up "Tree Search
//! Distillation for Language Models using PPO" describes and releases it: a pUCT search
//! over reasoning steps with priors from the policy and leaf values from a value head,
//! then the most-visited path trained with the CISPO loss (advantage `R - V(s_t)`), the
//! value head's squared error and a k3 KL to the initial policy.
//!
//! `puct.rs` selection, `scoring.rs` the prior and value pass, `search.rs` the batched
//! simulations, `target.rs` the most-visited path; this file turns trees into a training
//! batch.
pub mod puct;
pub mod replay;
pub mod scoring;
pub mod search;
pub mod target;

use std::collections::HashMap;

use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::engine::policy::sampler::SampleStats;
use crate::engine::rl::groups::{Batch, GroupContext, Outcome, SearchMetrics};
use crate::engine::rl::interrupt::{Check, Halt};
use crate::engine::rl::rollout::prompt_tokens;
use crate::engine::rl::update::Sample;
use crate::engine::task::{reward, task_of, verify, Problem, RewardKind, Rules};
use search::DistillJudge;

use crate::engine::methods::{Method, MethodError, Objective, ValuePrefit};
use crate::engine::policy::Tokenizer;
use crate::engine::rl::config::TrainConfig;
use crate::engine::rl::interrupt::Phase;
use crate::engine::rl::update::PolicyObjective;
use rand_chacha::ChaCha8Rng;

/// How a simulation picks among siblings.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistillSelection {
    /// `Q + c_puct P sqrt(N(s)) / (1 + N(s, a))` (the write-up).
    #[default]
    Puct,
    /// Local UCT without a prior: `Q + c sqrt(ln N(s) / N(s, a))`.
    Uct,
}

/// The reward terminals back up and the distilled path is trained towards.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DistillReward {
    /// Countdown's distance reward `1 - 2 min(|y - T| / T, 1)`, -0.9 invalid, -1 no
    /// answer (the write-up's training reward).
    #[default]
    Dense,
    /// 1 correct, 0 otherwise.
    Binary,
}

/// `[tree_distill]`: search distillation's settings (write-up defaults).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TreeDistillConfig {
    /// Simulations per tree. Default 16: a tree then costs about what a DeepSearch tree
    /// costs on the default4 preset (measured: README "Search distillation").
    pub simulations: usize,
    /// Children sampled per expansion, K (write-up: 4).
    pub width: usize,
    /// Exploration constant (write-up: 0.5).
    pub c_puct: f64,
    /// Sampling temperature of expansions (write-up: 0.8).
    pub temperature: f32,
    /// puct (default) or uct (no prior).
    pub selection: DistillSelection,
    /// dense (default, the write-up's training reward) or binary.
    pub reward: DistillReward,
    /// Reward of a distilled path that ends before a terminal. Default: what a wrong
    /// answer scores under `reward` (0 under binary; -1, no answer, under dense).
    pub unfinished_reward: Option<f64>,
    /// Most tokens in one step (a line). Default 24.
    pub step_max_tokens: usize,
    /// Deepest step. Default 16.
    pub max_depth: usize,
    /// Judge each step with the task: an invalid step ends the path, a line with one
    /// legal continuation is expanded once. The write-up has no step judgement. Default
    /// true, as DeepSearch.
    pub step_check: bool,
    /// Merge identical siblings into one child with a multiplicity (its prior their summed
    /// probability). Default true, as DeepSearch.
    pub merge_siblings: bool,
    /// Most tokens generated per tree (0: no cap; test-time `puct` sets it to the budget).
    /// Default 0.
    pub max_tree_tokens: usize,
    /// CISPO's cap on the importance weight. Default 5.
    pub eps_high: f64,
    /// Coefficient of the k3 KL to the initial policy. Default 0.05.
    pub kl_coef: f64,
    /// Weight of the value head's squared error. Default 1.
    pub value_coef: f64,
    /// The value head's own learning rate, constant (no warm-up). Default: `train.lr`.
    pub value_lr: Option<f64>,
    /// Problems whose samples fit the fresh value head before RL (a quarter of them held
    /// out to measure the fit); 0: no fit, the head starts random (the write-up).
    /// Default 64.
    pub prefit_problems: usize,
    /// Completions sampled per problem for that fit (at `temperature`). Default 4.
    pub prefit_samples: usize,
    /// Steps of 32 sequences the fit takes (the head alone, at `value_lr`). Default 200.
    pub prefit_steps: usize,
}

impl Default for TreeDistillConfig {
    fn default() -> Self {
        Self {
            simulations: 16,
            width: 4,
            c_puct: 0.5,
            temperature: 0.8,
            selection: DistillSelection::Puct,
            reward: DistillReward::Dense,
            unfinished_reward: None,
            step_max_tokens: 24,
            max_depth: 16,
            step_check: true,
            merge_siblings: true,
            max_tree_tokens: 0,
            eps_high: 5.0,
            kl_coef: 0.05,
            value_coef: 1.0,
            value_lr: None,
            prefit_problems: 64,
            prefit_samples: 4,
            prefit_steps: 200,
        }
    }
}

impl TreeDistillConfig {
    /// The return of a path that ends before a terminal.
    pub fn unfinished(&self) -> f64 {
        self.unfinished_reward.unwrap_or(match self.reward {
            DistillReward::Binary => 0.0,
            DistillReward::Dense => -1.0,
        })
    }

    pub fn reward_kind(&self) -> RewardKind {
        match self.reward {
            DistillReward::Dense => RewardKind::Dense,
            DistillReward::Binary => RewardKind::Binary,
        }
    }
}

/// Searches one tree per problem with the task's verifier and step judgement.
pub fn run_search<R: Rng>(
    model: &crate::engine::policy::Qwen2,
    tok: &crate::engine::policy::Tokenizer,
    problems: &[Problem],
    rules: &Rules,
    cfg: &TreeDistillConfig,
    rng: &mut R,
    stop: &mut Check,
) -> Result<(Vec<search::DistillTree>, SampleStats, scoring::ScoringStats), Halt> {
    let task = task_of(rules);
    let kind = cfg.reward_kind();
    let prompts: Vec<Vec<u32>> = problems.iter().map(|p| prompt_tokens(tok, p)).collect();
    // One closure type per map, so no boxing: the judges borrow them.
    let rewards: Vec<_> = problems
        .iter()
        .map(|p| {
            move |text: &str| {
                let v = verify(p, text, rules);
                let r = reward(kind, &v, p) as f64;
                (r, v.is_correct(), v.reason.to_string())
            }
        })
        .collect();
    let task = &task;
    let steps: Vec<_> = problems
        .iter()
        .map(|p| move |text: &str| task.judge_step(p, text))
        .collect();
    let judges: Vec<DistillJudge> = rewards
        .iter()
        .zip(&steps)
        .map(|(r, s)| DistillJudge { reward: r, step: s })
        .collect();
    search::search(model, model, tok, &prompts, &judges, cfg, rng, stop)
}

/// tree_distill: one searched tree per problem, its most-visited path trained on.
pub fn distill_batch<R: Rng>(
    ctx: &mut GroupContext<R>,
    cfg: &TreeDistillConfig,
    problems: &[Problem],
) -> Result<Batch, Halt> {
    let (trees, sampling, scoring) = run_search(
        ctx.model, ctx.tok, problems, ctx.rules, cfg, ctx.rng, ctx.stop,
    )?;
    let mut m = SearchMetrics {
        scoring_tokens: scoring.tokens,
        ..SearchMetrics::default()
    };
    let mut batch = Batch {
        sampling,
        // The prior-and-value pass is this method's scoring.
        scoring_seconds: scoring.seconds,
        ..Batch::default()
    };
    for (p, mut t) in problems.iter().zip(trees) {
        let prompt = t.tree.prompt.clone();
        let tree = &mut t.tree;
        let (path, at_terminal) = target::most_visited_path(tree);
        let solved = tree.has_correct_terminal();
        m.trees += 1;
        m.trees_solved += solved as u64;
        batch.solved_problems += solved as usize;
        m.expansions += t.expansions as u64;
        m.simulations += t.simulations as u64;
        m.cap_events += t.cap_event as u64;
        m.nodes += tree.len() as u64;
        m.tree_tokens_distinct += tree.distinct_tokens();
        let end = path.last().copied();
        let (ret, correct) = match end.and_then(|e| tree.node(e).terminal.as_ref()) {
            Some(term) if at_terminal => (term.value, term.correct),
            _ => (cfg.unfinished(), false),
        };
        let root = tree.root;
        let mut advantages = HashMap::new();
        for &i in &path {
            tree.node_mut(i).distilled = true;
            let parent = tree.parent(i).unwrap_or(root);
            let v = tree.node(parent).value.unwrap_or(0.0);
            advantages.insert(i.index() as u32, (ret - v) as f32);
        }
        tree.node_mut(root).distilled = true;
        let response = end.map(|e| tree.response(e)).unwrap_or_default();
        let logprobs: Vec<f32> = path
            .iter()
            .flat_map(|&i| tree.node(i).logprobs.clone())
            .collect();
        let entropies: Vec<f32> = path
            .iter()
            .flat_map(|&i| tree.node(i).entropies.clone())
            .collect();
        batch.outcomes.push(Outcome::new(
            if correct { 1.0 } else { 0.0 },
            correct,
            &logprobs,
            &entropies,
            response.len(),
        ));
        batch.trees.push(search::distill_record(
            &p.id,
            &p.prompt(),
            tree,
            t.expansions,
            t.cap_event,
            &t.log,
            &advantages,
        ));
        if !response.is_empty() {
            m.distilled_paths += 1;
            m.return_sum += ret;
            m.advantage_nodes += advantages.len() as u64;
            m.advantage_sum += advantages.values().map(|&a| a as f64).sum::<f64>();
            let mass: f64 = advantages.values().map(|a| a.abs() as f64).sum();
            m.advantage_mass += mass;
            if !solved {
                m.unsolved_advantage_mass += mass;
            }
            batch.samples.push(Sample {
                prompt,
                returns: vec![ret as f32; response.len()],
                response,
                advantages: Vec::new(),
            });
        }
    }
    m.search_tokens_forwarded = batch.sampling.forwarded_tokens;
    batch.search = Some(m);
    Ok(batch)
}

/// Search distillation as a [`Method`]: pUCT search with the value head, the most-visited
/// path trained with the CISPO loss, a k3 KL to the initial policy.
pub struct TreeDistill {
    cfg: TreeDistillConfig,
}

impl TreeDistill {
    pub fn new(cfg: &TreeDistillConfig) -> Self {
        Self { cfg: cfg.clone() }
    }
}

impl Method for TreeDistill {
    fn phase(&self) -> Phase {
        Phase::Search
    }

    fn check(&self, _tok: &Tokenizer, engine: bool) -> Result<(), MethodError> {
        if engine {
            return Err(MethodError(
                "tree_distill searches with the trainer's own model (its priors and the value \
                 head come from it), so it cannot sample on an inference engine: remove \
                 [generator] (or set generator.kind = \"candle\")"
                    .into(),
            ));
        }
        Ok(())
    }

    fn value_head(&self) -> bool {
        true
    }

    fn value_lr(&self) -> Option<f64> {
        self.cfg.value_lr
    }

    fn value_prefit(&self) -> Option<ValuePrefit> {
        let c = &self.cfg;
        (c.prefit_problems > 0 && c.prefit_samples > 0 && c.prefit_steps > 0).then_some(
            ValuePrefit {
                problems: c.prefit_problems,
                samples: c.prefit_samples,
                steps: c.prefit_steps,
                lr: c.value_lr,
                temperature: c.temperature,
                reward: c.reward_kind(),
            },
        )
    }

    fn batch(
        &mut self,
        ctx: &mut GroupContext<ChaCha8Rng>,
        problems: &[Problem],
        _idx: &[usize],
    ) -> Result<Batch, Halt> {
        distill_batch(ctx, &self.cfg, problems)
    }

    fn objective(&self, _train: &TrainConfig) -> Objective {
        Objective {
            policy: PolicyObjective::Cispo {
                eps_high: self.cfg.eps_high,
            },
            kl_coef: self.cfg.kl_coef,
            value_coef: self.cfg.value_coef,
        }
    }
}

#[cfg(test)]
mod method_tests {
    use super::*;

    /// Its search needs the trainer's own model: an inference engine is refused at the
    /// start, naming the setting, never silently bypassed.
    #[test]
    fn an_inference_engine_is_refused_at_start_naming_the_setting() {
        let m = TreeDistill::new(&TreeDistillConfig::default());
        let tok = Tokenizer::default();
        assert!(m.check(&tok, false).is_ok());
        let e = m.check(&tok, true).unwrap_err().to_string();
        assert!(
            e.contains("[generator]") && e.contains("tree_distill"),
            "{e}"
        );
    }
}
