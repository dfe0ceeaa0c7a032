//! A Qwen2 causal transformer written from differentiable candle pieces.
//!
//! candle's fused kernels (softmax_last_dim, rms_norm, rope, sdpa) have no backward pass,
//! so the stock qwen2 model trains almost none of its weights. This file is the same
//! architecture from ops that do backpropagate, with the qwen2 module's tensor names, so one
//! set of weights serves training, sampling and real checkpoints. Every call takes explicit
//! positions and an additive attention mask, so rows of a batch may sit at different
//! offsets (left padding) and a node's cached prefix can be continued by its children.
use candle_core::{DType, Device, Module, Result, Tensor, D};
use candle_nn::{Init, Linear, VarBuilder};

use super::config::PolicyConfig;

/// Value added to attention scores of masked keys: finite, so fully masked (padding)
/// query rows stay finite instead of turning into NaN.
pub const MASKED: f32 = -1e9;

/// Keys and values of every layer for a batch of rows: `(batch, kv_heads, len, head_dim)`.
#[derive(Clone, Debug)]
pub struct KvCache {
    pub k: Vec<Tensor>,
    pub v: Vec<Tensor>,
}

impl KvCache {
    pub fn len(&self) -> usize {
        self.k.first().and_then(|k| k.dim(2).ok()).unwrap_or(0)
    }
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

pub(super) struct Attention {
    pub(super) q: Linear,
    pub(super) k: Linear,
    pub(super) v: Linear,
    pub(super) o: Linear,
    heads: usize,
    kv_heads: usize,
    head_dim: usize,
}

pub(super) struct Mlp {
    pub(super) gate: Linear,
    pub(super) up: Linear,
    pub(super) down: Linear,
}

pub(super) struct Block {
    pub(super) input_norm: Tensor,
    pub(super) attn: Attention,
    pub(super) post_norm: Tensor,
    pub(super) mlp: Mlp,
}

/// The value head of AlphaZero-style search distillation: a tanh MLP on the final hidden
/// state, `Linear d->4d, ReLU, Linear 4d->d, ReLU, Linear d->1, tanh`, so a value lies in
/// (-1, 1). Its tensors are named `value_head.*`.
struct ValueHead {
    fc1: Linear,
    fc2: Linear,
    out: Linear,
}

/// Prefix of the value head's tensor names.
pub const VALUE_HEAD_PREFIX: &str = "value_head.";

impl ValueHead {
    fn new(vb: &VarBuilder, h: usize) -> Result<Self> {
        Ok(Self {
            fc1: linear(&vb.pp("fc1"), h, 4 * h, true)?,
            fc2: linear(&vb.pp("fc2"), 4 * h, h, true)?,
            out: linear(&vb.pp("out"), h, 1, true)?,
        })
    }

    fn forward(&self, hidden: &Tensor) -> Result<Tensor> {
        let x = self.fc1.forward(hidden)?.relu()?;
        let x = self.fc2.forward(&x)?.relu()?;
        self.out.forward(&x)?.tanh()?.squeeze(D::Minus1)
    }
}

/// The model. Cheap to clone (tensors are reference counted).
pub struct Qwen2 {
    cfg: PolicyConfig,
    value_head: Option<ValueHead>,
    pub(super) embed: Tensor,
    pub(super) blocks: Vec<Block>,
    pub(super) norm: Tensor,
    lm_head: Tensor,
    pub(super) cos: Tensor,
    pub(super) sin: Tensor,
}

fn linear(vb: &VarBuilder, inp: usize, out: usize, bias: bool) -> Result<Linear> {
    let std = 0.02;
    let w = vb.get_with_hints(
        (out, inp),
        "weight",
        Init::Randn {
            mean: 0.,
            stdev: std,
        },
    )?;
    let b = if bias {
        Some(vb.get_with_hints(out, "bias", Init::Const(0.))?)
    } else {
        None
    };
    Ok(Linear::new(w, b))
}

fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    super::cpu::fused::rms_norm(x, w, eps)
}

impl Qwen2 {
    /// Builds the model from `vb`. With a VarMap-backed builder missing tensors are created
    /// with a GPT-style initialisation; with a tensor-backed one they must all be present.
    pub fn new(cfg: &PolicyConfig, vb: VarBuilder) -> Result<Self> {
        let h = cfg.hidden_size;
        let hd = cfg.head_dim();
        let m = vb.pp("model");
        let embed = m.pp("embed_tokens").get_with_hints(
            (cfg.vocab_size, h),
            "weight",
            Init::Randn {
                mean: 0.,
                stdev: 0.02,
            },
        )?;
        let mut blocks = Vec::with_capacity(cfg.num_hidden_layers);
        for i in 0..cfg.num_hidden_layers {
            let l = m.pp(format!("layers.{i}"));
            let a = l.pp("self_attn");
            let attn = Attention {
                q: linear(&a.pp("q_proj"), h, cfg.num_attention_heads * hd, true)?,
                k: linear(&a.pp("k_proj"), h, cfg.num_key_value_heads * hd, true)?,
                v: linear(&a.pp("v_proj"), h, cfg.num_key_value_heads * hd, true)?,
                o: linear(&a.pp("o_proj"), cfg.num_attention_heads * hd, h, false)?,
                heads: cfg.num_attention_heads,
                kv_heads: cfg.num_key_value_heads,
                head_dim: hd,
            };
            let p = l.pp("mlp");
            let mlp = Mlp {
                gate: linear(&p.pp("gate_proj"), h, cfg.intermediate_size, false)?,
                up: linear(&p.pp("up_proj"), h, cfg.intermediate_size, false)?,
                down: linear(&p.pp("down_proj"), cfg.intermediate_size, h, false)?,
            };
            let input_norm =
                l.pp("input_layernorm")
                    .get_with_hints(h, "weight", Init::Const(1.))?;
            let post_norm =
                l.pp("post_attention_layernorm")
                    .get_with_hints(h, "weight", Init::Const(1.))?;
            blocks.push(Block {
                input_norm,
                attn,
                post_norm,
                mlp,
            });
        }
        let norm = m.pp("norm").get_with_hints(h, "weight", Init::Const(1.))?;
        let lm_head = if cfg.tie_word_embeddings {
            embed.clone()
        } else {
            vb.pp("lm_head").get_with_hints(
                (cfg.vocab_size, h),
                "weight",
                Init::Randn {
                    mean: 0.,
                    stdev: 0.02,
                },
            )?
        };
        let (cos, sin) = rope_tables(cfg, vb.dtype(), vb.device())?;
        let value_head = if cfg.arbor_value_head {
            Some(ValueHead::new(&vb.pp("value_head"), h)?)
        } else {
            None
        };
        Ok(Self {
            cfg: cfg.clone(),
            value_head,
            embed,
            blocks,
            norm,
            lm_head,
            cos,
            sin,
        })
    }

    pub fn config(&self) -> &PolicyConfig {
        &self.cfg
    }

    pub fn device(&self) -> &Device {
        self.embed.device()
    }

    /// Runs `ids` `(batch, len)` at `positions` `(batch, len)` (u32) with an additive
    /// `mask` broadcastable to `(batch, 1, len, cached + len)`, after the rows' `cache`.
    /// Returns the final hidden states `(batch, len, hidden)` and the extended cache.
    pub fn hidden(
        &self,
        ids: &Tensor,
        positions: &Tensor,
        mask: &Tensor,
        cache: Option<&KvCache>,
    ) -> Result<(Tensor, KvCache)> {
        let (b, t) = ids.dims2()?;
        // The residual stream stays `(batch * len, hidden)` through the blocks: every
        // projection is then one 2-D matmul with no reshape around it, and backward has
        // no reshape nodes to zero-fill and accumulate gradients for.
        let mut x = self.embed.index_select(&ids.flatten_all()?, 0)?;
        let flat_pos = positions.flatten_all()?;
        let hd = self.cfg.head_dim();
        let cos = self
            .cos
            .index_select(&flat_pos, 0)?
            .reshape((b, 1, t, hd))?;
        let sin = self
            .sin
            .index_select(&flat_pos, 0)?
            .reshape((b, 1, t, hd))?;
        let mut new_cache = KvCache {
            k: Vec::with_capacity(self.blocks.len()),
            v: Vec::with_capacity(self.blocks.len()),
        };
        for (i, block) in self.blocks.iter().enumerate() {
            let past = cache.map(|c| (&c.k[i], &c.v[i]));
            let normed = rms_norm(&x, &block.input_norm, self.cfg.rms_norm_eps)?;
            let (attn, k, v) = block
                .attn
                .forward(&normed, (b, t), &cos, &sin, mask, past)?;
            x = (x + attn)?;
            let normed = rms_norm(&x, &block.post_norm, self.cfg.rms_norm_eps)?;
            x = (&x + block.mlp.forward(&normed)?)?;
            new_cache.k.push(k);
            new_cache.v.push(v);
        }
        let x = rms_norm(&x, &self.norm, self.cfg.rms_norm_eps)?.reshape((
            b,
            t,
            self.cfg.hidden_size,
        ))?;
        Ok((x, new_cache))
    }

    /// Whether the model carries a value head.
    pub fn has_value_head(&self) -> bool {
        self.value_head.is_some()
    }

    /// The value head's estimates `(batch, len)` of hidden states `(batch, len, hidden)`.
    pub fn values(&self, hidden: &Tensor) -> Result<Tensor> {
        match &self.value_head {
            Some(v) => v.forward(hidden),
            None => candle_core::bail!(
                "this policy has no value head (only tree_distill runs train one)"
            ),
        }
    }

    /// Full-sequence forward for training: final hidden states `(batch, len, hidden)`
    /// under a causal mask, positions 0..len for every row (sequences are right-padded).
    pub fn hidden_train(&self, ids: &Tensor) -> Result<Tensor> {
        let (b, t) = ids.dims2()?;
        let positions = Tensor::arange(0u32, t as u32, ids.device())?
            .unsqueeze(0)?
            .broadcast_as((b, t))?
            .contiguous()?;
        let mask = causal_mask(t, self.embed.dtype(), ids.device())?;
        Ok(self.hidden(ids, &positions, &mask, None)?.0)
    }

    /// Projects hidden states to vocabulary logits.
    pub fn logits(&self, hidden: &Tensor) -> Result<Tensor> {
        let (b, t, h) = hidden.dims3()?;
        hidden
            .reshape((b * t, h))?
            .matmul(&self.lm_head.t()?)?
            .reshape((b, t, self.cfg.vocab_size))
    }

    /// Full-sequence forward for training: logits `(batch, len, vocab)` under a causal mask,
    /// positions 0..len for every row (sequences are right-padded).
    pub fn forward_train(&self, ids: &Tensor) -> Result<Tensor> {
        self.logits(&self.hidden_train(ids)?)
    }
}

impl Attention {
    /// `x` is `(batch * len, hidden)` for `(b, t)` = (batch, len); so is the output.
    fn forward(
        &self,
        x: &Tensor,
        (b, t): (usize, usize),
        cos: &Tensor,
        sin: &Tensor,
        mask: &Tensor,
        past: Option<(&Tensor, &Tensor)>,
    ) -> Result<(Tensor, Tensor, Tensor)> {
        let split = |y: Tensor, heads: usize| -> Result<Tensor> {
            y.reshape((b, t, heads, self.head_dim))?.transpose(1, 2)
        };
        let q = split(project(&self.q, x)?, self.heads)?;
        let k = split(project(&self.k, x)?, self.kv_heads)?;
        let v = split(project(&self.v, x)?, self.kv_heads)?.contiguous()?;
        let q = super::cpu::fused::rope(&q, cos, sin)?;
        let k = super::cpu::fused::rope(&k, cos, sin)?;
        let (k, v) = match past {
            Some((pk, pv)) if pk.dim(2)? > 0 => (
                Tensor::cat(&[pk, &k], 2)?.contiguous()?,
                Tensor::cat(&[pv, &v], 2)?.contiguous()?,
            ),
            _ => (k.contiguous()?, v),
        };
        let rep = self.heads / self.kv_heads;
        let kr = repeat_kv(&k, rep)?;
        let vr = repeat_kv(&v, rep)?;
        let scale = 1.0 / (self.head_dim as f64).sqrt();
        let scores = q.contiguous()?.matmul(&kr.t()?)?;
        let probs = super::cpu::fused::masked_softmax(&scores, mask, scale)?;
        let out = probs
            .matmul(&vr)?
            .transpose(1, 2)?
            .reshape((b * t, self.heads * self.head_dim))?;
        Ok((project(&self.o, &out)?, k, v))
    }
}

impl Mlp {
    /// On `(rows, hidden)`: 2-D inputs only, as candle's `Linear` broadcasts its weight
    /// over the batch for 3-D ones, which turns backward into a batch of small matmuls
    /// and a sum over them.
    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let gate = project(&self.gate, x)?;
        let up = project(&self.up, x)?;
        project(&self.down, &super::cpu::fused::swiglu(&gate, &up)?)
    }
}

/// `x W^T + b` on 2-D `x`, the bias through [`super::cpu::fused::bias_add`].
fn project(l: &Linear, x: &Tensor) -> Result<Tensor> {
    let y = x.matmul(&l.weight().t()?)?;
    match l.bias() {
        Some(b) => super::cpu::fused::bias_add(&y, b),
        None => Ok(y),
    }
}

fn repeat_kv(x: &Tensor, rep: usize) -> Result<Tensor> {
    if rep == 1 {
        return Ok(x.clone());
    }
    let (b, h, t, d) = x.dims4()?;
    x.unsqueeze(2)?
        .broadcast_as((b, h, rep, t, d))?
        .reshape((b, h * rep, t, d))
}

/// cos/sin tables `(max_positions, head_dim)` in Qwen2's non-interleaved layout.
fn rope_tables(cfg: &PolicyConfig, dtype: DType, dev: &Device) -> Result<(Tensor, Tensor)> {
    let hd = cfg.head_dim();
    let inv: Vec<f32> = (0..hd / 2)
        .map(|i| 1.0 / (cfg.rope_theta.powf(2.0 * i as f64 / hd as f64) as f32))
        .collect();
    let inv = Tensor::from_vec(inv, (1, hd / 2), dev)?;
    let pos = Tensor::arange(0u32, cfg.max_position_embeddings as u32, dev)?
        .to_dtype(DType::F32)?
        .unsqueeze(1)?;
    let freqs = pos.broadcast_mul(&inv)?;
    let freqs = Tensor::cat(&[&freqs, &freqs], 1)?;
    Ok((freqs.cos()?.to_dtype(dtype)?, freqs.sin()?.to_dtype(dtype)?))
}

/// Additive causal mask `(1, 1, len, len)`.
pub fn causal_mask(len: usize, dtype: DType, dev: &Device) -> Result<Tensor> {
    let m: Vec<f32> = (0..len)
        .flat_map(|i| (0..len).map(move |j| if j <= i { 0. } else { MASKED }))
        .collect();
    Tensor::from_vec(m, (1, 1, len, len), dev)?.to_dtype(dtype)
}

/// Per-token log-probabilities of `targets` `(batch, len)` under `logits`
/// `(batch, len, vocab)`, differentiable.
pub fn token_logprobs(logits: &Tensor, targets: &Tensor) -> Result<Tensor> {
    let logp = candle_nn::ops::log_softmax(logits, D::Minus1)?;
    logp.gather(&targets.unsqueeze(D::Minus1)?.contiguous()?, D::Minus1)?
        .squeeze(D::Minus1)
}
