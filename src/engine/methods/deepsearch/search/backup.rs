//! The heuristic score backup (DeepSearch section 6): every node on the root..t* path is
//! visited once more and moves its q towards the terminal's value, weighted by depth, with
//! the asymmetry that a node once on a correct path never turns negative.
use serde::{Deserialize, Serialize};

/// Which backup rule.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum BackupRule {
    /// The paper's constrained update (the released code's default).
    #[default]
    Constrained,
    /// `q += w v` when signs agree, else `max(q + w v, 0)`.
    Vanilla,
}

/// `w(node) = max((depth + 1) / (L + 1), gamma_min)`, root depth 0, L = depth of t*.
pub fn depth_weight(depth: usize, terminal_depth: usize, gamma_min: f64) -> f64 {
    ((depth + 1) as f64 / (terminal_depth + 1) as f64).max(gamma_min)
}

/// The new q of a node with value `q` on a path whose terminal has value `v` (+1 / -1).
pub fn backed_up_q(q: f64, v: f64, w: f64, rule: BackupRule) -> f64 {
    if q * v >= 0.0 {
        return q + w * v;
    }
    match rule {
        BackupRule::Constrained if v > 0.0 => w * v,
        BackupRule::Constrained => q,
        BackupRule::Vanilla => (q + w * v).max(0.0),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One node's statistics in the worked example.
    #[derive(Clone, Copy)]
    struct Node {
        q: f64,
        n: u32,
    }

    fn backup(path: &mut [&mut Node], v: f64) {
        let l = path.len() - 1;
        for (depth, node) in path.iter_mut().enumerate() {
            node.n += 1;
            node.q = backed_up_q(
                node.q,
                v,
                depth_weight(depth, l, 0.1),
                BackupRule::Constrained,
            );
        }
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-4
    }

    #[test]
    fn reproduces_the_worked_backup_vector() {
        // DeepSearch (arXiv 2509.25454) section 6. Non-terminal nodes start with N = 1 from creation; the
        // root and terminals start at N = 0.
        let mut root = Node { q: 0.0, n: 0 };
        let (mut a, mut b, mut c) = (
            Node { q: 0.0, n: 1 },
            Node { q: 0.0, n: 1 },
            Node { q: 0.0, n: 1 },
        );
        let mut t1 = Node { q: 0.0, n: 0 };
        backup(&mut [&mut root, &mut a, &mut b, &mut c, &mut t1], -1.0);
        let got = [
            (root.q, root.n),
            (a.q, a.n),
            (b.q, b.n),
            (c.q, c.n),
            (t1.q, t1.n),
        ];
        let want = [(-0.2, 1), (-0.4, 2), (-0.6, 2), (-0.8, 2), (-1.0, 1)];
        for (g, w) in got.iter().zip(want) {
            assert!(close(g.0, w.0) && g.1 == w.1, "{g:?} vs {w:?}");
        }

        let (mut c2, mut e) = (Node { q: 0.0, n: 1 }, Node { q: 0.0, n: 1 });
        let mut t2 = Node { q: 0.0, n: 0 };
        backup(
            &mut [&mut root, &mut a, &mut b, &mut c2, &mut e, &mut t2],
            1.0,
        );
        let got = [root, a, b, c2, e, t2];
        let want = [
            (0.1667, 2),
            (0.3333, 3),
            (0.5, 3),
            (0.6667, 2),
            (0.8333, 2),
            (1.0, 1),
        ];
        for (g, w) in got.iter().zip(want) {
            assert!(close(g.q, w.0) && g.n == w.1, "({}, {}) vs {w:?}", g.q, g.n);
        }
        assert!(
            close(c.q, -0.8),
            "c is off the correct path and keeps its q"
        );

        let mut c3 = Node { q: 0.0, n: 1 };
        let mut t3 = Node { q: 0.0, n: 0 };
        let before = [root.q, a.q, b.q];
        backup(&mut [&mut root, &mut a, &mut b, &mut c3, &mut t3], -1.0);
        assert_eq!(
            [root.q, a.q, b.q],
            before,
            "correct-path nodes never go negative"
        );
        assert_eq!((root.n, a.n, b.n), (3, 4, 4));
        assert!(close(c3.q, -0.8));

        // Q = q / N.
        let big_q = |n: &Node| n.q / n.n as f64;
        let want = [
            (root, 0.0556),
            (a, 0.0833),
            (b, 0.125),
            (c, -0.4),
            (c2, 0.3333),
            (c3, -0.4),
        ];
        for (node, w) in want {
            assert!(close(big_q(&node), w), "{} vs {w}", big_q(&node));
        }
    }

    #[test]
    fn vanilla_rule_floors_at_zero() {
        assert!(close(backed_up_q(0.5, -1.0, 0.8, BackupRule::Vanilla), 0.0));
        assert!(close(backed_up_q(-0.5, 1.0, 0.2, BackupRule::Vanilla), 0.0));
        assert!(close(
            backed_up_q(-0.5, -1.0, 0.2, BackupRule::Vanilla),
            -0.7
        ));
    }

    #[test]
    fn weights_are_floored_by_gamma_min() {
        assert!(close(depth_weight(0, 20, 0.1), 0.1));
        assert!(close(depth_weight(20, 20, 0.1), 1.0));
        assert!(close(depth_weight(1, 4, 0.1), 0.4));
    }
}
