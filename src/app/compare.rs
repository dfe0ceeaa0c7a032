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
//! gets proportionally more updates; warm-up is off (a fresh optimizer on a trained
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
use crate::app::headless::Headless;
use crate::app::plot::{line_chart, Series};
use crate::engine::task::countdown::Problem;
use crate::engine::training::config::EvalSplit;
use crate::engine::training::metrics::{paired_bootstrap, EvalResult, PairedDiff};
use crate::engine::training::records::IterationMetrics;
use crate::engine::training::registry::MethodKind;
use crate::engine::training::split;
use crate::engine::training::trainer::{unix_now, Trainer};
use crate::engine::training::warm_start::prepare_policy;
use crate::store::sink::StoreSink;
use crate::store::{ComparisonRecord, RunRecord, Store};

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
}

/// One run's outcome in the table.
#[derive(Clone, Debug, serde::Serialize)]
pub struct RunRow {
    pub run: String,
    pub method: String,
    pub seed: u64,
    pub iterations: u64,
    pub generated_tokens: u64,
    pub pass1_start: f64,
    pub pass1: f64,
    pub pass1_ci: (f64, f64),
    pub pass_k: f64,
    pub k: usize,
    /// Generated tokens at the first milestone whose pass@1 reached the threshold.
    pub tokens_to_threshold: Option<u64>,
    /// (generated tokens, held-out pass@1) at every evaluation, the start included.
    pub curve: Vec<(u64, f64)>,
    /// Optimizer steps, and per 1,000 training tokens (generated tokens, filtering
    /// excluded: the filter's tokens are its own column).
    pub optimizer_steps: u64,
    pub steps_per_1k_tokens: f64,
    /// Tokens spent on hard-set filtering (part of `generated_tokens`).
    pub filter_tokens: u64,
    /// Problems solved per 1,000 training tokens (filtering excluded).
    pub solved_per_1k_tokens: f64,
    /// Response tokens trained on per generated token.
    pub trained_per_generated: f64,
    /// Compute beside generation: token positions of tree_distill's prior-and-value pass
    /// and of the KL reference's forward in updates.
    pub scoring_tokens: u64,
    pub reference_tokens: u64,
    pub wall_seconds: f64,
    /// Per-problem correct counts of the last evaluation (not in the JSON).
    #[serde(skip)]
    pub correct: Vec<u32>,
    /// The reference arm minus this arm on the same problems (same seed), when this is
    /// not the reference.
    pub paired_diff: Option<PairedDiff>,
}

/// The table's row for one run, from its stored iterations.
pub fn row_of(
    run: &str,
    method: &str,
    seed: u64,
    start: &EvalResult,
    its: &[IterationMetrics],
    threshold: f64,
) -> RunRow {
    let mut curve = vec![(0u64, start.pass1)];
    let mut end = start.clone();
    for m in its {
        if let Some(e) = &m.eval {
            curve.push((m.cumulative_generated_tokens, e.pass1));
            end = e.clone();
        }
    }
    let generated = its.last().map_or(0, |m| m.cumulative_generated_tokens);
    let steps: u64 = its.iter().map(|m| m.update.optimizer_steps).sum();
    let filter: u64 = its
        .iter()
        .filter_map(|m| m.adaptive.map(|a| a.filter_tokens))
        .sum();
    let solved: usize = its.iter().map(|m| m.problems_solved).sum();
    let trained: u64 = its.iter().map(|m| m.update.tokens).sum();
    let scoring: u64 = its
        .iter()
        .filter_map(|m| m.search.map(|s| s.scoring_tokens))
        .sum();
    let reference: u64 = its.iter().map(|m| m.update.reference_tokens).sum();
    let per_1k = |x: f64, t: u64| if t > 0 { x * 1000.0 / t as f64 } else { 0.0 };
    RunRow {
        run: run.to_string(),
        method: method.to_string(),
        seed,
        iterations: its.len() as u64,
        generated_tokens: generated,
        optimizer_steps: steps,
        steps_per_1k_tokens: per_1k(steps as f64, generated.saturating_sub(filter)),
        filter_tokens: filter,
        solved_per_1k_tokens: per_1k(solved as f64, generated.saturating_sub(filter)),
        trained_per_generated: if generated > 0 {
            trained as f64 / generated as f64
        } else {
            0.0
        },
        scoring_tokens: scoring,
        reference_tokens: reference,
        // The run's measured wall time is in its summary, not its iterations: the caller
        // sets it.
        wall_seconds: 0.0,
        correct: end.correct.clone(),
        paired_diff: None,
        pass1_start: start.pass1,
        pass1: end.pass1,
        pass1_ci: end.pass1_ci,
        pass_k: end.pass_k,
        k: end.k,
        tokens_to_threshold: curve.iter().find(|(_, p)| *p >= threshold).map(|(t, _)| *t),
        curve,
    }
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

/// The table in Markdown: one row per run, then the mean of each arm over seeds.
/// `reference` names the arm the paired differences are taken against.
pub fn table(
    rows: &[RunRow],
    methods: &[String],
    threshold: f64,
    reference: Option<&str>,
) -> String {
    let k = rows.first().map_or(0, |r| r.k);
    let diff_head = reference.map_or("paired diff".to_string(), |r| {
        format!("{r} minus arm (95% CI)")
    });
    let mut s = format!(
        "| arm | seed | iterations | generated tokens | filter tokens | optimizer steps | steps / 1k train tokens | solved / 1k train tokens | wall s | pass@1 start | pass@1 end (95% CI) | pass@{k} end | {diff_head} | tokens to pass@1 >= {} |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
        pct(threshold)
    );
    let reach = |t: Option<u64>| t.map_or("not reached".to_string(), |t| t.to_string());
    let diff = |d: &Option<PairedDiff>| {
        d.map_or("-".to_string(), |d| {
            format!(
                "{:+.1} ({:+.1} to {:+.1})",
                100.0 * d.mean,
                100.0 * d.ci95.0,
                100.0 * d.ci95.1
            )
        })
    };
    for r in rows {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} | {:.3} | {:.2} | {:.0} | {} | {} ({}-{}) | {} | {} | {} |\n",
            r.method,
            r.seed,
            r.iterations,
            r.generated_tokens,
            r.filter_tokens,
            r.optimizer_steps,
            r.steps_per_1k_tokens,
            r.solved_per_1k_tokens,
            r.wall_seconds,
            pct(r.pass1_start),
            pct(r.pass1),
            pct(r.pass1_ci.0),
            pct(r.pass1_ci.1),
            pct(r.pass_k),
            diff(&r.paired_diff),
            reach(r.tokens_to_threshold)
        );
    }
    for m in methods {
        let mine: Vec<&RunRow> = rows.iter().filter(|r| &r.method == m).collect();
        if mine.len() < 2 {
            continue;
        }
        let n = mine.len() as f64;
        let mean = |f: &dyn Fn(&RunRow) -> f64| mine.iter().map(|r| f(r)).sum::<f64>() / n;
        let diffs: Vec<f64> = mine
            .iter()
            .filter_map(|r| r.paired_diff.map(|d| d.mean))
            .collect();
        let mean_diff = if diffs.is_empty() {
            "-".to_string()
        } else {
            format!(
                "{:+.1}",
                100.0 * diffs.iter().sum::<f64>() / diffs.len() as f64
            )
        };
        s += &format!(
            "| **{m} mean** | {} seeds | {:.0} | {:.0} | {:.0} | {:.0} | {:.3} | {:.2} | {:.0} | {} | {} | {} | {} | {}/{} reached |\n",
            mine.len(),
            mean(&|r| r.iterations as f64),
            mean(&|r| r.generated_tokens as f64),
            mean(&|r| r.filter_tokens as f64),
            mean(&|r| r.optimizer_steps as f64),
            mean(&|r| r.steps_per_1k_tokens),
            mean(&|r| r.solved_per_1k_tokens),
            mean(&|r| r.wall_seconds),
            pct(mean(&|r| r.pass1_start)),
            pct(mean(&|r| r.pass1)),
            pct(mean(&|r| r.pass_k)),
            mean_diff,
            mine.iter()
                .filter(|r| r.tokens_to_threshold.is_some())
                .count(),
            mine.len()
        );
    }
    s
}

/// Paired differences: the reference arm minus every other arm of the same seed, on the
/// same evaluation problems, clustered by `cluster` (one id per problem).
pub fn pair_up(rows: &mut [RunRow], reference: &str, cluster: &[u64]) {
    let refs: Vec<(u64, Vec<f64>, usize)> = rows
        .iter()
        .filter(|r| r.method == reference)
        .map(|r| (r.seed, per_problem(r), r.k))
        .collect();
    for r in rows.iter_mut().filter(|r| r.method != reference) {
        if let Some((_, a, _)) = refs
            .iter()
            .find(|(s, a, _)| *s == r.seed && a.len() == r.correct.len())
        {
            let b = per_problem(r);
            r.paired_diff = Some(paired_bootstrap(a, &b, cluster, r.seed ^ 0xd1ff));
        }
    }
}

/// The raw data behind every interval: one JSON line per run and evaluated problem, with
/// the problem's number multiset (the bootstrap's cluster), k and the correct count of
/// the run's last evaluation. `scripts/levers.py` recomputes the intervals from it.
pub fn per_problem_lines(rows: &[RunRow], problems: &[Problem], cluster: &[u64]) -> String {
    let mut out = String::new();
    for r in rows {
        for ((p, &c), &m) in problems.iter().zip(&r.correct).zip(cluster) {
            let mut nums = p.nums.clone();
            nums.sort_unstable();
            out.push_str(
                &serde_json::json!({
                    "run": r.run, "arm": r.method, "seed": r.seed, "problem": p.id,
                    "multiset": format!("{m:016x}"), "nums": nums, "k": r.k, "correct": c,
                })
                .to_string(),
            );
            out.push('\n');
        }
    }
    out
}

fn per_problem(r: &RunRow) -> Vec<f64> {
    r.correct
        .iter()
        .map(|&c| c as f64 / r.k.max(1) as f64)
        .collect()
}

/// Cluster ids for the bootstrap: each problem's number multiset
/// ([`multiset_key`](crate::engine::task::multiset_key)).
pub fn clusters(problems: &[Problem]) -> Vec<u64> {
    problems
        .iter()
        .map(crate::engine::task::multiset_key)
        .collect()
}

/// The plot: one dashed line per run, a bold one per method (mean over seeds at each
/// milestone).
pub fn plot(name: &str, rows: &[RunRow], methods: &[String]) -> String {
    let mut series = Vec::new();
    for (g, m) in methods.iter().enumerate() {
        let mine: Vec<&RunRow> = rows.iter().filter(|r| &r.method == m).collect();
        for r in &mine {
            series.push(Series {
                label: format!("{m} s{}", r.seed),
                group: g,
                points: r.curve.iter().map(|&(t, p)| (t as f64, p)).collect(),
                bold: false,
            });
        }
        let n = mine.iter().map(|r| r.curve.len()).min().unwrap_or(0);
        if mine.len() > 1 && n > 0 {
            let points = (0..n)
                .map(|i| {
                    let c = mine.len() as f64;
                    (
                        mine.iter().map(|r| r.curve[i].0 as f64).sum::<f64>() / c,
                        mine.iter().map(|r| r.curve[i].1).sum::<f64>() / c,
                    )
                })
                .collect();
            series.push(Series {
                label: format!("{m} (mean)"),
                group: g,
                points,
                bold: true,
            });
        }
    }
    line_chart(
        &format!("{name}: held-out pass@1 at equal generated tokens"),
        "generated training tokens",
        "held-out pass@1",
        &series,
    )
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
    if base.train.tokens_per_step == 0 {
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
    let md = table(&rows, &method_names, o.threshold, Some(&reference));
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
        &per_problem_lines(&rows, evaluated, &cluster),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn eval(p: f64) -> EvalResult {
        EvalResult {
            pass1: p,
            pass_k: p * 3.0,
            k: 8,
            problems: 10,
            pass1_ci: (p / 2.0, p * 1.5),
            pass_k_ci: (0.0, 1.0),
            ..EvalResult::default()
        }
    }

    fn it(i: u64, tokens: u64, e: Option<f64>) -> IterationMetrics {
        IterationMetrics {
            iteration: i,
            cumulative_generated_tokens: tokens,
            eval: e.map(eval),
            ..IterationMetrics::default()
        }
    }

    /// The raw per-problem file holds what every paired interval is computed from:
    /// reading it back gives the same paired difference as the table's.
    #[test]
    fn paired_differences_recompute_from_the_per_problem_file() {
        let problems: Vec<Problem> = (0..12)
            .map(|i| Problem::new(&format!("p{i}"), vec![i % 3, 7, 9], 20 + i))
            .collect();
        let cluster = clusters(&problems);
        let row = |method: &str, correct: Vec<u32>| RunRow {
            correct,
            k: 8,
            seed: 1,
            method: method.into(),
            run: format!("{method}-s1"),
            ..row_of("x", method, 1, &eval(0.1), &[it(1, 100, Some(0.1))], 0.5)
        };
        let mut rows = vec![
            row("ref", (0..12).map(|i| (i * 5 % 9) as u32).collect()),
            row("other", (0..12).map(|i| (i * 3 % 7) as u32).collect()),
        ];
        pair_up(&mut rows, "ref", &cluster);
        let want = rows[1].paired_diff.unwrap();
        let text = per_problem_lines(&rows, &problems, &cluster);
        let lines: Vec<serde_json::Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 24);
        let of = |arm: &str| -> (Vec<f64>, Vec<u64>) {
            lines
                .iter()
                .filter(|l| l["arm"] == arm)
                .map(|l| {
                    let m = u64::from_str_radix(l["multiset"].as_str().unwrap(), 16).unwrap();
                    (l["correct"].as_f64().unwrap() / l["k"].as_f64().unwrap(), m)
                })
                .unzip()
        };
        let (a, ms) = of("ref");
        let (b, _) = of("other");
        let got = paired_bootstrap(&a, &b, &ms, 1 ^ 0xd1ff);
        assert_eq!(got, want);
        // Multisets, not problems, are the bootstrap's unit: three of them here.
        let mut distinct = ms.clone();
        distinct.sort_unstable();
        distinct.dedup();
        assert_eq!(distinct.len(), 3);
    }

    #[test]
    fn rows_read_milestones_and_the_threshold_crossing() {
        let its = [
            it(1, 400, None),
            it(2, 800, Some(0.06)),
            it(3, 1200, None),
            it(4, 1600, Some(0.12)),
        ];
        let r = row_of("a", "grpo", 1, &eval(0.05), &its, 0.1);
        assert_eq!(r.curve, vec![(0, 0.05), (800, 0.06), (1600, 0.12)]);
        assert_eq!((r.pass1, r.generated_tokens, r.iterations), (0.12, 1600, 4));
        assert_eq!(r.tokens_to_threshold, Some(1600));
        let never = row_of("b", "grpo", 2, &eval(0.05), &its[..2], 0.1);
        assert_eq!(never.tokens_to_threshold, None);
        let md = table(&[r, never], &["grpo".into()], 0.1, None);
        assert!(
            md.contains("| grpo | 1 | 4 | 1600 | 0 | 0 | 0.000 | 0.00 | 0 | 5.0% | 12.0% (6.0%-18.0%) | 36.0% | - | 1600 |"),
            "{md}"
        );
        assert!(md.contains("not reached") && md.contains("**grpo mean**"));
    }

    #[test]
    fn rows_count_steps_filter_tokens_and_solutions_per_token() {
        let mut its = vec![it(1, 3000, None), it(2, 6000, Some(0.1))];
        its[0].update.optimizer_steps = 1;
        its[1].update.optimizer_steps = 2;
        its[0].problems_solved = 3;
        its[1].problems_solved = 5;
        its[0].adaptive = Some(crate::engine::training::records::AdaptiveMetrics {
            filter_tokens: 2000,
            ..Default::default()
        });
        let r = row_of("a", "deepsearch", 1, &eval(0.05), &its, 0.5);
        assert_eq!((r.optimizer_steps, r.filter_tokens), (3, 2000));
        // 3 steps over 4,000 training tokens (6,000 generated, 2,000 filtering).
        assert!((r.steps_per_1k_tokens - 0.75).abs() < 1e-12);
        // 8 solved over 4,000 training tokens.
        assert!((r.solved_per_1k_tokens - 2.0).abs() < 1e-12);
    }

    #[test]
    fn the_reference_is_paired_with_each_arm_of_its_seed() {
        let mut a = row_of("a", "deepsearch", 1, &eval(0.0), &[], 0.5);
        let mut b = row_of("b", "grpo", 1, &eval(0.0), &[], 0.5);
        let mut c = row_of("c", "grpo", 2, &eval(0.0), &[], 0.5);
        a.k = 4;
        b.k = 4;
        c.k = 4;
        a.correct = vec![4, 2, 0, 0];
        b.correct = vec![2, 2, 0, 0];
        c.correct = vec![0, 0, 0, 0];
        let mut rows = vec![a, b, c];
        pair_up(&mut rows, "deepsearch", &[1, 1, 2, 3]);
        assert!(rows[0].paired_diff.is_none());
        let d = rows[1].paired_diff.unwrap();
        assert!((d.mean - 0.125).abs() < 1e-12);
        assert!(d.ci95.0 <= d.mean && d.mean <= d.ci95.1);
        assert!(rows[2].paired_diff.is_none(), "no reference with seed 2");
        let md = table(
            &rows,
            &["deepsearch".into(), "grpo".into()],
            0.5,
            Some("deepsearch"),
        );
        assert!(md.contains("+12.5 ("), "{md}");
    }
}
