//! The training loop: warm start, then iterations of sample -> score -> update, with
//! held-out evaluations, commits and checkpoints reported to a [`Sink`].
use std::time::Instant;

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use super::config::{Method, RunConfig};
use super::countdown::Problem;
use super::error::EngineError;
use super::evaluate::{evaluate, EvalSettings};
use super::metrics::EvalResult;
use super::objective::{group_advantages, AdvantageNorm, Clip};
use super::optim::{AdamW, AdamWConfig};
use super::policy::checkpoint::{weights_from_bytes, weights_to_bytes};
use super::policy::sampler::{SampleStats, SamplingParams};
use super::policy::tokenizer::EOS;
use super::policy::{CharTokenizer, Policy, PolicyConfig};
use super::rollout::{prompt_tokens, rollouts, Trajectory};
use super::sink::{Phase, Sink};
use super::split::{fnv1a, RunData};
use super::update::{policy_update, Sample, UpdateSettings, UpdateStats};
use super::warm_start::warm_start;

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

    /// One iteration of a direct-sampling method (grpo, dapo, best_of_n).
    pub fn step(&mut self) -> Result<IterationMetrics, EngineError> {
        let method = self.cfg.method;
        if method == Method::DeepSearch {
            return Err(EngineError::Unsupported(
                "method deepsearch: the tree search is not built yet; use grpo, dapo or best_of_n"
                    .into(),
            ));
        }
        self.iteration += 1;
        let t = self.cfg.train.clone();
        let idx = self.next_problems(t.problems_per_step);
        let problems: Vec<&Problem> = idx.iter().map(|&i| &self.data.train[i]).collect();
        let sample_start = Instant::now();
        let model = self.policy.sampler_model()?;
        let params = SamplingParams {
            temperature: t.temperature,
            max_tokens: t.max_tokens,
            stop_at: None,
            eos: EOS,
        };
        let (groups, sampling) = rollouts(
            &model,
            &self.policy.tokenizer,
            &problems,
            t.group_size,
            &params,
            &self.data.rules,
            t.reward,
            &mut self.rng,
        )?;
        let sample_secs = sample_start.elapsed().as_secs_f64();
        self.generated_tokens += sampling.generated_tokens;

        let samples = self.score(&problems, &groups);
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
            &samples,
            &UpdateSettings {
                clip,
                minibatches: t.minibatches,
                epochs: t.epochs,
                lr,
            },
            &mut self.rng,
        )?;
        let update_secs = update_start.elapsed().as_secs_f64();

        let all: Vec<&Trajectory> = groups.iter().flatten().collect();
        let n = all.len().max(1) as f64;
        Ok(IterationMetrics {
            iteration: self.iteration,
            method: method.name().into(),
            problems: problems.len(),
            train_reward: all.iter().map(|t| t.reward as f64).sum::<f64>() / n,
            train_accuracy: all.iter().filter(|t| t.correct()).count() as f64 / n,
            mean_entropy: all.iter().map(|t| t.mean_entropy() as f64).sum::<f64>() / n,
            mean_response_tokens: all.iter().map(|t| t.tokens.len() as f64).sum::<f64>() / n,
            update,
            lr,
            temperature: t.temperature,
            sampling,
            cumulative_generated_tokens: self.generated_tokens,
            seconds: PhaseSeconds {
                sample: sample_secs,
                update: update_secs,
                eval: 0.0,
            },
            eval: None,
            unix_time: unix_now(),
        })
    }

    /// Turns sampled groups into training samples with per-token advantages. Samples with
    /// zero advantage carry no gradient and are left out.
    fn score(&self, problems: &[&Problem], groups: &[Vec<Trajectory>]) -> Vec<Sample> {
        let mut out = Vec::new();
        for (p, group) in problems.iter().zip(groups) {
            let prompt = prompt_tokens(&self.policy.tokenizer, p);
            let rewards: Vec<f32> = group.iter().map(|t| t.reward).collect();
            let advantages: Vec<f32> = match self.cfg.method {
                Method::Grpo => group_advantages(&rewards, AdvantageNorm::MeanStd),
                Method::Dapo | Method::DeepSearch => {
                    group_advantages(&rewards, AdvantageNorm::MeanOnly)
                }
                Method::BestOfN => best_of_n_weights(group),
            };
            for (traj, a) in group.iter().zip(advantages) {
                if a == 0.0 || traj.tokens.is_empty() {
                    continue;
                }
                out.push(Sample {
                    prompt: prompt.clone(),
                    response: traj.tokens.clone(),
                    advantages: vec![a; traj.tokens.len()],
                });
            }
        }
        out
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
            let mut m = self.step()?;
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
            sink.commit(&m)?;
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
