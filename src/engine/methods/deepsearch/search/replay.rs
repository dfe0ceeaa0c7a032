//! A stored DeepSearch tree replayed expansion by expansion, from the store alone (no
//! model): which node was expanded, its frontier score against the runner-up, the
//! children it produced, the terminal picked and the backup it caused, and every node's
//! q and N at that moment.
//!
//! What the store holds makes this exact: nodes are numbered in creation order, an
//! expanded node carries `expanded_at`, the one terminal an expansion backs up is its
//! `picked` child, a new open node starts at N = 1 (a terminal at 0), and the backup is
//! `backup.rs`'s. The last step's q and N equal the stored ones (tested).
use super::backup::{backed_up_q, depth_weight, BackupRule};
use crate::engine::rl::record::{NodeRecord, TreeRecord};

use crate::engine::rl::replay::root_path;
pub use crate::engine::rl::replay::{ReplayError, ReplayStep, ReplayUnit};

/// The steps of a searched tree, or an explanation of why it cannot be replayed.
pub fn replay(
    t: &TreeRecord,
    gamma_min: f64,
    rule: BackupRule,
) -> Result<Vec<ReplayStep>, ReplayError> {
    let len = t.nodes.iter().map(|n| n.id as usize + 1).max().unwrap_or(0);
    let mut by_id: Vec<Option<&NodeRecord>> = vec![None; len];
    // Children by parent, in creation order. Padded samples (recorded, never picked)
    // hang under the root but were added after the search: no expansion made them.
    let mut kids: Vec<Vec<u32>> = vec![Vec::new(); len];
    for n in &t.nodes {
        by_id[n.id as usize] = Some(n);
        match n.parent {
            Some(p) if (p as usize) < len && (n.picked || !n.recorded) => {
                kids[p as usize].push(n.id)
            }
            _ => {}
        }
    }
    let mut expanded: Vec<&NodeRecord> =
        t.nodes.iter().filter(|n| n.expanded_at.is_some()).collect();
    if expanded.is_empty() {
        return Err(ReplayError::NoExpansionOrder);
    }
    expanded.sort_by_key(|n| n.expanded_at);
    let mut state: Vec<Option<(f64, u32)>> = vec![None; len];
    state[0] = Some((0.0, 0));
    let mut steps = Vec::with_capacity(expanded.len());
    for (k, e) in expanded.iter().enumerate() {
        if e.expanded_at != Some(k as u32) {
            return Err(ReplayError::Gap {
                at: k,
                node: e.id,
                says: e.expanded_at,
            });
        }
        let children = kids[e.id as usize].clone();
        for &c in &children {
            let terminal = by_id[c as usize].is_some_and(|n| n.is_terminal());
            state[c as usize] = Some((0.0, if terminal { 0 } else { 1 }));
        }
        let picked = children
            .iter()
            .filter_map(|&c| by_id[c as usize])
            .find(|c| c.picked)
            .map(|c| (c.id, c.terminal_value.unwrap_or(-1.0)));
        if let Some((p, v)) = picked {
            let path = root_path(
                |i| {
                    by_id
                        .get(i as usize)
                        .copied()
                        .flatten()
                        .and_then(|n| n.parent)
                },
                p,
                len,
            )?;
            let l = path.len() - 1;
            for (depth, &i) in path.iter().enumerate() {
                let w = depth_weight(depth, l, gamma_min);
                if let Some((q, n)) = state[i as usize].as_mut() {
                    *q = backed_up_q(*q, v as f64, w, rule);
                    *n += 1;
                }
            }
        }
        steps.push(ReplayStep {
            unit: ReplayUnit::Expansion,
            expansions_done: k as u32 + 1,
            expansion: k as u32,
            node: e.id,
            frontier_score: e.frontier_score,
            runner_up: e.runner_up,
            children,
            picked,
            state: state.clone(),
        });
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rl::record::GroupSource;

    fn node(id: u32, parent: Option<u32>, depth: u32) -> NodeRecord {
        NodeRecord::blank(id, parent, depth)
    }

    /// Root 0 expanded into open 1 and wrong terminal 2 (picked, -1); then 1 expanded
    /// (frontier 0.3 over a runner-up of 0.1) into correct terminal 3 (picked, +1) and
    /// open 4. By hand, gamma_min 0.1, constrained backup:
    /// after step 0: root q = -0.5 (w = 1/2), N 1; node 2 q = -1 (w = 1), N 1; node 1 N 1.
    /// after step 1: path 0-1-3 (L = 2): root w 1/3: q*v < 0 and v > 0 -> 1/3, N 2;
    /// node 1 w 2/3: q 0 -> 2/3, N 2; node 3 w 1 -> 1, N 1; node 4 (0, 1).
    #[test]
    fn a_hand_built_tree_replays_to_hand_computed_states() {
        let mut n0 = node(0, None, 0);
        n0.expanded_at = Some(0);
        let mut n1 = node(1, Some(0), 1);
        n1.expanded_at = Some(1);
        n1.frontier_score = Some(0.3);
        n1.runner_up = Some(0.1);
        let mut n2 = node(2, Some(0), 1);
        n2.terminal_value = Some(-1.0);
        n2.picked = true;
        n2.recorded = true;
        let mut n3 = node(3, Some(1), 2);
        n3.terminal_value = Some(1.0);
        n3.picked = true;
        n3.recorded = true;
        let n4 = node(4, Some(1), 2);
        let t = TreeRecord {
            problem: "p".into(),
            prompt: "1 2:3\n".into(),
            source: GroupSource::Search,
            expansions: 2,
            cap_event: false,
            nodes: vec![n0, n1, n2, n3, n4],
            simulations: Vec::new(),
        };
        let steps = replay(&t, 0.1, BackupRule::Constrained).unwrap();
        assert_eq!(steps.len(), 2);
        let s0 = &steps[0];
        assert_eq!(
            (s0.node, s0.children.clone(), s0.picked),
            (0, vec![1, 2], Some((2, -1.0)))
        );
        assert_eq!(s0.state[0], Some((-0.5, 1)));
        assert_eq!(s0.state[1], Some((0.0, 1)));
        assert_eq!(s0.state[2], Some((-1.0, 1)));
        assert_eq!(s0.state[3], None);
        let s1 = &steps[1];
        assert_eq!((s1.frontier_score, s1.runner_up), (Some(0.3), Some(0.1)));
        assert_eq!(s1.picked, Some((3, 1.0)));
        let close = |a: Option<(f64, u32)>, q: f64, n: u32| {
            a.is_some_and(|(x, m)| (x - q).abs() < 1e-12 && m == n)
        };
        assert!(close(s1.state[0], 1.0 / 3.0, 2), "{:?}", s1.state[0]);
        assert!(close(s1.state[1], 2.0 / 3.0, 2), "{:?}", s1.state[1]);
        assert!(close(s1.state[3], 1.0, 1));
        assert!(close(s1.state[4], 0.0, 1));
        assert!(close(s1.state[2], -1.0, 1));
    }

    #[test]
    fn a_tree_without_an_expansion_order_is_refused_with_a_reason() {
        let t = TreeRecord::direct("p", "1 2:3\n");
        let e = replay(&t, 0.1, BackupRule::Constrained).unwrap_err();
        assert_eq!(e, ReplayError::NoExpansionOrder);
        assert!(e.to_string().contains("no expansion order"));
    }
}
