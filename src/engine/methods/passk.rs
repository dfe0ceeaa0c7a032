//! `passk`: GRPO with the analytic pass@k advantage ("Pass@k Training for Adaptively
//! Balancing Exploration and Exploitation", arXiv 2508.10751, section 3.3), the coverage
//! baseline. A group of N samples with c correct has the group reward
//! R = 1 - C(N-c, k) / C(N, k) (the unbiased pass@k) and sigma = sqrt(R (1 - R)); a
//! correct sample gets (1 - R) / sigma and a wrong one
//! (1 - R - C(N-c-1, k-1) / C(N-1, k-1)) / sigma. At k = 1 this is GRPO's advantage.
//! `anneal_iterations` moves k linearly down to 1 (as PKPO, arXiv 2505.15201, anneals k
//! to keep pass@1). Settings under `[passk]`.
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::engine::methods::{Method, Objective, Prelude, RoundStart};
use crate::engine::rl::config::TrainConfig;
use crate::engine::rl::groups::{sampled_batch, Batch, GroupContext};
use crate::engine::rl::interrupt::Halt;
use crate::engine::task::Problem;

/// `[passk]`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PassKConfig {
    /// The k of the pass@k objective (at most the group size; larger is clamped).
    /// Default 4.
    pub k: usize,
    /// Iterations over which k falls linearly to 1 (0: k stays). Default 0.
    pub anneal_iterations: u64,
}

impl Default for PassKConfig {
    fn default() -> Self {
        Self {
            k: 4,
            anneal_iterations: 0,
        }
    }
}

impl PassKConfig {
    /// The k in force at `iteration` (1-based).
    pub fn k_at(&self, iteration: u64) -> usize {
        if self.anneal_iterations == 0 || self.k <= 1 {
            return self.k.max(1);
        }
        let done = (iteration.saturating_sub(1) as f64 / self.anneal_iterations as f64).min(1.0);
        let k = self.k as f64 - done * (self.k as f64 - 1.0);
        (k.round() as usize).max(1)
    }
}

pub struct PassK {
    cfg: PassKConfig,
    group_size: usize,
    repetition_filter: bool,
    iteration: u64,
}

impl PassK {
    pub fn new(cfg: &PassKConfig, train: &TrainConfig, repetition_filter: bool) -> Self {
        Self {
            cfg: cfg.clone(),
            group_size: train.group_size,
            repetition_filter,
            iteration: 0,
        }
    }
}

impl Method for PassK {
    fn prelude(&mut self, ctx: Prelude) -> Result<Option<RoundStart>, Halt> {
        self.iteration = ctx.iteration;
        Ok(None)
    }

    fn batch(
        &mut self,
        ctx: &mut GroupContext<ChaCha8Rng>,
        problems: &[Problem],
        _idx: &[usize],
    ) -> Result<Batch, Halt> {
        let k = self.cfg.k_at(self.iteration);
        sampled_batch(
            ctx,
            problems,
            self.group_size,
            self.repetition_filter,
            &mut |group| {
                let correct: Vec<bool> = group.iter().map(|t| t.correct()).collect();
                passk_advantages(&correct, k)
            },
        )
    }

    fn objective(&self, train: &TrainConfig) -> Objective {
        Objective::clipped(train, true)
    }
}

/// C(a, k) / C(b, k) for a <= b, as a product (0 when a < k).
fn choose_ratio(a: usize, b: usize, k: usize) -> f64 {
    if a < k {
        return 0.0;
    }
    (0..k).map(|i| (a - i) as f64 / (b - i) as f64).product()
}

/// The pass@k advantage of each sample of a group (binary correctness), k clamped to
/// the group size. All zero when the group's pass@k is 0 or 1 (no signal).
pub fn passk_advantages(correct: &[bool], k: usize) -> Vec<f32> {
    let n = correct.len();
    if n == 0 {
        return Vec::new();
    }
    let k = k.clamp(1, n);
    let c = correct.iter().filter(|&&x| x).count();
    let r = 1.0 - choose_ratio(n - c, n, k);
    let sigma = (r * (1.0 - r)).sqrt();
    if sigma < 1e-12 {
        return vec![0.0; n];
    }
    let pos = (1.0 - r) / sigma;
    let neg = if n - c >= 1 {
        (1.0 - r - choose_ratio(n - c - 1, n - 1, k - 1)) / sigma
    } else {
        0.0
    };
    correct
        .iter()
        .map(|&x| if x { pos as f32 } else { neg as f32 })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rl::objective::{group_advantages, AdvantageNorm};

    #[test]
    fn worked_example_four_samples_one_correct_k2() {
        // R = 1 - C(3,2)/C(4,2) = 0.5, sigma = 0.5; A+ = 1, A- = (0.5 - 2/3)/0.5 = -1/3.
        let a = passk_advantages(&[true, false, false, false], 2);
        assert!((a[0] - 1.0).abs() < 1e-6, "{a:?}");
        for x in &a[1..] {
            assert!((x + 1.0 / 3.0).abs() < 1e-6, "{a:?}");
        }
        // The advantages sum to zero, as the paper's derivation gives.
        assert!(a.iter().sum::<f32>().abs() < 1e-6);
    }

    #[test]
    fn k1_is_grpo_and_certain_groups_carry_no_signal() {
        let c = [true, false, true, false, false, false, false, true];
        let r: Vec<f32> = c.iter().map(|&x| x as u8 as f32).collect();
        let g = group_advantages(&r, AdvantageNorm::MeanStd);
        for (a, b) in passk_advantages(&c, 1).iter().zip(g) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        // 7 of 8 correct at k = 2: every pair holds a correct sample, pass@2 = 1.
        let mut seven = [true; 8];
        seven[0] = false;
        assert!(passk_advantages(&seven, 2).iter().all(|&a| a == 0.0));
        assert!(passk_advantages(&[false; 8], 4).iter().all(|&a| a == 0.0));
    }

    #[test]
    fn larger_k_lifts_the_wrong_samples_of_a_solved_group() {
        let c = [true, false, false, false, false, false, false, false];
        let a1 = passk_advantages(&c, 1);
        let a4 = passk_advantages(&c, 4);
        assert!(
            a4[1] > a1[1],
            "pass@k penalises wrong samples less: {a1:?} {a4:?}"
        );
    }

    #[test]
    fn k_anneals_linearly_to_one() {
        let cfg = PassKConfig {
            k: 4,
            anneal_iterations: 30,
        };
        assert_eq!(cfg.k_at(1), 4);
        assert_eq!(cfg.k_at(16), 3);
        assert_eq!(cfg.k_at(31), 1);
        assert_eq!(cfg.k_at(500), 1);
        assert_eq!(PassKConfig::default().k_at(500), 4);
    }
}
