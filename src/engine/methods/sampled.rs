//! The methods of independent samples: n completions per problem, an outcome reward, and
//! an advantage rule. grpo (mean/std normalisation, symmetric clip), dapo (mean only,
//! clip-higher), best_of_n (weight 1 on the group's best sample) and cispo (GRPO's
//! groups with the CISPO loss, settings under `[cispo]`).
use rand_chacha::ChaCha8Rng;

use crate::engine::methods::{Method, Objective};
use crate::engine::rl::cispo::CispoConfig;
use crate::engine::rl::config::TrainConfig;
use crate::engine::rl::groups::{sampled_batch, Batch, GroupContext};
use crate::engine::rl::interrupt::Halt;
use crate::engine::rl::objective::{group_advantages, AdvantageNorm};
use crate::engine::rl::rollout::Trajectory;
use crate::engine::rl::update::PolicyObjective;
use crate::engine::task::Problem;

/// How a group's samples are weighted.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Rule {
    /// GRPO: (r - mean) / std.
    MeanStd,
    /// DAPO (Dr. GRPO): r - mean.
    MeanOnly,
    /// Best-of-N distillation.
    BestOfN,
}

pub struct Sampled {
    rule: Rule,
    group_size: usize,
    repetition_filter: bool,
    /// GRPO clips symmetrically; the others use clip-higher.
    symmetric_clip: bool,
    /// CISPO's importance-weight cap and KL, when the loss is CISPO's.
    cispo: Option<CispoConfig>,
}

impl Sampled {
    pub fn grpo(train: &TrainConfig, repetition_filter: bool) -> Self {
        Self {
            rule: Rule::MeanStd,
            group_size: train.group_size,
            repetition_filter,
            symmetric_clip: true,
            cispo: None,
        }
    }

    pub fn dapo(train: &TrainConfig, repetition_filter: bool) -> Self {
        Self {
            rule: Rule::MeanOnly,
            symmetric_clip: false,
            ..Self::grpo(train, repetition_filter)
        }
    }

    pub fn best_of_n(train: &TrainConfig, repetition_filter: bool) -> Self {
        Self {
            rule: Rule::BestOfN,
            symmetric_clip: false,
            ..Self::grpo(train, repetition_filter)
        }
    }

    pub fn cispo(cfg: &CispoConfig, repetition_filter: bool) -> Self {
        Self {
            rule: Rule::MeanStd,
            group_size: cfg.group_size,
            repetition_filter,
            symmetric_clip: false,
            cispo: Some(cfg.clone()),
        }
    }
}

impl Method for Sampled {
    fn batch(
        &mut self,
        ctx: &mut GroupContext<ChaCha8Rng>,
        problems: &[Problem],
        _idx: &[usize],
    ) -> Result<Batch, Halt> {
        let rule = self.rule;
        sampled_batch(
            ctx,
            problems,
            self.group_size,
            self.repetition_filter,
            &mut |group| advantages(rule, group),
        )
    }

    fn objective(&self, train: &TrainConfig) -> Objective {
        match &self.cispo {
            Some(c) => Objective {
                policy: PolicyObjective::Cispo {
                    eps_high: c.eps_high,
                },
                kl_coef: c.kl_coef,
                value_coef: 0.0,
            },
            None => Objective::clipped(train, self.symmetric_clip),
        }
    }
}

/// A group's advantages under `rule`.
pub fn advantages(rule: Rule, group: &[Trajectory]) -> Vec<f32> {
    let rewards: Vec<f32> = group.iter().map(|t| t.reward).collect();
    match rule {
        Rule::MeanStd => group_advantages(&rewards, AdvantageNorm::MeanStd),
        Rule::MeanOnly => group_advantages(&rewards, AdvantageNorm::MeanOnly),
        Rule::BestOfN => best_of_n_weights(group),
    }
}

/// Best-of-N distillation: weight 1 on the single best sample of the group (highest
/// reward, then lowest mean entropy), and only when it beats the group's worst, i.e.
/// when the verifier separated the samples at all.
pub fn best_of_n_weights(group: &[Trajectory]) -> Vec<f32> {
    let mut w = vec![0.0; group.len()];
    let best = group.iter().enumerate().max_by(|(_, a), (_, b)| {
        a.reward
            .total_cmp(&b.reward)
            .then(b.mean_entropy().total_cmp(&a.mean_entropy()))
    });
    let worst = group.iter().map(|t| t.reward).fold(f32::INFINITY, f32::min);
    if let Some((i, b)) = best {
        if b.reward > worst || b.correct() {
            w[i] = 1.0;
        }
    }
    w
}
