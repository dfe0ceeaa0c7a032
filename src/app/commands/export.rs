//! `arbor export`: a run's trees (JSON or DOT) or its metrics.
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, bail, Result};

use crate::app::commands::write_file;
use crate::app::ending::{endings, Caps, Ending};
use crate::app::source::RunSource;
use crate::engine::rl::record::NodeRecord;
use crate::engine::training::config::{EvalSplit, RunConfig};
use crate::store::Store;

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
    /// Every stored evaluation's per-problem counts as JSONL instead (`arbor intervals`
    /// recomputes their intervals).
    pub evaluations: bool,
    pub format: ExportFormat,
    pub problem: Option<String>,
    pub out: Option<PathBuf>,
    pub store: PathBuf,
}

/// A stored node as the export contract spells it, with why it ended in the explorer's
/// words.
fn node_json(n: &NodeRecord, ending: &Ending) -> serde_json::Value {
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
        "ending": ending.kind(),
        "ended": ending.words(),
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
    if o.evaluations {
        let cfg = RunConfig::from_toml(&run.config_toml)
            .map_err(|e| anyhow!("run {}: stored config is unreadable: {e}", run.name))?;
        let data = crate::engine::training::split::load(&cfg.data)
            .map_err(|e| anyhow!("run {}: its evaluation problems: {e}", run.name))?;
        let problems = match cfg.eval.split {
            EvalSplit::Test => &data.test,
            EvalSplit::Validation => &data.validation,
        };
        let n = match cfg.eval.problems {
            0 => problems.len(),
            n => n.min(problems.len()),
        };
        let its = store.iteration_values(&run.name)?;
        let text = evaluation_lines(&run.name, &its, &problems[..n])?;
        return match &o.out {
            Some(path) => write_file(path, &text),
            None => {
                print!("{text}");
                Ok(())
            }
        };
    }
    let Some(iteration) = o.iteration else {
        bail!("pass --iteration N for that iteration's trees, --metrics for every iteration's metrics, or --evaluations for every evaluation's per-problem counts");
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
    let cfg = RunConfig::from_toml(&run.config_toml).unwrap_or_default();
    let text = match o.format {
        ExportFormat::Json => {
            let trees: Vec<serde_json::Value> = trees
                .iter()
                .filter(|t| o.problem.as_ref().is_none_or(|p| &t.problem == p))
                .map(|t| {
                    let mut j = serde_json::json!({
                        "problem": t.problem,
                        "prompt": t.prompt,
                        "source": t.source,
                        "expansions": t.expansions,
                        "cap_event": t.cap_event,
                        "nodes": t
                            .nodes
                            .iter()
                            .zip(endings(t, Caps::of(&cfg, t)))
                            .map(|(n, e)| node_json(n, &e))
                            .collect::<Vec<_>>(),
                    });
                    // A distillation search's simulations in order: (leaf, value backed up).
                    if !t.simulations.is_empty() {
                        j["simulations"] = t
                            .simulations
                            .iter()
                            .map(|&(leaf, v)| serde_json::json!({"leaf": leaf, "value": v}))
                            .collect();
                    }
                    j
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

/// The raw data behind a run's evaluation curve: one JSON line per stored evaluation
/// (iteration 0 is the one before training) and problem, with its number multiset, k and
/// correct count, in the format `arbor intervals` reads.
fn evaluation_lines(
    run: &str,
    its: &[serde_json::Value],
    problems: &[crate::engine::task::Problem],
) -> Result<String> {
    let mut out = String::new();
    for it in its {
        let iteration = it["iteration"].as_u64().unwrap_or(0);
        let tokens = it["cumulative_generated_tokens"].as_u64().unwrap_or(0);
        let evals = [(0, 0, &it["eval_start"]), (iteration, tokens, &it["eval"])];
        for (at, tokens, e) in evals {
            if e.is_null() {
                continue;
            }
            let correct = e["correct"].as_array().ok_or_else(|| {
                anyhow!("run {run}: the evaluation at iteration {at} kept no per-problem counts")
            })?;
            if correct.len() != problems.len() {
                bail!(
                    "run {run}: the evaluation at iteration {at} has {} problems, the run's evaluation split {}: was the data changed since?",
                    correct.len(),
                    problems.len()
                );
            }
            let correct: Vec<u64> = correct.iter().map(|c| c.as_u64().unwrap_or(0)).collect();
            let k = e["k"].as_u64().unwrap_or(0);
            out.push_str(&crate::app::commands::intervals::count_lines(
                run, at, tokens, problems, k, &correct,
            ));
        }
    }
    if out.is_empty() {
        bail!("run {run} has no stored evaluation yet");
    }
    Ok(out)
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The export says why a node ended in the explorer's words.
    #[test]
    fn the_export_says_why_each_node_ended() {
        let mut n = NodeRecord::blank(1, Some(0), 1);
        n.terminal_value = Some(-1.0);
        n.correct = Some(false);
        n.reason = Some("line 1: not a step or an answer".into());
        let e = Ending::of(&n, true, Default::default());
        let j = node_json(&n, &e);
        assert_eq!(j["ending"], "malformed");
        assert_eq!(j["ended"], "malformed: line 1: not a step or an answer");
    }
}
