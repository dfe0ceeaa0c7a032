//! Resume and the crash harness, through the command line.
//!
//! A reference run goes uninterrupted. The same run is then started as a child process,
//! killed with SIGKILL at random moments, resumed, again and again until it finishes;
//! `arbor fsck` must pass after every kill and resume, and the finished run's iterations
//! must equal the reference run's (timings aside): nothing committed was lost, nothing
//! was recomputed differently.
//!
//! CI runs a short version (3 kills). The long one (20 kills over a 40-iteration run):
//! `cargo test --test crash -- --ignored --nocapture` (ARBOR_CRASH_KILLS sets the count).
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use arbor::engine::policy::CharTokenizer;
use arbor::engine::rl::interrupt::Interrupt;
use arbor::engine::rl::interrupt::Phase;
use arbor::engine::rl::record::TreeRecord;
use arbor::engine::training::config::RunConfig;
use arbor::engine::training::control::{ControlEvent, Directive, EventKind, StopReason};
use arbor::engine::training::records::IterationMetrics;
use arbor::engine::training::resume::TrainingCheckpoint;
use arbor::engine::training::sink::{Sink, SinkError};
use arbor::engine::training::split;
use arbor::engine::training::trainer::Trainer;
use arbor::engine::training::warm_start::{policy_config, prepare_policy, warm_start_key};
use arbor::store::{RunRecord, Store};
use rand::{Rng, SeedableRng};

const TINY: &str = r#"
seed = 5
method = "deepsearch"

[data]
train_size = 120
test_size = 6

[policy]
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 1
num_attention_heads = 2
num_key_value_heads = 1

[warm_start]
steps = 20
batch_size = 16

[train]
iterations = 12
problems_per_step = 3
checkpoint_every = 2

[search]
width = 3
n = 3
# An untrained model's steps are mostly invalid, and one-step invalid paths of unsolved
# trees carry no advantage: without step judgement every iteration has samples to update
# on, which the NaN test needs.
step_check = false

[adaptive]
steps_per_round = 5
filter_k = 2

[eval]
every = 5
k = 2
"#;

fn succeeded(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn arbor() -> Command {
    Command::new(env!("CARGO_BIN_EXE_arbor"))
}

fn config(dir: &Path, iterations: u64) -> PathBuf {
    let p = dir.join("tiny.toml");
    std::fs::write(
        &p,
        TINY.replace("iterations = 12", &format!("iterations = {iterations}")),
    )
    .unwrap();
    p
}

fn train(store: &Path, cfg: &Path, extra: &[&str]) -> Command {
    let mut c = arbor();
    c.args(["train", "--headless", "--run", "r", "--config"])
        .arg(cfg)
        .arg("--store")
        .arg(store)
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn resume(store: &Path) -> Command {
    let mut c = arbor();
    c.args(["train", "--headless", "--resume", "r", "--store"])
        .arg(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    c
}

fn fsck(store: &Path) {
    let out = arbor()
        .arg("fsck")
        .arg("--store")
        .arg(store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "fsck failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The run's iteration records with wall-clock fields removed.
fn iterations(store: &Path) -> Vec<serde_json::Value> {
    let out = arbor()
        .args(["export", "--run", "r", "--metrics", "--store"])
        .arg(store)
        .output()
        .unwrap();
    succeeded(&out);
    let v: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    v.into_iter().map(strip_times).collect()
}

fn strip_times(mut v: serde_json::Value) -> serde_json::Value {
    if let Some(o) = v.as_object_mut() {
        o.retain(|k, _| !(k.contains("seconds") || k == "unix_time"));
        for x in o.values_mut() {
            *x = strip_times(x.take());
        }
    }
    v
}

// Every child is waited for (try_wait until it exits, or kill then wait).
#[allow(clippy::zombie_processes)]
fn kill_and_resume(kills: usize, seed: u64, length: u64) {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), length);
    let reference = dir.path().join("ref.sled");
    let t0 = Instant::now();
    let out = train(&reference, &cfg, &[]).output().unwrap();
    succeeded(&out);
    // The first run includes the warm start; later ones reuse the cached one.
    let full = t0.elapsed();
    let want = iterations(&reference);
    assert_eq!(want.len() as u64, length);

    let store = dir.path().join("crash.sled");
    let log = dir.path().join("phases.log");
    let spawn = |mut c: Command| {
        let _ = std::fs::remove_file(&log);
        c.env("ARBOR_PHASE_LOG", &log).spawn().unwrap()
    };
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut child = spawn(train(&store, &cfg, &[]));
    let mut killed = 0;
    let mut finished = false;
    let mut phases: BTreeMap<String, usize> = BTreeMap::new();
    // Kill moments spread so that `kills` of them fit in about one run's length.
    let window = (full.as_millis() as u64 * 2 / (kills as u64 + 1)).max(100);
    while !finished {
        let wait = if killed < kills {
            Duration::from_millis(rng.random_range(30..window))
        } else {
            Duration::from_secs(600)
        };
        let start = Instant::now();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                let mut err = String::new();
                use std::io::Read;
                child.stderr.take().unwrap().read_to_string(&mut err).ok();
                assert!(status.success(), "child failed: {err}");
                finished = true;
                break;
            }
            if start.elapsed() >= wait {
                child.kill().unwrap();
                child.wait().unwrap();
                killed += 1;
                let last = std::fs::read_to_string(&log)
                    .ok()
                    .and_then(|s| {
                        s.lines()
                            .last()
                            .map(|l| l.split(' ').next().unwrap_or("").to_string())
                    })
                    .unwrap_or_else(|| "start (warm start or loading)".into());
                *phases.entry(last).or_default() += 1;
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        if !finished {
            fsck(&store);
            // Killed before the run was registered: start it again; otherwise resume.
            let registered = arbor()
                .args(["export", "--run", "r", "--metrics", "--store"])
                .arg(&store)
                .output()
                .map(|o| o.status.success())
                .unwrap_or(false);
            child = if registered {
                spawn(resume(&store))
            } else {
                let _ = std::fs::remove_dir_all(&store);
                spawn(train(&store, &cfg, &[]))
            };
        }
    }
    fsck(&store);
    let got = iterations(&store);
    assert_eq!(got.len(), want.len(), "after {killed} kills");
    for (g, w) in got.iter().zip(&want) {
        assert_eq!(g, w, "after {killed} kills, iterations differ");
    }
    eprintln!(
        "{killed} kills (interrupted phases: {phases:?}), all resumed; fsck clean; {} iterations identical to the uninterrupted run",
        got.len()
    );
    assert!(killed >= kills.min(1), "no kill landed");
}

#[test]
fn resumed_runs_match_an_uninterrupted_one_after_kills() {
    kill_and_resume(3, 1, 12);
}

#[test]
#[ignore = "long: cargo test --test crash -- --ignored --nocapture"]
fn long_crash_harness() {
    let kills = std::env::var("ARBOR_CRASH_KILLS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    kill_and_resume(kills, 2, 40);
}

#[test]
fn stop_then_resume_with_more_iterations_continues_the_same_stream() {
    let dir = tempfile::tempdir().unwrap();
    let reference = dir.path().join("ref.sled");
    let out = train(&reference, &config(dir.path(), 6), &[])
        .output()
        .unwrap();
    succeeded(&out);
    let want = iterations(&reference);

    // Three iterations, finished; then extended to six with --resume --iterations 6.
    let store = dir.path().join("s.sled");
    let out = train(&store, &config(dir.path(), 3), &[]).output().unwrap();
    assert!(out.status.success());
    let again = resume(&store).output().unwrap();
    assert!(!again.status.success());
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(
        err.contains("already finished") && err.contains("--iterations"),
        "{err}"
    );
    let out = resume(&store).args(["--iterations", "6"]).output().unwrap();
    succeeded(&out);
    fsck(&store);
    let got = iterations(&store);
    assert_eq!(got.len(), 6);
    // Iterations 4..6 continue the same data stream, RNG and optimizer: identical to the
    // uninterrupted run, apart from evaluation, which the shorter run ran at its end.
    for (i, (g, w)) in got.iter().zip(&want).enumerate().skip(3) {
        let (mut g, mut w) = (g.clone(), w.clone());
        g["eval"] = serde_json::Value::Null;
        w["eval"] = serde_json::Value::Null;
        assert_eq!(g, w, "iteration {}", i + 1);
    }
}

#[test]
fn non_finite_updates_are_skipped_recorded_and_repeated_ones_pause_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 6);
    let events = |store: &Path| -> Vec<arbor::engine::training::control::ControlEvent> {
        arbor::store::Store::open_existing(store)
            .unwrap()
            .events("r")
            .unwrap()
    };

    // One NaN iteration: skipped, recorded, the run goes on to the end.
    let one = dir.path().join("one.sled");
    let out = train(&one, &cfg, &[])
        .env("ARBOR_FAULT_NAN", "2")
        .output()
        .unwrap();
    succeeded(&out);
    let ev = events(&one);
    let nan: Vec<_> = ev
        .iter()
        .filter(|e| e.kind == EventKind::Nonfinite)
        .collect();
    assert_eq!(nan.len(), 1, "{ev:?}");
    assert_eq!(nan[0].iteration, 2);
    assert!(nan[0].reason.as_deref().unwrap().contains("NaN"));
    let its = iterations(&one);
    assert_eq!(its.len(), 6);
    assert_eq!(its[1]["update"]["optimizer_steps"], 0);
    assert!(its[1]["update"]["skipped_steps"].as_u64().unwrap() > 0);

    // Three in a row: the run pauses (headless: stops, resumable) with a message.
    let many = dir.path().join("many.sled");
    let out = train(&many, &cfg, &[])
        .env("ARBOR_FAULT_NAN", "2,3,4")
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("paused after iteration 4") && err.contains("--resume r"),
        "{err}"
    );
    assert!(!err.contains("panicked"));
    fsck(&many);
    assert_eq!(iterations(&many).len(), 4);
    // Resumed with a smaller learning rate, it finishes; the retune is recorded.
    let out = resume(&many).args(["--set", "lr=5e-5"]).output().unwrap();
    succeeded(&out);
    fsck(&many);
    assert_eq!(iterations(&many).len(), 6);
    let ev = events(&many);
    assert!(ev
        .iter()
        .any(|e| e.kind == EventKind::Retune && e.new.as_deref() == Some("5e-5")));
    assert_eq!(
        ev.iter().filter(|e| e.kind == EventKind::Nonfinite).count(),
        3
    );
}

/// SIGTERM on a headless run stops it at the next safe point with a checkpoint and the
/// JSON summary (`stopped_by: "signal"`); the run resumes with nothing committed lost.
#[test]
fn sigterm_stops_a_headless_run_gracefully_and_it_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path(), 400);
    let store = dir.path().join("s.sled");
    let child = train(&store, &cfg, &[]).spawn().unwrap();
    // Wait for the first scheduled checkpoint: the run is past its warm start.
    let ck = PathBuf::from(format!("{}.checkpoints/r/iter-000002", store.display()));
    let t0 = Instant::now();
    while !ck.exists() {
        assert!(t0.elapsed() < Duration::from_secs(120), "no checkpoint");
        std::thread::sleep(Duration::from_millis(50));
    }
    let sent = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let out = child.wait_with_output().unwrap();
    succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a summary line")).unwrap();
    assert_eq!(summary["stopped_by"], "signal", "{summary}");
    let done = summary["iterations"].as_u64().unwrap();
    assert!((2..400).contains(&done), "{done}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("SIGTERM"));
    // A checkpoint of the last committed iteration exists, and the store is sound.
    let last = PathBuf::from(format!("{}.checkpoints/r/iter-{done:06}", store.display()));
    assert!(last.exists(), "no checkpoint at iteration {done}");
    fsck(&store);
    assert_eq!(iterations(&store).len() as u64, done);
    let out = resume(&store)
        .args(["--iterations", &(done + 2).to_string()])
        .output()
        .unwrap();
    succeeded(&out);
    assert_eq!(iterations(&store).len() as u64, done + 2);
}

/// The store sink of a library-driven run that asks to stop at the `after`-th check of
/// `phase` inside iteration `iteration` (0 or 1: before the first; the checks of the
/// start-of-run evaluation count as iteration 1's), as a user's stop would.
struct StopInside {
    inner: arbor::store::sink::StoreSink,
    phase: Phase,
    iteration: u64,
    after: usize,
    fired: bool,
    told: bool,
}

impl Sink for StopInside {
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
    fn commit(&mut self, m: &IterationMetrics, trees: &[TreeRecord]) -> Result<(), SinkError> {
        self.inner.commit(m, trees)
    }
    fn amend(&mut self, m: &IterationMetrics) -> Result<(), SinkError> {
        self.inner.amend(m)
    }
    fn checkpoint(&mut self, i: u64, ck: &TrainingCheckpoint) -> Result<(), SinkError> {
        self.inner.checkpoint(i, ck)
    }
    fn event(&mut self, e: &ControlEvent) -> Result<(), SinkError> {
        self.inner.event(e)
    }
    fn interrupt(&mut self, phase: Phase) -> Interrupt {
        let inside = self.inner.run.last_iteration + 1 == self.iteration.max(1);
        if !self.fired && phase == self.phase && inside {
            if self.after == 0 {
                self.fired = true;
            } else {
                self.after -= 1;
            }
        }
        if self.fired {
            Interrupt::Stop
        } else {
            Interrupt::Continue
        }
    }
    fn directives(&mut self, _next: u64) -> Vec<Directive> {
        if self.fired && !self.told {
            self.told = true;
            vec![Directive::Stop]
        } else {
            Vec::new()
        }
    }
}

/// A stop inside a phase (the start-of-run evaluation, an iteration's search or
/// filtering, a periodic evaluation) gives the phase up and ends the run with the
/// checkpoint of its last committed iteration; resumed, the run's iterations equal an
/// uninterrupted run's (timings aside).
#[test]
fn a_stop_inside_a_phase_resumes_to_the_uninterrupted_iterations() {
    let dir = tempfile::tempdir().unwrap();
    let length = 7;
    let cfg_path = config(dir.path(), length);
    let reference = dir.path().join("ref.sled");
    succeeded(&train(&reference, &cfg_path, &[]).output().unwrap());
    let want = iterations(&reference);
    let cfg = RunConfig::from_toml(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let data = split::load(&cfg.data).unwrap();
    // Iterations 1 and 6 start adaptive rounds (filtering), 5 evaluates (`eval.every`).
    for (phase, iteration, after) in [
        (Phase::Evaluate, 1, 0),
        (Phase::Filter, 1, 0),
        (Phase::Search, 3, 2),
        (Phase::Evaluate, 5, 0),
        (Phase::Filter, 6, 0),
    ] {
        let case = format!("stop in {} of iteration {iteration}", phase.label());
        let path = dir
            .path()
            .join(format!("{}-{iteration}.sled", phase.label()));
        let store = Store::open(&path).unwrap();
        let record = RunRecord::new("r", cfg.method.name(), cfg.seed, cfg.to_toml());
        store.create_run(&record).unwrap();
        let mut sink = StopInside {
            inner: arbor::store::sink::StoreSink {
                store: store.clone(),
                run: record,
            },
            phase,
            iteration,
            after,
            fired: false,
            told: false,
        };
        let (policy, key) = prepare_policy(&cfg, &data, &mut sink).unwrap();
        sink.inner.run.warm_start = Some(key.clone());
        store.update_run(&sink.inner.run).unwrap();
        let mut trainer = Trainer::new(cfg.clone(), policy, data.clone()).unwrap();
        let summary = trainer.run("r", &key, &mut sink).unwrap();
        assert!(sink.fired, "{case}: the check was never asked");
        assert_eq!(summary.stopped_by, StopReason::User, "{case}");
        // The evaluation of iteration 5 comes after its update: 5 is committed without
        // it, and the resume runs it; any other stop gives its iteration up.
        let committed = if phase == Phase::Evaluate && iteration > 1 {
            iteration
        } else {
            iteration - 1
        };
        assert_eq!(summary.iterations, committed, "{case}");
        let stop = store
            .events("r")
            .unwrap()
            .into_iter()
            .rfind(|e| e.kind == EventKind::Stop)
            .unwrap();
        assert!(
            stop.reason.as_deref().unwrap_or("").contains("on --resume"),
            "{case}: {stop:?}"
        );
        let its: Vec<IterationMetrics> = store.iterations("r").unwrap();
        assert_eq!(its.len() as u64, committed, "{case}");
        drop(sink);
        drop(store);
        fsck(&path);
        let ck = PathBuf::from(format!(
            "{}.checkpoints/r/iter-{committed:06}",
            path.display()
        ));
        assert!(
            ck.exists(),
            "{case}: no checkpoint of iteration {committed}"
        );
        succeeded(&resume(&path).output().unwrap());
        fsck(&path);
        let got = iterations(&path);
        assert_eq!(got.len(), want.len(), "{case}");
        for (i, (g, w)) in got.iter().zip(&want).enumerate() {
            assert_eq!(g, w, "{case}: iteration {} differs", i + 1);
        }
    }
}

/// SIGTERM during a long warm start takes effect at the next warm-start step: the run
/// stops at once with 0 iterations and a summary, nothing cached and no checkpoint; its
/// resume starts the warm start over.
#[test]
fn sigterm_during_the_warm_start_stops_at_once_and_caches_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let cfg_path = dir.path().join("long-warm.toml");
    std::fs::write(&cfg_path, TINY.replace("steps = 20\n", "steps = 1000000\n")).unwrap();
    let store = dir.path().join("s.sled");
    let term = |child: std::process::Child| {
        std::thread::sleep(Duration::from_secs(3));
        let sent = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        let t0 = Instant::now();
        let out = child.wait_with_output().unwrap();
        let took = t0.elapsed();
        assert!(took < Duration::from_secs(5), "took {took:?} to stop");
        out
    };
    let out = term(train(&store, &cfg_path, &[]).spawn().unwrap());
    succeeded(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value =
        serde_json::from_str(stdout.lines().last().expect("a summary line")).unwrap();
    assert_eq!(summary["stopped_by"], "signal", "{summary}");
    assert_eq!(summary["iterations"], 0, "{summary}");
    let cfg = RunConfig::from_toml(&std::fs::read_to_string(&cfg_path).unwrap()).unwrap();
    let data = split::load(&cfg.data).unwrap();
    let key = warm_start_key(&cfg, &policy_config(&cfg, &CharTokenizer::default()), &data);
    {
        let s = Store::open_existing(&store).unwrap();
        assert!(
            s.warm_start(&key).unwrap().is_none(),
            "a half warm start was cached"
        );
        assert!(s.checkpoints("r").unwrap().is_empty());
        let stop = s
            .events("r")
            .unwrap()
            .into_iter()
            .rfind(|e| e.kind == EventKind::Stop);
        let why = stop.and_then(|e| e.reason).unwrap_or_default();
        assert!(
            why.contains("warm start") && why.contains("--resume"),
            "{why}"
        );
    }
    fsck(&store);
    // The resume redoes the warm start (stopped again, it still caches nothing).
    let out = term(resume(&store).spawn().unwrap());
    succeeded(&out);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("resuming run r after iteration 0"), "{err}");
    let summary: serde_json::Value = serde_json::from_str(
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .last()
            .expect("a summary line"),
    )
    .unwrap();
    assert_eq!(summary["stopped_by"], "signal", "{summary}");
    let s = Store::open_existing(&store).unwrap();
    assert!(s.warm_start(&key).unwrap().is_none());
}
