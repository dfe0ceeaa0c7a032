//! Adaptive training (DeepSearch section 7): a hard subset re-filtered every round by
//! Pass1@K, a cache of verified solutions that lets known problems skip the search, and an
//! optional filter for garbled, endlessly repeating samples.
use std::collections::HashMap;

use serde::{Deserialize, Serialize};

/// When a problem's solutions enter the cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum CacheRule {
    /// The released code: the round's recorded MCTS trajectories were correct for a
    /// fraction f with 0 < f <= delta.
    #[default]
    Code,
    /// The paper: Pass1@K of the current policy is <= delta and the search found a
    /// correct solution.
    Paper,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdaptiveConfig {
    /// Hard-subset filtering and the solution cache (deepsearch only). Default true.
    pub enabled: bool,
    /// Iterations per round; the hard set is re-filtered and the cache merged between
    /// rounds. 0: one pass over the hard set (a round ends when every hard problem was
    /// drawn once). Default 0.
    pub steps_per_round: u64,
    /// K direct samples per problem for Pass1@K (paper: 4).
    pub filter_k: usize,
    /// Keep a problem while Pass1@K <= delta (paper: 0.25). (R)
    pub delta: f64,
    /// Use cached solutions to skip the search. Default true.
    pub cache: bool,
    pub cache_rule: CacheRule,
    /// Drop wrong samples that repeat themselves (paper, not in the code). Default false.
    pub repetition_filter: bool,
    /// Problems filtered first, in random order, to see whether filtering pays: if the
    /// filter would keep more than `skip_above` of them, the round skips it and trains
    /// on every problem (the tokens of that sample are still spent and reported). 0:
    /// always filter everything. Default 200.
    pub precheck: usize,
    /// Kept share above which filtering is skipped. Default 0.9.
    pub skip_above: f64,
}

impl Default for AdaptiveConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            steps_per_round: 0,
            filter_k: 4,
            delta: 0.25,
            cache: true,
            cache_rule: CacheRule::Code,
            repetition_filter: false,
            precheck: 200,
            skip_above: 0.9,
        }
    }
}

/// Whether a problem stays in the hard set.
pub fn keep_in_hard_set(correct: usize, k: usize, delta: f64) -> bool {
    k == 0 || (correct as f64 / k as f64) <= delta + 1e-12
}

/// Whether a searched problem's solutions are registered under the code rule.
pub fn register_by_code_rule(correct: usize, recorded: usize, delta: f64) -> bool {
    if recorded == 0 || correct == 0 {
        return false;
    }
    correct as f64 / recorded as f64 <= delta + 1e-12
}

/// Verified solutions by problem index, as response tokens ending in EOS.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SolutionCache {
    solutions: HashMap<usize, Vec<Vec<u32>>>,
}

impl SolutionCache {
    pub fn len(&self) -> usize {
        self.solutions.len()
    }

    pub fn is_empty(&self) -> bool {
        self.solutions.is_empty()
    }

    pub fn get(&self, problem: usize) -> Option<&[Vec<u32>]> {
        self.solutions.get(&problem).map(|v| v.as_slice())
    }

    /// Adds solutions (EOS appended when missing), skipping duplicates. Returns whether
    /// the problem was new to the cache.
    pub fn register(&mut self, problem: usize, solutions: Vec<Vec<u32>>, eos: u32) -> bool {
        let entry = self.solutions.entry(problem);
        let new = matches!(entry, std::collections::hash_map::Entry::Vacant(_));
        let list = entry.or_default();
        for mut s in solutions {
            if s.last() != Some(&eos) {
                s.push(eos);
            }
            if !list.contains(&s) {
                list.push(s);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rl::rollout::is_repetitive;

    #[test]
    fn filtering_keeps_zero_and_a_quarter() {
        // The released data keeps Pass1@4 of 0 and 0.25.
        assert!(keep_in_hard_set(0, 4, 0.25));
        assert!(keep_in_hard_set(1, 4, 0.25));
        assert!(!keep_in_hard_set(2, 4, 0.25));
    }

    #[test]
    fn code_rule_registers_rarely_solved_problems_only() {
        assert!(!register_by_code_rule(0, 8, 0.25));
        assert!(register_by_code_rule(1, 8, 0.25));
        assert!(register_by_code_rule(2, 8, 0.25));
        assert!(!register_by_code_rule(3, 8, 0.25));
    }

    #[test]
    fn cache_appends_eos_and_merges() {
        let mut c = SolutionCache::default();
        assert!(c.register(3, vec![vec![5, 6]], 2));
        assert!(!c.register(3, vec![vec![5, 6, 2], vec![7, 2]], 2));
        assert_eq!(c.get(3).unwrap(), &[vec![5, 6, 2], vec![7, 2]]);
        assert_eq!(c.len(), 1);
        assert!(c.get(4).is_none());
    }

    #[test]
    fn repetition_detector() {
        assert!(is_repetitive("3+4=7\n3+4=7\n3+4=7\nans 7"));
        assert!(is_repetitive("1+1=21+1=21+1=21+1=2"));
        assert!(!is_repetitive("12-7=5\n5*3=15\nans 15"));
    }
}
