//! The warm start: supervised training on legal but undirected step traces.
//!
//! Each trace combines random pairs of the available numbers with random legal operators
//! and ends in an answer line with whatever value it reached; it ignores the target. The
//! warm-started model so writes well-formed, arithmetically right steps but rarely hits
//! the target, which leaves exploration, not format, as the bottleneck RL has to solve.
type EngineResult<T> = std::result::Result<T, EngineError>;
use rand::{Rng, SeedableRng};
use serde::Serialize;

use crate::engine::policy::checkpoint::{weights_from_bytes, weights_to_bytes};
use crate::engine::policy::model::token_logprobs;
use crate::engine::policy::tokenizer::EOS;
use crate::engine::policy::Policy;
use crate::engine::policy::{CharTokenizer, PolicyConfig};
use crate::engine::rl::batch::{pack, Sequence};
use crate::engine::rl::interrupt::Phase;
use crate::engine::rl::interrupt::{ask, Check, Halt, Interrupt};
use crate::engine::rl::optim::{AdamW, AdamWConfig};
use crate::engine::rl::rollout::prompt_tokens;
use crate::engine::task::{fnv1a, task_of, Problem, Rules};
use crate::engine::training::config::RunConfig;
use crate::engine::training::config::WarmStartConfig;
use crate::engine::training::error::EngineError;
use crate::engine::training::sink::Sink;
use crate::engine::training::split::RunData;

#[derive(Clone, Debug, Serialize)]
pub struct WarmStartReport {
    pub steps: usize,
    pub final_loss: f64,
    pub seconds: f64,
}

/// Learning rate at `step` of `total`: 5% linear warm-up, then cosine decay to 10%.
pub fn schedule(peak: f64, step: usize, total: usize) -> f64 {
    let warm = (total / 20).max(1);
    if step < warm {
        return peak * (step + 1) as f64 / warm as f64;
    }
    let progress = (step - warm) as f64 / (total - warm).max(1) as f64;
    peak * (0.1 + 0.9 * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos()))
}

/// Trains `policy` in place; `progress(step, total, loss)` after each step, `stop` asked
/// before each. An interrupted warm start leaves `policy` half-trained: discard it.
pub fn warm_start(
    policy: &Policy,
    problems: &[Problem],
    rules: &Rules,
    cfg: &WarmStartConfig,
    progress: &mut dyn FnMut(u64, u64, f64),
    stop: &mut Check,
) -> Result<WarmStartReport, Halt> {
    let start = std::time::Instant::now();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(cfg.seed ^ 0x7a5e);
    let mut opt = AdamW::new(
        policy.vars(),
        AdamWConfig {
            lr: cfg.lr,
            beta1: 0.9,
            beta2: 0.99,
            eps: 1e-8,
            weight_decay: 0.01,
            max_grad_norm: 1.0,
        },
    )?;
    let model = policy.trainable()?;
    let mut last = f64::NAN;
    if problems.is_empty() {
        return Err(
            candle_core::Error::Msg("the warm start needs training problems".into()).into(),
        );
    }
    // The task's demonstrations (Countdown's random legal traces; a task without any
    // imitates an empty response: config validation keeps math off this path).
    let task = task_of(rules);
    for step in 0..cfg.steps {
        ask(stop)?;
        let mut owned = Vec::with_capacity(cfg.batch_size);
        for _ in 0..cfg.batch_size {
            let p = &problems[rng.random_range(0..problems.len())];
            let trace = task.demonstration(p, &mut rng).unwrap_or_default();
            let mut response = policy.tokenizer.encode(&trace).unwrap_or_default();
            response.push(EOS);
            let advantages = vec![1.0; response.len()];
            owned.push((prompt_tokens(&policy.tokenizer, p), response, advantages));
        }
        let seqs: Vec<Sequence> = owned
            .iter()
            .map(|(p, r, a)| Sequence {
                prompt: p,
                response: r,
                advantages: a,
                returns: &[],
            })
            .collect();
        let b = pack(&seqs, policy.device())?;
        let taped = model.hidden_taped(&b.ids)?;
        let logp = token_logprobs(&model.logits(taped.hidden())?, &b.targets)?;
        let loss = ((logp * &b.mask)?.sum_all()?.neg()? / b.tokens.max(1) as f64)?;
        last = loss.to_scalar::<f32>()? as f64;
        let grads = taped.backward(&model, &loss)?;
        opt.step(&grads, schedule(cfg.lr, step, cfg.steps))?;
        progress(step as u64 + 1, cfg.steps as u64, last);
    }
    Ok(WarmStartReport {
        steps: cfg.steps,
        final_loss: last,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The policy architecture a run config asks for.
pub fn policy_config(cfg: &RunConfig, tok: &CharTokenizer) -> PolicyConfig {
    let mut p = PolicyConfig::tiny(tok.vocab_size(), crate::engine::policy::tokenizer::BOS, EOS);
    p.hidden_size = cfg.policy.hidden_size;
    p.intermediate_size = cfg.policy.intermediate_size;
    p.num_hidden_layers = cfg.policy.num_hidden_layers;
    p.num_attention_heads = cfg.policy.num_attention_heads;
    p.num_key_value_heads = cfg.policy.num_key_value_heads;
    p.max_position_embeddings = cfg.policy.max_position_embeddings;
    p
}

/// Key of the warm start a config leads to: same architecture, warm-start settings and
/// training problems give the same weights, so runs share it.
pub fn warm_start_key(cfg: &RunConfig, pcfg: &PolicyConfig, data: &RunData) -> String {
    let problems: Vec<_> = data.train.iter().map(|p| p.key()).collect();
    let desc = serde_json::json!({
        "policy": pcfg,
        "warm_start": cfg.warm_start,
        "preset": data.preset,
        "rules": data.rules,
        "train": fnv1a(serde_json::to_string(&problems).unwrap_or_default().as_bytes()),
        "format": 1,
    });
    format!("ws-{:016x}", fnv1a(desc.to_string().as_bytes()))
}

/// Builds the initial policy: the cached warm start when the sink has it, else trains one
/// and caches it. A stop during the warm start (the sink's `interrupt`) ends it with
/// [`EngineError::Interrupted`] and caches nothing.
pub fn prepare_policy(
    cfg: &RunConfig,
    data: &RunData,
    sink: &mut dyn Sink,
) -> EngineResult<(Policy, String)> {
    let (device, note) = crate::engine::policy::device::choose(&cfg.policy.device)
        .map_err(|e| EngineError::Config(e.to_string()))?;
    if let Some(n) = note {
        sink.phase_done(Phase::WarmStart, &n);
    }
    if let Some(dir) = &cfg.policy.model {
        // A real checkpoint: loaded as it is, no warm start.
        let policy = crate::engine::policy::checkpoint::load(dir, &device)
            .map_err(|e| EngineError::Config(format!("--model: {e}")))?;
        sink.phase_done(
            Phase::WarmStart,
            &format!(
                "loaded {} ({} parameters); no warm start",
                dir.display(),
                policy.num_parameters()
            ),
        );
        return Ok((policy, format!("model:{}", dir.display())));
    }
    let tok = CharTokenizer::default();
    let pcfg = policy_config(cfg, &tok);
    let key = warm_start_key(cfg, &pcfg, data);
    let policy = Policy::init(pcfg, tok.into(), cfg.warm_start.seed, &device)?;
    if let Some(bytes) = sink.warm_start(&key)? {
        weights_from_bytes(&policy, &bytes).map_err(|e| {
            EngineError::Data(format!("cached warm start {key} is unreadable: {e}"))
        })?;
        sink.phase_done(Phase::WarmStart, &format!("loaded cached warm start {key}"));
        return Ok((policy, key));
    }
    // Progress and the check both go to the sink, never at once.
    let shared = std::cell::RefCell::new(&mut *sink);
    let report = warm_start(
        &policy,
        &data.train,
        &data.rules,
        &cfg.warm_start,
        &mut |done, total, loss| {
            let mut s = shared.borrow_mut();
            s.warm_start_loss(done, loss);
            s.progress(Phase::WarmStart, done, total, &format!("loss {loss:.3}"))
        },
        &mut || shared.borrow_mut().interrupt(Phase::WarmStart) == Interrupt::Stop,
    )?;
    let bytes = weights_to_bytes(&policy)?;
    let desc = serde_json::json!({ "report": report, "config": cfg.warm_start });
    sink.save_warm_start(&key, desc, &bytes)?;
    sink.phase_done(
        Phase::WarmStart,
        &format!(
            "warm start {key}: {} steps, loss {:.3}, {:.0}s",
            report.steps, report.final_loss, report.seconds
        ),
    );
    Ok((policy, key))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schedule_warms_up_then_decays_to_a_tenth() {
        assert!((schedule(1.0, 0, 100) - 0.2).abs() < 1e-12);
        assert!((schedule(1.0, 4, 100) - 1.0).abs() < 1e-12);
        assert!((schedule(1.0, 99, 100) - 0.1).abs() < 1e-3);
        assert!(schedule(1.0, 50, 100) < 1.0 && schedule(1.0, 50, 100) > 0.1);
    }
}
