//! arbor: DeepSearch (MCTS inside RL training) for small reasoning models, with a terminal
//! explorer. `engine` computes, `store` persists, `app` draws; `main.rs` wires them.
pub mod app;
pub mod engine;
pub mod store;

/// candle's CPU kernels split work over `RAYON_NUM_THREADS` threads (all cores if unset).
/// The tiny default model is bound by per-op overhead, where extra threads only add
/// synchronisation: measured on 2 cores, one thread decodes about 10x faster at batch 1
/// and searches 2.2x faster. So arbor uses one thread unless `RAYON_NUM_THREADS` is set
/// (set it for larger models on CPU). Call before any tensor work.
pub fn default_threads() {
    if std::env::var_os("RAYON_NUM_THREADS").is_none() {
        // Single-threaded at this point: nothing else reads the environment yet.
        std::env::set_var("RAYON_NUM_THREADS", "1");
    }
}

/// Flushes subnormal floats to zero on this thread (x86-64: MXCSR's FTZ and DAZ bits; a
/// no-op elsewhere), and on every thread it starts afterwards, which inherit the setting.
///
/// An update step's gradients and attention probabilities underflow into the subnormal
/// range (below 1.2e-38), where x86 cores take a microcode assist on every FMA: with perf,
/// gemm's kernels ran the tiny model's update step 3x slower (3.2 s against 1.1 s at batch
/// 128 on one core). Values that small change no fp32 training result; GPUs flush them
/// in their fast paths, and PyTorch offers the same as `torch.set_flush_denormal(True)`.
/// Call at start-up, before any thread is spawned.
pub fn flush_denormals() {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: reads and writes this thread's MXCSR with two more bits set (flush to zero,
    // denormals are zero); no other state is touched and any MXCSR value is valid to set.
    #[allow(deprecated)]
    unsafe {
        use std::arch::x86_64::{_mm_getcsr, _mm_setcsr};
        _mm_setcsr(_mm_getcsr() | 0x8040);
    }
}

// The allocator arbor's binaries install; linked here so `keep_freed_memory` resolves.
use mimalloc as _;

/// mimalloc hands freed pages back to the OS 10 ms after they empty. A training step frees
/// and reallocates hundreds of MB of activations and gradients, so every step faulted its
/// memory back in and the kernel zeroed it again: with perf, a quarter of an update
/// step's samples were in `clear_page`. Keeping freed memory (the peak is kept anyway)
/// removes those faults. Call at start-up in a binary whose global allocator is mimalloc.
pub fn keep_freed_memory() {
    // mimalloc v2's `mi_option_purge_delay` (mimalloc.h); -1: never purge.
    const MI_OPTION_PURGE_DELAY: std::ffi::c_int = 15;
    extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    // SAFETY: sets one integer option of the linked mimalloc; any value is valid for it
    // and mimalloc reads options with atomic loads.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, -1) }
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_arch = "x86_64")]
    fn flushing_denormals_zeroes_subnormal_results_on_this_thread_and_its_children() {
        let tiny = || std::hint::black_box(1e-30f32) * std::hint::black_box(1e-10f32);
        std::thread::spawn(move || {
            assert!(tiny() > 0.0, "a subnormal product by default");
            super::flush_denormals();
            assert_eq!(tiny(), 0.0);
            assert_eq!(std::thread::spawn(tiny).join().unwrap(), 0.0, "inherited");
            // Normal numbers are untouched.
            assert!(std::hint::black_box(1e-20f32) * 1e-10 > 0.0);
        })
        .join()
        .unwrap();
    }
}
