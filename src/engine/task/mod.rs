//! The task a run trains on, behind one trait: its prompt, its verifier (with a reason),
//! the answer a completion claims, its problem files, and a judgement of every search
//! step. Countdown (exact arithmetic over the given numbers) and math with boxed answers
//! are peers in this folder; a new task is one more implementation of [`Task`].
use std::path::Path;

use rand::RngCore;

use serde::{Deserialize, Serialize};

pub mod countdown;
pub mod data;
pub mod math;
pub mod problem;
pub mod reward;
pub mod rules;
pub mod verdict;

pub use data::{write_jsonl, DataError, LineError};
pub use problem::{Problem, Spec};
pub use reward::{reward, RewardKind, UnknownReward};
pub use rules::Rules;
pub use verdict::{Outcome, Reason, Verdict};

/// Which task a run uses (the config's `data.task`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TaskKind {
    #[default]
    Countdown,
    /// JSONL problems with a ground-truth `answer`; the completion's last `\boxed{}`.
    Math,
}

/// A task name that is neither `countdown` nor `math`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown task {0:?}; expected countdown or math")]
pub struct UnknownTask(pub String);

impl std::str::FromStr for TaskKind {
    type Err = UnknownTask;
    fn from_str(s: &str) -> Result<Self, UnknownTask> {
        match s {
            "countdown" => Ok(TaskKind::Countdown),
            "math" => Ok(TaskKind::Math),
            o => Err(UnknownTask(o.to_string())),
        }
    }
}

/// What the task says of a search path after a step (the text of the steps so far).
#[derive(Clone, Debug, PartialEq)]
pub enum StepJudgement {
    /// The path is lost (a rule is broken): the node becomes a wrong terminal at once,
    /// with the verifier's reason.
    Invalid(String),
    /// Exactly one continuation is legal (Countdown's answer line once one number is
    /// left): the node is expanded with width 1.
    Forced,
    /// Nothing to say: expand as usual.
    Open,
    /// The path already states its answer; what follows cannot change the verdict, so the
    /// node is a terminal with it.
    Decided { correct: bool, reason: String },
}

/// How a search node's step was judged, as stored and exported (`step`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepKind {
    #[default]
    Open,
    Forced,
    Invalid,
}

impl StepKind {
    pub fn name(self) -> &'static str {
        match self {
            StepKind::Open => "open",
            StepKind::Forced => "forced",
            StepKind::Invalid => "invalid",
        }
    }
}

/// A task: everything the trainer, the search and the evaluation need to know of it.
/// Problems of another task get no answer (`verify`), nothing to say (`judge_step`) and
/// no demonstration.
pub trait Task {
    fn name(&self) -> &'static str;
    /// The prompt the policy sees.
    fn prompt(&self, problem: &Problem) -> String {
        problem.prompt()
    }
    /// Judges a whole completion, with a reason.
    fn verify(&self, problem: &Problem, completion: &str) -> Verdict;
    /// The answer a completion claims (for majority votes), if any.
    fn claimed_answer(&self, completion: &str) -> Option<String>;
    /// Judges the path after a step; `response` is the text of the steps so far.
    fn judge_step(&self, problem: &Problem, response: &str) -> StepJudgement;
    /// Reads a JSONL problem file; errors name the file and line.
    fn load(&self, path: &Path) -> Result<Vec<Problem>, DataError>;
    /// A response the warm start imitates (legal steps, whatever they reach), if the
    /// task has such demonstrations.
    fn demonstration(&self, problem: &Problem, rng: &mut dyn RngCore) -> Option<String>;
}

/// Countdown under its preset's rules.
pub struct CountdownTask(pub countdown::Rules);

impl Task for CountdownTask {
    fn name(&self) -> &'static str {
        "countdown"
    }
    fn verify(&self, problem: &Problem, completion: &str) -> Verdict {
        match problem.countdown() {
            Some(c) => countdown::verify(c, completion, &self.0).neutral(),
            None => Verdict::no_answer(countdown::Reason::NoAnswer.into()),
        }
    }
    /// The right-hand side of the last `=` line (or `ans` line), or the inside of the last
    /// `<answer>` tag.
    fn claimed_answer(&self, text: &str) -> Option<String> {
        if let Some(start) = text.rfind("<answer>") {
            let rest = &text[start + "<answer>".len()..];
            let inner = rest.split("</answer>").next().unwrap_or(rest);
            let v: String = inner.chars().filter(|c| !c.is_whitespace()).collect();
            return (!v.is_empty()).then_some(v);
        }
        text.lines()
            .rev()
            .find_map(|l| {
                let l = l.trim();
                l.strip_prefix("ans")
                    .map(|r| r.trim().to_string())
                    .or_else(|| l.rsplit_once('=').map(|(_, r)| r.trim().to_string()))
            })
            .filter(|r| !r.is_empty())
    }
    fn judge_step(&self, problem: &Problem, response: &str) -> StepJudgement {
        match problem.countdown() {
            Some(c) => countdown::step::judge_step(c, response, &self.0),
            None => StepJudgement::Open,
        }
    }
    fn load(&self, path: &Path) -> Result<Vec<Problem>, DataError> {
        countdown::load_jsonl(path)
    }
    /// A random legal trace over the numbers (the target is ignored on purpose).
    fn demonstration(&self, problem: &Problem, mut rng: &mut dyn RngCore) -> Option<String> {
        let c = problem.countdown()?;
        Some(countdown::random_trace(&c.nums, &self.0, &mut rng))
    }
}

/// Math with boxed answers; steps are never judged (`open`).
pub struct MathTask(pub math::MathVerifier);

impl Task for MathTask {
    fn name(&self) -> &'static str {
        "math"
    }
    fn verify(&self, problem: &Problem, completion: &str) -> Verdict {
        match problem.math() {
            Some(m) => m.verify(completion, self.0).neutral(),
            None => Verdict::no_answer(math::Reason::NoBoxed.into()),
        }
    }
    /// The last `\boxed{}` near the end, normalised as the verifier compares it.
    fn claimed_answer(&self, completion: &str) -> Option<String> {
        math::last_boxed(completion)
            .map(|b| self.0.normalize(b))
            .filter(|b| !b.is_empty())
    }
    fn judge_step(&self, _: &Problem, _: &str) -> StepJudgement {
        StepJudgement::Open
    }
    fn load(&self, path: &Path) -> Result<Vec<Problem>, DataError> {
        math::load_math_jsonl(path)
    }
    fn demonstration(&self, _: &Problem, _: &mut dyn RngCore) -> Option<String> {
        None
    }
}

/// The task that `rules` (which carry the run's task kind) describe.
pub fn task_of(rules: &Rules) -> Box<dyn Task> {
    match rules.task {
        TaskKind::Countdown => Box::new(CountdownTask(rules.countdown)),
        TaskKind::Math => Box::new(MathTask(rules.math)),
    }
}

/// Judges `completion` for `problem` with the verifier of `rules.task` (called for every
/// sample, so the task is not boxed).
pub fn verify(problem: &Problem, completion: &str, rules: &Rules) -> Verdict {
    match rules.task {
        TaskKind::Countdown => CountdownTask(rules.countdown).verify(problem, completion),
        TaskKind::Math => MathTask(rules.math).verify(problem, completion),
    }
}

/// FNV-1a, for stable cache keys (std's hasher is not stable across releases).
pub fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn math_problems_are_judged_by_their_boxed_answer() {
        let p = math::problem("m".into(), "What is 6*7?".into(), "42".into());
        let rules = Rules::math(math::MathVerifier::Minerva);
        assert!(verify(&p, "6*7 = 42, so \\boxed{42}", &rules).is_correct());
        let w = verify(&p, "\\boxed{41}", &rules);
        assert_eq!(w.reason.to_string(), "boxed answer \"41\" is not \"42\"");
        assert_eq!(verify(&p, "42", &rules).outcome, Outcome::NoAnswer);
        let t = task_of(&rules);
        assert_eq!(t.claimed_answer("so \\boxed{ 42 }"), Some("42".into()));
        assert_eq!(t.claimed_answer("no box"), None);
        assert_eq!(t.judge_step(&p, "Let x = 6.\n"), StepJudgement::Open);
        assert_eq!(t.demonstration(&p, &mut rand::rng()), None);
        // A problem of another task has no answer for this one.
        let c = countdown::problem("c", vec![4, 6], 10);
        assert_eq!(verify(&c, "\\boxed{10}", &rules).outcome, Outcome::NoAnswer);
        let cd = Rules::default();
        assert_eq!(verify(&p, "ans 42", &cd).outcome, Outcome::NoAnswer);
        assert_eq!(task_of(&cd).judge_step(&p, "4+6=10\n"), StepJudgement::Open);
    }

    #[test]
    fn countdown_claims_its_answer_line() {
        let t = task_of(&Rules::default());
        assert_eq!(
            t.claimed_answer("4+6=10\n10+12=22\nans 22"),
            Some("22".into())
        );
        assert_eq!(t.claimed_answer("4+6=10"), Some("10".into()));
        assert_eq!(
            t.claimed_answer("<answer>(4 + 6)</answer>"),
            Some("(4+6)".into())
        );
        assert_eq!(t.claimed_answer("hello"), None);
    }
}
