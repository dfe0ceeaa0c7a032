//! Store schema migrations. Tree records are postcard (not self-describing), so an older
//! store is rewritten once, in one batch, when this build opens it. Everything else (runs,
//! metrics, warm starts, checkpoints) is JSON or raw bytes and reads as it is.
//!
//! * Version 2 added `step` (how the task judged the step) and `multiplicity` (merged
//!   identical siblings): old nodes become `open` with multiplicity 1, which is what a
//!   search without step judgement or merging made.
//! * Version 3 added search distillation's `prior`, `value` and `distilled`, and the
//!   search replay's `expanded_at` and `runner_up`: old nodes have none of them.
//! * Version 4 added the tree's `simulations` (search distillation's replay): old trees
//!   have none, so their distillation searches cannot be replayed (the explorer says so).
use serde::{Deserialize, Serialize};

use super::keys::{prefix, Table};
use super::{Store, StoreError, SCHEMA_VERSION};
use crate::engine::rl::record::{GroupSource, NodeRecord, TreeRecord};
use crate::engine::task::StepKind;

#[derive(Deserialize, Serialize)]
struct NodeV1 {
    id: u32,
    parent: Option<u32>,
    depth: u32,
    tokens: Vec<u32>,
    text: String,
    q: f32,
    n: u32,
    entropy: f32,
    frontier_score: Option<f32>,
    terminal_value: Option<f32>,
    correct: Option<bool>,
    reason: Option<String>,
    picked: bool,
    recorded: bool,
    confident_wrong: bool,
    advantage: Option<f32>,
}

/// Schema 2's node: schema 1's fields, then `step` and `multiplicity`.
#[derive(Deserialize, Serialize)]
struct NodeV2Fields {
    id: u32,
    parent: Option<u32>,
    depth: u32,
    tokens: Vec<u32>,
    text: String,
    q: f32,
    n: u32,
    entropy: f32,
    frontier_score: Option<f32>,
    terminal_value: Option<f32>,
    correct: Option<bool>,
    reason: Option<String>,
    picked: bool,
    recorded: bool,
    confident_wrong: bool,
    advantage: Option<f32>,
    step: StepKind,
    multiplicity: u32,
}

#[derive(Deserialize, Serialize)]
struct Tree<N> {
    problem: String,
    prompt: String,
    source: GroupSource,
    expansions: u32,
    cap_event: bool,
    nodes: Vec<N>,
}

fn v1_node(n: NodeV1) -> NodeV2Fields {
    NodeV2Fields {
        id: n.id,
        parent: n.parent,
        depth: n.depth,
        tokens: n.tokens,
        text: n.text,
        q: n.q,
        n: n.n,
        entropy: n.entropy,
        frontier_score: n.frontier_score,
        terminal_value: n.terminal_value,
        correct: n.correct,
        reason: n.reason,
        picked: n.picked,
        recorded: n.recorded,
        confident_wrong: n.confident_wrong,
        advantage: n.advantage,
        step: StepKind::Open,
        multiplicity: 1,
    }
}

fn v2_node(n: NodeV2Fields) -> NodeRecord {
    NodeRecord {
        id: n.id,
        parent: n.parent,
        depth: n.depth,
        tokens: n.tokens,
        text: n.text,
        q: n.q,
        n: n.n,
        entropy: n.entropy,
        frontier_score: n.frontier_score,
        terminal_value: n.terminal_value,
        correct: n.correct,
        reason: n.reason,
        picked: n.picked,
        recorded: n.recorded,
        confident_wrong: n.confident_wrong,
        advantage: n.advantage,
        step: n.step,
        multiplicity: n.multiplicity,
        prior: None,
        value: None,
        distilled: false,
        expanded_at: None,
        runner_up: None,
    }
}

fn map_tree<A, B>(t: Tree<A>, f: impl Fn(A) -> B) -> Tree<B> {
    Tree {
        problem: t.problem,
        prompt: t.prompt,
        source: t.source,
        expansions: t.expansions,
        cap_event: t.cap_event,
        nodes: t.nodes.into_iter().map(f).collect(),
    }
}

fn current(t: Tree<NodeRecord>) -> TreeRecord {
    TreeRecord {
        problem: t.problem,
        prompt: t.prompt,
        source: t.source,
        expansions: t.expansions,
        cap_event: t.cap_event,
        nodes: t.nodes,
        simulations: Vec::new(),
    }
}

/// Decodes a tree record written under schema `from` as today's.
fn upgrade(bytes: &[u8], from: u32) -> Result<TreeRecord, postcard::Error> {
    Ok(match from {
        1 => current(map_tree(
            map_tree(postcard::from_bytes::<Tree<NodeV1>>(bytes)?, v1_node),
            v2_node,
        )),
        2 => current(map_tree(
            postcard::from_bytes::<Tree<NodeV2Fields>>(bytes)?,
            v2_node,
        )),
        _ => current(postcard::from_bytes::<Tree<NodeRecord>>(bytes)?),
    })
}

/// Whether this build can migrate a store of schema `from`.
pub(super) fn can_migrate(from: u32) -> bool {
    (1..SCHEMA_VERSION).contains(&from)
}

/// Rewrites every tree of a store of schema `from` as today's and updates the header, in
/// one sled batch (all or nothing), then flushes. Returns the number of trees rewritten.
pub(super) fn migrate(store: &Store, from: u32) -> Result<usize, StoreError> {
    let mut batch = sled::Batch::default();
    let mut n = 0;
    for kv in store.db.scan_prefix(prefix(Table::Tree, None)) {
        let (k, v) = kv.map_err(|e| store.access(e))?;
        let new = upgrade(&v, from).map_err(|e| {
            StoreError::Corrupt(format!(
                "record {} cannot be migrated from schema {from}: {e}",
                super::keys::show(&k)
            ))
        })?;
        let new = postcard::to_allocvec(&new).map_err(|e| StoreError::Encode(e.to_string()))?;
        batch.insert(k, new);
        n += 1;
    }
    let header = super::Header {
        schema_version: SCHEMA_VERSION,
        created_by: format!(
            "arbor {} (migrated from schema {from})",
            env!("CARGO_PKG_VERSION")
        ),
    };
    let h = serde_json::to_vec(&header).map_err(|e| StoreError::Encode(e.to_string()))?;
    batch.insert(super::keys::HEADER, h);
    store.db.apply_batch(batch).map_err(|e| store.access(e))?;
    store.flush()?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Writes a store of schema `version` holding one tree (`tree` in that schema's
    /// encoding) as run "r", iteration 1.
    fn old_store<N: Serialize>(path: &std::path::Path, version: u32, tree: &Tree<N>) {
        let db = sled::open(path).unwrap();
        let header = super::super::Header {
            schema_version: version,
            created_by: format!("arbor 0.{version}.0"),
        };
        db.insert(
            super::super::keys::HEADER,
            serde_json::to_vec(&header).unwrap(),
        )
        .unwrap();
        db.insert(
            super::super::keys::tree_key("r", 1, 0),
            postcard::to_allocvec(tree).unwrap(),
        )
        .unwrap();
        db.flush().unwrap();
    }

    fn tree_of<N>(node: N) -> Tree<N> {
        Tree {
            problem: "p".into(),
            prompt: "3 4 5:12\n".into(),
            source: GroupSource::Search,
            expansions: 1,
            cap_event: false,
            nodes: vec![node],
        }
    }

    fn v1(q: f32, n: u32) -> NodeV1 {
        NodeV1 {
            id: 0,
            parent: None,
            depth: 0,
            tokens: vec![],
            text: String::new(),
            q,
            n,
            entropy: 0.0,
            frontier_score: None,
            terminal_value: None,
            correct: None,
            reason: None,
            picked: false,
            recorded: false,
            confident_wrong: false,
            advantage: None,
        }
    }

    #[test]
    fn a_schema_1_store_is_migrated_on_open_and_its_trees_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sled");
        old_store(&path, 1, &tree_of(v1(0.5, 2)));
        let store = Store::open(&path).unwrap();
        let trees = store.trees("r", 1).unwrap();
        assert_eq!(trees.len(), 1);
        assert_eq!(trees[0].nodes[0].q, 0.5);
        assert_eq!(trees[0].nodes[0].step, StepKind::Open);
        assert_eq!(trees[0].nodes[0].multiplicity, 1);
        assert_eq!(trees[0].nodes[0].prior, None);
        assert!(!trees[0].nodes[0].distilled);
        drop(store);
        // Opening again finds the current version and changes nothing.
        let again = Store::open(&path).unwrap();
        assert_eq!(again.trees("r", 1).unwrap(), trees);
    }

    #[test]
    fn a_schema_2_store_keeps_its_step_judgements_and_gains_empty_distill_fields() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2.sled");
        let mut node = v1_node(NodeV1 {
            tokens: vec![3],
            text: "x".into(),
            entropy: 0.2,
            frontier_score: Some(0.4),
            confident_wrong: true,
            advantage: Some(0.5),
            ..v1(-1.0, 3)
        });
        node.step = StepKind::Forced;
        node.multiplicity = 3;
        old_store(&path, 2, &tree_of(node));
        let store = Store::open(&path).unwrap();
        let t = &store.trees("r", 1).unwrap()[0];
        let n = &t.nodes[0];
        assert_eq!(
            (n.step, n.multiplicity, n.q, n.n),
            (StepKind::Forced, 3, -1.0, 3)
        );
        assert_eq!((n.advantage, n.confident_wrong), (Some(0.5), true));
        assert_eq!((n.prior, n.value, n.expanded_at), (None, None, None));
    }

    /// A schema 3 tree (today's nodes, no simulations) keeps every node as it was and
    /// gains an empty simulation list; reading it never panics.
    #[test]
    fn a_schema_3_store_keeps_its_nodes_and_gains_no_simulations() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v3.sled");
        let mut node = v2_node(v1_node(v1(0.25, 4)));
        node.prior = Some(0.5);
        node.value = Some(-0.1);
        node.distilled = true;
        node.expanded_at = Some(0);
        let mut tree = tree_of(node.clone());
        tree.source = GroupSource::Distill;
        old_store(&path, 3, &tree);
        let store = Store::open(&path).unwrap();
        let t = &store.trees("r", 1).unwrap()[0];
        assert_eq!(t.nodes, vec![node]);
        assert_eq!(t.source, GroupSource::Distill);
        assert!(t.simulations.is_empty());
    }
}
