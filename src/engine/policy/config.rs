//! The policy's architecture, as a Qwen2 `config.json` describes it.
//!
//! Field names are those of Hugging Face's Qwen2 config, so a checkpoint folder's
//! config.json deserializes straight into this struct and arbor's own checkpoints load in
//! other Qwen2 tooling.
use serde::{Deserialize, Serialize};

/// Architecture of a Qwen2-family causal transformer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct PolicyConfig {
    pub vocab_size: usize,
    pub hidden_size: usize,
    pub intermediate_size: usize,
    pub num_hidden_layers: usize,
    pub num_attention_heads: usize,
    pub num_key_value_heads: usize,
    pub max_position_embeddings: usize,
    pub rope_theta: f64,
    pub rms_norm_eps: f64,
    #[serde(default)]
    pub tie_word_embeddings: bool,
    #[serde(default = "default_hidden_act")]
    pub hidden_act: String,
    #[serde(default = "default_model_type")]
    pub model_type: String,
    #[serde(default = "default_architectures")]
    pub architectures: Vec<String>,
    #[serde(
        default,
        deserialize_with = "first_of",
        skip_serializing_if = "Option::is_none"
    )]
    pub bos_token_id: Option<u32>,
    /// A single id or, as some checkpoints give it, a list (the first is kept).
    #[serde(
        default,
        deserialize_with = "first_of",
        skip_serializing_if = "Option::is_none"
    )]
    pub eos_token_id: Option<u32>,
    #[serde(default = "default_dtype")]
    pub torch_dtype: String,
    // Fields the Qwen2 family carries that arbor's attention ignores (no sliding window on
    // the sequence lengths arbor trains on); kept so configs round-trip.
    #[serde(default)]
    pub use_sliding_window: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sliding_window: Option<usize>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_window_layers: Option<usize>,
    /// arbor's own key: the policy carries a value head (`tree_distill`). Hugging Face
    /// tooling ignores it; the head's weights are saved beside the model's
    /// (`value_head.safetensors`), so model.safetensors stays a plain Qwen2 checkpoint.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub arbor_value_head: bool,
}

/// A token id given as a number, a list of numbers, or null.
fn first_of<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Ids {
        One(u32),
        Many(Vec<u32>),
    }
    Ok(match Option::<Ids>::deserialize(d)? {
        None => None,
        Some(Ids::One(x)) => Some(x),
        Some(Ids::Many(v)) => v.first().copied(),
    })
}

fn default_hidden_act() -> String {
    "silu".into()
}
fn default_model_type() -> String {
    "qwen2".into()
}
fn default_architectures() -> Vec<String> {
    vec!["Qwen2ForCausalLM".into()]
}
fn default_dtype() -> String {
    "float32".into()
}

/// A named architecture `arbor init-model` can build with random weights.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// arbor's default tiny policy (0.8M parameters).
    Tiny,
    /// Qwen2.5-0.5B's shape (494M parameters).
    Qwen2_0_5b,
    /// Qwen2.5-1.5B's shape (1.54B parameters).
    Qwen2_1_5b,
}

/// A shape name that is none of [`Shape::NAMES`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown shape {0:?}; expected tiny, qwen2-0.5b or qwen2-1.5b")]
pub struct UnknownShape(pub String);

impl Shape {
    pub const NAMES: [&'static str; 3] = ["tiny", "qwen2-0.5b", "qwen2-1.5b"];
}

impl std::str::FromStr for Shape {
    type Err = UnknownShape;
    fn from_str(s: &str) -> Result<Self, UnknownShape> {
        match s {
            "tiny" => Ok(Shape::Tiny),
            "qwen2-0.5b" => Ok(Shape::Qwen2_0_5b),
            "qwen2-1.5b" => Ok(Shape::Qwen2_1_5b),
            o => Err(UnknownShape(o.to_string())),
        }
    }
}

impl PolicyConfig {
    /// The architecture of `shape`: Qwen2.5's published configs for the Qwen shapes
    /// (vocabulary 151,936, tied embeddings, rope theta 1e6, 32k positions).
    pub fn of_shape(shape: Shape, vocab_size: usize, bos: u32, eos: u32) -> Self {
        let qwen = |hidden, inter, layers, heads| Self {
            vocab_size: vocab_size.max(151_936),
            hidden_size: hidden,
            intermediate_size: inter,
            num_hidden_layers: layers,
            num_attention_heads: heads,
            num_key_value_heads: 2,
            max_position_embeddings: 32_768,
            rope_theta: 1_000_000.0,
            ..Self::tiny(vocab_size, bos, eos)
        };
        match shape {
            Shape::Tiny => Self::tiny(vocab_size, bos, eos),
            Shape::Qwen2_0_5b => qwen(896, 4864, 24, 14),
            Shape::Qwen2_1_5b => qwen(1536, 8960, 28, 12),
        }
    }

    /// The tiny default trained from scratch on two CPU cores: about 0.8M parameters.
    pub fn tiny(vocab_size: usize, bos: u32, eos: u32) -> Self {
        Self {
            vocab_size,
            hidden_size: 128,
            intermediate_size: 384,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            max_position_embeddings: 128,
            rope_theta: 10_000.0,
            rms_norm_eps: 1e-6,
            tie_word_embeddings: true,
            hidden_act: default_hidden_act(),
            model_type: default_model_type(),
            architectures: default_architectures(),
            bos_token_id: Some(bos),
            eos_token_id: Some(eos),
            torch_dtype: default_dtype(),
            use_sliding_window: false,
            sliding_window: None,
            max_window_layers: None,
            arbor_value_head: false,
        }
    }

    /// A one-layer, 32-wide model for unit tests: milliseconds per step.
    #[cfg(test)]
    pub(crate) fn micro(vocab_size: usize) -> Self {
        Self {
            num_hidden_layers: 1,
            hidden_size: 32,
            intermediate_size: 64,
            num_attention_heads: 2,
            num_key_value_heads: 1,
            ..Self::tiny(vocab_size, 1, 2)
        }
    }

    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Checks the shape constraints the attention relies on.
    pub fn validate(&self) -> Result<(), PolicyConfigError> {
        let positive = [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("intermediate_size", self.intermediate_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("num_key_value_heads", self.num_key_value_heads),
            ("max_position_embeddings", self.max_position_embeddings),
        ];
        for (name, v) in positive {
            if v == 0 {
                return Err(PolicyConfigError::NotPositive { field: name });
            }
        }
        if self.hidden_size % self.num_attention_heads != 0 {
            return Err(PolicyConfigError::HeadsDivideHidden);
        }
        if self.head_dim() % 2 != 0 {
            return Err(PolicyConfigError::OddHeadDim);
        }
        if self.num_attention_heads % self.num_key_value_heads != 0 {
            return Err(PolicyConfigError::KvHeadsDivideHeads);
        }
        if self.hidden_act != "silu" {
            return Err(PolicyConfigError::Activation {
                found: self.hidden_act.clone(),
            });
        }
        if !(self.rms_norm_eps.is_finite() && self.rms_norm_eps > 0.0) {
            return Err(PolicyConfigError::NotPositiveNumber {
                field: "rms_norm_eps",
            });
        }
        if !(self.rope_theta.is_finite() && self.rope_theta > 0.0) {
            return Err(PolicyConfigError::NotPositiveNumber {
                field: "rope_theta",
            });
        }
        Ok(())
    }
}

/// A policy shape the attention cannot run, naming the field at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyConfigError {
    #[error("{field} must be positive")]
    NotPositive { field: &'static str },
    #[error("hidden_size must be a multiple of num_attention_heads")]
    HeadsDivideHidden,
    #[error("head dimension (hidden_size / num_attention_heads) must be even")]
    OddHeadDim,
    #[error("num_attention_heads must be a multiple of num_key_value_heads")]
    KvHeadsDivideHeads,
    #[error("hidden_act {found:?} is not supported (Qwen2 uses \"silu\")")]
    Activation { found: String },
    #[error("{field} must be a positive number")]
    NotPositiveNumber { field: &'static str },
}
