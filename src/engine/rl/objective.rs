//! Advantages and the clipped policy-gradient loss, pure over plain data and tensors.
//!
//! GRPO normalises a group's rewards by mean and standard deviation; DAPO and Tree-GRPO
//! subtract the mean only. The loss is PPO's clipped surrogate with clip-higher (separate
//! lower and upper ratio bounds) and dual clip (a cap on the loss of negative-advantage
//! tokens), averaged over all valid tokens of the mini-batch (token-mean).
use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// How a group's scores become advantages.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum AdvantageNorm {
    /// `(r - mean) / (std + eps)`: GRPO.
    MeanStd,
    /// `r - mean`: DAPO as DeepSearch uses it, and Tree-GRPO.
    #[default]
    MeanOnly,
}

/// Small constant under the standard deviation.
pub const STD_EPS: f32 = 1e-6;

/// Advantages of one group of outcome rewards.
pub fn group_advantages(rewards: &[f32], norm: AdvantageNorm) -> Vec<f32> {
    if rewards.is_empty() {
        return Vec::new();
    }
    let n = rewards.len() as f32;
    let mean = rewards.iter().sum::<f32>() / n;
    match norm {
        AdvantageNorm::MeanOnly => rewards.iter().map(|r| r - mean).collect(),
        AdvantageNorm::MeanStd => {
            let var = rewards.iter().map(|r| (r - mean).powi(2)).sum::<f32>() / n;
            let std = var.sqrt();
            rewards
                .iter()
                .map(|r| (r - mean) / (std + STD_EPS))
                .collect()
        }
    }
}

/// Ratio clipping of the surrogate loss.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Clip {
    /// Lower bound is `1 - low` (paper: 0.2).
    pub low: f64,
    /// Upper bound is `1 + high` (clip-higher, paper: 0.28; plain PPO/GRPO: 0.2).
    pub high: f64,
    /// Dual clip: the loss of a negative-advantage token is at most `-A * c` (paper: 10).
    pub dual: Option<f64>,
}

/// The per-token loss for advantage `a` and ratio `rho`, as a scalar reference.
pub fn token_loss(a: f64, rho: f64, clip: &Clip) -> f64 {
    let clipped = rho.clamp(1.0 - clip.low, 1.0 + clip.high);
    let l = (-a * rho).max(-a * clipped);
    match clip.dual {
        Some(c) if a < 0.0 => l.min(-a * c),
        _ => l,
    }
}

/// Token-mean clipped surrogate over `(batch, len)` tensors; `mask` is 1 on response
/// tokens and 0 elsewhere. Differentiable in `logp_new`.
pub fn policy_loss(
    logp_new: &Tensor,
    logp_old: &Tensor,
    adv: &Tensor,
    mask: &Tensor,
    clip: &Clip,
) -> Result<Tensor> {
    let rho = (logp_new - logp_old)?.exp()?;
    let neg_a = adv.neg()?;
    let unclipped = (&neg_a * &rho)?;
    let clipped = (&neg_a * rho.clamp(1.0 - clip.low, 1.0 + clip.high)?)?;
    let mut l = unclipped.maximum(&clipped)?;
    if let Some(c) = clip.dual {
        let cap = (&neg_a * c)?;
        let negative = adv.lt(0.0)?.to_dtype(l.dtype())?;
        let capped = l.minimum(&cap)?;
        // l + [A < 0] * (min(l, -A c) - l)
        l = (&l + (negative * (capped - &l)?)?)?;
    }
    let count = mask.sum_all()?.to_scalar::<f32>()?.max(1.0);
    (l * mask)?.sum_all()? / count as f64
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn mean_only_matches_the_worked_example() {
        // DeepSearch (arXiv 2509.25454) section 8: 2 correct, 6 wrong -> mu = -0.5; correct +1.5, wrong -0.5.
        let r = [1., 1., -1., -1., -1., -1., -1., -1.];
        let a = group_advantages(&r, AdvantageNorm::MeanOnly);
        assert!((a[0] - 1.5).abs() < 1e-6 && (a[2] + 0.5).abs() < 1e-6);
    }

    #[test]
    fn mean_std_is_zero_for_uniform_groups_and_unit_scale_otherwise() {
        assert!(group_advantages(&[1., 1., 1.], AdvantageNorm::MeanStd)
            .iter()
            .all(|a| a.abs() < 1e-6));
        let a = group_advantages(&[1., 0., 0., 0.], AdvantageNorm::MeanStd);
        let var = a.iter().map(|x| x * x).sum::<f32>() / 4.0;
        assert!((var - 1.0).abs() < 1e-3, "{a:?}");
    }

    #[test]
    fn scalar_loss_clips_both_ways_and_dual_clips() {
        let clip = Clip {
            low: 0.2,
            high: 0.28,
            dual: Some(10.0),
        };
        // Positive advantage: gain stops at 1.28.
        assert!((token_loss(1.0, 2.0, &clip) + 1.28).abs() < 1e-12);
        // Positive advantage, ratio below the range: unclipped (pessimistic).
        assert!((token_loss(1.0, 0.5, &clip) + 0.5).abs() < 1e-12);
        // Negative advantage: ratio below 0.8 is clipped to 0.8.
        assert!((token_loss(-1.0, 0.5, &clip) - 0.8).abs() < 1e-12);
        // Negative advantage, huge ratio: dual clip caps the loss at 10.
        assert!((token_loss(-1.0, 50.0, &clip) - 10.0).abs() < 1e-12);
        let no_dual = Clip { dual: None, ..clip };
        assert!((token_loss(-1.0, 50.0, &no_dual) - 50.0).abs() < 1e-12);
    }

    #[test]
    fn tensor_loss_agrees_with_the_scalar_reference() -> Result<()> {
        let dev = Device::Cpu;
        let clip = Clip {
            low: 0.2,
            high: 0.28,
            dual: Some(3.0),
        };
        let new = [0.0f32, -0.5, 0.7, -2.0, 1.5, 0.1];
        let old = [0.0f32, 0.0, 0.0, 0.0, 0.0, 0.0];
        let adv = [1.0f32, -1.0, 1.0, -1.0, -2.0, 0.5];
        let mask = [1.0f32, 1.0, 1.0, 1.0, 1.0, 0.0];
        let t = |v: &[f32]| Tensor::from_slice(v, (2, 3), &dev);
        let got =
            policy_loss(&t(&new)?, &t(&old)?, &t(&adv)?, &t(&mask)?, &clip)?.to_scalar::<f32>()?;
        let want: f64 = (0..5)
            .map(|i| token_loss(adv[i] as f64, ((new[i] - old[i]) as f64).exp(), &clip))
            .sum::<f64>()
            / 5.0;
        assert!((got as f64 - want).abs() < 1e-5, "{got} vs {want}");
        Ok(())
    }
}
