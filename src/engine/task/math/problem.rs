//! A math problem's question and ground truth, its prompt, and the reasons its verdicts
//! give.
use serde::{Deserialize, Serialize};

use super::boxed::TAIL_CHARS;
use super::verifier::{MathVerifier, Verdict as Check};
use crate::engine::task::{fnv1a, Outcome, Problem, Spec, Verdict};

/// The instruction appended to math questions (the DeepSeek-R1 convention).
pub const MATH_INSTRUCTION: &str =
    "Please reason step by step, and put your final answer within \\boxed{}.";

/// The math part of a [`Problem`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instance {
    /// The problem's text.
    pub question: String,
    /// The ground-truth answer.
    pub answer: String,
}

impl Instance {
    /// The question, then the instruction to box the answer.
    pub fn prompt(&self) -> String {
        format!("{}\n{MATH_INSTRUCTION}", self.question.trim_end())
    }

    /// Identity for deduplication: no numbers, the question's hash.
    pub fn key(&self) -> (Vec<i64>, i64) {
        (Vec::new(), fnv1a(self.question.as_bytes()) as i64)
    }

    /// Judges `completion` with `verifier`'s normalisation.
    pub fn verify(&self, completion: &str, verifier: MathVerifier) -> Verdict<Reason> {
        match verifier.verify(completion, &self.answer) {
            Check::Correct { .. } => Verdict {
                outcome: Outcome::Correct,
                reason: Reason::Correct,
            },
            Check::Wrong { answer, expected } => Verdict::invalid(Reason::MathAnswer {
                got: answer,
                expected,
            }),
            Check::NoAnswer => Verdict::no_answer(Reason::NoBoxed),
        }
    }
}

/// A math problem: its text and ground-truth answer.
pub fn problem(id: String, question: String, answer: String) -> Problem {
    Problem {
        id,
        spec: Spec::Math(Instance { question, answer }),
    }
}

/// Why a math completion got its verdict. The names are those the Countdown verifier's
/// reasons used for math before each task had its own, so stored reasons still read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reason {
    Correct,
    /// The boxed answer differs from the ground truth after normalisation.
    MathAnswer {
        got: String,
        expected: String,
    },
    /// No `\boxed{}` near the end of the completion.
    NoBoxed,
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Correct => write!(f, "correct"),
            Reason::MathAnswer { got, expected } => {
                write!(f, "boxed answer {got:?} is not {expected:?}")
            }
            Reason::NoBoxed => write!(f, "no \\boxed{{}} in the last {TAIL_CHARS} characters"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_and_reasons() {
        let m = Instance {
            question: "What is 6*7? ".into(),
            answer: "42".into(),
        };
        assert_eq!(m.prompt(), format!("What is 6*7?\n{MATH_INSTRUCTION}"));
        let v = m.verify("\\boxed{42}", MathVerifier::Minerva);
        assert!(v.is_correct());
        assert_eq!(v.reason.to_string(), "correct");
        let w = m.verify("\\boxed{41}", MathVerifier::Minerva);
        assert_eq!(w.outcome, Outcome::Invalid);
        assert_eq!(w.reason.to_string(), "boxed answer \"41\" is not \"42\"");
        let n = m.verify("42", MathVerifier::Minerva);
        assert_eq!(n.outcome, Outcome::NoAnswer);
        assert_eq!(
            n.reason.to_string(),
            "no \\boxed{} in the last 300 characters"
        );
    }
}
