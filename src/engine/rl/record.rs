//! What is stored of a tree: every node with its statistics and flags, as plain data.
use serde::{Deserialize, Serialize};

use crate::engine::rl::tree::Tree;
use crate::engine::task::StepKind;

/// One node as stored. `id` is the node's index in the tree; the root is 0.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub id: u32,
    pub parent: Option<u32>,
    pub depth: u32,
    pub tokens: Vec<u32>,
    pub text: String,
    /// Accumulated value q.
    pub q: f32,
    /// Visits N.
    pub n: u32,
    /// H(s): mean negative log-probability of the step's tokens.
    pub entropy: f32,
    /// Frontier score when the node was selected for expansion.
    pub frontier_score: Option<f32>,
    /// +1 / -1 for terminals.
    pub terminal_value: Option<f32>,
    pub correct: Option<bool>,
    /// The verifier's reason (terminals).
    pub reason: Option<String>,
    pub picked: bool,
    pub recorded: bool,
    pub confident_wrong: bool,
    /// Advantage of this node's tokens in the update, if it was trained on.
    pub advantage: Option<f32>,
    /// How the task judged the step: open, forced or invalid.
    pub step: StepKind,
    /// Identical sibling samples merged into this node (1: none). A merged node counts
    /// once in N (1 + the recorded terminals below it), whatever its multiplicity.
    pub multiplicity: u32,
    /// Search distillation: prior P among siblings, the value head's estimate of the state
    /// after this step, and whether the node is on the distilled (most-visited) path. In
    /// such a tree `q` is W (the sum of backed-up values) and `n` the visits.
    pub prior: Option<f32>,
    pub value: Option<f32>,
    pub distilled: bool,
    /// When the node was expanded: 0 for the tree's first expansion, 1 for the next...
    /// (none: never expanded, or a store older than schema 3).
    pub expanded_at: Option<u32>,
    /// The score of the best candidate not chosen when this node was picked for expansion
    /// (the frontier's runner-up), if recorded.
    pub runner_up: Option<f32>,
}

impl NodeRecord {
    /// A node with nothing recorded yet: open, unvisited, multiplicity 1.
    pub fn blank(id: u32, parent: Option<u32>, depth: u32) -> Self {
        NodeRecord {
            id,
            parent,
            depth,
            tokens: Vec::new(),
            text: String::new(),
            q: 0.0,
            n: 0,
            entropy: 0.0,
            frontier_score: None,
            terminal_value: None,
            correct: None,
            reason: None,
            picked: false,
            recorded: false,
            confident_wrong: false,
            advantage: None,
            step: StepKind::Open,
            multiplicity: 1,
            prior: None,
            value: None,
            distilled: false,
            expanded_at: None,
            runner_up: None,
        }
    }

    /// Q = q / N.
    pub fn mean_q(&self) -> f32 {
        if self.n == 0 {
            0.0
        } else {
            self.q / self.n as f32
        }
    }
    pub fn is_terminal(&self) -> bool {
        self.terminal_value.is_some()
    }
}

/// How the problem's group was produced.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GroupSource {
    /// An MCTS tree.
    Search,
    /// Independent samples (grpo, dapo, best_of_n), stored as children of the root.
    Direct,
    /// Cached solutions plus fresh rollouts (search skipped).
    Cached,
    /// An AlphaZero-style pUCT tree whose most-visited path is trained on
    /// (`tree_distill`).
    Distill,
    /// A tree of segments forked at chosen tokens (`treerl`).
    Branch,
}

/// One problem's tree in one iteration.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TreeRecord {
    pub problem: String,
    pub prompt: String,
    pub source: GroupSource,
    pub expansions: u32,
    pub cap_event: bool,
    pub nodes: Vec<NodeRecord>,
    /// The search's simulations in order, as (leaf reached, value backed up from it to
    /// the root): what search distillation's replay needs. Empty for other searches
    /// (DeepSearch's replay needs only `expanded_at` and `picked`).
    #[serde(default)]
    pub simulations: Vec<(u32, f32)>,
}

impl TreeRecord {
    /// Converts a finished search tree; `advantages[i]` is node i's advantage if trained.
    pub fn from_tree(
        problem: &str,
        prompt: &str,
        tree: &Tree,
        expansions: usize,
        cap_event: bool,
        advantages: &std::collections::HashMap<u32, f32>,
    ) -> Self {
        let nodes = tree
            .graph
            .node_indices()
            .map(|i| {
                let n = tree.node(i);
                let id = i.index() as u32;
                NodeRecord {
                    id,
                    parent: tree.parent(i).map(|p| p.index() as u32),
                    depth: n.depth as u32,
                    tokens: n.tokens.clone(),
                    text: n.text.clone(),
                    q: n.q as f32,
                    n: n.n,
                    entropy: n.step_entropy() as f32,
                    frontier_score: n.frontier_score.map(|x| x as f32),
                    terminal_value: n.terminal.as_ref().map(|t| t.value as f32),
                    correct: n.terminal.as_ref().map(|t| t.correct),
                    reason: n.terminal.as_ref().map(|t| t.reason.clone()),
                    picked: n.picked,
                    recorded: n.recorded,
                    confident_wrong: n.confident_wrong,
                    advantage: advantages.get(&id).copied(),
                    step: n.step,
                    multiplicity: n.multiplicity,
                    prior: n.prior.map(|x| x as f32),
                    value: n.value.map(|x| x as f32),
                    distilled: n.distilled,
                    expanded_at: n.expanded_at,
                    runner_up: n.runner_up.map(|x| x as f32),
                }
            })
            .collect();
        TreeRecord {
            problem: problem.to_string(),
            prompt: prompt.to_string(),
            source: GroupSource::Search,
            expansions: expansions as u32,
            cap_event,
            nodes,
            simulations: Vec::new(),
        }
    }

    /// An empty record of independent samples: the root alone.
    pub fn direct(problem: &str, prompt: &str) -> Self {
        TreeRecord {
            problem: problem.to_string(),
            prompt: prompt.to_string(),
            source: GroupSource::Direct,
            expansions: 0,
            cap_event: false,
            nodes: vec![NodeRecord::blank(0, None, 0)],
            simulations: Vec::new(),
        }
    }

    /// Adds a whole sampled completion as a terminal child of the root.
    pub fn push_sample(&mut self, t: &crate::engine::rl::rollout::Trajectory, advantage: f32) {
        let id = self.nodes.len() as u32;
        let entropy = if t.logprobs.is_empty() {
            0.0
        } else {
            -t.logprobs.iter().sum::<f32>() / t.logprobs.len() as f32
        };
        let correct = t.correct();
        self.nodes.push(NodeRecord {
            tokens: t.tokens.clone(),
            text: t.text.clone(),
            q: if correct { 1.0 } else { -1.0 },
            n: 1,
            entropy,
            terminal_value: Some(if correct { 1.0 } else { -1.0 }),
            correct: Some(correct),
            reason: Some(t.verdict.reason.to_string()),
            recorded: true,
            advantage: Some(advantage),
            ..NodeRecord::blank(id, Some(0), 1)
        });
    }

    /// The node with `id` (ids are positions, so this is a direct lookup).
    pub fn node(&self, id: u32) -> Option<&NodeRecord> {
        match self.nodes.get(id as usize) {
            Some(n) if n.id == id => Some(n),
            _ => self.nodes.iter().find(|n| n.id == id),
        }
    }

    /// Whether any recorded trajectory is correct.
    pub fn solved(&self) -> bool {
        self.nodes
            .iter()
            .any(|n| n.recorded && n.correct == Some(true))
    }

    /// Graphviz DOT of the tree: correct terminals green with a check mark, wrong ones red
    /// with a cross, the confident-wrong path bold and marked "!".
    pub fn to_dot(&self) -> String {
        let mut s = format!(
            "digraph tree {{\n  label={:?};\n  node [shape=box, fontname=monospace];\n",
            format!("{} {}", self.problem, self.prompt.trim_end())
        );
        for n in &self.nodes {
            let mut label = if n.id == 0 {
                "root".to_string()
            } else {
                n.text.replace('\n', "\\n")
            };
            label.push_str(&format!(
                "\\nq={:.3} N={} Q={:.3} H={:.2}",
                n.q,
                n.n,
                n.mean_q(),
                n.entropy
            ));
            if let Some(f) = n.frontier_score {
                label.push_str(&format!(" F={f:.3}"));
            }
            let mut attrs = Vec::new();
            match n.correct {
                Some(true) => {
                    label.push_str(" ✓");
                    attrs.push("color=green".to_string());
                }
                Some(false) => {
                    label.push_str(" ✗");
                    attrs.push("color=red".to_string());
                }
                None => {}
            }
            if n.recorded {
                label.push_str(" [rec]");
            }
            match n.step {
                StepKind::Invalid => label.push_str(" [invalid]"),
                StepKind::Forced => label.push_str(" [forced]"),
                StepKind::Open => {}
            }
            if n.multiplicity > 1 {
                label.push_str(&format!(" x{}", n.multiplicity));
            }
            if n.confident_wrong {
                label.push_str(" !");
                attrs.push("style=bold".to_string());
            }
            attrs.push(format!("label=\"{}\"", label.replace('"', "\\\"")));
            s.push_str(&format!("  n{} [{}];\n", n.id, attrs.join(", ")));
            if let Some(p) = n.parent {
                s.push_str(&format!("  n{p} -> n{};\n", n.id));
            }
        }
        s.push_str("}\n");
        s
    }
}
