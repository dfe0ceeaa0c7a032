//! Selection in search distillation (AlphaZero's pUCT, as the Countdown write-up "Tree
//! Search Distillation for Language Models using PPO" uses it):
//!
//! `pUCT(s, a) = Q(s, a) + c_puct * P(s, a) * sqrt(N(s)) / (1 + N(s, a))`,
//!
//! with `Q = W / N` (0 when unvisited) and the prior `P` the softmax over siblings of each
//! child's sequence log-probability under the current policy. The `uct` switch drops the
//! prior and uses arbor's local UCT (`Q + c sqrt(ln N(s) / N(s, a))`).

/// pUCT of a child with value sum `w`, visits `n` and prior `p`, under a parent visited
/// `n_parent` times.
pub fn puct(w: f64, n: u32, p: f64, n_parent: u32, c_puct: f64) -> f64 {
    let q = if n == 0 { 0.0 } else { w / n as f64 };
    q + c_puct * p * (n_parent as f64).sqrt() / (1.0 + n as f64)
}

/// Softmax over siblings of their sequence log-probabilities (the prior P).
pub fn priors(seq_logprobs: &[f64]) -> Vec<f64> {
    let max = seq_logprobs
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        let n = seq_logprobs.len().max(1) as f64;
        return vec![1.0 / n; seq_logprobs.len()];
    }
    let e: Vec<f64> = seq_logprobs.iter().map(|l| (l - max).exp()).collect();
    let z: f64 = e.iter().sum();
    e.into_iter().map(|x| x / z).collect()
}

/// Index of the first maximal score (creation order breaks ties), none if empty.
pub fn first_max(scores: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &s) in scores.iter().enumerate() {
        match best {
            Some((_, b)) if s <= b => {}
            _ => best = Some((i, s)),
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn puct_matches_the_formula() {
        // Q = 1.5 / 3 = 0.5; bonus 0.5 * 0.25 * sqrt(16) / 4 = 0.125.
        assert!((puct(1.5, 3, 0.25, 16, 0.5) - 0.625).abs() < 1e-12);
        // Unvisited: Q = 0, bonus c * P * sqrt(N).
        assert!((puct(0.0, 0, 0.4, 9, 0.5) - 0.6).abs() < 1e-12);
        // A parent never visited gives no exploration term.
        assert_eq!(puct(0.0, 0, 0.9, 0, 0.5), 0.0);
    }

    #[test]
    fn priors_are_a_softmax_over_siblings() {
        let p = priors(&[(0.5f64).ln(), (0.25f64).ln(), (0.25f64).ln()]);
        assert!((p[0] - 0.5).abs() < 1e-12 && (p[1] - 0.25).abs() < 1e-12);
        assert!((p.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        // Shift invariant and safe for very negative log-probabilities.
        let q = priors(&[-1000.0, -1001.0]);
        let e = 1.0 / (1.0 + (-1f64).exp());
        assert!((q[0] - e).abs() < 1e-12);
        assert_eq!(
            priors(&[f64::NEG_INFINITY, f64::NEG_INFINITY]),
            vec![0.5, 0.5]
        );
    }

    #[test]
    fn pucts_picks_follow_the_prior_then_the_values() {
        // Parent visited once, three unvisited children with priors 0.2, 0.5, 0.3: the
        // highest prior is explored first.
        let p = [0.2, 0.5, 0.3];
        let s: Vec<f64> = p.iter().map(|&p| puct(0.0, 0, p, 1, 0.5)).collect();
        assert_eq!(first_max(&s), Some(1));
        // After it backed up -1 once (N(s) = 2): 0.5 * 0.5 * sqrt(2) / 2 - 1 < the others.
        let s = [
            puct(0.0, 0, 0.2, 2, 0.5),
            puct(-1.0, 1, 0.5, 2, 0.5),
            puct(0.0, 0, 0.3, 2, 0.5),
        ];
        assert_eq!(first_max(&s), Some(2));
        // Ties go to the first child in creation order.
        assert_eq!(first_max(&[0.1, 0.3, 0.3]), Some(1));
        assert_eq!(first_max(&[]), None);
    }
}
