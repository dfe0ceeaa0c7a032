//! The distillation target: the path that always takes the most-visited child, from the
//! root to a terminal, or to where the tree ends (then with a negative reward).
//!
//! Ties: the first maximal child in creation order. The write-up's released code took the
//! last (Python's `max` over reversed children); first-in-creation-order is the order
//! children were sampled in, so among equally visited siblings the choice is the one the
//! sampler produced first, which is as arbitrary but needs no reversal and matches how
//! every other arbor tie is broken (pre-order first).
use petgraph::graph::NodeIndex;

use crate::engine::search::tree::Tree;

/// The most-visited path below the root (root excluded) and whether it ends at a
/// terminal. An unvisited child is never followed: the path ends where visits stop.
pub fn most_visited_path(tree: &Tree) -> (Vec<NodeIndex>, bool) {
    let mut path = Vec::new();
    let mut cur = tree.root;
    loop {
        if tree.node(cur).terminal.is_some() {
            return (path, true);
        }
        let mut best: Option<(NodeIndex, u32)> = None;
        for c in tree.children(cur) {
            let n = tree.node(c).n;
            match best {
                Some((_, b)) if n <= b => {}
                _ => best = Some((c, n)),
            }
        }
        match best {
            Some((c, n)) if n > 0 => {
                path.push(c);
                cur = c;
            }
            _ => return (path, false),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::search::tree::{Node, Terminal};

    fn child(tree: &mut Tree, parent: NodeIndex, n: u32) -> NodeIndex {
        let depth = tree.node(parent).depth + 1;
        let mut node = Node::new(depth);
        node.n = n;
        tree.add_child(parent, node)
    }

    #[test]
    fn follows_visits_to_a_terminal_with_first_child_ties() {
        let mut t = Tree::new(vec![1]);
        let r = t.root;
        let a = child(&mut t, r, 3);
        let b = child(&mut t, r, 5);
        let _c = child(&mut t, r, 5); // ties with b, created later
        let b1 = child(&mut t, b, 2);
        let b2 = child(&mut t, b, 2);
        let _ = child(&mut t, a, 3);
        t.node_mut(b1).terminal = Some(Terminal {
            value: 1.0,
            correct: true,
            reason: "correct".into(),
        });
        let _ = b2;
        assert_eq!(most_visited_path(&t), (vec![b, b1], true));
    }

    #[test]
    fn ends_where_visits_stop_without_a_terminal() {
        let mut t = Tree::new(vec![1]);
        let r = t.root;
        let a = child(&mut t, r, 1);
        let _ = child(&mut t, a, 0);
        let _ = child(&mut t, a, 0);
        assert_eq!(most_visited_path(&t), (vec![a], false));
        // A root never expanded: an empty path.
        assert_eq!(most_visited_path(&Tree::new(vec![1])), (vec![], false));
    }
}
