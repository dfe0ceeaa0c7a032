//! The forward pass search distillation adds to sampling: for every new node, its step's
//! sequence log-probability at temperature 1 under the current policy (for the prior) and
//! the value head's estimate of the state after it. One batched full-context forward per
//! expansion round; its tokens are counted (`scoring_tokens`) so "is it just more
//! compute?" can be answered.
use candle_core::{Result, Tensor};

use crate::engine::policy::model::token_logprobs;
use crate::engine::policy::tokenizer::PAD;
use crate::engine::policy::Qwen2;

/// Rows per scoring call.
const ROWS: usize = 256;

/// What the scoring pass says of one node.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Scored {
    /// Sum of the step's token log-probabilities at temperature 1.
    pub seq_logprob: f64,
    /// The value head's estimate at the context's last token (none without a head).
    pub value: Option<f64>,
}

/// Compute spent scoring.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ScoringStats {
    pub tokens: u64,
    pub passes: u64,
    /// Wall seconds of the scoring passes (the iteration's "scoring" phase).
    pub seconds: f64,
}

/// Scores `items`: each a full context (prompt and steps) whose last `step_len` tokens are
/// the step to score.
pub fn score(
    model: &Qwen2,
    items: &[(Vec<u32>, usize)],
    stats: &mut ScoringStats,
) -> Result<Vec<Scored>> {
    let t0 = std::time::Instant::now();
    let mut out = Vec::with_capacity(items.len());
    for chunk in items.chunks(ROWS) {
        out.extend(score_chunk(model, chunk, stats)?);
    }
    stats.seconds += t0.elapsed().as_secs_f64();
    Ok(out)
}

fn score_chunk(
    model: &Qwen2,
    items: &[(Vec<u32>, usize)],
    stats: &mut ScoringStats,
) -> Result<Vec<Scored>> {
    if items.is_empty() {
        return Ok(Vec::new());
    }
    let len = items.iter().map(|(c, _)| c.len()).max().unwrap_or(1).max(2);
    let b = items.len();
    let mut ids = Vec::with_capacity(b * len);
    for (c, _) in items {
        if c.is_empty() {
            candle_core::bail!("cannot score an empty context");
        }
        ids.extend_from_slice(c);
        ids.extend(std::iter::repeat_n(PAD, len - c.len()));
    }
    let dev = model.device();
    let ids = Tensor::from_vec(ids, (b, len), dev)?;
    let hidden = model.hidden_train(&ids)?;
    stats.tokens += items.iter().map(|(c, _)| c.len() as u64).sum::<u64>();
    stats.passes += 1;
    let logits = model.logits(&hidden.narrow(1, 0, len - 1)?)?;
    let targets = ids.narrow(1, 1, len - 1)?.contiguous()?;
    let lp: Vec<Vec<f32>> = token_logprobs(&logits, &targets)?.to_vec2()?;
    let values: Option<Vec<Vec<f32>>> = if model.has_value_head() {
        Some(model.values(&hidden)?.to_vec2()?)
    } else {
        None
    };
    Ok(items
        .iter()
        .enumerate()
        .map(|(i, (c, step))| {
            let n = c.len();
            let step = (*step).min(n - 1);
            // Token j of the context is predicted at position j - 1.
            let seq_logprob = (n - step..n).map(|j| lp[i][j - 1] as f64).sum();
            Scored {
                seq_logprob,
                value: values.as_ref().map(|v| v[i][n - 1] as f64),
            }
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policy::{CharTokenizer, Policy, PolicyConfig};
    use candle_core::Device;

    #[test]
    fn padding_and_batching_do_not_change_a_row() {
        let tok = CharTokenizer::default();
        let cfg = PolicyConfig::micro(tok.vocab_size());
        let mut p = Policy::init(cfg, tok.into(), 5, &Device::Cpu).unwrap();
        p.add_value_head(1).unwrap();
        let m = p.sampler_model().unwrap();
        let a = (vec![1u32, 5, 6, 7, 8, 9], 3);
        let b = (vec![1u32, 5, 6], 1);
        let mut s = ScoringStats::default();
        let alone = score(&m, std::slice::from_ref(&a), &mut s).unwrap()[0];
        let both = score(&m, &[b, a.clone()], &mut s).unwrap()[1];
        assert!((alone.seq_logprob - both.seq_logprob).abs() < 1e-4);
        assert!((alone.value.unwrap() - both.value.unwrap()).abs() < 1e-5);
        assert!(alone.seq_logprob < 0.0);
        assert_eq!(s.tokens, 6 + 3 + 6);
        // The log-probability is that of the step's three tokens under the full softmax.
        let ids = Tensor::from_vec(a.0.clone(), (1, 6), &Device::Cpu).unwrap();
        let logits = m.forward_train(&ids).unwrap();
        let lp = token_logprobs(
            &logits.narrow(1, 0, 5).unwrap(),
            &ids.narrow(1, 1, 5).unwrap().contiguous().unwrap(),
        )
        .unwrap()
        .to_vec2::<f32>()
        .unwrap();
        let want: f64 = lp[0][2..5].iter().map(|&x| x as f64).sum();
        assert!((alone.seq_logprob - want).abs() < 1e-4);
    }
}
