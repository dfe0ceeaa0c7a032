//! `arbor intervals`: every interval behind a table, recomputed from its per-problem file.
//!
//! Reads the raw files arbor writes beside its tables: `arbor compare`'s
//! `per_problem.jsonl` (one line per run and problem: `run`, `multiset`, `k`, `correct`),
//! `arbor eval --strategies`' file (`strategy`, `budget`, `multiset`, `score`) and
//! `arbor export --evaluations` (`run`, `iteration`, `multiset`, `k`, `correct`). Lines
//! are grouped (by run and iteration, or by strategy and budget) and each group's pass@1
//! (mean@k) and unbiased pass@k get a 95% bootstrap interval that resamples whole number
//! multisets, with the seeds the evaluation itself used: an interval a table printed
//! after issue 24 is reproduced to the last digit, and an older one (which resampled
//! problems) is replaced by the multiset interval.
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde::Serialize;

use crate::engine::training::evaluate::EVAL_SEED;
use crate::engine::training::metrics::{cluster_bootstrap_ci, mean, paired_bootstrap, pass_at_k};

pub struct IntervalsOptions {
    pub files: Vec<PathBuf>,
    /// Also pass@`at` (unbiased, from each line's k samples; `at` <= k).
    pub at: Option<usize>,
    /// Pair every arm (compare) or strategy (eval) with this one, as the table did.
    pub reference: Option<String>,
}

/// One problem of one group: its multiset (the resampling unit), and its correct count
/// out of k (or a test-time score in [0, 1]).
#[derive(Clone, Debug, PartialEq)]
struct Line {
    group: BTreeMap<&'static str, serde_json::Value>,
    multiset: u64,
    outcome: Outcome,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Outcome {
    Counts { k: usize, correct: usize },
    Score(f64),
}

/// One group's recomputed numbers.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct GroupIntervals {
    pub group: BTreeMap<&'static str, serde_json::Value>,
    pub problems: usize,
    pub multisets: usize,
    /// Samples per problem (absent for test-time scores).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub k: Option<usize>,
    #[serde(rename = "pass@1")]
    pub pass1: f64,
    #[serde(rename = "pass@1_ci95")]
    pub pass1_ci95: (f64, f64),
    #[serde(rename = "pass@k", skip_serializing_if = "Option::is_none")]
    pub pass_k: Option<f64>,
    #[serde(rename = "pass@k_ci95", skip_serializing_if = "Option::is_none")]
    pub pass_k_ci95: Option<(f64, f64)>,
    /// pass@`at` when asked for (`--at`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at: Option<usize>,
    #[serde(rename = "pass@at", skip_serializing_if = "Option::is_none")]
    pub pass_at: Option<f64>,
    #[serde(rename = "pass@at_ci95", skip_serializing_if = "Option::is_none")]
    pub pass_at_ci95: Option<(f64, f64)>,
    /// The paired difference with the reference (`--reference`), in the sense and with
    /// the seed of the table that printed it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub paired: Option<Paired>,
}

/// A paired difference of pass@1 over the same problems, with its 95% interval
/// resampling number multisets.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Paired {
    pub reference: String,
    /// `reference minus arm` (arbor compare's `paired_diff`) or `strategy minus
    /// reference` (arbor eval's `paired`).
    pub sense: &'static str,
    pub difference: f64,
    pub ci95: (f64, f64),
}

/// The keys that name a line's group, in the order they are printed.
const GROUP_KEYS: [&str; 6] = ["run", "arm", "seed", "iteration", "strategy", "budget"];

/// One evaluation's raw data: a JSON line per problem (run, iteration, generated tokens,
/// problem id, number multiset, k, correct count), the format `arbor intervals` reads.
pub(crate) fn count_lines(
    run: &str,
    iteration: u64,
    tokens: u64,
    problems: &[crate::engine::task::Problem],
    k: u64,
    correct: &[u64],
) -> String {
    let mut out = String::new();
    for (p, c) in problems.iter().zip(correct) {
        out.push_str(
            &serde_json::json!({
                "run": run, "iteration": iteration, "generated_tokens": tokens,
                "problem": p.id, "multiset": format!("{:016x}", p.multiset_key()),
                "k": k, "correct": c,
            })
            .to_string(),
        );
        out.push('\n');
    }
    out
}

fn parse_line(text: &str, file: &Path, number: usize) -> Result<Line> {
    let at = || format!("{}:{number}", file.display());
    let v: serde_json::Value =
        serde_json::from_str(text).with_context(|| format!("{}: not a JSON object", at()))?;
    let field = |key: &str| -> Result<&serde_json::Value> {
        v.get(key).filter(|x| !x.is_null()).with_context(|| {
            format!(
                "{}: no `{key}` field (is this a per-problem file of arbor compare, arbor eval --strategies or arbor export --evaluations?)",
                at()
            )
        })
    };
    let multiset_text = field("multiset")?
        .as_str()
        .with_context(|| format!("{}: `multiset` is not a string", at()))?;
    let multiset = u64::from_str_radix(multiset_text, 16).with_context(|| {
        format!(
            "{}: `multiset` = {multiset_text:?} is not a 16-digit hex key",
            at()
        )
    })?;
    let outcome = if v.get("score").is_some() {
        let s = field("score")?
            .as_f64()
            .with_context(|| format!("{}: `score` is not a number", at()))?;
        if !(0.0..=1.0).contains(&s) {
            bail!("{}: `score` = {s} is outside [0, 1]", at());
        }
        Outcome::Score(s)
    } else {
        let count = |key: &str| -> Result<usize> {
            field(key)?
                .as_u64()
                .map(|n| n as usize)
                .with_context(|| format!("{}: `{key}` is not a whole number", at()))
        };
        let (k, correct) = (count("k")?, count("correct")?);
        if k == 0 || correct > k {
            bail!("{}: `correct` = {correct} out of `k` = {k}", at());
        }
        Outcome::Counts { k, correct }
    };
    let group = GROUP_KEYS
        .iter()
        .filter_map(|&key| {
            v.get(key)
                .filter(|x| !x.is_null())
                .map(|x| (key, x.clone()))
        })
        .collect();
    Ok(Line {
        group,
        multiset,
        outcome,
    })
}

/// Groups the lines (keeping their order inside a group, which is the problems' order)
/// and recomputes each group's intervals with the evaluation's own seeds: pass@1 with
/// `EVAL_SEED`, pass@k with `EVAL_SEED + 1` (as `metrics::summarise`), pass@`at` with
/// `EVAL_SEED + 2`.
fn recompute(
    lines: &[Line],
    at: Option<usize>,
    reference: Option<&str>,
) -> Result<Vec<GroupIntervals>> {
    let mut order: Vec<BTreeMap<&'static str, serde_json::Value>> = Vec::new();
    let mut groups: Vec<Vec<&Line>> = Vec::new();
    for l in lines {
        match order.iter().position(|g| g == &l.group) {
            Some(i) => groups[i].push(l),
            None => {
                order.push(l.group.clone());
                groups.push(vec![l]);
            }
        }
    }
    let mut out = Vec::new();
    let mut values: Vec<(Vec<f64>, Vec<u64>)> = Vec::new();
    for (group, members) in order.into_iter().zip(groups) {
        let clusters: Vec<u64> = members.iter().map(|l| l.multiset).collect();
        let multisets = clusters
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len();
        let ks: std::collections::BTreeSet<usize> = members
            .iter()
            .filter_map(|l| match l.outcome {
                Outcome::Counts { k, .. } => Some(k),
                Outcome::Score(_) => None,
            })
            .collect();
        let k = match (ks.len(), ks.first()) {
            (0, _) => None,
            (1, Some(&k)) => Some(k),
            _ => bail!("group {group:?} mixes sample counts {ks:?}: one evaluation has one k"),
        };
        let p1: Vec<f64> = members
            .iter()
            .map(|l| match l.outcome {
                Outcome::Counts { k, correct } => correct as f64 / k as f64,
                Outcome::Score(s) => s,
            })
            .collect();
        let by = |kk: usize| -> Vec<f64> {
            members
                .iter()
                .map(|l| match l.outcome {
                    Outcome::Counts { k, correct } => pass_at_k(k, correct, kk),
                    Outcome::Score(s) => s,
                })
                .collect()
        };
        let pk = k.map(by);
        if let (Some(a), Some(k)) = (at, k) {
            if a == 0 || a > k {
                bail!("--at {a}: needs 1 <= at <= k, and group {group:?} has k = {k}");
            }
        }
        let pa = at.filter(|_| k.is_some()).map(by);
        out.push(GroupIntervals {
            group,
            problems: members.len(),
            multisets,
            k,
            pass1: mean(&p1),
            pass1_ci95: cluster_bootstrap_ci(&p1, &clusters, EVAL_SEED),
            pass_k: pk.as_ref().map(|v| mean(v)),
            pass_k_ci95: pk
                .as_ref()
                .map(|v| cluster_bootstrap_ci(v, &clusters, EVAL_SEED.wrapping_add(1))),
            at: pa.as_ref().and(at),
            pass_at: pa.as_ref().map(|v| mean(v)),
            pass_at_ci95: pa
                .as_ref()
                .map(|v| cluster_bootstrap_ci(v, &clusters, EVAL_SEED.wrapping_add(2))),
            paired: None,
        });
        values.push((p1, clusters));
    }
    if let Some(name) = reference {
        pair_with(&mut out, &values, name)?;
    }
    Ok(out)
}

/// Pairs every group with the reference group over the same problems, as the command
/// that wrote the file did: `arbor compare` pairs arms of one seed (reference minus
/// arm, seed `seed ^ 0xd1ff`), `arbor eval --strategies` strategies of one budget
/// (strategy minus reference, seed `EVAL_SEED ^ budget`).
fn pair_with(
    out: &mut [GroupIntervals],
    values: &[(Vec<f64>, Vec<u64>)],
    name: &str,
) -> Result<()> {
    let (own, partner) = match out.first().map(|g| &g.group) {
        Some(g) if g.contains_key("arm") => ("arm", "seed"),
        Some(g) if g.contains_key("strategy") => ("strategy", "budget"),
        _ => bail!("--reference pairs arms (arbor compare's file) or strategies (arbor eval --strategies' file); this file has neither"),
    };
    if !out
        .iter()
        .any(|g| g.group.get(own).and_then(|v| v.as_str()) == Some(name))
    {
        let names: std::collections::BTreeSet<&str> = out
            .iter()
            .filter_map(|g| g.group.get(own).and_then(|v| v.as_str()))
            .collect();
        bail!("--reference {name}: no {own} of that name; the file has {names:?}");
    }
    let pairs: Vec<(usize, usize)> = (0..out.len())
        .filter_map(|i| {
            let key = out[i].group.get(partner)?;
            let r = out.iter().position(|g| {
                g.group.get(own).and_then(|v| v.as_str()) == Some(name)
                    && g.group.get(partner) == Some(key)
            })?;
            (r != i).then_some((i, r))
        })
        .collect();
    for (i, r) in pairs {
        let ((a, clusters), (b, ref_clusters)) = (&values[i], &values[r]);
        if clusters != ref_clusters {
            bail!(
                "group {:?} and its reference {:?} are not over the same problems",
                out[i].group,
                out[r].group
            );
        }
        let key = out[i].group[partner].as_u64().unwrap_or(0);
        let (sense, d) = if own == "arm" {
            let d = paired_bootstrap(b, a, clusters, key ^ 0xd1ff);
            ("reference minus arm", d)
        } else {
            let d = paired_bootstrap(a, b, clusters, EVAL_SEED ^ key);
            ("strategy minus reference", d)
        };
        out[i].paired = Some(Paired {
            reference: name.to_string(),
            sense,
            difference: d.mean,
            ci95: d.ci95,
        });
    }
    Ok(())
}

/// Reads one per-problem file.
fn read(file: &Path) -> Result<Vec<Line>> {
    let text = std::fs::read_to_string(file)
        .with_context(|| format!("cannot read per-problem file {}", file.display()))?;
    let lines: Vec<Line> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| parse_line(l, file, i + 1))
        .collect::<Result<_>>()?;
    if lines.is_empty() {
        bail!("{}: no per-problem lines", file.display());
    }
    Ok(lines)
}

fn pct(x: f64) -> String {
    format!("{:.1}%", 100.0 * x)
}

fn ci(c: (f64, f64)) -> String {
    format!("{:.1}-{:.1}%", 100.0 * c.0, 100.0 * c.1)
}

/// Prints a table per file on stderr and one JSON line per group on stdout.
pub fn intervals(o: IntervalsOptions) -> Result<()> {
    if o.files.is_empty() {
        bail!("pass one or more per-problem files (per_problem.jsonl of arbor compare, the file arbor eval --strategies names, or arbor export --evaluations)");
    }
    for file in &o.files {
        let groups = recompute(&read(file)?, o.at, o.reference.as_deref())?;
        eprintln!(
            "{}: 95% intervals resampling number multisets\n| group | problems | multisets | pass@1 (95% CI) | pass@k (95% CI) |{}\n|---|---|---|---|---|{}",
            file.display(),
            o.at.map_or(String::new(), |a| format!(" pass@{a} (95% CI) |"))
                + &o.reference.as_ref().map_or(String::new(), |r| format!(" paired with {r} (95% CI) |")),
            o.at.map_or("", |_| "---|").to_string() + o.reference.as_ref().map_or("", |_| "---|"),
        );
        for g in &groups {
            let name = GROUP_KEYS
                .iter()
                .filter_map(|&k| g.group.get(k).map(|v| (k, v)))
                .map(|(k, v)| match v.as_str() {
                    Some(s) => format!("{k} {s}"),
                    None => format!("{k} {v}"),
                })
                .collect::<Vec<_>>()
                .join(", ");
            let pk = match (g.k, g.pass_k, g.pass_k_ci95) {
                (Some(k), Some(p), Some(c)) => format!("k={k}: {} ({})", pct(p), ci(c)),
                _ => "-".into(),
            };
            let pa = match (g.pass_at, g.pass_at_ci95) {
                (Some(p), Some(c)) => format!(" {} ({}) |", pct(p), ci(c)),
                _ if o.at.is_some() => " - |".into(),
                _ => String::new(),
            };
            let pd = match &g.paired {
                Some(p) => format!(
                    " {}: {:+.1} ({:+.1} to {:+.1}) |",
                    p.sense,
                    100.0 * p.difference,
                    100.0 * p.ci95.0,
                    100.0 * p.ci95.1
                ),
                None if o.reference.is_some() => " - |".into(),
                None => String::new(),
            };
            eprintln!(
                "| {name} | {} | {} | {} ({}) | {pk} |{pa}{pd}",
                g.problems,
                g.multisets,
                pct(g.pass1),
                ci(g.pass1_ci95)
            );
            let mut v = serde_json::to_value(g)?;
            v["file"] = file.display().to_string().into();
            println!("{v}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::training::metrics::summarise;

    fn counts_line(run: &str, multiset: u64, k: usize, correct: usize) -> String {
        serde_json::json!({"run": run, "arm": "grpo", "seed": 1, "problem": "p",
            "multiset": format!("{multiset:016x}"), "k": k, "correct": correct})
        .to_string()
    }

    #[test]
    fn counts_reproduce_the_evaluations_own_intervals() {
        // Eight problems over three multisets: the same numbers `summarise` gives.
        let clusters = [7u64, 7, 7, 9, 9, 3, 3, 3];
        let correct = [0usize, 4, 1, 0, 8, 2, 0, 3];
        let want = summarise(&correct, 8, String::new(), EVAL_SEED, &clusters);
        let lines: Vec<Line> = clusters
            .iter()
            .zip(correct)
            .enumerate()
            .map(|(i, (&m, c))| parse_line(&counts_line("a", m, 8, c), Path::new("f"), i + 1))
            .collect::<Result<_>>()
            .unwrap();
        let got = recompute(&lines, Some(4), None).unwrap();
        assert_eq!(got.len(), 1);
        let g = &got[0];
        assert_eq!((g.problems, g.multisets, g.k), (8, 3, Some(8)));
        assert_eq!(g.pass1, want.pass1);
        assert_eq!(g.pass1_ci95, want.pass1_ci);
        assert_eq!(g.pass_k, Some(want.pass_k));
        assert_eq!(g.pass_k_ci95, Some(want.pass_k_ci));
        // pass@4 lies between pass@1 and pass@8.
        let p4 = g.pass_at.unwrap();
        assert!(g.pass1 < p4 && p4 < want.pass_k, "{p4}");
    }

    #[test]
    fn groups_keep_apart_and_scores_are_accuracies() {
        let text = [
            counts_line("a", 1, 4, 4),
            counts_line("b", 1, 4, 0),
            counts_line("a", 2, 4, 0),
            serde_json::json!({"strategy": "mcts", "budget": 4, "problem": "p",
                "multiset": "0000000000000001", "score": 1.0, "tokens": 10})
            .to_string(),
        ];
        let lines: Vec<Line> = text
            .iter()
            .enumerate()
            .map(|(i, l)| parse_line(l, Path::new("f"), i + 1))
            .collect::<Result<_>>()
            .unwrap();
        let got = recompute(&lines, None, None).unwrap();
        assert_eq!(got.len(), 3);
        assert_eq!((got[0].problems, got[0].pass1), (2, 0.5));
        assert_eq!((got[1].problems, got[1].pass1), (1, 0.0));
        assert_eq!((got[2].k, got[2].pass1, got[2].pass_k), (None, 1.0, None));
    }

    #[test]
    fn bad_lines_name_the_file_line_and_field() {
        let err = |text: &str| {
            parse_line(text, Path::new("runs/x.jsonl"), 7)
                .unwrap_err()
                .to_string()
        };
        assert!(err("{oops").contains("runs/x.jsonl:7"));
        let e = err(r#"{"run":"a","k":4,"correct":1}"#);
        assert!(
            e.contains("runs/x.jsonl:7") && e.contains("`multiset`"),
            "{e}"
        );
        let e = err(r#"{"run":"a","multiset":"zz","k":4,"correct":1}"#);
        assert!(e.contains("hex"), "{e}");
        let e = err(r#"{"run":"a","multiset":"01","k":4,"correct":5}"#);
        assert!(e.contains("`correct` = 5"), "{e}");
        let mixed = [counts_line("a", 1, 4, 1), counts_line("a", 2, 8, 1)];
        let lines: Vec<Line> = mixed
            .iter()
            .map(|l| parse_line(l, Path::new("f"), 1).unwrap())
            .collect();
        assert!(recompute(&lines, None, None)
            .unwrap_err()
            .to_string()
            .contains("mixes"));
        assert!(recompute(&lines[..1], Some(5), None)
            .unwrap_err()
            .to_string()
            .contains("--at 5"));
    }
}
