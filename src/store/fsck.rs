//! `arbor fsck`: reads every record of a store and reports what is inconsistent.
//!
//! Checked: the header; every record decodes; each run's iterations are exactly
//! 1..=last_iteration; each iteration's trees are well-formed (one root, parents present,
//! depths consistent) and agree with its metrics (problem count, search accounting);
//! events decode; every indexed checkpoint folder is complete and readable and belongs
//! to a committed iteration; warm starts decode. Nothing is modified.
use std::collections::{BTreeMap, HashSet};

use crate::engine::rl::record::{GroupSource, TreeRecord};
use crate::engine::training::control::ControlEvent;
use crate::engine::training::records::IterationMetrics;
use crate::engine::training::resume;

use super::keys::{self, prefix, Table};
use super::{CheckpointRecord, RunRecord, Store, StoreError};

/// What fsck found.
#[derive(Debug, Default)]
pub struct Report {
    pub runs: usize,
    pub iterations: usize,
    pub trees: usize,
    pub nodes: usize,
    pub checkpoints: usize,
    pub events: usize,
    pub problems: Vec<String>,
}

impl Report {
    pub fn ok(&self) -> bool {
        self.problems.is_empty()
    }

    pub fn summary(&self) -> String {
        format!(
            "{} runs, {} iterations, {} trees ({} nodes), {} checkpoints, {} events checked",
            self.runs, self.iterations, self.trees, self.nodes, self.checkpoints, self.events
        )
    }
}

/// The run name and the big-endian u64 after it in a `<table><run>\0<u64>...` key.
fn split_key(k: &[u8]) -> Option<(String, u64)> {
    let rest = &k[1..];
    let zero = rest.iter().position(|&b| b == 0)?;
    let name = String::from_utf8(rest[..zero].to_vec()).ok()?;
    let num: [u8; 8] = rest.get(zero + 1..zero + 9)?.try_into().ok()?;
    Some((name, u64::from_be_bytes(num)))
}

/// Problems of one tree, if any.
pub fn tree_problems(t: &TreeRecord) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: BTreeMap<u32, (Option<u32>, u32)> = BTreeMap::new();
    for n in &t.nodes {
        if seen.insert(n.id, (n.parent, n.depth)).is_some() {
            out.push(format!("node {} appears twice", n.id));
        }
    }
    let roots: Vec<u32> = t
        .nodes
        .iter()
        .filter(|n| n.parent.is_none())
        .map(|n| n.id)
        .collect();
    if roots != [0] {
        out.push(format!("expected one root (node 0), found {roots:?}"));
    }
    for n in &t.nodes {
        if let Some(p) = n.parent {
            match seen.get(&p) {
                None => out.push(format!(
                    "node {} has parent {p}, which is not in the tree",
                    n.id
                )),
                Some(&(_, d)) if d + 1 != n.depth => out.push(format!(
                    "node {} has depth {} under a parent of depth {d}",
                    n.id, n.depth
                )),
                _ => {}
            }
        }
        if n.recorded && !n.is_terminal() {
            out.push(format!("node {} is recorded but not terminal", n.id));
        }
        if n.distilled && t.source != GroupSource::Distill {
            out.push(format!(
                "node {} is marked distilled in a {:?} tree (only tree_distill trees have a distilled path)",
                n.id, t.source
            ));
        }
        if !n.q.is_finite() || !n.entropy.is_finite() {
            out.push(format!("node {} has a non-finite q or entropy", n.id));
        }
    }
    if t.source == GroupSource::Distill {
        out.extend(distilled_path_problems(t));
        out.extend(simulation_problems(t));
    }
    out
}

/// A tree_distill tree's stored simulations must replay to its stored W and N (trees
/// written before schema 4 have none and are not checked).
fn simulation_problems(t: &TreeRecord) -> Vec<String> {
    if t.simulations.is_empty() {
        return Vec::new();
    }
    let steps = match crate::engine::methods::tree_distill::replay::replay(t) {
        Ok(s) => s,
        Err(e) => return vec![format!("its simulations cannot be replayed: {e}")],
    };
    let Some(last) = steps.last() else {
        return Vec::new();
    };
    t.nodes
        .iter()
        .filter_map(|n| {
            let (w, k) = last
                .state
                .get(n.id as usize)
                .copied()
                .flatten()
                .unwrap_or((0.0, 0));
            ((w as f32 - n.q).abs() > 1e-3 * (1.0 + n.q.abs()) || k != n.n).then(|| {
                format!(
                    "node {}: its simulations replay to W {w:.4} N {k}, stored W {:.4} N {}",
                    n.id, n.q, n.n
                )
            })
        })
        .collect()
}

/// A tree_distill tree's distilled nodes must form one path down from the root. The path
/// may end before a terminal (then it was trained with the unfinished reward): that is
/// accepted for this method only.
fn distilled_path_problems(t: &TreeRecord) -> Vec<String> {
    let mut out = Vec::new();
    let distilled: BTreeMap<u32, Option<u32>> = t
        .nodes
        .iter()
        .filter(|n| n.distilled)
        .map(|n| (n.id, n.parent))
        .collect();
    let mut children: BTreeMap<u32, usize> = BTreeMap::new();
    for (&id, &parent) in &distilled {
        match parent {
            None => {}
            Some(p) if distilled.contains_key(&p) => *children.entry(p).or_default() += 1,
            Some(p) => out.push(format!(
                "node {id} is on the distilled path but its parent {p} is not"
            )),
        }
    }
    for (p, n) in children {
        if n > 1 {
            out.push(format!(
                "node {p} has {n} distilled children (the distilled path is a single path)"
            ));
        }
    }
    out
}

/// Problems of an iteration's trees against its metrics.
fn iteration_problems(m: &IterationMetrics, trees: &[TreeRecord]) -> Vec<String> {
    let mut out = Vec::new();
    if trees.len() != m.problems {
        out.push(format!(
            "{} trees stored for {} problems in the metrics",
            trees.len(),
            m.problems
        ));
    }
    if let Some(s) = &m.search {
        let searched: Vec<&TreeRecord> = trees
            .iter()
            .filter(|t| {
                matches!(
                    t.source,
                    GroupSource::Search | GroupSource::Distill | GroupSource::Branch
                )
            })
            .collect();
        let checks = [
            ("searched trees", searched.len() as u64, s.trees),
            (
                "expansions",
                searched.iter().map(|t| t.expansions as u64).sum(),
                s.expansions,
            ),
            (
                "cap events",
                searched.iter().filter(|t| t.cap_event).count() as u64,
                s.cap_events,
            ),
            (
                "nodes (tree nodes + padded samples)",
                searched.iter().map(|t| t.nodes.len() as u64).sum(),
                s.nodes + s.pad_nodes.unwrap_or(s.padded),
            ),
            (
                "cached problems",
                trees
                    .iter()
                    .filter(|t| t.source == GroupSource::Cached)
                    .count() as u64,
                s.cache_hits,
            ),
        ];
        for (what, stored, said) in checks {
            if stored != said {
                out.push(format!(
                    "{what}: the trees hold {stored}, the metrics say {said}"
                ));
            }
        }
    }
    out
}

/// Problems of one indexed checkpoint.
fn checkpoint_problems(c: &CheckpointRecord, last: u64) -> Vec<String> {
    let mut out = Vec::new();
    if c.iteration > last {
        out.push(format!("is after the last committed iteration {last}"));
    }
    if !c.dir.is_dir() {
        out.push(format!("folder {} is missing", c.dir.display()));
        return out;
    }
    match resume::load_state(&c.dir) {
        Ok(s) if s.iteration != c.iteration => out.push(format!(
            "{} says iteration {}",
            resume::STATE_FILE,
            s.iteration
        )),
        Ok(_) => {}
        Err(e) => out.push(e.to_string()),
    }
    for file in ["model.safetensors", resume::OPTIMIZER_FILE] {
        let path = c.dir.join(file);
        match std::fs::read(&path) {
            Ok(bytes) => {
                if let Err(e) = safetensors::SafeTensors::deserialize(&bytes) {
                    out.push(format!("{}: not readable safetensors: {e}", path.display()));
                }
            }
            Err(e) => out.push(format!("{}: {e}", path.display())),
        }
    }
    let cfg = c.dir.join("config.json");
    match std::fs::read(&cfg) {
        Ok(b) => {
            if let Err(e) = serde_json::from_slice::<serde_json::Value>(&b) {
                out.push(format!("{}: not JSON: {e}", cfg.display()));
            }
        }
        Err(e) => out.push(format!("{}: {e}", cfg.display())),
    }
    out
}

impl Store {
    /// Checks every record; never writes.
    pub fn fsck(&self) -> Result<Report, StoreError> {
        let mut r = Report::default();
        let h = self.header()?;
        if h.schema_version != super::SCHEMA_VERSION {
            r.problems.push(format!(
                "header: schema version {} (this build: {})",
                h.schema_version,
                super::SCHEMA_VERSION
            ));
        }
        let mut runs: BTreeMap<String, RunRecord> = BTreeMap::new();
        for kv in self.db.scan_prefix(prefix(Table::Run, None)) {
            let (k, v) = kv.map_err(StoreError::Sled)?;
            match serde_json::from_slice::<RunRecord>(&v) {
                Ok(run) => {
                    runs.insert(run.name.clone(), run);
                }
                Err(e) => r
                    .problems
                    .push(format!("record {}: not a run record: {e}", keys::show(&k))),
            }
        }
        r.runs = runs.len();
        let mut its: BTreeMap<String, BTreeMap<u64, IterationMetrics>> = BTreeMap::new();
        for kv in self.db.scan_prefix(prefix(Table::Iteration, None)) {
            let (k, v) = kv.map_err(StoreError::Sled)?;
            let Some((run, i)) = split_key(&k) else {
                r.problems
                    .push(format!("record {}: malformed key", keys::show(&k)));
                continue;
            };
            match serde_json::from_slice::<IterationMetrics>(&v) {
                Ok(m) if m.iteration != i => r.problems.push(format!(
                    "run {run} iteration {i}: the record says iteration {}",
                    m.iteration
                )),
                Ok(m) => {
                    its.entry(run).or_default().insert(i, m);
                }
                Err(e) => r
                    .problems
                    .push(format!("run {run} iteration {i}: unreadable metrics: {e}")),
            }
        }
        let mut trees: BTreeMap<(String, u64), Vec<TreeRecord>> = BTreeMap::new();
        for kv in self.db.scan_prefix(prefix(Table::Tree, None)) {
            let (k, v) = kv.map_err(StoreError::Sled)?;
            let Some((run, i)) = split_key(&k) else {
                r.problems
                    .push(format!("record {}: malformed key", keys::show(&k)));
                continue;
            };
            match postcard::from_bytes::<TreeRecord>(&v) {
                Ok(t) => {
                    r.nodes += t.nodes.len();
                    for p in tree_problems(&t) {
                        r.problems
                            .push(format!("run {run} iteration {i} tree {}: {p}", t.problem));
                    }
                    trees.entry((run, i)).or_default().push(t);
                }
                Err(e) => r
                    .problems
                    .push(format!("run {run} iteration {i}: unreadable tree: {e}")),
            }
            r.trees += 1;
        }
        for (name, run) in &runs {
            let mine = its.remove(name).unwrap_or_default();
            r.iterations += mine.len();
            let want: HashSet<u64> = (1..=run.last_iteration).collect();
            let have: HashSet<u64> = mine.keys().copied().collect();
            let mut missing: Vec<u64> = want.difference(&have).copied().collect();
            missing.sort_unstable();
            if !missing.is_empty() {
                r.problems.push(format!(
                    "run {name}: iterations {missing:?} are missing (last committed: {})",
                    run.last_iteration
                ));
            }
            let mut extra: Vec<u64> = have.difference(&want).copied().collect();
            extra.sort_unstable();
            if !extra.is_empty() {
                r.problems.push(format!(
                    "run {name}: iterations {extra:?} are stored beyond the last committed {}",
                    run.last_iteration
                ));
            }
            for (i, m) in &mine {
                let t = trees.remove(&(name.clone(), *i)).unwrap_or_default();
                for p in iteration_problems(m, &t) {
                    r.problems.push(format!("run {name} iteration {i}: {p}"));
                }
            }
            for c in self.checkpoints(name)? {
                r.checkpoints += 1;
                for p in checkpoint_problems(&c, run.last_iteration) {
                    r.problems.push(format!(
                        "run {name} checkpoint of iteration {}: {p}",
                        c.iteration
                    ));
                }
            }
        }
        for (run, _) in its {
            r.problems.push(format!(
                "iterations stored for run {run:?}, which has no run record"
            ));
        }
        for ((run, i), _) in trees {
            r.problems.push(format!(
                "trees stored for run {run:?} iteration {i}, which has no metrics record"
            ));
        }
        for kv in self.db.scan_prefix(prefix(Table::Event, None)) {
            let (k, v) = kv.map_err(StoreError::Sled)?;
            r.events += 1;
            if let Err(e) = serde_json::from_slice::<ControlEvent>(&v) {
                r.problems
                    .push(format!("record {}: unreadable event: {e}", keys::show(&k)));
            }
        }
        for kv in self.db.scan_prefix(b"w") {
            let (k, v) = kv.map_err(StoreError::Sled)?;
            if let Err(e) = serde_json::from_slice::<super::WarmStartMeta>(&v) {
                r.problems.push(format!(
                    "record {}: unreadable warm start: {e}",
                    keys::show(&k)
                ));
            }
        }
        for kv in self.db.scan_prefix(b"W") {
            let (k, v) = kv.map_err(StoreError::Sled)?;
            if let Err(e) = safetensors::SafeTensors::deserialize(&v) {
                r.problems.push(format!(
                    "record {}: unreadable warm-start weights: {e}",
                    keys::show(&k)
                ));
            }
        }
        Ok(r)
    }
}
