//! What a right answer to a stored problem looks like, shown beside its samples: for
//! Countdown a solution from the exact solver (the numbers and target are read from the
//! prompt, the rules from the run's preset); for math the reference answer, read from the
//! verifier's words on a wrong boxed answer (`boxed answer "1" is not "2"`) or from a
//! sample judged right. Nothing here is trained on; it is read for the researcher.
use crate::engine::rl::record::TreeRecord;
use crate::engine::task::countdown::{solve, Preset};
use crate::engine::task::math::last_boxed;
use crate::engine::task::TaskKind;
use crate::engine::training::config::RunConfig;

/// A problem's ground truth, in words for the samples view.
#[derive(Clone, Debug, PartialEq)]
pub enum GroundTruth {
    /// A Countdown solution (steps, then the answer line) and how many there are.
    Solution { steps: String, count: u64 },
    /// No solution reaches the target under the run's rules.
    Unsolvable { target: i64 },
    /// A math problem's reference answer.
    Answer(String),
    /// Not known from what the store holds, and why.
    Unknown(&'static str),
}

impl GroundTruth {
    /// The ground truth of `tree`'s problem under the run's settings.
    pub fn of(cfg: &RunConfig, tree: &TreeRecord) -> Self {
        match cfg.data.task {
            TaskKind::Countdown => countdown(cfg, &tree.prompt),
            TaskKind::Math => math(tree),
        }
    }

    /// One line: "12-7=5 · 5*3=15 · ans 15 (3 solutions)".
    pub fn line(&self) -> String {
        match self {
            GroundTruth::Solution { steps, count } => {
                let steps: Vec<&str> = steps.lines().collect();
                let more = match count {
                    1 => "the only solution".to_string(),
                    n => format!("1 of {n} solutions"),
                };
                format!("{} ({more})", steps.join(" · "))
            }
            GroundTruth::Unsolvable { target } => {
                format!("no solution reaches {target} under the run's rules")
            }
            GroundTruth::Answer(a) => format!("reference answer {a}"),
            GroundTruth::Unknown(why) => format!("unknown: {why}"),
        }
    }
}

/// Numbers and target of a Countdown prompt, `3 7 12:72`.
pub fn countdown_numbers(prompt: &str) -> Option<(Vec<i64>, i64)> {
    let (nums, target) = prompt.trim().split_once(':')?;
    let nums: Option<Vec<i64>> = nums.split_whitespace().map(|n| n.parse().ok()).collect();
    Some((nums?, target.trim().parse().ok()?))
}

/// The Countdown rules of the run's preset (the defaults for a preset this build does
/// not know).
pub fn preset_rules(cfg: &RunConfig) -> crate::engine::task::countdown::Rules {
    Preset::by_name(&cfg.data.preset)
        .map(|p| p.rules)
        .unwrap_or_default()
}

fn countdown(cfg: &RunConfig, prompt: &str) -> GroundTruth {
    let Some((nums, target)) = countdown_numbers(prompt) else {
        return GroundTruth::Unknown("the prompt is not numbers:target");
    };
    // The solver is exhaustive: more numbers than a prompt ever has would take long.
    if nums.len() > 6 {
        return GroundTruth::Unknown("more than 6 numbers: not solved here");
    }
    let rules = preset_rules(cfg);
    match solve(&nums, &rules).get(target) {
        Some(s) => GroundTruth::Solution {
            steps: s.canonical.clone(),
            count: s.count,
        },
        None => GroundTruth::Unsolvable { target },
    }
}

fn math(tree: &TreeRecord) -> GroundTruth {
    // The verifier names the reference when it refuses a boxed answer.
    let refused = tree.nodes.iter().find_map(|n| {
        let r = n.reason.as_deref()?.strip_prefix("boxed answer ")?;
        let (_, expected) = r.split_once(" is not ")?;
        Some(serde_json::from_str::<String>(expected).unwrap_or_else(|_| expected.into()))
    });
    let right = || {
        tree.nodes
            .iter()
            .filter(|n| n.correct == Some(true))
            .find_map(|n| last_boxed(&n.text).map(str::to_string))
    };
    match refused.or_else(right) {
        Some(a) => GroundTruth::Answer(a),
        None => GroundTruth::Unknown("no sample says the reference answer"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rl::record::NodeRecord;

    #[test]
    fn a_countdown_prompt_gets_an_exact_solution_and_math_its_reference() {
        assert_eq!(countdown_numbers("3 7 12:72\n"), Some((vec![3, 7, 12], 72)));
        let cfg = RunConfig::default();
        let t = TreeRecord::direct("p", "2 8:10\n");
        let g = GroundTruth::of(&cfg, &t);
        assert!(matches!(g, GroundTruth::Solution { .. }), "{g:?}");
        assert!(
            g.line().ends_with("ans 10 (the only solution)"),
            "{}",
            g.line()
        );
        let t = TreeRecord::direct("p", "2 8:99\n");
        assert_eq!(
            GroundTruth::of(&cfg, &t),
            GroundTruth::Unsolvable { target: 99 }
        );
        let mut cfg = RunConfig::default();
        cfg.data.task = TaskKind::Math;
        let mut t = TreeRecord::direct("p", "What is 1+1?");
        let mut n = NodeRecord::blank(1, Some(0), 1);
        n.reason = Some(r#"boxed answer "3" is not "2""#.into());
        t.nodes.push(n);
        assert_eq!(GroundTruth::of(&cfg, &t), GroundTruth::Answer("2".into()));
    }
}
