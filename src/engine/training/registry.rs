//! The methods arbor trains with: one line each, giving the name the CLI, the config's
//! `method`, `compare --methods` and the explorer use, other spellings accepted on input,
//! and how the method is built from its config section. Adding a method is one file in
//! `methods/` and one line here.
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::engine::methods::deepsearch::method::DeepSearch;
use crate::engine::methods::grpo_hard::GrpoHard;
use crate::engine::methods::passk::PassK;
use crate::engine::methods::sampled::Sampled;
use crate::engine::methods::tree_distill::TreeDistill;
use crate::engine::methods::treerl::TreeRl;
use crate::engine::methods::Method;
use crate::engine::training::config::RunConfig;

macro_rules! registry {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal $(| $alias:literal)*
        => |$c:ident| $build:expr; )*) => {
        /// A training method, by name.
        #[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum MethodKind {
            $( $(#[$doc])* #[serde(rename = $name)] $variant, )*
        }

        impl MethodKind {
            /// Every method, in the registry's order.
            pub const ALL: &'static [MethodKind] = &[$(MethodKind::$variant),*];
            /// Their names, in the same order.
            pub const NAMES: &'static [&'static str] = &[$($name),*];

            pub fn name(self) -> &'static str {
                match self {
                    $(MethodKind::$variant => $name,)*
                }
            }

            /// The method, built from its config section.
            pub fn build(self, cfg: &RunConfig) -> Box<dyn Method> {
                match self {
                    $(MethodKind::$variant => {
                        let $c = cfg;
                        Box::new($build)
                    })*
                }
            }
        }

        impl FromStr for MethodKind {
            type Err = UnknownMethod;
            fn from_str(s: &str) -> Result<Self, UnknownMethod> {
                match s {
                    $($name $(| $alias)* => Ok(MethodKind::$variant),)*
                    _ => Err(UnknownMethod(s.to_string())),
                }
            }
        }
    };
}

registry! {
    /// MCTS inside the training loop (DeepSearch, Tree-GRPO objective). `[search]`,
    /// `[adaptive]`.
    DeepSearch = "deepsearch" => |c| DeepSearch::new(&c.search, &c.adaptive);
    /// n independent samples, outcome reward, mean/std group normalisation. The default.
    #[default]
    Grpo = "grpo" => |c| Sampled::grpo(&c.train, c.adaptive.repetition_filter);
    /// GRPO with mean-only advantages and clip-higher.
    Dapo = "dapo" => |c| Sampled::dapo(&c.train, c.adaptive.repetition_filter);
    /// Sample n, train on the best (distillation).
    BestOfN = "best_of_n" | "best-of-n"
        => |c| Sampled::best_of_n(&c.train, c.adaptive.repetition_filter);
    /// AlphaZero-style search distillation: pUCT with a value head, the most-visited path
    /// trained with the CISPO loss. `[tree_distill]`.
    TreeDistill = "tree_distill" | "tree-distill" => |c| TreeDistill::new(&c.tree_distill);
    /// GRPO-style groups with the CISPO loss (TRL's `loss_type = "cispo"`). `[cispo]`.
    Cispo = "cispo" => |c| Sampled::cispo(&c.cispo, c.adaptive.repetition_filter);
    /// GRPO on the problems its own samples have not solved yet (hard focus alone).
    GrpoHard = "grpo_hard" | "grpo-hard"
        => |c| GrpoHard::new(&c.train, c.adaptive.repetition_filter);
    /// GRPO with the analytic pass@k advantage (arXiv 2508.10751). `[passk]`.
    PassK = "passk" | "pass_k" => |c| PassK::new(&c.passk, &c.train, c.adaptive.repetition_filter);
    /// TreeRL's entropy-guided tree search (EPTree, arXiv 2506.11902). `[treerl]`.
    TreeRl = "treerl" => |c| TreeRl::new(&c.treerl, c.adaptive.repetition_filter);
}

/// A method name the registry does not know.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("unknown method {0:?}; valid methods: {names}", names = MethodKind::NAMES.join(", "))]
pub struct UnknownMethod(pub String);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_parses_to_its_method_and_builds() {
        for (&m, &name) in MethodKind::ALL.iter().zip(MethodKind::NAMES) {
            assert_eq!(name.parse::<MethodKind>(), Ok(m));
            assert_eq!(m.name(), name);
            let cfg = RunConfig {
                method: m,
                ..RunConfig::default()
            };
            let _ = m.build(&cfg);
        }
        let e = "ppo".parse::<MethodKind>().unwrap_err();
        assert!(e.to_string().contains("grpo_hard"), "{e}");
    }
}
