//! Local UCT among siblings (DeepSearch section 4):
//! `UCT(s) = Q(s) + c sqrt(ln N(parent) / N(s))`, with Q = 0 and no exploration term when
//! a count is zero.

/// The UCT value of a child with visit count `n`, total value `q` and parent count
/// `n_parent`.
pub fn uct(q: f64, n: u32, n_parent: u32, c_uct: f64) -> f64 {
    let mean = if n == 0 { 0.0 } else { q / n as f64 };
    if n == 0 || n_parent == 0 {
        return mean;
    }
    mean + c_uct * ((n_parent as f64).ln() / n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_formula_and_zero_counts() {
        // Q = 0.5 / 2, c = 2, ln 4 / 2.
        let want = 0.25 + 2.0 * (4f64.ln() / 2.0).sqrt();
        assert!((uct(0.5, 2, 4, 2.0) - want).abs() < 1e-12);
        assert_eq!(uct(0.7, 0, 4, 2.0), 0.0);
        assert_eq!(uct(0.6, 2, 0, 2.0), 0.3);
        // A parent seen once: ln 1 = 0, pure exploitation.
        assert_eq!(uct(-0.4, 1, 1, 2.0), -0.4);
    }
}
