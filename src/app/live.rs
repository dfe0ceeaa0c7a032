//! The trainer's side of a live run: the sink that publishes its progress on a status
//! board, and the control state viewers steer it through. The trainer never waits on a
//! viewer (the board is a small struct behind a mutex, read by the socket server); a
//! viewer never blocks the trainer (control is a queue the trainer drains at its safe
//! points).
use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::engine::rl::interrupt::Interrupt;
use crate::engine::rl::interrupt::Phase;
use crate::engine::rl::record::TreeRecord;
use crate::engine::training::config::RunConfig;
use crate::engine::training::control::{retune, ControlEvent, Directive, EventKind};
use crate::engine::training::records::{IterationMetrics, Summary};
use crate::engine::training::sink::{Sink, SinkError};
use crate::engine::training::split::RunData;
use crate::engine::training::trainer::Trainer;
use crate::store::sink::StoreSink;
use crate::store::RunRecord;

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What a viewer sees of the trainer besides the store: sent whole on every `status`
/// request (a few hundred bytes, plus the warm start's losses).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct LiveStatus {
    pub run: String,
    pub pid: u32,
    /// The phase now running ("warm start", "evaluate", "train"; empty before the first).
    pub phase: String,
    pub done: u64,
    pub total: u64,
    /// The phase's short status (loss, accuracy).
    pub note: String,
    /// Seconds since the phase began, for the ETA.
    pub phase_seconds: f64,
    /// The last phase that ended, in words ("loaded cached warm start ...").
    pub last_done: String,
    /// The warm start's loss after each step (empty when it was loaded from the cache).
    pub warm_losses: Vec<f32>,
    /// A pause was asked for and not yet taken back.
    pub pause_requested: bool,
    /// The trainer is paused at a safe point.
    pub paused: bool,
    /// The phase that last asked whether to stop or pause ("search", "filter", "warm
    /// start", ...; "train" between iterations): where a pending pause takes effect.
    #[serde(default)]
    pub checking: String,
    /// Messages the user must read (why the trainer paused itself), oldest first.
    pub alerts: Vec<String>,
    pub last_iteration: u64,
    /// The settings in force, as TOML (retunes applied).
    pub config_toml: String,
    /// Viewers attached now.
    pub viewers: usize,
    /// How the run ended, once it has.
    pub finished: Option<Result<Summary, String>>,
}

impl LiveStatus {
    /// The phase now running (none before the first).
    pub fn running(&self) -> Option<Phase> {
        Phase::from_label(&self.phase)
    }

    /// The phase that last asked whether to stop or pause, if any.
    pub fn checking_phase(&self) -> Option<Phase> {
        Phase::from_label(&self.checking)
    }
}

/// The status board: written by the trainer's sink, read by the server.
pub struct StatusBoard {
    status: Mutex<LiveStatus>,
    phase_started: Mutex<Instant>,
    /// Held while an iteration is written, so a live fsck sees whole iterations only.
    pub commit_gate: Mutex<()>,
}

impl StatusBoard {
    pub fn new(run: &RunRecord, cfg: &RunConfig) -> Self {
        Self {
            status: Mutex::new(LiveStatus {
                run: run.name.clone(),
                pid: std::process::id(),
                last_iteration: run.last_iteration,
                config_toml: cfg.to_toml(),
                ..LiveStatus::default()
            }),
            phase_started: Mutex::new(Instant::now()),
            commit_gate: Mutex::new(()),
        }
    }

    /// A copy of the status, with the phase's elapsed time filled in.
    pub fn snapshot(&self) -> LiveStatus {
        let mut s = lock(&self.status).clone();
        s.phase_seconds = lock(&self.phase_started).elapsed().as_secs_f64();
        s
    }

    pub fn update(&self, f: impl FnOnce(&mut LiveStatus)) {
        f(&mut lock(&self.status));
    }

    /// The settings in force.
    pub fn config(&self) -> Result<RunConfig, String> {
        RunConfig::from_toml(&lock(&self.status).config_toml).map_err(|e| e.to_string())
    }

    fn progress(&self, phase: Phase, done: u64, total: u64, note: &str) {
        let mut s = lock(&self.status);
        if s.phase != phase.label() {
            s.phase = phase.label().to_string();
            *lock(&self.phase_started) = Instant::now();
        }
        s.done = done;
        s.total = total;
        s.note = note.to_string();
    }
}

/// A queued directive and the viewer that sent it.
type Queued = (Directive, String);

/// Shared between the server (viewers' requests) and the trainer's sink.
#[derive(Default)]
pub struct ControlState {
    paused: Mutex<Option<String>>,
    queue: Mutex<Vec<Queued>>,
    wake: Condvar,
    /// SIGTERM or SIGINT received (0: none): a paused trainer wakes up to stop.
    signal: Mutex<Option<Arc<AtomicUsize>>>,
}

impl ControlState {
    pub fn paused(&self) -> bool {
        lock(&self.paused).is_some()
    }
    /// Asks for a pause (`Some(source)`) or takes it back (`None`).
    pub fn set_paused(&self, by: Option<String>) {
        *lock(&self.paused) = by;
        self.wake.notify_all();
    }
    pub fn push(&self, d: Directive, source: &str) {
        lock(&self.queue).push((d, source.to_string()));
        self.wake.notify_all();
    }
    pub fn stop_queued(&self) -> bool {
        lock(&self.queue).iter().any(|(d, _)| *d == Directive::Stop)
            || lock(&self.signal)
                .as_ref()
                .is_some_and(|s| s.load(Ordering::SeqCst) != 0)
    }
    /// Wakes a paused trainer when `flag` becomes non-zero (the headless signal flag).
    pub fn watch_signal(&self, flag: Arc<AtomicUsize>) {
        *lock(&self.signal) = Some(flag);
    }
    fn take(&self) -> Vec<Queued> {
        std::mem::take(&mut *lock(&self.queue))
    }
}

/// Event kinds that answer a queued directive, in the order the trainer records them.
const DIRECTIVE_EVENTS: [EventKind; 5] = [
    EventKind::Stop,
    EventKind::Checkpoint,
    EventKind::Skip,
    EventKind::Retune,
    EventKind::Refused,
];

/// The store sink plus the status board and control.
pub struct LiveSink {
    pub inner: StoreSink,
    board: Arc<StatusBoard>,
    control: Arc<ControlState>,
    /// Sources of the directives handed to the trainer, stamped on the events it records.
    sources: VecDeque<String>,
    /// The settings in force (retunes applied as the trainer records them).
    cfg: RunConfig,
}

impl LiveSink {
    /// Wakes a paused trainer when `flag` becomes non-zero (the headless signal flag).
    pub fn watch_signal(&self, flag: Arc<AtomicUsize>) {
        self.control.watch_signal(flag);
    }

    pub fn new(
        inner: StoreSink,
        board: Arc<StatusBoard>,
        control: Arc<ControlState>,
        cfg: RunConfig,
    ) -> Self {
        Self {
            inner,
            board,
            control,
            sources: VecDeque::new(),
            cfg,
        }
    }
}

impl Sink for LiveSink {
    fn progress(&mut self, phase: Phase, done: u64, total: u64, note: &str) {
        self.board.progress(phase, done, total, note);
    }
    fn warm_start_loss(&mut self, _step: u64, loss: f64) {
        self.board.update(|s| s.warm_losses.push(loss as f32));
    }
    fn phase_done(&mut self, _phase: Phase, note: &str) {
        let note = note.to_string();
        self.board.update(|s| s.last_done = note);
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
        let _gate = lock(&self.board.commit_gate);
        self.inner.commit(metrics, trees)?;
        let it = metrics.iteration;
        self.board.update(|s| s.last_iteration = it);
        Ok(())
    }
    fn amend(&mut self, metrics: &IterationMetrics) -> Result<(), SinkError> {
        let _gate = lock(&self.board.commit_gate);
        self.inner.amend(metrics)
    }
    fn checkpoint(
        &mut self,
        iteration: u64,
        ck: &crate::engine::training::resume::TrainingCheckpoint,
    ) -> Result<(), SinkError> {
        let _gate = lock(&self.board.commit_gate);
        self.inner.checkpoint(iteration, ck)
    }
    fn event(&mut self, event: &ControlEvent) -> Result<(), SinkError> {
        let mut ev = event.clone();
        if DIRECTIVE_EVENTS.contains(&ev.kind) && ev.source.is_none() {
            ev.source = self.sources.pop_front();
        }
        if ev.kind == EventKind::Retune {
            if let (Some(k), Some(v)) = (&ev.key, &ev.new) {
                if retune(&mut self.cfg, k, v).is_ok() {
                    let toml = self.cfg.to_toml();
                    self.board.update(|s| s.config_toml = toml);
                }
            }
        }
        self.inner.event(&ev)
    }

    /// Between steps of a long phase: holds while paused, and says to stop when a stop
    /// is queued or a signal came.
    fn interrupt(&mut self, phase: Phase) -> Interrupt {
        if self.hold(self.inner.run.last_iteration, phase) {
            Interrupt::Stop
        } else {
            Interrupt::Continue
        }
    }

    fn pause(&mut self, reason: &str) -> bool {
        self.control.set_paused(Some("trainer".into()));
        let alert = format!("PAUSED: {reason}");
        self.board.update(|s| {
            s.pause_requested = true;
            s.alerts.push(alert);
        });
        true
    }

    /// Holds while paused (unless a stop is queued), then hands over the queued
    /// directives.
    fn directives(&mut self, next: u64) -> Vec<Directive> {
        self.hold(next - 1, Phase::Train);
        let queued = self.control.take();
        self.sources.extend(queued.iter().map(|(_, s)| s.clone()));
        queued.into_iter().map(|(d, _)| d).collect()
    }
}

impl LiveSink {
    /// Blocks while the run is paused and no stop is queued, recording at `iteration`
    /// when the pause took effect (who asked, and the phase when inside one) and the
    /// resume. Returns whether a stop is queued.
    fn hold(&mut self, iteration: u64, phase: Phase) -> bool {
        let label = phase.label();
        self.board.update(|s| {
            if s.checking != label {
                s.checking = label.to_string();
            }
        });
        let mut announced = false;
        loop {
            let by = lock(&self.control.paused).clone();
            let stop = self.control.stop_queued();
            if by.is_none() || stop {
                if announced {
                    let _ = self
                        .inner
                        .event(&ControlEvent::new(iteration, EventKind::Resume));
                    self.board.update(|s| s.paused = false);
                }
                return stop;
            }
            if !announced {
                announced = true;
                let ev = ControlEvent {
                    source: by,
                    reason: (phase != Phase::Train).then(|| format!("paused during the {label}")),
                    ..ControlEvent::new(iteration, EventKind::Pause)
                };
                let _ = self.inner.event(&ev);
                self.board.update(|s| s.paused = true);
            }
            let guard = lock(&self.control.paused);
            let _ = self
                .control
                .wake
                .wait_timeout(guard, Duration::from_millis(200));
        }
    }
}

/// How the trainer begins: a new run (warm start, then train) or a resumed one.
pub enum Begin {
    Fresh(RunData),
    Resume(Box<Trainer>),
}

/// Runs `begin` to its end on `sink` (a fresh run's warm start first, recorded in the run
/// record that `record` finds inside the sink).
pub fn train_begin<S: Sink>(
    cfg: &RunConfig,
    begin: Begin,
    sink: &mut S,
    store: &crate::store::Store,
    record: fn(&mut S) -> &mut RunRecord,
) -> anyhow::Result<Summary> {
    let started = std::time::Instant::now();
    let (mut trainer, key) = match begin {
        Begin::Fresh(data) => {
            let (policy, key) =
                match crate::engine::training::warm_start::prepare_policy(cfg, &data, sink) {
                    // A stop during the warm start: nothing cached, a summary all the same.
                    Err(crate::engine::training::error::EngineError::Interrupted) => {
                        let name = record(sink).name.clone();
                        return Ok(Summary::stopped_in_warm_start(&name, cfg, sink, started)?);
                    }
                    r => r?,
                };
            let run = record(sink);
            run.warm_start = Some(key.clone());
            store.update_run(run)?;
            (Box::new(Trainer::new(cfg.clone(), policy, data)?), key)
        }
        Begin::Resume(t) => (t, record(sink).warm_start.clone().unwrap_or_default()),
    };
    let name = record(sink).name.clone();
    Ok(trainer.run(&name, &key, sink)?)
}

/// A run served on its store's socket while it trains: the status board its sink
/// writes, and the server viewers attach to (or why there is none).
pub struct Served {
    board: Arc<StatusBoard>,
    pub server: std::io::Result<crate::app::serve::server::Server>,
}

impl Served {
    /// Starts serving `record`'s run and gives the sink to train it on.
    pub fn start(
        store: &crate::store::Store,
        record: RunRecord,
        cfg: &RunConfig,
        log: Option<std::path::PathBuf>,
    ) -> (LiveSink, Served) {
        let board = Arc::new(StatusBoard::new(&record, cfg));
        let control = Arc::new(ControlState::default());
        let server = crate::app::serve::server::start(
            crate::app::serve::server::Shared {
                store: store.clone(),
                run: record.name.clone(),
                control: control.clone(),
                board: board.clone(),
            },
            store.path(),
            log,
        );
        let sink = LiveSink::new(
            StoreSink {
                store: store.clone(),
                run: record,
            },
            board.clone(),
            control,
            cfg.clone(),
        );
        (sink, Served { board, server })
    }

    /// Tells attached viewers how the run ended, gives them a moment to see it, and
    /// stops serving.
    pub fn finish(self, end: Result<Summary, String>) {
        self.board.update(|s| s.finished = Some(end));
        if self.server.is_ok() {
            linger(&self.board);
        }
    }
}

/// Serves a run registered in `store` and trains it on a thread of this process, as
/// `arbor train --headless` does in its own: for tests and benchmarks that attach
/// viewers to a live run. The thread's result is the run's summary.
pub fn spawn_served(
    cfg: RunConfig,
    begin: Begin,
    store: crate::store::Store,
    record: RunRecord,
) -> std::io::Result<std::thread::JoinHandle<Result<Summary, String>>> {
    let (mut sink, served) = Served::start(&store, record, &cfg, None);
    if let Err(e) = &served.server {
        return Err(std::io::Error::new(e.kind(), e.to_string()));
    }
    std::thread::Builder::new()
        .name("arbor-trainer".into())
        .spawn(move || {
            let out = train_begin(&cfg, begin, &mut sink, &store, |s| &mut s.inner.run)
                .map_err(|e| format!("{e:#}"));
            served.finish(out.clone());
            out
        })
}

/// Gives attached viewers a moment to see how the run ended before the socket goes.
pub fn linger(board: &StatusBoard) {
    let until = Instant::now() + Duration::from_millis(1500);
    while board.snapshot().viewers > 0 && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(50));
    }
}
