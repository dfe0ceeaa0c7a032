//! The training loop: warm start, then iterations of sample -> score -> update, with
//! held-out evaluations, commits and checkpoints reported to a [`Sink`].
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::config::{Method, RunConfig};
use super::countdown::Problem;
use super::countdown::RewardKind;
use super::error::EngineError;
use super::evaluate::{evaluate, EvalSettings};
use super::metrics::EvalResult;
use super::objective::{group_advantages, AdvantageNorm, Clip};
use super::optim::{AdamW, AdamWConfig};
use super::policy::checkpoint::{weights_from_bytes, weights_to_bytes};
use super::policy::sampler::{SampleStats, SamplingParams};
use super::policy::tokenizer::EOS;
use super::policy::Qwen2;
use super::policy::{CharTokenizer, Policy, PolicyConfig};
use super::rollout::{prompt_tokens, rollouts, rollouts_n, Trajectory};
use super::search::mcts::search;
use super::search::record::TreeRecord;
use super::sink::{Phase, Sink};
use super::split::{fnv1a, RunData};
use super::tree_grpo::{group_token_advantages, ScoreSettings, ScoredPath};
use super::update::{policy_update, Sample, UpdateSettings, UpdateStats};
use super::warm_start::warm_start;

/// What a sampling phase produced for the update and for the metrics.
struct Batch {
    samples: Vec<Sample>,
    trees: Vec<TreeRecord>,
    outcomes: Vec<Outcome>,
    sampling: SampleStats,
    search: Option<SearchMetrics>,
}

/// One trajectory's result, for the metrics.
struct Outcome {
    reward: f32,
    correct: bool,
    entropy: f64,
    tokens: usize,
}

impl Outcome {
    fn of(t: &Trajectory) -> Self {
        Outcome {
            reward: t.reward,
            correct: t.correct(),
            entropy: t.mean_entropy() as f64,
            tokens: t.tokens.len(),
        }
    }
}

/// Tree-search accounting of an iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
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
    /// Problems whose search was skipped thanks to the solution cache.
    pub cache_hits: u64,
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
        self.cache_hits += o.cache_hits;
    }
}

/// Wall seconds per phase of an iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSeconds {
    pub sample: f64,
    pub update: f64,
    pub eval: f64,
}

/// What one iteration did; committed to the store.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct IterationMetrics {
    pub iteration: u64,
    pub method: String,
    pub problems: usize,
    /// Mean training reward of the iteration's samples.
    pub train_reward: f64,
    /// Fraction of the iteration's samples that were correct.
    pub train_accuracy: f64,
    /// Mean per-token entropy of the samples.
    pub mean_entropy: f64,
    /// Mean response length in tokens.
    pub mean_response_tokens: f64,
    pub update: UpdateStats,
    pub lr: f64,
    pub temperature: f32,
    /// Compute of this iteration's sampling (evaluation excluded).
    pub sampling: SampleStats,
    /// Tree-search accounting (deepsearch only).
    pub search: Option<SearchMetrics>,
    /// Generated tokens since the run began (evaluation excluded).
    pub cumulative_generated_tokens: u64,
    pub seconds: PhaseSeconds,
    pub eval: Option<EvalResult>,
    pub unix_time: u64,
}

/// The run's closing summary (the JSON line of `arbor train`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub run: String,
    pub method: String,
    pub seed: u64,
    pub iterations: u64,
    pub generated_tokens: u64,
    pub wall_seconds: f64,
    pub eval_start: EvalResult,
    pub eval_end: EvalResult,
    /// "iterations" or "budget".
    pub stopped_by: String,
    pub warm_start: String,
    pub parameters: usize,
    /// Tokens pushed through the model while searching, prefill included.
    pub search_tokens_forwarded: u64,
    /// Distinct tokens in the search trees.
    pub tree_tokens_distinct: u64,
    pub expansions: u64,
    /// Problems whose search was skipped because the solution cache knew an answer.
    pub cache_hits: u64,
    /// Trees that hit a safety cap and were padded with direct rollouts.
    pub cap_events: u64,
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// The policy architecture a run config asks for.
pub fn policy_config(cfg: &RunConfig, tok: &CharTokenizer) -> PolicyConfig {
    let mut p = PolicyConfig::tiny(tok.vocab_size(), super::policy::tokenizer::BOS, EOS);
    p.hidden_size = cfg.policy.hidden_size;
    p.intermediate_size = cfg.policy.intermediate_size;
    p.num_hidden_layers = cfg.policy.num_hidden_layers;
    p.num_attention_heads = cfg.policy.num_attention_heads;
    p.num_key_value_heads = cfg.policy.num_key_value_heads;
    p.max_position_embeddings = cfg.policy.max_position_embeddings;
    p
}

/// Key of the warm start a config leads to: same architecture, warm-start settings and
/// training problems give the same weights, so runs share it.
pub fn warm_start_key(cfg: &RunConfig, pcfg: &PolicyConfig, data: &RunData) -> String {
    let problems: Vec<_> = data.train.iter().map(|p| p.key()).collect();
    let desc = serde_json::json!({
        "policy": pcfg,
        "warm_start": cfg.warm_start,
        "preset": data.preset,
        "rules": data.rules,
        "train": fnv1a(serde_json::to_string(&problems).unwrap_or_default().as_bytes()),
        "format": 1,
    });
    format!("ws-{:016x}", fnv1a(desc.to_string().as_bytes()))
}

/// Builds the initial policy: the cached warm start when the sink has it, else trains one
/// and caches it.
pub fn prepare_policy(
    cfg: &RunConfig,
    data: &RunData,
    sink: &mut dyn Sink,
) -> Result<(Policy, String), EngineError> {
    let tok = CharTokenizer::default();
    let pcfg = policy_config(cfg, &tok);
    let key = warm_start_key(cfg, &pcfg, data);
    let policy = Policy::init(pcfg, tok, cfg.warm_start.seed, &candle_core::Device::Cpu)?;
    if let Some(bytes) = sink.warm_start(&key)? {
        weights_from_bytes(&policy, &bytes).map_err(|e| {
            EngineError::Data(format!("cached warm start {key} is unreadable: {e}"))
        })?;
        sink.phase_done(Phase::WarmStart, &format!("loaded cached warm start {key}"));
        return Ok((policy, key));
    }
    let report = warm_start(
        &policy,
        &data.train,
        &data.rules,
        &cfg.warm_start,
        &mut |done, total, loss| {
            sink.progress(Phase::WarmStart, done, total, &format!("loss {loss:.3}"))
        },
    )?;
    let bytes = weights_to_bytes(&policy).map_err(EngineError::Data)?;
    let desc = serde_json::json!({ "report": report, "config": cfg.warm_start });
    sink.save_warm_start(&key, desc, &bytes)?;
    sink.phase_done(
        Phase::WarmStart,
        &format!(
            "warm start {key}: {} steps, loss {:.3}, {:.0}s",
            report.steps, report.final_loss, report.seconds
        ),
    );
    Ok((policy, key))
}

/// A run in progress.
pub struct Trainer {
    pub cfg: RunConfig,
    pub policy: Policy,
    pub data: RunData,
    opt: AdamW,
    rng: ChaCha8Rng,
    order: Vec<usize>,
    cursor: usize,
    pub iteration: u64,
    pub generated_tokens: u64,
    /// Search accounting summed over the run.
    pub search_totals: SearchMetrics,
}

impl Trainer {
    pub fn new(cfg: RunConfig, policy: Policy, data: RunData) -> Result<Self, EngineError> {
        if data.train.is_empty() || data.test.is_empty() {
            return Err(EngineError::Data(
                "a run needs at least one training and one test problem".into(),
            ));
        }
        let t = &cfg.train;
        let opt = AdamW::new(
            policy.vars(),
            AdamWConfig {
                lr: t.lr,
                beta1: 0.9,
                beta2: 0.999,
                eps: 1e-8,
                weight_decay: t.weight_decay,
                max_grad_norm: t.max_grad_norm,
            },
        )?;
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let order = (0..data.train.len()).collect();
        let mut trainer = Self {
            cfg,
            policy,
            data,
            opt,
            rng,
            order,
            cursor: usize::MAX,
            iteration: 0,
            generated_tokens: 0,
            search_totals: SearchMetrics::default(),
        };
        trainer.next_problems(0);
        Ok(trainer)
    }

    /// The next `n` problem indices of the seeded stream (reshuffled every epoch).
    fn next_problems(&mut self, n: usize) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        while out.len() < n || self.cursor == usize::MAX {
            if self.cursor >= self.order.len() {
                self.order.shuffle(&mut self.rng);
                self.cursor = 0;
            }
            if out.len() == n {
                break;
            }
            out.push(self.order[self.cursor]);
            self.cursor += 1;
        }
        out
    }

    fn max_tokens(&self) -> usize {
        self.cfg.train.max_tokens
    }

    /// Evaluates the current policy on the test split.
    pub fn evaluate(&self, sink: &mut dyn Sink) -> Result<EvalResult, EngineError> {
        let model = self.policy.sampler_model()?;
        let n = match self.cfg.eval.problems {
            0 => self.data.test.len(),
            n => n.min(self.data.test.len()),
        };
        let (r, _) = evaluate(
            &model,
            &self.policy.tokenizer,
            &self.data.test[..n],
            EvalSettings {
                k: self.cfg.eval.k,
                temperature: self.cfg.eval.temperature,
                max_tokens: self.max_tokens(),
            },
            &self.data.rules,
            &mut |d, t| sink.progress(Phase::Evaluate, d, t, ""),
        )?;
        sink.phase_done(
            Phase::Evaluate,
            &format!("pass@1 {:.3}, pass@{} {:.3}", r.pass1, r.k, r.pass_k),
        );
        Ok(r)
    }

    fn lr(&self) -> f64 {
        let warm = self.cfg.train.warmup_steps;
        let step = self.opt.steps_taken();
        if warm > 0 && step < warm {
            self.cfg.train.lr * (step + 1) as f64 / warm as f64
        } else {
            self.cfg.train.lr
        }
    }

    /// One iteration: sample (directly, or by tree search), score, update.
    pub fn step(&mut self) -> Result<(IterationMetrics, Vec<TreeRecord>), EngineError> {
        let method = self.cfg.method;
        self.iteration += 1;
        let t = self.cfg.train.clone();
        let idx = self.next_problems(t.problems_per_step);
        let problems: Vec<Problem> = idx.iter().map(|&i| self.data.train[i].clone()).collect();
        let sample_start = Instant::now();
        let model = self.policy.sampler_model()?;
        let batch = match method {
            Method::DeepSearch => self.search_batch(&model, &problems)?,
            _ => self.direct_batch(&model, &problems)?,
        };
        let sample_secs = sample_start.elapsed().as_secs_f64();
        self.generated_tokens += batch.sampling.generated_tokens;
        if let Some(m) = &batch.search {
            self.search_totals.add(m);
        }

        let clip = Clip {
            low: t.clip_low,
            high: if method == Method::Grpo {
                t.clip_low
            } else {
                t.clip_high
            },
            dual: (t.dual_clip > 0.0).then_some(t.dual_clip),
        };
        let lr = self.lr();
        let update_start = Instant::now();
        let update = policy_update(
            &self.policy,
            &mut self.opt,
            &batch.samples,
            &UpdateSettings {
                clip,
                minibatches: t.minibatches,
                epochs: t.epochs,
                lr,
            },
            &mut self.rng,
        )?;
        let update_secs = update_start.elapsed().as_secs_f64();

        let o = &batch.outcomes;
        let n = o.len().max(1) as f64;
        let metrics = IterationMetrics {
            iteration: self.iteration,
            method: method.name().into(),
            problems: problems.len(),
            train_reward: o.iter().map(|x| x.reward as f64).sum::<f64>() / n,
            train_accuracy: o.iter().filter(|x| x.correct).count() as f64 / n,
            mean_entropy: o.iter().map(|x| x.entropy).sum::<f64>() / n,
            mean_response_tokens: o.iter().map(|x| x.tokens as f64).sum::<f64>() / n,
            update,
            lr,
            temperature: t.temperature,
            sampling: batch.sampling,
            search: batch.search,
            cumulative_generated_tokens: self.generated_tokens,
            seconds: PhaseSeconds {
                sample: sample_secs,
                update: update_secs,
                eval: 0.0,
            },
            eval: None,
            unix_time: unix_now(),
        };
        Ok((metrics, batch.trees))
    }

    fn direct_params(&self) -> SamplingParams {
        SamplingParams {
            temperature: self.cfg.train.temperature,
            max_tokens: self.cfg.train.max_tokens,
            stop_at: None,
            eos: EOS,
        }
    }

    /// grpo, dapo, best_of_n: n independent samples per problem, outcome rewards.
    fn direct_batch(&mut self, model: &Qwen2, problems: &[Problem]) -> Result<Batch, EngineError> {
        let t = &self.cfg.train;
        let refs: Vec<&Problem> = problems.iter().collect();
        let (groups, sampling) = rollouts(
            model,
            &self.policy.tokenizer,
            &refs,
            t.group_size,
            &self.direct_params(),
            &self.data.rules,
            t.reward,
            &mut self.rng,
        )?;
        let mut samples = Vec::new();
        let mut trees = Vec::new();
        for (p, group) in problems.iter().zip(&groups) {
            let prompt = prompt_tokens(&self.policy.tokenizer, p);
            let mut record = TreeRecord::direct(&p.id, &p.prompt());
            let rewards: Vec<f32> = group.iter().map(|t| t.reward).collect();
            let advantages: Vec<f32> = match self.cfg.method {
                Method::Grpo => group_advantages(&rewards, AdvantageNorm::MeanStd),
                Method::BestOfN => best_of_n_weights(group),
                Method::Dapo | Method::DeepSearch => {
                    group_advantages(&rewards, AdvantageNorm::MeanOnly)
                }
            };
            for (traj, a) in group.iter().zip(advantages) {
                record.push_sample(traj, a);
                // Zero advantage carries no gradient.
                if a != 0.0 && !traj.tokens.is_empty() {
                    samples.push(Sample {
                        prompt: prompt.clone(),
                        response: traj.tokens.clone(),
                        advantages: vec![a; traj.tokens.len()],
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
        })
    }

    /// deepsearch: one tree per problem; its n recorded trajectories (padded with direct
    /// rollouts when a cap was hit) scored with Tree-GRPO.
    fn search_batch(&mut self, model: &Qwen2, problems: &[Problem]) -> Result<Batch, EngineError> {
        let refs: Vec<&Problem> = problems.iter().collect();
        let sc = self.cfg.search.clone();
        let tok = self.policy.tokenizer.clone();
        let (results, mut sampling) = search(
            model,
            &tok,
            &refs,
            &sc,
            self.cfg.train.temperature,
            &self.data.rules,
            &mut self.rng,
        )?;
        let search_forwarded = sampling.forwarded_tokens;
        let counts: Vec<usize> = results.iter().map(|r| r.missing).collect();
        let pads = if counts.iter().any(|&c| c > 0) {
            let (g, s) = rollouts_n(
                model,
                &tok,
                &refs,
                &counts,
                &self.direct_params(),
                &self.data.rules,
                RewardKind::Binary,
                &mut self.rng,
            )?;
            sampling.add(&s);
            g
        } else {
            vec![Vec::new(); problems.len()]
        };
        let settings = ScoreSettings {
            q_max: sc.q_max,
            eps_q: sc.eps_q,
            overlong_max: sc.overlong_max,
            overlong_buffer: sc.overlong_buffer,
            token_score: sc.token_score,
            normalise: sc.advantage,
        };
        let mut samples = Vec::new();
        let mut trees = Vec::new();
        let mut outcomes = Vec::new();
        let mut m = SearchMetrics {
            search_tokens_forwarded: search_forwarded,
            ..SearchMetrics::default()
        };
        for ((p, r), pad) in problems.iter().zip(&results).zip(&pads) {
            let tree = &r.tree;
            let prompt = tree.prompt.clone();
            m.trees += 1;
            m.expansions += r.expansions as u64;
            m.cap_events += u64::from(r.cap_event);
            m.nodes += tree.len() as u64;
            m.tree_tokens_distinct += tree.prompt.len() as u64
                + tree
                    .graph
                    .node_weights()
                    .map(|n| n.tokens.len() as u64)
                    .sum::<u64>();
            m.padded += pad.len() as u64;
            let mut paths = Vec::new();
            let mut responses = Vec::new();
            let mut path_nodes = Vec::new();
            for &t in &r.recorded {
                let nodes: Vec<_> = tree.path(t).into_iter().skip(1).collect();
                path_nodes.push(nodes.clone());
                let term = tree.node(t).terminal.clone();
                let value = term.as_ref().map_or(-1.0, |x| x.value);
                paths.push(ScoredPath {
                    steps: nodes
                        .iter()
                        .map(|&i| (tree.node(i).q, tree.node(i).tokens.len()))
                        .collect(),
                    terminal_value: value,
                });
                let response = tree.response(t);
                outcomes.push(Outcome {
                    reward: value as f32,
                    correct: value > 0.0,
                    entropy: tree.trajectory_entropy(t),
                    tokens: response.len(),
                });
                responses.push(response);
            }
            if r.recorded
                .iter()
                .any(|&t| tree.node(t).terminal.as_ref().is_some_and(|x| x.correct))
            {
                m.trees_solved += 1;
            }
            for traj in pad {
                let v = if traj.correct() { 1.0 } else { -1.0 };
                paths.push(ScoredPath {
                    steps: vec![(v, traj.tokens.len())],
                    terminal_value: v,
                });
                outcomes.push(Outcome::of(traj));
                responses.push(traj.tokens.clone());
            }
            let advs = group_token_advantages(&paths, &settings);
            // Each node's tokens share one advantage: read it at the node's first token.
            let mut node_adv = std::collections::HashMap::new();
            for (nodes, adv) in path_nodes.iter().zip(&advs) {
                let mut offset = 0;
                for &i in nodes {
                    if let Some(&a) = adv.get(offset) {
                        node_adv.insert(i.index() as u32, a);
                    }
                    offset += tree.node(i).tokens.len();
                }
            }
            let mut record = TreeRecord::from_tree(
                &p.id,
                &p.prompt(),
                tree,
                r.expansions,
                r.cap_event,
                &node_adv,
            );
            for (traj, adv) in pad.iter().zip(&advs[r.recorded.len()..]) {
                record.push_sample(traj, adv.first().copied().unwrap_or(0.0));
            }
            trees.push(record);
            for (response, adv) in responses.into_iter().zip(advs) {
                if !response.is_empty() && adv.iter().any(|&a| a != 0.0) {
                    samples.push(Sample {
                        prompt: prompt.clone(),
                        response,
                        advantages: adv,
                    });
                }
            }
        }
        Ok(Batch {
            samples,
            trees,
            outcomes,
            sampling,
            search: Some(m),
        })
    }

    /// Runs the configured iterations (or until the token budget), committing each.
    pub fn run(
        &mut self,
        run: &str,
        warm_key: &str,
        sink: &mut dyn Sink,
    ) -> Result<Summary, EngineError> {
        let start = Instant::now();
        let eval_start = self.evaluate(sink)?;
        let mut eval_end = eval_start.clone();
        let mut stopped_by = "iterations";
        let total = self.cfg.train.iterations;
        while self.iteration < total {
            if let Some(b) = self.cfg.train.budget_tokens {
                if self.generated_tokens >= b {
                    stopped_by = "budget";
                    break;
                }
            }
            let (mut m, trees) = self.step()?;
            let every = self.cfg.eval.every;
            let last = self.iteration == total
                || self
                    .cfg
                    .train
                    .budget_tokens
                    .is_some_and(|b| self.generated_tokens >= b);
            if last || (every > 0 && self.iteration % every == 0) {
                let e0 = Instant::now();
                let r = self.evaluate(sink)?;
                m.seconds.eval = e0.elapsed().as_secs_f64();
                eval_end = r.clone();
                m.eval = Some(r);
            }
            sink.commit(&m, &trees)?;
            let ck = self.cfg.train.checkpoint_every;
            if last || (ck > 0 && self.iteration % ck == 0) {
                sink.checkpoint(self.iteration, &self.policy)?;
            }
            let note = format!(
                "acc {:.2} loss {:+.3} H {:.2}{}",
                m.train_accuracy,
                m.update.loss,
                m.mean_entropy,
                m.eval
                    .as_ref()
                    .map(|e| format!(" | eval pass@1 {:.3}", e.pass1))
                    .unwrap_or_default()
            );
            sink.progress(Phase::Train, self.iteration, total, &note);
        }
        if self.iteration == 0 {
            sink.checkpoint(0, &self.policy)?;
        }
        sink.phase_done(Phase::Train, "done");
        Ok(Summary {
            run: run.to_string(),
            method: self.cfg.method.name().into(),
            seed: self.cfg.seed,
            iterations: self.iteration,
            generated_tokens: self.generated_tokens,
            wall_seconds: start.elapsed().as_secs_f64(),
            eval_start,
            eval_end,
            stopped_by: stopped_by.into(),
            warm_start: warm_key.to_string(),
            parameters: self.policy.num_parameters(),
            search_tokens_forwarded: self.search_totals.search_tokens_forwarded,
            tree_tokens_distinct: self.search_totals.tree_tokens_distinct,
            expansions: self.search_totals.expansions,
            cache_hits: self.search_totals.cache_hits,
            cap_events: self.search_totals.cap_events,
        })
    }
}

/// Best-of-N distillation: weight 1 on the single best sample of the group (highest
/// reward, then lowest mean entropy), and only when it beats the group's worst, i.e.
/// when the verifier separated the samples at all.
pub fn best_of_n_weights(group: &[Trajectory]) -> Vec<f32> {
    let mut w = vec![0.0; group.len()];
    let best = group.iter().enumerate().max_by(|(_, a), (_, b)| {
        a.reward
            .total_cmp(&b.reward)
            .then(b.mean_entropy().total_cmp(&a.mean_entropy()))
    });
    let worst = group.iter().map(|t| t.reward).fold(f32::INFINITY, f32::min);
    if let Some((i, b)) = best {
        if b.reward > worst || b.correct() {
            w[i] = 1.0;
        }
    }
    w
}
