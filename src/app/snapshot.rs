//! What the explorer shows, read from the store: a run, its iterations, and the trees of
//! the iteration under the cursor. Live and replay are the same code with another cursor.
use std::collections::HashMap;

use crate::app::source::RunSource;
use crate::engine::rl::record::{NodeRecord, TreeRecord};
use crate::engine::training::control::ControlEvent;
use crate::engine::training::records::IterationMetrics;
use crate::store::{RunRecord, StoreError};

pub struct RunSnapshot {
    pub run: RunRecord,
    pub iterations: Vec<IterationMetrics>,
    /// Control events (pause, retune, ...), oldest first.
    pub events: Vec<ControlEvent>,
}

impl RunSnapshot {
    pub fn load(source: &dyn RunSource, name: &str) -> Result<Self, StoreError> {
        Ok(Self {
            run: source.run(name)?,
            iterations: source.iterations_after(name, 0)?,
            events: source.events_from(name, 0)?,
        })
    }

    /// Brings the snapshot up to date: only what was committed since is fetched (all of
    /// it again after a roll-back, which only a resume does).
    pub fn refresh(&mut self, source: &dyn RunSource, name: &str) -> Result<(), StoreError> {
        self.run = source.run(name)?;
        if self.run.last_iteration < self.last_iteration() {
            self.iterations = source.iterations_after(name, 0)?;
        } else {
            let newer = source.iterations_after(name, self.last_iteration())?;
            self.iterations.extend(newer);
        }
        self.refresh_events(source, name)
    }

    /// Fetches the control events recorded since the snapshot's last.
    pub fn refresh_events(&mut self, source: &dyn RunSource, name: &str) -> Result<(), StoreError> {
        let newer = source.events_from(name, self.events.len())?;
        self.events.extend(newer);
        Ok(())
    }

    pub fn metrics(&self, iteration: u64) -> Option<&IterationMetrics> {
        self.iterations.iter().find(|m| m.iteration == iteration)
    }

    pub fn last_iteration(&self) -> u64 {
        self.iterations.last().map_or(0, |m| m.iteration)
    }
}

/// Status of a problem's group in one iteration.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemStatus {
    /// The search (or the direct samples) found a correct trajectory.
    Solved,
    /// Only wrong trajectories: the confident-wrong path is marked.
    ConfidentWrongOnly,
    /// Cached solutions replaced the search.
    Cached,
}

impl ProblemStatus {
    pub fn label(self) -> &'static str {
        match self {
            ProblemStatus::Solved => "solved",
            ProblemStatus::ConfidentWrongOnly => "wrong only",
            ProblemStatus::Cached => "cached",
        }
    }
}

pub fn status(t: &TreeRecord) -> ProblemStatus {
    use crate::engine::rl::record::GroupSource;
    if t.source == GroupSource::Cached {
        ProblemStatus::Cached
    } else if t.solved() {
        ProblemStatus::Solved
    } else {
        ProblemStatus::ConfidentWrongOnly
    }
}

/// Fraction of recorded trajectories that are correct.
pub fn success(t: &TreeRecord) -> f64 {
    let rec: Vec<&NodeRecord> = t.nodes.iter().filter(|n| n.recorded).collect();
    if rec.is_empty() {
        0.0
    } else {
        rec.iter().filter(|n| n.correct == Some(true)).count() as f64 / rec.len() as f64
    }
}

/// Node ids by parent, children in creation order.
pub fn children(t: &TreeRecord) -> HashMap<u32, Vec<u32>> {
    let mut c: HashMap<u32, Vec<u32>> = HashMap::new();
    for n in &t.nodes {
        if let Some(p) = n.parent {
            c.entry(p).or_default().push(n.id);
        }
    }
    for v in c.values_mut() {
        v.sort_unstable();
    }
    c
}

/// root..id.
pub fn path(t: &TreeRecord, id: u32) -> Vec<u32> {
    let mut p = vec![id];
    let mut cur = id;
    while let Some(parent) = t.node(cur).and_then(|n| n.parent) {
        p.push(parent);
        cur = parent;
    }
    p.reverse();
    p
}

/// Mean negative log-probability over all response tokens on root..id.
pub fn path_entropy(t: &TreeRecord, id: u32) -> f64 {
    let (mut sum, mut len) = (0.0, 0usize);
    for i in path(t, id) {
        if let Some(n) = t.node(i) {
            sum += n.entropy as f64 * n.tokens.len() as f64;
            len += n.tokens.len();
        }
    }
    if len == 0 {
        f64::NAN
    } else {
        sum / len as f64
    }
}

/// Visible rows of a tree (depth-first, children in creation order), skipping the
/// subtrees of folded nodes: (node id, depth).
pub fn visible_rows(t: &TreeRecord, folded: &std::collections::HashSet<u32>) -> Vec<(u32, usize)> {
    let kids = children(t);
    let mut out = Vec::with_capacity(t.nodes.len());
    let mut stack = vec![(0u32, 0usize)];
    while let Some((id, d)) = stack.pop() {
        out.push((id, d));
        if folded.contains(&id) {
            continue;
        }
        if let Some(c) = kids.get(&id) {
            for &k in c.iter().rev() {
                stack.push((k, d + 1));
            }
        }
    }
    out
}
