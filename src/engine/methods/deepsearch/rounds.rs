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

use crate::engine::methods::deepsearch::adaptive::{keep_in_hard_set, CacheRule};
use crate::engine::methods::deepsearch::method::DeepSearch;
use crate::engine::methods::{Prelude, RoundStart};
use crate::engine::policy::sampler::SamplingParams;
use crate::engine::rl::interrupt::Halt;
use crate::engine::rl::rollout::rollouts;
use crate::engine::task::{Problem, RewardKind};

impl DeepSearch {
    /// At a round boundary: merge the round's registrations into the cache and re-filter
    /// the hard set with Pass1@K of the current policy (section 7). Returns the tokens and
    /// seconds the filtering took. `stop` is asked before each filter batch; an
    /// interrupted round leaves its changes for the trainer to rewind.
    pub(crate) fn maybe_start_round(&mut self, ctx: Prelude) -> Result<RoundStart, Halt> {
        let a = self.adaptive.clone();
        let Prelude {
            iteration,
            train,
            problems,
            rules,
            generator,
            tok,
            stream,
            rng,
            stop,
        } = ctx;
        let boundary = if a.steps_per_round > 0 {
            (iteration - 1) % a.steps_per_round == 0
        } else {
            iteration == 1
                || stream.cursor.saturating_add(train.problems_per_step) > stream.order.len()
        };
        if !boundary {
            return Ok(RoundStart {
                round: self.round,
                hard_set_size: stream.pool.len(),
                cache_size: self.cache.len(),
                ..RoundStart::default()
            });
        }
        let start = Instant::now();
        self.round += 1;
        let params = SamplingParams {
            temperature: train.temperature,
            max_tokens: train.max_tokens,
            stop_at: None,
            eos: tok.eos(),
        };
        let mut tokens = 0;
        let mut pass1 = |rng: &mut ChaCha8Rng, ids: &[usize]| -> Result<Vec<usize>, Halt> {
            let refs: Vec<&Problem> = ids.iter().map(|&i| &problems[i]).collect();
            let (groups, s) = rollouts(
                generator,
                tok,
                &refs,
                a.filter_k,
                &params,
                rules,
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
            CacheRule::Paper => pass1(rng, &offered)?
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
            (0..problems.len()).collect()
        } else {
            stream.pool.clone()
        };
        let mut skipped = false;
        let hard: Vec<usize> = if a.precheck > 0 && candidates.len() > a.precheck {
            candidates.shuffle(rng);
            let (first, rest) = candidates.split_at(a.precheck);
            let counts = pass1(rng, first)?;
            let mut hard = keep(first, &counts, &a);
            if filtering_pays(hard.len(), first.len(), a.skip_above) {
                let counts = pass1(rng, rest)?;
                hard.extend(keep(rest, &counts, &a));
                hard
            } else {
                skipped = true;
                candidates.sort_unstable();
                candidates
            }
        } else {
            let counts = pass1(rng, &candidates)?;
            keep(&candidates, &counts, &a)
        };
        // An empty hard set means the policy solves everything it was given: fall back to
        // the whole training split rather than stall.
        stream.set_pool(if hard.is_empty() {
            (0..problems.len()).collect()
        } else {
            hard
        });
        Ok(RoundStart {
            tokens,
            seconds: start.elapsed().as_secs_f64(),
            skipped,
            round: self.round,
            hard_set_size: stream.pool.len(),
            cache_size: self.cache.len(),
        })
    }
}

/// Filtering pays when it would drop more than `1 - skip_above` of the problems checked.
pub fn filtering_pays(kept: usize, checked: usize, skip_above: f64) -> bool {
    checked == 0 || (kept as f64) <= skip_above * checked as f64
}

fn keep(
    ids: &[usize],
    counts: &[usize],
    a: &crate::engine::methods::deepsearch::adaptive::AdaptiveConfig,
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
