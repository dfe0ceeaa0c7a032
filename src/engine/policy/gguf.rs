//! The policy as a GGUF file (llama.cpp, Ollama, LM Studio): architecture `qwen2`,
//! llama.cpp's tensor names, and the vocabulary as a GPT-2 type (byte-level BPE)
//! tokenizer. Qwen2 uses NEOX rotary embeddings, so the attention weights keep Hugging
//! Face's layout (no permutation, unlike llama's).
//!
//! arbor's character tokenizer becomes a byte-level vocabulary whose tokens are spelled
//! the GPT-2 way (a space is `Ġ`, a newline `Ċ`): servers then return real text for them,
//! not `[UNK_BYTE_...]`. llama.cpp refuses a BPE vocabulary without merges, so it gets one
//! (never used: arbor sends and reads token ids, not text). A real Qwen2 checkpoint keeps
//! its own tokens, merges and pre-tokenizer type.
use std::path::Path;

use candle_core::quantized::gguf_file::Value;
use candle_core::quantized::{GgmlDType, QTensor};
use candle_core::Tensor;

use super::checkpoint::{CheckpointError, SaveDtype};
use super::tokenizer::{Tokenizer, BOS, EOS, PAD};
use super::Policy;

/// llama.cpp's token types.
const NORMAL: i32 = 1;
const CONTROL: i32 = 3;
const UNUSED: i32 = 5;

/// GPT-2's byte-to-character table: printable bytes stand for themselves, the others
/// (space, newline, control bytes, ...) are shifted to U+0100 and up.
pub fn byte_char(b: u8) -> char {
    let printable = (b'!'..=b'~').contains(&b) || (0xa1..=0xac).contains(&b) || b >= 0xae;
    if printable {
        return b as char;
    }
    let shifted = (0u8..=255)
        .filter(|&x| !((b'!'..=b'~').contains(&x) || (0xa1..=0xac).contains(&x) || x >= 0xae))
        .position(|x| x == b)
        .unwrap_or(0);
    char::from_u32(256 + shifted as u32).unwrap_or('?')
}

/// `text` spelled in GPT-2's byte-level alphabet.
pub fn byte_level(text: &str) -> String {
    text.bytes().map(byte_char).collect()
}

/// llama.cpp's name of a Hugging Face Qwen2 tensor.
pub fn gguf_name(hf: &str) -> Option<String> {
    let fixed = match hf {
        "model.embed_tokens.weight" => Some("token_embd.weight"),
        "model.norm.weight" => Some("output_norm.weight"),
        "lm_head.weight" => Some("output.weight"),
        _ => None,
    };
    if let Some(f) = fixed {
        return Some(f.to_string());
    }
    let rest = hf.strip_prefix("model.layers.")?;
    let (layer, part) = rest.split_once('.')?;
    let layer: usize = layer.parse().ok()?;
    let (module, kind) = part.rsplit_once('.')?;
    let name = match module {
        "input_layernorm" => "attn_norm",
        "post_attention_layernorm" => "ffn_norm",
        "self_attn.q_proj" => "attn_q",
        "self_attn.k_proj" => "attn_k",
        "self_attn.v_proj" => "attn_v",
        "self_attn.o_proj" => "attn_output",
        "mlp.gate_proj" => "ffn_gate",
        "mlp.up_proj" => "ffn_up",
        "mlp.down_proj" => "ffn_down",
        _ => return None,
    };
    Some(format!("blk.{layer}.{name}.{kind}"))
}

/// A GGUF vocabulary.
struct Vocabulary {
    tokens: Vec<String>,
    types: Vec<i32>,
    merges: Vec<String>,
    /// llama.cpp's pre-tokenizer type.
    pre: &'static str,
}

/// A vocabulary llama.cpp cannot be given.
#[derive(Debug, thiserror::Error)]
pub enum VocabularyError {
    #[error("cannot read the tokenizer: {0}")]
    Tokenizer(tokenizers::Error),
    #[error("cannot read the tokenizer: {0}")]
    Json(serde_json::Error),
    #[error(
        "the tokenizer has no BPE merges: llama.cpp needs a byte-level BPE vocabulary (Qwen2's)"
    )]
    NoMerges,
    #[error("the tokenizer has {tokens} tokens but the embedding only {rows} rows")]
    TooManyTokens { tokens: usize, rows: usize },
}

/// The vocabulary, padded to the embedding rows.
fn vocabulary(tok: &Tokenizer, rows: usize) -> Result<Vocabulary, VocabularyError> {
    let (mut tokens, mut types, merges, pre) = match tok {
        Tokenizer::Char(c) => {
            let mut tokens = vec!["<pad>".to_string(), "<s>".into(), "</s>".into()];
            let mut types = vec![CONTROL; 3];
            debug_assert_eq!((PAD, BOS, EOS), (0, 1, 2));
            for ch in c.alphabet().chars() {
                tokens.push(byte_level(&ch.to_string()));
                types.push(NORMAL);
            }
            // llama.cpp wants at least one merge; this one is never applied to ids.
            let merges = vec![format!("{} {}", tokens[3], tokens[4.min(tokens.len() - 1)])];
            (tokens, types, merges, "default")
        }
        Tokenizer::Hf(h) => {
            let n = h.inner.get_vocab_size(true);
            let added: std::collections::HashSet<u32> = h
                .inner
                .get_added_tokens_decoder()
                .iter()
                .filter(|(_, t)| t.special)
                .map(|(id, _)| *id)
                .collect();
            let mut tokens = Vec::with_capacity(n);
            let mut types = Vec::with_capacity(n);
            for id in 0..n as u32 {
                tokens.push(
                    h.inner
                        .id_to_token(id)
                        .unwrap_or_else(|| format!("[PAD{id}]")),
                );
                types.push(if added.contains(&id) { CONTROL } else { NORMAL });
            }
            let json: serde_json::Value = serde_json::from_str(
                &h.inner
                    .to_string(false)
                    .map_err(VocabularyError::Tokenizer)?,
            )
            .map_err(VocabularyError::Json)?;
            let merges: Vec<String> = json["model"]["merges"]
                .as_array()
                .map(|m| {
                    m.iter()
                        .filter_map(|x| match x {
                            serde_json::Value::String(s) => Some(s.clone()),
                            serde_json::Value::Array(p) => Some(
                                p.iter()
                                    .filter_map(|s| s.as_str())
                                    .collect::<Vec<_>>()
                                    .join(" "),
                            ),
                            _ => None,
                        })
                        .collect()
                })
                .unwrap_or_default();
            if merges.is_empty() {
                return Err(VocabularyError::NoMerges);
            }
            (tokens, types, merges, "qwen2")
        }
    };
    if tokens.len() > rows {
        return Err(VocabularyError::TooManyTokens {
            tokens: tokens.len(),
            rows,
        });
    }
    while tokens.len() < rows {
        tokens.push(format!("[PAD{}]", tokens.len()));
        types.push(UNUSED);
    }
    Ok(Vocabulary {
        tokens,
        types,
        merges,
        pre,
    })
}

fn strings(v: Vec<String>) -> Value {
    Value::Array(v.into_iter().map(Value::String).collect())
}

/// Writes `policy` to `path` as GGUF (weights in `dtype`: f32, or f16 for bf16/f16;
/// norms and biases stay f32), under a temporary name, then renamed into place.
pub fn save_gguf(policy: &Policy, path: &Path, dtype: SaveDtype) -> Result<(), CheckpointError> {
    let bad = |message: String| CheckpointError::Weights {
        path: path.to_path_buf(),
        message,
    };
    let c = &policy.config;
    let mut named: Vec<(String, Tensor)> = Vec::new();
    for (hf, t) in policy.tensors() {
        if hf.starts_with("value_head") {
            continue;
        }
        let name =
            gguf_name(&hf).ok_or_else(|| bad(format!("tensor {hf} has no llama.cpp name")))?;
        named.push((name, t));
    }
    let rows = named
        .iter()
        .find(|(n, _)| n == "token_embd.weight")
        .map(|(_, t)| t.dims()[0])
        .ok_or_else(|| bad("the policy has no token embedding".into()))?;
    let weight_dtype = match dtype {
        SaveDtype::F32 => GgmlDType::F32,
        _ => GgmlDType::F16,
    };
    let mut tensors = Vec::with_capacity(named.len());
    for (name, t) in &named {
        let d = if t.rank() == 1 {
            GgmlDType::F32
        } else {
            weight_dtype
        };
        tensors.push((
            name.clone(),
            QTensor::quantize(t, d).map_err(|e| bad(format!("{name}: {e}")))?,
        ));
    }
    let Vocabulary {
        tokens,
        types,
        merges,
        pre,
    } = vocabulary(&policy.tokenizer, rows).map_err(|e| bad(e.to_string()))?;
    let eos = policy.tokenizer.eos();
    let u32v = |x: usize| Value::U32(x as u32);
    let meta: Vec<(&str, Value)> = vec![
        ("general.architecture", Value::String("qwen2".into())),
        ("general.name", Value::String("arbor policy".into())),
        (
            "general.file_type",
            Value::U32(if weight_dtype == GgmlDType::F32 { 0 } else { 1 }),
        ),
        ("qwen2.block_count", u32v(c.num_hidden_layers)),
        ("qwen2.context_length", u32v(c.max_position_embeddings)),
        ("qwen2.embedding_length", u32v(c.hidden_size)),
        ("qwen2.feed_forward_length", u32v(c.intermediate_size)),
        ("qwen2.attention.head_count", u32v(c.num_attention_heads)),
        ("qwen2.attention.head_count_kv", u32v(c.num_key_value_heads)),
        ("qwen2.rope.freq_base", Value::F32(c.rope_theta as f32)),
        (
            "qwen2.attention.layer_norm_rms_epsilon",
            Value::F32(c.rms_norm_eps as f32),
        ),
        ("tokenizer.ggml.model", Value::String("gpt2".into())),
        ("tokenizer.ggml.pre", Value::String(pre.into())),
        ("tokenizer.ggml.tokens", strings(tokens)),
        (
            "tokenizer.ggml.token_type",
            Value::Array(types.into_iter().map(Value::I32).collect()),
        ),
        ("tokenizer.ggml.merges", strings(merges)),
        ("tokenizer.ggml.eos_token_id", Value::U32(eos)),
        (
            "tokenizer.ggml.bos_token_id",
            Value::U32(c.bos_token_id.unwrap_or(eos)),
        ),
        ("tokenizer.ggml.add_bos_token", Value::Bool(false)),
    ];
    let meta_refs: Vec<(&str, &Value)> = meta.iter().map(|(k, v)| (*k, v)).collect();
    let tensor_refs: Vec<(&str, &QTensor)> = tensors.iter().map(|(k, v)| (k.as_str(), v)).collect();
    let io = |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    };
    let tmp = path.with_extension("gguf.tmp");
    let mut f = std::io::BufWriter::new(std::fs::File::create(&tmp).map_err(io)?);
    candle_core::quantized::gguf_file::write(&mut f, &meta_refs, &tensor_refs)
        .map_err(|e| bad(e.to_string()))?;
    let f = f.into_inner().map_err(|e| io(e.into_error()))?;
    f.sync_all().map_err(io)?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn byte_level_spells_space_and_newline_as_gpt2_does() {
        assert_eq!(byte_level(" "), "Ġ");
        assert_eq!(byte_level("\n"), "Ċ");
        assert_eq!(byte_level("a+1"), "a+1");
        // Every byte gets its own character.
        let all: std::collections::HashSet<char> = (0u8..=255).map(byte_char).collect();
        assert_eq!(all.len(), 256);
    }

    #[test]
    fn tensor_names_follow_llama_cpp() {
        assert_eq!(
            gguf_name("model.layers.3.self_attn.q_proj.bias").as_deref(),
            Some("blk.3.attn_q.bias")
        );
        assert_eq!(
            gguf_name("model.layers.0.mlp.down_proj.weight").as_deref(),
            Some("blk.0.ffn_down.weight")
        );
        assert_eq!(
            gguf_name("model.embed_tokens.weight").as_deref(),
            Some("token_embd.weight")
        );
        assert_eq!(gguf_name("model.layers.x.mlp.up_proj.weight"), None);
        assert_eq!(gguf_name("something.else"), None);
    }
}
