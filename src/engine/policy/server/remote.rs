//! The `[generator]` settings and the engine's side of training: before the first
//! generation after the weights changed (several optimizer steps, one reload), the policy
//! is written to a versioned folder (a temporary name, then renamed) and the engine is
//! asked to load it: SGLang `/update_weights_from_disk`; vLLM `/collective_rpc`
//! `reload_weights`, then `/reset_prefix_cache`; llama.cpp, which cannot reload, is run
//! by arbor itself from `serve_cmd` and restarted on the new GGUF. Every sample is then
//! rescored with the trainer's weights, so none is trained on as if another version had
//! drawn it.
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::wire::{self, Engine, WireError};
use super::{ServerConfig, ServerGenerator};
use crate::engine::policy::checkpoint::{save_hf, CheckpointError, SaveDtype};
use crate::engine::policy::gguf::save_gguf;
use crate::engine::policy::{Policy, Qwen2};

/// Which generator samples for training.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum GeneratorKind {
    /// arbor's own candle sampler, in the trainer's process (default).
    #[default]
    Candle,
    Sglang,
    Vllm,
    Llamacpp,
}

impl GeneratorKind {
    pub fn engine(self) -> Option<Engine> {
        match self {
            GeneratorKind::Candle => None,
            GeneratorKind::Sglang => Some(Engine::Sglang),
            GeneratorKind::Vllm => Some(Engine::Vllm),
            GeneratorKind::Llamacpp => Some(Engine::Llamacpp),
        }
    }
}

/// `[generator]`: where training samples come from. Not retunable.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GeneratorConfig {
    /// candle (default), sglang, vllm or llamacpp.
    pub kind: GeneratorKind,
    /// The engine's base URL. Default http://127.0.0.1:30000 (SGLang's port).
    pub url: String,
    /// Where weight versions are written for the engine to load (it must see this
    /// folder). Default runs/weights.
    pub weights_dir: PathBuf,
    /// Requests in flight at once. Default 32.
    pub max_in_flight: usize,
    /// Seconds one request may take. Default 600.
    pub timeout_seconds: f64,
    /// Retries of a failed request, with doubling backoff from 200 ms. Default 3.
    pub retries: u32,
    /// llama.cpp: the command arbor runs to serve, restarted on every new weight
    /// version; `{model}` is replaced by the GGUF file, `{port}` by the URL's port.
    pub serve_cmd: String,
    /// The served model's name (vLLM's `--served-model-name`), if it needs one.
    pub model: Option<String>,
    /// How many weight versions behind the trainer the engine may serve before arbor
    /// reloads it. Default 0: the engine always serves the current weights. Samples
    /// from an older version are rescored with the trainer's weights like every server
    /// sample, so none is trained on as if the current policy had drawn it; a larger
    /// limit trades staleness for fewer reloads (llama.cpp restarts its server on each).
    pub max_stale_versions: u64,
    /// Evaluations sample on the engine too (default). false: they sample with the
    /// trainer's candle copy of the weights, as a run without an engine does.
    pub evaluate: bool,
    /// The most mean |engine log-prob - trainer log-prob| an iteration may show before
    /// its record flags it (`logprob_disagrees`): the engine is not sampling from the
    /// weights the trainer holds (an old version served, another model, a bug in the
    /// engine's sampling). Healthy runs show about 2e-4 in f32. Default 0.01.
    pub max_logprob_diff: f64,
    /// Stop the run at an iteration over `max_logprob_diff` instead of flagging it.
    /// Default false.
    pub stop_on_logprob_diff: bool,
}

impl Default for GeneratorConfig {
    fn default() -> Self {
        Self {
            kind: GeneratorKind::Candle,
            url: "http://127.0.0.1:30000".into(),
            weights_dir: PathBuf::from("runs/weights"),
            max_in_flight: 32,
            timeout_seconds: 600.0,
            retries: 3,
            serve_cmd: String::new(),
            model: None,
            max_stale_versions: 0,
            evaluate: true,
            max_logprob_diff: 0.01,
            stop_on_logprob_diff: false,
        }
    }
}

/// What went wrong with the engine the trainer generates on: its flag, its settings,
/// reaching it, or making it serve new weights. Inner errors are part of each message,
/// not a `source()` (a report printing the chain would repeat them).
#[derive(Debug, thiserror::Error)]
pub enum GeneratorError {
    /// `--generator KIND`: an unknown kind.
    #[error(
        "--generator {kind:?}: expected candle, sglang, vllm or llamacpp, optionally \
         with =URL (e.g. --generator vllm=http://127.0.0.1:8000)"
    )]
    UnknownKind { kind: String },
    /// `--generator KIND=URL`: a URL that is not `http://HOST:PORT`.
    #[error(
        "--generator {flag:?}: the URL must be http://HOST:PORT (e.g. http://127.0.0.1:30000)"
    )]
    FlagUrl { flag: String },
    #[error(transparent)]
    Setting(#[from] SettingError),
    /// An iteration's engine log-probs disagree with the trainer's beyond the tolerance
    /// (`generator.stop_on_logprob_diff`).
    #[error(
        "iteration {iteration}: the engine's log-probs differ from the trainer's by {diff:.4} on average \
         (generator.max_logprob_diff = {limit}): it is not sampling from the trainer's weights \
         (weight version {version}); check the engine's log, or set generator.stop_on_logprob_diff = false \
         to flag such iterations and go on"
    )]
    LogprobDisagreement {
        iteration: u64,
        diff: f64,
        limit: f64,
        version: u64,
    },
    /// The server's `/health` answered with an error status.
    #[error("{url} answered {status}: is {server} still loading the model?")]
    Loading {
        url: String,
        /// "SGLang" or "vLLM".
        server: &'static str,
        status: ureq::http::StatusCode,
    },
    /// Nothing answers at `generator.url`.
    #[error(
        "no {server} server answers at {url} ({error}): start it first (README, \"Many GPUs: SGLang and vLLM\"), or set generator.url"
    )]
    Down {
        server: &'static str,
        url: String,
        error: ureq::Error,
    },
    /// The engine has no version endpoint: older than arbor needs.
    #[error(
        "{url}: {error}: an engine without this endpoint is older than arbor needs ({} {} or newer)",
        .engine.name(),
        .engine.min_version().0
    )]
    NoVersion {
        url: String,
        engine: Engine,
        error: ureq::Error,
    },
    #[error("{url} answered something that is not JSON ({error})")]
    NotJson {
        url: String,
        error: serde_json::Error,
    },
    #[error(transparent)]
    Wire(#[from] WireError),
    /// A weight-reload request did not get through.
    #[error("{url}: {error}: is the server still running?")]
    Unreachable { url: String, error: ureq::Error },
    /// A weight-reload request answered with an error status.
    #[error("{url} answered {status}: {body}")]
    Status {
        url: String,
        status: ureq::http::StatusCode,
        body: String,
    },
    #[error("SGLang refused the new weights: {answer}")]
    WeightsRefused { answer: serde_json::Value },
    #[error("generator.kind is candle")]
    Candle,
    #[error("generator.weights_dir {}: {error}", .dir.display())]
    WeightsDir { dir: PathBuf, error: std::io::Error },
    #[error("{}: {error}", .path.display())]
    Io {
        path: PathBuf,
        error: std::io::Error,
    },
    /// The weights could not be written for the engine.
    #[error("{0}")]
    Save(CheckpointError),
    #[error("generator.serve_cmd is empty")]
    EmptyServeCmd,
    #[error("generator.serve_cmd {program:?}: {error}")]
    Spawn {
        program: String,
        error: std::io::Error,
    },
    #[error("generator.serve_cmd exited ({status}) before serving: run it by hand to see why")]
    ServeExited { status: std::process::ExitStatus },
    #[error("{url} did not answer within {seconds}s")]
    NotHealthy { url: String, seconds: u64 },
}

/// A `[generator]` setting refused by [`GeneratorConfig::validate`]: the key, and what is
/// wrong with it (the message is the key, a space, then the problem).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key} {problem}")]
pub struct SettingError {
    pub key: &'static str,
    pub problem: SettingProblem,
}

/// What is wrong with a `[generator]` setting.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SettingProblem {
    #[error("= {0:?}: expected http://HOST:PORT (plain HTTP on a local or trusted network)")]
    NotHostPort(String),
    #[error("must be at least 1")]
    AtLeastOne,
    #[error("must be a positive number")]
    NotPositive,
    #[error(
        "must be set for llamacpp and contain {{model}}, e.g. \
         \"llama-server -m {{model}} --port {{port}} -c 4096\": llama-server cannot \
         reload weights, so arbor runs it and restarts it on every new version"
    )]
    ServeCmd,
}

/// `--generator KIND[=URL]` (`vllm=http://gpu1:8000`, `llamacpp`, `candle`): the engine
/// and, where given, its URL.
pub fn parse_generator_flag(s: &str) -> Result<(GeneratorKind, Option<String>), GeneratorError> {
    let (kind, url) = match s.split_once('=') {
        Some((k, u)) => (k, Some(u.to_string())),
        None => (s, None),
    };
    let kind = match kind {
        "candle" => GeneratorKind::Candle,
        "sglang" => GeneratorKind::Sglang,
        "vllm" => GeneratorKind::Vllm,
        "llamacpp" => GeneratorKind::Llamacpp,
        other => {
            return Err(GeneratorError::UnknownKind {
                kind: other.to_string(),
            })
        }
    };
    if let Some(u) = &url {
        if port_of(u).is_none() {
            return Err(GeneratorError::FlagUrl {
                flag: s.to_string(),
            });
        }
    }
    Ok((kind, url))
}

/// The port of `http://host:port[/...]`.
pub fn port_of(url: &str) -> Option<u16> {
    let rest = url.strip_prefix("http://")?;
    let hostport = rest.split('/').next()?;
    hostport.rsplit_once(':')?.1.parse().ok()
}

impl GeneratorConfig {
    /// Checks the settings (the errors name the key).
    pub fn validate(&self) -> Result<(), SettingError> {
        if self.kind == GeneratorKind::Candle {
            return Ok(());
        }
        let refuse = |key, problem| Err(SettingError { key, problem });
        if port_of(&self.url).is_none() {
            return refuse(
                "generator.url",
                SettingProblem::NotHostPort(self.url.clone()),
            );
        }
        if self.max_in_flight == 0 {
            return refuse("generator.max_in_flight", SettingProblem::AtLeastOne);
        }
        if !(self.timeout_seconds.is_finite() && self.timeout_seconds > 0.0) {
            return refuse("generator.timeout_seconds", SettingProblem::NotPositive);
        }
        if self.kind == GeneratorKind::Llamacpp && !self.serve_cmd.contains("{model}") {
            return refuse("generator.serve_cmd", SettingProblem::ServeCmd);
        }
        Ok(())
    }

    /// Checks, before anything is written, that a server the user runs (SGLang, vLLM)
    /// answers; a llama-server is started by arbor itself at the first generation.
    pub fn reachable(&self) -> Result<(), GeneratorError> {
        if !matches!(self.kind, GeneratorKind::Sglang | GeneratorKind::Vllm) {
            return Ok(());
        }
        let agent = super::agent(Duration::from_secs(10));
        let url = format!("{}/health", self.url.trim_end_matches('/'));
        let name = if self.kind == GeneratorKind::Sglang {
            "SGLang"
        } else {
            "vLLM"
        };
        match agent.get(&url).call() {
            Ok(r) if r.status().is_success() => {}
            Ok(r) => {
                return Err(GeneratorError::Loading {
                    url,
                    server: name,
                    status: r.status(),
                })
            }
            Err(error) => {
                return Err(GeneratorError::Down {
                    server: name,
                    url: self.url.clone(),
                    error,
                })
            }
        }
        engine_version(
            &agent,
            &self.url,
            self.kind.engine().expect("a server kind"),
        )
        .map(|_| ())
    }

    /// Applies `--generator KIND[=URL]` ([`parse_generator_flag`]).
    pub fn apply_flag(&mut self, flag: &str) -> Result<(), GeneratorError> {
        let (kind, url) = parse_generator_flag(flag)?;
        self.kind = kind;
        if let Some(u) = url {
            self.url = u;
        }
        Ok(())
    }

    pub fn server(&self) -> Option<ServerConfig> {
        Some(ServerConfig {
            engine: self.kind.engine()?,
            url: self.url.clone(),
            max_in_flight: self.max_in_flight,
            timeout: Duration::from_secs_f64(self.timeout_seconds),
            retries: self.retries,
            model: self.model.clone(),
        })
    }
}

/// Asks the engine its version ([`wire::version`]) and refuses one too old for the
/// fields arbor needs.
pub fn engine_version(
    agent: &ureq::Agent,
    base: &str,
    engine: Engine,
) -> Result<String, GeneratorError> {
    let url = format!("{}{}", base.trim_end_matches('/'), engine.version_path());
    let mut r = match agent.get(&url).call() {
        Ok(r) => r,
        Err(error) => return Err(GeneratorError::NoVersion { url, engine, error }),
    };
    let text = r.body_mut().read_to_string().unwrap_or_default();
    let v: serde_json::Value =
        serde_json::from_str(&text).map_err(|error| GeneratorError::NotJson { url, error })?;
    let found = wire::version(engine, &v)?;
    wire::check_version(engine, &found)?;
    Ok(found)
}

/// The engine as the trainer drives it: the weight version it serves, and the
/// llama-server process when arbor runs it.
pub struct Remote {
    pub cfg: GeneratorConfig,
    /// The weight version the engine serves (None: not yet synced).
    pub serving: Option<u64>,
    /// The engine's own version, read when arbor first reaches it.
    pub engine_version: Option<String>,
    process: Option<Child>,
    agent: ureq::Agent,
}

impl Drop for Remote {
    fn drop(&mut self) {
        if let Some(mut c) = self.process.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn abs(p: &Path) -> PathBuf {
    std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf())
}

impl Remote {
    pub fn new(cfg: GeneratorConfig) -> Self {
        let agent = super::agent(Duration::from_secs_f64(cfg.timeout_seconds));
        Self {
            cfg,
            serving: None,
            engine_version: None,
            process: None,
            agent,
        }
    }

    fn post(
        &self,
        path: &str,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, GeneratorError> {
        let url = format!("{}{path}", self.cfg.url.trim_end_matches('/'));
        let sent = self
            .agent
            .post(&url)
            .header("Content-Type", "application/json")
            .send(body.to_string().as_str());
        let mut r = match sent {
            Ok(r) => r,
            Err(error) => return Err(GeneratorError::Unreachable { url, error }),
        };
        let status = r.status();
        let text = r.body_mut().read_to_string().unwrap_or_default();
        if !status.is_success() {
            return Err(GeneratorError::Status {
                url,
                status,
                body: text,
            });
        }
        Ok(serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
    }

    fn wait_healthy(&mut self, within: Duration) -> Result<(), GeneratorError> {
        let url = format!("{}/health", self.cfg.url.trim_end_matches('/'));
        let start = Instant::now();
        loop {
            if let Some(c) = self.process.as_mut() {
                if let Ok(Some(status)) = c.try_wait() {
                    return Err(GeneratorError::ServeExited { status });
                }
            }
            if let Ok(r) = self.agent.get(&url).call() {
                if r.status().is_success() {
                    return Ok(());
                }
            }
            if start.elapsed() > within {
                return Err(GeneratorError::NotHealthy {
                    url,
                    seconds: within.as_secs(),
                });
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether the engine may go on serving what it serves while the trainer is at
    /// `version`: the same version, or (with `allow_stale`) one at most
    /// `max_stale_versions` behind.
    pub fn serves_well_enough(&self, version: u64, allow_stale: bool) -> bool {
        let limit = if allow_stale {
            self.cfg.max_stale_versions
        } else {
            0
        };
        self.serving
            .is_some_and(|s| s <= version && version - s <= limit)
    }

    /// The engine as a generator, once it serves `version` of `policy` ([`Remote::sync`]);
    /// `trainer` (the candle copy of the same weights) rescores what it samples.
    pub fn generator<'a>(
        &mut self,
        policy: &Policy,
        trainer: &'a Qwen2,
        version: u64,
        allow_stale: bool,
    ) -> Result<Option<ServerGenerator<'a>>, GeneratorError> {
        self.sync(policy, version, allow_stale)?;
        let tok = &policy.tokenizer;
        let delimiter = tok.newline().map(|t| tok.decode(&[t]));
        Ok(self
            .cfg
            .server()
            .map(|c| ServerGenerator::new(c, trainer, delimiter)))
    }

    /// Makes the engine serve `version` of `policy`, unless it already serves a version
    /// recent enough ([`Remote::serves_well_enough`]): training samples may come from a
    /// version up to `max_stale_versions` old (`allow_stale`), evaluations never.
    pub fn sync(
        &mut self,
        policy: &Policy,
        version: u64,
        allow_stale: bool,
    ) -> Result<(), GeneratorError> {
        if self.serves_well_enough(version, allow_stale) {
            return Ok(());
        }
        if self.engine_version.is_none() && self.cfg.kind != GeneratorKind::Llamacpp {
            let engine = self.cfg.kind.engine().ok_or(GeneratorError::Candle)?;
            self.engine_version = Some(engine_version(&self.agent, &self.cfg.url, engine)?);
        }
        let dir = self.cfg.weights_dir.clone();
        let dir = &dir;
        std::fs::create_dir_all(dir).map_err(|error| GeneratorError::WeightsDir {
            dir: dir.clone(),
            error,
        })?;
        let name = format!("v{version:06}");
        let tmp = dir.join(format!(".{name}.tmp"));
        let done = dir.join(&name);
        let _ = std::fs::remove_dir_all(&tmp);
        let _ = std::fs::remove_dir_all(&done);
        std::fs::create_dir_all(&tmp).map_err(|error| GeneratorError::Io {
            path: tmp.clone(),
            error,
        })?;
        match self.cfg.kind {
            GeneratorKind::Llamacpp => save_gguf(policy, &tmp.join("policy.gguf"), SaveDtype::F32),
            _ => save_hf(policy, &tmp, SaveDtype::F32),
        }
        .map_err(GeneratorError::Save)?;
        std::fs::rename(&tmp, &done).map_err(|error| GeneratorError::Io {
            path: done.clone(),
            error,
        })?;
        if let Ok(d) = std::fs::File::open(dir) {
            let _ = d.sync_all();
        }
        let path = abs(&done);
        match self.cfg.kind {
            GeneratorKind::Candle => {}
            GeneratorKind::Sglang => {
                let v = self.post(
                    "/update_weights_from_disk",
                    serde_json::json!({ "model_path": path }),
                )?;
                if v.get("success").and_then(|s| s.as_bool()) == Some(false) {
                    return Err(GeneratorError::WeightsRefused { answer: v });
                }
            }
            GeneratorKind::Vllm => {
                self.post(
                    "/collective_rpc",
                    serde_json::json!({
                        "method": "reload_weights",
                        "kwargs": { "weights_path": path },
                    }),
                )?;
                self.post("/reset_prefix_cache", serde_json::json!({}))?;
            }
            GeneratorKind::Llamacpp => {
                if let Some(mut c) = self.process.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                }
                let port = port_of(&self.cfg.url).unwrap_or(8080).to_string();
                let cmd = self
                    .cfg
                    .serve_cmd
                    .replace("{model}", &path.join("policy.gguf").display().to_string())
                    .replace("{port}", &port);
                let mut words = cmd.split_whitespace();
                let prog = words.next().ok_or(GeneratorError::EmptyServeCmd)?;
                let child = Command::new(prog)
                    .args(words)
                    .stdin(Stdio::null())
                    .stdout(Stdio::null())
                    .stderr(Stdio::null())
                    .spawn()
                    .map_err(|error| GeneratorError::Spawn {
                        program: prog.to_string(),
                        error,
                    })?;
                self.process = Some(child);
                self.wait_healthy(Duration::from_secs(120))?;
                self.engine_version = Some(engine_version(
                    &self.agent,
                    &self.cfg.url,
                    Engine::Llamacpp,
                )?);
            }
        }
        // Older versions are no longer served.
        if let Some(old) = self.serving {
            let _ = std::fs::remove_dir_all(dir.join(format!("v{old:06}")));
        }
        self.serving = Some(version);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn training_may_lag_by_the_staleness_limit_and_evaluation_never() {
        let mut r = Remote::new(GeneratorConfig {
            kind: GeneratorKind::Sglang,
            max_stale_versions: 2,
            ..GeneratorConfig::default()
        });
        assert!(!r.serves_well_enough(0, true), "nothing served yet");
        r.serving = Some(5);
        assert!(r.serves_well_enough(5, true) && r.serves_well_enough(5, false));
        assert!(r.serves_well_enough(7, true), "two versions behind");
        assert!(!r.serves_well_enough(8, true), "three behind: reload");
        assert!(
            !r.serves_well_enough(6, false),
            "evaluation wants the current weights"
        );
        assert!(
            !r.serves_well_enough(4, true),
            "a newer version than the trainer's"
        );
        r.cfg.max_stale_versions = 0;
        assert!(!r.serves_well_enough(6, true));
    }

    #[test]
    fn settings_are_checked_with_the_key_named() {
        assert!(GeneratorConfig::default().validate().is_ok());
        let g = |f: fn(&mut GeneratorConfig)| {
            let mut c = GeneratorConfig {
                kind: GeneratorKind::Sglang,
                ..GeneratorConfig::default()
            };
            f(&mut c);
            c.validate()
        };
        assert!(g(|_| {}).is_ok());
        let e = g(|c| c.url = "localhost".into()).unwrap_err();
        assert_eq!(e.key, "generator.url");
        assert_eq!(
            e.to_string(),
            "generator.url = \"localhost\": expected http://HOST:PORT (plain HTTP on a local or trusted network)"
        );
        let e = g(|c| c.max_in_flight = 0).unwrap_err();
        assert_eq!(e.to_string(), "generator.max_in_flight must be at least 1");
        let e = g(|c| c.timeout_seconds = 0.0).unwrap_err();
        assert_eq!(
            e.to_string(),
            "generator.timeout_seconds must be a positive number"
        );
        let e = g(|c| c.kind = GeneratorKind::Llamacpp).unwrap_err();
        assert_eq!(e.key, "generator.serve_cmd");
        assert!(e.to_string().starts_with(
            "generator.serve_cmd must be set for llamacpp and contain {model}, e.g. \"llama-server -m {model} --port {port} -c 4096\""
        ));
        assert_eq!(port_of("http://127.0.0.1:8080/x"), Some(8080));
        assert_eq!(
            parse_generator_flag("vllm=http://gpu1:8000").unwrap(),
            (GeneratorKind::Vllm, Some("http://gpu1:8000".to_string()))
        );
        assert_eq!(
            parse_generator_flag("llamacpp").unwrap(),
            (GeneratorKind::Llamacpp, None)
        );
        assert!(matches!(
            parse_generator_flag("tgi"),
            Err(GeneratorError::UnknownKind { kind }) if kind == "tgi"
        ));
        assert!(parse_generator_flag("tgi")
            .unwrap_err()
            .to_string()
            .contains("expected candle"));
        assert!(parse_generator_flag("sglang=gpu1")
            .unwrap_err()
            .to_string()
            .contains("http://HOST:PORT"));
        assert_eq!(port_of("https://h:1"), None);
    }
}
