//! `arbor eval`: a run's latest checkpoint or a model folder on the test split, and
//! test-time strategies compared at equal budgets.
use std::path::PathBuf;

use anyhow::{anyhow, bail, Context, Result};

use crate::app::commands::config::resolve_config;
use crate::app::commands::train::TrainOptions;
use crate::app::commands::write_file;
use crate::engine::policy::checkpoint;
use crate::engine::training::config::RunConfig;
use crate::engine::training::evaluate::{evaluate, EvalSettings};
use crate::engine::training::split;
use crate::engine::training::test_time::{compare_strategies, Strategy, TestTimeSettings};
use crate::store::Store;

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
    // The raw data behind the intervals, beside the store (`arbor intervals` reads it).
    let file = per_problem_path(&o.store, &run.name, ck.iteration);
    let correct: Vec<u64> = result.correct.iter().map(|&c| c as u64).collect();
    write_file(
        &file,
        &crate::app::commands::intervals::count_lines(
            &run.name,
            ck.iteration,
            0,
            &data.test[..n],
            result.k as u64,
            &correct,
        ),
    )?;
    let mut json = serde_json::to_value(&result)?;
    crate::engine::training::metrics::strip_per_problem(&mut json);
    if let Some(obj) = json.as_object_mut() {
        obj.insert("run".into(), run.name.clone().into());
        obj.insert("iteration".into(), ck.iteration.into());
        obj.insert("per_problem".into(), file.display().to_string().into());
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
    problems: &[crate::engine::task::Problem],
) -> Vec<serde_json::Value> {
    let clusters: Vec<u64> = problems
        .iter()
        .map(crate::engine::task::Problem::multiset_key)
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
    problems: &[crate::engine::task::Problem],
) -> String {
    let mut out = String::new();
    for r in results {
        for (i, p) in problems.iter().enumerate() {
            out.push_str(
                &serde_json::json!({
                    "strategy": name_of(r.strategy),
                    "budget": r.budget,
                    "problem": p.id,
                    "multiset": format!("{:016x}", p.multiset_key()),
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
