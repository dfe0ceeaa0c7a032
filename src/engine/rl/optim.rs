//! AdamW with global gradient-norm clipping.
//!
//! candle's AdamW keeps its moments private and has no clipping; arbor needs both (the
//! paper clips at 1.0, and a resumed run must restore the moments), so this is the
//! textbook update (Loshchilov & Hutter) over named variables.
use candle_core::{
    backprop::GradStore, bail, CpuStorage, DType, InplaceOp2, InplaceOp3, Layout, Result, Storage,
    Tensor, Var,
};
use rayon::prelude::*;

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

impl AdamWConfig {
    /// Adam's usual moments (beta1 0.9, beta2 0.999, eps 1e-8) with this rate, decay and
    /// clip.
    pub fn new(lr: f64, weight_decay: f64, max_grad_norm: f64) -> Self {
        Self {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay,
            max_grad_norm,
        }
    }
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
    /// A learning rate of its own for some parameters ([`AdamW::set_lr_for`]), used
    /// instead of the step's (no warm-up); `None`: the step's.
    own_lr: Vec<Option<f64>>,
    pub config: AdamWConfig,
}

impl AdamW {
    pub fn new(vars: Vec<(String, Var)>, config: AdamWConfig) -> Result<Self> {
        let m = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        // Storage of its own (a clone would share `m`'s, and the CPU step writes in place).
        let v2 = vars
            .iter()
            .map(|(_, v)| v.zeros_like())
            .collect::<Result<Vec<_>>>()?;
        Ok(Self {
            own_lr: vec![None; vars.len()],
            vars,
            m,
            v: v2,
            step: 0,
            config,
        })
    }

    /// Gives every parameter whose name starts with `prefix` the learning rate `lr`
    /// whatever a step is given (the value head's own rate; `None`: the step's again);
    /// returns how many it named.
    pub fn set_lr_for(&mut self, prefix: &str, lr: Option<f64>) -> usize {
        let mut n = 0;
        for (i, (name, _)) in self.vars.iter().enumerate() {
            if name.starts_with(prefix) {
                self.own_lr[i] = lr;
                n += 1;
            }
        }
        n
    }

    pub fn steps_taken(&self) -> u64 {
        self.step
    }

    /// The moments as named tensors (`m.<param>`, `v.<param>`), for checkpoints: copies,
    /// since a step on the CPU updates the moments in place.
    pub fn state_tensors(&self) -> Vec<(String, Tensor)> {
        let mut out = Vec::with_capacity(2 * self.vars.len());
        for (i, (name, _)) in self.vars.iter().enumerate() {
            out.push((
                format!("m.{name}"),
                self.m[i].copy().unwrap_or_else(|_| self.m[i].clone()),
            ));
            out.push((
                format!("v.{name}"),
                self.v[i].copy().unwrap_or_else(|_| self.v[i].clone()),
            ));
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
                // A copy of its own: the CPU step updates moments in place.
                *slot = t.to_device(var.device())?.to_dtype(var.dtype())?.copy()?;
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
                let fast = crate::engine::policy::cpu::kernels_on()
                    .then(|| with_cpu_f32(g, sum_sq))
                    .flatten();
                sq += match fast {
                    Some(s) => s,
                    None => g
                        .sqr()?
                        .sum_all()?
                        .to_dtype(DType::F64)?
                        .to_scalar::<f64>()?,
                };
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
            let lr = self.own_lr[i].unwrap_or(lr);
            if in_place(var.as_tensor(), &self.m[i], &self.v[i]) {
                // One pass per tensor, no temporaries: candle's ops allocated a tensor
                // for each of the nine steps below, a tenth of a small batch's update.
                let g = g.contiguous()?;
                let (m, v) = (&self.m[i], &self.v[i]);
                m.inplace_op2(&g, &Moment::new(c.beta1, scale, false))?;
                v.inplace_op2(&g, &Moment::new(c.beta2, scale, true))?;
                let apply = Apply {
                    decay: (1.0 - lr * c.weight_decay) as f32,
                    lr: lr as f32,
                    inv_bc1: (1.0 / bc1) as f32,
                    inv_bc2: (1.0 / bc2) as f32,
                    eps: c.eps as f32,
                };
                var.as_tensor().inplace_op3(m, v, &apply)?;
                continue;
            }
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

/// Whether a parameter and its moments can be updated in place (contiguous f32 on the
/// CPU); elsewhere the step runs on candle's ops.
fn in_place(w: &Tensor, m: &Tensor, v: &Tensor) -> bool {
    [w, m, v]
        .iter()
        .all(|t| t.device().is_cpu() && t.dtype() == DType::F32 && t.is_contiguous())
        && crate::engine::policy::cpu::kernels_on()
}

/// `f` of `t`'s elements, when `t` is contiguous f32 on the CPU.
fn with_cpu_f32<R>(t: &Tensor, f: impl FnOnce(&[f32]) -> R) -> Option<R> {
    let (storage, layout) = t.storage_and_layout();
    match &*storage {
        Storage::Cpu(s) => slice(s, layout).ok().map(f),
        _ => None,
    }
}

/// `sum x^2` in f64, eight partial sums so the loop vectorises.
fn sum_sq(x: &[f32]) -> f64 {
    let mut acc = [0f64; 8];
    let mut blocks = x.chunks_exact(8);
    for b in &mut blocks {
        for (a, &v) in acc.iter_mut().zip(b) {
            *a += v as f64 * v as f64;
        }
    }
    let tail: f64 = blocks
        .remainder()
        .iter()
        .map(|&v| v as f64 * v as f64)
        .sum();
    acc.iter().sum::<f64>() + tail
}

fn slice<'a>(s: &'a CpuStorage, l: &Layout) -> Result<&'a [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&v[a..b]),
        _ => bail!("AdamW in place needs contiguous f32 tensors"),
    }
}

fn slice_mut<'a>(s: &'a mut CpuStorage, l: &Layout) -> Result<&'a mut [f32]> {
    match (s, l.contiguous_offsets()) {
        (CpuStorage::F32(v), Some((a, b))) => Ok(&mut v[a..b]),
        _ => bail!("AdamW in place needs contiguous f32 tensors"),
    }
}

/// Elements per task when a pass is split over threads.
const CHUNK: usize = 1 << 14;

/// One moment in place: `m = beta m + (1 - beta) (scale g)`, or with `square`
/// `v = beta v + (1 - beta) (scale g)^2`.
struct Moment {
    beta: f32,
    rest: f32,
    scale: f32,
    square: bool,
}

impl Moment {
    fn new(beta: f64, scale: f64, square: bool) -> Self {
        Moment {
            beta: beta as f32,
            rest: (1.0 - beta) as f32,
            scale: scale as f32,
            square,
        }
    }

    fn run(&self, m: &mut [f32], g: &[f32]) {
        for (m, &g) in m.iter_mut().zip(g) {
            let g = g * self.scale;
            let g = if self.square { g * g } else { g };
            *m = *m * self.beta + g * self.rest;
        }
    }
}

impl InplaceOp2 for Moment {
    fn name(&self) -> &'static str {
        "arbor-adamw-moment"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<()> {
        let (m, g) = (slice_mut(s1, l1)?, slice(s2, l2)?);
        if m.len() != g.len() {
            bail!("AdamW: a gradient of {} elements for {}", g.len(), m.len());
        }
        m.par_chunks_mut(CHUNK)
            .zip(g.par_chunks(CHUNK))
            .for_each(|(m, g)| self.run(m, g));
        Ok(())
    }
}

/// The weight update in place from the new moments:
/// `w = decay w - lr (m / bc1) / (sqrt(v / bc2) + eps)`.
struct Apply {
    decay: f32,
    lr: f32,
    inv_bc1: f32,
    inv_bc2: f32,
    eps: f32,
}

impl Apply {
    fn run(&self, w: &mut [f32], m: &[f32], v: &[f32]) {
        for ((w, &m), &v) in w.iter_mut().zip(m).zip(v) {
            let update = (m * self.inv_bc1) / ((v * self.inv_bc2).sqrt() + self.eps);
            *w = *w * self.decay - update * self.lr;
        }
    }
}

impl InplaceOp3 for Apply {
    fn name(&self) -> &'static str {
        "arbor-adamw-apply"
    }

    fn cpu_fwd(
        &self,
        s1: &mut CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<()> {
        let (w, m, v) = (slice_mut(s1, l1)?, slice(s2, l2)?, slice(s3, l3)?);
        if m.len() != w.len() || v.len() != w.len() {
            bail!(
                "AdamW: moments of {} and {} elements for {}",
                m.len(),
                v.len(),
                w.len()
            );
        }
        w.par_chunks_mut(CHUNK)
            .zip(m.par_chunks(CHUNK).zip(v.par_chunks(CHUNK)))
            .for_each(|(w, (m, v))| self.run(w, m, v));
        Ok(())
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
        let cfg = AdamWConfig::new(0.1, 0.0, 1.0);
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

    /// The in-place step against the textbook update written out in f64, over three
    /// steps with clipping and weight decay, on a tensor longer than one task's chunk.
    #[test]
    fn the_in_place_step_is_the_textbook_update() -> Result<()> {
        let dev = Device::Cpu;
        let n = CHUNK + 37;
        let w0: Vec<f32> = (0..n)
            .map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0)
            .collect();
        let x = Var::from_vec(w0.clone(), n, &dev)?;
        let cfg = AdamWConfig::new(0.01, 0.1, 1.0);
        let mut opt = AdamW::new(vec![("x".into(), x.clone())], cfg.clone())?;
        let (mut w, mut m, mut v) = (
            w0.iter().map(|&a| a as f64).collect::<Vec<_>>(),
            vec![0f64; n],
            vec![0f64; n],
        );
        for t in 1..=3 {
            // loss = sum x^3 / 3: gradient x^2, clipped (its norm is far above 1).
            let loss = (x.as_tensor().powf(3.0)? / 3.0)?.sum_all()?;
            opt.step(&loss.backward()?, cfg.lr)?;
            let norm = w.iter().map(|a| a.powi(4)).sum::<f64>().sqrt();
            let scale = cfg.max_grad_norm / (norm + 1e-12);
            let (bc1, bc2) = (1.0 - cfg.beta1.powi(t), 1.0 - cfg.beta2.powi(t));
            for i in 0..n {
                let g = w[i] * w[i] * scale;
                m[i] = cfg.beta1 * m[i] + (1.0 - cfg.beta1) * g;
                v[i] = cfg.beta2 * v[i] + (1.0 - cfg.beta2) * g * g;
                let update = (m[i] / bc1) / ((v[i] / bc2).sqrt() + cfg.eps);
                w[i] = w[i] * (1.0 - cfg.lr * cfg.weight_decay) - cfg.lr * update;
            }
        }
        let got = x.as_tensor().to_vec1::<f32>()?;
        let worst = got
            .iter()
            .zip(&w)
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0f64, f64::max);
        assert!(worst < 1e-5, "largest difference {worst}");
        let state = opt.state_tensors();
        let m_got = state[0].1.to_vec1::<f32>()?;
        let m_worst = m_got
            .iter()
            .zip(&m)
            .map(|(&a, &b)| (a as f64 - b).abs())
            .fold(0f64, f64::max);
        assert!(m_worst < 1e-7, "first moment off by {m_worst}");
        Ok(())
    }

    #[test]
    fn non_finite_gradient_changes_nothing() -> Result<()> {
        let dev = Device::Cpu;
        let x = Var::new(&[1.0f32], &dev)?;
        let cfg = AdamWConfig::new(0.1, 0.1, 1.0);
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

    /// Parameters given a rate of their own move by it whatever the step's rate is; the
    /// others by the step's (the value head's own learning rate, tree_distill).
    #[test]
    fn a_parameter_with_its_own_rate_ignores_the_steps_rate() -> Result<()> {
        let dev = Device::Cpu;
        let head = Var::new(&[1.0f32, 1.0], &dev)?;
        let body = Var::new(&[1.0f32, 1.0], &dev)?;
        let cfg = AdamWConfig::new(0.1, 0.0, 0.0);
        let vars = vec![
            ("body.w".to_string(), body.clone()),
            ("value_head.w".to_string(), head.clone()),
        ];
        let mut opt = AdamW::new(vars, cfg)?;
        assert_eq!(opt.set_lr_for("value_head.", Some(0.5)), 1);
        let loss = (head.as_tensor().sum_all()? + body.as_tensor().sum_all()?)?;
        opt.step(&loss.backward()?, 0.0)?;
        // Adam's first step moves each weight by its rate (the gradient's sign).
        let h: Vec<f32> = head.as_tensor().to_vec1()?;
        let b: Vec<f32> = body.as_tensor().to_vec1()?;
        assert!(h.iter().all(|x| (x - 0.5).abs() < 1e-4), "{h:?}");
        assert_eq!(b, vec![1.0, 1.0]);
        Ok(())
    }
}
