//! Search settings: the paper's defaults, with Countdown-sized depths.
use serde::{Deserialize, Serialize};

use super::backup::BackupRule;
use super::frontier::DepthBonus;
use super::pick::NegativePick;
use crate::engine::methods::deepsearch::tree_grpo::{TokenScore, Unsolved};
use crate::engine::rl::objective::AdvantageNorm;

/// What one reasoning step (one tree edge) is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum StepMode {
    /// A line: a step ends at a newline (or after `step_max_tokens`). Countdown.
    #[default]
    Newline,
    /// A fixed-length chunk of `step_max_tokens` tokens (the paper: 256 tokens, depth
    /// 64), for real models whose reasoning has no line structure. A chunk ends early at
    /// EOS, including when EOS is the chunk's last token.
    Chunk,
}

/// Where the next expansion starts after a backup.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Selection {
    /// Global frontier scoring across the whole tree (DeepSearch).
    #[default]
    Frontier,
    /// Restart at the root and descend by UCT (the paper's baseline).
    Uct,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SearchConfig {
    /// Children sampled per expansion (paper: 8). (R)
    pub width: usize,
    /// Trajectories recorded per tree, the group size n (paper: 8). (R)
    pub n: usize,
    /// UCT exploration constant (paper: 2.0). (R)
    pub c_uct: f64,
    /// Frontier weight of tanh(Q(parent)) (paper: 0.4). (R)
    pub l1: f64,
    /// Frontier weight of the step entropy (paper: 0, off). (R)
    pub l2: f64,
    /// Frontier weight of the depth bonus (paper: 0.01). (R)
    pub l3: f64,
    /// Depth bonus D (paper: sqrt(d / max_depth)).
    pub depth_bonus: DepthBonus,
    /// Deepest node; a node at this depth is terminal (paper: 64 chunks; Countdown: 8 steps).
    pub max_depth: usize,
    /// Most tokens in one step before it is cut (Countdown lines are short). Default 24;
    /// with `step = "chunk"` the chunk length (paper: 256).
    pub step_max_tokens: usize,
    /// newline (default) or chunk.
    pub step: StepMode,
    /// Floor of the backup's depth weight (code: 0.1).
    pub gamma_min: f64,
    pub backup: BackupRule,
    pub negative: NegativePick,
    pub selection: Selection,
    /// Safety cap on expansions per tree; the group is padded with direct rollouts. Default 64.
    pub max_expansions: usize,
    /// Safety cap on tokens generated per tree. Default 16384.
    pub max_tree_tokens: usize,
    /// q_hat = q_max tanh(q / eps_q) (paper: 1.0, 1.0).
    pub q_max: f64,
    pub eps_q: f64,
    /// Overlong penalty: responses longer than `overlong_max - overlong_buffer` tokens are
    /// penalised linearly (paper: 16384, 4096); 0 disables.
    pub overlong_max: usize,
    pub overlong_buffer: usize,
    /// Group advantage: mean_only (Tree-GRPO) or mean_std.
    pub advantage: AdvantageNorm,
    /// Token scores: q (node q-values, Tree-GRPO) or outcome (DAPO).
    pub token_score: TokenScore,
    /// Judge every step with the task: an invalid step (Countdown: a broken rule) ends
    /// its path as a wrong terminal at once, a forced one (the answer line once one
    /// number is left) is expanded with width 1. Off reproduces the paper. Default true.
    pub step_check: bool,
    /// Whether a terminal made by an invalid step may be picked and recorded (it teaches
    /// the policy to avoid the step, but fills recorded slots with short paths). Default
    /// true.
    pub record_invalid: bool,
    /// Merge identical sibling steps (same tokens) into one node with a multiplicity, so
    /// the recorded slots hold distinct paths. Off reproduces the paper. Default true.
    pub merge_siblings: bool,
    /// Trees whose recorded trajectories are all wrong: keep (the paper's A = q_hat - mu),
    /// outcome (outcome scores: all zero), skip (leave the batch), negative (only the
    /// confident-wrong path, with its own negative node scores, no mu).
    pub unsolved: Unsolved,
}

impl SearchConfig {
    /// The paper's search: no step judgement, no merging, unsolved trees kept.
    pub fn paper_switches(&mut self) {
        self.step_check = false;
        self.merge_siblings = false;
        self.unsolved = Unsolved::Keep;
    }
}

impl Default for SearchConfig {
    fn default() -> Self {
        Self {
            width: 8,
            n: 8,
            c_uct: 2.0,
            l1: 0.4,
            l2: 0.0,
            l3: 0.01,
            depth_bonus: DepthBonus::Sqrt,
            max_depth: 8,
            step_max_tokens: 24,
            step: StepMode::Newline,
            gamma_min: 0.1,
            backup: BackupRule::Constrained,
            negative: NegativePick::MostConfident,
            selection: Selection::Frontier,
            max_expansions: 64,
            max_tree_tokens: 16384,
            q_max: 1.0,
            eps_q: 1.0,
            overlong_max: 0,
            overlong_buffer: 0,
            advantage: AdvantageNorm::MeanOnly,
            token_score: TokenScore::Q,
            step_check: true,
            record_invalid: true,
            merge_siblings: true,
            unsolved: Unsolved::Keep,
        }
    }
}
