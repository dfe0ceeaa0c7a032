//! Headless progress: indicatif bars on stderr around any [`Sink`], one bar per phase
//! (the training bar stays while evaluations come and go). When stderr is not a terminal
//! (nohup, a scheduler's log) the bars are hidden and a plain progress line is written
//! instead, at most every 10 seconds and at every evaluation, so a log of a long run shows
//! its progress.
//!
//! `arbor train --headless` also stops gracefully on SIGTERM or SIGINT (what a scheduler
//! sends before it kills a job): the phase in progress is given up at its next check
//! (between warm-start steps, evaluation and filter batches, tree expansions), the run
//! ends with a checkpoint of its last committed iteration and the JSON summary
//! (`stopped_by: "signal"`); a second signal exits at once (status 130), and `--resume`
//! loses nothing committed.
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::engine::rl::interrupt::Interrupt;
use crate::engine::rl::interrupt::Phase;
use crate::engine::rl::record::TreeRecord;
use crate::engine::training::control::{ControlEvent, Directive};
use crate::engine::training::records::IterationMetrics;
use crate::engine::training::sink::{Sink, SinkError};

use super::progress_log::{line, LineFacts, LogEvery, ProgressLog};

pub struct Headless<S: Sink> {
    pub inner: S,
    multi: MultiProgress,
    bars: Vec<(Phase, ProgressBar)>,
    /// The signal number received (0: none), when signals are watched.
    signal: Option<Arc<AtomicUsize>>,
    /// The signal was announced on stderr / handed to the trainer as a directive.
    signal_seen: bool,
    signal_sent: bool,
    log: ProgressLog,
    /// The last committed iteration's record, for the plain progress line.
    last: Option<IterationMetrics>,
}

impl<S: Sink> Headless<S> {
    pub fn new(inner: S) -> Self {
        Self {
            inner,
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Vec::new(),
            signal: None,
            signal_seen: false,
            signal_sent: false,
            log: ProgressLog::new(LogEvery::default()),
            last: None,
        }
    }

    /// How often the plain progress line is written when stderr is not a terminal.
    pub fn log_every(mut self, every: LogEvery) -> Self {
        self.log = ProgressLog::new(every);
        self
    }

    /// Watches SIGTERM and SIGINT: the first asks the run to stop at its next safe point,
    /// a second exits at once with status 130.
    pub fn with_signals(mut self) -> std::io::Result<Self> {
        use signal_hook::consts::{SIGINT, SIGTERM};
        let received = Arc::new(AtomicUsize::new(0));
        let again = Arc::new(AtomicBool::new(false));
        for sig in [SIGTERM, SIGINT] {
            // Registered first, so it sees the flag the first signal set.
            signal_hook::flag::register_conditional_shutdown(sig, 130, Arc::clone(&again))?;
            signal_hook::flag::register(sig, Arc::clone(&again))?;
            signal_hook::flag::register_usize(sig, Arc::clone(&received), sig as usize)?;
        }
        self.signal = Some(received);
        Ok(self)
    }

    /// The signal flag, for a sink inside that must wake up on a signal (a paused run).
    pub fn signal_flag(&self) -> Option<Arc<AtomicUsize>> {
        self.signal.clone()
    }

    /// The name of the signal received, if any (announced on stderr the first time).
    fn signal(&mut self) -> Option<&'static str> {
        let sig = self.signal.as_ref().map_or(0, |s| s.load(Ordering::SeqCst));
        if sig == 0 {
            return None;
        }
        let name = match sig as i32 {
            signal_hook::consts::SIGTERM => "SIGTERM",
            signal_hook::consts::SIGINT => "SIGINT",
            _ => "signal",
        };
        if !self.signal_seen {
            self.signal_seen = true;
            eprintln!("{name}: stopping at the next safe point (send it again to exit at once)");
        }
        Some(name)
    }

    fn bar(&mut self, phase: Phase, total: u64) -> ProgressBar {
        if let Some((_, b)) = self.bars.iter().find(|(p, _)| *p == phase) {
            return b.clone();
        }
        let bar = self.multi.add(ProgressBar::new(total));
        let style = ProgressStyle::with_template(
            "{prefix:>10.bold} [{bar:30}] {pos}/{len} {elapsed_precise} eta {eta} {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        bar.set_style(style);
        bar.set_prefix(phase.label());
        self.bars.push((phase, bar.clone()));
        bar
    }
}

impl<S: Sink> Sink for Headless<S> {
    fn progress(&mut self, phase: Phase, done: u64, total: u64, note: &str) {
        self.inner.progress(phase, done, total, note);
        let bar = self.bar(phase, total);
        bar.set_length(total);
        bar.set_position(done);
        bar.set_message(note.to_string());
        if self.multi.is_hidden() && phase == Phase::Train {
            let rate = self.log.rate(done);
            let m = self.last.as_ref().filter(|m| m.iteration == done);
            let eval = m.and_then(|m| m.eval.as_ref()).map(|e| e.pass1);
            if self.log.due(done, eval.is_some()) {
                let facts = LineFacts {
                    iteration: done,
                    total,
                    tokens: m.map_or(0, |m| m.cumulative_generated_tokens),
                    accuracy: m.map_or(0.0, |m| m.train_accuracy),
                    loss: m.map_or(0.0, |m| m.update.loss),
                    rate,
                    eval_pass1: eval,
                };
                eprintln!("{:>10} {}", phase.label(), line(&facts));
            }
        }
    }

    fn warm_start_loss(&mut self, step: u64, loss: f64) {
        self.inner.warm_start_loss(step, loss);
    }

    fn phase_done(&mut self, phase: Phase, note: &str) {
        self.inner.phase_done(phase, note);
        let line = format!("{:>10} {note}", phase.label());
        if self.multi.is_hidden() {
            eprintln!("{line}");
        } else {
            let _ = self.multi.println(line);
        }
        if let Some(i) = self.bars.iter().position(|(p, _)| *p == phase) {
            let (_, bar) = self.bars.remove(i);
            bar.finish_and_clear();
            self.multi.remove(&bar);
        }
    }

    fn warm_start(&mut self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        self.inner.warm_start(key)
    }

    fn save_warm_start(
        &mut self,
        key: &str,
        description: serde_json::Value,
        weights: &[u8],
    ) -> Result<(), SinkError> {
        self.inner.save_warm_start(key, description, weights)
    }

    fn commit(
        &mut self,
        metrics: &IterationMetrics,
        trees: &[TreeRecord],
    ) -> Result<(), SinkError> {
        self.inner.commit(metrics, trees)?;
        self.last = Some(metrics.clone());
        Ok(())
    }

    fn amend(&mut self, metrics: &IterationMetrics) -> Result<(), SinkError> {
        self.inner.amend(metrics)
    }

    fn checkpoint(
        &mut self,
        iteration: u64,
        ck: &crate::engine::training::resume::TrainingCheckpoint,
    ) -> Result<(), SinkError> {
        self.inner.checkpoint(iteration, ck)
    }

    fn directives(&mut self, next: u64) -> Vec<Directive> {
        let mut d = self.inner.directives(next);
        if let Some(name) = self.signal() {
            if !self.signal_sent {
                self.signal_sent = true;
                d.push(Directive::Signal { name: name.into() });
            }
        }
        d
    }

    fn interrupt(&mut self, phase: Phase) -> Interrupt {
        if self.signal().is_some() {
            return Interrupt::Stop;
        }
        self.inner.interrupt(phase)
    }

    fn event(&mut self, event: &ControlEvent) -> Result<(), SinkError> {
        self.inner.event(event)
    }
}
