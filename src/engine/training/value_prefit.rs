//! The value head's fit before the first iteration (methods that ask for one:
//! tree_distill): the starting policy's own samples on a seeded draw of training
//! problems, apart from the problem stream so the run's draws stay as they were; their
//! tokens are charged to the budget. The fit's report goes into iteration 1's record.
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::engine::policy::sampler::SamplingParams;
use crate::engine::rl::interrupt::never;
use crate::engine::rl::rollout::{prompt_tokens, rollouts};
use crate::engine::rl::update::Sample;
use crate::engine::rl::value_fit::fit_value_head;
use crate::engine::task::Problem;
use crate::engine::training::error::EngineError;
use crate::engine::training::trainer::{phase_log, Trainer};

/// Seed of the draw of prefit problems, mixed with the run's seed.
const PREFIT_SEED: u64 = 0x7a1e_5eed_0000_0000;

impl Trainer {
    /// Fits the value head when the method asks and a fresh run has not yet done so
    /// (a resumed or rewound run keeps its fit).
    pub(crate) fn value_prefit(&mut self) -> Result<(), EngineError> {
        if self.iteration > 0 || self.value_prefit.is_some() {
            return Ok(());
        }
        let Some(spec) = self.method.value_prefit() else {
            return Ok(());
        };
        phase_log("value prefit", 0);
        let t0 = std::time::Instant::now();
        let mut rng = ChaCha8Rng::seed_from_u64(self.cfg.seed ^ PREFIT_SEED);
        let n = spec.problems.min(self.data.train.len());
        let idx = rand::seq::index::sample(&mut rng, self.data.train.len(), n).into_vec();
        let problems: Vec<&Problem> = idx.iter().map(|&i| &self.data.train[i]).collect();
        let model = self.policy.sampler_model()?;
        let tok = self.policy.tokenizer.clone();
        let params = SamplingParams {
            temperature: spec.temperature,
            max_tokens: self.cfg.train.max_tokens,
            stop_at: None,
            eos: tok.eos(),
        };
        let (groups, stats) = rollouts(
            &model,
            &tok,
            &problems,
            spec.samples,
            &params,
            &self.data.rules,
            spec.reward,
            &mut rng,
            &mut never(),
        )
        .map_err(|_| EngineError::Interrupted)?;
        // A quarter of the problems (at least one, when there are two) held out.
        let held_problems = if n >= 2 { (n / 4).max(1) } else { 0 };
        let (mut fit, mut held) = (Vec::new(), Vec::new());
        for (i, (p, group)) in problems.iter().zip(groups).enumerate() {
            let prompt = prompt_tokens(&tok, p);
            for t in group.into_iter().filter(|t| !t.tokens.is_empty()) {
                let s = Sample {
                    prompt: prompt.clone(),
                    returns: vec![t.reward; t.tokens.len()],
                    response: t.tokens,
                    advantages: Vec::new(),
                };
                if i < n - held_problems {
                    fit.push(s);
                } else {
                    held.push(s);
                }
            }
        }
        let lr = spec.lr.unwrap_or(self.cfg.train.lr);
        let mut report = fit_value_head(&self.policy, &fit, &held, spec.steps, lr, &mut rng)?;
        report.problems = n;
        report.tokens = stats.generated_tokens;
        report.seconds = t0.elapsed().as_secs_f64();
        self.generated_tokens += stats.generated_tokens;
        self.value_prefit = Some(report);
        Ok(())
    }
}
