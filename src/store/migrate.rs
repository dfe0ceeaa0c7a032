//! Store schema migrations. Version 2 added two fields to every stored tree node (`step`:
//! how the task judged the step; `multiplicity`: merged identical siblings). Tree records
//! are postcard (not self-describing), so a version-1 store is rewritten once, in one
//! batch, when this build opens it: old nodes become `open` with multiplicity 1, which is
//! what a search without step judgement or merging made. Everything else (runs, metrics,
//! warm starts, checkpoints) is JSON or raw bytes and reads as it is.
use serde::{Deserialize, Serialize};

use super::keys::{prefix, Table};
use super::{Store, StoreError};
use crate::engine::search::record::{GroupSource, NodeRecord, TreeRecord};
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

#[derive(Deserialize, Serialize)]
struct TreeV1 {
    problem: String,
    prompt: String,
    source: GroupSource,
    expansions: u32,
    cap_event: bool,
    nodes: Vec<NodeV1>,
}

fn upgrade(t: TreeV1) -> TreeRecord {
    TreeRecord {
        problem: t.problem,
        prompt: t.prompt,
        source: t.source,
        expansions: t.expansions,
        cap_event: t.cap_event,
        nodes: t
            .nodes
            .into_iter()
            .map(|n| NodeRecord {
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
            })
            .collect(),
    }
}

/// Rewrites every tree of a version-1 store as version 2 and updates the header, in one
/// sled batch (all or nothing), then flushes. Returns the number of trees rewritten.
pub(super) fn v1_to_v2(store: &Store) -> Result<usize, StoreError> {
    let mut batch = sled::Batch::default();
    let mut n = 0;
    for kv in store.db.scan_prefix(prefix(Table::Tree, None)) {
        let (k, v) = kv.map_err(|e| store.access(e))?;
        let old: TreeV1 = postcard::from_bytes(&v).map_err(|e| {
            StoreError::Corrupt(format!(
                "record {} cannot be migrated from schema 1: {e}",
                super::keys::show(&k)
            ))
        })?;
        let new =
            postcard::to_allocvec(&upgrade(old)).map_err(|e| StoreError::Encode(e.to_string()))?;
        batch.insert(k, new);
        n += 1;
    }
    let header = super::Header {
        schema_version: 2,
        created_by: format!(
            "arbor {} (migrated from schema 1)",
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

    #[test]
    fn a_schema_1_store_is_migrated_on_open_and_its_trees_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sled");
        {
            let db = sled::open(&path).unwrap();
            let header = super::super::Header {
                schema_version: 1,
                created_by: "arbor 0.1.0".into(),
            };
            db.insert(
                super::super::keys::HEADER,
                serde_json::to_vec(&header).unwrap(),
            )
            .unwrap();
            let tree = TreeV1 {
                problem: "p".into(),
                prompt: "3 4 5:12\n".into(),
                source: GroupSource::Search,
                expansions: 1,
                cap_event: false,
                nodes: vec![NodeV1 {
                    id: 0,
                    parent: None,
                    depth: 0,
                    tokens: vec![],
                    text: String::new(),
                    q: 0.5,
                    n: 2,
                    entropy: 0.0,
                    frontier_score: None,
                    terminal_value: None,
                    correct: None,
                    reason: None,
                    picked: false,
                    recorded: false,
                    confident_wrong: false,
                    advantage: None,
                }],
            };
            db.insert(
                super::super::keys::tree_key("r", 1, 0),
                postcard::to_allocvec(&tree).unwrap(),
            )
            .unwrap();
            db.flush().unwrap();
        }
        let store = Store::open(&path).unwrap();
        let trees = store.trees("r", 1).unwrap();
        assert_eq!(trees.len(), 1);
        assert_eq!(trees[0].nodes[0].q, 0.5);
        assert_eq!(trees[0].nodes[0].step, StepKind::Open);
        assert_eq!(trees[0].nodes[0].multiplicity, 1);
        drop(store);
        // Opening again finds version 2 and changes nothing.
        let again = Store::open(&path).unwrap();
        assert_eq!(again.trees("r", 1).unwrap(), trees);
    }
}
