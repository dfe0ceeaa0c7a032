//! Which answers count: how often each number may be used, and whether intermediate
//! results must be non-negative integers (Stream of Search's rule).
use serde::{Deserialize, Serialize};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum UseRule {
    /// Every number exactly once (TinyZero, Stream of Search).
    #[default]
    ExactlyOnce,
    /// Each number at most once (the distillation write-up's grader).
    AtMostOnce,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rules {
    /// Which verifier applies: Countdown's (these rules) or math's boxed answers.
    #[serde(default)]
    pub task: crate::engine::task::TaskKind,
    /// Math task: minerva (the paper's released reward, default) or lenient.
    #[serde(default)]
    pub math: crate::engine::task::math::MathVerifier,
    pub use_rule: UseRule,
    /// Every intermediate result must be a non-negative integer.
    pub nonneg_integers: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            task: crate::engine::task::TaskKind::Countdown,
            math: crate::engine::task::math::MathVerifier::Minerva,
            use_rule: UseRule::ExactlyOnce,
            nonneg_integers: true,
        }
    }
}

impl Rules {
    /// Whether an intermediate value is allowed.
    pub fn allows(&self, v: &super::Rational) -> bool {
        !self.nonneg_integers || (v.is_integer() && !v.is_negative())
    }
}
