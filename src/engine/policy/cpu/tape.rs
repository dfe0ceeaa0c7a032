//! The training forward of the Qwen2 body (embedding, blocks, final norm) with its
//! backward written by hand, for the update step on CPU in f32.
//!
//! candle's autograd records every op of the body as a node and, in backward, allocates,
//! zero-fills and accumulates a gradient tensor per node: on the default model at batch
//! 128 x 41 that bookkeeping (memsets, gradient adds, broadcast reductions for grouped
//! keys and values) was about half of the update step, beside the matmuls. Here the
//! forward keeps what backward needs (a tape of activations per block) and backward is a
//! fixed sequence of gemm calls that accumulate in place and fused loops over rows.
//! Attention is small gemms per head with a causal softmax between them (full `len x len`
//! blocks with the upper triangle zero: on these short sequences gemm on the whole block
//! beat hand loops over the lower triangle). The q/k/v projections are one gemm on
//! stacked weights, gate and up another, and the batch runs in a fixed number of parts
//! of whole sequences spread over the threads (see [`Qwen2::hidden_taped`]).
//!
//! The loss head stays in candle: the final hidden states are handed out as a fresh
//! variable, `loss.backward()` gives their gradient (and the head's own), and
//! [`Taped::backward`] carries it through the body. Elsewhere (CUDA, other dtypes) the
//! body runs on candle's autograd ([`Qwen2::hidden_train`]); both give the same gradients
//! within float rounding (tested below).
use candle_core::backprop::GradStore;
use candle_core::{bail, DType, Result, Tensor, Var};
use gemm::Parallelism;
use rayon::prelude::*;

use super::fused::{
    chunk_rows, rms_norm_bwd, rms_norm_rows, rotate, rotate_bwd, swiglu_pairs, swiglu_pairs_bwd,
};
use super::simd::{axpy, dot, exp_shifted, max, simd_kernel, sum};
use crate::engine::policy::model::Qwen2;

/// A matrix in a slice with row and column strides (a row-major matrix or its transpose).
#[derive(Clone, Copy)]
struct Mat<'a> {
    data: &'a [f32],
    rows: usize,
    cols: usize,
    rs: usize,
    cs: usize,
}

impl<'a> Mat<'a> {
    /// Row-major `rows x cols`.
    fn new(data: &'a [f32], rows: usize, cols: usize) -> Self {
        Mat {
            data,
            rows,
            cols,
            rs: cols,
            cs: 1,
        }
    }

    fn t(self) -> Self {
        Mat {
            data: self.data,
            rows: self.cols,
            cols: self.rows,
            rs: self.cs,
            cs: self.rs,
        }
    }

    /// Whether every element lies inside the slice.
    fn in_bounds(&self) -> bool {
        self.rows == 0
            || self.cols == 0
            || (self.rows - 1) * self.rs + (self.cols - 1) * self.cs < self.data.len()
    }
}

/// `c = a b`, or `c += a b` when `accumulate`; `c` is row-major `a.rows x b.cols`.
fn matmul(c: &mut [f32], a: Mat, b: Mat, accumulate: bool) -> Result<()> {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    if b.rows != k || c.len() != m * n || !a.in_bounds() || !b.in_bounds() {
        bail!(
            "tape matmul: {}x{} by {}x{} into {} elements",
            a.rows,
            a.cols,
            b.rows,
            b.cols,
            c.len()
        );
    }
    if m == 0 || n == 0 {
        return Ok(());
    }
    if k == 0 {
        if !accumulate {
            c.fill(0.0);
        }
        return Ok(());
    }
    // Threads share the rows of `c`, each running gemm alone on its band: gemm's own
    // split of a tall, thin product (5120 x 128 by 128 x 384) ran no faster on two
    // threads than on one (bench `profile`). Small products stay on this thread.
    let threads = rayon::current_num_threads();
    let band = if threads > 1 && m * n * k >= 1 << 15 && m >= 2 * 16 {
        m.div_ceil(threads)
    } else {
        m
    };
    c.par_chunks_mut(band * n).enumerate().for_each(|(i, c)| {
        let rows = c.len() / n;
        let a = Mat {
            data: &a.data[i * band * a.rs..],
            rows,
            ..a
        };
        gemm_strided(c, n, a, b, 1.0, accumulate);
    });
    Ok(())
}

fn data(t: &Tensor) -> Result<Vec<f32>> {
    t.flatten_all()?.to_vec1::<f32>()
}

/// `x + b` on every row, in place.
fn add_bias(x: &mut [f32], b: Option<&[f32]>) {
    if let Some(b) = b {
        let c = chunk_rows(x.len() / b.len(), b.len());
        x.par_chunks_mut(c * b.len()).for_each(|x| {
            for row in x.chunks_exact_mut(b.len()) {
                axpy(1.0, b, row);
            }
        });
    }
}

/// Sum of the rows of `g` (`rows x n`).
fn col_sum(g: &[f32], n: usize) -> Vec<f32> {
    let mut s = vec![0f32; n];
    for row in g.chunks_exact(n) {
        axpy(1.0, row, &mut s);
    }
    s
}

simd_kernel! {
    #[allow(clippy::too_many_arguments)]
    fn rope_chunk(x: &mut [f32], width: usize, rotated: usize, first: usize, len: usize, cos: &[f32], sin: &[f32], back: bool) {
        let dim = cos.len() / len;
        for (n, row) in x.chunks_exact_mut(width).enumerate() {
            let p = ((first + n) % len) * dim;
            let (c, s) = (&cos[p..p + dim], &sin[p..p + dim]);
            for h in row[..rotated].chunks_exact_mut(dim) {
                if back {
                    rotate_bwd(h, c, s);
                } else {
                    rotate(h, c, s);
                }
            }
        }
    }
}

/// Rotary embedding in place on the first `rotated` columns (whole heads of `dim`) of
/// rows `batch * len` of width `width`, row `n` at position `n % len`; `cos`, `sin` are
/// `(len, dim)`. With `back`, its backward (the output gradient becomes the input's).
fn rope(
    x: &mut [f32],
    width: usize,
    rotated: usize,
    len: usize,
    (cos, sin): (&[f32], &[f32]),
    back: bool,
) {
    let c = chunk_rows(x.len() / width, width);
    x.par_chunks_mut(c * width)
        .enumerate()
        .for_each(|(i, x)| rope_chunk(x, width, rotated, i * c, len, cos, sin, back));
}

/// Shapes of one attention: `heads` query heads over `kv_heads` key/value heads of
/// `dim` each, sequences of `len`.
#[derive(Clone, Copy)]
struct Heads {
    heads: usize,
    kv_heads: usize,
    dim: usize,
    len: usize,
}

impl Heads {
    fn q_width(&self) -> usize {
        self.heads * self.dim
    }
    fn kv_width(&self) -> usize {
        self.kv_heads * self.dim
    }
    /// A row of the stacked projections: the query heads, then the keys, then the values.
    fn qkv_width(&self) -> usize {
        self.q_width() + 2 * self.kv_width()
    }
    /// The key/value head that query head `h` reads.
    fn group(&self, h: usize) -> usize {
        h / (self.heads / self.kv_heads)
    }
}

/// `c = beta a b`, or `c += beta a b` when `accumulate`, on this thread; `c` is
/// `a.rows x b.cols` with row stride `c_rs` (a band of [`matmul`]'s rows, or a head's
/// columns inside wider rows).
fn gemm_strided(c: &mut [f32], c_rs: usize, a: Mat, b: Mat, beta: f32, accumulate: bool) {
    let (m, k, n) = (a.rows, a.cols, b.cols);
    assert!(
        b.rows == k
            && a.in_bounds()
            && b.in_bounds()
            && (m == 0 || n == 0 || (m - 1) * c_rs + n <= c.len()),
        "tape gemm shapes"
    );
    if m == 0 || n == 0 || k == 0 {
        return;
    }
    // SAFETY: the assertion above keeps every index gemm reads inside `a` and `b`
    // (`in_bounds`) and every index it writes (row r < m at r * c_rs, columns < n)
    // inside `c`, which is borrowed mutably and so aliases neither input.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            c_rs as isize,
            accumulate,
            a.data.as_ptr(),
            a.cs as isize,
            a.rs as isize,
            b.data.as_ptr(),
            b.cs as isize,
            b.rs as isize,
            1.0,
            beta,
            false,
            false,
            false,
            Parallelism::None,
        );
    }
}

/// A head's `len x dim` block inside rows of width `width`, from column `col`.
fn head(x: &[f32], len: usize, dim: usize, width: usize, col: usize) -> Mat<'_> {
    Mat {
        data: &x[col..],
        rows: len,
        cols: dim,
        rs: width,
        cs: 1,
    }
}

simd_kernel! {
    /// [`attention`] of one sequence: per head, the scores by one gemm into the head's
    /// `len x len` block of `p`, a causal softmax over each row, and the output by a
    /// second gemm (the upper triangle is zero, so it adds nothing).
    fn attention_seq(qkv: &[f32], s: Heads, p: &mut [f32], o: &mut [f32]) {
        let (t, hd, wq, wk, w) = (s.len, s.dim, s.q_width(), s.kv_width(), s.qkv_width());
        let scale = 1.0 / (hd as f32).sqrt();
        for h in 0..s.heads {
            let g = s.group(h);
            let p = &mut p[h * t * t..][..t * t];
            let q = head(qkv, t, hd, w, h * hd);
            let k = head(qkv, t, hd, w, wq + g * hd);
            gemm_strided(p, t, q, k.t(), scale, false);
            for (i, row) in p.chunks_exact_mut(t).enumerate() {
                let (live, dead) = row.split_at_mut(i + 1);
                let max = max(live);
                exp_shifted(live, max);
                let inv = 1.0 / sum(live);
                for v in live.iter_mut() {
                    *v *= inv;
                }
                dead.fill(0.0);
            }
            let v = head(qkv, t, hd, w, wq + wk + g * hd);
            gemm_strided(&mut o[h * hd..], wq, Mat::new(p, t, t), v, 1.0, false);
        }
    }
}

/// Causal attention of every sequence, reading the rotated queries and keys and the
/// values from the stacked projections `qkv` (`(batch * len, qkv_width)`): `p` gets the
/// probabilities `(batch, heads, len, len)` (upper triangle zero), `o` the outputs
/// `(batch * len, heads * dim)`.
fn attention(qkv: &[f32], s: Heads, p: &mut [f32], o: &mut [f32]) {
    let (t, wq, w) = (s.len, s.q_width(), s.qkv_width());
    p.par_chunks_mut(s.heads * t * t)
        .zip(o.par_chunks_mut(t * wq))
        .zip(qkv.par_chunks(t * w))
        .for_each(|((p, o), qkv)| attention_seq(qkv, s, p, o));
}

simd_kernel! {
    /// [`attention_bwd`] of one sequence, per head: `dP = dO V^T` by gemm into `ds`, the
    /// softmax's backward row by row (`dS = scale P (dP - rowsum(P dP))`, zero above the
    /// diagonal), then `dQ = dS K`, `dK += dS^T Q` and `dV += P^T dO` by gemm.
    fn attention_bwd_seq(
        qkv: &[f32],
        p: &[f32],
        d_o: &[f32],
        s: Heads,
        dqkv: &mut [f32],
        ds: &mut [f32],
    ) {
        let (t, hd, wq, wk, w) = (s.len, s.dim, s.q_width(), s.kv_width(), s.qkv_width());
        let scale = 1.0 / (hd as f32).sqrt();
        dqkv.fill(0.0);
        for h in 0..s.heads {
            let g = s.group(h);
            let (ko, vo) = (wq + g * hd, wq + wk + g * hd);
            let p = &p[h * t * t..][..t * t];
            let d_oh = head(d_o, t, hd, wq, h * hd);
            gemm_strided(ds, t, d_oh, head(qkv, t, hd, w, vo).t(), 1.0, false);
            for (i, (d, pr)) in ds.chunks_exact_mut(t).zip(p.chunks_exact(t)).enumerate() {
                let (live, dead) = d.split_at_mut(i + 1);
                let pr = &pr[..=i];
                let weighted = dot(pr, live);
                for (d, &pj) in live.iter_mut().zip(pr) {
                    *d = scale * pj * (*d - weighted);
                }
                dead.fill(0.0);
            }
            let ds_m = Mat::new(ds, t, t);
            gemm_strided(&mut dqkv[h * hd..], w, ds_m, head(qkv, t, hd, w, ko), 1.0, false);
            gemm_strided(&mut dqkv[ko..], w, ds_m.t(), head(qkv, t, hd, w, h * hd), 1.0, true);
            gemm_strided(&mut dqkv[vo..], w, Mat::new(p, t, t).t(), d_oh, 1.0, true);
        }
    }
}

/// Causal attention's backward: from the output gradient `d_o`, the gradients of the
/// stacked (rotated) queries and keys and the values, written to `dqkv` in the layout
/// of `qkv`.
fn attention_bwd(qkv: &[f32], p: &[f32], d_o: &[f32], s: Heads, dqkv: &mut [f32]) {
    let (t, wq, w) = (s.len, s.q_width(), s.qkv_width());
    dqkv.par_chunks_mut(t * w)
        .zip(qkv.par_chunks(t * w))
        .zip(d_o.par_chunks(t * wq))
        .zip(p.par_chunks(s.heads * t * t))
        .for_each_init(
            || vec![0f32; t * t],
            |ds, (((dqkv, qkv), d_o), p)| attention_bwd_seq(qkv, p, d_o, s, dqkv, ds),
        );
}

/// One block's weights, copied out of their tensors.
struct BlockWeights {
    input_norm: Vec<f32>,
    /// The query, key and value projections stacked (`qkv_width x hidden`), so one gemm
    /// makes all three: three thin products ran well below gemm's speed on one wide one.
    qkv: Vec<f32>,
    /// Their biases stacked, zero for a projection without one (`None`: none has one).
    qkv_bias: Option<Vec<f32>>,
    o: Vec<f32>,
    post_norm: Vec<f32>,
    /// The gate and up projections stacked (`2 inter x hidden`).
    gate_up: Vec<f32>,
    down: Vec<f32>,
}

impl BlockWeights {
    /// `block`'s weights, the projections stacked, checked against the shapes.
    fn of(
        block: &crate::engine::policy::model::Block,
        heads: Heads,
        inter: usize,
        h: usize,
    ) -> Result<Self> {
        let (wq, wk, wqkv) = (heads.q_width(), heads.kv_width(), heads.qkv_width());
        let a = &block.attn;
        let stacked = |ts: &[&Tensor]| -> Result<Vec<f32>> {
            let mut v = Vec::new();
            for t in ts {
                v.extend(data(t)?);
            }
            Ok(v)
        };
        let qkv_bias = if [&a.q, &a.k, &a.v].iter().any(|l| l.bias().is_some()) {
            let mut v = Vec::with_capacity(wqkv);
            for (l, width) in [(&a.q, wq), (&a.k, wk), (&a.v, wk)] {
                match l.bias() {
                    Some(b) => v.extend(data(b)?),
                    None => v.extend(std::iter::repeat_n(0f32, width)),
                }
            }
            Some(v)
        } else {
            None
        };
        let w = BlockWeights {
            input_norm: data(&block.input_norm)?,
            qkv: stacked(&[a.q.weight(), a.k.weight(), a.v.weight()])?,
            qkv_bias,
            o: data(a.o.weight())?,
            post_norm: data(&block.post_norm)?,
            gate_up: stacked(&[block.mlp.gate.weight(), block.mlp.up.weight()])?,
            down: data(block.mlp.down.weight())?,
        };
        if w.qkv.len() != wqkv * h || w.gate_up.len() != 2 * inter * h {
            bail!("a block's projections do not match the model's configuration");
        }
        Ok(w)
    }
}

/// What one block's backward needs from its forward.
struct BlockTape {
    /// The block's input (the residual stream) and its normed form with `1 / rms` rows.
    x_in: Vec<f32>,
    inv1: Vec<f32>,
    n1: Vec<f32>,
    /// Rotated queries and keys and the values (`qkv_width` per row), attention
    /// probabilities and outputs.
    qkv: Vec<f32>,
    p: Vec<f32>,
    o: Vec<f32>,
    /// The residual stream after attention, normed, and the MLP's pieces.
    x_mid: Vec<f32>,
    inv2: Vec<f32>,
    n2: Vec<f32>,
    /// Each row's gate then up projection.
    gate_up: Vec<f32>,
    act: Vec<f32>,
}

/// What every part of the batch shares: shapes, rotary tables and the weights.
struct Shared {
    heads: Heads,
    hidden: usize,
    inter: usize,
    eps: f32,
    cos: Vec<f32>,
    sin: Vec<f32>,
    weights: Vec<BlockWeights>,
    final_norm: Vec<f32>,
}

/// One part of the batch (whole sequences) through the body: everything its backward
/// needs.
struct Part {
    ids: Vec<u32>,
    blocks: Vec<BlockTape>,
    x_final: Vec<f32>,
    inv_final: Vec<f32>,
}

/// The body's forward on the CPU, in parts of whole sequences.
struct Tape {
    shared: Shared,
    parts: Vec<Part>,
}

/// The final hidden states of a training forward, ready for a loss, and the way back.
pub struct Taped {
    hidden: Tensor,
    tape: Option<Tape>,
}

impl Qwen2 {
    /// [`Qwen2::hidden_train`] for a step of gradient descent: the final hidden states
    /// `(batch, len, hidden)` of `ids` under a causal mask, positions from 0. Take the
    /// loss's gradients with [`Taped::backward`]. On the CPU in f32 the body's backward
    /// is hand-written (see the module); elsewhere it is candle's autograd.
    ///
    /// The batch is cut into [`PARTS`] parts of whole sequences, and each part runs the
    /// whole body on one thread (their weight gradients are summed in part order at the
    /// end): a few hand-overs per step instead of one per operation, which on a small
    /// batch left threads waiting on each other for a sixth of the step.
    pub fn hidden_taped(&self, ids: &Tensor) -> Result<Taped> {
        if !self.embed.device().is_cpu() || self.embed.dtype() != DType::F32 || !super::kernels_on()
        {
            return Ok(Taped {
                hidden: self.hidden_train(ids)?,
                tape: None,
            });
        }
        let (b, t) = ids.dims2()?;
        let cfg = self.config();
        let (h, hd) = (cfg.hidden_size, cfg.head_dim());
        if t > cfg.max_position_embeddings {
            bail!(
                "a training sequence of {t} tokens is longer than the model's {} positions",
                cfg.max_position_embeddings
            );
        }
        let heads = Heads {
            heads: cfg.num_attention_heads,
            kv_heads: cfg.num_key_value_heads,
            dim: hd,
            len: t,
        };
        if heads.kv_heads == 0 || heads.heads % heads.kv_heads != 0 || hd % 2 != 0 {
            bail!(
                "{} attention heads cannot share {} key/value heads of {hd}",
                heads.heads,
                heads.kv_heads
            );
        }
        let inter = cfg.intermediate_size;
        let weights = self
            .blocks
            .iter()
            .map(|block| BlockWeights::of(block, heads, inter, h))
            .collect::<Result<Vec<_>>>()?;
        let shared = Shared {
            heads,
            hidden: h,
            inter,
            eps: cfg.rms_norm_eps as f32,
            cos: data(&self.cos.narrow(0, 0, t)?)?,
            sin: data(&self.sin.narrow(0, 0, t)?)?,
            weights,
            final_norm: data(&self.norm)?,
        };
        let ids_v = ids.flatten_all()?.to_vec1::<u32>()?;
        // Each part keeps a copy of every weight gradient until they are summed: `PARTS`
        // parts while those copies stay small, else one (the operations inside still
        // share the threads). The count never depends on the threads, so neither do the
        // sums' rounding and a run's results.
        let params: usize = shared
            .weights
            .iter()
            .map(|w| w.qkv.len() + w.o.len() + w.gate_up.len() + w.down.len())
            .sum();
        let parts = if params * 4 * PARTS <= PART_GRADIENT_BYTES {
            PARTS.min(b).max(1)
        } else {
            1
        };
        let per_part = b.div_ceil(parts).max(1) * t;
        let chunks: Vec<&[u32]> = if ids_v.is_empty() {
            vec![&[]]
        } else {
            ids_v.chunks(per_part).collect()
        };
        let results: Vec<Result<(Vec<f32>, Part)>> = chunks
            .into_par_iter()
            .map(|ids| forward_part(&shared, &self.embed, ids))
            .collect();
        let mut out = Vec::with_capacity(b * t * h);
        let mut parts = Vec::with_capacity(results.len());
        for r in results {
            let (o, part) = r?;
            out.extend_from_slice(&o);
            parts.push(part);
        }
        // A fresh variable: the loss's backward stops here and hands its gradient over.
        let hidden = Var::from_vec(out, (b, t, h), self.embed.device())?.into_inner();
        Ok(Taped {
            hidden,
            tape: Some(Tape { shared, parts }),
        })
    }
}

/// Parts a batch is cut into (whole sequences each): threads take parts, and the
/// operations inside a part share whatever threads are left. Two, for two cores: at
/// batch 16 four parts of four sequences ran slower on two threads (smaller gemms, more
/// gradient copies to sum).
const PARTS: usize = 2;

/// The most memory the parts' copies of the weight gradients may take before the batch
/// runs as one part.
const PART_GRADIENT_BYTES: usize = 256 << 20;

/// The body's forward on the sequences of `ids` (whole sequences of the shared length):
/// the final hidden states and the part's tape.
fn forward_part(s: &Shared, embed: &Tensor, ids: &[u32]) -> Result<(Vec<f32>, Part)> {
    let (heads, h, inter, t) = (s.heads, s.hidden, s.inter, s.heads.len);
    let (wq, wk, wqkv) = (heads.q_width(), heads.kv_width(), heads.qkv_width());
    let n = ids.len();
    let b = n / t.max(1);
    let mut x = data(&embed.index_select(&Tensor::from_slice(ids, n, embed.device())?, 0)?)?;
    let project = |inp: &[f32], wt: &[f32], out: usize, width: usize| {
        let mut y = vec![0f32; n * out];
        matmul(
            &mut y,
            Mat::new(inp, n, width),
            Mat::new(wt, out, width).t(),
            false,
        )?;
        Ok::<_, candle_core::Error>(y)
    };
    let mut blocks = Vec::with_capacity(s.weights.len());
    for w in &s.weights {
        let (n1, inv1) = rms_norm_rows(&x, &w.input_norm, s.eps);
        let mut qkv = project(&n1, &w.qkv, wqkv, h)?;
        add_bias(&mut qkv, w.qkv_bias.as_deref());
        // Queries and keys are rotated, values not.
        rope(&mut qkv, wqkv, wq + wk, t, (&s.cos, &s.sin), false);
        let mut p = vec![0f32; b * heads.heads * t * t];
        let mut o = vec![0f32; n * wq];
        attention(&qkv, heads, &mut p, &mut o);
        let x_in = x.clone();
        matmul(&mut x, Mat::new(&o, n, wq), Mat::new(&w.o, h, wq).t(), true)?;
        let (n2, inv2) = rms_norm_rows(&x, &w.post_norm, s.eps);
        let gate_up = project(&n2, &w.gate_up, 2 * inter, h)?;
        let act = swiglu_pairs(&gate_up, inter);
        let x_mid = x.clone();
        matmul(
            &mut x,
            Mat::new(&act, n, inter),
            Mat::new(&w.down, h, inter).t(),
            true,
        )?;
        blocks.push(BlockTape {
            x_in,
            inv1,
            n1,
            qkv,
            p,
            o,
            x_mid,
            inv2,
            n2,
            gate_up,
            act,
        });
    }
    let (out, inv_final) = rms_norm_rows(&x, &s.final_norm, s.eps);
    Ok((
        out,
        Part {
            ids: ids.to_vec(),
            blocks,
            x_final: x,
            inv_final,
        },
    ))
}

impl Taped {
    /// Whether the hand-written backward runs (the CPU in f32, kernels on), rather than
    /// candle's autograd.
    pub fn is_taped(&self) -> bool {
        self.tape.is_some()
    }

    /// The final hidden states `(batch, len, hidden)`.
    pub fn hidden(&self) -> &Tensor {
        &self.hidden
    }

    /// Gradients of `loss` (a scalar computed from [`Taped::hidden`]) for every variable
    /// of `model`, the model that made this forward, and of whatever else the loss reads.
    pub fn backward(self, model: &Qwen2, loss: &Tensor) -> Result<GradStore> {
        let mut grads = loss.backward()?;
        let Some(tape) = self.tape else {
            return Ok(grads);
        };
        let Some(dh) = grads.remove(&self.hidden) else {
            return Ok(grads);
        };
        let dh = data(&dh)?;
        for (tensor, grad) in tape.backward(model, &dh)? {
            if !tensor.is_variable() {
                continue;
            }
            let grad = Tensor::from_vec(grad, tensor.shape(), tensor.device())?;
            let grad = match grads.get(&tensor) {
                Some(prev) => (prev + grad)?,
                None => grad,
            };
            grads.insert(&tensor, grad);
        }
        Ok(grads)
    }
}

impl Tape {
    /// The body's gradients from the final hidden states' `dh`, each with its tensor:
    /// every part's backward on its thread, their gradients summed in part order.
    fn backward(self, model: &Qwen2, dh: &[f32]) -> Result<Vec<(Tensor, Vec<f32>)>> {
        let h = self.shared.hidden;
        let rows: usize = self.parts.iter().map(|p| p.ids.len()).sum();
        if dh.len() != rows * h || model.blocks.len() != self.shared.weights.len() {
            bail!("the taped backward was handed another model or batch");
        }
        let mut dhs = Vec::with_capacity(self.parts.len());
        let mut rest = dh;
        for p in &self.parts {
            let (head, tail) = rest.split_at(p.ids.len() * h);
            dhs.push(head);
            rest = tail;
        }
        let shared = &self.shared;
        type PartGrads = (Vec<(Tensor, Vec<f32>)>, Vec<u32>, Vec<f32>);
        let results: Vec<Result<PartGrads>> = self
            .parts
            .into_par_iter()
            .zip(dhs)
            .map(|(part, dh)| part.backward(shared, model, dh))
            .collect::<Vec<_>>();
        let mut out: Vec<(Tensor, Vec<f32>)> = Vec::new();
        // The embedding: each row's gradient goes to its token's row.
        let mut de = vec![0f32; model.embed.elem_count()];
        for (i, r) in results.into_iter().enumerate() {
            let (grads, ids, dx) = r?;
            if i == 0 {
                out = grads;
            } else {
                for ((_, sum), (_, g)) in out.iter_mut().zip(grads) {
                    axpy(1.0, &g, sum);
                }
            }
            for (&id, g) in ids.iter().zip(dx.chunks_exact(h)) {
                let o = id as usize * h;
                axpy(1.0, g, &mut de[o..o + h]);
            }
        }
        out.push((model.embed.clone(), de));
        Ok(out)
    }
}

impl Part {
    /// This part's gradients from its final hidden states' `dh`, each with its tensor,
    /// always in the same order, then its token ids and the gradient of its embedded rows.
    /// Each block's tape is dropped once its gradients are out.
    #[allow(clippy::type_complexity)]
    fn backward(
        self,
        sh: &Shared,
        model: &Qwen2,
        dh: &[f32],
    ) -> Result<(Vec<(Tensor, Vec<f32>)>, Vec<u32>, Vec<f32>)> {
        let (n, h, inter, s) = (self.ids.len(), sh.hidden, sh.inter, sh.heads);
        let (wq, wk, wqkv, t) = (s.q_width(), s.kv_width(), s.qkv_width(), s.len);
        let mut out = Vec::new();
        let mut dx = vec![0f32; n * h];
        let mut dw = vec![0f32; h];
        rms_norm_bwd(
            &self.x_final,
            &sh.final_norm,
            &self.inv_final,
            dh,
            &mut dx,
            &mut dw,
        );
        out.push((model.norm.clone(), dw));
        // `d W = g^T x` for a projection `y = x W^T` with output gradient g `(n, out)`.
        let weight_grad = |g: &[f32], x: &[f32], outs: usize, ins: usize| {
            let mut dw = vec![0f32; outs * ins];
            matmul(
                &mut dw,
                Mat::new(g, n, outs).t(),
                Mat::new(x, n, ins),
                false,
            )?;
            Ok::<_, candle_core::Error>(dw)
        };
        // Scratch reused by every block (each is overwritten before it is read).
        let mut d_act = vec![0f32; n * inter];
        let mut dn = vec![0f32; n * h];
        let mut d_o = vec![0f32; n * wq];
        let mut dqkv = vec![0f32; n * wqkv];
        for ((bt, block), w) in self
            .blocks
            .into_iter()
            .zip(&model.blocks)
            .zip(&sh.weights)
            .rev()
        {
            // MLP: x_out = x_mid + down(swiglu(gate(n2), up(n2))).
            out.push((
                block.mlp.down.weight().clone(),
                weight_grad(&dx, &bt.act, h, inter)?,
            ));
            matmul(
                &mut d_act,
                Mat::new(&dx, n, h),
                Mat::new(&w.down, h, inter),
                false,
            )?;
            let mut d_gate_up = bt.gate_up;
            swiglu_pairs_bwd(&d_act, &mut d_gate_up, inter);
            let mut d_gate = weight_grad(&d_gate_up, &bt.n2, 2 * inter, h)?;
            let d_up = d_gate.split_off(inter * h);
            out.push((block.mlp.gate.weight().clone(), d_gate));
            out.push((block.mlp.up.weight().clone(), d_up));
            matmul(
                &mut dn,
                Mat::new(&d_gate_up, n, 2 * inter),
                Mat::new(&w.gate_up, 2 * inter, h),
                false,
            )?;
            let mut dw = vec![0f32; h];
            rms_norm_bwd(&bt.x_mid, &w.post_norm, &bt.inv2, &dn, &mut dx, &mut dw);
            out.push((block.post_norm.clone(), dw));
            // Attention: x_mid = x_in + o_proj(attention(rope(q), rope(k), v)).
            let a = &block.attn;
            out.push((a.o.weight().clone(), weight_grad(&dx, &bt.o, h, wq)?));
            matmul(&mut d_o, Mat::new(&dx, n, h), Mat::new(&w.o, h, wq), false)?;
            attention_bwd(&bt.qkv, &bt.p, &d_o, s, &mut dqkv);
            rope(&mut dqkv, wqkv, wq + wk, t, (&sh.cos, &sh.sin), true);
            let bias_grad = w.qkv_bias.is_some().then(|| col_sum(&dqkv, wqkv));
            let mut dw_q = weight_grad(&dqkv, &bt.n1, wqkv, h)?;
            let mut dw_k = dw_q.split_off(wq * h);
            let dw_v = dw_k.split_off(wk * h);
            let ranges = [(0, wq), (wq, wq + wk), (wq + wk, wqkv)];
            for ((lin, dw), (from, to)) in [(&a.q, dw_q), (&a.k, dw_k), (&a.v, dw_v)]
                .into_iter()
                .zip(ranges)
            {
                if let (Some(b), Some(g)) = (lin.bias(), &bias_grad) {
                    out.push((b.clone(), g[from..to].to_vec()));
                }
                out.push((lin.weight().clone(), dw));
            }
            matmul(
                &mut dn,
                Mat::new(&dqkv, n, wqkv),
                Mat::new(&w.qkv, wqkv, h),
                false,
            )?;
            let mut dw = vec![0f32; h];
            rms_norm_bwd(&bt.x_in, &w.input_norm, &bt.inv1, &dn, &mut dx, &mut dw);
            out.push((block.input_norm.clone(), dw));
        }
        Ok((out, self.ids, dx))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::policy::model::token_logprobs;
    use crate::engine::policy::PolicyConfig;
    use candle_core::Device;
    use candle_nn::{VarBuilder, VarMap};
    use rand::{Rng, SeedableRng};

    /// A model with every weight drawn at random (norms around 1, biases non-zero), so
    /// no gradient is trivially zero or one.
    fn random_model(cfg: &PolicyConfig, seed: u64) -> (VarMap, Qwen2) {
        let vm = VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &Device::Cpu);
        let model = Qwen2::new(cfg, vb).unwrap();
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        // In name order: the map's own order changes from run to run.
        let vars = vm.data().lock().unwrap();
        let mut names: Vec<&String> = vars.keys().collect();
        names.sort();
        for name in names {
            let var = &vars[name];
            let norm = name.ends_with("norm.weight");
            let v: Vec<f32> = (0..var.elem_count())
                .map(|_| {
                    let u: f32 = rng.random_range(-0.5..0.5);
                    if norm {
                        1.0 + u
                    } else {
                        u
                    }
                })
                .collect();
            var.set(&Tensor::from_vec(v, var.shape(), &Device::Cpu).unwrap())
                .unwrap();
        }
        drop(vars);
        (vm, model)
    }

    /// A loss that reads the logits and, with a value head, the values.
    fn loss(model: &Qwen2, hidden: &Tensor, targets: &Tensor, coef: &Tensor) -> Tensor {
        let logp = token_logprobs(&model.logits(hidden).unwrap(), targets).unwrap();
        let mut l = (logp * coef).unwrap().sum_all().unwrap();
        if model.has_value_head() {
            let v = model.values(hidden).unwrap();
            l = (l + (v.sqr().unwrap().sum_all().unwrap() * 0.3).unwrap()).unwrap();
        }
        l
    }

    /// Token ids `(batch, len)` drawn from the vocabulary.
    fn random_ids(rng: &mut impl Rng, cfg: &PolicyConfig, batch: usize, len: usize) -> Tensor {
        let ids: Vec<u32> = (0..batch * len)
            .map(|_| rng.random_range(0..cfg.vocab_size as u32))
            .collect();
        Tensor::from_vec(ids, (batch, len), &Device::Cpu).unwrap()
    }

    /// Per-token loss weights `(batch, len)` in [-1, 1).
    fn random_coefs(rng: &mut impl Rng, batch: usize, len: usize) -> Tensor {
        let coef: Vec<f32> = (0..batch * len)
            .map(|_| rng.random_range(-1.0..1.0))
            .collect();
        Tensor::from_vec(coef, (batch, len), &Device::Cpu).unwrap()
    }

    fn check(cfg: PolicyConfig, batch: usize, len: usize, seed: u64) {
        let (vm, model) = random_model(&cfg, seed);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed + 1);
        let ids = random_ids(&mut rng, &cfg, batch, len);
        let targets = random_ids(&mut rng, &cfg, batch, len);
        let coef = random_coefs(&mut rng, batch, len);

        let autograd_hidden = model.hidden_train(&ids).unwrap();
        let autograd_loss = loss(&model, &autograd_hidden, &targets, &coef);
        let expected = autograd_loss.backward().unwrap();

        let taped = model.hidden_taped(&ids).unwrap();
        assert!(
            taped.tape.is_some(),
            "the CPU f32 model takes the taped path"
        );
        let hidden_diff = (taped.hidden() - &autograd_hidden)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(hidden_diff < 1e-5, "hidden states differ by {hidden_diff}");
        let taped_loss = loss(&model, taped.hidden(), &targets, &coef);
        let got = taped.backward(&model, &taped_loss).unwrap();
        let (a, b) = (
            autograd_loss.to_scalar::<f32>().unwrap(),
            taped_loss.to_scalar::<f32>().unwrap(),
        );
        assert!((a - b).abs() <= 1e-5 * a.abs().max(1.0), "loss {a} vs {b}");
        let vars = vm.data().lock().unwrap();
        assert!(vars.len() > 10);
        for (name, var) in vars.iter() {
            let want = expected
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("autograd has no gradient for {name}"));
            let have = got
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("the tape has no gradient for {name}"));
            let want = want.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let have = have.flatten_all().unwrap().to_vec1::<f32>().unwrap();
            let scale = want.iter().fold(0f32, |m, v| m.max(v.abs()));
            assert!(scale > 0.0, "{name}: autograd's gradient is all zero");
            for (i, (w, h)) in want.iter().zip(&have).enumerate() {
                assert!(
                    (w - h).abs() <= 1e-4 * scale,
                    "{name}[{i}]: autograd {w}, tape {h} (largest {scale})"
                );
            }
        }
    }

    #[test]
    fn the_taped_backward_gives_autograds_gradients_for_every_weight() {
        let mut cfg = PolicyConfig::micro(13);
        cfg.num_hidden_layers = 2;
        // One sequence per part, and uneven parts (two and one, four and three); on one
        // thread and on three.
        for (threads, batch) in [(1, 2), (3, 3), (1, 7), (3, 7)] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| check(cfg.clone(), batch, 7, 1));
        }
        // Longer than one sixteen-lane vector of keys, and not a multiple of it.
        check(cfg, 2, 37, 4);
    }

    #[test]
    fn the_taped_backward_matches_with_grouped_heads_tied_embeddings_and_a_value_head() {
        let mut cfg = PolicyConfig::micro(17);
        cfg.num_hidden_layers = 2;
        cfg.hidden_size = 64;
        cfg.num_attention_heads = 4;
        cfg.num_key_value_heads = 2;
        cfg.arbor_value_head = true;
        check(cfg.clone(), 2, 9, 2);
        cfg.tie_word_embeddings = false;
        cfg.num_key_value_heads = 4;
        check(cfg, 4, 5, 3);
    }

    /// The gradients do not depend on the number of threads, to the bit: a run resumed
    /// on another machine (or under another `RAYON_NUM_THREADS`) repeats its iterations.
    #[test]
    fn the_taped_gradients_are_the_same_on_any_number_of_threads() {
        let mut cfg = PolicyConfig::micro(11);
        cfg.num_hidden_layers = 2;
        let (vm, model) = random_model(&cfg, 9);
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(10);
        let (batch, len) = (6, 9);
        let ids = random_ids(&mut rng, &cfg, batch, len);
        let coef = random_coefs(&mut rng, batch, len);
        let names: Vec<(String, Tensor)> = {
            let vars = vm.data().lock().unwrap();
            let mut v: Vec<_> = vars
                .iter()
                .map(|(n, v)| (n.clone(), v.as_tensor().clone()))
                .collect();
            v.sort_by(|a, b| a.0.cmp(&b.0));
            v
        };
        let grads_on = |threads: usize| -> Vec<Vec<f32>> {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .unwrap();
            pool.install(|| {
                let taped = model.hidden_taped(&ids).unwrap();
                let l = loss(&model, taped.hidden(), &ids, &coef);
                let g = taped.backward(&model, &l).unwrap();
                names
                    .iter()
                    .map(|(_, t)| g.get(t).unwrap().flatten_all().unwrap().to_vec1().unwrap())
                    .collect()
            })
        };
        let one = grads_on(1);
        for threads in [2, 3] {
            for ((name, _), (a, b)) in names.iter().zip(one.iter().zip(grads_on(threads))) {
                assert!(
                    a.iter().zip(&b).all(|(x, y)| x.to_bits() == y.to_bits()),
                    "{name} differs on {threads} threads"
                );
            }
        }
    }

    #[test]
    fn a_sequence_longer_than_the_positions_is_refused() {
        let mut cfg = PolicyConfig::micro(5);
        cfg.max_position_embeddings = 4;
        let (_vm, model) = random_model(&cfg, 0);
        let ids = Tensor::zeros((1, 6), DType::U32, &Device::Cpu).unwrap();
        let err = model.hidden_taped(&ids).err().unwrap().to_string();
        assert!(err.contains("longer than the model's 4 positions"), "{err}");
    }
}
