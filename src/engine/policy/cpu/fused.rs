//! The model's elementwise pieces as single candle ops with hand-written backward passes:
//! RMSNorm, the MLP's SwiGLU (`silu(gate) * up`), rotary embeddings and the attention's
//! scaled, masked softmax. Composed from candle's differentiable
//! ops they backpropagate through chains of broadcasts and reductions over non-last
//! dimensions, each allocating and zero-filling its gradient: measured at batch 128 x 41
//! on one core, one RMSNorm's backward took 26 ms (more than a 128 x 384 projection's) and
//! they were the update step's largest cost outside matmuls. CPU and f32 only: elsewhere
//! the model uses the composed ops (see the public functions below).
use candle_core::{CpuStorage, CustomOp2, CustomOp3, DType, Layout, Result, Shape, Tensor, D};
use rayon::prelude::*;

use super::simd::{axpy, dot, dot3, simd_kernel};

/// The contiguous f32 data behind a layout, or an error naming the op.
fn slice<'a>(s: &'a CpuStorage, l: &Layout, op: &str) -> Result<&'a [f32]> {
    let data = match s {
        CpuStorage::F32(v) => v.as_slice(),
        _ => candle_core::bail!("{op}: expects f32"),
    };
    match l.contiguous_offsets() {
        Some((a, b)) => Ok(&data[a..b]),
        None => candle_core::bail!("{op}: expects contiguous inputs"),
    }
}

fn flat(t: &Tensor) -> Result<Vec<f32>> {
    t.contiguous()?.flatten_all()?.to_vec1::<f32>()
}

/// `x / sqrt(mean(x^2) + eps) * w` over the last dimension.
struct RmsNorm {
    eps: f32,
}

/// `1 / sqrt(mean(x^2) + eps)` of one row.
#[inline(always)]
fn inv_rms(row: &[f32], eps: f32) -> f32 {
    let ms = dot(row, row) / row.len() as f32;
    1.0 / (ms + eps).sqrt()
}

/// Rows per parallel chunk for a loop over `rows` rows of `width`: all of them (one
/// chunk, on the calling thread) when the work is too small to share or there is one
/// thread, else an even share per thread of rayon's pool (which runs the chunks; it
/// reads RAYON_NUM_THREADS once, where candle's `get_num_threads` reads the environment
/// on every call, too often for ops the sampler runs per token).
pub(super) fn chunk_rows(rows: usize, width: usize) -> usize {
    let threads = rayon::current_num_threads();
    if threads <= 1 || rows * width < 1 << 15 {
        rows.max(1)
    } else {
        rows.div_ceil(threads).max(1)
    }
}

simd_kernel! {
    fn rms_norm_chunk(x: &[f32], w: &[f32], eps: f32, y: &mut [f32], inv: &mut [f32]) {
        let d = w.len();
        for ((xr, yr), r) in x.chunks_exact(d).zip(y.chunks_exact_mut(d)).zip(inv) {
            *r = inv_rms(xr, eps);
            for ((yv, &xv), &wv) in yr.iter_mut().zip(xr).zip(w) {
                *yv = xv * *r * wv;
            }
        }
    }
}

/// RMSNorm of every row of `x` (rows of `w.len()`): the output and each row's `1 / rms`.
pub(super) fn rms_norm_rows(x: &[f32], w: &[f32], eps: f32) -> (Vec<f32>, Vec<f32>) {
    let d = w.len();
    let rows = x.len() / d;
    let mut y = vec![0f32; rows * d];
    let mut inv = vec![0f32; rows];
    let c = chunk_rows(rows, d);
    y.par_chunks_mut(c * d)
        .zip(inv.par_chunks_mut(c))
        .zip(x.par_chunks(c * d))
        .for_each(|((y, inv), x)| rms_norm_chunk(x, w, eps, y, inv));
    (y, inv)
}

simd_kernel! {
    fn rms_norm_bwd_chunk(
        x: &[f32],
        w: &[f32],
        inv: &[f32],
        g: &[f32],
        dx_acc: &mut [f32],
        dw: &mut [f32],
    ) {
        let d = w.len();
        for (((xr, gr), dxr), &r) in x
            .chunks_exact(d)
            .zip(g.chunks_exact(d))
            .zip(dx_acc.chunks_exact_mut(d))
            .zip(inv)
        {
            for ((dw, &gv), &xv) in dw.iter_mut().zip(gr).zip(xr) {
                *dw += gv * xv * r;
            }
            let c = r * r * r * dot3(gr, w, xr) / d as f32;
            for (((dx, &gv), &wv), &xv) in dxr.iter_mut().zip(gr).zip(w).zip(xr) {
                *dx += r * gv * wv - xv * c;
            }
        }
    }
}

/// RMSNorm's backward for output gradient `g`, with `r = 1 / rms(x)` per row (`inv`):
/// adds `dx = r (g w) - x r^3 / n * sum(g w x)` to `dx_acc` and `dw = sum_rows g x r`
/// to `dw`.
pub(super) fn rms_norm_bwd(
    x: &[f32],
    w: &[f32],
    inv: &[f32],
    g: &[f32],
    dx_acc: &mut [f32],
    dw: &mut [f32],
) {
    let d = w.len();
    let c = chunk_rows(inv.len(), d);
    let partials: Vec<Vec<f32>> = dx_acc
        .par_chunks_mut(c * d)
        .zip(x.par_chunks(c * d))
        .zip(g.par_chunks(c * d))
        .zip(inv.par_chunks(c))
        .map(|(((dx, x), g), inv)| {
            let mut part = vec![0f32; d];
            rms_norm_bwd_chunk(x, w, inv, g, dx, &mut part);
            part
        })
        .collect();
    for part in partials {
        axpy(1.0, &part, dw);
    }
}

impl CustomOp2 for RmsNorm {
    fn name(&self) -> &'static str {
        "arbor-rms-norm"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let w = slice(s2, l2, self.name())?;
        let dim = w.len();
        if dim == 0 || l1.dims().last() != Some(&dim) {
            candle_core::bail!("{}: weight of {dim} for input {:?}", self.name(), l1.dims());
        }
        let (y, _) = rms_norm_rows(x, w, self.eps);
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    /// See [`rms_norm_bwd`].
    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (xs, ws, gs) = (flat(x)?, flat(w)?, flat(grad)?);
        let inv: Vec<f32> = xs
            .chunks_exact(ws.len())
            .map(|r| inv_rms(r, self.eps))
            .collect();
        let mut dx = vec![0f32; xs.len()];
        let mut dw = vec![0f32; ws.len()];
        rms_norm_bwd(&xs, &ws, &inv, &gs, &mut dx, &mut dw);
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            Some(Tensor::from_vec(dw, w.shape(), w.device())?),
        ))
    }
}

/// `silu(gate) * up`, elementwise.
struct SwiGlu;

#[inline(always)]
fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + exp_fma(-v))
}

/// [`exp`]'s constants: `ln 2` in two parts for the reduction, and 1.5 * 2^23, whose
/// addition rounds to an integer in the low mantissa bits (no libm `round`, which would
/// stop the vectorizer).
const LN2_HI: f32 = 0.693_145_75;
const LN2_LO: f32 = 1.428_606_8e-6;
const SHIFT: f32 = 12_582_912.0;

/// Horner coefficients of the Taylor series of `e^r` to `r^7` after the leading
/// `1 / 5040` (remainder below 1e-8 relative on `|r| <= ln 2 / 2`).
const EXP_TAYLOR: [f32; 7] = [
    1.0 / 720.0,
    1.0 / 120.0,
    1.0 / 24.0,
    1.0 / 6.0,
    0.5,
    1.0,
    1.0,
];

/// `p 2^n` for `t = x log2(e) + SHIFT`, whose low mantissa bits hold `n`.
#[inline(always)]
fn times_pow2(p: f32, t: f32) -> f32 {
    let n = t.to_bits().wrapping_sub(SHIFT.to_bits()) as i32;
    p * f32::from_bits(((n + 127) as u32) << 23)
}

/// `e^x` in f32 without a libm call, so loops over it vectorize (libm's `expf` was a
/// tenth of the update step): `2^n e^r` with `n = round(x / ln 2)`, `r` reduced in two
/// parts, and a degree-7 polynomial for `e^r` on `|r| <= ln 2 / 2`. Within 2 ulp of
/// `f32::exp` on [-87, 88]; clamped outside (so never inf or NaN for finite x).
#[inline(always)]
pub(super) fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let t = x * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * LN2_HI - n * LN2_LO;
    let mut p = 1.0 / 5040.0;
    for c in EXP_TAYLOR {
        p = p * r + c;
    }
    times_pow2(p, t)
}

/// [`exp`] with its polynomial in fused multiply-adds, for loops inside
/// [`simd_kernel!`](super::simd) only: there each is one instruction, elsewhere a libm
/// call. Within 2 ulp of `f32::exp` as well (tested).
#[inline(always)]
pub(super) fn exp_fma(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    let t = x.mul_add(std::f32::consts::LOG2_E, SHIFT);
    let n = t - SHIFT;
    let r = n.mul_add(-LN2_LO, n.mul_add(-LN2_HI, x));
    let mut p: f32 = 1.0 / 5040.0;
    for c in EXP_TAYLOR {
        p = p.mul_add(r, c);
    }
    times_pow2(p, t)
}

/// `silu(gate) * up` into `out`, sixteen lanes at a time: each block is loaded before
/// anything is stored, so the loop vectorises without the compiler having to prove the
/// slices apart (split from one row inside a loop, the plain loop stayed scalar).
#[inline(always)]
fn swiglu_row(gate: &[f32], up: &[f32], out: &mut [f32]) {
    let mut blocks = out.chunks_exact_mut(16);
    let (mut g16, mut u16) = (gate.chunks_exact(16), up.chunks_exact(16));
    for ((o, g), u) in (&mut blocks).zip(&mut g16).zip(&mut u16) {
        let mut r = [0f32; 16];
        for l in 0..16 {
            r[l] = g[l] * sigmoid(g[l]) * u[l];
        }
        o.copy_from_slice(&r);
    }
    let (g, u) = (g16.remainder(), u16.remainder());
    for ((o, &g), &u) in blocks.into_remainder().iter_mut().zip(g).zip(u) {
        *o = g * sigmoid(g) * u;
    }
}

/// SwiGLU's backward at one element: the gradients of gate and up.
#[inline(always)]
fn swiglu_bwd_one(d: f32, g: f32, u: f32) -> (f32, f32) {
    let s = sigmoid(g);
    (d * u * s * (1.0 + g * (1.0 - s)), d * g * s)
}

/// [`swiglu_bwd`] of one run of elements, in blocks as [`swiglu_row`].
#[inline(always)]
fn swiglu_bwd_row(d: &[f32], gate: &mut [f32], up: &mut [f32]) {
    let mut d16 = d.chunks_exact(16);
    let (mut g16, mut u16) = (gate.chunks_exact_mut(16), up.chunks_exact_mut(16));
    for ((d, g), u) in (&mut d16).zip(&mut g16).zip(&mut u16) {
        let (mut dg, mut du) = ([0f32; 16], [0f32; 16]);
        for l in 0..16 {
            (dg[l], du[l]) = swiglu_bwd_one(d[l], g[l], u[l]);
        }
        g.copy_from_slice(&dg);
        u.copy_from_slice(&du);
    }
    let d = d16.remainder();
    let (g, u) = (g16.into_remainder(), u16.into_remainder());
    for ((&d, g), u) in d.iter().zip(g.iter_mut()).zip(u.iter_mut()) {
        (*g, *u) = swiglu_bwd_one(d, *g, *u);
    }
}

simd_kernel! {
    fn swiglu_chunk(gate: &[f32], up: &[f32], out: &mut [f32]) {
        swiglu_row(gate, up, out);
    }
}

/// `silu(gate) * up`, elementwise.
pub(super) fn swiglu_rows(gate: &[f32], up: &[f32]) -> Vec<f32> {
    let mut out = vec![0f32; gate.len().min(up.len())];
    let c = chunk_rows(out.len(), 1);
    out.par_chunks_mut(c)
        .zip(gate.par_chunks(c))
        .zip(up.par_chunks(c))
        .for_each(|((o, g), u)| swiglu_chunk(g, u, o));
    out
}

simd_kernel! {
    fn swiglu_pairs_chunk(gate_up: &[f32], inter: usize, out: &mut [f32]) {
        for (row, o) in gate_up.chunks_exact(2 * inter).zip(out.chunks_exact_mut(inter)) {
            let (gate, up) = row.split_at(inter);
            swiglu_row(gate, up, o);
        }
    }
}

/// [`swiglu_rows`] of rows that hold their gate then their up projection
/// (`rows x 2 inter`, one gemm's output): `rows x inter`.
pub(super) fn swiglu_pairs(gate_up: &[f32], inter: usize) -> Vec<f32> {
    let rows = gate_up.len() / (2 * inter);
    let mut out = vec![0f32; rows * inter];
    let c = chunk_rows(rows, 2 * inter);
    out.par_chunks_mut(c * inter)
        .zip(gate_up.par_chunks(c * 2 * inter))
        .for_each(|(o, gu)| swiglu_pairs_chunk(gu, inter, o));
    out
}

simd_kernel! {
    fn swiglu_pairs_bwd_chunk(d: &[f32], gate_up: &mut [f32], inter: usize) {
        for (row, d) in gate_up.chunks_exact_mut(2 * inter).zip(d.chunks_exact(inter)) {
            let (gate, up) = row.split_at_mut(inter);
            swiglu_bwd_row(d, gate, up);
        }
    }
}

/// [`swiglu_bwd`] on the paired rows of [`swiglu_pairs`], in place.
pub(super) fn swiglu_pairs_bwd(d: &[f32], gate_up: &mut [f32], inter: usize) {
    let rows = d.len() / inter;
    let c = chunk_rows(rows, 2 * inter);
    gate_up
        .par_chunks_mut(c * 2 * inter)
        .zip(d.par_chunks(c * inter))
        .for_each(|(gu, d)| swiglu_pairs_bwd_chunk(d, gu, inter));
}

simd_kernel! {
    fn swiglu_bwd_chunk(d: &[f32], gate: &mut [f32], up: &mut [f32]) {
        swiglu_bwd_row(d, gate, up);
    }
}

/// SwiGLU's backward for output gradient `d`, in place: `gate` becomes
/// `d gate = d up s (1 + gate (1 - s))` and `up` becomes `d up = d gate s`, with
/// `s = sigmoid(gate)`.
pub(super) fn swiglu_bwd(d: &[f32], gate: &mut [f32], up: &mut [f32]) {
    let c = chunk_rows(d.len(), 1);
    gate.par_chunks_mut(c)
        .zip(up.par_chunks_mut(c))
        .zip(d.par_chunks(c))
        .for_each(|((g, u), d)| swiglu_bwd_chunk(d, g, u));
}

impl CustomOp2 for SwiGlu {
    fn name(&self) -> &'static str {
        "arbor-swiglu"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = slice(s1, l1, self.name())?;
        let u = slice(s2, l2, self.name())?;
        if l1.dims() != l2.dims() {
            candle_core::bail!(
                "{}: gate {:?} and up {:?}",
                self.name(),
                l1.dims(),
                l2.dims()
            );
        }
        Ok((CpuStorage::F32(swiglu_rows(g, u)), l1.shape().clone()))
    }

    /// See [`swiglu_bwd`].
    fn bwd(
        &self,
        gate: &Tensor,
        up: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (mut dg, mut du) = (flat(gate)?, flat(up)?);
        swiglu_bwd(&flat(grad)?, &mut dg, &mut du);
        Ok((
            Some(Tensor::from_vec(dg, gate.shape(), gate.device())?),
            Some(Tensor::from_vec(du, up.shape(), up.device())?),
        ))
    }
}

/// Rotary embedding of `x` `(batch, heads, len, dim)` with `cos`, `sin`
/// `(batch, 1, len, dim)`: `x cos + rotate_half(x) sin`, `rotate_half([a, b]) = [-b, a]`.
struct Rope;

impl Rope {
    /// Calls `f(row of x, row of cos, row of sin)` for every `(batch, head, position)`.
    fn rows(
        x: &[f32],
        xd: &[usize],
        cos: &[f32],
        sin: &[f32],
        mut f: impl FnMut(usize, usize),
    ) -> Result<()> {
        let [b, h, t, d] = xd else {
            candle_core::bail!("arbor-rope: expects (batch, heads, len, dim), got {xd:?}");
        };
        if cos.len() != b * t * d || sin.len() != cos.len() || x.len() != b * h * t * d {
            candle_core::bail!("arbor-rope: cos/sin do not match {xd:?}");
        }
        for bi in 0..*b {
            for hi in 0..*h {
                for ti in 0..*t {
                    f(((bi * h + hi) * t + ti) * d, (bi * t + ti) * d);
                }
            }
        }
        Ok(())
    }
}

/// One head's rotary embedding in place: `x cos + rotate_half(x) sin`,
/// `rotate_half([a, b]) = [-b, a]`, for `cos`, `sin` rows of the head's width.
#[inline(always)]
pub(super) fn rotate(x: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = x.len() / 2;
    for j in 0..half {
        let (a, b) = (x[j], x[j + half]);
        x[j] = a * cos[j] - b * sin[j];
        x[j + half] = b * cos[j + half] + a * sin[j + half];
    }
}

/// [`rotate`]'s backward in place: `dx = g cos + rotate_half^T(g sin)`,
/// `rotate_half^T([a, b]) = [b, -a]`.
#[inline(always)]
pub(super) fn rotate_bwd(g: &mut [f32], cos: &[f32], sin: &[f32]) {
    let half = g.len() / 2;
    for j in 0..half {
        let (a, b) = (g[j], g[j + half]);
        g[j] = a * cos[j] + b * sin[j + half];
        g[j + half] = b * cos[j + half] - a * sin[j];
    }
}

impl CustomOp3 for Rope {
    fn name(&self) -> &'static str {
        "arbor-rope"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
        s3: &CpuStorage,
        l3: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let (cos, sin) = (slice(s2, l2, self.name())?, slice(s3, l3, self.name())?);
        let d = l1.dims().last().copied().unwrap_or(0);
        let mut y = x.to_vec();
        Rope::rows(x, l1.dims(), cos, sin, |xo, co| {
            rotate(&mut y[xo..xo + d], &cos[co..co + d], &sin[co..co + d]);
        })?;
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    /// `dx = g cos + rotate_half^T(g sin)`, `rotate_half^T([a, b]) = [b, -a]`; cos and
    /// sin are tables, not trained.
    fn bwd(
        &self,
        x: &Tensor,
        cos: &Tensor,
        sin: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let (g, c, s) = (flat(grad)?, flat(cos)?, flat(sin)?);
        let dims = x.dims().to_vec();
        let d = dims.last().copied().unwrap_or(0);
        let mut dx = g.clone();
        Rope::rows(&g, &dims, &c, &s, |xo, co| {
            rotate_bwd(&mut dx[xo..xo + d], &c[co..co + d], &s[co..co + d]);
        })?;
        Ok((
            Some(Tensor::from_vec(dx, x.shape(), x.device())?),
            None,
            None,
        ))
    }
}

/// `softmax(scores * scale + mask)` over the last dimension; `scores` is
/// `(batch, heads, len, keys)`, the additive `mask` `(batch or 1, 1, len, keys)`.
struct MaskedSoftmax {
    scale: f32,
}

impl CustomOp2 for MaskedSoftmax {
    fn name(&self) -> &'static str {
        "arbor-masked-softmax"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let m = slice(s2, l2, self.name())?;
        let (&[b, h, t, k], &[mb, 1, mt, mk]) = (l1.dims(), l2.dims()) else {
            candle_core::bail!(
                "{}: scores {:?}, mask {:?}",
                self.name(),
                l1.dims(),
                l2.dims()
            );
        };
        if (mb != b && mb != 1) || mt != t || mk != k {
            candle_core::bail!(
                "{}: mask {:?} for scores {:?}",
                self.name(),
                l2.dims(),
                l1.dims()
            );
        }
        let mut y = vec![0f32; x.len()];
        for bi in 0..b {
            let mrow = if mb == 1 { 0 } else { bi };
            for hi in 0..h {
                for ti in 0..t {
                    let o = ((bi * h + hi) * t + ti) * k;
                    let mo = (mrow * t + ti) * k;
                    let row = &mut y[o..o + k];
                    let mut max = f32::NEG_INFINITY;
                    for j in 0..k {
                        row[j] = x[o + j] * self.scale + m[mo + j];
                        max = max.max(row[j]);
                    }
                    let mut sum = 0f32;
                    for v in row.iter_mut() {
                        *v = exp(*v - max);
                        sum += *v;
                    }
                    for v in row.iter_mut() {
                        *v /= sum;
                    }
                }
            }
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    /// `dx = scale y (g - sum(g y))` per row; the mask is not trained.
    fn bwd(
        &self,
        scores: &Tensor,
        _mask: &Tensor,
        res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let (y, g) = (flat(res)?, flat(grad)?);
        let k = scores.dim(D::Minus1)?;
        let mut dx = vec![0f32; y.len()];
        for ((yr, gr), dr) in y
            .chunks_exact(k)
            .zip(g.chunks_exact(k))
            .zip(dx.chunks_exact_mut(k))
        {
            let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
            for j in 0..k {
                dr[j] = self.scale * yr[j] * (gr[j] - dot);
            }
        }
        Ok((
            Some(Tensor::from_vec(dx, scores.shape(), scores.device())?),
            None,
        ))
    }
}

/// `x + b` for `x` `(rows, n)` and a bias `b` `(n)` added to every row. candle's
/// `broadcast_add` backpropagates through a broadcast node whose gradient is a sum over
/// rows, a strided reduction: with the residual stream in 2-D it was most of the update
/// step's reduction time. Here the bias gradient is one pass of contiguous row adds.
struct BiasAdd;

impl CustomOp2 for BiasAdd {
    fn name(&self) -> &'static str {
        "arbor-bias-add"
    }

    fn cpu_fwd(
        &self,
        s1: &CpuStorage,
        l1: &Layout,
        s2: &CpuStorage,
        l2: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let x = slice(s1, l1, self.name())?;
        let b = slice(s2, l2, self.name())?;
        let n = b.len();
        if l1.dims().len() != 2 || l1.dims()[1] != n {
            candle_core::bail!(
                "{}: input {:?} and bias {:?}",
                self.name(),
                l1.dims(),
                l2.dims()
            );
        }
        let mut y = x.to_vec();
        for row in y.chunks_exact_mut(n) {
            for (v, &b) in row.iter_mut().zip(b) {
                *v += b;
            }
        }
        Ok((CpuStorage::F32(y), l1.shape().clone()))
    }

    /// `d x = grad`, `d b = sum of grad's rows`.
    fn bwd(
        &self,
        _x: &Tensor,
        b: &Tensor,
        _res: &Tensor,
        grad: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let n = b.elem_count();
        let mut db = vec![0f32; n];
        for row in flat(grad)?.chunks_exact(n) {
            for (acc, &v) in db.iter_mut().zip(row) {
                *acc += v;
            }
        }
        Ok((
            Some(grad.clone()),
            Some(Tensor::from_vec(db, b.shape(), b.device())?),
        ))
    }
}

/// `x + b` over the rows of a 2-D `x`.
pub fn bias_add(x: &Tensor, b: &Tensor) -> Result<Tensor> {
    if fusable(x, b) && x.rank() == 2 {
        x.contiguous()?.apply_op2(&b.contiguous()?, BiasAdd)
    } else {
        x.broadcast_add(b)
    }
}

fn fusable(a: &Tensor, b: &Tensor) -> bool {
    a.device().is_cpu() && a.dtype() == DType::F32 && b.dtype() == DType::F32 && super::kernels_on()
}

/// RMSNorm over the last dimension with weight `w`.
pub fn rms_norm(x: &Tensor, w: &Tensor, eps: f64) -> Result<Tensor> {
    if fusable(x, w) {
        x.contiguous()?
            .apply_op2(&w.contiguous()?, RmsNorm { eps: eps as f32 })
    } else {
        candle_nn::ops::rms_norm_slow(x, w, eps as f32)
    }
}

/// `x cos + rotate_half(x) sin` for `x` `(batch, heads, len, dim)` and `cos`, `sin`
/// `(batch, 1, len, dim)`.
pub fn rope(x: &Tensor, cos: &Tensor, sin: &Tensor) -> Result<Tensor> {
    if fusable(x, cos) && sin.dtype() == DType::F32 {
        x.contiguous()?
            .apply_op3(&cos.contiguous()?, &sin.contiguous()?, Rope)
    } else {
        let half = x.dim(D::Minus1)? / 2;
        let x1 = x.narrow(D::Minus1, 0, half)?;
        let x2 = x.narrow(D::Minus1, half, half)?;
        let rotated = Tensor::cat(&[&x2.neg()?, &x1], D::Minus1)?;
        x.broadcast_mul(cos)? + rotated.broadcast_mul(sin)?
    }
}

/// `softmax(scores * scale + mask)` over the last dimension.
pub fn masked_softmax(scores: &Tensor, mask: &Tensor, scale: f64) -> Result<Tensor> {
    // The fused op takes a mask of (batch or 1, 1, len, keys); others broadcast.
    let fits = match (scores.dims(), mask.dims()) {
        (&[b, _, t, k], &[mb, 1, mt, mk]) => (mb == b || mb == 1) && mt == t && mk == k,
        _ => false,
    };
    if fusable(scores, mask) && fits {
        scores.contiguous()?.apply_op2(
            &mask.contiguous()?,
            MaskedSoftmax {
                scale: scale as f32,
            },
        )
    } else {
        candle_nn::ops::softmax(&(scores * scale)?.broadcast_add(mask)?, D::Minus1)
    }
}

/// `silu(gate) * up`.
pub fn swiglu(gate: &Tensor, up: &Tensor) -> Result<Tensor> {
    if fusable(gate, up) {
        gate.contiguous()?.apply_op2(&up.contiguous()?, SwiGlu)
    } else {
        gate.silu()? * up
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn max_rel(a: &Tensor, b: &Tensor) -> f32 {
        let (a, b) = (flat(a).unwrap(), flat(b).unwrap());
        let scale = b.iter().fold(0f32, |m, v| m.max(v.abs())).max(1e-30);
        a.iter()
            .zip(&b)
            .fold(0f32, |m, (x, y)| m.max((x - y).abs()))
            / scale
    }

    /// The fused ops agree with candle's composed ones, values and gradients.
    #[test]
    fn fast_exp_is_within_two_ulp_of_libm() {
        for (name, f) in [("exp", exp as fn(f32) -> f32), ("exp_fma", exp_fma)] {
            let mut x = -87.0f32;
            while x <= 88.0 {
                let (a, b) = (f(x), x.exp());
                assert!(
                    (a - b).abs() <= 2.0 * f32::EPSILON * b,
                    "{name}({x}) = {a}, libm {b}"
                );
                x += 0.0137;
            }
            assert_eq!(f(-1e30), f(-87.0), "{name}");
            assert!(f(1e30).is_finite(), "{name}");
        }
    }

    #[test]
    fn fused_ops_match_the_composed_ones_forward_and_backward() {
        let d = Device::Cpu;
        let x = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 5, 16), &d).unwrap()).unwrap();
        let w = Var::from_tensor(&Tensor::randn(1f32, 0.3, 16, &d).unwrap()).unwrap();
        let up = Var::from_tensor(&Tensor::randn(0f32, 1.0, (3, 5, 16), &d).unwrap()).unwrap();
        // A loss that weights every output differently, so every gradient term matters.
        let weights = Tensor::randn(0f32, 1.0, (3, 5, 16), &d).unwrap();
        let loss = |y: Tensor| (y * &weights).unwrap().sum_all().unwrap();

        let fused = rms_norm(&x, &w, 1e-6).unwrap();
        let slow = candle_nn::ops::rms_norm_slow(&x, &w, 1e-6).unwrap();
        assert!(max_rel(&fused, &slow) < 1e-5);
        let (gf, gs) = (
            loss(fused).backward().unwrap(),
            loss(slow).backward().unwrap(),
        );
        for v in [&x, &w] {
            let (a, b) = (gf.get(v).unwrap(), gs.get(v).unwrap());
            assert!(max_rel(a, b) < 1e-4, "rms_norm gradient {}", max_rel(a, b));
        }

        // Rope on (batch 3, heads 5, len 4, dim 4) views of x's data.
        let xr = x.reshape((3, 5, 4, 4)).unwrap();
        let cos = Tensor::randn(0f32, 1.0, (3, 1, 4, 4), &d).unwrap();
        let sin = Tensor::randn(0f32, 1.0, (3, 1, 4, 4), &d).unwrap();
        let w4 = weights.reshape((3, 5, 4, 4)).unwrap();
        let loss4 = |y: Tensor| (y * &w4).unwrap().sum_all().unwrap();
        let fused = rope(&xr, &cos, &sin).unwrap();
        let half = |t: &Tensor, i: usize| t.narrow(D::Minus1, i * 2, 2).unwrap();
        let rotated =
            Tensor::cat(&[&half(&xr, 1).neg().unwrap(), &half(&xr, 0)], D::Minus1).unwrap();
        let slow =
            (xr.broadcast_mul(&cos).unwrap() + rotated.broadcast_mul(&sin).unwrap()).unwrap();
        assert!(max_rel(&fused, &slow) < 1e-5);
        let (gf, gs) = (
            loss4(fused).backward().unwrap(),
            loss4(slow).backward().unwrap(),
        );
        assert!(
            max_rel(gf.get(&x).unwrap(), gs.get(&x).unwrap()) < 1e-4,
            "rope gradient"
        );

        // Bias add over the 15 rows of x viewed as (15, 16).
        let x2 = x.reshape((15, 16)).unwrap();
        let w2 = weights.reshape((15, 16)).unwrap();
        let loss2 = |y: Tensor| (y * &w2).unwrap().sum_all().unwrap();
        let fused = bias_add(&x2, &w).unwrap();
        let slow = x2.broadcast_add(&w).unwrap();
        assert!(max_rel(&fused, &slow) < 1e-6);
        let (gf, gs) = (
            loss2(fused).backward().unwrap(),
            loss2(slow).backward().unwrap(),
        );
        for v in [&x, &w] {
            assert!(
                max_rel(gf.get(v).unwrap(), gs.get(v).unwrap()) < 1e-5,
                "bias gradient"
            );
        }

        // Masked softmax: a causal mask for one row of the batch and a padding column.
        let mut mask = vec![0f32; 3 * 4 * 4];
        for (i, m) in mask.iter_mut().enumerate() {
            let (b, q, k) = (i / 16, (i / 4) % 4, i % 4);
            if k > q || (b == 1 && k == 0) {
                *m = crate::engine::policy::model::MASKED;
            }
        }
        let mask = Tensor::from_vec(mask, (3, 1, 4, 4), &d).unwrap();
        for m in [mask.clone(), mask.narrow(0, 0, 1).unwrap()] {
            let fused = masked_softmax(&xr, &m, 0.3).unwrap();
            let slow = candle_nn::ops::softmax(
                &(xr.as_ref() * 0.3).unwrap().broadcast_add(&m).unwrap(),
                D::Minus1,
            )
            .unwrap();
            assert!(max_rel(&fused, &slow) < 1e-5);
            let (gf, gs) = (
                loss4(fused).backward().unwrap(),
                loss4(slow).backward().unwrap(),
            );
            assert!(
                max_rel(gf.get(&x).unwrap(), gs.get(&x).unwrap()) < 1e-4,
                "softmax gradient"
            );
        }

        let fused = swiglu(&x, &up).unwrap();
        let slow = (x.silu().unwrap() * up.as_tensor()).unwrap();
        assert!(max_rel(&fused, &slow) < 1e-5);
        let (gf, gs) = (
            loss(fused).backward().unwrap(),
            loss(slow).backward().unwrap(),
        );
        for v in [&x, &up] {
            let (a, b) = (gf.get(v).unwrap(), gs.get(v).unwrap());
            assert!(max_rel(a, b) < 1e-4, "swiglu gradient {}", max_rel(a, b));
        }
    }
}
