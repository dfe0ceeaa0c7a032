//! `arbor save-model`: a run's latest policy in Hugging Face layout or as GGUF.
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

use crate::engine::policy::checkpoint;
use crate::store::Store;

pub struct SaveModelOptions {
    pub run: String,
    pub out: PathBuf,
    pub store: PathBuf,
    pub dtype: checkpoint::SaveDtype,
    /// Hugging Face layout (a folder) or one GGUF file.
    pub format: ModelFormat,
}

/// What `arbor save-model` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelFormat {
    /// A folder: model.safetensors, config.json, tokenizer.json (transformers, vLLM, SGLang).
    Hf,
    /// One .gguf file (llama.cpp, Ollama, LM Studio).
    Gguf,
}

/// `arbor save-model`: the run's latest policy in Hugging Face layout or as GGUF.
pub fn save_model(o: SaveModelOptions) -> Result<()> {
    let store = Store::open_existing(&o.store)?;
    let run = store.require_run(&o.run)?;
    let ck = store
        .checkpoints(&run.name)?
        .pop()
        .ok_or_else(|| anyhow!("run {} has no checkpoint yet", run.name))?;
    let policy = checkpoint::load(&ck.dir, &candle_core::Device::Cpu).with_context(|| {
        format!(
            "checkpoint of iteration {} of run {}",
            ck.iteration, run.name
        )
    })?;
    match o.format {
        ModelFormat::Hf => checkpoint::save_hf(&policy, &o.out, o.dtype)?,
        ModelFormat::Gguf => {
            if o.out.is_dir() {
                bail!(
                    "--out {} is a folder: --format gguf writes one file (e.g. --out policy.gguf)",
                    o.out.display()
                );
            }
            crate::engine::policy::gguf::save_gguf(&policy, &o.out, o.dtype)?
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "run": run.name,
            "iteration": ck.iteration,
            "out": o.out,
            "dtype": format!("{:?}", o.dtype).to_lowercase(),
            "format": format!("{:?}", o.format).to_lowercase(),
            "parameters": policy.num_parameters(),
        })
    );
    Ok(())
}
