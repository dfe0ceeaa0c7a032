//! One search tree per problem, in a petgraph graph. The root is the prompt; every other
//! node is one reasoning step appended to its parent's context (token ids, never
//! re-encoded text).
use petgraph::graph::{DiGraph, NodeIndex};
use petgraph::Direction;

use crate::engine::policy::sampler::RowCache;
use crate::engine::task::StepKind;

/// How a terminal node ended and what the verifier said.
#[derive(Clone, Debug, PartialEq)]
pub struct Terminal {
    /// +1 correct, -1 wrong, no answer or incomplete.
    pub value: f64,
    pub correct: bool,
    /// The verifier's reason, shown in the explorer.
    pub reason: String,
}

#[derive(Clone, Debug)]
pub struct Node {
    pub depth: usize,
    /// This step's tokens (empty for the root, whose context is the prompt).
    pub tokens: Vec<u32>,
    pub logprobs: Vec<f32>,
    pub entropies: Vec<f32>,
    pub text: String,
    /// Accumulated backed-up value.
    pub q: f64,
    /// Visit count.
    pub n: u32,
    pub terminal: Option<Terminal>,
    /// Frontier score at the moment the node was selected for expansion.
    pub frontier_score: Option<f64>,
    /// Backed up (chosen among its sibling terminals).
    pub picked: bool,
    /// End of one of the n recorded trajectories.
    pub recorded: bool,
    /// On the tree's confident-wrong path.
    pub confident_wrong: bool,
    /// Keys and values of the context up to this node, kept while it may be expanded.
    pub cache: Option<RowCache>,
    /// How the task judged this step (open unless `search.step_check`).
    pub step: StepKind,
    /// Identical sibling samples merged into this node (1: none merged).
    pub multiplicity: u32,
    /// Children were sampled from it: it is never expanded again. (A node's children can
    /// number fewer than `width` after merging or a forced expansion.)
    pub expanded: bool,
    /// Search distillation (`tree_distill`): the prior P among siblings, the value head's
    /// estimate of the state after this step, and whether the node is on the distilled
    /// (most-visited) path. `q` holds W, the sum of backed-up values.
    pub prior: Option<f64>,
    pub value: Option<f64>,
    pub distilled: bool,
    /// Order of this node's expansion in its tree (0 first), and the runner-up's score
    /// when it was chosen, for replaying the search.
    pub expanded_at: Option<u32>,
    pub runner_up: Option<f64>,
}

impl Node {
    pub fn new(depth: usize) -> Self {
        Self {
            depth,
            tokens: Vec::new(),
            logprobs: Vec::new(),
            entropies: Vec::new(),
            text: String::new(),
            q: 0.0,
            n: 0,
            terminal: None,
            frontier_score: None,
            picked: false,
            recorded: false,
            confident_wrong: false,
            cache: None,
            step: StepKind::Open,
            multiplicity: 1,
            expanded: false,
            prior: None,
            value: None,
            distilled: false,
            expanded_at: None,
            runner_up: None,
        }
    }

    /// Q = q / N (0 before the first visit).
    pub fn mean_q(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.q / self.n as f64
        }
    }

    /// Whether the frontier or UCT descent may still pick it for expansion.
    pub fn expandable(&self) -> bool {
        self.terminal.is_none() && !self.expanded
    }

    /// H(s): mean negative log-probability of this step's sampled tokens.
    pub fn step_entropy(&self) -> f64 {
        if self.logprobs.is_empty() {
            0.0
        } else {
            -self.logprobs.iter().map(|&l| l as f64).sum::<f64>() / self.logprobs.len() as f64
        }
    }
}

pub struct Tree {
    pub graph: DiGraph<Node, ()>,
    pub root: NodeIndex,
    /// The prompt's token ids.
    pub prompt: Vec<u32>,
}

impl Tree {
    pub fn new(prompt: Vec<u32>) -> Self {
        let mut graph = DiGraph::new();
        let root = graph.add_node(Node::new(0));
        Self {
            graph,
            root,
            prompt,
        }
    }

    pub fn node(&self, i: NodeIndex) -> &Node {
        &self.graph[i]
    }

    pub fn node_mut(&mut self, i: NodeIndex) -> &mut Node {
        &mut self.graph[i]
    }

    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    pub fn add_child(&mut self, parent: NodeIndex, node: Node) -> NodeIndex {
        let c = self.graph.add_node(node);
        self.graph.add_edge(parent, c, ());
        c
    }

    pub fn parent(&self, i: NodeIndex) -> Option<NodeIndex> {
        self.graph.neighbors_directed(i, Direction::Incoming).next()
    }

    /// Children in creation order.
    pub fn children(&self, i: NodeIndex) -> Vec<NodeIndex> {
        let mut c: Vec<NodeIndex> = self
            .graph
            .neighbors_directed(i, Direction::Outgoing)
            .collect();
        c.sort();
        c
    }

    /// root..i inclusive.
    pub fn path(&self, i: NodeIndex) -> Vec<NodeIndex> {
        let mut p = vec![i];
        let mut cur = i;
        while let Some(parent) = self.parent(cur) {
            p.push(parent);
            cur = parent;
        }
        p.reverse();
        p
    }

    /// Prompt followed by every step's tokens on root..i.
    pub fn context(&self, i: NodeIndex) -> Vec<u32> {
        let mut ctx = self.prompt.clone();
        for n in self.path(i) {
            ctx.extend_from_slice(&self.graph[n].tokens);
        }
        ctx
    }

    /// The response tokens on root..i (the prompt excluded).
    pub fn response(&self, i: NodeIndex) -> Vec<u32> {
        self.path(i)
            .into_iter()
            .flat_map(|n| self.graph[n].tokens.clone())
            .collect()
    }

    /// Mean exact entropy of the sampling distributions over the response tokens on
    /// root..t (NaN when no token recorded one).
    pub fn trajectory_exact_entropy(&self, t: NodeIndex) -> f64 {
        let h: Vec<f32> = self
            .path(t)
            .into_iter()
            .flat_map(|n| self.graph[n].entropies.clone())
            .collect();
        if h.is_empty() {
            f64::NAN
        } else {
            h.iter().map(|&x| x as f64).sum::<f64>() / h.len() as f64
        }
    }

    /// H_bar(t): mean negative log-probability of all response tokens on root..t.
    pub fn trajectory_entropy(&self, t: NodeIndex) -> f64 {
        let lps: Vec<f32> = self
            .path(t)
            .into_iter()
            .flat_map(|n| self.graph[n].logprobs.clone())
            .collect();
        if lps.is_empty() {
            f64::NAN
        } else {
            -lps.iter().map(|&l| l as f64).sum::<f64>() / lps.len() as f64
        }
    }

    /// Distinct tokens in the tree: the prompt once, each node's step once.
    pub fn distinct_tokens(&self) -> u64 {
        self.prompt.len() as u64
            + self
                .graph
                .node_weights()
                .map(|n| n.tokens.len() as u64)
                .sum::<u64>()
    }

    /// Whether any terminal of the tree is correct.
    pub fn has_correct_terminal(&self) -> bool {
        self.graph
            .node_weights()
            .any(|n| n.terminal.as_ref().is_some_and(|x| x.correct))
    }

    /// Nodes in depth-first pre-order (children in creation order): the frontier's tie
    /// order.
    pub fn preorder(&self) -> Vec<NodeIndex> {
        let mut out = Vec::with_capacity(self.len());
        let mut stack = vec![self.root];
        while let Some(i) = stack.pop() {
            out.push(i);
            let mut c = self.children(i);
            c.reverse();
            stack.extend(c);
        }
        out
    }
}
