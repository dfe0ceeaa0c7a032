//! Evaluation statistics: mean@k as pass@1, the unbiased pass@k estimator, and bootstrap
//! confidence intervals over problems.
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// Unbiased pass@k from `n` samples of which `c` are correct: `1 - C(n-c, k) / C(n, k)`
/// (Chen et al. 2021), computed as a product to stay exact for large n.
pub fn pass_at_k(n: usize, c: usize, k: usize) -> f64 {
    if k == 0 || n == 0 {
        return 0.0;
    }
    let k = k.min(n);
    if n - c < k {
        return 1.0;
    }
    let mut fail = 1.0f64;
    for i in (n - c + 1)..=n {
        fail *= 1.0 - k as f64 / i as f64;
    }
    1.0 - fail
}

/// An evaluation of a policy on a test split.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct EvalResult {
    /// Mean over problems of the fraction of `k` samples that are correct (mean@k).
    #[serde(rename = "pass@1")]
    pub pass1: f64,
    /// Mean over problems of the unbiased pass@k.
    #[serde(rename = "pass@k")]
    pub pass_k: f64,
    pub k: usize,
    pub problems: usize,
    /// 95% bootstrap interval of pass@1, resampling number multisets (a problem's
    /// targets share its numbers, so problems are not independent draws).
    #[serde(rename = "pass@1_ci95")]
    pub pass1_ci: (f64, f64),
    /// 95% bootstrap interval of pass@k, resampling number multisets.
    #[serde(rename = "pass@k_ci95")]
    pub pass_k_ci: (f64, f64),
    /// How the numbers were produced.
    pub protocol: String,
    /// Correct samples per problem, in the split's order (for paired comparisons; kept
    /// in the store, left out of printed summaries).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub correct: Vec<u32>,
}

/// Summarises per-problem correct counts out of `k` samples each; `clusters[i]` is
/// problem i's number multiset, the intervals' resampling unit.
pub fn summarise(
    correct: &[usize],
    k: usize,
    protocol: String,
    seed: u64,
    clusters: &[u64],
) -> EvalResult {
    let p1: Vec<f64> = correct
        .iter()
        .map(|&c| c as f64 / k.max(1) as f64)
        .collect();
    let pk: Vec<f64> = correct.iter().map(|&c| pass_at_k(k, c, k)).collect();
    EvalResult {
        pass1: mean(&p1),
        pass_k: mean(&pk),
        k,
        problems: correct.len(),
        pass1_ci: cluster_bootstrap_ci(&p1, clusters, seed),
        pass_k_ci: cluster_bootstrap_ci(&pk, clusters, seed.wrapping_add(1)),
        protocol,
        correct: correct.iter().map(|&c| c as u32).collect(),
    }
}

/// The mean of `v` (0 when empty).
pub fn mean(v: &[f64]) -> f64 {
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// Percentile bootstrap (1000 resamples) of the mean.
pub fn bootstrap_ci(values: &[f64], seed: u64) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..1000)
        .map(|_| {
            (0..values.len())
                .map(|_| values[rng.random_range(0..values.len())])
                .sum::<f64>()
                / values.len() as f64
        })
        .collect();
    means.sort_by(|a, b| a.total_cmp(b));
    (means[25], means[974])
}

/// Percentile bootstrap (1000 resamples) of the mean over problems, resampling whole
/// clusters (`clusters[i]` is problem i's): the mean of a draw is its problems' sum over
/// its problems' count. With every cluster a single problem this is [`bootstrap_ci`]'s
/// design.
pub fn cluster_bootstrap_ci(values: &[f64], clusters: &[u64], seed: u64) -> (f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0);
    }
    let mut groups: std::collections::BTreeMap<u64, (f64, usize)> = Default::default();
    for (i, &v) in values.iter().enumerate() {
        // A problem without a cluster id is its own cluster.
        let key = clusters.get(i).copied().unwrap_or(u64::MAX - i as u64);
        let e = groups.entry(key).or_default();
        e.0 += v;
        e.1 += 1;
    }
    let g: Vec<(f64, usize)> = groups.into_values().collect();
    let means = resampled_means(&g, 1000, seed);
    (means[25], means[974])
}

/// `draws` bootstrap means over clusters given as (sum, count), each draw resampling
/// whole clusters with replacement (its sum over its count); sorted.
fn resampled_means(g: &[(f64, usize)], draws: usize, seed: u64) -> Vec<f64> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut means: Vec<f64> = (0..draws)
        .map(|_| {
            let (mut sum, mut count) = (0.0, 0usize);
            for _ in 0..g.len() {
                let (s, c) = g[rng.random_range(0..g.len())];
                sum += s;
                count += c;
            }
            sum / count.max(1) as f64
        })
        .collect();
    means.sort_by(|a, b| a.total_cmp(b));
    means
}

/// Removes the per-problem counts (`correct`) from every evaluation object in `v`, for
/// printed summaries.
pub fn strip_per_problem(v: &mut serde_json::Value) {
    match v {
        serde_json::Value::Object(o) => {
            if o.contains_key("pass@1") {
                o.remove("correct");
            }
            for x in o.values_mut() {
                strip_per_problem(x);
            }
        }
        serde_json::Value::Array(a) => a.iter_mut().for_each(strip_per_problem),
        _ => {}
    }
}

/// A paired difference with its interval.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PairedDiff {
    pub mean: f64,
    pub ci95: (f64, f64),
}

/// Mean of `a - b` over the same problems, with a 95% cluster bootstrap interval:
/// `cluster[i]` names problem i's cluster (Countdown: its number multiset), and whole
/// clusters are resampled, since problems sharing numbers are not independent.
pub fn paired_bootstrap(a: &[f64], b: &[f64], cluster: &[u64], seed: u64) -> PairedDiff {
    let n = a.len().min(b.len()).min(cluster.len());
    if n == 0 {
        return PairedDiff::default();
    }
    let mut groups: std::collections::BTreeMap<u64, (f64, usize)> = Default::default();
    for i in 0..n {
        let e = groups.entry(cluster[i]).or_default();
        e.0 += a[i] - b[i];
        e.1 += 1;
    }
    let g: Vec<(f64, usize)> = groups.into_values().collect();
    let mean = g.iter().map(|x| x.0).sum::<f64>() / n as f64;
    let means = resampled_means(&g, 2000, seed);
    PairedDiff {
        mean,
        ci95: (means[50], means[1949]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Problems that share a multiset move together: resampling multisets widens the
    /// interval; with every problem its own multiset it matches the problem bootstrap's
    /// width.
    #[test]
    fn multiset_intervals_are_wider_when_problems_cluster() {
        // 40 problems in 4 multisets of 10, each multiset all solved or all failed.
        let v: Vec<f64> = (0..40).map(|i| ((i / 10) % 2) as f64).collect();
        let grouped: Vec<u64> = (0..40).map(|i| (i / 10) as u64).collect();
        let single: Vec<u64> = (0..40).collect();
        let (lo_g, hi_g) = cluster_bootstrap_ci(&v, &grouped, 1);
        let (lo_s, hi_s) = cluster_bootstrap_ci(&v, &single, 1);
        let (lo_b, hi_b) = bootstrap_ci(&v, 1);
        assert!(
            hi_g - lo_g > 1.5 * (hi_s - lo_s),
            "{lo_g}-{hi_g} vs {lo_s}-{hi_s}"
        );
        assert!(((hi_s - lo_s) - (hi_b - lo_b)).abs() < 0.1);
    }

    #[test]
    fn pass_at_k_matches_the_closed_form() {
        // n=4, c=1, k=2: 1 - C(3,2)/C(4,2) = 1 - 3/6 = 0.5
        assert!((pass_at_k(4, 1, 2) - 0.5).abs() < 1e-12);
        assert_eq!(pass_at_k(10, 0, 5), 0.0);
        assert_eq!(pass_at_k(10, 6, 5), 1.0);
        // k = 1 is the fraction correct.
        assert!((pass_at_k(32, 5, 1) - 5.0 / 32.0).abs() < 1e-12);
        // n = k: any correct sample means success.
        assert_eq!(pass_at_k(8, 1, 8), 1.0);
    }

    #[test]
    fn paired_bootstrap_by_cluster() {
        // Identical arms: difference 0 with a degenerate interval.
        let a = [0.5, 0.25, 0.0, 1.0];
        let d = paired_bootstrap(&a, &a, &[1, 1, 2, 3], 7);
        assert_eq!((d.mean, d.ci95), (0.0, (0.0, 0.0)));
        // A constant gain of 0.1 on every problem: the interval is that point.
        let b: Vec<f64> = a.iter().map(|x| x - 0.1).collect();
        let d = paired_bootstrap(&a, &b, &[1, 1, 2, 3], 7);
        assert!((d.mean - 0.1).abs() < 1e-12);
        assert!((d.ci95.0 - 0.1).abs() < 1e-9 && (d.ci95.1 - 0.1).abs() < 1e-9);
        // Gains confined to one of two clusters: resampling clusters gives a wide
        // interval that still contains the mean.
        let a2 = [1.0, 1.0, 0.0, 0.0];
        let b2 = [0.0, 0.0, 0.0, 0.0];
        let d = paired_bootstrap(&a2, &b2, &[1, 1, 2, 2], 3);
        assert!((d.mean - 0.5).abs() < 1e-12);
        assert!(d.ci95.0 <= 0.0 + 1e-12 && d.ci95.1 >= 1.0 - 1e-12, "{d:?}");
    }

    #[test]
    fn printed_summaries_leave_out_per_problem_counts() {
        let r = summarise(&[0, 4, 2, 0], 4, "test".into(), 1, &[1, 2, 3, 4]);
        assert_eq!(r.correct, vec![0, 4, 2, 0]);
        let mut v = serde_json::json!({"eval_end": r, "runs": [{"pass@1": 0.1, "correct": [1]}]});
        strip_per_problem(&mut v);
        assert!(!v.to_string().contains("correct"), "{v}");
    }

    #[test]
    fn summary_and_interval() {
        let r = summarise(&[0, 4, 2, 0], 4, "test".into(), 1, &[1, 2, 3, 4]);
        assert!((r.pass1 - 0.375).abs() < 1e-12);
        assert!((r.pass_k - 0.5).abs() < 1e-12);
        assert!(r.pass1_ci.0 <= r.pass1 && r.pass1 <= r.pass1_ci.1);
    }
}
