//! The run loop: the evaluation before the first iteration, then iterations (each
//! evaluated when due, committed, checkpointed) until the iterations, the token budget,
//! a plateau or a stop end it, and the closing summary.
use std::time::Instant;

use crate::engine::rl::interrupt::{Interrupt, Phase};
use crate::engine::rl::record::TreeRecord;
use crate::engine::training::control::{ControlEvent, EventKind, StopReason};
use crate::engine::training::error::EngineError;
use crate::engine::training::metrics::EvalResult;
use crate::engine::training::phases::{PhaseClock, Span};
use crate::engine::training::records::{IterationMetrics, Summary};
use crate::engine::training::resume::CheckpointKind;
use crate::engine::training::sink::Sink;
use crate::engine::training::trainer::{phase_log, Trainer, NONFINITE_PAUSE};

/// How an owed evaluation (one a stop interrupted) went on resume.
enum Owed {
    Done { eval: EvalResult, plateau: bool },
    Interrupted,
}

/// Where the loop stands between iterations.
struct Progress {
    eval_start: EvalResult,
    eval_end: EvalResult,
    stopped_by: StopReason,
    /// A stop inside a phase gave the phase up; the loop's next safe point then ends the
    /// run as a stop between iterations does.
    interrupted: Option<Phase>,
}

impl Trainer {
    fn plateau_event(&self, sink: &mut dyn Sink) -> Result<(), EngineError> {
        Ok(sink.event(&ControlEvent {
            reason: Some(format!(
                "evaluation pass@1 has plateaued: the last {} evaluations gain no more than the best earlier one's 95% half-width",
                crate::engine::training::plateau::WINDOW
            )),
            ..ControlEvent::new(self.iteration, EventKind::Plateau)
        })?)
    }

    /// Runs the evaluation a stop interrupted, amends its iteration's record with it and
    /// checkpoints, so the run goes on as if it had never stopped (a plateau it reveals
    /// ends the run, as it would have then).
    fn owed_evaluation(&mut self, sink: &mut dyn Sink) -> Result<Owed, EngineError> {
        let Some(mut m) = self.eval_owed.clone() else {
            return Err(EngineError::Data("no evaluation is owed".into()));
        };
        phase_log("evaluate", self.iteration);
        let r = match self.evaluate(sink) {
            Ok(r) => r,
            Err(EngineError::Interrupted) => return Ok(Owed::Interrupted),
            Err(e) => return Err(e),
        };
        self.eval_history.push(r.clone());
        m.eval = Some(r.clone());
        sink.amend(&m)?;
        self.eval_owed = None;
        let plateau = self.cfg.train.stop_at_plateau
            && crate::engine::training::plateau::plateaued(&self.eval_history);
        let last = self.iteration >= self.cfg.train.iterations
            || self
                .cfg
                .train
                .budget_tokens
                .is_some_and(|b| self.generated_tokens >= b);
        let kind = if last || plateau {
            CheckpointKind::Final
        } else {
            CheckpointKind::Requested
        };
        self.checkpoint(sink, kind)?;
        if plateau {
            self.plateau_event(sink)?;
        }
        Ok(Owed::Done { eval: r, plateau })
    }

    /// Runs the configured iterations (or until the token budget), committing each.
    pub fn run(
        &mut self,
        run: &str,
        warm_key: &str,
        sink: &mut dyn Sink,
    ) -> Result<Summary, EngineError> {
        let start = Instant::now();
        let mut interrupted: Option<Phase> = None;
        if self.eval_start.is_none() {
            match self.evaluate(sink) {
                Ok(e) => self.eval_start = Some(e),
                Err(EngineError::Interrupted) => interrupted = Some(Phase::Evaluate),
                Err(e) => return Err(e),
            }
        }
        // Without it (a stop during it) the run stops before its first iteration.
        let eval_start = self.eval_start.clone().unwrap_or_default();
        if self.eval_history.is_empty() && self.eval_start.is_some() {
            self.eval_history.push(eval_start.clone());
        }
        let mut p = Progress {
            eval_end: eval_start.clone(),
            eval_start,
            stopped_by: StopReason::Iterations,
            interrupted,
        };
        if p.interrupted.is_none() && self.eval_owed.is_some() {
            match self.owed_evaluation(sink)? {
                Owed::Done { eval, plateau } => {
                    p.eval_end = eval;
                    if plateau {
                        p.stopped_by = StopReason::Plateau;
                    }
                }
                Owed::Interrupted => p.interrupted = Some(Phase::Evaluate),
            }
        }
        let total = self.cfg.train.iterations;
        while p.stopped_by != StopReason::Plateau
            && (self.iteration < total || p.interrupted.is_some())
        {
            if let Some(reason) = self.apply_directives(sink, p.interrupted)? {
                p.stopped_by = reason;
                break;
            }
            if let Some(b) = self.cfg.train.budget_tokens {
                if self.generated_tokens >= b {
                    p.stopped_by = StopReason::Budget;
                    break;
                }
            }
            if let Some(reason) = self.iterate(sink, &mut p)? {
                p.stopped_by = reason;
                break;
            }
        }
        if self.iteration == 0 || p.stopped_by.resumable() {
            self.checkpoint(sink, CheckpointKind::Final)?;
        }
        sink.phase_done(Phase::Train, "done");
        Ok(self.summary(run, warm_key, start, p))
    }

    /// One iteration of the loop: the step (rewound if a stop gives it up), its
    /// evaluation when due, the commit, the checkpoint and the progress line. Says
    /// whether the run ends here.
    fn iterate(
        &mut self,
        sink: &mut dyn Sink,
        p: &mut Progress,
    ) -> Result<Option<StopReason>, EngineError> {
        // Before the snapshot, so a rewound first iteration keeps the fit it paid for
        // (its seconds are in its report, not the iteration's).
        self.value_prefit()?;
        let mut clock = PhaseClock::start();
        let tokens_before = self.generated_tokens;
        // What the iteration may change before its update, to rewind if it is given up.
        let before = self.state();
        let mut asked = Phase::Train;
        let stepped = self.step_timed(&mut clock, &mut |ph| {
            asked = ph;
            sink.interrupt(ph) == Interrupt::Stop
        });
        let (mut m, trees) = match stepped {
            Ok(x) => x,
            Err(EngineError::Interrupted) => {
                self.set_state(before)?;
                p.interrupted = Some(asked);
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        let total = self.cfg.train.iterations;
        let every = self.cfg.eval.every;
        let et = self.cfg.eval.every_tokens;
        let milestone = et > 0 && self.generated_tokens / et > tokens_before / et;
        let last = self.iteration == total
            || self
                .cfg
                .train
                .budget_tokens
                .is_some_and(|b| self.generated_tokens >= b);
        if last || milestone || (every > 0 && self.iteration % every == 0) {
            phase_log("evaluate", self.iteration);
            clock.charge(Span::Other);
            match self.evaluate(sink) {
                Ok(r) => {
                    p.eval_end = r.clone();
                    self.eval_history.push(r.clone());
                    m.eval = Some(r);
                }
                // The update is done: the iteration is committed without its
                // evaluation, which is owed to the resume.
                Err(EngineError::Interrupted) => p.interrupted = Some(Phase::Evaluate),
                Err(e) => return Err(e),
            }
            clock.charge(Span::Eval);
        }
        let plateau = m.eval.is_some()
            && self.cfg.train.stop_at_plateau
            && crate::engine::training::plateau::plateaued(&self.eval_history);
        if self.iteration == 1 {
            m.eval_start = Some(p.eval_start.clone());
        }
        self.commit(sink, &mut m, &trees, &mut clock, p.interrupted.is_some())?;
        let ck = self.cfg.train.checkpoint_every;
        if last || plateau || (ck > 0 && self.iteration % ck == 0) {
            let kind = if last || plateau {
                CheckpointKind::Final
            } else {
                CheckpointKind::Scheduled
            };
            clock.charge(Span::Other);
            self.checkpoint(sink, kind)?;
            clock.charge(Span::Store);
        }
        self.report_progress(sink, &m);
        m.seconds = clock.finish();
        self.phase_totals.add(&m.seconds);
        sink.amend(&m)?;
        if plateau {
            self.plateau_event(sink)?;
            return Ok(Some(StopReason::Plateau));
        }
        self.check_nonfinite(sink)
    }

    /// Commits the iteration (its record with the phases so far, amended once its commit
    /// and checkpoint are timed) and reports skipped non-finite steps.
    fn commit(
        &mut self,
        sink: &mut dyn Sink,
        m: &mut IterationMetrics,
        trees: &[TreeRecord],
        clock: &mut PhaseClock,
        eval_interrupted: bool,
    ) -> Result<(), EngineError> {
        phase_log("commit", self.iteration);
        clock.charge(Span::Other);
        m.seconds = clock.clone().finish();
        let c0 = Instant::now();
        sink.commit(m, trees)?;
        if eval_interrupted {
            self.eval_owed = Some(m.clone());
        }
        self.store_seconds += c0.elapsed().as_secs_f64();
        clock.charge(Span::Store);
        if m.update.skipped_steps > 0 {
            sink.event(&ControlEvent {
                reason: Some(format!(
                    "{} of {} update steps skipped: the loss or gradient was NaN or infinite",
                    m.update.skipped_steps,
                    m.update.skipped_steps + m.update.optimizer_steps
                )),
                ..ControlEvent::new(self.iteration, EventKind::Nonfinite)
            })?;
        }
        Ok(())
    }

    /// The iteration's progress line.
    fn report_progress(&self, sink: &mut dyn Sink, m: &IterationMetrics) {
        let note = format!(
            "acc {:.2} loss {:+.3} H {:.2}{}",
            m.train_accuracy,
            m.update.loss,
            m.mean_entropy,
            m.eval
                .as_ref()
                .map(|e| format!(" | eval pass@1 {:.3}", e.pass1))
                .unwrap_or_default()
        );
        // Under a token budget the iterations left are estimated from the tokens per
        // iteration so far (`arbor compare` sets no iteration limit).
        let total = self.cfg.train.iterations;
        let shown = match self.cfg.train.budget_tokens {
            Some(b) if self.generated_tokens > 0 => total.min(
                (self.iteration as f64 * b as f64 / self.generated_tokens as f64).ceil() as u64,
            ),
            _ => total,
        }
        .max(self.iteration);
        sink.progress(Phase::Train, self.iteration, shown, &note);
    }

    /// Pauses (or, if the sink cannot pause, stops) after too many iterations in a row
    /// whose every update was non-finite.
    fn check_nonfinite(&mut self, sink: &mut dyn Sink) -> Result<Option<StopReason>, EngineError> {
        if self.nonfinite_streak < NONFINITE_PAUSE {
            return Ok(None);
        }
        let reason = format!(
            "{} iterations in a row had only non-finite updates (iteration {}); \
             lower the learning rate or check the data",
            self.nonfinite_streak, self.iteration
        );
        self.nonfinite_streak = 0;
        if sink.pause(&reason) {
            return Ok(None);
        }
        sink.event(&ControlEvent {
            reason: Some(reason),
            ..ControlEvent::new(self.iteration, EventKind::Stop)
        })?;
        Ok(Some(StopReason::Nonfinite))
    }

    fn summary(&self, run: &str, warm_key: &str, start: Instant, p: Progress) -> Summary {
        let training = self.generated_tokens.saturating_sub(self.filter_tokens);
        Summary {
            run: run.to_string(),
            method: self.cfg.method.name().into(),
            seed: self.cfg.seed,
            iterations: self.iteration,
            generated_tokens: self.generated_tokens,
            wall_seconds: start.elapsed().as_secs_f64(),
            eval_start: p.eval_start,
            eval_end: p.eval_end,
            stopped_by: p.stopped_by,
            warm_start: warm_key.to_string(),
            parameters: self.policy.num_parameters(),
            search_tokens_forwarded: self.search_totals.search_tokens_forwarded,
            tree_tokens_distinct: self.search_totals.tree_tokens_distinct,
            expansions: self.search_totals.expansions,
            cache_hits: self.search_totals.cache_hits,
            cap_events: self.search_totals.cap_events,
            store_seconds: self.store_seconds,
            optimizer_steps: self.opt.steps_taken(),
            filter_tokens: self.filter_tokens,
            solved_per_1k_tokens: if training > 0 {
                self.solved_total as f64 * 1000.0 / training as f64
            } else {
                0.0
            },
            trained_per_generated: if self.generated_tokens > 0 {
                self.trained_tokens as f64 / self.generated_tokens as f64
            } else {
                0.0
            },
            scoring_tokens: self.search_totals.scoring_tokens,
            reference_tokens: self.reference_tokens,
            phase_seconds: self.phase_totals,
            value_prefit: self.value_prefit.clone(),
        }
    }
}
