//! What each inference engine is sent and answers, as pure functions over JSON: the
//! request body for one context continued `copies` times, and the completions read back
//! as token ids with the engine's log-probabilities. Every sampling parameter is set
//! explicitly (temperature, top-p 1, top-k off, min-p 0, no repetition penalty) so the
//! engine samples from the plain softmax at the given temperature, as arbor's own sampler
//! does.
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

/// The engines arbor can send generation to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    /// SGLang's native `/generate`.
    Sglang,
    /// vLLM's OpenAI-compatible `/v1/completions` with token-id prompts.
    Vllm,
    /// llama.cpp's `llama-server` `/completion`.
    Llamacpp,
}

impl Engine {
    pub fn path(self) -> &'static str {
        match self {
            Engine::Sglang => "/generate",
            Engine::Vllm => "/v1/completions",
            Engine::Llamacpp => "/completion",
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            Engine::Sglang => "sglang",
            Engine::Vllm => "vllm",
            Engine::Llamacpp => "llamacpp",
        }
    }
}

/// One request's sampling settings.
#[derive(Clone, Debug, PartialEq)]
pub struct Ask<'a> {
    pub context: &'a [u32],
    pub copies: usize,
    pub max_tokens: usize,
    pub temperature: f32,
    /// Token ids that end a completion (the step delimiter, EOS).
    pub stop_ids: Vec<u32>,
    /// The step delimiter's text, for llama.cpp (whose `stop` takes strings).
    pub stop_text: Option<String>,
    pub seed: Option<u64>,
    /// The served model's name (vLLM's `model`).
    pub model: Option<String>,
}

/// Why a completion ended, as the engine said it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ended {
    /// A stop token (the delimiter or EOS), kept in the tokens.
    Stop,
    /// llama.cpp: the stop text (the delimiter), trimmed from the tokens.
    Word,
    /// llama.cpp: the end-of-sequence token.
    Eos,
    /// The token limit.
    Length,
}

/// One completion read back.
#[derive(Clone, Debug, PartialEq)]
pub struct Reply {
    pub tokens: Vec<u32>,
    /// The engine's log-probability of each token (None where it gave none).
    pub logprobs: Vec<Option<f32>>,
    pub ended: Ended,
    /// Prompt tokens the engine took from its prefix cache, when it says.
    pub cached: Option<u64>,
}

pub fn body(engine: Engine, a: &Ask) -> Value {
    let t = a.temperature.max(0.0);
    match engine {
        Engine::Sglang => {
            let mut sp = json!({
                "n": a.copies,
                "max_new_tokens": a.max_tokens,
                "temperature": t,
                "top_p": 1.0,
                "top_k": -1,
                "min_p": 0.0,
                "repetition_penalty": 1.0,
                "frequency_penalty": 0.0,
                "presence_penalty": 0.0,
                "stop_token_ids": a.stop_ids,
                "skip_special_tokens": false,
                "no_stop_trim": true,
            });
            if let Some(s) = a.seed {
                sp["sampling_seed"] = json!(s);
            }
            json!({
                "input_ids": a.context,
                "sampling_params": sp,
                "return_logprob": true,
                "logprob_start_len": -1,
            })
        }
        Engine::Vllm => {
            let mut b = json!({
                "prompt": a.context,
                "n": a.copies,
                "max_tokens": a.max_tokens,
                "temperature": t,
                "top_p": 1.0,
                "top_k": -1,
                "min_p": 0.0,
                "repetition_penalty": 1.0,
                "frequency_penalty": 0.0,
                "presence_penalty": 0.0,
                "logprobs": 0,
                "return_token_ids": true,
                "stop_token_ids": a.stop_ids,
                "skip_special_tokens": false,
                "include_stop_str_in_output": true,
            });
            if let Some(m) = &a.model {
                b["model"] = json!(m);
            }
            if let Some(s) = a.seed {
                b["seed"] = json!(s);
            }
            b
        }
        Engine::Llamacpp => {
            let mut b = json!({
                "prompt": a.context,
                "n_cmpl": a.copies,
                "n_predict": a.max_tokens,
                "temperature": t,
                "top_p": 1.0,
                "top_k": 0,
                "min_p": 0.0,
                "typical_p": 1.0,
                "repeat_penalty": 1.0,
                "frequency_penalty": 0.0,
                "presence_penalty": 0.0,
                "dry_multiplier": 0.0,
                "xtc_probability": 0.0,
                "mirostat": 0,
                "n_probs": 1,
                "return_tokens": true,
                "cache_prompt": true,
                "stop": a.stop_text.iter().collect::<Vec<_>>(),
            });
            if let Some(s) = a.seed {
                b["seed"] = json!(s as u32);
            }
            b
        }
    }
}

fn bad(engine: Engine, what: impl std::fmt::Display) -> String {
    format!(
        "{} answered something arbor cannot read: {what}",
        engine.name()
    )
}

fn ids(engine: Engine, v: &Value, field: &str) -> Result<Vec<u32>, String> {
    let a = v
        .get(field)
        .and_then(Value::as_array)
        .ok_or_else(|| bad(engine, format!("no `{field}` array")))?;
    a.iter()
        .map(|x| {
            x.as_u64()
                .and_then(|x| u32::try_from(x).ok())
                .ok_or_else(|| bad(engine, format!("`{field}` holds {x}, not a token id")))
        })
        .collect()
}

fn list(v: &Value) -> Vec<&Value> {
    match v {
        Value::Array(a) => a.iter().collect(),
        other => vec![other],
    }
}

/// Reads an engine's answer to [`body`]: one reply per completion.
pub fn parse(engine: Engine, v: &Value) -> Result<Vec<Reply>, String> {
    if let Some(e) = v.get("error") {
        return Err(format!("{} refused the request: {e}", engine.name()));
    }
    match engine {
        Engine::Sglang => list(v)
            .into_iter()
            .map(|r| {
                let meta = r
                    .get("meta_info")
                    .ok_or_else(|| bad(engine, "no `meta_info`"))?;
                let lp = meta
                    .get("output_token_logprobs")
                    .and_then(Value::as_array)
                    .ok_or_else(|| {
                        bad(
                            engine,
                            "no `meta_info.output_token_logprobs` (send return_logprob)",
                        )
                    })?;
                let mut tokens = Vec::with_capacity(lp.len());
                let mut logprobs = Vec::with_capacity(lp.len());
                for e in lp {
                    // [logprob, token id, text]
                    let id = e
                        .get(1)
                        .and_then(Value::as_u64)
                        .and_then(|x| u32::try_from(x).ok())
                        .ok_or_else(|| bad(engine, format!("logprob entry {e} has no token id")))?;
                    tokens.push(id);
                    logprobs.push(e.get(0).and_then(Value::as_f64).map(|x| x as f32));
                }
                let ended = match meta["finish_reason"]["type"].as_str() {
                    Some("length") => Ended::Length,
                    _ => Ended::Stop,
                };
                Ok(Reply {
                    tokens,
                    logprobs,
                    ended,
                    cached: meta.get("cached_tokens").and_then(Value::as_u64),
                })
            })
            .collect(),
        Engine::Vllm => {
            let choices = v
                .get("choices")
                .and_then(Value::as_array)
                .ok_or_else(|| bad(engine, "no `choices`"))?;
            let cached = v["usage"]["prompt_tokens_details"]["cached_tokens"].as_u64();
            choices
                .iter()
                .map(|c| {
                    let tokens = ids(engine, c, "token_ids")?;
                    let lp = c["logprobs"]["token_logprobs"]
                        .as_array()
                        .map(|a| a.iter().map(|x| x.as_f64().map(|x| x as f32)).collect())
                        .unwrap_or_else(|| vec![None; tokens.len()]);
                    let ended = match c["finish_reason"].as_str() {
                        Some("length") => Ended::Length,
                        _ => Ended::Stop,
                    };
                    Ok(Reply {
                        tokens,
                        logprobs: lp,
                        ended,
                        cached,
                    })
                })
                .collect()
        }
        Engine::Llamacpp => list(v)
            .into_iter()
            .map(|r| {
                let tokens = ids(engine, r, "tokens")?;
                let probs = r.get("completion_probabilities").and_then(Value::as_array);
                let logprobs = match probs {
                    Some(p) => p
                        .iter()
                        .map(|e| e.get("logprob").and_then(Value::as_f64).map(|x| x as f32))
                        .collect(),
                    None => vec![None; tokens.len()],
                };
                let ended = match r["stop_type"].as_str() {
                    Some("word") => Ended::Word,
                    Some("eos") => Ended::Eos,
                    Some("limit") => Ended::Length,
                    _ => Ended::Stop,
                };
                Ok(Reply {
                    tokens,
                    logprobs,
                    ended,
                    // `timings.cache_n`: prompt tokens reused from the cache
                    // (`tokens_cached` counts the whole slot, generated tokens too).
                    cached: r["timings"]["cache_n"].as_u64(),
                })
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests;
