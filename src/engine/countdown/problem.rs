//! A Countdown problem and its prompt.
use serde::{Deserialize, Serialize};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    pub id: String,
    pub nums: Vec<i64>,
    pub target: i64,
    /// A canonical solution in step format, when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub solution: Option<String>,
    /// Number of distinct solutions (see `solver`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_solutions: Option<u64>,
    /// Fewest numbers a solution needs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_numbers: Option<usize>,
}

impl Problem {
    /// The prompt the policy sees: the numbers, ':', the target, newline: `3 7 12:72\n`.
    pub fn prompt(&self) -> String {
        let nums: Vec<String> = self.nums.iter().map(|n| n.to_string()).collect();
        format!("{}:{}\n", nums.join(" "), self.target)
    }

    /// Identity for deduplication: sorted numbers and target.
    pub fn key(&self) -> (Vec<i64>, i64) {
        let mut n = self.nums.clone();
        n.sort_unstable();
        (n, self.target)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompt_and_key() {
        let p = Problem {
            id: "x".into(),
            nums: vec![12, 3, 7],
            target: 72,
            solution: None,
            num_solutions: None,
            min_numbers: None,
        };
        assert_eq!(p.prompt(), "12 3 7:72\n");
        assert_eq!(p.key(), (vec![3, 7, 12], 72));
    }
}
