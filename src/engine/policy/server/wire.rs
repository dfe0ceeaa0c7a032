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

impl Engine {
    /// Where the engine says which version it is.
    pub fn version_path(self) -> &'static str {
        match self {
            Engine::Sglang => "/get_server_info",
            Engine::Vllm => "/version",
            Engine::Llamacpp => "/props",
        }
    }

    /// The oldest version that has every field arbor sends and reads, and why.
    /// SGLang 0.4.0: `/update_weights_from_disk` under that name and `stop_token_ids`.
    /// vLLM 0.10.2: `return_token_ids` on `/v1/completions`. llama.cpp b4400 (late
    /// December 2024): `return_tokens`, and `completion_probabilities` entries that
    /// carry `id` and `logprob`. These come from the engines' release notes; only the
    /// llama.cpp build that `scripts/llamacpp_check.sh` makes was run here.
    pub fn min_version(self) -> (&'static str, &'static str) {
        match self {
            Engine::Sglang => ("0.4.0", "/update_weights_from_disk and stop_token_ids"),
            Engine::Vllm => ("0.10.2", "return_token_ids on /v1/completions"),
            Engine::Llamacpp => (
                "b4400",
                "return_tokens and completion_probabilities with id and logprob",
            ),
        }
    }
}

/// An engine's answer arbor cannot use.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The answer lacks a field arbor reads, or holds the wrong kind of value there.
    #[error("{} answered something arbor cannot read: {what}", .engine.name())]
    Unreadable { engine: Engine, what: String },
    /// The engine answered with an `error` object.
    #[error("{} refused the request: {error}", .engine.name())]
    Refused { engine: Engine, error: Value },
    /// Older than [`Engine::min_version`].
    #[error(
        "{} {found} is too old: arbor needs {min} or newer ({why}); upgrade the engine",
        .engine.name()
    )]
    TooOld {
        engine: Engine,
        found: String,
        min: &'static str,
        why: &'static str,
    },
}

/// The version an engine reports at [`Engine::version_path`]: SGLang's and vLLM's
/// `version`, llama.cpp's `build_info` (`b4400-1a2b3c4`).
pub fn version(engine: Engine, v: &Value) -> Result<String, WireError> {
    let field = match engine {
        Engine::Llamacpp => "build_info",
        _ => "version",
    };
    v.get(field)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| {
            bad(
                engine,
                format!("{} has no `{field}`", engine.version_path()),
            )
        })
}

/// The leading numbers of a version: `0.10.2.dev3+g1` is [0, 10, 2], `b4400-1a2b` is
/// [4400], `0.11.0rc1` is [0, 11, 0].
fn numbers(v: &str) -> Vec<u64> {
    v.trim_start_matches(['v', 'b'])
        .split(['.', '-', '+'])
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

/// Refuses an engine older than [`Engine::min_version`], naming the version it needs.
/// A llama.cpp built without its git history says `b1-unknown` (or `unknown`): its
/// age cannot be told, so it is let through (the answers are still checked field by
/// field).
pub fn check_version(engine: Engine, found: &str) -> Result<(), WireError> {
    let (min, why) = engine.min_version();
    let found_head = match engine {
        Engine::Llamacpp if found.contains("unknown") => return Ok(()),
        Engine::Llamacpp => found.split('-').next().unwrap_or(found),
        _ => found,
    };
    let have = numbers(found_head);
    if have.is_empty() {
        return Err(bad(
            engine,
            format!("version {found:?} is not a version number"),
        ));
    }
    if have < numbers(min) {
        return Err(WireError::TooOld {
            engine,
            found: found.to_string(),
            min,
            why,
        });
    }
    Ok(())
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
                // Off: with llama-server's prompt cache on, 4 of 5 DeepSearch runs of 15
                // iterations had an iteration whose requests partly sampled from a cached
                // state that was not their prompt (mean |engine - trainer| log-prob 1e-2
                // to 9e-2, 1e-4 otherwise); with it off, none in 7 runs (issue 26,
                // docs/results/llamacpp-export/prompt-cache.txt).
                "cache_prompt": false,
                "stop": a.stop_text.iter().collect::<Vec<_>>(),
            });
            if let Some(s) = a.seed {
                b["seed"] = json!(s as u32);
            }
            b
        }
    }
}

fn bad(engine: Engine, what: impl std::fmt::Display) -> WireError {
    WireError::Unreadable {
        engine,
        what: what.to_string(),
    }
}

fn ids(engine: Engine, v: &Value, field: &str) -> Result<Vec<u32>, WireError> {
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
pub fn parse(engine: Engine, v: &Value) -> Result<Vec<Reply>, WireError> {
    if let Some(e) = v.get("error") {
        return Err(WireError::Refused {
            engine,
            error: e.clone(),
        });
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
                    Some(p) => aligned_logprobs(&tokens, p),
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

/// llama.cpp's `completion_probabilities`, one log-prob per returned token where the
/// entry names that token (`id`): an entry list shorter or longer than the tokens (a stop
/// word trimmed from one and not the other) must not shift every later comparison onto
/// the wrong token. Without ids, positions are trusted only when the lengths agree.
fn aligned_logprobs(tokens: &[u32], probs: &[Value]) -> Vec<Option<f32>> {
    let has_ids = probs.iter().any(|e| e.get("id").is_some());
    tokens
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            let e = probs.get(i)?;
            let same = if has_ids {
                e.get("id").and_then(Value::as_u64) == Some(t as u64)
            } else {
                probs.len() == tokens.len()
            };
            same.then(|| e.get("logprob").and_then(Value::as_f64))
                .flatten()
                .map(|x| x as f32)
        })
        .collect()
}

#[cfg(test)]
mod tests;
