//! The rules a run's verifier applies: which task, and that task's settings.
use serde::{Deserialize, Serialize};

use super::{countdown, math, TaskKind};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rules {
    /// Which verifier applies: Countdown's or math's boxed answers.
    #[serde(default)]
    pub task: TaskKind,
    /// Math task: minerva (the paper's released reward, default) or lenient.
    #[serde(default)]
    pub math: math::MathVerifier,
    /// Countdown's rules; flattened, so the stored shape is the one it always had
    /// (`task`, `math`, `use_rule`, `nonneg_integers`).
    #[serde(flatten)]
    pub countdown: countdown::Rules,
}

impl Default for Rules {
    fn default() -> Self {
        Self {
            task: TaskKind::Countdown,
            math: math::MathVerifier::Minerva,
            countdown: countdown::Rules::default(),
        }
    }
}

impl Rules {
    /// Countdown under `rules`.
    pub fn countdown(rules: countdown::Rules) -> Self {
        Self {
            countdown: rules,
            ..Self::default()
        }
    }

    /// Math with the `verifier`'s normalisation.
    pub fn math(verifier: math::MathVerifier) -> Self {
        Self {
            task: TaskKind::Math,
            math: verifier,
            ..Self::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stored_shape_is_flat() {
        let old = r#"{"task":"countdown","math":"minerva","use_rule":"at_most_once","nonneg_integers":false}"#;
        let r: Rules = serde_json::from_str(old).unwrap();
        assert_eq!(r.countdown.use_rule, countdown::UseRule::AtMostOnce);
        assert!(!r.countdown.nonneg_integers);
        assert_eq!(serde_json::to_string(&r).unwrap(), old);
        let m: Rules = serde_json::from_str(r#"{"task":"math"}"#).unwrap();
        assert_eq!(m, Rules::math(math::MathVerifier::Minerva));
    }
}
