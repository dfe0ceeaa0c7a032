//! The three rewards. `binary` is always used for evaluation.
use serde::{Deserialize, Serialize};

use super::{Outcome, Problem, Verdict};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum RewardKind {
    /// 1 correct, 0 otherwise.
    #[default]
    Binary,
    /// TinyZero: 1 correct, 0.1 formatted but wrong, 0 no answer.
    Tinyzero,
    /// Distance reward `1 - 2 min(|y - T| / T, 1)`, -0.9 invalid, -1 no answer.
    Dense,
}

/// A reward name that is not one of the three.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown reward {0:?}; valid rewards: binary, tinyzero, dense")]
pub struct UnknownReward(pub String);

impl std::str::FromStr for RewardKind {
    type Err = UnknownReward;
    fn from_str(s: &str) -> Result<Self, UnknownReward> {
        match s {
            "binary" => Ok(RewardKind::Binary),
            "tinyzero" => Ok(RewardKind::Tinyzero),
            "dense" => Ok(RewardKind::Dense),
            _ => Err(UnknownReward(s.to_string())),
        }
    }
}

/// The reward of `verdict` on `problem`. The dense reward measures a wrong value against
/// the problem's numeric target (none: as far off as it gets).
pub fn reward(kind: RewardKind, verdict: &Verdict, problem: &Problem) -> f32 {
    match (kind, &verdict.outcome) {
        (_, Outcome::Correct) => 1.0,
        (RewardKind::Binary, _) => 0.0,
        (RewardKind::Tinyzero, Outcome::NoAnswer) => 0.0,
        (RewardKind::Tinyzero, _) => 0.1,
        (RewardKind::Dense, Outcome::NoAnswer) => -1.0,
        (RewardKind::Dense, Outcome::Invalid) => -0.9,
        (RewardKind::Dense, Outcome::WrongValue { value }) => {
            let t = problem.numeric_target().unwrap_or(0.0);
            let rel = if t == 0.0 {
                1.0
            } else {
                ((value - t).abs() / t.abs()).min(1.0)
            };
            (1.0 - 2.0 * rel) as f32
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::task::{countdown, math};

    fn v(outcome: Outcome) -> Verdict {
        Verdict {
            outcome,
            reason: countdown::Reason::NoAnswer.into(),
        }
    }

    #[test]
    fn each_kind_on_each_outcome() {
        let p = countdown::problem("p", vec![50, 50], 100);
        let c = v(Outcome::Correct);
        let w = v(Outcome::WrongValue { value: 75.0 });
        let i = v(Outcome::Invalid);
        let n = v(Outcome::NoAnswer);
        assert_eq!(
            [c.clone(), w.clone(), i.clone(), n.clone()].map(|x| reward(
                RewardKind::Binary,
                &x,
                &p
            )),
            [1.0, 0.0, 0.0, 0.0]
        );
        assert_eq!(
            [c.clone(), w.clone(), i.clone(), n.clone()].map(|x| reward(
                RewardKind::Tinyzero,
                &x,
                &p
            )),
            [1.0, 0.1, 0.1, 0.0]
        );
        assert_eq!(
            [c, w, i, n].map(|x| reward(RewardKind::Dense, &x, &p)),
            [1.0, 0.5, -0.9, -1.0]
        );
        assert_eq!(
            reward(
                RewardKind::Dense,
                &v(Outcome::WrongValue { value: 500.0 }),
                &p
            ),
            -1.0
        );
        // No numeric target: any wrong value is as far off as it gets.
        let m = math::problem("m".into(), "q".into(), "1".into());
        let w = v(Outcome::WrongValue { value: 1.0 });
        assert_eq!(reward(RewardKind::Dense, &w, &m), -1.0);
        assert_eq!("dense".parse::<RewardKind>(), Ok(RewardKind::Dense));
        assert!("x"
            .parse::<RewardKind>()
            .unwrap_err()
            .to_string()
            .contains("binary"));
    }
}
