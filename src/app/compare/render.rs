//! What `arbor compare` writes: the Markdown table and the SVG plot.
use crate::app::compare::stats::{RunRow, SliceRow};
use crate::app::plot::{line_chart, Series};
use crate::engine::training::metrics::PairedDiff;

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

/// The solution-shape slice: each arm's pass@1, pass@8 and pass@k on the problems whose
/// simplest solution is a chain and on those that need a balanced form.
pub fn slice_table(slices: &[SliceRow]) -> String {
    let k = slices.first().map_or(0, |s| s.k);
    let mut s = format!(
        "By solution shape (the exact solver: chain = some solution takes a given number at every operation; balanced = every solution combines two intermediate results), mean over seeds:\n\n| arm | shape | problems | pass@1 | pass@8 | pass@{k} |\n|---|---|---|---|---|---|\n"
    );
    for r in slices {
        s += &format!(
            "| {} | {} | {} | {} | {} | {} |\n",
            r.arm,
            r.shape,
            r.problems,
            pct(r.pass1),
            r.pass8.map_or("-".to_string(), pct),
            pct(r.pass_k)
        );
    }
    s
}
