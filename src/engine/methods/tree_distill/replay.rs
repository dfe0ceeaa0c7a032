//! A stored search-distillation tree replayed simulation by simulation, from the store
//! alone (no model): the leaf each simulation reached, the children its expansion made
//! (with their priors and values), the value it backed up, and every node's W and N at
//! that moment.
//!
//! The store makes this exact: the tree keeps its simulations in order as (leaf, value);
//! a simulation whose leaf has `expanded_at` equal to the expansions made so far
//! expanded it (its children appear then); every simulation adds its value to W and 1 to
//! N on the root..leaf path (`search.rs`'s backup). The last step's W and N equal the
//! stored ones (tested).
use crate::engine::rl::record::TreeRecord;
use crate::engine::rl::replay::{root_path, ReplayError, ReplayStep, ReplayUnit};

/// The simulations of a distillation tree, or why it cannot be replayed.
pub fn replay(t: &TreeRecord) -> Result<Vec<ReplayStep>, ReplayError> {
    if t.simulations.is_empty() {
        return Err(ReplayError::NoSimulations);
    }
    let len = t.nodes.iter().map(|n| n.id as usize + 1).max().unwrap_or(0);
    let mut parent: Vec<Option<u32>> = vec![None; len];
    let mut expanded_at: Vec<Option<u32>> = vec![None; len];
    let mut kids: Vec<Vec<u32>> = vec![Vec::new(); len];
    for n in &t.nodes {
        parent[n.id as usize] = n.parent;
        expanded_at[n.id as usize] = n.expanded_at;
        if let Some(p) = n.parent.filter(|&p| (p as usize) < len) {
            kids[p as usize].push(n.id);
        }
    }
    let mut state: Vec<Option<(f64, u32)>> = vec![None; len];
    if len > 0 {
        state[0] = Some((0.0, 0));
    }
    let mut expansions = 0u32;
    let mut steps = Vec::with_capacity(t.simulations.len());
    for (k, &(leaf, v)) in t.simulations.iter().enumerate() {
        if leaf as usize >= len || state[leaf as usize].is_none() {
            return Err(ReplayError::UnknownNode { at: k, node: leaf });
        }
        // The leaf was expanded by this simulation when it is the next expansion.
        let children = if expanded_at[leaf as usize] == Some(expansions) {
            expansions += 1;
            let c = kids[leaf as usize].clone();
            for &i in &c {
                state[i as usize] = Some((0.0, 0));
            }
            c
        } else {
            Vec::new()
        };
        for i in root_path(|i| parent.get(i as usize).copied().flatten(), leaf, len)? {
            if let Some((w, n)) = state[i as usize].as_mut() {
                *w += v as f64;
                *n += 1;
            }
        }
        steps.push(ReplayStep {
            unit: ReplayUnit::Simulation,
            expansions_done: expansions,
            expansion: k as u32,
            node: leaf,
            frontier_score: None,
            runner_up: None,
            children,
            picked: Some((leaf, v)),
            state: state.clone(),
        });
    }
    Ok(steps)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::rl::record::{GroupSource, NodeRecord};

    /// Root 0 expanded by simulation 0 into 1 (open) and 2 (a correct terminal), backing
    /// up the root's value 0.2; simulation 1 reaches terminal 2 (+1); simulation 2
    /// expands 1 into 3, backing up 1's value -0.4. By hand:
    /// after 0: root W 0.2 N 1, children (0, 0);
    /// after 1: root W 1.2 N 2, node 2 W 1 N 1;
    /// after 2: root W 0.8 N 3, node 1 W -0.4 N 1, node 3 (0, 0).
    #[test]
    fn a_hand_built_tree_replays_to_hand_computed_states() {
        let mut n0 = NodeRecord::blank(0, None, 0);
        n0.expanded_at = Some(0);
        let mut n1 = NodeRecord::blank(1, Some(0), 1);
        n1.expanded_at = Some(1);
        let mut n2 = NodeRecord::blank(2, Some(0), 1);
        n2.terminal_value = Some(1.0);
        let n3 = NodeRecord::blank(3, Some(1), 2);
        let t = TreeRecord {
            problem: "p".into(),
            prompt: "1 2:3\n".into(),
            source: GroupSource::Distill,
            expansions: 2,
            cap_event: false,
            nodes: vec![n0, n1, n2, n3],
            simulations: vec![(0, 0.2), (2, 1.0), (1, -0.4)],
        };
        let s = replay(&t).unwrap();
        assert_eq!(s.len(), 3);
        let close = |a: Option<(f64, u32)>, w: f64, n: u32| {
            a.is_some_and(|(x, m)| (x - w).abs() < 1e-6 && m == n)
        };
        assert_eq!((s[0].node, s[0].children.clone()), (0, vec![1, 2]));
        assert!(close(s[0].state[0], 0.2, 1));
        assert!(close(s[0].state[1], 0.0, 0));
        assert_eq!(s[0].state[3], None);
        assert_eq!(s[0].expansions_done, 1);
        assert!(s[1].children.is_empty());
        assert_eq!(s[1].picked, Some((2, 1.0)));
        assert!(close(s[1].state[0], 1.2, 2));
        assert!(close(s[1].state[2], 1.0, 1));
        assert_eq!(s[2].children, vec![3]);
        assert_eq!(s[2].expansions_done, 2);
        assert!(close(s[2].state[0], 0.8, 3));
        assert!(close(s[2].state[1], -0.4, 1));
        assert!(close(s[2].state[3], 0.0, 0));
    }

    #[test]
    fn a_tree_without_simulations_or_with_a_stray_leaf_is_refused() {
        let t = TreeRecord {
            problem: "p".into(),
            prompt: "1 2:3\n".into(),
            source: GroupSource::Distill,
            expansions: 0,
            cap_event: false,
            nodes: vec![NodeRecord::blank(0, None, 0)],
            simulations: Vec::new(),
        };
        assert_eq!(replay(&t), Err(ReplayError::NoSimulations));
        let stray = TreeRecord {
            simulations: vec![(7, 1.0)],
            ..t
        };
        assert_eq!(
            replay(&stray),
            Err(ReplayError::UnknownNode { at: 0, node: 7 })
        );
    }
}
