//! Global frontier selection (DeepSearch section 4): across the whole tree, the next
//! expansion starts at the non-terminal leaf with the highest
//! `l1 tanh(Q(parent)) + l2 H(s) + l3 D(depth)`.
use serde::{Deserialize, Serialize};

/// The depth bonus D.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DepthBonus {
    /// `d`
    Linear,
    /// `ln(d + 1)`
    Log,
    /// `sqrt(d / max_depth)` (the paper's final choice).
    #[default]
    Sqrt,
}

impl DepthBonus {
    pub fn value(self, depth: usize, max_depth: usize) -> f64 {
        let d = depth as f64;
        match self {
            DepthBonus::Linear => d,
            DepthBonus::Log => (d + 1.0).ln(),
            DepthBonus::Sqrt => (d / max_depth.max(1) as f64).sqrt(),
        }
    }
}

/// Weights of the frontier score (paper: l1 0.4, l2 0, l3 0.01; all retunable).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrontierWeights {
    pub l1: f64,
    pub l2: f64,
    pub l3: f64,
    pub bonus: DepthBonus,
    pub max_depth: usize,
}

/// `score(s) = l1 tanh(Q(parent(s))) + l2 H(s) + l3 D(depth(s))`.
pub fn frontier_score(q_parent: f64, entropy: f64, depth: usize, w: &FrontierWeights) -> f64 {
    w.l1 * q_parent.tanh() + w.l2 * entropy + w.l3 * w.bonus.value(depth, w.max_depth)
}

/// Index of the best score; ties go to the first (depth-first pre-order is the caller's
/// order). NaN scores never win.
pub fn argmax_first(scores: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &s) in scores.iter().enumerate() {
        if s.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reproduces_the_worked_frontier_scores() {
        let w = FrontierWeights {
            l1: 0.4,
            l2: 0.0,
            l3: 0.01,
            bonus: DepthBonus::Sqrt,
            max_depth: 64,
        };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(frontier_score(-0.3, 5.0, 16, &w), -0.111525));
        assert!(close(frontier_score(0.5, 0.0, 40, &w), 0.192753));
        assert!(close(frontier_score(0.0, 1.0, 1, &w), 0.00125));
    }

    #[test]
    fn bonuses_and_ties() {
        assert!((DepthBonus::Linear.value(3, 64) - 3.0).abs() < 1e-12);
        assert!((DepthBonus::Log.value(3, 64) - 4f64.ln()).abs() < 1e-12);
        assert_eq!(argmax_first(&[0.1, 0.3, 0.3, f64::NAN]), Some(1));
        assert_eq!(argmax_first(&[f64::NAN]), None);
        assert_eq!(argmax_first(&[]), None);
    }
}
