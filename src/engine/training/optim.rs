//! AdamW with global gradient-norm clipping.
//!
//! candle's AdamW keeps its moments private and has no clipping; arbor needs both (the
//! paper clips at 1.0, and a resumed run must restore the moments), so this is the
//! textbook update (Loshchilov & Hutter) over named variables.
use candle_core::{backprop::GradStore, Result, Tensor, Var};

/// Optimiser settings (the paper: lr 1e-6, weight decay 0.1, clip 1.0; small models
/// trained from scratch need a far larger learning rate, see the run config).
#[derive(Clone, Debug, PartialEq)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
    /// Global L2 norm the gradient is scaled down to; 0 disables clipping.
    pub max_grad_norm: f64,
}

/// What one step did.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum StepOutcome {
    /// Parameters updated; the gradient norm before clipping.
    Applied { grad_norm: f64 },
    /// The gradient was NaN or infinite: nothing changed.
    SkippedNonFinite,
}

pub struct AdamW {
    vars: Vec<(String, Var)>,
    m: Vec<Tensor>,
    v: Vec<Tensor>,
    step: u64,
    pub config: AdamWConfig,
}

impl AdamW {
    pub fn new(vars: Vec<(String, Var)>, config: AdamWConfig) -> Result<Self> {
        let m = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        let v2 = m.clone();
        Ok(Self {
            vars,
            m,
            v: v2,
            step: 0,
            config,
        })
    }

    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// The moments as named tensors (`m.<param>`, `v.<param>`), for checkpoints.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.vars.len());
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.push((format!("m.{name}"), self.m[i].clone()));
            out.push((format!("v.{name}"), self.v[i].clone()));
        }
        out
    }

    /// Restores moments written by [`Self::state_tensors`] and the step count; every
    /// parameter's moments must be present with its shape.
    pub fn load_state(
        &mut self,
        tensors: &std::collections::HashMap<String, Tensor>,
        step: u64,
    ) -> Result<()> {
        for (i, (name, var)) in self.vars.iter().enumerate() {
            for (prefix, slot) in [("m", &mut self.m[i]), ("v", &mut self.v[i])] {
                let key = format!("{prefix}.{name}");
                let Some(t) = tensors.get(&key) else {
                    candle_core::bail!("optimizer state {key} is missing");
                };
                if t.dims() != var.dims() {
                    candle_core::bail!(
                        "optimizer state {key} has shape {:?}, the parameter {:?}",
                        t.dims(),
                        var.dims()
                    );
                }
                *slot = t.to_device(var.device())?;
            }
        }
        self.step = step;
        Ok(())
    }

    /// Global L2 norm of the gradients of the optimised variables.
    pub fn grad_norm(&self, grads: &GradStore) -> Result<f64> {
        let mut sq = 0f64;
        for (_, var) in &self.vars {
            if let Some(g) = grads.get(var.as_tensor()) {
                sq += g
                    .sqr()?
                    .sum_all()?
                    .to_dtype(candle_core::DType::F64)?
                    .to_scalar::<f64>()?;
            }
        }
        Ok(sq.sqrt())
    }

    /// One update at learning rate `lr` (a schedule may differ from `config.lr`).
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<StepOutcome> {
        let norm = self.grad_norm(grads)?;
        if !norm.is_finite() {
            return Ok(StepOutcome::SkippedNonFinite);
        }
        let c = &self.config;
        let scale = if c.max_grad_norm > 0.0 && norm > c.max_grad_norm {
            c.max_grad_norm / (norm + 1e-12)
        } else {
            1.0
        };
        self.step += 1;
        let t = self.step as i32;
        let bc1 = 1.0 - c.beta1.powi(t);
        let bc2 = 1.0 - c.beta2.powi(t);
        for (i, (_, var)) in self.vars.iter().enumerate() {
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let g = (g * scale)?;
            let m = ((&self.m[i] * c.beta1)? + (&g * (1.0 - c.beta1))?)?;
            let v = ((&self.v[i] * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&m / bc1)?;
            let v_hat = (&v / bc2)?;
            let decayed = (var.as_tensor() * (1.0 - lr * c.weight_decay))?;
            let update = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            var.set(&(decayed - (update * lr)?)?)?;
            self.m[i] = m;
            self.v[i] = v;
        }
        Ok(StepOutcome::Applied { grad_norm: norm })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Device;

    #[test]
    fn minimises_a_quadratic_and_clips() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::new(&[3.0f32, -2.0], &dev)?;
        let cfg = AdamWConfig {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            max_grad_norm: 1.0,
        };
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], cfg)?;
        let first_norm = {
            let loss = x.as_tensor().sqr()?.sum_all()?;
            let grads = loss.backward()?;
            match opt.step(&grads, 0.1)? {
                StepOutcome::Applied { grad_norm } => grad_norm,
                StepOutcome::SkippedNonFinite => panic!("finite gradient skipped"),
            }
        };
        // d/dx sum x^2 = 2x = (6, -4), norm sqrt(52).
        assert!((first_norm - 52f64.sqrt()).abs() < 1e-4);
        for _ in 0..300 {
            let loss = x.as_tensor().sqr()?.sum_all()?;
            opt.step(&loss.backward()?, 0.1)?;
        }
        let v: Vec<f32> = x.as_tensor().to_vec1()?;
        assert!(v.iter().all(|x| x.abs() < 0.05), "{v:?}");
        Ok(())
    }

    #[test]
    fn non_finite_gradient_changes_nothing() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::new(&[1.0f32], &dev)?;
        let cfg = AdamWConfig {
            lr: 0.1,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.1,
            max_grad_norm: 1.0,
        };
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], cfg)?;
        let loss = (x.as_tensor() * f64::NAN)?.sum_all()?;
        assert_eq!(
            opt.step(&loss.backward()?, 0.1)?,
            StepOutcome::SkippedNonFinite
        );
        assert_eq!(x.as_tensor().to_vec1::<f32>()?, vec![1.0]);
        assert_eq!(opt.steps_taken(), 0);
        Ok(())
    }
}
