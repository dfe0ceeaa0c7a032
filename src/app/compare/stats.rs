//! The statistics of `arbor compare`: each run's row, the paired differences against
//! the reference arm, the bootstrap's clusters and the per-problem lines behind them.
use std::collections::HashMap;

use crate::engine::task::countdown::{solve, Shape, Solutions};
use crate::engine::task::{Problem, Rules};
use crate::engine::training::metrics::{paired_bootstrap, pass_at_k, EvalResult, PairedDiff};
use crate::engine::training::records::IterationMetrics;

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
    /// Sequences trained on per 1,000 training tokens (filtering excluded): what bounds
    /// the optimizer steps a method can take at a given number of sequences per step.
    pub sequences_per_1k_tokens: f64,
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
    let sequences: u64 = its.iter().map(|m| m.update.sequences).sum();
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
        sequences_per_1k_tokens: per_1k(sequences as f64, generated.saturating_sub(filter)),
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
pub fn per_problem_lines(
    rows: &[RunRow],
    problems: &[Problem],
    cluster: &[u64],
    shapes: &[Option<Shape>],
) -> String {
    let mut out = String::new();
    for r in rows {
        for (((p, &c), &m), shape) in problems.iter().zip(&r.correct).zip(cluster).zip(shapes) {
            // A Countdown problem's sorted numbers and target (none for other tasks).
            let nums = p.countdown().map(|c| c.multiset()).unwrap_or_default();
            out.push_str(
                &serde_json::json!({
                    "run": r.run, "arm": r.method, "seed": r.seed, "problem": p.id,
                    "multiset": format!("{m:016x}"), "nums": nums, "target": p.countdown().map(|c| c.target),
                    "shape": shape.map(Shape::name), "k": r.k, "correct": c,
                })
                .to_string(),
            );
            out.push('\n');
        }
    }
    out
}

/// Each problem's solution shape from the exact solver (`None`: not a Countdown problem,
/// or no solution found), solved once per number multiset.
pub fn shapes(problems: &[Problem], rules: &Rules) -> Vec<Option<Shape>> {
    let mut solved: HashMap<Vec<i64>, Solutions> = HashMap::new();
    problems
        .iter()
        .map(|p| {
            let c = p.countdown().filter(|c| !c.nums.is_empty())?;
            let s = solved
                .entry(c.multiset())
                .or_insert_with(|| solve(&c.nums, &rules.countdown));
            s.get(c.target).map(|i| i.shape())
        })
        .collect()
}

/// One arm's held-out results on one slice of problems (by solution shape), averaged
/// over its seeds.
#[derive(Clone, Debug, serde::Serialize)]
pub struct SliceRow {
    pub arm: String,
    pub shape: &'static str,
    pub problems: usize,
    pub seeds: usize,
    pub pass1: f64,
    /// Unbiased pass@8 from the same samples (when k >= 8).
    pub pass8: Option<f64>,
    /// Unbiased pass@k, k the evaluation's samples per problem.
    pub pass_k: f64,
    pub k: usize,
}

/// pass@1, pass@8 and pass@k per arm and solution shape, from each run's per-problem
/// correct counts.
pub fn slice_rows(rows: &[RunRow], shapes: &[Option<Shape>], arms: &[String]) -> Vec<SliceRow> {
    let mut out = Vec::new();
    for shape in [Shape::Chain, Shape::Balanced] {
        let idx: Vec<usize> = (0..shapes.len())
            .filter(|&i| shapes[i] == Some(shape))
            .collect();
        if idx.is_empty() {
            continue;
        }
        for arm in arms {
            let mine: Vec<&RunRow> = rows
                .iter()
                .filter(|r| &r.method == arm && r.correct.len() == shapes.len())
                .collect();
            let Some(k) = mine.first().map(|r| r.k) else {
                continue;
            };
            let mean = |at: usize| {
                mine.iter()
                    .map(|r| {
                        idx.iter()
                            .map(|&i| pass_at_k(r.k, r.correct[i] as usize, at))
                            .sum::<f64>()
                            / idx.len() as f64
                    })
                    .sum::<f64>()
                    / mine.len() as f64
            };
            out.push(SliceRow {
                arm: arm.clone(),
                shape: shape.name(),
                problems: idx.len(),
                seeds: mine.len(),
                pass1: mean(1),
                pass8: (k >= 8).then(|| mean(8)),
                pass_k: mean(k),
                k,
            });
        }
    }
    out
}

/// Under equal steps per token: one line per run whose steps per 1k train tokens missed
/// the asked rate by more than 20%, with its reason.
pub fn pace_notes(rows: &[RunRow], rate: f64, min_sequences: usize) -> Vec<String> {
    let mut notes = Vec::new();
    for r in rows {
        let off = r.steps_per_1k_tokens / rate - 1.0;
        if off.abs() <= 0.2 {
            continue;
        }
        let most = r.sequences_per_1k_tokens / min_sequences.max(1) as f64;
        let why = if most < rate * 0.8 {
            format!(
                "it trained {:.2} sequences per 1k tokens, which allow at most {:.3} steps of {min_sequences}",
                r.sequences_per_1k_tokens, most
            )
        } else {
            "its last samples were still buffered, waiting for a step, when the budget ran out"
                .to_string()
        };
        notes.push(format!(
            "{} seed {}: {:.3} steps per 1k tokens ({:+.0}%): {why}",
            r.method,
            r.seed,
            r.steps_per_1k_tokens,
            100.0 * off
        ));
    }
    if notes.is_empty() {
        notes.push(format!(
            "every run took {rate} steps per 1k train tokens within 20%"
        ));
    }
    notes
}

fn per_problem(r: &RunRow) -> Vec<f64> {
    r.correct
        .iter()
        .map(|&c| c as f64 / r.k.max(1) as f64)
        .collect()
}

/// Cluster ids for the bootstrap: each problem's number multiset
/// ([`Problem::multiset_key`]).
pub fn clusters(problems: &[Problem]) -> Vec<u64> {
    problems.iter().map(Problem::multiset_key).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::compare::render::table;

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
            .map(|i| {
                crate::engine::task::countdown::problem(&format!("p{i}"), vec![i % 3, 7, 9], 20 + i)
            })
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
        let text = per_problem_lines(&rows, &problems, &cluster, &[None; 12]);
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

    /// The slice by solution shape averages each arm's per-problem pass@k over the
    /// problems of each shape and over seeds; problems without a shape are left out.
    #[test]
    fn slices_average_pass_at_k_by_shape_over_seeds() {
        let rules = Rules::default();
        let problems = vec![
            crate::engine::task::countdown::problem("chain", vec![1, 2, 3, 4], 24),
            crate::engine::task::countdown::problem("balanced", vec![9, 1, 7, 5], 120),
            crate::engine::task::countdown::problem("unsolvable", vec![1, 1, 1, 1], 997),
        ];
        let shapes = shapes(&problems, &rules);
        assert_eq!(
            shapes,
            vec![Some(Shape::Chain), Some(Shape::Balanced), None]
        );
        let row = |seed: u64, correct: Vec<u32>| RunRow {
            correct,
            k: 8,
            seed,
            method: "a".into(),
            ..row_of("x", "a", seed, &eval(0.1), &[it(1, 100, Some(0.1))], 0.5)
        };
        let rows = vec![row(1, vec![8, 0, 0]), row(2, vec![4, 2, 0])];
        let s = slice_rows(&rows, &shapes, &["a".into()]);
        assert_eq!(s.len(), 2);
        assert_eq!((s[0].shape, s[0].problems, s[0].seeds), ("chain", 1, 2));
        assert!((s[0].pass1 - 0.75).abs() < 1e-12);
        assert_eq!(s[0].pass8, Some(1.0));
        assert!((s[1].pass1 - 0.125).abs() < 1e-12);
        assert!((s[1].pass_k - 0.5).abs() < 1e-12);
        let md = crate::app::compare::render::slice_table(&s);
        assert!(
            md.contains("| a | balanced | 1 | 12.5% | 50.0% | 50.0% |"),
            "{md}"
        );
    }

    /// Under equal steps per token a run off the asked rate by more than 20% is named,
    /// with too few trainable sequences as its reason when that is the cause.
    #[test]
    fn pace_notes_name_runs_off_the_rate_with_their_reason() {
        let row = |method: &str, steps: f64, seqs: f64| RunRow {
            steps_per_1k_tokens: steps,
            sequences_per_1k_tokens: seqs,
            method: method.into(),
            ..row_of("x", method, 1, &eval(0.1), &[it(1, 100, Some(0.1))], 0.5)
        };
        let notes = pace_notes(&[row("ok", 0.11, 4.0), row("few", 0.05, 0.8)], 0.12, 16);
        assert_eq!(notes.len(), 1);
        assert!(
            notes[0].starts_with("few seed 1: 0.050 steps per 1k tokens (-58%)"),
            "{}",
            notes[0]
        );
        assert!(
            notes[0].contains("0.80 sequences per 1k tokens"),
            "{}",
            notes[0]
        );
        let all = pace_notes(&[row("ok", 0.11, 4.0)], 0.12, 16);
        assert!(all[0].contains("within 20%"));
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
