//! A Countdown problem's numbers and target, and its prompt.
use crate::engine::task::{Problem, Spec};

/// The Countdown part of a [`Problem`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    pub nums: Vec<i64>,
    pub target: i64,
    /// A canonical solution in step format, when known.
    pub solution: Option<String>,
    /// Number of distinct solutions (see `solver`).
    pub num_solutions: Option<u64>,
    /// Fewest numbers a solution needs.
    pub min_numbers: Option<usize>,
}

impl Instance {
    /// Numbers and a target with nothing known about the solutions.
    pub fn new(nums: Vec<i64>, target: i64) -> Self {
        Self {
            nums,
            target,
            solution: None,
            num_solutions: None,
            min_numbers: None,
        }
    }

    /// The prompt the policy sees: the numbers, ':', the target, newline: `3 7 12:72\n`.
    pub fn prompt(&self) -> String {
        let nums: Vec<String> = self.nums.iter().map(|n| n.to_string()).collect();
        format!("{}:{}\n", nums.join(" "), self.target)
    }

    /// The numbers, sorted.
    pub fn multiset(&self) -> Vec<i64> {
        let mut n = self.nums.clone();
        n.sort_unstable();
        n
    }

    /// Identity for deduplication: sorted numbers and target.
    pub fn key(&self) -> (Vec<i64>, i64) {
        (self.multiset(), self.target)
    }

    /// This instance as a problem named `id`.
    pub fn into_problem(self, id: String) -> Problem {
        Problem {
            id,
            spec: Spec::Countdown(self),
        }
    }
}

/// A Countdown problem with nothing known about its solutions.
pub fn problem(id: &str, nums: Vec<i64>, target: i64) -> Problem {
    Instance::new(nums, target).into_problem(id.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_and_key() {
        let p = Instance::new(vec![12, 3, 7], 72);
        assert_eq!(p.prompt(), "12 3 7:72\n");
        assert_eq!(p.key(), (vec![3, 7, 12], 72));
    }
}
