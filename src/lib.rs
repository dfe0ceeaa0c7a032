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
