//! A live run in one process: the trainer on its own thread, the UI reading the store.
//! The trainer never waits on the UI (notifications go through an unbounded channel and
//! only say "something new is there"); the UI never blocks the trainer (control is a queue
//! the trainer drains at its safe points, between iterations; a pause or a stop also
//! takes effect at the checks inside a phase).
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use tokio::sync::mpsc::{unbounded_channel, UnboundedReceiver, UnboundedSender};

use crate::engine::config::RunConfig;
use crate::engine::control::{ControlEvent, Directive, EventKind};
use crate::engine::error::EngineError;
use crate::engine::interrupt::Interrupt;
use crate::engine::search::record::TreeRecord;
use crate::engine::sink::{Phase, Sink, SinkError};
use crate::engine::split::RunData;
use crate::engine::trainer::{IterationMetrics, Summary, Trainer};
use crate::engine::warm_start::prepare_policy;
use crate::store::sink::StoreSink;

/// What the trainer tells the UI.
#[derive(Debug)]
pub enum Note {
    Progress {
        phase: Phase,
        done: u64,
        total: u64,
        note: String,
    },
    PhaseDone(String),
    Committed(u64),
    Paused(bool),
    /// Something the user must read (why the trainer paused itself).
    Alert(String),
    Finished(Box<Result<Summary, String>>),
}

/// Shared between the UI and the trainer.
#[derive(Default)]
pub struct ControlState {
    paused: Mutex<bool>,
    queue: Mutex<Vec<Directive>>,
    wake: Condvar,
    /// The phase the paused trainer holds in (`Phase::Train` between iterations); None
    /// while it runs.
    held_in: Mutex<Option<Phase>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ControlState {
    pub fn paused(&self) -> bool {
        *lock(&self.paused)
    }
    pub fn set_paused(&self, p: bool) {
        *lock(&self.paused) = p;
        self.wake.notify_all();
    }
    pub fn push(&self, d: Directive) {
        lock(&self.queue).push(d);
        self.wake.notify_all();
    }
    /// The phase the paused trainer holds in (None while it runs, or while a pause is
    /// still on its way to the next check).
    pub fn held_in(&self) -> Option<Phase> {
        *lock(&self.held_in)
    }
}

/// The store sink plus notifications and control.
pub struct LiveSink {
    pub inner: StoreSink,
    notes: UnboundedSender<Note>,
    control: Arc<ControlState>,
}

impl Sink for LiveSink {
    fn progress(&mut self, phase: Phase, done: u64, total: u64, note: &str) {
        let _ = self.notes.send(Note::Progress {
            phase,
            done,
            total,
            note: note.to_string(),
        });
    }
    fn phase_done(&mut self, _phase: Phase, note: &str) {
        let _ = self.notes.send(Note::PhaseDone(note.to_string()));
    }
    fn warm_start(&mut self, key: &str) -> Result<Option<Vec<u8>>, SinkError> {
        self.inner.warm_start(key)
    }
    fn save_warm_start(
        &mut self,
        key: &str,
        d: serde_json::Value,
        w: &[u8],
    ) -> Result<(), SinkError> {
        self.inner.save_warm_start(key, d, w)
    }
    fn commit(
        &mut self,
        metrics: &IterationMetrics,
        trees: &[TreeRecord],
    ) -> Result<(), SinkError> {
        self.inner.commit(metrics, trees)?;
        let _ = self.notes.send(Note::Committed(metrics.iteration));
        Ok(())
    }
    fn amend(&mut self, metrics: &IterationMetrics) -> Result<(), SinkError> {
        self.inner.amend(metrics)?;
        let _ = self.notes.send(Note::Committed(metrics.iteration));
        Ok(())
    }
    fn checkpoint(
        &mut self,
        iteration: u64,
        ck: &crate::engine::resume::TrainingCheckpoint,
    ) -> Result<(), SinkError> {
        self.inner.checkpoint(iteration, ck)
    }
    fn event(&mut self, event: &ControlEvent) -> Result<(), SinkError> {
        self.inner.event(event)
    }

    fn pause(&mut self, reason: &str) -> bool {
        *lock(&self.control.paused) = true;
        let _ = self.notes.send(Note::Alert(format!("PAUSED: {reason}")));
        true
    }

    /// Blocks while paused (unless a stop is queued); records when the pause took effect.
    fn directives(&mut self, next: u64) -> Vec<Directive> {
        self.hold(next - 1, Phase::Train);
        std::mem::take(&mut *lock(&self.control.queue))
    }

    /// Inside a phase: holds while paused, and answers stop when one is queued (it stays
    /// queued for the next `directives`).
    fn interrupt(&mut self, phase: Phase) -> Interrupt {
        let iteration = self.inner.run.last_iteration;
        if self.hold(iteration, phase) {
            Interrupt::Stop
        } else {
            Interrupt::Continue
        }
    }
}

impl LiveSink {
    /// Blocks while the run is paused and no stop is queued, recording the pause (with the
    /// phase it took effect in) and the resume at `iteration`. Returns whether a stop is
    /// queued.
    fn hold(&mut self, iteration: u64, phase: Phase) -> bool {
        let mut announced = false;
        loop {
            let stop_queued = lock(&self.control.queue).contains(&Directive::Stop);
            let paused = *lock(&self.control.paused);
            if !paused || stop_queued {
                if announced {
                    *lock(&self.control.held_in) = None;
                    let _ = self
                        .inner
                        .event(&ControlEvent::new(iteration, EventKind::Resume));
                    let _ = self.notes.send(Note::Paused(false));
                }
                return stop_queued;
            }
            if !announced {
                announced = true;
                *lock(&self.control.held_in) = Some(phase);
                let _ = self.inner.event(&ControlEvent {
                    reason: (phase != Phase::Train)
                        .then(|| format!("paused during {}", phase.label())),
                    ..ControlEvent::new(iteration, EventKind::Pause)
                });
                let _ = self.notes.send(Note::Paused(true));
            }
            let guard = lock(&self.control.paused);
            let _ = self
                .control
                .wake
                .wait_timeout(guard, Duration::from_millis(200));
        }
    }
}

/// The UI's end of a live run.
pub struct LiveHandle {
    pub control: Arc<ControlState>,
    pub notes: UnboundedReceiver<Note>,
    pub thread: Option<std::thread::JoinHandle<()>>,
    /// The settings in force as the UI knows them (retunes validated against a copy).
    pub cfg: RunConfig,
}

/// How the trainer thread begins: a new run (warm start, then train) or a resumed one.
pub enum Begin {
    Fresh(RunData),
    Resume(Box<Trainer>),
}

/// Starts the trainer thread on a run already registered in the store.
pub fn start(cfg: RunConfig, data: RunData, inner: StoreSink) -> LiveHandle {
    start_with(cfg, Begin::Fresh(data), inner)
}

/// Starts the trainer thread, fresh or resumed.
pub fn start_with(cfg: RunConfig, begin: Begin, inner: StoreSink) -> LiveHandle {
    let (tx, rx) = unbounded_channel();
    let control = Arc::new(ControlState::default());
    let mut sink = LiveSink {
        inner,
        notes: tx.clone(),
        control: control.clone(),
    };
    let run_cfg = cfg.clone();
    let thread = std::thread::spawn(move || {
        let name = sink.inner.run.name.clone();
        let started = std::time::Instant::now();
        let outcome = (|| {
            let (mut trainer, key) = match begin {
                Begin::Fresh(data) => {
                    let (policy, key) = match prepare_policy(&run_cfg, &data, &mut sink) {
                        Err(EngineError::Interrupted) => {
                            return Summary::stopped_in_warm_start(
                                &name, &run_cfg, &mut sink, started,
                            )
                            .map_err(|e| e.to_string())
                        }
                        r => r.map_err(|e| e.to_string())?,
                    };
                    sink.inner.run.warm_start = Some(key.clone());
                    let t = Trainer::new(run_cfg, policy, data).map_err(|e| e.to_string())?;
                    (Box::new(t), key)
                }
                Begin::Resume(t) => (t, sink.inner.run.warm_start.clone().unwrap_or_default()),
            };
            trainer
                .run(&name, &key, &mut sink)
                .map_err(|e| e.to_string())
        })();
        let _ = tx.send(Note::Finished(Box::new(outcome)));
    });
    LiveHandle {
        control,
        notes: rx,
        thread: Some(thread),
        cfg,
    }
}
