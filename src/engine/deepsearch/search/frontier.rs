//! Global frontier selection (DeepSearch section 4): across the whole tree, the next
//! expansion starts at the non-terminal leaf with the highest
//! `l1 tanh(Q(parent)) + l2 H(s) + l3 D(depth)`.
//!
//! [`FrontierIndex`] keeps those scores ordered, so a pick costs O(log n) instead of a
//! scan of the tree: a score moves only when its parent's Q does, which a backup changes
//! for the nodes on one path, and only their children are rescored.
use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

/// The depth bonus D.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum DepthBonus {
    /// `d`
    Linear,
    /// `ln(d + 1)`
    Log,
    /// `sqrt(d / max_depth)` (the paper's final choice).
    #[default]
    Sqrt,
}

impl DepthBonus {
    pub fn value(self, depth: usize, max_depth: usize) -> f64 {
        let d = depth as f64;
        match self {
            DepthBonus::Linear => d,
            DepthBonus::Log => (d + 1.0).ln(),
            DepthBonus::Sqrt => (d / max_depth.max(1) as f64).sqrt(),
        }
    }
}

/// Weights of the frontier score (paper: l1 0.4, l2 0, l3 0.01; all retunable).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct FrontierWeights {
    pub l1: f64,
    pub l2: f64,
    pub l3: f64,
    pub bonus: DepthBonus,
    pub max_depth: usize,
}

/// `score(s) = l1 tanh(Q(parent(s))) + l2 H(s) + l3 D(depth(s))`.
pub fn frontier_score(q_parent: f64, entropy: f64, depth: usize, w: &FrontierWeights) -> f64 {
    w.l1 * q_parent.tanh() + w.l2 * entropy + w.l3 * w.bonus.value(depth, w.max_depth)
}

/// Index of the best score; ties go to the first (depth-first pre-order is the caller's
/// order). NaN scores never win.
pub fn argmax_first(scores: &[f64]) -> Option<usize> {
    let mut best: Option<(usize, f64)> = None;
    for (i, &s) in scores.iter().enumerate() {
        if s.is_nan() {
            continue;
        }
        if best.is_none_or(|(_, b)| s > b) {
            best = Some((i, s));
        }
    }
    best.map(|(i, _)| i)
}

/// One frontier node: its score and its place in depth-first pre-order, as the node ids
/// on its root..node path (root left out). Siblings are numbered in creation order, so
/// comparing paths lexicographically is comparing pre-order positions.
#[derive(Clone, Debug)]
struct Entry {
    score: f64,
    path: Arc<[u32]>,
}

impl Entry {
    /// -0 and +0 tie, as they do for `argmax_first`'s `>`.
    fn key(&self) -> f64 {
        if self.score == 0.0 {
            0.0
        } else {
            self.score
        }
    }
}

impl Ord for Entry {
    /// Best first: the higher score, then the earlier in pre-order.
    fn cmp(&self, o: &Self) -> Ordering {
        o.key()
            .total_cmp(&self.key())
            .then_with(|| self.path.cmp(&o.path))
    }
}

impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}

impl Eq for Entry {}

/// The frontier's nodes ordered by score, ties first in pre-order: picks exactly what
/// `argmax_first` over the pre-order scan picks. Nodes are the tree's dense indices.
#[derive(Debug, Default)]
pub struct FrontierIndex {
    ordered: BTreeSet<Entry>,
    /// Each member's entry, by node index (NaN scores are members but never ordered: they
    /// never win).
    entries: Vec<Option<Entry>>,
    members: usize,
}

impl FrontierIndex {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn len(&self) -> usize {
        self.members
    }

    pub fn is_empty(&self) -> bool {
        self.members == 0
    }

    pub fn contains(&self, node: usize) -> bool {
        self.entries.get(node).is_some_and(|e| e.is_some())
    }

    /// Adds `node`, whose root..node path (root left out, `node` last) is `path`.
    pub fn insert(&mut self, node: usize, path: Arc<[u32]>, score: f64) {
        self.remove(node);
        if self.entries.len() <= node {
            self.entries.resize(node + 1, None);
        }
        let e = Entry { score, path };
        if !score.is_nan() {
            self.ordered.insert(e.clone());
        }
        self.entries[node] = Some(e);
        self.members += 1;
    }

    /// Takes `node` out (it was expanded); returns its path.
    pub fn remove(&mut self, node: usize) -> Option<Arc<[u32]>> {
        let e = self.entries.get_mut(node)?.take()?;
        self.members -= 1;
        if !e.score.is_nan() {
            self.ordered.remove(&e);
        }
        Some(e.path)
    }

    /// Gives a member a new score; a node not in the frontier is left out.
    pub fn rescore(&mut self, node: usize, score: f64) {
        let Some(Some(e)) = self.entries.get(node) else {
            return;
        };
        if e.score.to_bits() == score.to_bits() {
            return;
        }
        let path = e.path.clone();
        self.insert(node, path, score);
    }

    /// The best node and its score: the highest, ties to the first in pre-order.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.ordered.first().map(|e| {
            let node = e.path.last().map_or(0, |&i| i as usize);
            (node, e.score)
        })
    }

    /// Every ordered member, best first (NaN scores left out).
    pub fn ranked(&self) -> Vec<(usize, f64)> {
        self.ordered
            .iter()
            .map(|e| (e.path.last().map_or(0, |&i| i as usize), e.score))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_score_then_preorder_and_skips_nan() {
        let p = |v: &[u32]| -> Arc<[u32]> { v.into() };
        let mut f = FrontierIndex::new();
        f.insert(3, p(&[1, 3]), 0.5);
        f.insert(2, p(&[2]), 0.5);
        f.insert(4, p(&[1, 4]), -0.0);
        f.insert(5, p(&[1, 3, 5]), f64::NAN);
        // 1 -> 3 -> 5 and 1 -> 4 come before 2 in pre-order.
        assert_eq!(f.best(), Some((3, 0.5)));
        f.rescore(3, 0.0);
        assert_eq!(f.best(), Some((2, 0.5)));
        f.rescore(2, 0.0);
        // 3 and 4 (-0) tie with 2 at zero: 3 is first in pre-order.
        assert_eq!(f.best().map(|b| b.0), Some(3));
        assert_eq!(f.remove(3).as_deref(), Some(&[1u32, 3][..]));
        assert_eq!(f.best().map(|b| b.0), Some(4));
        assert_eq!(f.len(), 3);
        assert!(f.contains(5) && !f.contains(3));
        f.remove(4);
        f.remove(2);
        assert_eq!(f.best(), None, "a NaN score never wins");
    }

    #[test]
    fn reproduces_the_worked_frontier_scores() {
        let w = FrontierWeights {
            l1: 0.4,
            l2: 0.0,
            l3: 0.01,
            bonus: DepthBonus::Sqrt,
            max_depth: 64,
        };
        let close = |a: f64, b: f64| (a - b).abs() < 1e-6;
        assert!(close(frontier_score(-0.3, 5.0, 16, &w), -0.111525));
        assert!(close(frontier_score(0.5, 0.0, 40, &w), 0.192753));
        assert!(close(frontier_score(0.0, 1.0, 1, &w), 0.00125));
    }

    #[test]
    fn bonuses_and_ties() {
        assert!((DepthBonus::Linear.value(3, 64) - 3.0).abs() < 1e-12);
        assert!((DepthBonus::Log.value(3, 64) - 4f64.ln()).abs() < 1e-12);
        assert_eq!(argmax_first(&[0.1, 0.3, 0.3, f64::NAN]), Some(1));
        assert_eq!(argmax_first(&[f64::NAN]), None);
        assert_eq!(argmax_first(&[]), None);
    }
}
