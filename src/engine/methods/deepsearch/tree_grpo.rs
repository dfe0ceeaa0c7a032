//! The Tree-GRPO objective's scores (DeepSearch section 8): node-level q-values, soft
//! clipped with tanh, as token scores; an overlong penalty; mean-only group advantages.
use serde::{Deserialize, Serialize};

/// Token scores from node q-values, or the outcome on every token (DAPO).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum TokenScore {
    #[default]
    Q,
    Outcome,
}

/// What Tree-GRPO does with a tree whose recorded trajectories are all wrong. With all n
/// wrong, mu = -1 and `keep` gives every intermediate token `q_hat - mu > 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Unsolved {
    /// The paper's math: A = q_hat - mu.
    #[default]
    Keep,
    /// Outcome token scores for unsolved trees (all advantages 0 but overlong penalties).
    Outcome,
    /// Unsolved trees leave the batch, as GRPO drops all-equal groups.
    Skip,
    /// "Supervise the confident wrong path": its tokens get their own node scores
    /// (q_hat of each step, the terminal's -1) without subtracting mu; the other
    /// unsolved paths are dropped.
    Negative,
}

impl Unsolved {
    pub fn name(self) -> &'static str {
        match self {
            Unsolved::Keep => "keep",
            Unsolved::Outcome => "outcome",
            Unsolved::Skip => "skip",
            Unsolved::Negative => "negative",
        }
    }
}

/// An `unsolved` value that is not keep, outcome, skip or negative.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown value {0:?}; expected keep, outcome, skip or negative")]
pub struct UnknownUnsolved(pub String);

impl std::str::FromStr for Unsolved {
    type Err = UnknownUnsolved;
    fn from_str(s: &str) -> Result<Self, UnknownUnsolved> {
        match s {
            "keep" => Ok(Unsolved::Keep),
            "outcome" => Ok(Unsolved::Outcome),
            "skip" => Ok(Unsolved::Skip),
            "negative" => Ok(Unsolved::Negative),
            o => Err(UnknownUnsolved(o.to_string())),
        }
    }
}

/// Token advantages of the confident-wrong path of an unsolved tree under
/// `unsolved = "negative"`: each step's own score (q_hat, the terminal's value), no mu.
pub fn negative_path_advantages(path: &ScoredPath, s: &ScoreSettings) -> Vec<f32> {
    let last = path.steps.len().saturating_sub(1);
    path.steps
        .iter()
        .enumerate()
        .flat_map(|(j, &(q, len))| {
            let score = if j == last {
                path.terminal_value
            } else {
                q_hat(q, s.q_max, s.eps_q)
            };
            std::iter::repeat_n(score as f32, len)
        })
        .collect()
}

/// `q_hat = q_max tanh(q / eps_q)`.
pub fn q_hat(q: f64, q_max: f64, eps_q: f64) -> f64 {
    q_max * (q / eps_q).tanh()
}

/// `min(-(len - (max - buffer)) / buffer, 0)`; 0 when disabled (buffer 0).
pub fn overlong(len: usize, max: usize, buffer: usize) -> f64 {
    if buffer == 0 {
        return 0.0;
    }
    (-(len as f64 - (max as f64 - buffer as f64)) / buffer as f64).min(0.0)
}

/// One recorded trajectory: its steps as (q of the node, tokens in the step), the last
/// being the terminal with value +1 / -1.
#[derive(Clone, Debug, PartialEq)]
pub struct ScoredPath {
    pub steps: Vec<(f64, usize)>,
    pub terminal_value: f64,
}

/// Settings of the score.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ScoreSettings {
    pub q_max: f64,
    pub eps_q: f64,
    pub overlong_max: usize,
    pub overlong_buffer: usize,
    pub token_score: TokenScore,
    pub normalise: crate::engine::rl::objective::AdvantageNorm,
}

/// Per-token advantages of a group of trajectories: `A(k) = r(k) - mu(x)` with
/// `mu = mean R_final` (mean-only), or divided by the std of R_final for `mean_std`.
pub fn group_token_advantages(paths: &[ScoredPath], s: &ScoreSettings) -> Vec<Vec<f32>> {
    let lens: Vec<usize> = paths
        .iter()
        .map(|p| p.steps.iter().map(|x| x.1).sum())
        .collect();
    let over: Vec<f64> = lens
        .iter()
        .map(|&l| overlong(l, s.overlong_max, s.overlong_buffer))
        .collect();
    let finals: Vec<f64> = paths
        .iter()
        .zip(&over)
        .map(|(p, o)| p.terminal_value + o)
        .collect();
    let n = finals.len().max(1) as f64;
    let mu = finals.iter().sum::<f64>() / n;
    let scale = match s.normalise {
        crate::engine::rl::objective::AdvantageNorm::MeanOnly => 1.0,
        crate::engine::rl::objective::AdvantageNorm::MeanStd => {
            let var = finals.iter().map(|f| (f - mu).powi(2)).sum::<f64>() / n;
            1.0 / (var.sqrt() + crate::engine::rl::objective::STD_EPS as f64)
        }
    };
    paths
        .iter()
        .zip(&over)
        .map(|(p, o)| {
            let last = p.steps.len().saturating_sub(1);
            p.steps
                .iter()
                .enumerate()
                .flat_map(|(j, &(q, len))| {
                    let score = match s.token_score {
                        TokenScore::Outcome => p.terminal_value,
                        TokenScore::Q if j == last => p.terminal_value,
                        TokenScore::Q => q_hat(q, s.q_max, s.eps_q),
                    };
                    std::iter::repeat_n(((score + o - mu) * scale) as f32, len)
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rl::objective::AdvantageNorm;

    fn settings() -> ScoreSettings {
        ScoreSettings {
            q_max: 1.0,
            eps_q: 1.0,
            overlong_max: 0,
            overlong_buffer: 0,
            token_score: TokenScore::Q,
            normalise: AdvantageNorm::MeanOnly,
        }
    }

    #[test]
    fn reproduces_the_worked_example() {
        // 2 correct, 6 wrong -> mu = -0.5. A node with q = 0.5 -> 0.4621 + 0.5 = 0.9621,
        // correct terminal chunk -> 1.5, wrong terminal chunk -> -0.5.
        let mut paths = vec![ScoredPath {
            steps: vec![(0.5, 2), (1.0, 1)],
            terminal_value: 1.0,
        }];
        paths.push(ScoredPath {
            steps: vec![(0.2, 1), (1.0, 1)],
            terminal_value: 1.0,
        });
        for _ in 0..6 {
            paths.push(ScoredPath {
                steps: vec![(-0.3, 1), (-1.0, 2)],
                terminal_value: -1.0,
            });
        }
        let a = group_token_advantages(&paths, &settings());
        assert!((a[0][0] - 0.9621).abs() < 1e-4 && (a[0][1] - 0.9621).abs() < 1e-4);
        assert!((a[0][2] - 1.5).abs() < 1e-6);
        assert!((a[2][1] + 0.5).abs() < 1e-6 && (a[2][2] + 0.5).abs() < 1e-6);
        assert_eq!(a[2].len(), 3);
    }

    #[test]
    fn all_wrong_gives_intermediate_tokens_advantages_in_zero_one() {
        // Known property (section 8): mu = -1, q_hat in (-1, 0) -> A in (0, 1).
        let paths: Vec<ScoredPath> = (0..4)
            .map(|i| ScoredPath {
                steps: vec![(-0.2 * (i + 1) as f64, 3), (-1.0, 1)],
                terminal_value: -1.0,
            })
            .collect();
        let a = group_token_advantages(&paths, &settings());
        for p in &a {
            assert!(p[0] > 0.0 && p[0] < 1.0, "{p:?}");
            assert!(p[3].abs() < 1e-6);
        }
    }

    #[test]
    fn the_negative_mode_scores_the_confident_wrong_path_without_mu() {
        let path = ScoredPath {
            steps: vec![(-0.5, 2), (-1.0, 1)],
            terminal_value: -1.0,
        };
        let a = negative_path_advantages(&path, &settings());
        assert_eq!(a.len(), 3);
        assert!((a[0] + 0.462117).abs() < 1e-5 && (a[1] + 0.462117).abs() < 1e-5);
        assert_eq!(a[2], -1.0);
        assert!(a.iter().all(|&x| x < 0.0));
        assert_eq!("negative".parse::<Unsolved>(), Ok(Unsolved::Negative));
        assert!("both"
            .parse::<Unsolved>()
            .unwrap_err()
            .to_string()
            .contains("keep"));
    }

    #[test]
    fn outcome_scores_and_overlong() {
        let s = ScoreSettings {
            token_score: TokenScore::Outcome,
            ..settings()
        };
        let paths = vec![
            ScoredPath {
                steps: vec![(0.9, 2), (1.0, 1)],
                terminal_value: 1.0,
            },
            ScoredPath {
                steps: vec![(0.9, 2), (-1.0, 1)],
                terminal_value: -1.0,
            },
        ];
        let a = group_token_advantages(&paths, &s);
        assert_eq!(a[0], vec![1.0, 1.0, 1.0]);
        assert_eq!(a[1], vec![-1.0, -1.0, -1.0]);
        assert_eq!(overlong(10, 16, 4), 0.0);
        assert!((overlong(14, 16, 4) + 0.5).abs() < 1e-12);
        assert!((q_hat(0.5, 1.0, 1.0) - 0.462117).abs() < 1e-6);
    }
}
