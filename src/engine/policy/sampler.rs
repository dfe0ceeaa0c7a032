//! Batched, KV-cached sampling with per-token log-probabilities and entropies.
//!
//! Rows may start from different prefixes. A prefix either comes with its cache (a tree
//! node continuing its parent's context) or is prefilled once however many copies are
//! sampled from it; rows are left-padded to a common cache length and masked, so every
//! prefix token is pushed through the model exactly once.
//!
//! Cache convention: a [`RowCache`] for a context of `L` tokens holds keys and values of
//! the first `L - 1`; the last token is fed by the next decoding step. That is exactly what
//! is cached when a step stops on its delimiter, so children of a node continue from the
//! node's cache with one forward position each.
use candle_core::{DType, Device, Result, Tensor};
use rand::Rng;

use super::model::{KvCache, Qwen2, MASKED};
use super::tokenizer::PAD;

/// How to sample.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplingParams {
    /// Softmax temperature; 0 means greedy.
    pub temperature: f32,
    /// Most tokens generated per row.
    pub max_tokens: usize,
    /// A step ends after this token (the step delimiter), if set.
    pub stop_at: Option<u32>,
    /// End of sequence.
    pub eos: u32,
}

/// The cached keys and values of one row (batch dimension 1), opaque to callers: a
/// [`Generator`](super::generator::Generator) that keeps caches (arbor's own sampler)
/// reads them; an inference engine ignores them (it keeps its own prefix cache). No
/// candle type is visible through it.
#[derive(Clone, Debug)]
pub struct RowCache(pub(crate) KvCache);

/// One prefix to continue, `copies` times.
pub struct Request<'a> {
    pub context: &'a [u32],
    pub cache: Option<&'a RowCache>,
    pub copies: usize,
    /// This request's own token limit, below `SamplingParams::max_tokens` (a branch
    /// continuing a partial response has only the rest of the response's budget).
    pub max_tokens: Option<usize>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Finish {
    /// The end-of-sequence token was sampled.
    Eos,
    /// The step delimiter was sampled.
    Delimiter,
    /// The token limit (or the model's context) was reached.
    Limit,
}

/// What one row produced.
#[derive(Clone, Debug)]
pub struct Completion {
    /// Index of the request this row continued.
    pub request: usize,
    pub tokens: Vec<u32>,
    /// log p(token) under the sampling distribution.
    pub logprobs: Vec<f32>,
    /// Entropy of the distribution each token was drawn from.
    pub entropies: Vec<f32>,
    pub finish: Finish,
    /// Cache of `context + tokens` (all but the last token), when asked for.
    pub cache: Option<RowCache>,
}

/// Compute spent by a call, for accounting.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct SampleStats {
    /// Token positions pushed through the model, prefill included.
    pub forwarded_tokens: u64,
    /// Model calls.
    pub forward_passes: u64,
    /// Tokens sampled.
    pub generated_tokens: u64,
}

impl SampleStats {
    pub fn add(&mut self, o: &SampleStats) {
        self.forwarded_tokens += o.forwarded_tokens;
        self.forward_passes += o.forward_passes;
        self.generated_tokens += o.generated_tokens;
    }
}

/// Samples a continuation of every request's context, `copies` rows each.
pub fn sample<R: Rng>(
    model: &Qwen2,
    requests: &[Request],
    params: &SamplingParams,
    keep_cache: bool,
    rng: &mut R,
) -> Result<(Vec<Completion>, SampleStats)> {
    let dev = model.device().clone();
    let max_pos = model.config().max_position_embeddings;
    let mut stats = SampleStats::default();
    for r in requests {
        if r.context.is_empty() {
            candle_core::bail!("cannot sample from an empty context");
        }
        if r.context.len() >= max_pos {
            candle_core::bail!(
                "context of {} tokens does not fit the model's {max_pos} positions",
                r.context.len()
            );
        }
    }

    // Prefill the requests that came without a cache, all in one batch.
    let fresh: Vec<usize> = (0..requests.len())
        .filter(|&i| requests[i].cache.is_none() && requests[i].copies > 0)
        .collect();
    let prefilled = prefill(
        model,
        &fresh
            .iter()
            .map(|&i| requests[i].context)
            .collect::<Vec<_>>(),
        &mut stats,
    )?;
    let mut caches: Vec<Option<KvCache>> = vec![None; requests.len()];
    for (slot, cache) in fresh.iter().zip(prefilled) {
        caches[*slot] = cache;
    }
    for (i, r) in requests.iter().enumerate() {
        if let Some(c) = r.cache {
            if c.0.len() + 1 != r.context.len() {
                candle_core::bail!(
                    "a cache of {} positions does not match a context of {} tokens",
                    c.0.len(),
                    r.context.len()
                );
            }
            caches[i] = Some(c.0.clone());
        }
    }

    // Lay the rows out, left-padded to the longest cache.
    let mut row_req = Vec::new();
    for (i, r) in requests.iter().enumerate() {
        row_req.extend(std::iter::repeat_n(i, r.copies));
    }
    let n_rows = row_req.len();
    if n_rows == 0 {
        return Ok((Vec::new(), stats));
    }
    let cache_len = |i: usize| requests[i].context.len() - 1;
    let width = row_req.iter().map(|&i| cache_len(i)).max().unwrap_or(0);
    let mut pads: Vec<usize> = row_req.iter().map(|&i| width - cache_len(i)).collect();
    let mut batch_cache = if width == 0 {
        None
    } else {
        Some(stack_rows(model, &row_req, &caches, width, &dev)?)
    };
    let mut mask_cols: Vec<Vec<f32>> = pads
        .iter()
        .map(|&p| {
            (0..width)
                .map(|j| if j < p { MASKED } else { 0. })
                .collect()
        })
        .collect();

    let mut out: Vec<Completion> = row_req
        .iter()
        .map(|&request| Completion {
            request,
            tokens: Vec::new(),
            logprobs: Vec::new(),
            entropies: Vec::new(),
            finish: Finish::Limit,
            cache: None,
        })
        .collect();
    let limits: Vec<usize> = row_req
        .iter()
        .map(|&i| {
            let r = &requests[i];
            params
                .max_tokens
                .min(r.max_tokens.unwrap_or(usize::MAX))
                .min(max_pos - r.context.len())
        })
        .collect();
    // Batch position -> row.
    let mut active: Vec<usize> = (0..n_rows).filter(|&r| limits[r] > 0).collect();
    if active.len() < n_rows {
        let keep: Vec<usize> = active.clone();
        compact(&mut batch_cache, &mut mask_cols, &mut pads, &keep, &dev)?;
    }
    let mut pending: Vec<u32> = active
        .iter()
        .map(|&r| *requests[row_req[r]].context.last().unwrap_or(&PAD))
        .collect();
    let mut positions: Vec<u32> = active
        .iter()
        .map(|&r| cache_len(row_req[r]) as u32)
        .collect();
    let vocab = model.config().vocab_size;

    while !active.is_empty() {
        let a = active.len();
        let ids = Tensor::from_vec(pending.clone(), (a, 1), &dev)?;
        let pos = Tensor::from_vec(positions.clone(), (a, 1), &dev)?;
        let cols = mask_cols.first().map_or(0, |c| c.len()) + 1;
        let mut flat = Vec::with_capacity(a * cols);
        for c in &mask_cols {
            flat.extend_from_slice(c);
            flat.push(0.);
        }
        let mask = Tensor::from_vec(flat, (a, 1, 1, cols), &dev)?;
        let (h, cache) = model.hidden(&ids, &pos, &mask, batch_cache.as_ref())?;
        let logits = model
            .logits(&h)?
            .reshape((a, vocab))?
            .to_dtype(DType::F32)?;
        let logits: Vec<Vec<f32>> = logits.to_vec2()?;
        stats.forwarded_tokens += a as u64;
        stats.forward_passes += 1;
        for c in mask_cols.iter_mut() {
            c.push(0.);
        }

        let mut keep = Vec::with_capacity(a);
        for (b, &row) in active.iter().enumerate() {
            let (tok, logp, ent) = draw(&logits[b], params.temperature, rng);
            let o = &mut out[row];
            o.tokens.push(tok);
            o.logprobs.push(logp);
            o.entropies.push(ent);
            stats.generated_tokens += 1;
            let finish = if tok == params.eos {
                Some(Finish::Eos)
            } else if params.stop_at == Some(tok) {
                Some(Finish::Delimiter)
            } else if o.tokens.len() >= limits[row] {
                Some(Finish::Limit)
            } else {
                None
            };
            match finish {
                Some(f) => {
                    o.finish = f;
                    if keep_cache {
                        o.cache = Some(extract_row(&cache, b, pads[b])?);
                    }
                }
                None => keep.push(b),
            }
            pending[b] = tok;
            positions[b] += 1;
        }
        batch_cache = Some(cache);
        if keep.len() < a {
            compact(&mut batch_cache, &mut mask_cols, &mut pads, &keep, &dev)?;
            active = keep.iter().map(|&b| active[b]).collect();
            pending = keep.iter().map(|&b| pending[b]).collect();
            positions = keep.iter().map(|&b| positions[b]).collect();
        }
    }
    Ok((out, stats))
}

/// Draws a token from `logits` at `temperature`; returns it with its log-probability and
/// the entropy of the distribution (both under the tempered distribution; greedy reports
/// the untempered one).
pub fn draw<R: Rng>(logits: &[f32], temperature: f32, rng: &mut R) -> (u32, f32, f32) {
    let t = if temperature > 1e-6 { temperature } else { 1.0 };
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let scaled: Vec<f32> = logits.iter().map(|&l| (l - max) / t).collect();
    let lse = scaled.iter().map(|s| s.exp()).sum::<f32>().ln();
    let logp: Vec<f32> = scaled.iter().map(|s| s - lse).collect();
    let entropy = -logp
        .iter()
        .map(|&lp| if lp.is_finite() { lp.exp() * lp } else { 0. })
        .sum::<f32>();
    let tok = if temperature <= 1e-6 {
        argmax(&logp)
    } else {
        let u: f32 = rng.random();
        let mut acc = 0.;
        let mut chosen = argmax(&logp);
        for (i, lp) in logp.iter().enumerate() {
            acc += lp.exp();
            if u < acc {
                chosen = i;
                break;
            }
        }
        chosen
    };
    (tok as u32, logp[tok], entropy)
}

fn argmax(v: &[f32]) -> usize {
    v.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |(bi, bv), (i, &x)| {
            if x > bv {
                (i, x)
            } else {
                (bi, bv)
            }
        })
        .0
}

/// Runs `context[..len-1]` of each context through the model in one left-padded batch and
/// returns each row's cache (None for one-token contexts).
fn prefill(
    model: &Qwen2,
    contexts: &[&[u32]],
    stats: &mut SampleStats,
) -> Result<Vec<Option<KvCache>>> {
    let dev = model.device();
    let lens: Vec<usize> = contexts.iter().map(|c| c.len() - 1).collect();
    let width = lens.iter().copied().max().unwrap_or(0);
    if width == 0 {
        return Ok(vec![None; contexts.len()]);
    }
    let n = contexts.len();
    let mut ids = Vec::with_capacity(n * width);
    let mut pos = Vec::with_capacity(n * width);
    let mut mask = Vec::with_capacity(n * width * width);
    for (c, &len) in contexts.iter().zip(&lens) {
        let pad = width - len;
        ids.extend(std::iter::repeat_n(PAD, pad));
        ids.extend_from_slice(&c[..len]);
        pos.extend(std::iter::repeat_n(0u32, pad));
        pos.extend(0..len as u32);
        for i in 0..width {
            for j in 0..width {
                let visible = j <= i && j >= pad;
                mask.push(if visible { 0. } else { MASKED });
            }
        }
    }
    let ids = Tensor::from_vec(ids, (n, width), dev)?;
    let pos = Tensor::from_vec(pos, (n, width), dev)?;
    let mask = Tensor::from_vec(mask, (n, 1, width, width), dev)?;
    let (_, cache) = model.hidden(&ids, &pos, &mask, None)?;
    stats.forwarded_tokens += lens.iter().sum::<usize>() as u64;
    stats.forward_passes += 1;
    (0..n)
        .map(|i| {
            if lens[i] == 0 {
                Ok(None)
            } else {
                extract_row(&cache, i, width - lens[i]).map(|r| Some(r.0))
            }
        })
        .collect()
}

/// Copies row `b` of a batch cache, dropping its `pad` left-padding columns.
fn extract_row(cache: &KvCache, b: usize, pad: usize) -> Result<RowCache> {
    let take = |t: &Tensor| -> Result<Tensor> {
        let len = t.dim(2)? - pad;
        // A compact copy: `copy()` would clone the whole batch buffer behind the view.
        t.narrow(0, b, 1)?.narrow(2, pad, len)?.force_contiguous()
    };
    Ok(RowCache(KvCache {
        k: cache.k.iter().map(take).collect::<Result<_>>()?,
        v: cache.v.iter().map(take).collect::<Result<_>>()?,
    }))
}

/// Builds the batch cache of the rows: each row's request cache left-padded with zeros.
fn stack_rows(
    model: &Qwen2,
    row_req: &[usize],
    caches: &[Option<KvCache>],
    width: usize,
    dev: &Device,
) -> Result<KvCache> {
    let cfg = model.config();
    let layers = cfg.num_hidden_layers;
    let (kvh, hd) = (cfg.num_key_value_heads, cfg.head_dim());
    // Pad each request once; rows that copy a request share its padded tensor.
    let mut padded: Vec<Option<(Vec<Tensor>, Vec<Tensor>)>> = vec![None; caches.len()];
    let mut ks: Vec<Vec<Tensor>> = vec![Vec::with_capacity(row_req.len()); layers];
    let mut vs: Vec<Vec<Tensor>> = vec![Vec::with_capacity(row_req.len()); layers];
    for &req in row_req {
        if padded[req].is_none() {
            let pad_to = |t: Option<&Tensor>| -> Result<Tensor> {
                let len = t.map_or(Ok(0), |t| t.dim(2))?;
                let zeros = Tensor::zeros((1, kvh, width - len, hd), DType::F32, dev)?;
                match t {
                    Some(t) if len == width => Ok(t.clone()),
                    Some(t) => Tensor::cat(&[&zeros, t], 2),
                    None => Ok(zeros),
                }
            };
            let c = caches[req].as_ref();
            let k = (0..layers)
                .map(|l| pad_to(c.map(|c| &c.k[l])))
                .collect::<Result<Vec<_>>>()?;
            let v = (0..layers)
                .map(|l| pad_to(c.map(|c| &c.v[l])))
                .collect::<Result<Vec<_>>>()?;
            padded[req] = Some((k, v));
        }
        if let Some((k, v)) = &padded[req] {
            for l in 0..layers {
                ks[l].push(k[l].clone());
                vs[l].push(v[l].clone());
            }
        }
    }
    Ok(KvCache {
        k: ks
            .iter()
            .map(|t| Tensor::cat(t, 0))
            .collect::<Result<_>>()?,
        v: vs
            .iter()
            .map(|t| Tensor::cat(t, 0))
            .collect::<Result<_>>()?,
    })
}

/// Keeps only batch positions `keep` of the running state.
fn compact(
    cache: &mut Option<KvCache>,
    mask_cols: &mut Vec<Vec<f32>>,
    pads: &mut Vec<usize>,
    keep: &[usize],
    dev: &Device,
) -> Result<()> {
    if keep.is_empty() {
        *cache = None;
        mask_cols.clear();
        pads.clear();
        return Ok(());
    }
    if let Some(c) = cache.as_mut() {
        let idx = Tensor::from_vec(
            keep.iter().map(|&b| b as u32).collect::<Vec<_>>(),
            keep.len(),
            dev,
        )?;
        for t in c.k.iter_mut().chain(c.v.iter_mut()) {
            *t = t.index_select(&idx, 0)?;
        }
    }
    *mask_cols = keep.iter().map(|&b| mask_cols[b].clone()).collect();
    *pads = keep.iter().map(|&b| pads[b]).collect();
    Ok(())
}
