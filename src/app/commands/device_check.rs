//! `arbor device-check`: the device path against the CPU kernels on one model. The same
//! batch goes through the model on the CPU (arbor's kernels: fused ops, the taped
//! backward, in-place AdamW) and on `--device` (candle's ops and autograd, the path CUDA
//! runs; with `--device cpu`, the CPU under [`generic`]): the logits, the loss of one
//! update step, its gradient norm and the weights after it must agree within a
//! tolerance. Prints one JSON line; exits non-zero when they do not agree.
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use candle_core::Device;
use rand::{Rng, SeedableRng};

use crate::engine::policy::checkpoint;
use crate::engine::policy::cpu::generic;
use crate::engine::rl::objective::Clip;
use crate::engine::rl::optim::{AdamW, AdamWConfig};
use crate::engine::rl::update::{policy_update, PolicyObjective, Sample, UpdateSettings};

pub struct DeviceCheckOptions {
    pub model: PathBuf,
    /// cpu or cuda.
    pub device: String,
    /// Largest relative difference allowed (to the largest magnitude compared).
    pub tolerance: f64,
    pub seed: u64,
}

/// What one side computed.
struct Side {
    logits: Vec<f32>,
    loss: f64,
    grad_norm: f64,
    weights: Vec<f32>,
}

fn side(model: &std::path::Path, device: &Device, samples: &[Sample], ids: &[u32]) -> Result<Side> {
    let policy = checkpoint::load(model, device)
        .with_context(|| format!("cannot load {}", model.display()))?;
    let x = candle_core::Tensor::from_vec(ids.to_vec(), (1, ids.len()), device)?;
    let logits = policy
        .sampler_model()?
        .forward_train(&x)?
        .to_dtype(candle_core::DType::F32)?
        .flatten_all()?
        .to_vec1::<f32>()?;
    let mut opt = AdamW::new(policy.vars(), AdamWConfig::new(1e-4, 0.0, 1.0))?;
    let settings = UpdateSettings {
        objective: PolicyObjective::Clipped(Clip {
            low: 0.2,
            high: 0.28,
            dual: Some(10.0),
        }),
        value_coef: 0.0,
        kl_coef: 0.0,
        reference: None,
        minibatches: 1,
        epochs: 1,
        lr: 1e-4,
        warmup_steps: 0,
        compute: candle_core::DType::F32,
        poison: false,
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let stats = policy_update(&policy, &mut opt, samples, &settings, &mut rng)?;
    // The embedding after the step (every row a token of the batch touched moved).
    let weights = policy
        .tensors()
        .into_iter()
        .find(|(k, _)| k.ends_with("embed_tokens.weight"))
        .map(|(_, t)| -> Result<Vec<f32>> {
            Ok(t.to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1::<f32>()?)
        })
        .transpose()?
        .unwrap_or_default();
    Ok(Side {
        logits,
        loss: stats.loss,
        grad_norm: stats.grad_norm,
        weights,
    })
}

/// Largest |a - b| relative to the largest |a|.
fn rel_diff(a: &[f32], b: &[f32]) -> f64 {
    let scale = a.iter().fold(1e-12f64, |m, v| m.max(v.abs() as f64));
    let d = a
        .iter()
        .zip(b)
        .fold(0f64, |m, (x, y)| m.max((*x as f64 - *y as f64).abs()));
    if a.len() != b.len() {
        return f64::INFINITY;
    }
    d / scale
}

pub fn device_check(o: DeviceCheckOptions) -> Result<()> {
    let (device, note) = crate::engine::policy::device::choose(&o.device)?;
    if o.device == "cuda" && device.is_cpu() {
        bail!(
            "--device cuda: {}",
            note.unwrap_or_else(|| "no CUDA device".into())
        );
    }
    let probe = checkpoint::load(&o.model, &Device::Cpu)
        .with_context(|| format!("cannot load {}", o.model.display()))?;
    let vocab = probe.tokenizer.vocab_size() as u32;
    drop(probe);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(o.seed);
    let mut draw = |n: usize| -> Vec<u32> { (0..n).map(|_| rng.random_range(3..vocab)).collect() };
    let ids = draw(24);
    let samples: Vec<Sample> = (0..4)
        .map(|i| Sample {
            prompt: draw(6),
            response: draw(10 + 3 * i),
            advantages: vec![if i % 2 == 0 { 0.8 } else { -0.5 }; 10 + 3 * i],
            returns: Vec::new(),
        })
        .collect();
    let start = std::time::Instant::now();
    let reference = side(&o.model, &Device::Cpu, &samples, &ids)?;
    let cpu_seconds = start.elapsed().as_secs_f64();
    let start = std::time::Instant::now();
    let candidate = if device.is_cpu() {
        generic(|| side(&o.model, &device, &samples, &ids))?
    } else {
        side(&o.model, &device, &samples, &ids)?
    };
    let device_seconds = start.elapsed().as_secs_f64();
    let rel = |a: f64, b: f64| (a - b).abs() / a.abs().max(1e-6);
    let logits = rel_diff(&reference.logits, &candidate.logits);
    let loss = rel(reference.loss, candidate.loss);
    let grad_norm = rel(reference.grad_norm, candidate.grad_norm);
    let weights = rel_diff(&reference.weights, &candidate.weights);
    let ok = [logits, loss, grad_norm, weights]
        .iter()
        .all(|d| *d <= o.tolerance);
    println!(
        "{}",
        serde_json::json!({
            "model": o.model,
            "device": if device.is_cpu() { "cpu (generic path)".to_string() } else { format!("{device:?}") },
            "reference": "cpu (arbor's kernels)",
            "tolerance": o.tolerance,
            "logits_rel_diff": logits,
            "loss": [reference.loss, candidate.loss], "loss_rel_diff": loss,
            "grad_norm": [reference.grad_norm, candidate.grad_norm], "grad_norm_rel_diff": grad_norm,
            "weights_after_step_rel_diff": weights,
            "seconds": {"reference": cpu_seconds, "device": device_seconds},
            "ok": ok,
        })
    );
    if !ok {
        bail!(
            "the device path disagrees with the CPU kernels beyond {}: logits {logits:.2e}, loss {loss:.2e}, gradient norm {grad_norm:.2e}, weights {weights:.2e}",
            o.tolerance
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The CPU's generic path agrees with the kernels on a tiny random model, and a
    /// disagreement is reported as one (a tolerance of zero cannot be met by two paths
    /// that sum in different orders).
    #[test]
    fn the_generic_path_passes_and_a_zero_tolerance_fails() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("tiny");
        crate::app::commands::init_model::init_model(
            crate::app::commands::init_model::InitModelOptions {
                shape: crate::engine::policy::config::Shape::Tiny,
                out: out.clone(),
                seed: 3,
            },
        )
        .unwrap();
        let o = |tolerance| DeviceCheckOptions {
            model: out.clone(),
            device: "cpu".into(),
            tolerance,
            seed: 1,
        };
        device_check(o(1e-3)).unwrap();
        let e = device_check(o(0.0)).unwrap_err().to_string();
        assert!(e.contains("disagrees"), "{e}");
    }

    #[test]
    fn relative_differences_scale_by_the_largest_value() {
        assert_eq!(rel_diff(&[2.0, -4.0], &[2.0, -4.0]), 0.0);
        assert!((rel_diff(&[2.0, -4.0], &[2.5, -4.0]) - 0.125).abs() < 1e-12);
        assert_eq!(rel_diff(&[1.0], &[1.0, 2.0]), f64::INFINITY);
    }
}
