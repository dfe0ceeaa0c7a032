//! Countdown's step judgement: after each complete line the verifier already knows
//! whether the path is lost (a rule broken), decided (an answer line written) or has one
//! legal continuation left (one number remains under "exactly once": `ans <it>`).
use super::rules::UseRule;
use super::verifier::{replay_lines, Replay};
use super::{Instance, Rules};
use crate::engine::task::StepJudgement;

/// Judges the response so far (`text`: the steps on the path, each ending in a newline).
pub fn judge_step(problem: &Instance, text: &str, rules: &Rules) -> StepJudgement {
    match replay_lines(problem, text, rules) {
        Replay::Broken(reason) => StepJudgement::Invalid(reason.to_string()),
        Replay::Answered(v) => StepJudgement::Decided {
            correct: v.is_correct(),
            reason: v.reason.to_string(),
        },
        Replay::Remaining(pool) => {
            if rules.use_rule == UseRule::ExactlyOnce && pool.len() == 1 {
                StepJudgement::Forced
            } else {
                StepJudgement::Open
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p() -> Instance {
        Instance::new(vec![4, 6, 12], 18)
    }

    fn judge(text: &str) -> StepJudgement {
        judge_step(&p(), text, &Rules::default())
    }

    fn invalid(text: &str) -> String {
        match judge(text) {
            StepJudgement::Invalid(r) => r,
            o => panic!("{text:?}: expected invalid, got {o:?}"),
        }
    }

    #[test]
    fn legal_steps_are_open_until_one_number_is_left() {
        assert_eq!(judge(""), StepJudgement::Open);
        assert_eq!(judge("4+6=10\n"), StepJudgement::Open);
        assert_eq!(judge("4+6=10\n10+12=22\n"), StepJudgement::Forced);
        // An unfinished line is not judged yet.
        assert_eq!(judge("4+6=10\n10+1"), StepJudgement::Open);
    }

    #[test]
    fn each_broken_rule_is_invalid_with_the_verifiers_reason() {
        assert_eq!(invalid("4/1=4\n"), "line 1: 1 is not available");
        assert_eq!(invalid("6*16=126\n"), "line 1: 16 is not available");
        assert_eq!(invalid("6*12=70\n"), "step 1: result is 72, not 70");
        assert_eq!(invalid("4+6=10\n4+12=16\n"), "number 4 reused");
        assert_eq!(
            invalid("4-6=-2\n"),
            "line 1: -2 is not a non-negative integer"
        );
        assert_eq!(
            invalid("4/6=0\n"),
            "line 1: 2/3 is not a non-negative integer"
        );
        assert_eq!(invalid("4x6=24\n"), "line 1: unexpected 'x'");
        assert_eq!(invalid("4+=10\n"), "line 1: not a step or an answer");
        assert_eq!(invalid("12/0=0\n"), "line 1: 0 is not available");
        assert!(invalid("99999999999999999999+1=2\n").contains("too large"));
    }

    #[test]
    fn a_written_answer_decides_the_path() {
        assert_eq!(
            judge("4+6=10\n10+12=22\nans 22\n"),
            StepJudgement::Decided {
                correct: false,
                reason: "reaches 22, target is 18".into()
            }
        );
        assert_eq!(
            judge("12-6=6\n6*4=24\nans 24\n"),
            StepJudgement::Decided {
                correct: false,
                reason: "reaches 24, target is 18".into()
            }
        );
        let ok = Instance::new(vec![4, 6, 12], 22);
        assert_eq!(
            judge_step(&ok, "4+6=10\n10+12=22\nans 22\n", &Rules::default()),
            StepJudgement::Decided {
                correct: true,
                reason: "correct".into()
            }
        );
    }

    #[test]
    fn at_most_once_never_forces() {
        let rules = Rules {
            use_rule: UseRule::AtMostOnce,
            ..Rules::default()
        };
        assert_eq!(
            judge_step(&p(), "4+6=10\n10+12=22\n", &rules),
            StepJudgement::Open
        );
    }
}
