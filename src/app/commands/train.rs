//! `arbor train`: a new run, driven to its end in this process.
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

use crate::app::commands::config::resolve_config;
use crate::app::headless::Headless;
use crate::app::live::{Begin, Served};
use crate::engine::training::config::RunConfig;
use crate::engine::training::control::{EventKind, StopReason};
use crate::engine::training::registry::MethodKind;
use crate::engine::training::split;
use crate::store::{validate_run_name, RunRecord, RunStatus, Store, DEFAULT_PATH};

pub struct TrainOptions {
    pub method: Option<MethodKind>,
    pub headless: bool,
    pub seed: Option<u64>,
    pub iterations: Option<u64>,
    pub budget_tokens: Option<u64>,
    pub config: Option<PathBuf>,
    pub store: PathBuf,
    pub run: Option<String>,
    pub train_data: Option<PathBuf>,
    pub test_data: Option<PathBuf>,
    /// Explorer theme (live runs).
    pub theme: String,
    /// Retunes applied on resume, as KEY=VALUE.
    pub set: Vec<String>,
    pub model: Option<PathBuf>,
    pub device: Option<String>,
    pub task: Option<crate::engine::task::TaskKind>,
    /// How often a headless run logs a plain progress line (stderr not a terminal).
    pub log_every: crate::app::progress_log::LogEvery,
    /// `--generator KIND[=URL]`: overrides `[generator] kind` (and `url`).
    pub generator: Option<String>,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            method: None,
            headless: false,
            log_every: Default::default(),
            seed: None,
            iterations: None,
            budget_tokens: None,
            config: None,
            store: PathBuf::from(DEFAULT_PATH),
            run: None,
            train_data: None,
            test_data: None,
            theme: "dark".into(),
            set: Vec::new(),
            model: None,
            device: None,
            task: None,
            generator: None,
        }
    }
}

pub fn train(o: TrainOptions) -> Result<()> {
    if !o.set.is_empty() {
        bail!("--set only applies with --resume; put new settings in --config for a new run");
    }
    // Everything that can be refused is checked before the store is touched.
    let cfg = resolve_config(&o)?;
    let data = split::load(&cfg.data)?;
    if let Some(name) = &o.run {
        validate_run_name(name)?;
    }
    cfg.generator
        .reachable()
        .map_err(|e| anyhow!("generator: {e}"))?;
    if crate::app::background::wants_explorer(o.headless) {
        return crate::app::background::train_in_background(&o.store, &o.theme);
    }
    let store = Store::open(&o.store)?;
    let name = match &o.run {
        Some(n) => n.clone(),
        None => {
            let base = format!("{}-s{}", cfg.method.name(), cfg.seed);
            let mut i = 1;
            while store.run(&format!("{base}-{i}"))?.is_some() {
                i += 1;
            }
            format!("{base}-{i}")
        }
    };
    let record = RunRecord::new(&name, cfg.method.name(), cfg.seed, cfg.to_toml());
    store.create_run(&record)?;
    drive(cfg, Begin::Fresh(data), store, record, o.log_every)
}

/// Runs a registered run to its end in this process and records the outcome. The run is
/// served to viewers on the store's socket while it runs; stderr gets progress bars, or
/// plain progress lines when it is not a terminal. (An explorer started with the run
/// runs this in a background process and attaches to it: see `background.rs`.)
pub(crate) fn drive(
    cfg: RunConfig,
    begin: Begin,
    store: Store,
    record: RunRecord,
    log_every: crate::app::progress_log::LogEvery,
) -> Result<()> {
    let name = record.name.clone();
    let log = std::env::var_os(crate::app::background::LOG_ENV).map(PathBuf::from);
    let (live, served) = Served::start(&store, record, &cfg, log);
    if let Err(e) = &served.server {
        eprintln!("note: viewers cannot attach to this run ({e}); it trains anyway");
    }
    let mut sink = Headless::new(live)
        .log_every(log_every)
        .with_signals()
        .context("cannot watch SIGTERM and SIGINT")?;
    if let Some(flag) = sink.signal_flag() {
        sink.inner.watch_signal(flag);
    }
    let outcome =
        crate::app::live::train_begin(&cfg, begin, &mut sink, &store, |s| &mut s.inner.inner.run);
    let result = finish_run(&store, &name, outcome, true);
    // Attached viewers see how the run ended before the socket goes away.
    served.finish(match &result {
        Ok(s) => Ok(s.clone()),
        Err(e) => Err(format!("{e:#}")),
    });
    result.map(|_| ())
}

/// Records how the run ended and (if `print`) prints the summary line.
pub(crate) fn finish_run(
    store: &Store,
    name: &str,
    outcome: Result<crate::engine::training::records::Summary>,
    print: bool,
) -> Result<crate::engine::training::records::Summary> {
    let mut run = store.require_run(name)?;
    match outcome {
        Ok(summary) => {
            let mut json = serde_json::to_value(&summary)?;
            crate::engine::training::metrics::strip_per_problem(&mut json);
            let (mut bytes, mut nodes) = (0u64, 0u64);
            for i in 1..=summary.iterations {
                let (b, n) = store.tree_bytes(name, i)?;
                bytes += b;
                nodes += n;
            }
            if let Some(obj) = json.as_object_mut() {
                let per_node = if nodes == 0 {
                    0.0
                } else {
                    bytes as f64 / nodes as f64
                };
                obj.insert("store_bytes_per_node".into(), per_node.into());
            }
            run.status = if summary.stopped_by.resumable() {
                RunStatus::Stopped
            } else {
                RunStatus::Finished
            };
            run.summary = Some(json.clone());
            if !summary.warm_start.is_empty() {
                run.warm_start = Some(summary.warm_start.clone());
            }
            store.update_run(&run)?;
            if print {
                println!("{json}");
            }
            if summary.stopped_by == StopReason::Nonfinite {
                let why = store
                    .events(name)?
                    .into_iter()
                    .rev()
                    .find_map(|e| e.reason.filter(|_| e.kind == EventKind::Stop))
                    .unwrap_or_default();
                bail!(
                    "run {name} paused after iteration {}: {why}. Its last checkpoint is \
                     kept: continue with `arbor train --resume {name} --set lr=<smaller>`",
                    summary.iterations
                );
            }
            Ok(summary)
        }
        Err(e) => {
            run.status = RunStatus::Failed;
            store.update_run(&run)?;
            Err(e.context(format!("run {name} failed")))
        }
    }
}
