//! One iteration: the method's prelude, problems drawn, the method's batch (sampled or
//! searched, on the candle sampler or an inference engine), the update with the
//! method's objective, and the iteration's record.
use crate::engine::methods::{Prelude, RoundStart};
use crate::engine::policy::Generator;
use crate::engine::rl::groups::{Batch, GroupContext, Outcome};
use crate::engine::rl::interrupt::Phase;
use crate::engine::rl::record::TreeRecord;
use crate::engine::rl::update::{
    policy_update, steps_for_tokens, warmup_lr, UpdateSettings, UpdateStats,
};
use crate::engine::task::Problem;
use crate::engine::training::error::EngineError;
use crate::engine::training::phases::{PhaseClock, PhaseSeconds, Span};
use crate::engine::training::records::{AdaptiveMetrics, GeneratorMetrics, IterationMetrics};
use crate::engine::training::trainer::{phase_log, unix_now, Trainer};

impl Trainer {
    /// One iteration: sample (directly, or by tree search), score, update.
    pub fn step(&mut self) -> Result<(IterationMetrics, Vec<TreeRecord>), EngineError> {
        self.value_prefit()?;
        let mut clock = PhaseClock::start();
        let (mut m, trees) = self.step_timed(&mut clock, &mut |_| false)?;
        m.seconds = clock.finish();
        Ok((m, trees))
    }

    /// One iteration, its spans charged to `clock` (the caller charges what follows:
    /// evaluation, commit, checkpoint). `stop(phase)` is asked before each batch of the
    /// filtering, search or sampling; when it says stop the iteration ends with
    /// [`EngineError::Interrupted`] before its update, having changed only what
    /// [`Trainer::state`] holds (the caller rewinds that).
    pub(crate) fn step_timed(
        &mut self,
        clock: &mut PhaseClock,
        stop: &mut dyn FnMut(Phase) -> bool,
    ) -> Result<(IterationMetrics, Vec<TreeRecord>), EngineError> {
        self.iteration += 1;
        let model = self.policy.sampler_model()?;
        let tok = self.policy.tokenizer.clone();
        // Generation on an inference engine: it serves the current weights first.
        let server = match self.remote.as_mut() {
            Some(r) => r
                .generator(&self.policy, &model, self.weights_version, true)
                .map_err(EngineError::Generator)?,
            None => None,
        };
        let generator: &dyn Generator = match &server {
            Some(s) => s,
            None => &model,
        };
        let round = {
            let mut check = || stop(Phase::Filter);
            self.method.prelude(Prelude {
                iteration: self.iteration,
                train: &self.cfg.train,
                problems: &self.data.train,
                rules: &self.data.rules,
                generator,
                tok: &tok,
                stream: &mut self.stream,
                rng: &mut self.rng,
                stop: &mut check,
            })?
        };
        if let Some(r) = &round {
            self.generated_tokens += r.tokens;
            self.filter_tokens += r.tokens;
        }
        clock.charge(Span::Filtering);
        let idx = self
            .method
            .draw(&mut self.stream, self.cfg.train.problems_per_step);
        let problems: Vec<Problem> = idx.iter().map(|&i| self.data.train[i].clone()).collect();
        let phase = self.method.phase();
        phase_log(phase.label(), self.iteration);
        clock.charge(Span::Other);
        let mut check = || stop(phase);
        let mut ctx = GroupContext {
            model: &model,
            generator,
            tok: &tok,
            rules: &self.data.rules,
            train: &self.cfg.train,
            rng: &mut self.rng,
            stop: &mut check,
        };
        let mut batch = self.method.batch(&mut ctx, &problems, &idx)?;
        let served = self.generator_metrics(server.as_ref());
        if let (Some(g), Some(r)) = (&served, &self.remote) {
            if g.logprob_disagrees && r.cfg.stop_on_logprob_diff {
                return Err(EngineError::Generator(
                    crate::engine::policy::server::remote::GeneratorError::LogprobDisagreement {
                        iteration: self.iteration,
                        diff: g.mean_logprob_abs_diff.unwrap_or(f64::NAN),
                        limit: r.cfg.max_logprob_diff,
                        version: g.weight_version,
                    },
                ));
            }
        }
        drop(server);
        clock.charge_split(Span::Sample, Span::Scoring, batch.scoring_seconds);
        self.generated_tokens += batch.sampling.generated_tokens;
        if let Some(m) = &batch.search {
            self.search_totals.add(m);
        }
        let samples = std::mem::take(&mut batch.samples);
        let update = self.update(samples, batch.sampling.generated_tokens)?;
        clock.charge(Span::Update);
        let metrics = self.record(&problems, &batch, update, round, served);
        Ok((metrics, batch.trees))
    }

    /// What the inference engine did, when one sampled.
    fn generator_metrics(
        &self,
        server: Option<&crate::engine::policy::server::ServerGenerator>,
    ) -> Option<GeneratorMetrics> {
        let r = self.remote.as_ref()?;
        let g = server?;
        let st = g.stats();
        let version = r.serving.unwrap_or(self.weights_version);
        let diff = Some(st.mean_logprob_abs_diff()).filter(|d| d.is_finite());
        Some(GeneratorMetrics {
            logprob_disagrees: diff.is_some_and(|d| d > r.cfg.max_logprob_diff),
            engine: g.engine().name().to_string(),
            engine_version: r.engine_version.clone(),
            weight_version: version,
            stale_versions: self.weights_version.saturating_sub(version),
            requests: st.requests,
            retries: st.retries,
            prompt_tokens: st.prompt_tokens,
            cached_prompt_tokens: st.cached_tokens,
            mean_logprob_abs_diff: diff,
        })
    }

    /// The update on the batch's samples with the method's objective. Under equal
    /// learning per token samples wait in a buffer until a step is owed and there are
    /// enough of them (the weights do not change meanwhile, so they stay on-policy);
    /// otherwise every iteration updates with `minibatches` steps.
    fn update(
        &mut self,
        samples: Vec<crate::engine::rl::update::Sample>,
        generated: u64,
    ) -> Result<UpdateStats, EngineError> {
        let t = self.cfg.train.clone();
        let (minibatches, samples) = if let Some(pace) = t.step_pace() {
            self.buffered.extend(samples);
            let (steps, owed) =
                steps_for_tokens(self.steps_owed, generated, self.buffered.len(), &pace);
            self.steps_owed = owed;
            if steps == 0 {
                (0, Vec::new())
            } else {
                (steps, std::mem::take(&mut self.buffered))
            }
        } else {
            (t.minibatches, samples)
        };
        phase_log("update", self.iteration);
        let update = if minibatches == 0 {
            UpdateStats::default()
        } else {
            let objective = self.method.objective(&t);
            policy_update(
                &self.policy,
                &mut self.opt,
                &samples,
                &UpdateSettings {
                    objective: objective.policy,
                    value_coef: objective.value_coef,
                    kl_coef: objective.kl_coef,
                    reference: self.reference.as_ref().map(|r| &r.model),
                    minibatches,
                    epochs: t.epochs,
                    lr: t.lr,
                    warmup_steps: t.warmup_steps,
                    compute: t.precision.dtype(self.policy.device()),
                    poison: self.fault_nan.contains(&self.iteration),
                },
                &mut self.rng,
            )?
        };
        if update.optimizer_steps > 0 {
            self.weights_version += 1;
        }
        self.trained_tokens += update.tokens;
        self.reference_tokens += update.reference_tokens;
        if update.skipped_steps > 0 && update.optimizer_steps == 0 {
            self.nonfinite_streak += 1;
        } else if update.optimizer_steps > 0 {
            self.nonfinite_streak = 0;
        }
        Ok(update)
    }

    /// The iteration's record.
    fn record(
        &mut self,
        problems: &[Problem],
        batch: &Batch,
        update: UpdateStats,
        round: Option<RoundStart>,
        served: Option<GeneratorMetrics>,
    ) -> IterationMetrics {
        let t = &self.cfg.train;
        let lr = if update.optimizer_steps > 0 {
            update.lr
        } else {
            warmup_lr(t.lr, t.warmup_steps, self.opt.steps_taken())
        };
        self.solved_total += batch.solved_problems as u64;
        let o = &batch.outcomes;
        let n = o.len().max(1) as f64;
        let finite_mean = |f: &dyn Fn(&Outcome) -> f64| {
            let v: Vec<f64> = o.iter().map(f).filter(|x| x.is_finite()).collect();
            if v.is_empty() {
                0.0
            } else {
                v.iter().sum::<f64>() / v.len() as f64
            }
        };
        let iteration_tokens = batch.sampling.generated_tokens;
        IterationMetrics {
            iteration: self.iteration,
            method: self.cfg.method.name().into(),
            problems: problems.len(),
            train_reward: o.iter().map(|x| x.reward as f64).sum::<f64>() / n,
            train_accuracy: o.iter().filter(|x| x.correct).count() as f64 / n,
            mean_entropy: finite_mean(&|x| x.entropy),
            mean_nll: finite_mean(&|x| x.nll),
            problems_solved: batch.solved_problems,
            solved_per_1k_tokens: if iteration_tokens > 0 {
                batch.solved_problems as f64 * 1000.0 / iteration_tokens as f64
            } else {
                0.0
            },
            mean_response_tokens: o.iter().map(|x| x.tokens as f64).sum::<f64>() / n,
            update,
            lr,
            temperature: t.temperature,
            sampling: batch.sampling,
            search: batch.search,
            adaptive: round.map(|r| AdaptiveMetrics {
                round: r.round,
                hard_set_size: r.hard_set_size,
                cache_size: r.cache_size,
                filter_tokens: r.tokens,
                filter_seconds: r.seconds,
                filter_skipped: r.skipped,
            }),
            cumulative_generated_tokens: self.generated_tokens,
            seconds: PhaseSeconds::default(),
            eval: None,
            eval_start: None,
            unix_time: unix_now(),
            generator: served,
            value_prefit: if self.iteration == 1 {
                self.value_prefit.clone()
            } else {
                None
            },
        }
    }
}
