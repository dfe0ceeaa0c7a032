//! Generator presets: arbor's default and the public variants: TinyZero, Stream of Search and the tree-search distillation write-up.
use serde::{Deserialize, Serialize};

use super::{Rules, UseRule};

/// How a problem's target is chosen among the values its numbers reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TargetChoice {
    /// Uniform over the distinct reachable integers in the target range.
    UniformReachable,
    /// The value of a random legal combination of all the numbers (retried until it is
    /// in range): common values come up as often as random play reaches them.
    RandomExpression,
    /// The value reached least often by `samples` random expressions (the distillation
    /// write-up's "rarest of 10,000 random combinations").
    Rarest { samples: usize },
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Preset {
    pub name: String,
    /// Fewest and most numbers per problem.
    pub count_min: usize,
    pub count_max: usize,
    /// Range of each number (inclusive).
    pub num_min: i64,
    pub num_max: i64,
    /// Range of the target (inclusive).
    pub target_min: i64,
    pub target_max: i64,
    pub rules: Rules,
    pub target_choice: TargetChoice,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown preset {0:?}; valid presets: default, default4, tinyzero, sos, distill")]
pub struct PresetError(pub String);

impl Preset {
    pub fn names() -> [&'static str; 5] {
        ["default", "default4", "tinyzero", "sos", "distill"]
    }

    pub fn by_name(name: &str) -> Result<Preset, PresetError> {
        let p =
            |count_min, count_max, num_max, target_min, target_max, rules, target_choice| Preset {
                name: name.to_string(),
                count_min,
                count_max,
                num_min: 1,
                num_max,
                target_min,
                target_max,
                rules,
                target_choice,
            };
        let strict = Rules {
            use_rule: UseRule::ExactlyOnce,
            nonneg_integers: true,
        };
        Ok(match name {
            // arbor's own: small numbers a tiny character-level model can do arithmetic on,
            // three of them so a warm start reaches the target by chance only sometimes.
            "default" => p(3, 3, 12, 1, 100, strict, TargetChoice::RandomExpression),
            // The default's rules with a fourth number: three decisive steps before the
            // answer, for the experiments where steps matter.
            "default4" => p(4, 4, 12, 1, 100, strict, TargetChoice::RandomExpression),
            // TinyZero's Countdown-Tasks-3to4.
            "tinyzero" => p(
                3,
                4,
                99,
                1,
                100,
                Rules {
                    use_rule: UseRule::ExactlyOnce,
                    nonneg_integers: false,
                },
                TargetChoice::UniformReachable,
            ),
            // Stream of Search: non-negative integer intermediates.
            "sos" => p(4, 4, 99, 10, 100, strict, TargetChoice::UniformReachable),
            // The tree-search distillation write-up: 4 from 1..13, at most once, rarest target.
            "distill" => p(
                4,
                4,
                13,
                1,
                i64::MAX,
                Rules {
                    use_rule: UseRule::AtMostOnce,
                    nonneg_integers: false,
                },
                TargetChoice::Rarest { samples: 10_000 },
            ),
            other => return Err(PresetError(other.to_string())),
        })
    }
}
