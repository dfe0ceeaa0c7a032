//! Checkpoints: `model.safetensors` plus `config.json` (Hugging Face layout), written to a
//! temporary name and renamed so a crash never leaves half a checkpoint.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::{CharTokenizer, Policy, PolicyConfig};

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not a valid checkpoint config: {message}")]
    Config { path: PathBuf, message: String },
    #[error("{path}: cannot read weights: {message}")]
    Weights { path: PathBuf, message: String },
}

/// The tokenizer is stored beside the config so a checkpoint is self-contained.
#[derive(Serialize, Deserialize)]
struct ConfigFile {
    #[serde(flatten)]
    config: PolicyConfig,
    #[serde(default)]
    arbor_tokenizer: Option<CharTokenizer>,
}

/// Serialises the weights as safetensors bytes.
pub fn weights_to_bytes(policy: &Policy) -> Result<Vec<u8>, String> {
    let tensors: Vec<(String, Tensor)> = policy.tensors().into_iter().collect();
    safetensors::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), None)
        .map_err(|e| e.to_string())
}

/// Loads safetensors bytes into `policy`'s parameters.
pub fn weights_from_bytes(policy: &Policy, bytes: &[u8]) -> Result<(), String> {
    let tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load_buffer(bytes, policy.device()).map_err(|e| e.to_string())?;
    policy.load_tensors(&tensors).map_err(|e| e.to_string())
}

fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), CheckpointError> {
    use std::io::Write;
    let io = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(bytes).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

/// Writes `dir/model.safetensors` and `dir/config.json`.
pub fn save(policy: &Policy, dir: &Path) -> Result<(), CheckpointError> {
    std::fs::create_dir_all(dir).map_err(|source| CheckpointError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let weights = dir.join("model.safetensors");
    let bytes = weights_to_bytes(policy).map_err(|message| CheckpointError::Weights {
        path: weights.clone(),
        message,
    })?;
    write_atomic(&weights, &bytes)?;
    let cfg_path = dir.join("config.json");
    let file = ConfigFile {
        config: policy.config.clone(),
        arbor_tokenizer: Some(policy.tokenizer.clone()),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| CheckpointError::Config {
        path: cfg_path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&cfg_path, &json)
}

/// Loads a checkpoint folder written by [`save`].
pub fn load(dir: &Path, device: &Device) -> Result<Policy, CheckpointError> {
    let cfg_path = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg_path).map_err(|source| CheckpointError::Io {
        path: cfg_path.clone(),
        source,
    })?;
    let file: ConfigFile = serde_json::from_str(&text).map_err(|e| CheckpointError::Config {
        path: cfg_path.clone(),
        message: e.to_string(),
    })?;
    let tokenizer = file.arbor_tokenizer.unwrap_or_default();
    if tokenizer.vocab_size() > file.config.vocab_size {
        return Err(CheckpointError::Config {
            path: cfg_path,
            message: format!(
                "vocab_size {} is smaller than the tokenizer's {}",
                file.config.vocab_size,
                tokenizer.vocab_size()
            ),
        });
    }
    let config_error = |message: String| CheckpointError::Config {
        path: cfg_path.clone(),
        message,
    };
    file.config.validate().map_err(config_error)?;
    let policy =
        Policy::init(file.config, tokenizer, 0, device).map_err(|e| config_error(e.to_string()))?;
    let weights = dir.join("model.safetensors");
    let bytes = std::fs::read(&weights).map_err(|source| CheckpointError::Io {
        path: weights.clone(),
        source,
    })?;
    weights_from_bytes(&policy, &bytes).map_err(|message| CheckpointError::Weights {
        path: weights,
        message,
    })?;
    Ok(policy)
}
