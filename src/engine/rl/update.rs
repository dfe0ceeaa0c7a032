//! One policy-gradient update over an iteration's scored samples.
//!
//! Old log-probabilities are recomputed with the current weights before the first
//! gradient step (the ratio's denominator); with one mini-batch and one epoch they equal
//! the new ones, so the detached forward is reused instead of a second pass.
use candle_core::Result;
use rand::seq::SliceRandom;
use rand::Rng;

use crate::engine::policy::model::token_logprobs;
use crate::engine::policy::Policy;
use crate::engine::rl::batch::{pack, Sequence};
use crate::engine::rl::cispo::{cispo_loss, kl_k3, value_loss};
use crate::engine::rl::objective::{policy_loss, Clip};
use crate::engine::rl::optim::{AdamW, StepOutcome};

/// A scored training sample.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Sample {
    pub prompt: Vec<u32>,
    pub response: Vec<u32>,
    /// One advantage per response token; empty when the update computes them from the
    /// value head (`returns - V(s_t)`, search distillation).
    pub advantages: Vec<f32>,
    /// One return per response token for the value head (search distillation), or empty.
    #[serde(default)]
    pub returns: Vec<f32>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct UpdateStats {
    /// Mean loss over the mini-batches.
    pub loss: f64,
    /// Mean gradient norm (before clipping) over applied steps.
    pub grad_norm: f64,
    pub optimizer_steps: u64,
    /// Steps skipped because the loss or gradient was NaN or infinite.
    pub skipped_steps: u64,
    /// Response tokens trained on.
    pub tokens: u64,
    /// Sequences trained on (each counted once per epoch).
    #[serde(default)]
    pub sequences: u64,
    /// Learning rate of the last step taken.
    #[serde(default)]
    pub lr: f64,
    /// Mean value-head loss and k3 KL to the initial policy over the steps that had them.
    #[serde(default)]
    pub value_loss: f64,
    #[serde(default)]
    pub kl: f64,
    /// The value head's explained variance of the returns, `1 - Var(R - V) / Var(R)` over
    /// the trained tokens (mean over the steps with returns): 1 predicts every return, 0
    /// no better than their mean, below 0 worse.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub explained_variance: Option<f64>,
    /// Token positions the reference policy (KL) was run on: compute beside the update's.
    #[serde(default)]
    pub reference_tokens: u64,
}

/// Learning rate of optimizer step `step` (0-based): linear warm-up, then constant.
pub fn warmup_lr(lr: f64, warmup_steps: u64, step: u64) -> f64 {
    if warmup_steps > 0 && step < warmup_steps {
        lr * (step + 1) as f64 / warmup_steps as f64
    } else {
        lr
    }
}

/// Most optimizer steps a run may owe (steps held back because too few samples were
/// buffered) before the debt is forgiven.
pub const MAX_STEPS_OWED: f64 = 4.0;

/// How a run paces its optimizer steps against generated tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepPace {
    /// One step is owed per this many generated tokens.
    pub tokens_per_step: f64,
    /// Fewest buffered samples in one step.
    pub min_sequences: usize,
    /// Most steps the run may owe before the rest of the debt is forgiven
    /// ([`MAX_STEPS_OWED`] under `train.tokens_per_step`; unbounded under
    /// `train.steps_per_1k_tokens`, where every owed step is taken once enough samples
    /// have been buffered).
    pub max_owed: f64,
}

/// Equal learning per token: how many optimizer steps to take now when one step is owed
/// per `pace.tokens_per_step` generated tokens. `owed` carries between iterations;
/// `samples` is the number of buffered samples (an iteration that takes no step keeps its
/// samples for the next, still on-policy since the weights did not change: gradient
/// accumulation over iterations). A step never has fewer than `pace.min_sequences`
/// samples, so a method whose iterations yield few trainable sequences per token waits
/// for more instead of taking tiny steps. Returns the steps (0: wait) and the new balance.
pub fn steps_for_tokens(owed: f64, tokens: u64, samples: usize, pace: &StepPace) -> (usize, f64) {
    let owed = owed + tokens as f64 / pace.tokens_per_step.max(1.0);
    let cap = samples / pace.min_sequences.max(1);
    let steps = (owed.floor().max(0.0) as usize).min(cap);
    (steps, (owed - steps as f64).min(pace.max_owed))
}

/// The policy-gradient loss of an update.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PolicyObjective {
    /// PPO's clipped surrogate (grpo, dapo, best_of_n, deepsearch).
    Clipped(Clip),
    /// CISPO: the clipped importance weight is detached (cispo, tree_distill).
    Cispo { eps_high: f64 },
}

pub struct UpdateSettings<'a> {
    pub objective: PolicyObjective,
    /// Weight of the value head's squared error (samples with returns only).
    pub value_coef: f64,
    /// Weight of the k3 KL to `reference` (0: off).
    pub kl_coef: f64,
    /// The initial policy, for the KL penalty.
    pub reference: Option<&'a crate::engine::policy::Qwen2>,
    pub minibatches: usize,
    pub epochs: usize,
    /// Peak learning rate; the warm-up is applied per optimizer step.
    pub lr: f64,
    /// Linear warm-up over the first this many optimizer steps of the run (0: off).
    pub warmup_steps: u64,
    /// What the forward and backward compute in (`train.precision`): F32, or BF16 from
    /// f32 master weights ([`Policy::trainable_in`](crate::engine::policy::Policy::trainable_in)).
    pub compute: candle_core::DType,
    /// Fault injection for tests: make every loss of this update NaN.
    pub poison: bool,
}

pub fn policy_update<R: Rng + Send>(
    policy: &Policy,
    opt: &mut AdamW,
    samples: &[Sample],
    settings: &UpdateSettings,
    rng: &mut R,
) -> Result<UpdateStats> {
    // On one of rayon's threads: every parallel loop of the step (the body's parts, the
    // row loops, AdamW's passes) then starts where it is instead of waking a worker and
    // putting this thread to sleep, which is all a one-thread pool did on each of them.
    rayon::scope(|_| update_on_pool(policy, opt, samples, settings, rng))
}

fn update_on_pool<R: Rng>(
    policy: &Policy,
    opt: &mut AdamW,
    samples: &[Sample],
    settings: &UpdateSettings,
    rng: &mut R,
) -> Result<UpdateStats> {
    let mut stats = UpdateStats::default();
    if samples.is_empty() {
        return Ok(stats);
    }
    let dev = policy.device().clone();
    let model = policy.trainable_in(settings.compute)?;
    let f32 = candle_core::DType::F32;
    let mut order: Vec<usize> = (0..samples.len()).collect();
    order.shuffle(rng);
    let mb = settings.minibatches.clamp(1, samples.len());
    let chunks: Vec<Vec<usize>> = (0..mb)
        .map(|i| order.iter().skip(i).step_by(mb).copied().collect())
        .collect();
    let single = mb == 1 && settings.epochs == 1;
    // Old log-probs (and values, for advantages from the value head) per chunk, from the
    // weights before any step of this update.
    type Old = Option<(candle_core::Tensor, Option<candle_core::Tensor>)>;
    let old: Vec<Old> = if single {
        vec![None]
    } else {
        let frozen = policy.sampler_model()?;
        chunks
            .iter()
            .map(|c| {
                let b = batch_of(samples, c, &dev)?;
                let h = frozen.hidden_train(&b.ids)?;
                let logp = token_logprobs(&frozen.logits(&h)?, &b.targets)?;
                let v = if b.has_returns && frozen.has_value_head() {
                    Some(frozen.values(&h)?)
                } else {
                    None
                };
                Ok(Some((logp, v)))
            })
            .collect::<Result<_>>()?
    };
    let mut losses = Vec::new();
    let mut norms = Vec::new();
    let mut value_losses = Vec::new();
    let mut kls = Vec::new();
    let mut explained = Vec::new();
    for _ in 0..settings.epochs {
        for (ci, chunk) in chunks.iter().enumerate() {
            let b = batch_of(samples, chunk, &dev)?;
            let taped = model.hidden_taped(&b.ids)?;
            let hidden = taped.hidden();
            // Log-probs, values and the loss in f32 whatever the compute dtype.
            let logp = token_logprobs(&model.logits(hidden)?.to_dtype(f32)?, &b.targets)?;
            let (logp_old, values_old) = match &old[ci.min(old.len() - 1)] {
                Some((t, v)) => (t.clone(), v.clone()),
                None => (logp.detach(), None),
            };
            // With returns, advantages come from the value head: A_t = R - V(s_t), the
            // value taken before the step (detached).
            let values = if b.has_returns && model.has_value_head() {
                Some(model.values(hidden)?.to_dtype(f32)?)
            } else {
                None
            };
            let advantages = match (&values_old, &values) {
                (Some(v), _) | (None, Some(v)) => (&b.returns - v.detach())?,
                (None, None) => b.advantages.clone(),
            };
            let mut loss = match settings.objective {
                PolicyObjective::Clipped(clip) => {
                    policy_loss(&logp, &logp_old, &advantages, &b.mask, &clip)?
                }
                PolicyObjective::Cispo { eps_high } => {
                    cispo_loss(&logp, &logp_old, &advantages, &b.mask, eps_high)?
                }
            };
            if let Some(v) = &values {
                explained.push(explained_variance(
                    &v.flatten_all()?.to_vec1::<f32>()?,
                    &b.returns.flatten_all()?.to_vec1::<f32>()?,
                    &b.mask.flatten_all()?.to_vec1::<f32>()?,
                ));
                let vl = value_loss(v, &b.returns, &b.mask)?;
                value_losses.push(vl.to_scalar::<f32>()? as f64);
                loss = (loss + (vl * settings.value_coef)?)?;
            }
            if let (Some(reference), true) = (settings.reference, settings.kl_coef > 0.0) {
                let logp_ref = token_logprobs(&reference.forward_train(&b.ids)?, &b.targets)?;
                stats.reference_tokens += b.ids.elem_count() as u64;
                let kl = kl_k3(&logp, &logp_ref, &b.mask)?;
                kls.push(kl.to_scalar::<f32>()? as f64);
                loss = (loss + (kl * settings.kl_coef)?)?;
            }
            if settings.poison {
                loss = (loss * f64::NAN)?;
            }
            let value = loss.to_scalar::<f32>()? as f64;
            stats.tokens += b.tokens as u64;
            if !value.is_finite() {
                stats.skipped_steps += 1;
                continue;
            }
            let grads = taped.backward(&model, &loss)?;
            let lr = warmup_lr(settings.lr, settings.warmup_steps, opt.steps_taken());
            stats.lr = lr;
            stats.sequences += chunk.len() as u64;
            match opt.step(&grads, lr)? {
                StepOutcome::Applied { grad_norm } => {
                    stats.optimizer_steps += 1;
                    norms.push(grad_norm);
                    losses.push(value);
                }
                StepOutcome::SkippedNonFinite => stats.skipped_steps += 1,
            }
        }
    }
    stats.loss = mean(&losses);
    stats.grad_norm = mean(&norms);
    stats.value_loss = mean(&value_losses);
    stats.kl = mean(&kls);
    let explained: Vec<f64> = explained.into_iter().flatten().collect();
    stats.explained_variance = (!explained.is_empty()).then(|| mean(&explained));
    Ok(stats)
}

/// `1 - Var(R - V) / Var(R)` over the positions where `mask` is 1; `None` when the
/// returns do not vary there.
pub fn explained_variance(values: &[f32], returns: &[f32], mask: &[f32]) -> Option<f64> {
    let pairs: Vec<(f64, f64)> = values
        .iter()
        .zip(returns)
        .zip(mask)
        .filter(|(_, &m)| m > 0.0)
        .map(|((&v, &r), _)| (v as f64, r as f64))
        .collect();
    let n = pairs.len() as f64;
    let var = |xs: &mut dyn Iterator<Item = f64>| {
        let xs: Vec<f64> = xs.collect();
        let m = xs.iter().sum::<f64>() / n;
        xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / n
    };
    let vr = var(&mut pairs.iter().map(|p| p.1));
    (n > 0.0 && vr > 1e-12).then(|| 1.0 - var(&mut pairs.iter().map(|p| p.1 - p.0)) / vr)
}

pub(crate) fn batch_of(
    samples: &[Sample],
    idx: &[usize],
    dev: &candle_core::Device,
) -> Result<crate::engine::rl::batch::TokenBatch> {
    let seqs: Vec<Sequence> = idx
        .iter()
        .map(|&i| Sequence {
            prompt: &samples[i].prompt,
            response: &samples[i].response,
            advantages: &samples[i].advantages,
            returns: &samples[i].returns,
        })
        .collect();
    pack(&seqs, dev)
}

fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PACE: StepPace = StepPace {
        tokens_per_step: 2048.0,
        min_sequences: 32,
        max_owed: MAX_STEPS_OWED,
    };

    /// AdamW at lr 3e-3 with the paper's betas, clipping at 1, for the update tests.
    fn test_optimizer(policy: &crate::engine::policy::Policy, weight_decay: f64) -> AdamW {
        AdamW::new(
            policy.vars(),
            crate::engine::rl::optim::AdamWConfig::new(3e-3, weight_decay, 1.0),
        )
        .unwrap()
    }

    #[test]
    fn steps_follow_tokens_with_the_fraction_carried() {
        // A GRPO iteration of ~2,048 tokens: one step each.
        assert_eq!(steps_for_tokens(0.0, 2048, 128, &PACE), (1, 0.0));
        // Half that: wait (the samples stay buffered), then step on both iterations'.
        let (s, o) = steps_for_tokens(0.0, 1024, 64, &PACE);
        assert_eq!((s, o), (0, 0.5));
        assert_eq!(steps_for_tokens(o, 1024, 128, &PACE), (1, 0.0));
        // A tree iteration of 4.3x the tokens: 4 steps, 0.3 carried.
        let (s, o) = steps_for_tokens(0.0, 8806, 128, &PACE);
        assert_eq!(s, 4);
        assert!((o - 0.2998).abs() < 1e-3);
        // Never a step of fewer than 32 samples: 70 buffered allow 2, the rest is owed
        // (at most 4 steps), and 20 samples allow none.
        let (s, o) = steps_for_tokens(0.0, 20_000, 70, &PACE);
        assert_eq!((s, o), (2, MAX_STEPS_OWED));
        assert_eq!(steps_for_tokens(0.0, 20_000, 20, &PACE), (0, 4.0));
        // Over a run the steps per token match within one step.
        let (mut owed, mut steps) = (0.0, 0);
        for i in 0..100 {
            let (s, o) = steps_for_tokens(owed, 3000 + (i % 7) * 300, 256, &PACE);
            steps += s;
            owed = o;
        }
        let tokens: u64 = (0..100).map(|i| 3000 + (i % 7) * 300).sum();
        let want = tokens as f64 / 2048.0;
        assert!((steps as f64 - want).abs() <= 1.0, "{steps} vs {want}");
    }

    /// Under `steps_per_1k_tokens` no owed step is forgiven: a method with few trainable
    /// sequences per token accumulates them over iterations and takes every owed step
    /// once it has them, so its steps per token match the rate whenever its samples
    /// allow at least `min_sequences` per step.
    #[test]
    fn an_unbounded_debt_takes_every_owed_step_once_samples_allow() {
        // 0.12 steps per 1k tokens; 3,000 tokens and 8 trainable samples an iteration,
        // at least 16 per step.
        let pace = StepPace {
            tokens_per_step: 1000.0 / 0.12,
            min_sequences: 16,
            max_owed: f64::INFINITY,
        };
        let (mut owed, mut steps, mut buffered) = (0.0, 0, 0);
        for _ in 0..300 {
            buffered += 8;
            let (s, o) = steps_for_tokens(owed, 3000, buffered, &pace);
            if s > 0 {
                buffered = 0;
            }
            steps += s;
            owed = o;
        }
        let want = 300.0 * 3000.0 * 0.12 / 1000.0;
        assert!((steps as f64 - want).abs() <= 1.0, "{steps} vs {want}");
        // Too few samples for the rate: the debt grows instead of being forgiven.
        let (s, o) = steps_for_tokens(0.0, 100_000, 20, &pace);
        assert_eq!(s, 1);
        assert!(o > 10.0);
    }

    /// The value head trains towards the returns, and the KL to a reference equal to the
    /// starting weights starts at zero and grows as the policy moves.
    #[test]
    fn value_head_learns_the_returns_and_the_kl_starts_at_zero() {
        use crate::engine::policy::{CharTokenizer, Policy, PolicyConfig};
        use rand::SeedableRng;
        let tok = CharTokenizer::default();
        let cfg = PolicyConfig::micro(tok.vocab_size());
        let mut policy = Policy::init(cfg, tok.into(), 5, &candle_core::Device::Cpu).unwrap();
        policy.add_value_head(2).unwrap();
        let reference = Policy::reference_model(
            &policy.config,
            policy
                .tensors()
                .into_iter()
                .map(|(k, v)| (k, v.copy().unwrap()))
                .collect(),
            policy.device(),
        )
        .unwrap();
        let mut opt = test_optimizer(&policy, 0.0);
        let samples: Vec<Sample> = (0..8)
            .map(|i| Sample {
                prompt: vec![1, 5, 6],
                response: vec![7 + i % 3, 8, 2],
                advantages: Vec::new(),
                // The return is a function of the response, so it can be learnt.
                returns: vec![if i % 3 == 0 { 0.8 } else { -0.6 }; 3],
            })
            .collect();
        let settings = UpdateSettings {
            objective: PolicyObjective::Cispo { eps_high: 5.0 },
            value_coef: 1.0,
            kl_coef: 0.05,
            reference: Some(&reference),
            minibatches: 1,
            epochs: 1,
            lr: 3e-3,
            warmup_steps: 0,
            compute: candle_core::DType::F32,
            poison: false,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let first = policy_update(&policy, &mut opt, &samples, &settings, &mut rng).unwrap();
        assert!(first.kl.abs() < 1e-6, "{first:?}");
        assert!(first.reference_tokens > 0);
        let mut last = first;
        for _ in 0..30 {
            last = policy_update(&policy, &mut opt, &samples, &settings, &mut rng).unwrap();
        }
        assert!(
            last.value_loss < 0.5 * first.value_loss,
            "{first:?} -> {last:?}"
        );
        assert!(last.kl > 0.0, "{last:?}");
    }

    /// The generic path (what CUDA runs: candle's ops and autograd, AdamW on candle's
    /// ops) gives the CPU kernels' loss, gradient norm, optimizer moments and weights
    /// after two updates, with a value head and a KL reference, for both objectives.
    #[test]
    fn the_generic_path_matches_the_cpu_kernels() {
        use crate::engine::policy::{cpu, CharTokenizer, Policy, PolicyConfig};
        use rand::SeedableRng;
        let run = |objective: PolicyObjective| {
            let tok = CharTokenizer::default();
            let mut cfg = PolicyConfig::micro(tok.vocab_size());
            cfg.num_hidden_layers = 2;
            let mut policy = Policy::init(cfg, tok.into(), 5, &candle_core::Device::Cpu).unwrap();
            policy.add_value_head(2).unwrap();
            let reference = Policy::reference_model(
                &policy.config,
                policy
                    .tensors()
                    .into_iter()
                    .map(|(k, v)| (k, v.copy().unwrap()))
                    .collect(),
                policy.device(),
            )
            .unwrap();
            let mut opt = test_optimizer(&policy, 0.01);
            let samples: Vec<Sample> = (0..6)
                .map(|i| Sample {
                    prompt: vec![1, 5, 6, 9],
                    response: (0..3 + i % 4).map(|j| 7 + ((i + j) % 5) as u32).collect(),
                    advantages: vec![if i % 2 == 0 { 0.7 } else { -0.4 }; 3 + i % 4],
                    returns: vec![if i % 3 == 0 { 0.8 } else { -0.6 }; 3 + i % 4],
                })
                .collect();
            let settings = UpdateSettings {
                objective,
                value_coef: 0.5,
                kl_coef: 0.05,
                reference: Some(&reference),
                minibatches: 2,
                epochs: 1,
                lr: 3e-3,
                warmup_steps: 0,
                compute: candle_core::DType::F32,
                poison: false,
            };
            // The path taken: the tape with the kernels, candle's autograd without.
            let ids = candle_core::Tensor::new(&[[1u32, 5, 6]], policy.device()).unwrap();
            let taped = policy
                .trainable()
                .unwrap()
                .hidden_taped(&ids)
                .unwrap()
                .is_taped();
            assert_eq!(taped, cpu::kernels_on());
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
            let stats: Vec<UpdateStats> = (0..2)
                .map(|_| policy_update(&policy, &mut opt, &samples, &settings, &mut rng).unwrap())
                .collect();
            let mut state: Vec<(String, Vec<f32>)> = opt
                .state_tensors()
                .into_iter()
                .chain(policy.tensors())
                .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1::<f32>().unwrap()))
                .collect();
            state.sort_by(|a, b| a.0.cmp(&b.0));
            (stats, state)
        };
        for objective in [
            PolicyObjective::Cispo { eps_high: 5.0 },
            PolicyObjective::Clipped(crate::engine::rl::objective::Clip {
                low: 0.2,
                high: 0.28,
                dual: Some(10.0),
            }),
        ] {
            let (kernel_stats, kernel_state) = run(objective);
            let (generic_stats, generic_state) = cpu::generic(|| run(objective));
            for (a, b) in kernel_stats.iter().zip(&generic_stats) {
                assert_eq!(a.optimizer_steps, b.optimizer_steps);
                for (what, x, y) in [
                    ("loss", a.loss, b.loss),
                    ("grad norm", a.grad_norm, b.grad_norm),
                    ("value loss", a.value_loss, b.value_loss),
                    ("kl", a.kl, b.kl),
                ] {
                    assert!(
                        (x - y).abs() <= 1e-4 * x.abs().max(1e-3),
                        "{objective:?} {what}: kernels {x}, generic {y}"
                    );
                }
            }
            assert_eq!(kernel_state.len(), generic_state.len());
            for ((name, a), (other, b)) in kernel_state.iter().zip(&generic_state) {
                assert_eq!(name, other);
                let scale = a.iter().fold(1e-6f32, |m, v| m.max(v.abs()));
                for (i, (x, y)) in a.iter().zip(b).enumerate() {
                    assert!(
                        (x - y).abs() <= 2e-4 * scale,
                        "{objective:?} {name}[{i}]: kernels {x}, generic {y} (largest {scale})"
                    );
                }
            }
        }
    }

    /// Mixed precision: the update computes in bf16 from f32 master weights. The weights
    /// and AdamW's moments stay f32, the first loss is the f32 update's within bf16's
    /// precision, and training on a fixed batch raises its log-probs as in f32.
    #[test]
    fn bf16_updates_keep_f32_master_weights_and_learn_like_f32() {
        use crate::engine::policy::{CharTokenizer, Policy, PolicyConfig};
        use candle_core::DType;
        use rand::SeedableRng;
        let run = |compute: DType| {
            let tok = CharTokenizer::default();
            let mut cfg = PolicyConfig::micro(tok.vocab_size());
            cfg.num_hidden_layers = 2;
            let policy = Policy::init(cfg, tok.into(), 5, &candle_core::Device::Cpu).unwrap();
            let mut opt = test_optimizer(&policy, 0.0);
            let samples: Vec<Sample> = (0..4)
                .map(|i| Sample {
                    prompt: vec![1, 5, 6],
                    response: vec![7 + i, 8, 9, 2],
                    advantages: vec![1.0; 4],
                    returns: Vec::new(),
                })
                .collect();
            let settings = UpdateSettings {
                objective: PolicyObjective::Cispo { eps_high: 5.0 },
                value_coef: 0.0,
                kl_coef: 0.0,
                reference: None,
                minibatches: 1,
                epochs: 1,
                lr: 3e-3,
                warmup_steps: 0,
                compute,
                poison: false,
            };
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(3);
            let losses: Vec<f64> = (0..15)
                .map(|_| {
                    policy_update(&policy, &mut opt, &samples, &settings, &mut rng)
                        .unwrap()
                        .loss
                })
                .collect();
            for (name, t) in opt.state_tensors().into_iter().chain(policy.tensors()) {
                assert_eq!(t.dtype(), DType::F32, "{name} is not f32 under {compute:?}");
            }
            losses
        };
        let f32 = run(DType::F32);
        let bf16 = run(DType::BF16);
        let rel = (f32[0] - bf16[0]).abs() / f32[0].abs().max(1e-6);
        assert!(rel < 2e-2, "first loss: f32 {} vs bf16 {}", f32[0], bf16[0]);
        // ...and not bit for bit: the bf16 path is the one that ran.
        assert_ne!(f32[0], bf16[0]);
        // CISPO's loss with positive advantages is -mean log-prob: it falls as they rise.
        for l in [&f32, &bf16] {
            assert!(l[14] < l[0] - 0.5, "{l:?}");
        }
        assert!(
            (f32[14] - bf16[14]).abs() < 0.1 * f32[0].abs(),
            "{f32:?} vs {bf16:?}"
        );
    }

    /// `auto` computes in f32 on the CPU (the goldens' path) and bf16 elsewhere.
    #[test]
    fn auto_precision_is_f32_on_the_cpu() {
        use crate::engine::rl::config::Precision;
        let cpu = candle_core::Device::Cpu;
        assert_eq!(Precision::Auto.dtype(&cpu), candle_core::DType::F32);
        assert_eq!(Precision::Bf16.dtype(&cpu), candle_core::DType::BF16);
        assert_eq!(Precision::F32.dtype(&cpu), candle_core::DType::F32);
    }

    #[test]
    fn explained_variance_is_one_for_a_perfect_value_and_zero_for_the_mean() {
        let r = [1.0, -1.0, 1.0, -1.0, 5.0];
        let m = [1.0, 1.0, 1.0, 1.0, 0.0];
        assert_eq!(explained_variance(&r, &r, &m), Some(1.0));
        assert_eq!(explained_variance(&[0.0; 5], &r, &m), Some(0.0));
        let ev = explained_variance(&[0.5, -0.5, 0.5, -0.5, 0.0], &r, &m).unwrap();
        assert!((ev - 0.75).abs() < 1e-12, "{ev}");
        assert_eq!(explained_variance(&r, &[2.0; 5], &m), None);
    }

    #[test]
    fn warm_up_is_per_optimizer_step() {
        assert_eq!(warmup_lr(1e-4, 10, 0), 1e-5);
        assert!((warmup_lr(1e-4, 10, 4) - 5e-5).abs() < 1e-12);
        assert_eq!(warmup_lr(1e-4, 10, 10), 1e-4);
        assert_eq!(warmup_lr(1e-4, 0, 0), 1e-4);
    }
}
