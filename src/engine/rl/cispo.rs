//! The CISPO objective (MiniMax-M1; TRL's `loss_type = "cispo"`): every token keeps its
//! gradient, weighted by its clipped, detached importance ratio,
//!
//! `L = - mean_t [ sg(min(r_t, eps_high)) * A_t * log pi(a_t | s_t) ]`,
//!
//! plus, for search distillation, the value head's squared error to the trajectory's
//! return and a k3 estimate of the KL divergence to the initial policy,
//! `k3 = exp(ref - new) - (ref - new) - 1` per token. All token means are over the mask.
use candle_core::{Result, Tensor};
use serde::{Deserialize, Serialize};

/// The `cispo` baseline's settings (`[cispo]`).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CispoConfig {
    /// Samples per problem (the write-up: 16). Default 16.
    pub group_size: usize,
    /// Cap on the importance weight, `min(r, eps_high)`. Default 5.
    pub eps_high: f64,
    /// Coefficient of the k3 KL to the initial policy (0: off, no reference forward).
    /// Default 0.
    pub kl_coef: f64,
}

impl Default for CispoConfig {
    fn default() -> Self {
        Self {
            group_size: 16,
            eps_high: 5.0,
            kl_coef: 0.0,
        }
    }
}

/// The loss terms of one mini-batch, as scalars for the metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct CispoTerms {
    pub policy: f64,
    pub value: f64,
    pub kl: f64,
}

/// Per-token CISPO loss as a scalar reference: its value is `-min(r, eps) * A * logp`.
pub fn cispo_token_loss(a: f64, logp_new: f64, logp_old: f64, eps_high: f64) -> f64 {
    let r = (logp_new - logp_old).exp();
    -(r.min(eps_high)) * a * logp_new
}

/// The scalar reference's derivative in `logp_new`: the weight is a constant (stop
/// gradient), so `-min(r, eps) * A`.
pub fn cispo_token_grad(a: f64, logp_new: f64, logp_old: f64, eps_high: f64) -> f64 {
    let r = (logp_new - logp_old).exp();
    -(r.min(eps_high)) * a
}

/// k3 estimate of KL(new || ref) for one token.
pub fn k3(logp_new: f64, logp_ref: f64) -> f64 {
    let d = logp_ref - logp_new;
    d.exp() - d - 1.0
}

fn token_mean(x: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let count = mask.sum_all()?.to_scalar::<f32>()?.max(1.0);
    (x * mask)?.sum_all()? / count as f64
}

/// Token-mean CISPO policy loss over `(batch, len)` tensors; differentiable in `logp_new`
/// through `log pi` only (the ratio is detached).
pub fn cispo_loss(
    logp_new: &Tensor,
    logp_old: &Tensor,
    adv: &Tensor,
    mask: &Tensor,
    eps_high: f64,
) -> Result<Tensor> {
    let w = (logp_new.detach() - logp_old)?
        .exp()?
        .clamp(0.0, eps_high)?
        .detach();
    let l = (w * adv)?.neg()?.mul(logp_new)?;
    token_mean(&l, mask)
}

/// Token-mean squared error of the value head's estimates to the returns.
pub fn value_loss(values: &Tensor, returns: &Tensor, mask: &Tensor) -> Result<Tensor> {
    token_mean(&(values - returns)?.sqr()?, mask)
}

/// Token-mean k3 KL to a reference policy's log-probabilities (detached).
pub fn kl_k3(logp_new: &Tensor, logp_ref: &Tensor, mask: &Tensor) -> Result<Tensor> {
    let d = (logp_ref.detach() - logp_new)?;
    let k = ((d.exp()? - &d)? - 1.0)?;
    token_mean(&k, mask)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn t(v: &[f32]) -> Tensor {
        Tensor::from_slice(v, (2, 3), &Device::Cpu).unwrap()
    }

    const NEW: [f32; 6] = [-0.3, -2.0, -0.1, -1.2, -0.7, -0.05];
    const OLD: [f32; 6] = [-0.5, -0.2, -0.1, -3.5, -0.7, -0.05];
    const ADV: [f32; 6] = [1.0, -0.5, 0.3, 2.0, -1.0, 0.7];
    const MASK: [f32; 6] = [1.0, 1.0, 1.0, 1.0, 1.0, 0.0];

    #[test]
    fn loss_value_matches_the_scalar_reference() {
        // Token 3 has r = exp(2.3) ~ 9.97 > 5: capped.
        let got = cispo_loss(&t(&NEW), &t(&OLD), &t(&ADV), &t(&MASK), 5.0)
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        let want: f64 = (0..5)
            .map(|i| cispo_token_loss(ADV[i] as f64, NEW[i] as f64, OLD[i] as f64, 5.0))
            .sum::<f64>()
            / 5.0;
        assert!((got - want).abs() < 1e-5, "{got} vs {want}");
    }

    #[test]
    fn gradients_treat_the_clipped_ratio_as_a_constant() {
        let new = Var::from_tensor(&t(&NEW)).unwrap();
        let loss = cispo_loss(new.as_tensor(), &t(&OLD), &t(&ADV), &t(&MASK), 5.0).unwrap();
        let g = loss.backward().unwrap();
        let got: Vec<f32> = g
            .get(new.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        for i in 0..6 {
            let want = if MASK[i] == 0.0 {
                0.0
            } else {
                cispo_token_grad(ADV[i] as f64, NEW[i] as f64, OLD[i] as f64, 5.0) / 5.0
            };
            assert!(
                (got[i] as f64 - want).abs() < 1e-5,
                "token {i}: {} vs {want}",
                got[i]
            );
        }
        // Without the stop gradient the derivative would carry d(r)/d(logp) * A * logp
        // too: on token 0 (r < eps) that term is -r * A * logp / 5, which is not zero, so
        // the reference above really tests the detachment.
        let r0 = ((NEW[0] - OLD[0]) as f64).exp();
        let extra = -r0 * ADV[0] as f64 * NEW[0] as f64 / 5.0;
        assert!(extra.abs() > 1e-3);
    }

    #[test]
    fn k3_is_zero_at_the_reference_and_positive_elsewhere() {
        assert_eq!(k3(-1.0, -1.0), 0.0);
        assert!(k3(-1.0, -2.0) > 0.0 && k3(-2.0, -1.0) > 0.0);
        let got = kl_k3(&t(&NEW), &t(&OLD), &t(&MASK))
            .unwrap()
            .to_scalar::<f32>()
            .unwrap() as f64;
        let want: f64 = (0..5)
            .map(|i| k3(NEW[i] as f64, OLD[i] as f64))
            .sum::<f64>()
            / 5.0;
        assert!((got - want).abs() < 1e-4, "{got} vs {want}");
    }

    #[test]
    fn value_loss_is_the_masked_mean_squared_error() {
        let v = t(&[0.5, 0.0, -0.5, 1.0, 0.0, 9.0]);
        let r = t(&[1.0, 1.0, 1.0, 0.0, 0.0, 0.0]);
        let got = value_loss(&v, &r, &t(&MASK))
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        // (0.25 + 1 + 2.25 + 1 + 0) / 5
        assert!((got - 0.9).abs() < 1e-6, "{got}");
    }
}
