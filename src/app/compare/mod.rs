//! `arbor compare`: several methods and seeds at an equal budget of generated tokens.
//!
//! Every run starts from the same warm start (cached in the store), sees the same problem
//! stream for a given seed, stops once its generated training tokens reach the budget,
//! and is evaluated on the same held-out split each time it crosses a token milestone.
//! The runs are grouped in the store as one comparison; the table, an SVG plot of
//! pass@1 against generated tokens and a JSON file go to the output folder.
//!
//! Fair terms: every arm takes one optimizer step per `train.tokens_per_step` generated
//! tokens (2048 unless the config sets it), so a method whose iterations cost more tokens
//! gets proportionally more updates; with `--steps-per-1k-tokens` every arm takes the
//! same number of steps per 1k tokens instead, and the table names each arm whose rate
//! missed by more than 20% with its reason (too few trainable sequences); warm-up is off (a fresh optimizer on a trained
//! policy would otherwise spend its first steps at a fraction of the rate). `--from`
//! starts every arm from one checkpoint (the plateau protocol). The reference arm (the
//! first DeepSearch arm) is compared with every other arm of the same seed on the same
//! problems: a paired difference with a bootstrap interval over number multisets.
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

use super::arms::Arm;
use crate::app::commands::config::resolve_config;
use crate::app::commands::train::{finish_run, TrainOptions};
use crate::app::commands::write_file;
use crate::app::compare::render::{plot, slice_table, table};
use crate::app::compare::stats::{
    clusters, pace_notes, pair_up, per_problem_lines, row_of, shapes, slice_rows,
};
use crate::app::headless::Headless;
use crate::engine::training::config::EvalSplit;
use crate::engine::training::metrics::EvalResult;
use crate::engine::training::records::IterationMetrics;
use crate::engine::training::registry::MethodKind;
use crate::engine::training::split;
use crate::engine::training::trainer::{unix_now, Trainer};
use crate::engine::training::warm_start::prepare_policy;
use crate::store::sink::StoreSink;
use crate::store::{ComparisonRecord, RunRecord, Store};

pub mod render;
pub mod stats;

pub struct CompareOptions {
    /// The arms: `--methods` items, then `--arm` specs.
    pub arms: Vec<Arm>,
    pub seeds: Vec<u64>,
    pub budget_tokens: u64,
    pub store: PathBuf,
    pub out: Option<PathBuf>,
    pub config: Option<PathBuf>,
    /// Evaluations along the way: at every budget / milestones tokens.
    pub milestones: u64,
    /// pass@1 a method must reach for the "tokens to threshold" column.
    pub threshold: f64,
    /// Samples per test problem at each milestone (default: the config's eval.k).
    pub eval_k: Option<usize>,
    pub name: Option<String>,
    /// Start every arm from this checkpoint folder (Hugging Face layout) or from this
    /// run's latest checkpoint in the store; fresh optimizer for all.
    pub from: Option<String>,
    /// Generated validation and test problems (a three-way split by number multiset).
    pub validation_size: Option<usize>,
    pub test_size: Option<usize>,
    /// Evaluate on the validation split instead of test (for choosing settings).
    pub eval_on_validation: bool,
    /// The arm paired differences are taken against (default: the first DeepSearch arm,
    /// else the first arm).
    pub reference: Option<String>,
    /// Equal optimizer steps per 1k generated training tokens for every arm
    /// (`train.steps_per_1k_tokens`).
    pub steps_per_1k_tokens: Option<f64>,
}

/// `--from`: a checkpoint folder (config.json inside), or a run of the store whose
/// latest checkpoint folder is used.
fn resolve_from(from: &str, store: &std::path::Path) -> Result<PathBuf> {
    let dir = PathBuf::from(from);
    if dir.join("config.json").is_file() {
        return Ok(dir);
    }
    if dir.exists() {
        bail!("--from {from}: the folder has no config.json; pass a checkpoint folder (arbor save-model --out DIR) or a run name");
    }
    let s = Store::open_existing(store).map_err(|e| {
        anyhow!(
            "--from {from}: not a checkpoint folder, and no run can be read from the store: {e}"
        )
    })?;
    if s.run(from)?.is_none() {
        bail!(
            "--from {from}: neither a checkpoint folder nor a run in {}",
            store.display()
        );
    }
    let ck = s
        .checkpoints(from)?
        .into_iter()
        .rev()
        .find(|c| c.dir.join("config.json").is_file())
        .ok_or_else(|| anyhow!("--from {from}: the run has no readable checkpoint"))?;
    Ok(ck.dir)
}

pub fn compare(o: CompareOptions) -> Result<()> {
    if o.arms.is_empty() || o.seeds.is_empty() {
        bail!("--methods (or --arm) and --seeds need at least one value each");
    }
    let mut labels: Vec<&str> = o.arms.iter().map(|a| a.label.as_str()).collect();
    labels.sort_unstable();
    if let Some(w) = labels.windows(2).find(|w| w[0] == w[1]) {
        bail!("arm {} is given twice; give each --arm its own label", w[0]);
    }
    if o.budget_tokens == 0 {
        bail!("--budget-tokens must be at least 1");
    }
    if o.milestones == 0 {
        bail!("--milestones must be at least 1");
    }
    if !(0.0..=1.0).contains(&o.threshold) {
        bail!(
            "--threshold {} must be a pass@1 between 0 and 1",
            o.threshold
        );
    }
    let mut base = resolve_config(&TrainOptions {
        config: o.config.clone(),
        ..TrainOptions::default()
    })?;
    if let Some(k) = o.eval_k {
        if k == 0 {
            bail!("--eval-k must be at least 1");
        }
        base.eval.k = k;
    }
    base.train.budget_tokens = Some(o.budget_tokens);
    base.train.iterations = u64::MAX / 2;
    base.eval.every = 0;
    base.eval.every_tokens = o.budget_tokens.div_ceil(o.milestones);
    // Equal learning per token, and no warm-up for a fresh optimizer (module docs).
    if let Some(r) = o.steps_per_1k_tokens {
        if !(r.is_finite() && r > 0.0) {
            bail!("--steps-per-1k-tokens {r} must be a positive number of optimizer steps per 1,000 generated tokens");
        }
        base.train.steps_per_1k_tokens = r;
    } else if base.train.tokens_per_step == 0 {
        base.train.tokens_per_step = 2048;
    }
    base.train.warmup_steps = 0;
    if let Some(n) = o.validation_size {
        base.data.validation_size = n;
    }
    if let Some(n) = o.test_size {
        base.data.test_size = n;
    }
    if let Some(from) = &o.from {
        base.policy.model = Some(resolve_from(from, &o.store)?);
    }
    if o.eval_on_validation {
        if base.data.validation_size == 0 && base.data.validation_data.is_none() {
            bail!("--eval-on validation needs a validation split: pass --validation-size N (or data.validation_data)");
        }
        base.eval.split = EvalSplit::Validation;
    }
    base.validate()
        .map_err(|e| anyhow!("compare settings: {e}"))?;
    let arm_configs: Vec<_> = o
        .arms
        .iter()
        .map(|a| a.config(&base))
        .collect::<Result<_>>()?;
    let data = split::load(&base.data)?;
    // The problems every run is evaluated on (`eval.split`).
    let evaluated = match base.eval.split {
        EvalSplit::Test => &data.test,
        EvalSplit::Validation => &data.validation,
    };
    let cluster = clusters(evaluated);
    let reference = match &o.reference {
        Some(r) if o.arms.iter().any(|a| &a.label == r) => r.clone(),
        Some(r) => bail!(
            "--reference {r} is not one of the arms ({})",
            o.arms
                .iter()
                .map(|a| a.label.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        None => o
            .arms
            .iter()
            .find(|a| a.method == MethodKind::DeepSearch)
            .unwrap_or(&o.arms[0])
            .label
            .clone(),
    };
    if let Some(n) = &o.name {
        crate::store::validate_run_name(n)?;
    }
    let store = Store::open(&o.store)?;
    let existing = store.comparisons()?;
    let name = match &o.name {
        Some(n) if existing.iter().any(|c| &c.name == n) => {
            bail!(
                "a comparison named {n} already exists in {}",
                o.store.display()
            )
        }
        Some(n) => n.clone(),
        None => {
            let mut i = existing.len() + 1;
            while existing.iter().any(|c| c.name == format!("cmp-{i}")) {
                i += 1;
            }
            format!("cmp-{i}")
        }
    };
    let mut runs: Vec<(usize, u64, String)> = Vec::new();
    for &s in &o.seeds {
        for (i, a) in o.arms.iter().enumerate() {
            runs.push((i, s, format!("{name}-{}-s{s}", a.label)));
        }
    }
    for (_, _, r) in &runs {
        if store.run(r)?.is_some() {
            bail!("run {r} already exists in {}", o.store.display());
        }
    }
    let out_dir = o.out.clone().unwrap_or_else(|| {
        o.store
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(std::path::Path::new("."))
            .join(&name)
    });
    let method_names: Vec<String> = o.arms.iter().map(|a| a.label.clone()).collect();
    let mut record = ComparisonRecord {
        name: name.clone(),
        created_unix: unix_now(),
        methods: method_names.clone(),
        seeds: o.seeds.clone(),
        budget_tokens: o.budget_tokens,
        milestone_tokens: base.eval.every_tokens,
        threshold: o.threshold,
        runs: Vec::new(),
        out_dir: out_dir.clone(),
    };
    store.put_comparison(&record)?;
    let wall = std::time::Instant::now();
    let mut eval_start: Option<EvalResult> = None;
    let mut rows = Vec::new();
    for (i, (arm, seed, run)) in runs.iter().enumerate() {
        let label = &o.arms[*arm].label;
        eprintln!(
            "[{}/{}] {run}: {label} seed {seed}, {} tokens",
            i + 1,
            runs.len(),
            o.budget_tokens
        );
        let mut cfg = arm_configs[*arm].clone();
        cfg.seed = *seed;
        let method = cfg.method;
        let mut rec = RunRecord::new(run, method.name(), *seed, cfg.to_toml());
        rec.comparison = Some(name.clone());
        store.create_run(&rec)?;
        record.runs.push(run.clone());
        store.put_comparison(&record)?;
        let mut sink = Headless::new(StoreSink {
            store: store.clone(),
            run: rec,
        });
        let outcome = (|| -> Result<_> {
            let (policy, key) = prepare_policy(&cfg, &data, &mut sink)?;
            sink.inner.run.warm_start = Some(key.clone());
            store.update_run(&sink.inner.run)?;
            let mut trainer = Trainer::new(cfg.clone(), policy, data.clone())?;
            // Same warm start, same evaluation seed: the start is measured once.
            trainer.eval_start = eval_start.clone();
            Ok(trainer.run(run, &key, &mut sink)?)
        })();
        let summary = finish_run(&store, run, outcome, false)?;
        eval_start.get_or_insert(summary.eval_start.clone());
        let its: Vec<IterationMetrics> = store.iterations(run)?;
        let mut row = row_of(run, label, *seed, &summary.eval_start, &its, o.threshold);
        row.wall_seconds = summary.wall_seconds;
        rows.push(row);
    }
    pair_up(&mut rows, &reference, &cluster);
    std::fs::create_dir_all(&out_dir)
        .with_context(|| format!("cannot create {}", out_dir.display()))?;
    let shapes = shapes(evaluated, &data.rules);
    let slices = slice_rows(&rows, &shapes, &method_names);
    let pace = (base.train.steps_per_1k_tokens > 0.0).then(|| {
        pace_notes(
            &rows,
            base.train.steps_per_1k_tokens,
            base.train.min_sequences_per_step,
        )
    });
    let mut md = table(&rows, &method_names, o.threshold, Some(&reference));
    if let Some(notes) = &pace {
        md += &format!(
            "\nEqual optimizer steps per token: {} steps per 1k train tokens asked, at least {} sequences a step.\n",
            base.train.steps_per_1k_tokens, base.train.min_sequences_per_step
        );
        for n in notes {
            md += &format!("* {n}\n");
        }
    }
    if !slices.is_empty() {
        md += &format!("\n{}", slice_table(&slices));
    }
    let svg = plot(&name, &rows, &method_names);
    let json = serde_json::json!({
        "comparison": name,
        "store": o.store,
        "methods": method_names,
        "seeds": o.seeds,
        "budget_tokens": o.budget_tokens,
        "milestone_tokens": record.milestone_tokens,
        "threshold": o.threshold,
        "eval_k": base.eval.k,
        "test_problems": match base.eval.problems { 0 => evaluated.len(), n => n.min(evaluated.len()) },
        "evaluated_on": match base.eval.split { EvalSplit::Test => "test", EvalSplit::Validation => "validation" },
        "from": o.from,
        "reference": reference,
        "tokens_per_step": base.train.tokens_per_step,
        "steps_per_1k_tokens": (base.train.steps_per_1k_tokens > 0.0).then_some(base.train.steps_per_1k_tokens),
        "min_sequences_per_step": base.train.min_sequences_per_step,
        "pace_notes": pace,
        "slices": slices,
        "arms": o.arms.iter().map(|a| serde_json::json!({
            "label": a.label, "method": a.method.name(),
            "overrides": a.overrides.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "wall_seconds": wall.elapsed().as_secs_f64(),
        "table": out_dir.join("table.md"),
        "plot": out_dir.join("pass1_vs_tokens.svg"),
        "per_problem": out_dir.join("per_problem.jsonl"),
        "runs": rows,
    });
    let write = |file: &str, text: &str| write_file(&out_dir.join(file), text);
    write("table.md", &md)?;
    write("pass1_vs_tokens.svg", &svg)?;
    write("comparison.json", &serde_json::to_string_pretty(&json)?)?;
    write(
        "per_problem.jsonl",
        &per_problem_lines(&rows, evaluated, &cluster, &shapes),
    )?;
    eprintln!(
        "\n{md}\nplot: {}",
        out_dir.join("pass1_vs_tokens.svg").display()
    );
    let mut line = json;
    if let Some(o) = line.as_object_mut() {
        // The summary line keeps the table, not every curve point.
        if let Some(serde_json::Value::Array(rs)) = o.get_mut("runs") {
            for r in rs {
                if let Some(r) = r.as_object_mut() {
                    r.remove("curve");
                }
            }
        }
    }
    println!("{line}");
    Ok(())
}
