//! arbor's hand-written CPU kernels, fenced off from the model code.
//!
//! Why they exist: candle's autograd on the CPU zero-fills and accumulates a gradient for
//! every intermediate tensor and composes RMSNorm, SwiGLU, rotary embeddings and the
//! masked softmax from small ops. On the tiny model the update step with candle's
//! autograd ran at about 0.9x PyTorch eager; with these kernels it runs at 1.59x to 1.90x
//! at two threads (docs/results/perf-history.md, `cargo run --release --example bench --
//! update`).
//!
//! * `fused`: the fused row kernels (RMSNorm, SwiGLU, rotary, exp) with their backward
//!   passes, used as candle custom ops by the model's forward on the CPU;
//! * `simd`: the AVX-512/AVX2 kernel macro and vector helpers, chosen at run time;
//! * `tape`: the update step's body with its backward written by hand.
//!
//! Callers: `policy::model` (the fused ops), `rl::update::policy_update` and the warm
//! start (the tape), `rl::optim` (AdamW's in-place passes). Only the CPU path reaches
//! them; other devices run candle's ops: the generic path, which is what CUDA runs.
//! [`generic`] turns the kernels off on the calling thread, so tests on the CPU check that
//! the generic path gives the kernels' loss, gradients and optimizer moments.
use std::cell::Cell;

pub(crate) mod fused;
pub(crate) mod simd;
pub mod tape;

thread_local! {
    static GENERIC: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the CPU kernels off on this thread: every operation takes the path other
/// devices take (candle's ops and autograd, AdamW on candle's ops), as on CUDA.
pub fn generic<R>(f: impl FnOnce() -> R) -> R {
    let before = GENERIC.with(|g| g.replace(true));
    let out = f();
    GENERIC.with(|g| g.set(before));
    out
}

/// Whether a CPU tensor may take the kernels here (not inside [`generic`]).
pub fn kernels_on() -> bool {
    !GENERIC.with(Cell::get)
}
