//! Why a node of a stored tree ended, in one set of words shared by the tree view, its
//! node pane and `arbor export`: right answer, wrong answer, invalid (with the verifier's
//! reason), malformed, capped, unfinished; or continued (an inner node). The store keeps
//! the verifier's reason as text, so the reason's wording is read here, once.
use crate::engine::methods::deepsearch::search::config::StepMode;
use crate::engine::rl::record::{GroupSource, NodeRecord, TreeRecord};
use crate::engine::task::StepKind;
use crate::engine::training::config::RunConfig;

/// Why a node ended.
#[derive(Clone, Debug, PartialEq)]
pub enum Ending {
    /// An inner node: the path goes on below it.
    Continued,
    /// The path stopped without an answer: the completion ended first (the verifier's
    /// reason), or the search never expanded the leaf.
    Unfinished(String),
    /// No answer before a cap: the depth or token limit, or the verifier's input limit.
    Capped(String),
    /// Text that is neither a step nor an answer, with the verifier's reason.
    Malformed(String),
    /// A step or answer that breaks a rule, with the verifier's reason.
    Invalid(String),
    /// An answer that reaches another number, with the verifier's reason.
    WrongAnswer(String),
    RightAnswer,
}

/// The limits a path of a tree ends at: from the run's settings.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Caps {
    /// Search trees: a node this deep ends its path.
    pub depth: Option<u32>,
    /// A step (search) or completion (sampled groups) this many tokens long was cut.
    pub tokens: Option<usize>,
}

impl Caps {
    /// The caps of `tree`'s kind under the run's settings.
    pub fn of(cfg: &RunConfig, tree: &TreeRecord) -> Self {
        match tree.source {
            GroupSource::Search => Caps {
                depth: Some(cfg.search.max_depth as u32),
                tokens: (cfg.search.step == StepMode::Newline)
                    .then_some(cfg.search.step_max_tokens),
            },
            GroupSource::Direct | GroupSource::Cached => Caps {
                depth: None,
                tokens: Some(cfg.train.max_tokens),
            },
            GroupSource::Distill | GroupSource::Branch => Caps::default(),
        }
    }
}

impl Ending {
    /// Why `n` ended (`leaf`: it has no children).
    pub fn of(n: &NodeRecord, leaf: bool, caps: Caps) -> Self {
        if n.correct == Some(true) {
            return Ending::RightAnswer;
        }
        if !n.is_terminal() {
            return if leaf && n.id != 0 {
                Ending::Unfinished("not expanded before the search ended".into())
            } else {
                Ending::Continued
            };
        }
        let reason = n.reason.clone().unwrap_or_default();
        let without_answer = reason == "no answer line" || reason.starts_with("no \\boxed");
        if reason.starts_with("completion is ") && reason.contains(" bytes") {
            return Ending::Capped(reason);
        }
        if without_answer {
            if let Some(d) = caps.depth.filter(|&d| n.depth >= d) {
                return Ending::Capped(format!("depth {d} reached, {reason}"));
            }
            if let Some(t) = caps.tokens.filter(|&t| n.tokens.len() >= t) {
                return Ending::Capped(format!("{t} tokens reached, {reason}"));
            }
            return Ending::Unfinished(reason);
        }
        if reason.ends_with("not a step or an answer") || reason.contains(": unexpected ") {
            return Ending::Malformed(reason);
        }
        let answered = reason.starts_with("reaches ") || reason.starts_with("boxed answer ");
        if answered && n.step != StepKind::Invalid {
            return Ending::WrongAnswer(reason);
        }
        Ending::Invalid(reason)
    }

    /// The kind in a word or two: "right answer", "wrong answer", "invalid", ...
    pub fn kind(&self) -> &'static str {
        match self {
            Ending::Continued => "continued",
            Ending::Unfinished(_) => "unfinished",
            Ending::Capped(_) => "capped",
            Ending::Malformed(_) => "malformed",
            Ending::Invalid(_) => "invalid",
            Ending::WrongAnswer(_) => "wrong answer",
            Ending::RightAnswer => "right answer",
        }
    }

    /// The verifier's reason or the limit, where there is one.
    pub fn reason(&self) -> Option<&str> {
        match self {
            Ending::Unfinished(r)
            | Ending::Capped(r)
            | Ending::Malformed(r)
            | Ending::Invalid(r)
            | Ending::WrongAnswer(r) => Some(r.as_str()).filter(|r| !r.is_empty()),
            Ending::Continued | Ending::RightAnswer => None,
        }
    }

    /// "invalid: step 1: result is 10, not 1", or the kind alone.
    pub fn words(&self) -> String {
        match self.reason() {
            Some(r) => format!("{}: {r}", self.kind()),
            None => self.kind().to_string(),
        }
    }
}

/// Why each node of `tree` ended, by node id order of `tree.nodes`.
pub fn endings(tree: &TreeRecord, caps: Caps) -> Vec<Ending> {
    let mut has_children = vec![false; tree.nodes.len()];
    let index: std::collections::HashMap<u32, usize> = tree
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (n.id, i))
        .collect();
    for n in &tree.nodes {
        if let Some(i) = n.parent.and_then(|p| index.get(&p)) {
            has_children[*i] = true;
        }
    }
    tree.nodes
        .iter()
        .zip(has_children)
        .map(|(n, kids)| Ending::of(n, !kids, caps))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::task::countdown::verifier::Reason;
    use crate::engine::task::math::Reason as MathReason;
    use crate::engine::task::Reason as TaskReason;

    fn terminal(reason: impl Into<TaskReason>, depth: u32, tokens: usize) -> NodeRecord {
        let reason = reason.into();
        let correct = reason == TaskReason::Countdown(Reason::Correct);
        let mut n = NodeRecord::blank(3, Some(0), depth);
        n.tokens = vec![1; tokens];
        n.terminal_value = Some(if correct { 1.0 } else { -1.0 });
        n.correct = Some(correct);
        n.reason = Some(reason.to_string());
        n
    }

    /// Every verifier reason reads as one ending, in the words the views and the export
    /// write.
    #[test]
    fn every_verifier_reason_has_its_ending() {
        let caps = Caps {
            depth: Some(8),
            tokens: Some(24),
        };
        let kind =
            |r: TaskReason, depth, tokens| Ending::of(&terminal(r, depth, tokens), true, caps);
        let cases = [
            (Reason::Correct, "right answer"),
            (
                Reason::WrongValue {
                    got: "9".into(),
                    target: 15,
                },
                "wrong answer",
            ),
            (Reason::Malformed { line: 1 }, "malformed"),
            (
                Reason::BadToken {
                    line: 1,
                    found: 'a',
                },
                "malformed",
            ),
            (Reason::NoAnswer, "unfinished"),
            (Reason::TooLong { bytes: 9000 }, "capped"),
            (Reason::NumberNotAvailable { line: 1, number: 4 }, "invalid"),
            (Reason::NumberReused { number: 4 }, "invalid"),
            (Reason::NumbersMissing { missing: vec![3] }, "invalid"),
            (
                Reason::WrongArithmetic {
                    line: 1,
                    claimed: 1,
                    actual: "10".into(),
                },
                "invalid",
            ),
            (Reason::DivisionByZero { line: 1 }, "invalid"),
            (
                Reason::BadIntermediate {
                    line: 1,
                    value: "1/2".into(),
                },
                "invalid",
            ),
            (Reason::TooLarge { line: 1 }, "invalid"),
            (Reason::TooDeep, "invalid"),
        ];
        let math = [
            (
                MathReason::MathAnswer {
                    got: "1".into(),
                    expected: "2".into(),
                },
                "wrong answer",
            ),
            (MathReason::NoBoxed, "unfinished"),
        ];
        let cases = cases
            .into_iter()
            .map(|(r, w)| (TaskReason::from(r), w))
            .chain(math.into_iter().map(|(r, w)| (TaskReason::from(r), w)));
        for (r, want) in cases {
            let e = kind(r.clone(), 2, 5);
            assert_eq!(e.kind(), want, "{r:?}");
            if r != TaskReason::Countdown(Reason::Correct) {
                assert_eq!(e.words(), format!("{want}: {r}"));
            }
        }
        // No answer at a cap: capped, with the cap.
        assert_eq!(
            kind(Reason::NoAnswer.into(), 8, 5).words(),
            "capped: depth 8 reached, no answer line"
        );
        assert_eq!(kind(Reason::NoAnswer.into(), 2, 24).kind(), "capped");
        // A wrong answer judged on its step is still the verifier's wrong answer; a step
        // judged invalid for breaking a rule is invalid.
        let mut n = terminal(
            Reason::WrongArithmetic {
                line: 1,
                claimed: 1,
                actual: "10".into(),
            },
            1,
            3,
        );
        n.step = StepKind::Invalid;
        assert_eq!(
            Ending::of(&n, true, caps).words(),
            "invalid: step 1: result is 10, not 1"
        );
        // Open nodes: a leaf the search left is unfinished, an inner node continued.
        let open = NodeRecord::blank(4, Some(0), 1);
        assert_eq!(Ending::of(&open, true, caps).kind(), "unfinished");
        assert_eq!(Ending::of(&open, false, caps), Ending::Continued);
    }

    /// The malformed line of issue 27 is called malformed, with the verifier's reason.
    #[test]
    fn a_malformed_answer_line_says_so() {
        use crate::engine::task::countdown::problem::Instance;
        use crate::engine::task::countdown::rules::Rules;
        use crate::engine::task::countdown::verifier::verify;
        let p = Instance::new(vec![2, 8], 10);
        let v = verify(&p, "2+8=1ans 1", &Rules::default());
        let n = terminal(v.reason.clone(), 1, 5);
        let e = Ending::of(&n, true, Caps::default());
        assert_eq!(e.kind(), "malformed", "{:?}", v.reason);
    }
}
