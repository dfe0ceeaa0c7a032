//! Undirected warm-start traces: legal steps over random pairs with random legal
//! operators, ending in an answer line with whatever value was reached. The target is
//! ignored on purpose.
use rand::Rng;

use super::{Rational, Rules, UseRule};

/// Largest intermediate magnitude a trace may produce.
const MAX_MAGNITUDE: f64 = 1_000_000.0;

/// One random legal step on `pool`: (a, op, b, result), or None when no pair has a legal
/// operator.
fn random_step<R: Rng>(
    pool: &[Rational],
    rules: &Rules,
    rng: &mut R,
) -> Option<(usize, usize, char, Rational)> {
    let mut options = Vec::new();
    for i in 0..pool.len() {
        for j in 0..pool.len() {
            if i == j {
                continue;
            }
            for op in ['+', '-', '*', '/'] {
                // Commutative operators once per unordered pair.
                if (op == '+' || op == '*') && j < i {
                    continue;
                }
                if let Some(v) = pool[i].apply(op, pool[j]) {
                    if rules.allows(&v) && v.to_f64().abs() <= MAX_MAGNITUDE {
                        options.push((i, j, op, v));
                    }
                }
            }
        }
    }
    if options.is_empty() {
        return None;
    }
    // Uniform over pairs first, then over that pair's legal operators.
    let mut pairs: Vec<(usize, usize)> = options
        .iter()
        .map(|&(i, j, _, _)| (i.min(j), i.max(j)))
        .collect();
    pairs.dedup();
    pairs.sort_unstable();
    pairs.dedup();
    let (a, b) = pairs[rng.random_range(0..pairs.len())];
    let ops: Vec<_> = options
        .into_iter()
        .filter(|&(i, j, _, _)| (i.min(j), i.max(j)) == (a, b))
        .collect();
    Some(ops[rng.random_range(0..ops.len())])
}

/// A random legal trace over `nums` in step format.
pub fn random_trace<R: Rng>(nums: &[i64], rules: &Rules, rng: &mut R) -> String {
    let mut pool: Vec<Rational> = nums.iter().map(|&n| Rational::from_int(n)).collect();
    let mut lines = Vec::new();
    let mut last = pool.first().copied();
    while pool.len() > 1 {
        if rules.use_rule == UseRule::AtMostOnce && !lines.is_empty() && rng.random_bool(0.3) {
            break;
        }
        let Some((i, j, op, v)) = random_step(&pool, rules, rng) else {
            break;
        };
        lines.push(format!("{}{op}{}={}", pool[i], pool[j], v));
        let (hi, lo) = (i.max(j), i.min(j));
        pool.swap_remove(hi);
        pool.swap_remove(lo);
        pool.push(v);
        last = Some(v);
    }
    let answer = match last {
        Some(v) => v.to_string(),
        None => "0".into(),
    };
    lines.push(format!("ans {answer}"));
    lines.join("\n")
}
