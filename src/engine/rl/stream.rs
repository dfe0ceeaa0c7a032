//! The stream of training problems: a seeded order over a pool of problem indices,
//! reshuffled at every epoch, passing over problems the user skipped. Methods that train
//! on a subset (DeepSearch's hard set, `grpo_hard`) change the pool or pass problems over.
use std::collections::HashSet;

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

pub struct ProblemStream {
    /// Training problems the stream draws from: all, or a method's subset.
    pub pool: Vec<usize>,
    pub order: Vec<usize>,
    /// Position in `order`; `usize::MAX` before the first shuffle.
    pub cursor: usize,
    /// The stream's own RNG, so every method with the same seed sees the same order of
    /// training problems whatever it samples.
    pub rng: ChaCha8Rng,
    /// Training problems left out by the user.
    pub skipped: HashSet<usize>,
}

impl ProblemStream {
    /// A stream over problems `0..n`, shuffled once.
    pub fn new(n: usize, rng: ChaCha8Rng) -> Self {
        let pool: Vec<usize> = (0..n).collect();
        let mut s = Self {
            order: pool.clone(),
            pool,
            cursor: usize::MAX,
            rng,
            skipped: HashSet::new(),
        };
        s.next(0);
        s
    }

    /// The next `n` problem indices (reshuffled every epoch).
    pub fn next(&mut self, n: usize) -> Vec<usize> {
        self.next_where(n, |_| true)
    }

    /// The next `n` problem indices that `wanted` accepts; the others are passed over.
    /// When an epoch passes without one accepted problem, every problem is accepted.
    pub fn next_where(&mut self, n: usize, wanted: impl Fn(usize) -> bool) -> Vec<usize> {
        let mut out = Vec::with_capacity(n);
        let mut passed_over = 0usize;
        let mut accept_all = false;
        while out.len() < n || self.cursor == usize::MAX {
            if self.cursor >= self.order.len() {
                self.order.shuffle(&mut self.rng);
                self.cursor = 0;
            }
            if out.len() == n {
                break;
            }
            let i = self.order[self.cursor];
            self.cursor += 1;
            // Skipped problems are passed over (unless every problem is skipped).
            if self.skipped.contains(&i) && self.skipped.len() < self.order.len() {
                continue;
            }
            if !accept_all && !wanted(i) {
                passed_over += 1;
                if passed_over >= self.order.len() {
                    accept_all = true;
                }
                continue;
            }
            out.push(i);
        }
        out
    }

    /// Draws from `pool` from now on, starting a fresh epoch at the next draw.
    pub fn set_pool(&mut self, pool: Vec<usize>) {
        self.pool = pool;
        self.order = self.pool.clone();
        self.cursor = self.order.len();
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    #[test]
    fn every_problem_once_per_epoch_and_unwanted_ones_passed_over() {
        let mut s = ProblemStream::new(10, ChaCha8Rng::seed_from_u64(1));
        let mut first: Vec<usize> = s.next(10);
        first.sort_unstable();
        assert_eq!(first, (0..10).collect::<Vec<_>>());
        let odd = s.next_where(5, |i| i % 2 == 1);
        assert!(odd.iter().all(|i| i % 2 == 1), "{odd:?}");
        // Nothing wanted: after a whole epoch passed over, the stream gives what it has.
        assert_eq!(s.next_where(3, |_| false).len(), 3);
    }
}
