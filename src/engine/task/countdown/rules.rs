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

/// Countdown's rules (a run's [`crate::engine::task::Rules`] carry them flattened).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rules {
    pub use_rule: UseRule,
    /// Every intermediate result must be a non-negative integer.
    pub nonneg_integers: bool,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
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
