//! Seeded problem generation with leak-free splits: every problem is solvable (proven by
//! the solver, which also supplies its solution data), problems are unique by (sorted
//! numbers, target), and no number multiset of the test split appears in train.
use std::collections::{HashMap, HashSet};

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::preset::{Preset, TargetChoice};
use super::solver::solve;
use super::{random_trace, Instance, Rational};
use crate::engine::task::Problem;

#[derive(Clone, Debug, Serialize)]
pub struct Split {
    pub preset: Preset,
    pub seed: u64,
    pub train: Vec<Problem>,
    pub test: Vec<Problem>,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum GenerateError {
    #[error("preset {preset} yielded only {got} distinct {split} problems of the {wanted} asked for; ask for fewer or widen the preset")]
    Exhausted {
        preset: String,
        split: &'static str,
        wanted: usize,
        got: usize,
    },
    #[error("preset {0} has an empty range")]
    EmptyRange(String),
}

/// One candidate problem (numbers and target), or None when the numbers reach no target
/// in range.
fn candidate(preset: &Preset, rng: &mut ChaCha8Rng) -> Option<(Vec<i64>, i64)> {
    let count = rng.random_range(preset.count_min..=preset.count_max);
    let nums: Vec<i64> = (0..count)
        .map(|_| rng.random_range(preset.num_min..=preset.num_max))
        .collect();
    let target = match preset.target_choice {
        TargetChoice::UniformReachable => {
            let reach: Vec<i64> = solve(&nums, &preset.rules)
                .reachable_integers()
                .into_iter()
                .filter(|t| (preset.target_min..=preset.target_max).contains(t))
                .collect();
            if reach.is_empty() {
                return None;
            }
            reach[rng.random_range(0..reach.len())]
        }
        TargetChoice::Rarest { samples } => rarest(&nums, preset, samples, rng)?,
        TargetChoice::RandomExpression => (0..32).find_map(|_| {
            let trace = random_trace(&nums, &preset.rules, rng);
            let value: i64 = trace.rsplit(' ').next()?.parse().ok()?;
            (preset.target_min..=preset.target_max)
                .contains(&value)
                .then_some(value)
        })?,
    };
    Some((nums, target))
}

/// The in-range positive integer reached least often by random expressions.
fn rarest(nums: &[i64], preset: &Preset, samples: usize, rng: &mut ChaCha8Rng) -> Option<i64> {
    let mut counts: HashMap<i64, usize> = HashMap::new();
    for _ in 0..samples {
        let mut pool: Vec<Rational> = nums.iter().map(|&n| Rational::from_int(n)).collect();
        // A random subset size (at most once) combined with random operators.
        let keep = rng.random_range(1..=pool.len());
        while pool.len() > keep {
            pool.swap_remove(rng.random_range(0..pool.len()));
        }
        while pool.len() > 1 {
            let i = rng.random_range(0..pool.len());
            let a = pool.swap_remove(i);
            let j = rng.random_range(0..pool.len());
            let b = pool.swap_remove(j);
            let op = ['+', '-', '*', '/'][rng.random_range(0..4)];
            match a.apply(op, b) {
                Some(v) if preset.rules.allows(&v) => pool.push(v),
                _ => pool.push(a),
            }
        }
        if let Some(t) = pool[0].to_integer() {
            if t > 0 && (preset.target_min..=preset.target_max).contains(&t) {
                *counts.entry(t).or_default() += 1;
            }
        }
    }
    counts
        .into_iter()
        .min_by_key(|&(t, c)| (c, t))
        .map(|(t, _)| t)
}

fn problem(id: String, nums: Vec<i64>, target: i64, preset: &Preset) -> Option<Problem> {
    let info = solve(&nums, &preset.rules).get(target).cloned()?;
    Some(
        Instance {
            nums,
            target,
            solution: Some(info.canonical),
            num_solutions: Some(info.count),
            min_numbers: Some(info.min_numbers),
        }
        .into_problem(id),
    )
}

/// Which number multisets a split may draw from, told of every multiset it took.
pub(super) trait Admission {
    fn admits(&self, multiset: &[i64]) -> bool;
    fn joined(&mut self, multiset: Vec<i64>);
}

/// The preset's ranges are not empty.
pub(super) fn check_ranges(preset: &Preset) -> Result<(), GenerateError> {
    if preset.num_min > preset.num_max
        || preset.target_min > preset.target_max
        || preset.count_min == 0
        || preset.count_min > preset.count_max
    {
        return Err(GenerateError::EmptyRange(preset.name.clone()));
    }
    Ok(())
}

/// Draws `wanted` problems named `<split>-NNNNNN` from at most `budget` candidates,
/// unique by (sorted numbers, target) across every draw sharing `keys`, from the
/// multisets `admission` admits.
pub(super) fn draw_split(
    preset: &Preset,
    rng: &mut ChaCha8Rng,
    wanted: usize,
    split: &'static str,
    budget: usize,
    keys: &mut HashSet<(Vec<i64>, i64)>,
    admission: &mut dyn Admission,
) -> Result<Vec<Problem>, GenerateError> {
    let mut out = Vec::with_capacity(wanted);
    for _ in 0..budget {
        if out.len() == wanted {
            break;
        }
        let Some((nums, target)) = candidate(preset, rng) else {
            continue;
        };
        let mut sorted = nums.clone();
        sorted.sort_unstable();
        if !admission.admits(&sorted) || !keys.insert((sorted.clone(), target)) {
            continue;
        }
        let id = format!("{split}-{:06}", out.len());
        if let Some(p) = problem(id, nums, target, preset) {
            admission.joined(sorted);
            out.push(p);
        }
    }
    if out.len() < wanted {
        return Err(GenerateError::Exhausted {
            preset: preset.name.clone(),
            split,
            wanted,
            got: out.len(),
        });
    }
    Ok(out)
}

/// The two-way split: test takes any multiset and remembers it; train avoids those.
struct TestMultisets {
    sets: HashSet<Vec<i64>>,
    test: bool,
}

impl Admission for TestMultisets {
    fn admits(&self, multiset: &[i64]) -> bool {
        self.test || !self.sets.contains(multiset)
    }
    fn joined(&mut self, multiset: Vec<i64>) {
        if self.test {
            self.sets.insert(multiset);
        }
    }
}

/// Generates `n_test` then `n_train` problems, deterministically for `(preset, seed)`.
pub fn generate(
    preset: &Preset,
    seed: u64,
    n_train: usize,
    n_test: usize,
) -> Result<Split, GenerateError> {
    check_ranges(preset)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut keys = HashSet::new();
    let budget = |wanted: usize| 200 * wanted + 10_000;
    let mut sets = TestMultisets {
        sets: HashSet::new(),
        test: true,
    };
    let test = draw_split(
        preset,
        &mut rng,
        n_test,
        "test",
        budget(n_test),
        &mut keys,
        &mut sets,
    )?;
    sets.test = false;
    let train = draw_split(
        preset,
        &mut rng,
        n_train,
        "train",
        budget(n_train),
        &mut keys,
        &mut sets,
    )?;
    Ok(Split {
        preset: preset.clone(),
        seed,
        train,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::task::countdown::verify;

    #[test]
    fn deterministic_leak_free_and_solvable() {
        let preset = Preset::by_name("default").unwrap();
        let a = generate(&preset, 7, 300, 40).unwrap();
        let b = generate(&preset, 7, 300, 40).unwrap();
        assert_eq!(a.train, b.train);
        assert_eq!(a.test, b.test);
        assert_ne!(generate(&preset, 8, 300, 40).unwrap().test, a.test);
        assert_eq!((a.train.len(), a.test.len()), (300, 40));
        let test_sets: HashSet<Vec<i64>> = a.test.iter().map(|p| p.key().0).collect();
        assert!(a.train.iter().all(|p| !test_sets.contains(&p.key().0)));
        let keys: HashSet<_> = a.train.iter().chain(&a.test).map(|p| p.key()).collect();
        assert_eq!(keys.len(), 340);
        for p in a
            .train
            .iter()
            .chain(&a.test)
            .map(|p| p.countdown().unwrap())
        {
            let sol = p.solution.as_deref().unwrap();
            assert!(verify(p, sol, &preset.rules).is_correct(), "{p:?}");
            assert!((1..=100).contains(&p.target));
        }
    }

    #[test]
    fn other_presets_generate() {
        for name in ["tinyzero", "sos", "distill"] {
            let preset = Preset::by_name(name).unwrap();
            let s = generate(&preset, 1, 5, 3).unwrap();
            for p in s
                .train
                .iter()
                .chain(&s.test)
                .map(|p| p.countdown().unwrap())
            {
                assert!((preset.count_min..=preset.count_max).contains(&p.nums.len()));
                assert!(verify(p, p.solution.as_deref().unwrap(), &preset.rules).is_correct());
            }
        }
        assert!(Preset::by_name("nope")
            .unwrap_err()
            .to_string()
            .contains("default"));
    }

    #[test]
    fn impossible_requests_error_with_the_count() {
        let mut preset = Preset::by_name("default").unwrap();
        preset.num_max = 2;
        let e = generate(&preset, 1, 500, 5).unwrap_err();
        assert!(
            matches!(e, GenerateError::Exhausted { split: "train", .. }),
            "{e}"
        );
        assert!(e.to_string().contains("only"));
    }
}
