//! What each command does, between parsing (main.rs) and the engine and store.
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

use crate::app::explorer::App;
use crate::app::headless::Headless;
use crate::app::source::RunSource;
use std::sync::Arc;

use crate::app::live::{Begin, Served};
use crate::engine::policy::checkpoint;
use crate::engine::rl::record::NodeRecord;
use crate::engine::task::countdown::{generate, write_jsonl, Preset};
use crate::engine::training::config::RunConfig;
use crate::engine::training::control::{EventKind, StopReason};
use crate::engine::training::evaluate::{evaluate, EvalSettings};
use crate::engine::training::registry::MethodKind;
use crate::engine::training::split;
use crate::engine::training::test_time::{compare_strategies, Strategy, TestTimeSettings};
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

/// Reads the config file (if any) and applies the command-line overrides.
pub fn resolve_config(o: &TrainOptions) -> Result<RunConfig> {
    let mut cfg = match &o.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            RunConfig::from_toml(&text).map_err(|e| anyhow!("config {}: {e}", path.display()))?
        }
        None => RunConfig::default(),
    };
    if let Some(m) = o.method {
        cfg.method = m;
    }
    if let Some(s) = o.seed {
        cfg.seed = s;
    }
    if let Some(i) = o.iterations {
        cfg.train.iterations = i;
    }
    if let Some(b) = o.budget_tokens {
        cfg.train.budget_tokens = Some(b);
    }
    if let Some(p) = &o.train_data {
        cfg.data.train_data = Some(p.clone());
    }
    if let Some(p) = &o.test_data {
        cfg.data.test_data = Some(p.clone());
    }
    if let Some(m) = &o.model {
        cfg.policy.model = Some(m.clone());
    }
    if let Some(d) = &o.device {
        cfg.policy.device = d.clone();
    }
    if let Some(t) = o.task {
        cfg.data.task = t;
    }
    if let Some(g) = &o.generator {
        let (kind, url) = crate::engine::policy::server::remote::parse_generator_flag(g)
            .map_err(|e| anyhow!(e))?;
        cfg.generator.kind = kind;
        if let Some(u) = url {
            cfg.generator.url = u;
        }
    }
    let origin = o
        .config
        .as_ref()
        .map(|p| format!("config {}", p.display()))
        .unwrap_or_else(|| "settings".into());
    cfg.validate().map_err(|e| anyhow!("{origin}: {e}"))?;
    if let Some(dir) = &cfg.policy.model {
        checkpoint::check_folder(dir).map_err(|e| anyhow!("--model: {e}"))?;
    }
    Ok(cfg)
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

pub struct EvalOptions {
    /// The run whose latest checkpoint is evaluated (or `model`).
    pub run: Option<String>,
    /// A checkpoint folder in Hugging Face layout, evaluated without a run.
    pub model: Option<PathBuf>,
    pub config: Option<PathBuf>,
    pub device: Option<String>,
    pub task: Option<crate::engine::task::TaskKind>,
    pub test_data: Option<PathBuf>,
    pub store: PathBuf,
    pub k: Option<usize>,
    /// Test-time strategies to compare at equal token budgets (empty: plain evaluation).
    pub strategies: Vec<Strategy>,
    pub budgets: Vec<usize>,
    /// The strategy the others are paired against (default: the first).
    pub reference: Option<Strategy>,
}

/// The policy `arbor eval` evaluates: a run's latest checkpoint, or a model folder.
struct Evaluated {
    name: String,
    iteration: u64,
    cfg: RunConfig,
    policy: crate::engine::policy::Policy,
}

fn evaluated(o: &EvalOptions) -> Result<Evaluated> {
    match (&o.run, &o.model) {
        (Some(_), Some(_)) => bail!("pass --run or --model, not both"),
        (None, None) => bail!(
            "pass --run NAME (a run's latest checkpoint) or --model DIR (a checkpoint folder)"
        ),
        (None, Some(dir)) => {
            let mut cfg = resolve_config(&TrainOptions {
                config: o.config.clone(),
                test_data: o.test_data.clone(),
                model: Some(dir.clone()),
                task: o.task,
                // Evaluation reads only the test split.
                train_data: o.test_data.clone(),
                ..TrainOptions::default()
            })?;
            if let Some(d) = &o.device {
                cfg.policy.device = d.clone();
            }
            let (device, note) = crate::engine::policy::device::choose(&cfg.policy.device)
                .map_err(|e| anyhow!(e))?;
            if let Some(n) = note {
                eprintln!("note: {n}");
            }
            let policy = checkpoint::load(dir, &device)
                .with_context(|| format!("--model {}", dir.display()))?;
            Ok(Evaluated {
                name: dir.display().to_string(),
                iteration: 0,
                cfg,
                policy,
            })
        }
        (Some(name), None) => {
            if o.config.is_some() {
                bail!("--config applies to --model; a run is evaluated with its own settings");
            }
            let store = Store::open_existing(&o.store)?;
            let run = store.require_run(name)?;
            let cfg = RunConfig::from_toml(&run.config_toml)
                .map_err(|e| anyhow!("run {}: stored config is unreadable: {e}", run.name))?;
            let ck = store
                .checkpoints(&run.name)?
                .pop()
                .ok_or_else(|| anyhow!("run {} has no checkpoint yet", run.name))?;
            let device_name = o
                .device
                .clone()
                .unwrap_or_else(|| cfg.policy.device.clone());
            let (device, _) =
                crate::engine::policy::device::choose(&device_name).map_err(|e| anyhow!(e))?;
            let policy = checkpoint::load(&ck.dir, &device).with_context(|| {
                format!(
                    "checkpoint of iteration {} of run {}",
                    ck.iteration, run.name
                )
            })?;
            Ok(Evaluated {
                name: run.name,
                iteration: ck.iteration,
                cfg,
                policy,
            })
        }
    }
}

pub fn eval(o: EvalOptions) -> Result<()> {
    if let Some(k) = o.k {
        if k == 0 {
            bail!("--k must be at least 1");
        }
    }
    let Evaluated {
        name,
        iteration,
        mut cfg,
        policy,
    } = evaluated(&o)?;
    let run = RunLabel { name };
    let ck = CkLabel { iteration };
    if let Some(p) = &o.test_data {
        cfg.data.test_data = Some(p.clone());
    }
    if let Some(k) = o.k {
        if k == 0 {
            bail!("--k must be at least 1");
        }
        cfg.eval.k = k;
    }
    let data = split::load(&cfg.data)?;
    let model = policy.sampler_model()?;
    // A run that generates on an engine (`[generator]`, `evaluate = true`) is evaluated
    // there too, once the engine serves the evaluated weights.
    let mut remote = None;
    let server = match cfg.generator.server().filter(|_| cfg.generator.evaluate) {
        Some(server_cfg) => {
            cfg.generator
                .reachable()
                .map_err(|e| anyhow!("generator: {e}"))?;
            let r = remote.insert(crate::engine::policy::server::remote::Remote::new(
                cfg.generator.clone(),
            ));
            let g = r
                .generator(&policy, &model, ck.iteration, false)
                .map_err(|e| anyhow!("generator: {e}"))?;
            eprintln!(
                "arbor: evaluating on {} at {} ({})",
                server_cfg.engine.name(),
                server_cfg.url,
                r.engine_version.as_deref().unwrap_or("version unknown")
            );
            g
        }
        None => None,
    };
    let generator: &dyn crate::engine::policy::Generator = match &server {
        Some(s) => s,
        None => &model,
    };
    let n = match cfg.eval.problems {
        0 => data.test.len(),
        n => n.min(data.test.len()),
    };
    if !o.strategies.is_empty() {
        if o.budgets.is_empty() || o.budgets.contains(&0) {
            bail!("--budgets needs positive sample counts, e.g. --budgets 1,4,16");
        }
        let results = compare_strategies(
            &model,
            generator,
            &policy.tokenizer,
            &data.test[..n],
            &data.rules,
            &TestTimeSettings {
                strategies: &o.strategies,
                budgets: &o.budgets,
                temperature: cfg.eval.temperature,
                max_tokens: cfg.train.max_tokens,
                search: &cfg.search,
                distill: &cfg.tree_distill,
            },
            &mut |s| eprintln!("{s}..."),
        )?;
        eprintln!(
            "| strategy | budget | tokens/problem (allowed) | accuracy (95% CI) | majority vote | most-visited path |\n|---|---|---|---|---|---|"
        );
        for r in &results {
            eprintln!(
                "| {} | {} | {:.0} ({:.0}) | {:.1}% ({:.1}-{:.1}) | {} | {} |",
                serde_json::to_value(r.strategy)?.as_str().unwrap_or(""),
                r.budget,
                r.tokens_per_problem,
                r.token_budget,
                100.0 * r.accuracy,
                100.0 * r.accuracy_ci95.0,
                100.0 * r.accuracy_ci95.1,
                r.majority
                    .map_or("-".to_string(), |m| format!("{:.1}%", 100.0 * m)),
                r.most_visited
                    .map_or("-".to_string(), |m| format!("{:.1}%", 100.0 * m))
            );
        }
        let reference = o.reference.unwrap_or(o.strategies[0]);
        if !o.strategies.contains(&reference) {
            bail!(
                "--reference {}: not one of --strategies",
                serde_json::to_value(reference)?.as_str().unwrap_or("")
            );
        }
        let problems = &data.test[..n];
        let paired = test_time_pairs(&results, reference, problems);
        if !paired.is_empty() {
            eprintln!(
                "\npaired differences against {} (95% CI, resampling number multisets):",
                name_of(reference)
            );
            for d in &paired {
                eprintln!(
                    "  budget {:>3}: {:<18} {:+.1} points ({:+.1}, {:+.1})",
                    d["budget"],
                    d["strategy"].as_str().unwrap_or(""),
                    100.0 * d["difference"].as_f64().unwrap_or(0.0),
                    100.0 * d["ci95"][0].as_f64().unwrap_or(0.0),
                    100.0 * d["ci95"][1].as_f64().unwrap_or(0.0),
                );
            }
        }
        let file = per_problem_path(&o.store, &run.name, ck.iteration);
        write_file(&file, &test_time_lines(&results, problems))?;
        println!(
            "{}",
            serde_json::json!({
                "run": run.name,
                "iteration": ck.iteration,
                "problems": n,
                "temperature": cfg.eval.temperature,
                "strategies": results,
                "reference": name_of(reference),
                "paired": paired,
                "per_problem": file,
            })
        );
        return Ok(());
    }
    let (result, _) = evaluate(
        generator,
        &policy.tokenizer,
        &data.test[..n],
        EvalSettings {
            k: cfg.eval.k,
            temperature: cfg.eval.temperature,
            max_tokens: cfg.train.max_tokens,
        },
        &data.rules,
        &mut |_, _| {},
        &mut crate::engine::rl::interrupt::never(),
    )?;
    let mut json = serde_json::to_value(&result)?;
    crate::engine::training::metrics::strip_per_problem(&mut json);
    if let Some(obj) = json.as_object_mut() {
        obj.insert("run".into(), run.name.clone().into());
        obj.insert("iteration".into(), ck.iteration.into());
    }
    println!("{json}");
    Ok(())
}

struct RunLabel {
    name: String,
}
struct CkLabel {
    iteration: u64,
}

pub struct SaveModelOptions {
    pub run: String,
    pub out: PathBuf,
    pub store: PathBuf,
    pub dtype: checkpoint::SaveDtype,
    /// Hugging Face layout (a folder) or one GGUF file.
    pub format: ModelFormat,
}

/// What `arbor save-model` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ModelFormat {
    /// A folder: model.safetensors, config.json, tokenizer.json (transformers, vLLM, SGLang).
    Hf,
    /// One .gguf file (llama.cpp, Ollama, LM Studio).
    Gguf,
}

/// `arbor save-model`: the run's latest policy in Hugging Face layout or as GGUF.
pub fn save_model(o: SaveModelOptions) -> Result<()> {
    let store = Store::open_existing(&o.store)?;
    let run = store.require_run(&o.run)?;
    let ck = store
        .checkpoints(&run.name)?
        .pop()
        .ok_or_else(|| anyhow!("run {} has no checkpoint yet", run.name))?;
    let policy = checkpoint::load(&ck.dir, &candle_core::Device::Cpu).with_context(|| {
        format!(
            "checkpoint of iteration {} of run {}",
            ck.iteration, run.name
        )
    })?;
    match o.format {
        ModelFormat::Hf => checkpoint::save_hf(&policy, &o.out, o.dtype)?,
        ModelFormat::Gguf => {
            if o.out.is_dir() {
                bail!(
                    "--out {} is a folder: --format gguf writes one file (e.g. --out policy.gguf)",
                    o.out.display()
                );
            }
            crate::engine::policy::gguf::save_gguf(&policy, &o.out, o.dtype)?
        }
    }
    println!(
        "{}",
        serde_json::json!({
            "run": run.name,
            "iteration": ck.iteration,
            "out": o.out,
            "dtype": format!("{:?}", o.dtype).to_lowercase(),
            "format": format!("{:?}", o.format).to_lowercase(),
            "parameters": policy.num_parameters(),
        })
    );
    Ok(())
}

pub struct GenDataOptions {
    pub preset: String,
    pub seed: u64,
    pub train: usize,
    pub test: usize,
    /// Validation problems (0: the two-way split of before).
    pub validation: usize,
    pub out: PathBuf,
}

pub fn gen_data(o: GenDataOptions) -> Result<()> {
    let preset = Preset::by_name(&o.preset)?;
    let (train_set, validation_set, test_set, seed) = if o.validation > 0 {
        let s = crate::engine::task::countdown::generate_held_out(
            &preset,
            o.seed,
            o.train,
            o.validation,
            o.test,
        )?;
        (s.train, s.validation, s.test, s.seed)
    } else {
        let s = generate(&preset, o.seed, o.train, o.test)?;
        (s.train, Vec::new(), s.test, s.seed)
    };
    std::fs::create_dir_all(&o.out)
        .with_context(|| format!("cannot create {}", o.out.display()))?;
    let train = o.out.join("train.jsonl");
    let test = o.out.join("test.jsonl");
    write_jsonl(&train, &train_set)?;
    write_jsonl(&test, &test_set)?;
    if o.validation > 0 {
        write_jsonl(&o.out.join("validation.jsonl"), &validation_set)?;
    }
    let settings = serde_json::json!({
        "preset": preset,
        "seed": seed,
        "train": train_set.len(),
        "validation": validation_set.len(),
        "test": test_set.len(),
        "multisets": "disjoint between splits",
    });
    let meta = o.out.join("split.json");
    std::fs::write(&meta, serde_json::to_vec_pretty(&settings)?)
        .with_context(|| format!("cannot write {}", meta.display()))?;
    println!(
        "{}",
        serde_json::json!({
            "train": train, "test": test, "preset": o.preset, "seed": o.seed,
            "train_problems": train_set.len(), "test_problems": test_set.len(),
            "validation_problems": validation_set.len(),
        })
    );
    Ok(())
}

/// Output format of `arbor export`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Json,
    Dot,
}

pub struct ExportOptions {
    pub run: String,
    pub iteration: Option<u64>,
    /// Every iteration's metrics instead of trees.
    pub metrics: bool,
    pub format: ExportFormat,
    pub problem: Option<String>,
    pub out: Option<PathBuf>,
    pub store: PathBuf,
}

/// A stored node as the export contract spells it.
fn node_json(n: &NodeRecord) -> serde_json::Value {
    serde_json::json!({
        "id": n.id,
        "parent": n.parent,
        "depth": n.depth,
        "q": n.q,
        "n": n.n,
        "Q": n.mean_q(),
        "entropy": n.entropy,
        "frontier_score": n.frontier_score,
        "terminal": n.is_terminal(),
        "correct": n.correct,
        "reason": n.reason,
        "picked": n.picked,
        "step": n.step.name(),
        "multiplicity": n.multiplicity,
        "recorded": n.recorded,
        "confident_wrong": n.confident_wrong,
        "advantage": n.advantage,
        "prior": n.prior,
        "value": n.value,
        "visits": n.n,
        "distilled": n.distilled,
        "expanded_at": n.expanded_at,
        "runner_up": n.runner_up,
        "text": n.text,
        "tokens": n.tokens,
    })
}

pub fn export(o: ExportOptions) -> Result<()> {
    // A live run is read through its trainer (which holds the store).
    let store: Box<dyn RunSource> =
        match crate::app::serve::client::Client::connect(&o.store, true)? {
            Some(c) => Box::new(Arc::new(c)),
            None => Box::new(Store::open_existing(&o.store)?),
        };
    let run = store.run(&o.run)?;
    if o.metrics {
        let its = store.iteration_values(&run.name)?;
        return write_out(&o.out, &serde_json::Value::Array(its).to_string());
    }
    let Some(iteration) = o.iteration else {
        bail!("pass --iteration N for that iteration's trees, or --metrics for every iteration's metrics");
    };
    if iteration == 0 || iteration > run.last_iteration {
        bail!(
            "run {} has iterations 1..={}; --iteration {} is not among them",
            run.name,
            run.last_iteration,
            iteration
        );
    }
    let trees = store.trees(&run.name, iteration)?;
    let text = match o.format {
        ExportFormat::Json => {
            let trees: Vec<serde_json::Value> = trees
                .iter()
                .filter(|t| o.problem.as_ref().is_none_or(|p| &t.problem == p))
                .map(|t| {
                    serde_json::json!({
                        "problem": t.problem,
                        "prompt": t.prompt,
                        "source": t.source,
                        "expansions": t.expansions,
                        "cap_event": t.cap_event,
                        "nodes": t.nodes.iter().map(node_json).collect::<Vec<_>>(),
                    })
                })
                .collect();
            serde_json::json!({ "run": run.name, "iteration": iteration, "trees": trees })
                .to_string()
        }
        ExportFormat::Dot => {
            let Some(p) = &o.problem else {
                bail!("--format dot writes one tree: pass --problem ID");
            };
            let t = trees.iter().find(|t| &t.problem == p).ok_or_else(|| {
                anyhow!(
                    "iteration {} of run {} has no problem {p:?}; it has: {}",
                    iteration,
                    run.name,
                    trees
                        .iter()
                        .map(|t| t.problem.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
            t.to_dot()
        }
    };
    write_out(&o.out, &text)
}

/// Writes `text` to `out` atomically, or to stdout.
fn write_out(out: &Option<PathBuf>, text: &str) -> Result<()> {
    match out {
        Some(path) => write_file(path, text),
        None => {
            println!("{text}");
            Ok(())
        }
    }
}

/// Writes `text` to `path` under a temporary name, then renames it into place.
pub(crate) fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text.as_bytes())
        .and_then(|_| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}

/// `arbor fsck`: prints what was checked and every problem; fails if there is one.
/// With `live`, a store held by a live run is checked by its trainer, between commits.
pub fn fsck(path: &std::path::Path, live: bool) -> Result<()> {
    let client = crate::app::serve::client::Client::connect(path, true)?;
    let (problems, summary) = match client {
        Some(c) if live => c.fsck()?,
        Some(c) => bail!(
            "store {} is held by the live run {} (pid {}): check it through its trainer \
             with `arbor fsck --live --store {}`",
            path.display(),
            c.hello.run,
            c.hello.pid,
            path.display()
        ),
        None => {
            let report = Store::open_existing(path)?.fsck()?;
            let summary = report.summary();
            (report.problems, summary)
        }
    };
    for p in &problems {
        println!("problem: {p}");
    }
    println!("{}: {summary}", path.display());
    if problems.is_empty() {
        println!("ok");
        Ok(())
    } else {
        bail!(
            "{}: {} problems found (listed above)",
            path.display(),
            problems.len()
        )
    }
}

pub struct ViewOptions {
    pub run: Option<String>,
    pub store: PathBuf,
    pub theme: String,
    /// Attach to a live run without any control.
    pub readonly: bool,
}

/// One line per run for `arbor view` without `--run`; `live` names the run being trained.
fn list_runs(runs: &[RunRecord], live: Option<(&str, u32)>, store: &std::path::Path) -> String {
    let mut out = format!("runs in {}:\n", store.display());
    let mut runs: Vec<&RunRecord> = runs.iter().collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.created_unix));
    for r in &runs {
        let state = match live {
            Some((name, pid)) if name == r.name => format!("live, pid {pid}"),
            _ => format!("{:?}", r.status).to_lowercase(),
        };
        out.push_str(&format!(
            "  {:<28} {:<13} seed {:<4} {:>6} iterations  {state}\n",
            r.name, r.method, r.seed, r.last_iteration
        ));
    }
    if runs.is_empty() {
        out.push_str("  (none yet: train one with `arbor train`)\n");
    } else {
        out.push_str(&format!(
            "open one with `arbor view --store {} --run NAME` (a live one is attached; \
             --readonly hides every control)",
            store.display()
        ));
    }
    out
}

/// `arbor view`: attach to the live run beside the store, or replay a stored run;
/// without `--run`, list the runs.
pub fn view(o: ViewOptions) -> Result<()> {
    let theme = crate::app::theme::Theme::choose(&o.theme).map_err(|e| anyhow!(e))?;
    if let Some(client) = crate::app::serve::client::Client::connect(&o.store, o.readonly)? {
        let live = client.hello.run.clone();
        let Some(name) = o.run else {
            println!(
                "{}",
                list_runs(&client.runs()?, Some((&live, client.hello.pid)), &o.store)
            );
            return Ok(());
        };
        let pid = client.hello.pid;
        let log = client.pointer.log.clone();
        let mut app = App::attach(client, o.store.clone(), Some(&name), theme, false)?;
        let mut terminal = ratatui::init();
        let result = run_ui(&mut terminal, &mut app);
        ratatui::restore();
        if name == live && app.finished.is_none() {
            match app.left {
                Some(crate::app::attach::Leave::Stop) => {
                    println!("asked run {name} to stop at its next safe point")
                }
                _ => println!(
                    "{}",
                    crate::app::background::detach_line(&name, &o.store, pid, log.as_deref())
                ),
            }
        }
        return result;
    }
    let store = Store::open_existing(&o.store)?;
    let Some(name) = o.run else {
        println!("{}", list_runs(&store.runs()?, None, &o.store));
        return Ok(());
    };
    let mut app = crate::app::explorer::App::open(store, &name, theme)?;
    let mut terminal = ratatui::init();
    let result = run_ui(&mut terminal, &mut app);
    ratatui::restore();
    result
}

/// The UI loop: terminal events, a 100 ms tick that drains trainer notifications, and a
/// redraw only when something changed.
pub fn run_ui(terminal: &mut ratatui::DefaultTerminal, app: &mut App) -> Result<()> {
    use crossterm::event::{Event, EventStream, KeyEventKind};
    use futures::StreamExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    let result = rt.block_on(async {
        let mut events = EventStream::new();
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        let mut dirty = true;
        while !app.quit {
            if dirty {
                terminal.draw(|f| crate::app::views::draw(f, app))?;
                dirty = false;
            }
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => {
                        app.on_key(k);
                        dirty = true;
                    }
                    Some(Ok(Event::Mouse(m))) => {
                        app.on_mouse(m);
                        dirty = true;
                    }
                    Some(Ok(Event::Resize(_, _))) => dirty = true,
                    Some(Err(e)) => return Err(anyhow::Error::from(e)),
                    None => break,
                    _ => {}
                },
                _ = tick.tick() => {
                    if app.pump()? {
                        dirty = true;
                    }
                }
            }
        }
        Ok(())
    });
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    result
}

fn name_of(s: Strategy) -> String {
    serde_json::to_value(s)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// Where `arbor eval --strategies` writes its per-problem file: beside the store.
fn per_problem_path(store: &std::path::Path, run: &str, iteration: u64) -> PathBuf {
    let dir = store
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .map(|d| d.to_path_buf())
        .unwrap_or_else(|| PathBuf::from("."));
    // A --model run is named by its folder's path: keep a file name of it.
    let name: String = run
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    dir.join(format!(
        "eval-{}-iter{iteration:06}-{}.per_problem.jsonl",
        name.trim_matches('-'),
        crate::engine::training::trainer::unix_now()
    ))
}

/// Each strategy minus the reference at each budget, over the same problems, with a
/// 95% bootstrap interval resampling number multisets. Rows over their allowance are
/// paired too but say so (`within_allowance`).
pub fn test_time_pairs(
    results: &[crate::engine::training::test_time::StrategyResult],
    reference: Strategy,
    problems: &[crate::engine::task::countdown::Problem],
) -> Vec<serde_json::Value> {
    let clusters: Vec<u64> = problems
        .iter()
        .map(crate::engine::task::multiset_key)
        .collect();
    let mut out = Vec::new();
    for r in results.iter().filter(|r| r.strategy != reference) {
        let Some(base) = results
            .iter()
            .find(|x| x.strategy == reference && x.budget == r.budget)
        else {
            continue;
        };
        let d = crate::engine::training::metrics::paired_bootstrap(
            &r.per_problem,
            &base.per_problem,
            &clusters,
            crate::engine::training::evaluate::EVAL_SEED ^ r.budget as u64,
        );
        out.push(serde_json::json!({
            "budget": r.budget,
            "strategy": name_of(r.strategy),
            "reference": name_of(reference),
            "difference": d.mean,
            "ci95": [d.ci95.0, d.ci95.1],
            "within_allowance": r.within_allowance && base.within_allowance,
        }));
    }
    out
}

/// The raw data behind the test-time table: one JSON line per strategy, budget and
/// problem (its number multiset, score and tokens).
pub fn test_time_lines(
    results: &[crate::engine::training::test_time::StrategyResult],
    problems: &[crate::engine::task::countdown::Problem],
) -> String {
    let mut out = String::new();
    for r in results {
        for (i, p) in problems.iter().enumerate() {
            out.push_str(
                &serde_json::json!({
                    "strategy": name_of(r.strategy),
                    "budget": r.budget,
                    "problem": p.id,
                    "multiset": format!("{:016x}", crate::engine::task::multiset_key(p)),
                    "score": r.per_problem.get(i),
                    "tokens": r.per_problem_tokens.get(i),
                })
                .to_string(),
            );
            out.push('\n');
        }
    }
    out
}
