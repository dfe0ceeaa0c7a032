//! Adaptive training's rounds (DeepSearch section 7): between rounds the solution cache
//! takes in the round's registrations and the hard set is re-filtered by Pass1@K of the
//! current policy.
//!
//! Filtering costs tokens (Pass1@4 over 2,000 problems is about 165k tokens on the
//! default task), so it has to earn them: a first random sample of `adaptive.precheck`
//! problems is filtered alone, and when it would keep more than `adaptive.skip_above` of
//! them the round trains on every problem instead. A round lasts one pass over the hard
//! set unless `adaptive.steps_per_round` fixes it.
use std::time::Instant;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

use crate::engine::adaptive::{keep_in_hard_set, CacheRule};
use crate::engine::countdown::{Problem, RewardKind};
use crate::engine::error::EngineError;
use crate::engine::interrupt::Check;
use crate::engine::policy::sampler::SamplingParams;
use crate::engine::rollout::rollouts;
use crate::engine::trainer::Trainer;

impl Trainer {
    /// At a round boundary: merge the round's registrations into the cache and re-filter
    /// the hard set with Pass1@K of the current policy (section 7). Returns the tokens and
    /// seconds the filtering took. `stop` is asked before each filter batch; an
    /// interrupted round leaves its changes for the trainer to rewind.
    pub(crate) fn maybe_start_round(
        &mut self,
        stop: &mut Check,
    ) -> Result<RoundReport, EngineError> {
        let a = self.cfg.adaptive.clone();
        let boundary = if a.steps_per_round > 0 {
            (self.iteration - 1) % a.steps_per_round == 0
        } else {
            self.iteration == 1
                || self.cursor.saturating_add(self.cfg.train.problems_per_step) > self.order.len()
        };
        if !boundary {
            return Ok(RoundReport::default());
        }
        let start = Instant::now();
        self.round += 1;
        let model = self.policy.sampler_model()?;
        let tok = self.policy.tokenizer.clone();
        let params = SamplingParams {
            temperature: self.cfg.train.temperature,
            max_tokens: self.cfg.train.max_tokens,
            stop_at: None,
            eos: tok.eos(),
        };
        let mut tokens = 0;
        let mut pass1 = |rng: &mut ChaCha8Rng, ids: &[usize]| -> Result<Vec<usize>, EngineError> {
            let refs: Vec<&Problem> = ids.iter().map(|&i| &self.data.train[i]).collect();
            let (groups, s) = rollouts(
                &model,
                &tok,
                &refs,
                a.filter_k,
                &params,
                &self.data.rules,
                RewardKind::Binary,
                rng,
                stop,
            )?;
            tokens += s.generated_tokens;
            Ok(groups
                .iter()
                .map(|g| g.iter().filter(|t| t.correct()).count())
                .collect())
        };
        let pending = std::mem::take(&mut self.pending);
        let offered: Vec<usize> = pending.iter().map(|r| r.problem).collect();
        let keep_offer: Vec<bool> = match a.cache_rule {
            CacheRule::Code => vec![true; pending.len()],
            CacheRule::Paper => pass1(&mut self.rng, &offered)?
                .into_iter()
                .map(|c| keep_in_hard_set(c, a.filter_k, a.delta))
                .collect(),
        };
        for (r, keep) in pending.into_iter().zip(keep_offer) {
            if keep {
                self.cache.register(r.problem, r.solutions, tok.eos());
            }
        }
        let mut candidates: Vec<usize> = if self.round == 1 {
            (0..self.data.train.len()).collect()
        } else {
            self.pool.clone()
        };
        let mut skipped = false;
        let hard: Vec<usize> = if a.precheck > 0 && candidates.len() > a.precheck {
            candidates.shuffle(&mut self.rng);
            let (first, rest) = candidates.split_at(a.precheck);
            let counts = pass1(&mut self.rng, first)?;
            let mut hard = keep(first, &counts, &a);
            if filtering_pays(hard.len(), first.len(), a.skip_above) {
                let counts = pass1(&mut self.rng, rest)?;
                hard.extend(keep(rest, &counts, &a));
                hard
            } else {
                skipped = true;
                candidates.sort_unstable();
                candidates
            }
        } else {
            let counts = pass1(&mut self.rng, &candidates)?;
            keep(&candidates, &counts, &a)
        };
        // An empty hard set means the policy solves everything it was given: fall back to
        // the whole training split rather than stall.
        self.pool = if hard.is_empty() {
            (0..self.data.train.len()).collect()
        } else {
            hard
        };
        self.order = self.pool.clone();
        self.cursor = self.order.len();
        self.generated_tokens += tokens;
        self.filter_tokens += tokens;
        Ok(RoundReport {
            tokens,
            seconds: start.elapsed().as_secs_f64(),
            skipped,
        })
    }
}

/// What a round's start spent and decided.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct RoundReport {
    pub tokens: u64,
    pub seconds: f64,
    /// Filtering was skipped: the precheck would have kept too many problems.
    pub skipped: bool,
}

/// Filtering pays when it would drop more than `1 - skip_above` of the problems checked.
pub fn filtering_pays(kept: usize, checked: usize, skip_above: f64) -> bool {
    checked == 0 || (kept as f64) <= skip_above * checked as f64
}

fn keep(
    ids: &[usize],
    counts: &[usize],
    a: &crate::engine::adaptive::AdaptiveConfig,
) -> Vec<usize> {
    ids.iter()
        .zip(counts)
        .filter(|&(_, &c)| keep_in_hard_set(c, a.filter_k, a.delta))
        .map(|(&i, _)| i)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filtering_is_skipped_when_it_would_keep_more_than_the_share() {
        // 1,968 of 2,000 kept (the default task at 5% accuracy): not worth its tokens.
        assert!(!filtering_pays(197, 200, 0.9));
        assert!(filtering_pays(180, 200, 0.9));
        assert!(filtering_pays(20, 200, 0.9));
        assert!(filtering_pays(0, 0, 0.9));
    }
}
