//! The trainer: a run's state, how it is built, restored and checkpointed, and its
//! held-out evaluation. One iteration is `iteration.rs`, the loop around it `run.rs`,
//! the user's directives between iterations `directives.rs`, the records `records.rs`.
//! The method (`methods/`) is a `Box<dyn Method>` from the registry; nothing here
//! knows which.
use std::collections::{HashMap, HashSet};

use candle_core::Tensor;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::engine::methods::Method;
use crate::engine::policy::server::remote::{GeneratorKind, Remote};
use crate::engine::policy::Policy;
use crate::engine::rl::groups::SearchMetrics;
use crate::engine::rl::interrupt::{Interrupt, Phase};
use crate::engine::rl::optim::{AdamW, AdamWConfig};
use crate::engine::rl::stream::ProblemStream;
use crate::engine::rl::update::Sample;
use crate::engine::task::Problem;
use crate::engine::training::config::{EvalSplit, RunConfig};
use crate::engine::training::error::EngineError;
use crate::engine::training::evaluate::{evaluate, EvalSettings};
use crate::engine::training::metrics::EvalResult;
use crate::engine::training::phases::PhaseSeconds;
use crate::engine::training::records::IterationMetrics;
use crate::engine::training::resume::{
    CheckpointKind, RngState, TrainerState, TrainingCheckpoint, STATE_VERSION,
};
use crate::engine::training::sink::Sink;
use crate::engine::training::split::RunData;

/// For the crash harness: with `ARBOR_PHASE_LOG=FILE`, each phase's start is appended to
/// FILE ("update 7"), so a kill can be attributed to the phase it interrupted.
pub(crate) fn phase_log(phase: &str, iteration: u64) {
    if let Some(path) = std::env::var_os("ARBOR_PHASE_LOG") {
        use std::io::Write;
        if let Ok(mut f) = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
        {
            let _ = writeln!(f, "{phase} {iteration}");
        }
    }
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A run in progress.
pub struct Trainer {
    pub cfg: RunConfig,
    pub policy: Policy,
    pub data: RunData,
    pub(crate) opt: AdamW,
    pub(crate) rng: ChaCha8Rng,
    /// The training problems in their seeded order (and the user's skips).
    pub(crate) stream: ProblemStream,
    /// The run's method, built by the registry from `cfg`.
    pub(crate) method: Box<dyn Method>,
    pub iteration: u64,
    pub generated_tokens: u64,
    /// Search accounting summed over the run.
    pub search_totals: SearchMetrics,
    /// Wall seconds spent committing iterations.
    pub store_seconds: f64,
    /// Phases of the iterations this process ran (not carried across a resume).
    pub phase_totals: PhaseSeconds,
    /// The held-out evaluation before the first iteration (kept across resumes).
    pub eval_start: Option<EvalResult>,
    /// Consecutive iterations in which every update step was non-finite.
    pub nonfinite_streak: u64,
    /// Fault injection (`ARBOR_FAULT_NAN=3,4,5`): iterations whose losses are made NaN.
    pub(crate) fault_nan: HashSet<u64>,
    /// The inference engine that samples, when `[generator]` names one.
    pub(crate) remote: Option<Remote>,
    /// Bumped by every optimizer step that changes the weights; the engine is brought to
    /// it before the next generation.
    pub weights_version: u64,
    /// Generated tokens spent on filtering (part of `generated_tokens`).
    pub filter_tokens: u64,
    /// Optimizer steps owed to the tokens generated (`train.tokens_per_step`).
    pub(crate) steps_owed: f64,
    /// Scored samples waiting for the step they are owed (`train.tokens_per_step`).
    pub(crate) buffered: Vec<Sample>,
    /// The run's evaluations in order (start included), for plateau detection.
    pub eval_history: Vec<EvalResult>,
    /// The last iteration's record when a stop interrupted its evaluation (run on resume).
    pub eval_owed: Option<IterationMetrics>,
    /// Problems solved and response tokens trained on, over the run.
    pub(crate) solved_total: u64,
    pub(crate) trained_tokens: u64,
    pub(crate) reference_tokens: u64,
    /// The initial policy, for a KL penalty to it (methods whose objective has one).
    pub(crate) reference: Option<Reference>,
    /// The value head's fit before the first iteration, once done (methods that ask).
    pub(crate) value_prefit: Option<crate::engine::rl::value_fit::ValueFit>,
}

/// The policy a run started from: its weights (saved with every checkpoint, so a resume
/// keeps the same reference) and the language model on them, built once.
pub(crate) struct Reference {
    pub(crate) tensors: HashMap<String, Tensor>,
    pub(crate) model: crate::engine::policy::Qwen2,
}

impl Reference {
    fn new(policy: &Policy, tensors: HashMap<String, Tensor>) -> candle_core::Result<Self> {
        let model = Policy::reference_model(&policy.config, tensors.clone(), policy.device())?;
        Ok(Self { tensors, model })
    }
}

/// Consecutive all-non-finite iterations after which the run pauses.
pub const NONFINITE_PAUSE: u64 = 3;

impl Trainer {
    pub fn new(cfg: RunConfig, mut policy: Policy, data: RunData) -> Result<Self, EngineError> {
        let remote = (cfg.generator.kind != GeneratorKind::Candle)
            .then(|| Remote::new(cfg.generator.clone()));
        if data.train.is_empty() || data.test.is_empty() {
            return Err(EngineError::Data(
                "a run needs at least one training and one test problem".into(),
            ));
        }
        if cfg.eval.split == EvalSplit::Validation && data.validation.is_empty() {
            return Err(EngineError::Config(
                "eval.split = \"validation\" needs a validation split: set data.validation_size \
                 (or data.validation_data)"
                    .into(),
            ));
        }
        let method = cfg.method.build(&cfg);
        method
            .check(&policy.tokenizer, remote.is_some())
            .map_err(|e| EngineError::Config(e.to_string()))?;
        if method.value_head() {
            // The value head joins the policy (and so AdamW, checkpoints and resume).
            policy.add_value_head(cfg.seed)?;
        }
        let reference = if method.objective(&cfg.train).kl_coef > 0.0 {
            let tensors = policy
                .tensors()
                .into_iter()
                .filter(|(k, _)| !k.starts_with(crate::engine::policy::model::VALUE_HEAD_PREFIX))
                .map(|(k, v)| Ok((k, v.copy()?)))
                .collect::<candle_core::Result<_>>()?;
            Some(Reference::new(&policy, tensors)?)
        } else {
            None
        };
        let t = &cfg.train;
        let mut opt = AdamW::new(
            policy.vars(),
            AdamWConfig::new(t.lr, t.weight_decay, t.max_grad_norm),
        )?;
        opt.set_lr_for(
            crate::engine::policy::model::VALUE_HEAD_PREFIX,
            method.value_lr(),
        );
        let rng = ChaCha8Rng::seed_from_u64(cfg.seed);
        let data_rng = ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x5eed_da7a_0000_0000);
        let stream = ProblemStream::new(data.train.len(), data_rng);
        Ok(Self {
            cfg,
            policy,
            data,
            opt,
            rng,
            stream,
            method,
            iteration: 0,
            generated_tokens: 0,
            search_totals: SearchMetrics::default(),
            store_seconds: 0.0,
            phase_totals: PhaseSeconds::default(),
            eval_start: None,
            nonfinite_streak: 0,
            fault_nan: std::env::var("ARBOR_FAULT_NAN")
                .map(|v| v.split(',').filter_map(|x| x.trim().parse().ok()).collect())
                .unwrap_or_default(),
            remote,
            weights_version: 0,
            filter_tokens: 0,
            steps_owed: 0.0,
            buffered: Vec::new(),
            solved_total: 0,
            trained_tokens: 0,
            reference_tokens: 0,
            eval_history: Vec::new(),
            eval_owed: None,
            reference,
            value_prefit: None,
        })
    }

    /// Everything but weights and optimizer moments, as of the last finished iteration.
    pub fn state(&self) -> TrainerState {
        let mut skipped: Vec<usize> = self.stream.skipped.iter().copied().collect();
        skipped.sort_unstable();
        TrainerState {
            version: STATE_VERSION,
            iteration: self.iteration,
            config_toml: self.cfg.to_toml(),
            rng: RngState::of(&self.rng),
            data_rng: RngState::of(&self.stream.rng),
            optimizer_steps: self.opt.steps_taken(),
            generated_tokens: self.generated_tokens,
            pool: self.stream.pool.clone(),
            order: self.stream.order.clone(),
            cursor: self.stream.cursor,
            skipped,
            search_totals: self.search_totals,
            store_seconds: self.store_seconds,
            eval_start: self.eval_start.clone(),
            nonfinite_streak: self.nonfinite_streak,
            filter_tokens: self.filter_tokens,
            steps_owed: self.steps_owed,
            buffered: self.buffered.clone(),
            solved_total: self.solved_total,
            trained_tokens: self.trained_tokens,
            reference_tokens: self.reference_tokens,
            eval_history: self.eval_history.clone(),
            eval_owed: self.eval_owed.clone(),
            value_prefit: self.value_prefit.clone(),
            method: self.method.save(),
        }
    }

    /// Sets everything [`Trainer::state`] holds but the settings and optimizer steps
    /// (which an iteration changes only in its update).
    pub(crate) fn set_state(&mut self, state: TrainerState) -> Result<(), EngineError> {
        self.rng = state.rng.restore()?;
        self.stream.rng = state.data_rng.restore()?;
        self.iteration = state.iteration;
        self.generated_tokens = state.generated_tokens;
        self.stream.pool = state.pool;
        self.stream.order = state.order;
        self.stream.cursor = state.cursor;
        self.stream.skipped = state.skipped.into_iter().collect();
        self.method
            .load(&state.method)
            .map_err(|e| EngineError::Data(e.to_string()))?;
        self.search_totals = state.search_totals;
        self.store_seconds = state.store_seconds;
        self.eval_start = state.eval_start;
        self.nonfinite_streak = state.nonfinite_streak;
        self.filter_tokens = state.filter_tokens;
        self.steps_owed = state.steps_owed;
        self.buffered = state.buffered;
        self.solved_total = state.solved_total;
        self.trained_tokens = state.trained_tokens;
        self.reference_tokens = state.reference_tokens;
        self.eval_history = state.eval_history;
        self.eval_owed = state.eval_owed;
        self.value_prefit = state.value_prefit;
        Ok(())
    }

    /// A trainer continuing from a checkpoint: `policy` holds its weights, `moments` its
    /// optimizer state; `cfg` is the settings in force then (from `state.config_toml`).
    pub fn restore(
        cfg: RunConfig,
        policy: Policy,
        data: RunData,
        state: TrainerState,
        moments: &HashMap<String, Tensor>,
        reference: Option<HashMap<String, Tensor>>,
    ) -> Result<Self, EngineError> {
        let n = data.train.len();
        let bad = |what: &str| {
            EngineError::Data(format!(
                "checkpoint of iteration {}: {what} does not fit the {n} training problems; \
                 was the training data changed?",
                state.iteration
            ))
        };
        if state.order.len() != n || state.order.iter().any(|&i| i >= n) {
            return Err(bad("the data order"));
        }
        if state.pool.iter().chain(&state.skipped).any(|&i| i >= n) {
            return Err(bad("the hard set"));
        }
        let mut t = Self::new(cfg, policy, data)?;
        if t.reference.is_some() {
            // The KL's reference is the policy the run started from, not the checkpoint's.
            match reference {
                Some(r) => t.reference = Some(Reference::new(&t.policy, r)?),
                None => {
                    return Err(EngineError::Data(format!(
                        "checkpoint of iteration {}: the run's loss has a KL to its initial \
                         policy but the checkpoint has no reference.safetensors; resume with \
                         --set tree_distill.kl_coef=0 (or cispo.kl_coef=0) to go on without it",
                        state.iteration
                    )))
                }
            }
        }
        t.opt.load_state(moments, state.optimizer_steps)?;
        t.set_state(state)?;
        Ok(t)
    }

    /// Rebuilds the method from the settings in force (after a retune), keeping its state.
    pub(crate) fn rebuild_method(&mut self) -> Result<(), EngineError> {
        let state = self.method.save();
        self.method = self.cfg.method.build(&self.cfg);
        self.opt.set_lr_for(
            crate::engine::policy::model::VALUE_HEAD_PREFIX,
            self.method.value_lr(),
        );
        self.method
            .load(&state)
            .map_err(|e| EngineError::Data(e.to_string()))
    }

    pub(crate) fn checkpoint(
        &self,
        sink: &mut dyn Sink,
        kind: CheckpointKind,
    ) -> Result<(), EngineError> {
        phase_log("checkpoint", self.iteration);
        let ck = TrainingCheckpoint {
            policy: &self.policy,
            reference: self.reference.as_ref().map(|r| &r.tensors),
            optimizer: &self.opt,
            state: self.state(),
            kind,
        };
        Ok(sink.checkpoint(self.iteration, &ck)?)
    }

    /// The split evaluations use (`eval.split`).
    fn eval_problems(&self) -> &[Problem] {
        match self.cfg.eval.split {
            EvalSplit::Test => &self.data.test,
            EvalSplit::Validation => &self.data.validation,
        }
    }

    /// Evaluates the current policy on the evaluation split (test unless `eval.split`).
    /// A stop between its batches gives it up ([`EngineError::Interrupted`]).
    /// With an inference engine (`[generator]`, `evaluate = true`) the evaluation samples
    /// there, on the current weights (never stale ones).
    pub fn evaluate(&mut self, sink: &mut dyn Sink) -> Result<EvalResult, EngineError> {
        let model = self.policy.sampler_model()?;
        let server = match self.remote.as_mut().filter(|r| r.cfg.evaluate) {
            Some(r) => r
                .generator(&self.policy, &model, self.weights_version, false)
                .map_err(EngineError::Generator)?,
            None => None,
        };
        let generator: &dyn crate::engine::policy::Generator = match &server {
            Some(s) => s,
            None => &model,
        };
        let problems = self.eval_problems();
        let n = match self.cfg.eval.problems {
            0 => problems.len(),
            n => n.min(problems.len()),
        };
        // Progress and the check both go to the sink, never at once.
        let shared = std::cell::RefCell::new(&mut *sink);
        let (r, _) = evaluate(
            generator,
            &self.policy.tokenizer,
            &problems[..n],
            EvalSettings {
                k: self.cfg.eval.k,
                temperature: self.cfg.eval.temperature,
                max_tokens: self.cfg.train.max_tokens,
            },
            &self.data.rules,
            &mut |d, t| shared.borrow_mut().progress(Phase::Evaluate, d, t, ""),
            &mut || shared.borrow_mut().interrupt(Phase::Evaluate) == Interrupt::Stop,
        )?;
        sink.phase_done(
            Phase::Evaluate,
            &format!("pass@1 {:.3}, pass@{} {:.3}", r.pass1, r.k, r.pass_k),
        );
        Ok(r)
    }
}
