//! AlphaZero-style search over reasoning steps, one tree per problem, many trees together
//! (the write-up filled its GPUs with parallel simulations under a virtual loss; batching
//! one simulation of every tree per round serves the same purpose here).
//!
//! A simulation descends from the root by pUCT (or UCT) to a leaf. A terminal leaf backs
//! up its reward; any other leaf is expanded: `width` steps are sampled from it (one line
//! each for Countdown), every child is scored once (prior and value), and the leaf's own
//! value estimate is backed up along the path (W += v, N += 1 on root..leaf).
use candle_core::Result;
use petgraph::graph::NodeIndex;
use rand::Rng;

use super::puct::{first_max, priors, puct};
use super::scoring::{score, ScoringStats};
use super::{DistillSelection, TreeDistillConfig};
use crate::engine::policy::sampler::{
    sample, Completion, Finish, Request, SampleStats, SamplingParams,
};
use crate::engine::policy::{Qwen2, Tokenizer};
use crate::engine::search::tree::{Node, Terminal, Tree};
use crate::engine::search::uct::uct;
use crate::engine::task::{StepJudgement, StepKind};

/// The task's verdicts for one problem: the reward, correctness and reason of a whole
/// response, and the judgement of a path after a step.
pub struct DistillJudge<'a> {
    pub reward: &'a dyn Fn(&str) -> (f64, bool, String),
    pub step: &'a dyn Fn(&str) -> StepJudgement,
}

/// A finished search.
pub struct DistillTree {
    pub tree: Tree,
    pub simulations: usize,
    pub expansions: usize,
    /// A leaf's context no longer fit the model.
    pub cap_event: bool,
    pub generated_tokens: u64,
}

/// One tree in progress.
pub(crate) struct State {
    pub tree: Tree,
    pub simulations: usize,
    pub expansions: usize,
    pub generated: u64,
    pub cap_event: bool,
    /// The leaf waiting for its children, with the path to it.
    pub pending: Option<Vec<NodeIndex>>,
}

impl State {
    pub fn new(tree: Tree) -> Self {
        Self {
            tree,
            simulations: 0,
            expansions: 0,
            generated: 0,
            cap_event: false,
            pending: None,
        }
    }
}

/// The child a simulation descends to from `parent` (first maximal score).
pub fn select_child(tree: &Tree, parent: NodeIndex, cfg: &TreeDistillConfig) -> Option<NodeIndex> {
    let children = tree.children(parent);
    let np = tree.node(parent).n;
    let scores: Vec<f64> = children
        .iter()
        .map(|&c| {
            let n = tree.node(c);
            match cfg.selection {
                DistillSelection::Puct => puct(n.q, n.n, n.prior.unwrap_or(0.0), np, cfg.c_puct),
                DistillSelection::Uct => uct(n.q, n.n, np, cfg.c_puct),
            }
        })
        .collect();
    first_max(&scores).map(|k| children[k])
}

/// Root..leaf of the next simulation.
pub fn descend(tree: &Tree, cfg: &TreeDistillConfig) -> Vec<NodeIndex> {
    let mut path = vec![tree.root];
    let mut cur = tree.root;
    while tree.node(cur).terminal.is_none() {
        match select_child(tree, cur, cfg) {
            Some(c) => {
                path.push(c);
                cur = c;
            }
            None => break,
        }
    }
    path
}

/// W += v, N += 1 on every node of `path`.
pub fn backup(tree: &mut Tree, path: &[NodeIndex], v: f64) {
    for &i in path {
        let n = tree.node_mut(i);
        n.q += v;
        n.n += 1;
    }
}

/// Runs simulations until the tree needs the model (a leaf to expand) or its budget is
/// spent. Terminal leaves back up their reward here.
pub(crate) fn simulate_until_expansion(s: &mut State, cfg: &TreeDistillConfig, max_pos: usize) {
    while s.pending.is_none() && s.simulations < cfg.simulations {
        let path = descend(&s.tree, cfg);
        let leaf = *path.last().unwrap_or(&s.tree.root);
        if let Some(t) = &s.tree.node(leaf).terminal {
            let v = t.value;
            backup(&mut s.tree, &path, v);
            s.simulations += 1;
            continue;
        }
        if s.tree.context(leaf).len() + 1 >= max_pos || s.tree.node(leaf).depth >= cfg.max_depth {
            // Nothing more fits: the leaf ends as an unfinished path.
            s.tree.node_mut(leaf).terminal = Some(Terminal {
                value: cfg.unfinished_reward,
                correct: false,
                reason: "incomplete: the model's context or search.max_depth ended the path".into(),
            });
            s.cap_event = true;
            continue;
        }
        s.pending = Some(path);
    }
}

/// Adds the sampled children of the pending leaf (unscored: the caller fills prior and
/// value). Returns the new nodes.
pub(crate) fn add_children(
    s: &mut State,
    children: Vec<Completion>,
    tok: &Tokenizer,
    cfg: &TreeDistillConfig,
    judge: &DistillJudge,
) -> Vec<NodeIndex> {
    let Some(path) = &s.pending else {
        return Vec::new();
    };
    let leaf = *path.last().unwrap_or(&s.tree.root);
    let order = s.expansions as u32;
    s.expansions += 1;
    s.tree.node_mut(leaf).expanded = true;
    s.tree.node_mut(leaf).expanded_at = Some(order);
    let depth = s.tree.node(leaf).depth + 1;
    let mut added = Vec::with_capacity(children.len());
    for c in children {
        s.generated += c.tokens.len() as u64;
        let ends = matches!(c.finish, Finish::Eos | Finish::Limit);
        let mut node = Node::new(depth);
        node.text = tok.decode(&c.tokens);
        node.tokens = c.tokens;
        node.logprobs = c.logprobs;
        node.entropies = c.entropies;
        let idx = s.tree.add_child(leaf, node);
        let text = tok.decode(&s.tree.response(idx));
        let mut terminal = None;
        if ends {
            let (value, correct, reason) = (judge.reward)(&text);
            terminal = Some(Terminal {
                value,
                correct,
                reason,
            });
        } else if cfg.step_check {
            match (judge.step)(&text) {
                StepJudgement::Open => {}
                StepJudgement::Forced => s.tree.node_mut(idx).step = StepKind::Forced,
                StepJudgement::Invalid(reason) => {
                    s.tree.node_mut(idx).step = StepKind::Invalid;
                    let (value, _, _) = (judge.reward)(&text);
                    terminal = Some(Terminal {
                        value,
                        correct: false,
                        reason,
                    });
                }
                StepJudgement::Decided { correct, reason } => {
                    let (value, _, _) = (judge.reward)(&text);
                    terminal = Some(Terminal {
                        value,
                        correct,
                        reason,
                    });
                }
            }
        }
        let ended = terminal.is_some();
        s.tree.node_mut(idx).terminal = terminal;
        if !ended {
            s.tree.node_mut(idx).cache = c.cache;
        }
        added.push(idx);
    }
    s.tree.node_mut(leaf).cache = None;
    added
}

/// Fills the new children's priors (softmax over the siblings' sequence log-probabilities)
/// and values, then backs up the expanded leaf's value and closes the simulation.
pub(crate) fn finish_expansion(
    s: &mut State,
    added: &[NodeIndex],
    seq_logprobs: &[f64],
    values: &[Option<f64>],
) {
    let p = priors(seq_logprobs);
    for (k, &i) in added.iter().enumerate() {
        let n = s.tree.node_mut(i);
        n.prior = Some(p[k]);
        n.value = values[k];
    }
    if let Some(path) = s.pending.take() {
        let leaf = *path.last().unwrap_or(&s.tree.root);
        let v = s.tree.node(leaf).value.unwrap_or(0.0);
        backup(&mut s.tree, &path, v);
        s.simulations += 1;
    }
}

/// Searches one tree per problem, `cfg.simulations` simulations each.
pub fn search<R: Rng>(
    model: &Qwen2,
    tok: &Tokenizer,
    prompts: &[Vec<u32>],
    judges: &[DistillJudge],
    cfg: &TreeDistillConfig,
    rng: &mut R,
) -> Result<(Vec<DistillTree>, SampleStats, ScoringStats)> {
    let mut states: Vec<State> = prompts
        .iter()
        .map(|p| State::new(Tree::new(p.clone())))
        .collect();
    let mut stats = SampleStats::default();
    let mut scoring = ScoringStats::default();
    let max_pos = model.config().max_position_embeddings;
    // The roots' values (the first simulation backs them up).
    let roots: Vec<(Vec<u32>, usize)> = prompts.iter().map(|p| (p.clone(), 0)).collect();
    for (s, r) in states.iter_mut().zip(score(model, &roots, &mut scoring)?) {
        let root = s.tree.root;
        s.tree.node_mut(root).value = r.value;
        s.tree.node_mut(root).prior = Some(1.0);
    }
    let params = SamplingParams {
        temperature: cfg.temperature,
        max_tokens: cfg.step_max_tokens,
        stop_at: tok.newline(),
        eos: tok.eos(),
    };
    let per_call = (crate::engine::rollout::MAX_ROWS / cfg.width.max(1)).max(1);
    loop {
        for s in states.iter_mut() {
            simulate_until_expansion(s, cfg, max_pos);
        }
        let active: Vec<usize> = (0..states.len())
            .filter(|&i| states[i].pending.is_some())
            .collect();
        if active.is_empty() {
            break;
        }
        for chunk in active.chunks(per_call) {
            let leaves: Vec<NodeIndex> = chunk
                .iter()
                .map(|&i| {
                    let p = states[i].pending.as_ref();
                    *p.and_then(|p| p.last()).unwrap_or(&states[i].tree.root)
                })
                .collect();
            let contexts: Vec<Vec<u32>> = chunk
                .iter()
                .zip(&leaves)
                .map(|(&i, &l)| states[i].tree.context(l))
                .collect();
            let requests: Vec<Request> = chunk
                .iter()
                .zip(&leaves)
                .zip(&contexts)
                .map(|((&i, &l), ctx)| Request {
                    context: ctx,
                    cache: states[i].tree.node(l).cache.as_ref(),
                    copies: if states[i].tree.node(l).step == StepKind::Forced {
                        1
                    } else {
                        cfg.width
                    },
                })
                .collect();
            let (completions, st) = sample(model, &requests, &params, true, rng)?;
            drop(requests);
            stats.add(&st);
            let mut per_owner: Vec<Vec<Completion>> = vec![Vec::new(); chunk.len()];
            for c in completions {
                per_owner[c.request].push(c);
            }
            let mut added_all = Vec::with_capacity(chunk.len());
            let mut items = Vec::new();
            for (k, children) in per_owner.into_iter().enumerate() {
                let i = chunk[k];
                let added = add_children(&mut states[i], children, tok, cfg, &judges[i]);
                for &a in &added {
                    items.push((
                        states[i].tree.context(a),
                        states[i].tree.node(a).tokens.len(),
                    ));
                }
                added_all.push(added);
            }
            let scored = score(model, &items, &mut scoring)?;
            let mut at = 0;
            for (k, added) in added_all.iter().enumerate() {
                let part = &scored[at..at + added.len()];
                at += added.len();
                let lps: Vec<f64> = part.iter().map(|x| x.seq_logprob).collect();
                let vs: Vec<Option<f64>> = part.iter().map(|x| x.value).collect();
                finish_expansion(&mut states[chunk[k]], added, &lps, &vs);
            }
        }
    }
    let trees = states
        .into_iter()
        .map(|mut s| {
            for n in s.tree.graph.node_weights_mut() {
                n.cache = None;
            }
            DistillTree {
                simulations: s.simulations,
                expansions: s.expansions,
                cap_event: s.cap_event,
                generated_tokens: s.generated,
                tree: s.tree,
            }
        })
        .collect();
    Ok((trees, stats, scoring))
}
