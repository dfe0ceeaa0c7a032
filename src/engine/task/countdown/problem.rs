//! A problem and its prompt: Countdown (numbers and a target), or a math question with
//! its ground-truth answer (`question`, `answer`; the Countdown fields are then empty).
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
    /// A math problem's text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub question: Option<String>,
    /// A math problem's ground-truth answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answer: Option<String>,
}

/// The instruction appended to math questions (the DeepSeek-R1 convention).
pub const MATH_INSTRUCTION: &str =
    "Please reason step by step, and put your final answer within \\boxed{}.";

impl Problem {
    /// A Countdown problem with nothing known about its solutions.
    pub fn new(id: &str, nums: Vec<i64>, target: i64) -> Self {
        Self {
            id: id.to_string(),
            nums,
            target,
            solution: None,
            num_solutions: None,
            min_numbers: None,
            question: None,
            answer: None,
        }
    }

    /// A math problem: its text and ground-truth answer.
    pub fn math(id: String, question: String, answer: String) -> Self {
        Self {
            question: Some(question),
            answer: Some(answer),
            ..Self::new(&id, Vec::new(), 0)
        }
    }

    /// The prompt the policy sees: the numbers, ':', the target, newline: `3 7 12:72\n`.
    pub fn prompt(&self) -> String {
        if let Some(q) = &self.question {
            return format!("{}\n{MATH_INSTRUCTION}", q.trim_end());
        }
        let nums: Vec<String> = self.nums.iter().map(|n| n.to_string()).collect();
        format!("{}:{}\n", nums.join(" "), self.target)
    }

    /// Identity for deduplication: sorted numbers and target.
    pub fn key(&self) -> (Vec<i64>, i64) {
        if let Some(q) = &self.question {
            return (Vec::new(), crate::engine::task::fnv1a(q.as_bytes()) as i64);
        }
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
            question: None,
            answer: None,
        };
        assert_eq!(p.prompt(), "12 3 7:72\n");
        assert_eq!(p.key(), (vec![3, 7, 12], 72));
    }
}
