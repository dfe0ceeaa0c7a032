//! Loops over f32 slices compiled for the CPU they run on.
//!
//! arbor is built for the baseline x86-64 (SSE2), so the compiler vectorizes its own loops
//! four lanes wide and without fused multiply-add, while gemm picks AVX-512 at run time.
//! [`simd_kernel!`] gives a loop the same treatment: the body is compiled three times
//! (AVX-512F, AVX2 with FMA, baseline) and the first the CPU has is called. The body and
//! every helper it calls must be `#[inline(always)]`-able plain Rust: the wider code is
//! the compiler's own vectorization. [`axpy`] uses `mul_add`, one fused instruction on
//! the wide paths (a libm call on the baseline, which only CPUs without AVX2 take);
//! results differ from plain multiply-then-add by one rounding at most per term.

/// Defines a function whose body runs compiled for the widest vector unit the CPU has
/// (see the module). Arguments are plain `name: Type` pairs; no generics.
macro_rules! simd_kernel {
    ($(#[$meta:meta])* $vis:vis fn $name:ident($($arg:ident: $ty:ty),* $(,)?) $(-> $ret:ty)? $body:block) => {
        $(#[$meta])*
        $vis fn $name($($arg: $ty),*) $(-> $ret)? {
            #[allow(clippy::too_many_arguments)]
            #[inline(always)]
            fn body($($arg: $ty),*) $(-> $ret)? $body
            #[cfg(target_arch = "x86_64")]
            {
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx512f,fma")]
                fn avx512($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                #[allow(clippy::too_many_arguments)]
                #[target_feature(enable = "avx2,fma")]
                fn avx2($($arg: $ty),*) $(-> $ret)? {
                    body($($arg),*)
                }
                if std::arch::is_x86_feature_detected!("avx512f") {
                    // SAFETY: the CPU was just checked for AVX-512F.
                    return unsafe { avx512($($arg),*) };
                }
                if std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma")
                {
                    // SAFETY: the CPU was just checked for AVX2 and FMA.
                    return unsafe { avx2($($arg),*) };
                }
            }
            body($($arg),*)
        }
    };
}

pub(super) use simd_kernel;

/// `sum_i a_i b_i`, sixteen partial sums wide.
#[inline(always)]
pub(super) fn dot(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .map(|(x, y)| x * y)
        .sum();
    for (x, y) in ca.zip(cb) {
        for ((a, &x), &y) in acc.iter_mut().zip(x).zip(y) {
            *a += x * y;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `sum_i a_i b_i c_i`, sixteen partial sums wide.
#[inline(always)]
pub(super) fn dot3(a: &[f32], b: &[f32], c: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb, cc) = (a.chunks_exact(16), b.chunks_exact(16), c.chunks_exact(16));
    let tail: f32 = ca
        .remainder()
        .iter()
        .zip(cb.remainder())
        .zip(cc.remainder())
        .map(|((x, y), z)| x * y * z)
        .sum();
    for ((x, y), z) in ca.zip(cb).zip(cc) {
        for (((a, &x), &y), &z) in acc.iter_mut().zip(x).zip(y).zip(z) {
            *a += x * y * z;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// `sum_i x_i`, sixteen partial sums wide.
#[inline(always)]
pub(super) fn sum(x: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let c = x.chunks_exact(16);
    let tail: f32 = c.remainder().iter().sum();
    for x in c {
        for (a, &x) in acc.iter_mut().zip(x) {
            *a += x;
        }
    }
    acc.iter().sum::<f32>() + tail
}

/// The largest of `x` (`-inf` when empty), sixteen lanes at a time (`f32::max` folds
/// one element at a time, minding NaN).
#[inline(always)]
pub(super) fn max(x: &[f32]) -> f32 {
    let mut acc = [f32::NEG_INFINITY; 16];
    let c = x.chunks_exact(16);
    let mut m = c
        .remainder()
        .iter()
        .fold(f32::NEG_INFINITY, |m, &v| if v > m { v } else { m });
    for x in c {
        for (a, &v) in acc.iter_mut().zip(x) {
            *a = if v > *a { v } else { *a };
        }
    }
    for a in acc {
        m = if a > m { a } else { m };
    }
    m
}

/// `y += alpha x`, sixteen lanes at a time (a fixed-width inner loop, so short rows such
/// as one head's 32 values run as whole vectors rather than the compiler's unrolled loop
/// falling through to its scalar tail).
#[inline(always)]
pub(super) fn axpy(alpha: f32, x: &[f32], y: &mut [f32]) {
    let (mut cy, cx) = (y.chunks_exact_mut(16), x.chunks_exact(16));
    let tail = cx.remainder();
    for (y, x) in (&mut cy).zip(cx) {
        for (y, &x) in y.iter_mut().zip(x) {
            *y = alpha.mul_add(x, *y);
        }
    }
    for (y, &x) in cy.into_remainder().iter_mut().zip(tail) {
        *y += alpha * x;
    }
}

/// `e^(x - shift)` in place, sixteen lanes at a time.
#[inline(always)]
pub(super) fn exp_shifted(x: &mut [f32], shift: f32) {
    let mut c = x.chunks_exact_mut(16);
    for x in &mut c {
        for v in x.iter_mut() {
            *v = super::fused::exp(*v - shift);
        }
    }
    for v in c.into_remainder() {
        *v = super::fused::exp(*v - shift);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    simd_kernel! {
        fn scaled_dot(a: &[f32], b: &[f32], s: f32) -> f32 {
            dot(a, b) * s
        }
    }

    #[test]
    fn a_kernel_gives_the_baseline_result() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.5).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.25).collect();
        let want: f64 = a.iter().zip(&b).map(|(x, y)| (x * y) as f64).sum::<f64>() * 2.0;
        let got = scaled_dot(&a, &b, 2.0) as f64;
        assert!((got - want).abs() < 1e-3 * want.abs(), "{got} vs {want}");
        assert_eq!(sum(&a), a.iter().sum::<f32>());
        assert_eq!(max(&b), 1.0);
        assert_eq!(max(&a), 18.0);
        assert_eq!(max(&[]), f32::NEG_INFINITY);
        let mut y = vec![1f32; 37];
        axpy(2.0, &a, &mut y);
        assert_eq!(y[3], 1.0 + 2.0 * 1.5);
    }
}
