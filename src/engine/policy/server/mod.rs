//! Generation on an inference engine the user already runs (SGLang, vLLM, llama.cpp's
//! `llama-server`), behind the same [`Generator`] trait as arbor's candle sampler.
//!
//! Requests go out concurrently (one per context, `copies` samples each), at most
//! `max_in_flight` at a time, with a time-out and retries with backoff. The engine's
//! tokens are checked against the vocabulary. Every completion is then rescored with the
//! trainer's own weights: the log-probabilities and entropies arbor trains on and searches
//! with are the trainer's (servers return no full-distribution entropy, and a sample from
//! stale weights is never taken as on-policy); the mean absolute difference between the
//! engine's and the trainer's log-probabilities is reported.
pub mod remote;
pub mod wire;

use std::sync::Mutex;
use std::time::Duration;

use candle_core::{Result, Tensor, D};
use rand::RngCore;

use super::generator::{GenerateError, Generator};
use super::model::Qwen2;
use super::sampler::{Completion, Finish, Request, SampleStats, SamplingParams};
use wire::{body, parse, Ask, Ended, Engine, Reply};

/// Where and how to reach the engine.
#[derive(Clone, Debug, PartialEq)]
pub struct ServerConfig {
    pub engine: Engine,
    /// Base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    pub max_in_flight: usize,
    pub timeout: Duration,
    /// Retries after the first attempt, with doubling backoff from 200 ms.
    pub retries: u32,
    /// The served model's name (vLLM wants it).
    pub model: Option<String>,
}

/// What the engine did, for accounting next to arbor's own forwarded/distinct ratio.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ServerStats {
    pub requests: u64,
    pub retries: u64,
    pub generated_tokens: u64,
    pub prompt_tokens: u64,
    /// Prompt tokens the engine served from its prefix cache (as it reports them).
    pub cached_tokens: u64,
    /// Sum and count of |engine log-prob - trainer log-prob| over compared tokens.
    pub logprob_abs_diff_sum: f64,
    pub logprob_compared: u64,
}

impl ServerStats {
    pub fn mean_logprob_abs_diff(&self) -> f64 {
        if self.logprob_compared == 0 {
            f64::NAN
        } else {
            self.logprob_abs_diff_sum / self.logprob_compared as f64
        }
    }
}

/// A [`Generator`] that asks an inference engine and rescores with `trainer`.
pub struct ServerGenerator<'a> {
    cfg: ServerConfig,
    agent: ureq::Agent,
    trainer: &'a Qwen2,
    /// The step delimiter's text (llama.cpp's `stop` takes strings).
    delimiter_text: Option<String>,
    stats: Mutex<ServerStats>,
    /// Most samples one request may ask for (llama-server: its slot count).
    max_copies: usize,
}

/// An HTTP client whose requests give up after `timeout`; error statuses are answers, not
/// errors, so their bodies can be shown.
pub fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

fn err(msg: String) -> candle_core::Error {
    candle_core::Error::Msg(msg)
}

/// A generation request the engine did not answer usefully. Inner errors are part of
/// each message, not a `source()` (a report printing the chain would repeat them).
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    /// `/health` answered with an error status.
    #[error(
        "the {} server at {url} answered {status} on /health: is it still loading the model?",
        .engine.name()
    )]
    Loading {
        engine: Engine,
        url: String,
        status: ureq::http::StatusCode,
    },
    /// Nothing answers at the URL.
    #[error(
        "no {} server answers at {url} ({error}): start it first (see the README, \"Many GPUs: SGLang and vLLM\")",
        .engine.name()
    )]
    Down {
        engine: Engine,
        url: String,
        error: ureq::Error,
    },
    #[error("{url}: cannot read the answer: {error}")]
    Read { url: String, error: ureq::Error },
    /// A client error status (not retried).
    #[error("{url} refused the request ({status}): {body}")]
    Refused {
        url: String,
        status: ureq::http::StatusCode,
        body: String,
    },
    #[error("{url} answered with malformed JSON ({error})")]
    Malformed {
        url: String,
        error: serde_json::Error,
    },
    /// A server error status (retried).
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: ureq::http::StatusCode,
        body: String,
    },
    /// The request did not get through (retried).
    #[error("{url}: {error}")]
    Transport { url: String, error: ureq::Error },
    /// Every attempt failed; `last` is the last attempt's error.
    #[error("{last} (after {retries} retries): is the server still running?")]
    GaveUp {
        last: Box<ServerError>,
        retries: u32,
    },
    #[error("a request thread panicked")]
    Panicked,
    #[error(transparent)]
    Wire(#[from] wire::WireError),
}

impl<'a> ServerGenerator<'a> {
    pub fn new(cfg: ServerConfig, trainer: &'a Qwen2, delimiter_text: Option<String>) -> Self {
        let agent = agent(cfg.timeout);
        // llama-server takes at most one sample per slot in a request (`n_cmpl`).
        let max_copies = match cfg.engine {
            Engine::Llamacpp => agent
                .get(&format!("{}/props", cfg.url.trim_end_matches('/')))
                .call()
                .ok()
                .and_then(|mut r| r.body_mut().read_to_string().ok())
                .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
                .and_then(|v| v["total_slots"].as_u64())
                .map_or(1, |n| n.max(1) as usize),
            _ => usize::MAX,
        };
        Self {
            cfg,
            agent,
            trainer,
            delimiter_text,
            stats: Mutex::new(ServerStats::default()),
            max_copies,
        }
    }

    pub fn engine(&self) -> Engine {
        self.cfg.engine
    }

    pub fn stats(&self) -> ServerStats {
        *self.stats.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn url(&self) -> String {
        format!(
            "{}{}",
            self.cfg.url.trim_end_matches('/'),
            self.cfg.engine.path()
        )
    }

    /// Checks that the engine answers at all, before anything is written: a clear error
    /// naming the URL and what to start otherwise.
    pub fn check(&self) -> std::result::Result<(), ServerError> {
        let health = format!("{}/health", self.cfg.url.trim_end_matches('/'));
        match self.agent.get(&health).call() {
            Ok(r) if r.status().is_success() => Ok(()),
            Ok(r) => Err(ServerError::Loading {
                engine: self.cfg.engine,
                url: self.cfg.url.clone(),
                status: r.status(),
            }),
            Err(error) => Err(ServerError::Down {
                engine: self.cfg.engine,
                url: self.cfg.url.clone(),
                error,
            }),
        }
    }

    /// One POST with retries; the answer's JSON.
    fn post(
        &self,
        json: &serde_json::Value,
    ) -> std::result::Result<serde_json::Value, ServerError> {
        let url = self.url();
        let text = json.to_string();
        let mut wait = Duration::from_millis(200);
        let mut last = None;
        for attempt in 0..=self.cfg.retries {
            if attempt > 0 {
                self.stats.lock().unwrap_or_else(|p| p.into_inner()).retries += 1;
                std::thread::sleep(wait);
                wait *= 2;
            }
            match self
                .agent
                .post(&url)
                .header("Content-Type", "application/json")
                .send(text.as_str())
            {
                Ok(mut r) => {
                    let status = r.status();
                    let body = r
                        .body_mut()
                        .with_config()
                        .limit(256 << 20)
                        .read_to_string()
                        .map_err(|error| ServerError::Read {
                            url: url.clone(),
                            error,
                        })?;
                    if status.is_server_error() {
                        last = Some(ServerError::Status {
                            url: url.clone(),
                            status,
                            body,
                        });
                        continue;
                    }
                    if !status.is_success() {
                        return Err(ServerError::Refused { url, status, body });
                    }
                    return serde_json::from_str(&body)
                        .map_err(|error| ServerError::Malformed { url, error });
                }
                Err(error) => {
                    last = Some(ServerError::Transport {
                        url: url.clone(),
                        error,
                    })
                }
            }
        }
        Err(ServerError::GaveUp {
            last: Box::new(last.expect("at least one attempt")),
            retries: self.cfg.retries,
        })
    }

    /// The trainer's log-probabilities and entropies of `tokens` after `context`, at
    /// `temperature` (the distribution they were drawn from).
    fn rescore(
        &self,
        context: &[u32],
        tokens: &[u32],
        temperature: f32,
    ) -> Result<(Vec<f32>, Vec<f32>)> {
        if tokens.is_empty() {
            return Ok((Vec::new(), Vec::new()));
        }
        let all: Vec<u32> = context.iter().chain(tokens).copied().collect();
        let dev = self.trainer.device();
        let x = Tensor::new(&all[..all.len() - 1], dev)?.unsqueeze(0)?;
        let logits = self.trainer.forward_train(&x)?.squeeze(0)?;
        let logits = logits.narrow(0, context.len() - 1, tokens.len())?;
        let logits = if temperature > 0.0 {
            (logits / temperature as f64)?
        } else {
            logits
        };
        let logp = candle_nn::ops::log_softmax(&logits, D::Minus1)?;
        let idx = Tensor::new(tokens, dev)?.unsqueeze(1)?;
        let picked: Vec<f32> = logp.gather(&idx, 1)?.squeeze(1)?.to_vec1()?;
        let ent: Vec<f32> = (logp.exp()? * &logp)?.sum(D::Minus1)?.neg()?.to_vec1()?;
        Ok((picked, ent))
    }

    /// Turns an engine's reply into a completion: tokens cut after the first stop token,
    /// the delimiter re-appended where the engine trimmed its stop text, all rescored.
    fn complete(
        &self,
        request: usize,
        context: &[u32],
        reply: &Reply,
        params: &SamplingParams,
    ) -> Result<Completion> {
        let vocab = self.trainer.config().vocab_size;
        if let Some(t) = reply.tokens.iter().find(|&&t| t as usize >= vocab) {
            return Err(err(format!(
                "the {} server returned token id {t}, outside the vocabulary of {vocab}: \
                 is it serving another model?",
                self.cfg.engine.name()
            )));
        }
        let stop = |t: u32| t == params.eos || Some(t) == params.stop_at;
        let mut tokens = Vec::new();
        let mut logprobs = Vec::new();
        for (i, &t) in reply.tokens.iter().enumerate() {
            tokens.push(t);
            logprobs.push(reply.logprobs.get(i).copied().flatten());
            if stop(t) {
                break;
            }
        }
        let room = self
            .trainer
            .config()
            .max_position_embeddings
            .saturating_sub(context.len());
        let last_stops = tokens.last().is_some_and(|&t| stop(t));
        match reply.ended {
            Ended::Word if !last_stops && tokens.len() < room => {
                if let Some(d) = params.stop_at {
                    tokens.push(d);
                    logprobs.push(None);
                }
            }
            Ended::Eos if !last_stops && tokens.len() < room => {
                tokens.push(params.eos);
                logprobs.push(None);
            }
            _ => {}
        }
        let finish = match tokens.last() {
            Some(&t) if t == params.eos => Finish::Eos,
            Some(&t) if Some(t) == params.stop_at => Finish::Delimiter,
            _ => Finish::Limit,
        };
        let (trainer_lp, entropies) = self.rescore(context, &tokens, params.temperature)?;
        let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
        for (e, t) in logprobs.iter().zip(&trainer_lp) {
            if let Some(e) = e {
                s.logprob_abs_diff_sum += (*e as f64 - *t as f64).abs();
                s.logprob_compared += 1;
            }
        }
        s.generated_tokens += tokens.len() as u64;
        Ok(Completion {
            request,
            tokens,
            logprobs: trainer_lp,
            entropies,
            finish,
            cache: None,
        })
    }
}

impl Generator for ServerGenerator<'_> {
    fn max_context(&self) -> usize {
        self.trainer.config().max_position_embeddings
    }

    fn generate(
        &self,
        requests: &[Request],
        params: &SamplingParams,
        _keep_cache: bool,
        rng: &mut dyn RngCore,
    ) -> std::result::Result<(Vec<Completion>, SampleStats), GenerateError> {
        let max_pos = self.max_context();
        let mut asks = Vec::with_capacity(requests.len());
        for (i, r) in requests.iter().enumerate() {
            if r.context.is_empty() {
                return Err(GenerateError::Engine(
                    "cannot sample from an empty context".into(),
                ));
            }
            if r.context.len() >= max_pos {
                return Err(GenerateError::Engine(format!(
                    "context of {} tokens reaches the model's {max_pos} positions",
                    r.context.len()
                )));
            }
            let mut stop_ids = vec![params.eos];
            stop_ids.extend(params.stop_at);
            // A request of many copies goes out as several of at most `max_copies`.
            let mut left = r.copies;
            while left > 0 {
                let copies = left.min(self.max_copies);
                left -= copies;
                asks.push((
                    i,
                    Ask {
                        context: r.context,
                        copies,
                        max_tokens: params
                            .max_tokens
                            .min(r.max_tokens.unwrap_or(usize::MAX))
                            .min(max_pos - r.context.len()),
                        temperature: params.temperature,
                        stop_ids: stop_ids.clone(),
                        stop_text: params.stop_at.and(self.delimiter_text.clone()),
                        seed: Some(rng.next_u64()),
                        model: self.cfg.model.clone(),
                    },
                ));
            }
        }
        // Up to max_in_flight requests at once, each on its own thread.
        let mut answers: Vec<std::result::Result<Vec<Reply>, ServerError>> =
            Vec::with_capacity(asks.len());
        for chunk in asks.chunks(self.cfg.max_in_flight.max(1)) {
            let got: Vec<_> = std::thread::scope(|s| {
                let handles: Vec<_> = chunk
                    .iter()
                    .map(|(_, a)| {
                        s.spawn(move || {
                            let v = self.post(&body(self.cfg.engine, a))?;
                            Ok(parse(self.cfg.engine, &v)?)
                        })
                    })
                    .collect();
                handles
                    .into_iter()
                    .map(|h| h.join().unwrap_or(Err(ServerError::Panicked)))
                    .collect()
            });
            answers.extend(got);
        }
        let mut out = Vec::new();
        let mut stats = SampleStats::default();
        for ((i, a), answer) in asks.iter().zip(answers) {
            let replies = answer.map_err(|e| GenerateError::Engine(e.to_string()))?;
            if replies.len() != a.copies {
                return Err(GenerateError::Engine(format!(
                    "the {} server returned {} completions for a request of {}",
                    self.cfg.engine.name(),
                    replies.len(),
                    a.copies
                )));
            }
            {
                let mut s = self.stats.lock().unwrap_or_else(|p| p.into_inner());
                s.requests += 1;
                s.prompt_tokens += a.context.len() as u64;
                s.cached_tokens += replies.first().and_then(|r| r.cached).unwrap_or(0);
            }
            for r in &replies {
                let c = self.complete(*i, a.context, r, params)?;
                stats.generated_tokens += c.tokens.len() as u64;
                // The rescoring pass: the trainer's own forward over context and tokens.
                stats.forwarded_tokens += (a.context.len() + c.tokens.len()) as u64;
                stats.forward_passes += 1;
                out.push(c);
            }
        }
        Ok((out, stats))
    }
}
