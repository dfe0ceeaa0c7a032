//! One DeepSearch tree per problem (section 3), many trees expanded together: every round
//! collects the node each unfinished tree wants expanded, samples `width` children of all
//! of them in shared sampler calls (each node continuing from its own cached prefix), then
//! lets each tree pick, back up and select its next node.
use std::sync::Arc;
use std::time::Instant;

use petgraph::graph::NodeIndex;
use rand::seq::IndexedRandom;
use rand::Rng;

use super::backup::{backed_up_q, depth_weight};
use super::config::{SearchConfig, Selection, StepMode};
use super::frontier::{build_frontier, preorder_path, FrontierIndex};
use super::pick::{pick_terminal, Candidate};
use super::uct::uct;
use crate::engine::policy::sampler::{Completion, Finish, Request, SampleStats, SamplingParams};
use crate::engine::policy::{Generator, Tokenizer};
use crate::engine::rl::interrupt::{ask, Check, Halt};
use crate::engine::rl::rollout::{prompt_tokens, MAX_ROWS};
use crate::engine::rl::tree::{Node, Terminal, Tree};
use crate::engine::task::{task_of, Problem, Rules, StepJudgement, StepKind};

/// A finished search.
pub struct SearchResult {
    pub tree: Tree,
    /// Terminals of the recorded trajectories, in recording order.
    pub recorded: Vec<NodeIndex>,
    /// Trajectories still missing when a safety cap was hit or the frontier ran empty;
    /// the caller pads them with direct rollouts.
    pub missing: usize,
    pub expansions: usize,
    /// A safety cap (expansions or tokens) was hit.
    pub cap_event: bool,
    /// Tokens sampled for this tree.
    pub generated_tokens: u64,
    /// Wall seconds of the search's own bookkeeping for this tree (selection, backup,
    /// frontier maintenance, terminal pick); sampling and judging excluded.
    pub bookkeeping_seconds: f64,
    /// Wall seconds spent decoding steps and judging them (step judgement and the
    /// verifier), reported apart from bookkeeping.
    pub judging_seconds: f64,
}

struct State {
    tree: Tree,
    current: Option<NodeIndex>,
    recorded: Vec<NodeIndex>,
    expansions: usize,
    generated: u64,
    cap_event: bool,
    done: bool,
    bookkeeping: f64,
    judging: f64,
    /// The frontier's scores (frontier selection only; built at the first expansion).
    frontier: Option<FrontierIndex>,
}

impl State {
    fn new(tree: Tree, n: usize) -> Self {
        let root = tree.root;
        State {
            tree,
            current: Some(root),
            recorded: Vec::new(),
            expansions: 0,
            generated: 0,
            cap_event: false,
            done: n == 0,
            bookkeeping: 0.0,
            judging: 0.0,
            frontier: None,
        }
    }
}

/// Runs one tree per problem until each has recorded `cfg.n` trajectories or hit a cap;
/// `stop` is asked before each batch of expansions (one sampler call).
#[allow(clippy::too_many_arguments)]
pub fn search<R: Rng>(
    generator: &dyn Generator,
    tok: &Tokenizer,
    problems: &[&Problem],
    cfg: &SearchConfig,
    temperature: f32,
    rules: &Rules,
    rng: &mut R,
    stop: &mut Check,
) -> Result<(Vec<SearchResult>, SampleStats), Halt> {
    let mut states: Vec<State> = problems
        .iter()
        .map(|p| State::new(Tree::new(prompt_tokens(tok, p)), cfg.n))
        .collect();
    let max_pos = generator.max_context();
    let params = SamplingParams {
        temperature,
        max_tokens: cfg.step_max_tokens,
        stop_at: match cfg.step {
            StepMode::Newline => tok.newline(),
            StepMode::Chunk => None,
        },
        eos: tok.eos(),
    };
    let mut stats = SampleStats::default();
    let task = task_of(rules);
    let per_call = (MAX_ROWS / cfg.width.max(1)).max(1);
    loop {
        let active: Vec<usize> = (0..states.len()).filter(|&i| !states[i].done).collect();
        if active.is_empty() {
            break;
        }
        for chunk in active.chunks(per_call) {
            let contexts: Vec<Vec<u32>> = chunk
                .iter()
                .map(|&i| {
                    let s = &states[i];
                    s.tree.context(s.current.unwrap_or(s.tree.root))
                })
                .collect();
            // Trees whose context no longer fits the model end as incomplete.
            for (j, &i) in chunk.iter().enumerate() {
                if contexts[j].len() + 1 >= max_pos {
                    states[i].done = true;
                    states[i].cap_event = true;
                }
            }
            let mut requests = Vec::new();
            let mut owners = Vec::new();
            for (j, &i) in chunk.iter().enumerate() {
                let s = &states[i];
                if s.done {
                    continue;
                }
                let node = s.current.unwrap_or(s.tree.root);
                let forced = s.tree.node(node).step == StepKind::Forced;
                requests.push(Request {
                    context: &contexts[j],
                    cache: s.tree.node(node).cache.as_ref(),
                    copies: if forced { 1 } else { cfg.width },
                    max_tokens: None,
                });
                owners.push(i);
            }
            if requests.is_empty() {
                continue;
            }
            ask(stop)?;
            let (completions, s) = generator.generate(&requests, &params, true, rng)?;
            stats.add(&s);
            let mut per_owner: Vec<Vec<Completion>> = vec![Vec::new(); owners.len()];
            for c in completions {
                per_owner[c.request].push(c);
            }
            drop(requests);
            for (k, children) in per_owner.into_iter().enumerate() {
                let i = owners[k];
                let p = problems[i];
                let judge = Judge {
                    verify: &|text: &str| {
                        let v = task.verify(p, text);
                        (v.is_correct(), v.reason.to_string())
                    },
                    step: &|text: &str| task.judge_step(p, text),
                };
                advance(&mut states[i], children, tok, cfg, &judge, rng);
            }
        }
    }
    let results = states
        .into_iter()
        .map(|mut s| {
            for n in s.tree.graph.node_weights_mut() {
                n.cache = None;
            }
            SearchResult {
                missing: cfg.n.saturating_sub(s.recorded.len()),
                recorded: s.recorded,
                expansions: s.expansions,
                cap_event: s.cap_event,
                generated_tokens: s.generated,
                bookkeeping_seconds: s.bookkeeping,
                judging_seconds: s.judging,
                tree: s.tree,
            }
        })
        .collect();
    Ok((results, stats))
}

/// Adds the sampled children of the current node and moves the tree to its next node.
/// Whether a sampled step ends its trajectory. Newline steps end at EOS or when cut (a
/// line that long is malformed); a chunk that fills its `step_max_tokens` is the normal
/// step and continues, so a chunk ends only at EOS (also when EOS is its last token) or
/// when the model's context cut it short.
pub(crate) fn step_ends(c: &Completion, cfg: &SearchConfig) -> bool {
    match (c.finish, cfg.step) {
        (Finish::Eos, _) => true,
        (Finish::Delimiter, _) => false,
        (Finish::Limit, StepMode::Newline) => true,
        (Finish::Limit, StepMode::Chunk) => c.tokens.len() < cfg.step_max_tokens,
    }
}

/// The task's verdicts for one problem: of a whole completion, and of a path after a
/// step.
pub(crate) struct Judge<'a> {
    pub verify: &'a dyn Fn(&str) -> (bool, String),
    pub step: &'a dyn Fn(&str) -> StepJudgement,
}

/// Runs `f`, adding its wall seconds to `acc`.
fn timed<T>(acc: &mut f64, f: impl FnOnce() -> T) -> T {
    let t = Instant::now();
    let out = f();
    *acc += t.elapsed().as_secs_f64();
    out
}

/// Adds the sampled children of the current node (merging identical siblings, judging
/// each step) and moves the tree to its next node.
fn advance<R: Rng>(
    s: &mut State,
    children: Vec<Completion>,
    tok: &Tokenizer,
    cfg: &SearchConfig,
    judge: &Judge,
    rng: &mut R,
) {
    let start = Instant::now();
    let mut judging = 0.0;
    let parent = s.current.unwrap_or(s.tree.root);
    s.expansions += 1;
    if cfg.selection == Selection::Frontier && s.frontier.is_none() {
        s.frontier = Some(build_frontier(&s.tree, cfg));
    }
    s.tree.node_mut(parent).expanded = true;
    s.tree.node_mut(parent).expanded_at = Some(s.expansions as u32 - 1);
    // The parent leaves the frontier; its pre-order path prefixes its children's.
    let parent_path: Arc<[u32]> = match s.frontier.as_mut().and_then(|f| f.remove(parent.index())) {
        Some(p) => p,
        None => preorder_path(&s.tree, parent),
    };
    let depth = s.tree.node(parent).depth + 1;
    let mut new_terminals = Vec::new();
    let mut new_open = Vec::new();
    for c in children {
        s.generated += c.tokens.len() as u64;
        if cfg.merge_siblings {
            let twin = s
                .tree
                .children(parent)
                .into_iter()
                .find(|&k| s.tree.node(k).tokens == c.tokens);
            if let Some(k) = twin {
                s.tree.node_mut(k).multiplicity += 1;
                continue;
            }
        }
        let mut node = Node::new(depth);
        node.text = timed(&mut judging, || tok.decode(&c.tokens));
        let mut ends = step_ends(&c, cfg) || depth >= cfg.max_depth;
        node.tokens = c.tokens;
        node.logprobs = c.logprobs;
        node.entropies = c.entropies;
        let cache = c.cache;
        let idx = s.tree.add_child(parent, node);
        let mut verdict = None;
        if !ends && cfg.step_check {
            let judged = timed(&mut judging, || {
                (judge.step)(&tok.decode(&s.tree.response(idx)))
            });
            match judged {
                StepJudgement::Open => {}
                StepJudgement::Forced => s.tree.node_mut(idx).step = StepKind::Forced,
                StepJudgement::Invalid(reason) => {
                    s.tree.node_mut(idx).step = StepKind::Invalid;
                    verdict = Some((false, reason));
                    ends = true;
                }
                StepJudgement::Decided { correct, reason } => {
                    verdict = Some((correct, reason));
                    ends = true;
                }
            }
        }
        if ends {
            let (correct, reason) = match verdict {
                Some(v) => v,
                None => timed(&mut judging, || {
                    (judge.verify)(&tok.decode(&s.tree.response(idx)))
                }),
            };
            s.tree.node_mut(idx).terminal = Some(Terminal {
                value: if correct { 1.0 } else { -1.0 },
                correct,
                reason,
            });
            let invalid = s.tree.node(idx).step == StepKind::Invalid;
            if cfg.record_invalid || !invalid {
                new_terminals.push(idx);
            }
        } else {
            let n = s.tree.node_mut(idx);
            n.n = 1;
            n.cache = cache;
            new_open.push(idx);
            if let Some(f) = s.frontier.as_mut() {
                let path: Arc<[u32]> = parent_path
                    .iter()
                    .copied()
                    .chain([idx.index() as u32])
                    .collect();
                let q_parent = s.tree.node(parent).mean_q();
                let entropy = s.tree.node(idx).step_entropy();
                f.add(parent.index(), path, entropy, depth, q_parent);
            }
        }
    }
    // An expanded node is never sampled from again: free its cache.
    s.tree.node_mut(parent).cache = None;

    if new_terminals.is_empty() && !new_open.is_empty() {
        s.current = local_uct(&s.tree, parent, &new_open, cfg.c_uct, rng);
    } else {
        let cands: Vec<Candidate> = new_terminals
            .iter()
            .map(|&t| Candidate {
                correct: s.tree.node(t).terminal.as_ref().is_some_and(|x| x.correct),
                mean_entropy: s.tree.trajectory_entropy(t),
            })
            .collect();
        if let Some(k) = pick_terminal(&cands, cfg.negative, rng) {
            let t = new_terminals[k];
            let path = backup(&mut s.tree, t, cfg);
            // Only the Q of the nodes on the path moved: rescore their children.
            if let Some(f) = s.frontier.as_mut() {
                for p in path {
                    f.rescore(p.index(), s.tree.node(p).mean_q());
                }
            }
            s.tree.node_mut(t).picked = true;
            s.tree.node_mut(t).recorded = true;
            s.recorded.push(t);
        }
        // No terminal to pick and no open child (every step invalid and not recordable):
        // a dead end; the search continues from the frontier.
        s.current = if s.recorded.len() >= cfg.n {
            None
        } else {
            match cfg.selection {
                Selection::Frontier => global_frontier(s),
                Selection::Uct => descend_uct(&s.tree, cfg, rng),
            }
        };
    }
    let tokens: u64 = s.generated;
    if s.recorded.len() >= cfg.n {
        s.done = true;
    } else if s.current.is_none() {
        // Empty frontier: nothing left to expand; the caller pads, and it counts as a cap
        // event so every tree either records n trajectories or reports one.
        s.done = true;
        s.cap_event = true;
    } else if s.expansions >= cfg.max_expansions || tokens >= cfg.max_tree_tokens as u64 {
        s.done = true;
        s.cap_event = true;
    }
    if s.done {
        mark_confident_wrong(&mut s.tree, &s.recorded);
        s.frontier = None;
    }
    s.judging += judging;
    s.bookkeeping += start.elapsed().as_secs_f64() - judging;
}

/// Backs the terminal's value up every node on root..t (section 6); returns that path.
fn backup(tree: &mut Tree, t: NodeIndex, cfg: &SearchConfig) -> Vec<NodeIndex> {
    let v = tree.node(t).terminal.as_ref().map_or(-1.0, |x| x.value);
    let path = tree.path(t);
    let l = path.len() - 1;
    for (depth, &i) in path.iter().enumerate() {
        let w = depth_weight(depth, l, cfg.gamma_min);
        let node = tree.node_mut(i);
        node.n += 1;
        node.q = backed_up_q(node.q, v, w, cfg.backup);
    }
    path
}

/// Argmax UCT among `candidates` (non-terminal children); ties broken at random.
fn local_uct<R: Rng>(
    tree: &Tree,
    parent: NodeIndex,
    candidates: &[NodeIndex],
    c_uct: f64,
    rng: &mut R,
) -> Option<NodeIndex> {
    let np = tree.node(parent).n;
    let scores: Vec<f64> = candidates
        .iter()
        .map(|&c| {
            let n = tree.node(c);
            uct(n.q, n.n, np, c_uct)
        })
        .collect();
    let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let ties: Vec<NodeIndex> = candidates
        .iter()
        .zip(&scores)
        .filter(|(_, &s)| s == best)
        .map(|(&c, _)| c)
        .collect();
    ties.choose(rng).copied()
}

/// The frontier's best node (highest score, ties to the first in pre-order), with its
/// score noted on it.
fn global_frontier(s: &mut State) -> Option<NodeIndex> {
    let f = s.frontier.as_ref()?;
    let (i, score) = f.best()?;
    let runner_up = f.runner_up();
    let i = NodeIndex::new(i);
    s.tree.node_mut(i).frontier_score = Some(score);
    // For replaying the search: what the choice was made against.
    s.tree.node_mut(i).runner_up = runner_up;
    Some(i)
}

/// The paper's `uct` baseline: from the root, follow argmax UCT down to a node with fewer
/// not yet expanded.
fn descend_uct<R: Rng>(tree: &Tree, cfg: &SearchConfig, rng: &mut R) -> Option<NodeIndex> {
    let mut cur = tree.root;
    loop {
        if tree.node(cur).expandable() && cur != tree.root {
            return Some(cur);
        }
        let children = tree.children(cur);
        let open: Vec<NodeIndex> = children
            .into_iter()
            .filter(|&c| tree.node(c).terminal.is_none())
            .collect();
        if open.is_empty() {
            return None;
        }
        cur = local_uct(tree, cur, &open, cfg.c_uct, rng)?;
    }
}

/// Marks the confident-wrong path: the wrong recorded terminal with the lowest trajectory
/// entropy, and its ancestors, when the tree recorded no correct trajectory. `recorded`
/// is in recording order, which is node order: ties go to the first recorded.
fn mark_confident_wrong(tree: &mut Tree, recorded: &[NodeIndex]) {
    if recorded
        .iter()
        .any(|&i| tree.node(i).terminal.as_ref().is_some_and(|t| t.correct))
    {
        return;
    }
    let best = recorded.iter().copied().min_by(|&a, &b| {
        let h = |i| {
            let e = tree.trajectory_entropy(i);
            if e.is_nan() {
                f64::INFINITY
            } else {
                e
            }
        };
        h(a).total_cmp(&h(b))
    });
    if let Some(t) = best {
        for i in tree.path(t) {
            if i != tree.root {
                tree.node_mut(i).confident_wrong = true;
            }
        }
    }
}

#[cfg(test)]
mod tests;
