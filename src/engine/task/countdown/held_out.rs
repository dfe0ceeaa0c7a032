//! Three-way splits for comparisons: train, validation and test, with every number
//! multiset going whole to one of them.
//!
//! A preset with few multisets (the default has C(14,3) = 364 multisets of three numbers
//! 1..12) cannot give 1,000 test problems one target per multiset, so a held-out split
//! takes a share of the multisets in proportion to its size and draws several targets
//! from each (the preset's own target choice, so the target distribution is unchanged).
//! Bootstrap intervals are then taken over multisets, not problems
//! ([`crate::engine::training::metrics::paired_bootstrap`]).
use std::collections::{HashMap, HashSet};

use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::Serialize;

use super::generator::{check_ranges, draw_split, Admission, GenerateError};
use super::Preset;
use crate::engine::task::Problem;

#[derive(Clone, Debug, Serialize)]
pub struct HeldOutSplit {
    pub preset: Preset,
    pub seed: u64,
    pub train: Vec<Problem>,
    pub validation: Vec<Problem>,
    pub test: Vec<Problem>,
}

/// Number of distinct number multisets the preset can draw (saturating).
pub fn multiset_count(preset: &Preset) -> u128 {
    let range = (preset.num_max - preset.num_min + 1).max(0) as u128;
    (preset.count_min..=preset.count_max)
        .map(|c| binomial(range + c as u128 - 1, c as u128))
        .fold(0u128, |a, b| a.saturating_add(b))
}

fn binomial(n: u128, k: u128) -> u128 {
    let mut r: u128 = 1;
    for i in 0..k {
        r = r.saturating_mul(n - i) / (i + 1);
    }
    r
}

/// How many multisets a held-out split of `wanted` problems may use: its share of all
/// multisets (by problem count), with 30% slack so targets do not run out, never more
/// than `wanted`.
pub fn multiset_cap(total: u128, wanted: usize, all: usize) -> usize {
    if wanted == 0 {
        return 0;
    }
    let share = (total as f64 * wanted as f64 / all.max(1) as f64 * 1.3).ceil();
    (share.min(wanted as f64) as usize).max(1)
}

/// A three-way split: each multiset belongs to the first split that draws it; a held-out
/// split takes at most `cap` multisets.
struct Owners {
    owner: HashMap<Vec<i64>, u8>,
    me: u8,
    cap: Option<usize>,
    mine: usize,
}

impl Admission for Owners {
    fn admits(&self, multiset: &[i64]) -> bool {
        match self.owner.get(multiset) {
            Some(&o) => o == self.me,
            None => self.cap.is_none_or(|c| self.mine < c),
        }
    }
    fn joined(&mut self, multiset: Vec<i64>) {
        if self.owner.insert(multiset, self.me).is_none() {
            self.mine += 1;
        }
    }
}

/// Generates test, then validation, then train problems, deterministically for
/// `(preset, seed)`. No multiset appears in two splits; (multiset, target) is unique.
pub fn generate_held_out(
    preset: &Preset,
    seed: u64,
    n_train: usize,
    n_validation: usize,
    n_test: usize,
) -> Result<HeldOutSplit, GenerateError> {
    check_ranges(preset)?;
    let total = multiset_count(preset);
    let all = n_train + n_validation + n_test;
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0b5e_7a11_d000_0000);
    let mut keys = HashSet::new();
    let mut owners = Owners {
        owner: HashMap::new(),
        me: 0,
        cap: None,
        mine: 0,
    };
    let budget = |wanted: usize| 400 * wanted + 20_000;
    let mut draw = |wanted: usize, split, me, cap, rng: &mut ChaCha8Rng| {
        owners.me = me;
        owners.cap = cap;
        owners.mine = 0;
        draw_split(
            preset,
            rng,
            wanted,
            split,
            budget(wanted),
            &mut keys,
            &mut owners,
        )
    };
    let test = draw(
        n_test,
        "test",
        0,
        Some(multiset_cap(total, n_test, all)),
        &mut rng,
    )?;
    let validation = draw(
        n_validation,
        "validation",
        1,
        Some(multiset_cap(total, n_validation, all)),
        &mut rng,
    )?;
    let train = draw(n_train, "train", 2, None, &mut rng)?;
    Ok(HeldOutSplit {
        preset: preset.clone(),
        seed,
        train,
        validation,
        test,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::task::countdown::verify;

    #[test]
    fn the_default_preset_gives_a_thousand_test_problems_without_shared_multisets() {
        let preset = Preset::by_name("default").unwrap();
        assert_eq!(multiset_count(&preset), 364);
        let s = generate_held_out(&preset, 3, 2000, 200, 1000).unwrap();
        assert_eq!(
            (s.train.len(), s.validation.len(), s.test.len()),
            (2000, 200, 1000)
        );
        let sets = |v: &[Problem]| -> HashSet<Vec<i64>> { v.iter().map(|p| p.key().0).collect() };
        let (tr, va, te) = (sets(&s.train), sets(&s.validation), sets(&s.test));
        assert!(tr.is_disjoint(&va) && tr.is_disjoint(&te) && va.is_disjoint(&te));
        // Several targets per held-out multiset.
        assert!(te.len() < 1000 && te.len() > 50, "{}", te.len());
        let keys: HashSet<_> = s
            .train
            .iter()
            .chain(&s.validation)
            .chain(&s.test)
            .map(|p| p.key())
            .collect();
        assert_eq!(keys.len(), 3200);
        for p in s.test.iter().chain(&s.validation).take(300) {
            let p = p.countdown().unwrap();
            assert!(verify(p, p.solution.as_deref().unwrap(), &preset.rules).is_correct());
        }
        let again = generate_held_out(&preset, 3, 2000, 200, 1000).unwrap();
        assert_eq!(again.test, s.test);
    }

    #[test]
    fn caps_follow_the_share_of_problems() {
        assert_eq!(multiset_cap(364, 1000, 3200), 148);
        assert_eq!(multiset_cap(1_000_000, 200, 3200), 200);
        assert_eq!(multiset_cap(364, 0, 3200), 0);
    }
}
