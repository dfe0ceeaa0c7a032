//! A fit of the value head alone on scored samples, the trunk frozen: its features are
//! the frozen model's hidden states, computed once. Search distillation fits a fresh
//! head this way on the starting policy's own samples before RL, so its first searches
//! do not run on a random value (the write-up starts from a random head).
use candle_core::{Result, Tensor};
use rand::seq::SliceRandom;
use rand::Rng;
use serde::{Deserialize, Serialize};

use crate::engine::policy::model::VALUE_HEAD_PREFIX;
use crate::engine::policy::Policy;
use crate::engine::rl::batch::TokenBatch;
use crate::engine::rl::cispo::value_loss;
use crate::engine::rl::optim::{AdamW, AdamWConfig, StepOutcome};
use crate::engine::rl::update::{batch_of, explained_variance, Sample};

/// What a fit did, measured on held-out samples before and after.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ValueFit {
    /// Problems sampled and samples drawn (fit and held out).
    pub problems: usize,
    pub samples: usize,
    /// Samples the head was fitted on; the rest are held out.
    pub fit_samples: usize,
    /// Generated tokens the samples cost (charged to the run's budget).
    pub tokens: u64,
    /// Optimizer steps taken and their learning rate.
    pub steps: u64,
    pub lr: f64,
    /// Value loss (squared error) on the held-out samples before and after.
    pub heldout_loss_before: f64,
    pub heldout_loss_after: f64,
    /// Explained variance of the held-out returns before and after (`None`: they do not
    /// vary).
    pub heldout_explained_variance_before: Option<f64>,
    pub heldout_explained_variance_after: Option<f64>,
    pub seconds: f64,
}

/// Sequences per step of the fit.
pub const FIT_BATCH: usize = 32;

/// The frozen trunk's features of `samples` in batches of [`FIT_BATCH`].
fn features(policy: &Policy, samples: &[Sample]) -> Result<Vec<(Tensor, TokenBatch)>> {
    let frozen = policy.sampler_model()?;
    let idx: Vec<usize> = (0..samples.len()).collect();
    idx.chunks(FIT_BATCH)
        .map(|c| {
            let b = batch_of(samples, c, policy.device())?;
            Ok((frozen.hidden_train(&b.ids)?.detach(), b))
        })
        .collect()
}

/// Mean value loss and explained variance of the head over `batches`.
fn measure(
    model: &crate::engine::policy::Qwen2,
    batches: &[(Tensor, TokenBatch)],
) -> Result<(f64, Option<f64>)> {
    let (mut v, mut r, mut m) = (Vec::new(), Vec::new(), Vec::new());
    let mut loss = 0.0;
    let mut tokens = 0.0;
    for (h, b) in batches {
        let values = model.values(h)?.detach();
        let n = b.mask.sum_all()?.to_scalar::<f32>()? as f64;
        loss += value_loss(&values, &b.returns, &b.mask)?.to_scalar::<f32>()? as f64 * n;
        tokens += n;
        v.extend(values.flatten_all()?.to_vec1::<f32>()?);
        r.extend(b.returns.flatten_all()?.to_vec1::<f32>()?);
        m.extend(b.mask.flatten_all()?.to_vec1::<f32>()?);
    }
    Ok((loss / tokens.max(1.0), explained_variance(&v, &r, &m)))
}

/// Fits the value head of `policy` on `fit` for `steps` steps of [`FIT_BATCH`] sequences
/// at `lr` (the trunk untouched), measuring it on `heldout`. Every sample needs returns.
pub fn fit_value_head<R: Rng>(
    policy: &Policy,
    fit: &[Sample],
    heldout: &[Sample],
    steps: usize,
    lr: f64,
    rng: &mut R,
) -> Result<ValueFit> {
    let t0 = std::time::Instant::now();
    if fit.iter().chain(heldout).any(|s| s.returns.is_empty()) {
        candle_core::bail!("a value fit needs a return on every sample");
    }
    let model = policy.trainable()?;
    if !model.has_value_head() {
        candle_core::bail!("this policy has no value head to fit");
    }
    let head: Vec<_> = policy
        .vars()
        .into_iter()
        .filter(|(k, _)| k.starts_with(VALUE_HEAD_PREFIX))
        .collect();
    let mut opt = AdamW::new(head, AdamWConfig::new(lr, 0.0, 1.0))?;
    let train = features(policy, fit)?;
    let held = features(policy, heldout)?;
    let (loss_before, ev_before) = measure(&model, &held)?;
    let mut order: Vec<usize> = Vec::new();
    let mut taken = 0;
    while taken < steps && !train.is_empty() {
        if order.is_empty() {
            order = (0..train.len()).collect();
            order.shuffle(rng);
        }
        let Some(i) = order.pop() else { break };
        let (h, b) = &train[i];
        let loss = value_loss(&model.values(h)?, &b.returns, &b.mask)?;
        if let StepOutcome::Applied { .. } = opt.step(&loss.backward()?, lr)? {
            taken += 1;
        } else {
            break;
        }
    }
    let (loss_after, ev_after) = measure(&model, &held)?;
    Ok(ValueFit {
        problems: 0,
        samples: fit.len() + heldout.len(),
        fit_samples: fit.len(),
        tokens: 0,
        steps: taken as u64,
        lr,
        heldout_loss_before: loss_before,
        heldout_loss_after: loss_after,
        heldout_explained_variance_before: ev_before,
        heldout_explained_variance_after: ev_after,
        seconds: t0.elapsed().as_secs_f64(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policy::{CharTokenizer, PolicyConfig};
    use rand::SeedableRng;

    fn tiny_policy() -> Policy {
        let tok = CharTokenizer::default();
        let cfg = PolicyConfig::micro(tok.vocab_size());
        Policy::init(cfg, tok.into(), 5, &candle_core::Device::Cpu).unwrap()
    }

    /// Returns that depend on the sequence (+1 for one prompt, -1 for the other) are
    /// learned by the head alone: held-out loss falls, explained variance rises, and no
    /// weight outside the head moves.
    #[test]
    fn the_head_learns_held_out_returns_and_the_trunk_stays() {
        let mut policy = tiny_policy();
        policy.add_value_head(3).unwrap();
        let sample = |p: u32, r: f32| Sample {
            prompt: vec![1, p, p],
            response: vec![5, 6, 7],
            advantages: Vec::new(),
            returns: vec![r; 3],
        };
        let fit: Vec<Sample> = (0..16)
            .map(|i| {
                if i % 2 == 0 {
                    sample(8, 0.8)
                } else {
                    sample(9, -0.8)
                }
            })
            .collect();
        let held = vec![sample(8, 0.8), sample(9, -0.8)];
        let trunk = || -> Vec<(String, Vec<f32>)> {
            policy
                .tensors()
                .into_iter()
                .filter(|(k, _)| !k.starts_with(VALUE_HEAD_PREFIX))
                .map(|(k, t)| (k, t.flatten_all().unwrap().to_vec1().unwrap()))
                .collect()
        };
        let trunk_before = trunk();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        let f = fit_value_head(&policy, &fit, &held, 150, 3e-3, &mut rng).unwrap();
        assert_eq!(f.steps, 150);
        assert!(f.heldout_loss_after < 0.25 * f.heldout_loss_before, "{f:?}");
        assert!(f.heldout_explained_variance_after.unwrap() > 0.7, "{f:?}");
        assert_eq!(trunk_before, trunk());
    }

    #[test]
    fn a_sample_without_returns_is_refused() {
        let mut policy = tiny_policy();
        policy.add_value_head(3).unwrap();
        let s = Sample {
            prompt: vec![1, 2],
            response: vec![3],
            advantages: vec![1.0],
            returns: Vec::new(),
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
        assert!(fit_value_head(&policy, &[s], &[], 1, 1e-3, &mut rng).is_err());
    }
}
