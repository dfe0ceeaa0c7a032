//! Which terminal is backed up (DeepSearch section 5): a correct one if any, else a wrong
//! one; within the set, the most confident path (lowest mean trajectory entropy).
use rand::Rng;
use serde::{Deserialize, Serialize};

/// How the wrong terminal is chosen when no new terminal is correct (paper Table 5).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum NegativePick {
    /// Lowest mean entropy: the confident negative (the paper's choice).
    #[default]
    MostConfident,
    LeastConfident,
    Random,
}

/// A candidate terminal: whether it is correct and the mean negative log-probability of
/// all response tokens on its root..t path.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Candidate {
    pub correct: bool,
    pub mean_entropy: f64,
}

/// NaN counts as +infinity (never the most confident).
fn key(h: f64) -> f64 {
    if h.is_nan() {
        f64::INFINITY
    } else {
        h
    }
}

/// Index of the terminal to back up, or None for an empty slice. Correct terminals are
/// always picked by lowest entropy; ties go to the first.
pub fn pick_terminal<R: Rng>(
    cands: &[Candidate],
    negative: NegativePick,
    rng: &mut R,
) -> Option<usize> {
    let any_correct = cands.iter().any(|c| c.correct);
    let pool: Vec<usize> = (0..cands.len())
        .filter(|&i| cands[i].correct == any_correct)
        .collect();
    if pool.is_empty() {
        return None;
    }
    let lowest = || {
        pool.iter()
            .copied()
            .min_by(|&a, &b| key(cands[a].mean_entropy).total_cmp(&key(cands[b].mean_entropy)))
    };
    if any_correct {
        return lowest();
    }
    match negative {
        NegativePick::MostConfident => lowest(),
        NegativePick::LeastConfident => pool
            .iter()
            .copied()
            .rev()
            .max_by(|&a, &b| key(cands[a].mean_entropy).total_cmp(&key(cands[b].mean_entropy))),
        NegativePick::Random => Some(pool[rng.random_range(0..pool.len())]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    fn c(correct: bool, h: f64) -> Candidate {
        Candidate {
            correct,
            mean_entropy: h,
        }
    }

    #[test]
    fn correct_first_then_most_confident_wrong() {
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        let set = [c(false, 0.1), c(true, 0.9), c(true, 0.5), c(false, 0.05)];
        assert_eq!(
            pick_terminal(&set, NegativePick::MostConfident, &mut rng),
            Some(2)
        );
        let wrong = [c(false, 0.4), c(false, f64::NAN), c(false, 0.2)];
        assert_eq!(
            pick_terminal(&wrong, NegativePick::MostConfident, &mut rng),
            Some(2)
        );
        assert_eq!(
            pick_terminal(&wrong, NegativePick::LeastConfident, &mut rng),
            Some(1)
        );
        let r = pick_terminal(&wrong, NegativePick::Random, &mut rng).unwrap();
        assert!(r < 3);
        assert_eq!(
            pick_terminal(&[], NegativePick::MostConfident, &mut rng),
            None
        );
        // Ties go to the first.
        let tie = [c(false, 0.3), c(false, 0.3)];
        assert_eq!(
            pick_terminal(&tie, NegativePick::MostConfident, &mut rng),
            Some(0)
        );
    }
}
