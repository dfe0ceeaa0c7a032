//! Checkpoints: `model.safetensors` plus `config.json` (Hugging Face layout), written to a
//! temporary name and renamed so a crash never leaves half a checkpoint.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use serde::{Deserialize, Serialize};

use super::hf_tokenizer::HfTokenizer;
use super::{CharTokenizer, Policy, PolicyConfig, Tokenizer};

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

/// Weights that could not be turned into safetensors bytes, or read back from them (the
/// library's message; not a `source()`, so a report printing the chain shows it once).
#[derive(Debug, thiserror::Error)]
pub enum WeightBytesError {
    #[error("{0}")]
    Serialize(safetensors::SafeTensorError),
    #[error("{0}")]
    Load(candle_core::Error),
}

/// Serialises the weights as safetensors bytes.
pub fn weights_to_bytes(policy: &Policy) -> Result<Vec<u8>, WeightBytesError> {
    let tensors: Vec<(String, Tensor)> = policy.tensors().into_iter().collect();
    safetensors::serialize(tensors.iter().map(|(k, v)| (k.as_str(), v)), None)
        .map_err(WeightBytesError::Serialize)
}

/// Loads safetensors bytes into `policy`'s parameters.
pub fn weights_from_bytes(policy: &Policy, bytes: &[u8]) -> Result<(), WeightBytesError> {
    let tensors: HashMap<String, Tensor> =
        candle_core::safetensors::load_buffer(bytes, policy.device())
            .map_err(WeightBytesError::Load)?;
    policy
        .load_tensors(&tensors)
        .map_err(WeightBytesError::Load)
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
    let (model, head) = split_value_head(policy.tensors());
    write_tensors(&dir.join(WEIGHTS), &model, None)?;
    save_value_head(dir, &head)?;
    let cfg_path = dir.join("config.json");
    let file = ConfigFile {
        config: policy.config.clone(),
        arbor_tokenizer: policy.tokenizer.as_char().cloned(),
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
    let tokenizer: Tokenizer = match file.arbor_tokenizer {
        Some(c) => c.into(),
        None if dir.join("tokenizer.json").exists() => {
            let hf = HfTokenizer::load(dir).map_err(|e| CheckpointError::Config {
                path: dir.join("tokenizer.json"),
                message: e.to_string(),
            })?;
            // An export of arbor's own tokenizer from before config.json kept it.
            match hf.as_arbor_char() {
                Some(c) => c.into(),
                None => Tokenizer::Hf(Box::new(hf)),
            }
        }
        None => CharTokenizer::default().into(),
    };
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
    file.config
        .validate()
        .map_err(|e| config_error(e.to_string()))?;
    let policy =
        Policy::init(file.config, tokenizer, 0, device).map_err(|e| config_error(e.to_string()))?;
    if policy.config.arbor_value_head && !dir.join(VALUE_HEAD_WEIGHTS).exists() {
        return Err(CheckpointError::Weights {
            path: dir.join(VALUE_HEAD_WEIGHTS),
            message: "config.json says the policy has a value head (arbor_value_head) but \
                      its weights are missing; copy value_head.safetensors back or remove \
                      the key to load the language model alone"
                .into(),
        });
    }
    let tensors = read_weights(dir, device)?;
    policy
        .load_tensors(&tensors)
        .map_err(|e| CheckpointError::Weights {
            path: dir.join(WEIGHTS),
            message: e.to_string(),
        })?;
    Ok(policy)
}

/// A quick check that `dir` looks like a checkpoint folder, before anything is written.
pub fn check_folder(dir: &Path) -> Result<(), CheckpointError> {
    let missing = |path: PathBuf, what: &str| CheckpointError::Config {
        message: format!("missing {what}"),
        path,
    };
    if !dir.is_dir() {
        return Err(missing(dir.to_path_buf(), "folder"));
    }
    if !dir.join("config.json").exists() {
        return Err(missing(dir.join("config.json"), "config.json"));
    }
    if !dir.join(WEIGHTS).exists() && !dir.join(INDEX).exists() {
        return Err(missing(
            dir.join(WEIGHTS),
            "weights (model.safetensors or model.safetensors.index.json)",
        ));
    }
    Ok(())
}

const WEIGHTS: &str = "model.safetensors";
/// The value head's weights (`tree_distill`), beside a plain Qwen2 model.safetensors.
pub const VALUE_HEAD_WEIGHTS: &str = "value_head.safetensors";

type Named = Vec<(String, Tensor)>;

/// Splits a policy's tensors into the language model's and the value head's.
fn split_value_head(tensors: impl IntoIterator<Item = (String, Tensor)>) -> (Named, Named) {
    tensors
        .into_iter()
        .partition(|(k, _)| !k.starts_with(super::model::VALUE_HEAD_PREFIX))
}

/// Writes the value head's tensors (if any) to `dir/value_head.safetensors`.
fn save_value_head(dir: &Path, head: &[(String, Tensor)]) -> Result<(), CheckpointError> {
    if head.is_empty() {
        return Ok(());
    }
    write_tensors(&dir.join(VALUE_HEAD_WEIGHTS), head, None)
}

/// Writes named tensors as safetensors, atomically.
fn write_tensors(
    path: &Path,
    named: &[(String, Tensor)],
    meta: Option<HashMap<String, String>>,
) -> Result<(), CheckpointError> {
    let bytes =
        safetensors::serialize(named.iter().map(|(k, v)| (k.as_str(), v)), meta).map_err(|e| {
            CheckpointError::Weights {
                path: path.to_path_buf(),
                message: e.to_string(),
            }
        })?;
    write_atomic(path, &bytes)
}
const INDEX: &str = "model.safetensors.index.json";

/// Every tensor of `dir/model.safetensors`, or of the shards its
/// `model.safetensors.index.json` lists (any dtype; converted when loaded).
pub fn read_weights(
    dir: &Path,
    device: &Device,
) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let mut all = read_model_weights(dir, device)?;
    let head = dir.join(VALUE_HEAD_WEIGHTS);
    if head.exists() {
        let bytes = std::fs::read(&head).map_err(|source| CheckpointError::Io {
            path: head.clone(),
            source,
        })?;
        let t = candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| {
            CheckpointError::Weights {
                path: head.clone(),
                message: format!("not readable safetensors ({e}); is the file complete?"),
            }
        })?;
        all.extend(t);
    }
    Ok(all)
}

fn read_model_weights(
    dir: &Path,
    device: &Device,
) -> Result<HashMap<String, Tensor>, CheckpointError> {
    let read = |path: &Path| -> Result<HashMap<String, Tensor>, CheckpointError> {
        let bytes = std::fs::read(path).map_err(|source| CheckpointError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| {
            CheckpointError::Weights {
                path: path.to_path_buf(),
                message: format!("not readable safetensors ({e}); is the file complete?"),
            }
        })
    };
    let single = dir.join(WEIGHTS);
    let index = dir.join(INDEX);
    if single.exists() || !index.exists() {
        return read(&single);
    }
    let text = std::fs::read_to_string(&index).map_err(|source| CheckpointError::Io {
        path: index.clone(),
        source,
    })?;
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| CheckpointError::Config {
            path: index.clone(),
            message: e.to_string(),
        })?;
    let map = v["weight_map"]
        .as_object()
        .ok_or_else(|| CheckpointError::Config {
            path: index.clone(),
            message: "no weight_map object".into(),
        })?;
    let mut shards: Vec<&str> = map.values().filter_map(|s| s.as_str()).collect();
    shards.sort_unstable();
    shards.dedup();
    let mut all = HashMap::new();
    for s in shards {
        if s.contains('/') || s.contains("..") {
            return Err(CheckpointError::Config {
                path: index.clone(),
                message: format!("shard name {s:?} leaves the folder"),
            });
        }
        all.extend(read(&dir.join(s))?);
    }
    Ok(all)
}

/// Saved weights' dtype.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum SaveDtype {
    #[default]
    F32,
    Bf16,
    F16,
}

/// A dtype name that is not f32, bf16 or f16 (or their long names).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown dtype {0:?}; expected f32, bf16 or f16")]
pub struct UnknownDtype(pub String);

impl std::str::FromStr for SaveDtype {
    type Err = UnknownDtype;
    fn from_str(s: &str) -> Result<Self, UnknownDtype> {
        match s {
            "f32" | "float32" => Ok(Self::F32),
            "bf16" | "bfloat16" => Ok(Self::Bf16),
            "f16" | "float16" => Ok(Self::F16),
            o => Err(UnknownDtype(o.to_string())),
        }
    }
}

impl SaveDtype {
    fn dtype(self) -> candle_core::DType {
        match self {
            Self::F32 => candle_core::DType::F32,
            Self::Bf16 => candle_core::DType::BF16,
            Self::F16 => candle_core::DType::F16,
        }
    }
    fn torch_name(self) -> &'static str {
        match self {
            Self::F32 => "float32",
            Self::Bf16 => "bfloat16",
            Self::F16 => "float16",
        }
    }
}

/// Writes `dir` in the Hugging Face layout transformers, vLLM and SGLang load:
/// model.safetensors, config.json, generation_config.json, tokenizer.json and
/// tokenizer_config.json. Every file is written under a temporary name and renamed.
pub fn save_hf(policy: &Policy, dir: &Path, dtype: SaveDtype) -> Result<(), CheckpointError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| CheckpointError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;
    let weights = dir.join(WEIGHTS);
    let (model, head) = split_value_head(policy.tensors());
    save_value_head(dir, &head)?;
    let tensors: Vec<(String, Tensor)> = model
        .into_iter()
        .map(|(k, v)| v.to_dtype(dtype.dtype()).map(|v| (k, v)))
        .collect::<candle_core::Result<_>>()
        .map_err(|e| CheckpointError::Weights {
            path: weights.clone(),
            message: e.to_string(),
        })?;
    let meta = HashMap::from([("format".to_string(), "pt".to_string())]);
    write_tensors(&weights, &tensors, Some(meta))?;
    let mut config = policy.config.clone();
    config.torch_dtype = dtype.torch_name().into();
    config.eos_token_id = Some(policy.tokenizer.eos());
    let cfg_path = dir.join("config.json");
    // arbor's character tokenizer goes beside the config too (transformers ignores the
    // key), so a folder arbor exported loads back with it rather than as a tokenizers
    // file without BPE merges, which llama.cpp's export refuses.
    let file = ConfigFile {
        config: config.clone(),
        arbor_tokenizer: policy.tokenizer.as_char().cloned(),
    };
    let json = serde_json::to_vec_pretty(&file).map_err(|e| CheckpointError::Config {
        path: cfg_path.clone(),
        message: e.to_string(),
    })?;
    write_atomic(&cfg_path, &json)?;
    let gen = serde_json::json!({
        "eos_token_id": policy.tokenizer.eos(),
        "bos_token_id": config.bos_token_id,
        "do_sample": true,
        "temperature": 1.0,
    });
    write_atomic(
        &dir.join("generation_config.json"),
        &serde_json::to_vec_pretty(&gen).unwrap_or_default(),
    )?;
    let hf = match &policy.tokenizer {
        Tokenizer::Hf(h) => (**h).clone(),
        Tokenizer::Char(c) => HfTokenizer::from_char(c).map_err(|e| CheckpointError::Config {
            path: dir.join("tokenizer.json"),
            message: e.to_string(),
        })?,
    };
    hf.save(dir).map_err(|e| CheckpointError::Config {
        path: dir.join("tokenizer.json"),
        message: e.to_string(),
    })
}
