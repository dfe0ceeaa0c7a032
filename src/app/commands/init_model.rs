//! `arbor init-model`: a checkpoint folder of a named shape with random weights, made by
//! arbor itself (no download): the GPU check's Qwen2-0.5B- and 1.5B-shaped models, and a
//! tiny one for tests.
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::engine::policy::config::Shape;
use crate::engine::policy::tokenizer::{BOS, EOS};
use crate::engine::policy::{checkpoint, CharTokenizer, Policy, PolicyConfig};

pub struct InitModelOptions {
    pub shape: Shape,
    pub out: PathBuf,
    pub seed: u64,
}

/// Writes `out` (model.safetensors, config.json with arbor's character tokenizer; the
/// vocabulary is padded to the shape's) and prints one JSON line.
pub fn init_model(o: InitModelOptions) -> Result<()> {
    let tok = CharTokenizer::default();
    let cfg = PolicyConfig::of_shape(o.shape, tok.vocab_size(), BOS, EOS);
    let policy = Policy::init(cfg, tok.into(), o.seed, &candle_core::Device::Cpu)
        .context("cannot build the model")?;
    checkpoint::save(&policy, &o.out)
        .with_context(|| format!("cannot write {}", o.out.display()))?;
    let parameters: usize = policy.tensors().values().map(|t| t.elem_count()).sum();
    println!(
        "{}",
        serde_json::json!({
            "out": o.out, "parameters": parameters, "seed": o.seed,
            "hidden_size": policy.config.hidden_size, "layers": policy.config.num_hidden_layers,
            "vocab_size": policy.config.vocab_size,
        })
    );
    Ok(())
}
