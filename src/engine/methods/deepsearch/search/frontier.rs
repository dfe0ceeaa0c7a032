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

use petgraph::graph::NodeIndex;
use serde::{Deserialize, Serialize};

use super::config::SearchConfig;
use crate::engine::rl::tree::Tree;

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

/// A frontier node's place in the order: its score and its place in depth-first
/// pre-order, as the node ids on its root..node path (root left out, the node last).
/// Siblings are numbered in creation order, so comparing paths lexicographically is
/// comparing pre-order positions.
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

    fn node(&self) -> usize {
        self.path.last().map_or(0, |&i| i as usize)
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

/// A frontier node, kept with the inputs of its score other than its parent's Q.
#[derive(Clone, Debug)]
struct Member {
    entropy: f64,
    depth: usize,
    entry: Entry,
}

/// The frontier children of one parent, in creation order, and the best of them.
#[derive(Clone, Debug, Default)]
struct Group {
    members: Vec<Member>,
    best: Option<Entry>,
}

/// The frontier ordered by score, ties to the first in pre-order: picks exactly what
/// `argmax_first` over the pre-order scan picks. Siblings share their parent's Q, so
/// nodes are grouped by parent and only each group's best is ordered globally: a backup
/// rescores the groups of the nodes on its path (a few arithmetic operations per child)
/// and moves one ordered entry per path node. Nodes are the tree's dense indices.
#[derive(Debug)]
pub struct FrontierIndex {
    weights: FrontierWeights,
    /// Each group's best, best first.
    ordered: BTreeSet<Entry>,
    /// Groups by parent index.
    groups: Vec<Option<Group>>,
    /// Parent of each member, by node index.
    parent_of: Vec<Option<u32>>,
    members: usize,
}

impl FrontierIndex {
    pub fn new(weights: FrontierWeights) -> Self {
        Self {
            weights,
            ordered: BTreeSet::new(),
            groups: Vec::new(),
            parent_of: Vec::new(),
            members: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.members
    }

    pub fn is_empty(&self) -> bool {
        self.members == 0
    }

    pub fn contains(&self, node: usize) -> bool {
        self.parent_of.get(node).is_some_and(|p| p.is_some())
    }

    /// Adds `node`, the newest child of `parent`, whose root..node path (root left out,
    /// `node` last) is `path`, with its step entropy and depth and its parent's Q.
    pub fn add(
        &mut self,
        parent: usize,
        path: Arc<[u32]>,
        entropy: f64,
        depth: usize,
        q_parent: f64,
    ) {
        let node = path.last().map_or(0, |&i| i as usize);
        if self.parent_of.len() <= node {
            self.parent_of.resize(node + 1, None);
        }
        self.parent_of[node] = Some(parent as u32);
        if self.groups.len() <= parent {
            self.groups.resize(parent + 1, None);
        }
        let score = frontier_score(q_parent, entropy, depth, &self.weights);
        let group = self.groups[parent].get_or_insert_with(Group::default);
        group.members.push(Member {
            entropy,
            depth,
            entry: Entry { score, path },
        });
        self.members += 1;
        self.refresh(parent);
    }

    /// Takes `node` out (it was expanded); returns its path.
    pub fn remove(&mut self, node: usize) -> Option<Arc<[u32]>> {
        let parent = self.parent_of.get_mut(node)?.take()? as usize;
        let group = self.groups.get_mut(parent)?.as_mut()?;
        let k = group.members.iter().position(|m| m.entry.node() == node)?;
        let m = group.members.remove(k);
        self.members -= 1;
        self.refresh(parent);
        Some(m.entry.path)
    }

    /// `parent`'s Q changed (a backup passed through it): rescores its frontier children.
    pub fn rescore(&mut self, parent: usize, q_parent: f64) {
        let Some(Some(group)) = self.groups.get_mut(parent) else {
            return;
        };
        for m in &mut group.members {
            m.entry.score = frontier_score(q_parent, m.entropy, m.depth, &self.weights);
        }
        self.refresh(parent);
    }

    /// Re-picks a group's best (first in creation order among the highest scores, as
    /// `argmax_first` does) and moves its ordered entry.
    fn refresh(&mut self, parent: usize) {
        let Some(Some(group)) = self.groups.get_mut(parent) else {
            return;
        };
        // argmax_first's rule (strictly greater wins, NaN never) without collecting.
        let mut best: Option<&Entry> = None;
        for m in &group.members {
            let s = m.entry.score;
            if !s.is_nan() && best.is_none_or(|b| s > b.score) {
                best = Some(&m.entry);
            }
        }
        let best = best.cloned();
        if let Some(old) = std::mem::replace(&mut group.best, best.clone()) {
            self.ordered.remove(&old);
        }
        if let Some(b) = best {
            self.ordered.insert(b);
        }
        if group.members.is_empty() {
            self.groups[parent] = None;
        }
    }

    /// The best node and its score: the highest, ties to the first in pre-order.
    pub fn best(&self) -> Option<(usize, f64)> {
        self.ordered.first().map(|e| (e.node(), e.score))
    }

    /// The score of the second-best member (the runner-up when the best is picked): the
    /// best of another group, or the best group's second.
    pub fn runner_up(&self) -> Option<f64> {
        let best = self.ordered.first()?;
        let other_group = self.ordered.iter().nth(1).map(|e| e.score);
        let parent = self.parent_of.get(best.node()).copied().flatten()? as usize;
        let same_group = self.groups.get(parent)?.as_ref().and_then(|g| {
            g.members
                .iter()
                .filter(|m| m.entry.node() != best.node() && !m.entry.score.is_nan())
                .map(|m| m.entry.score)
                .reduce(f64::max)
        });
        match (other_group, same_group) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        }
    }

    /// Every member with a score (NaN left out), best first: for tests.
    pub fn ranked(&self) -> Vec<(usize, f64)> {
        let mut all: Vec<&Entry> = self
            .groups
            .iter()
            .flatten()
            .flat_map(|g| g.members.iter().map(|m| &m.entry))
            .filter(|e| !e.score.is_nan())
            .collect();
        all.sort();
        all.into_iter().map(|e| (e.node(), e.score)).collect()
    }
}

// The frontier on a search tree: which nodes belong to it, their scores and places in
// pre-order, and the linear scan the index replaced (the tests' oracle).

pub(crate) fn weights(cfg: &SearchConfig) -> FrontierWeights {
    FrontierWeights {
        l1: cfg.l1,
        l2: cfg.l2,
        l3: cfg.l3,
        bonus: cfg.depth_bonus,
        max_depth: cfg.max_depth,
    }
}

/// A frontier node's score from the tree as it stands (the oracle's; the index keeps
/// the same inputs).
#[cfg(test)]
pub(crate) fn score_of(tree: &Tree, i: NodeIndex, w: &FrontierWeights) -> f64 {
    let q_parent = tree.parent(i).map_or(0.0, |p| tree.node(p).mean_q());
    let n = tree.node(i);
    frontier_score(q_parent, n.step_entropy(), n.depth, w)
}

/// Whether `i` belongs to the frontier: not the root, not terminal, not expanded.
pub(crate) fn on_frontier(tree: &Tree, i: NodeIndex) -> bool {
    i != tree.root && tree.node(i).expandable()
}

/// The node ids on root..i, root left out: `i`'s place in pre-order.
pub(crate) fn preorder_path(tree: &Tree, i: NodeIndex) -> Arc<[u32]> {
    tree.path(i)
        .into_iter()
        .skip(1)
        .map(|n| n.index() as u32)
        .collect()
}

/// The frontier of a tree built so far (one scan, when a search starts).
pub(crate) fn build_frontier(tree: &Tree, cfg: &SearchConfig) -> FrontierIndex {
    let mut f = FrontierIndex::new(weights(cfg));
    // Index order is creation order: each parent's children are added in order.
    for i in tree.graph.node_indices() {
        if let (true, Some(p)) = (on_frontier(tree, i), tree.parent(i)) {
            let n = tree.node(i);
            let q_parent = tree.node(p).mean_q();
            f.add(
                p.index(),
                preorder_path(tree, i),
                n.step_entropy(),
                n.depth,
                q_parent,
            );
        }
    }
    f
}

/// The linear scan the frontier index replaces, kept as its test oracle: every frontier
/// node in pre-order, scored; the best, ties to the first.
#[cfg(test)]
pub(crate) fn linear_frontier(tree: &Tree, cfg: &SearchConfig) -> Option<(NodeIndex, f64)> {
    let w = weights(cfg);
    let frontier: Vec<NodeIndex> = tree
        .preorder()
        .into_iter()
        .filter(|&i| on_frontier(tree, i))
        .collect();
    let scores: Vec<f64> = frontier.iter().map(|&i| score_of(tree, i, &w)).collect();
    let k = argmax_first(&scores)?;
    Some((frontier[k], scores[k]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn orders_by_score_then_preorder_and_skips_nan() {
        // Score = tanh(Q(parent)) + H: l1 1, l2 1, no depth bonus.
        let w = FrontierWeights {
            l1: 1.0,
            l2: 1.0,
            l3: 0.0,
            bonus: DepthBonus::Linear,
            max_depth: 8,
        };
        let p = |v: &[u32]| -> Arc<[u32]> { v.into() };
        let mut f = FrontierIndex::new(w);
        f.add(0, p(&[2]), 0.5, 1, 0.0);
        f.add(1, p(&[1, 3]), 0.5, 2, 0.0);
        f.add(1, p(&[1, 4]), -0.0, 2, 0.0);
        f.add(3, p(&[1, 3, 5]), f64::NAN, 3, 0.0);
        // 1 -> 3 comes before 2 in pre-order.
        assert_eq!(f.best(), Some((3, 0.5)));
        f.rescore(1, -1.0);
        assert_eq!(f.best(), Some((2, 0.5)));
        assert_eq!(
            f.ranked().iter().map(|r| r.0).collect::<Vec<_>>(),
            [2, 3, 4]
        );
        f.rescore(1, 0.0);
        // 3 ties with 2 at 0.5 and is first in pre-order.
        assert_eq!(f.best(), Some((3, 0.5)));
        assert_eq!(f.remove(3).as_deref(), Some(&[1u32, 3][..]));
        assert_eq!(f.best(), Some((2, 0.5)));
        assert_eq!(f.len(), 3);
        assert!(f.contains(5) && !f.contains(3));
        f.remove(2);
        assert_eq!(f.best().map(|b| b.0), Some(4));
        f.remove(4);
        assert_eq!(f.best(), None, "a NaN score never wins");
        assert!(!f.is_empty());
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
