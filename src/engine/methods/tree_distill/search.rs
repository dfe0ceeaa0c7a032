//! AlphaZero-style search over reasoning steps, one tree per problem, many trees together
//! (the write-up filled its GPUs with parallel simulations under a virtual loss; batching
//! one simulation of every tree per round serves the same purpose here).
//!
//! A simulation descends from the root by pUCT (or UCT) to a leaf. A terminal leaf backs
//! up its reward; any other leaf is expanded: `width` steps are sampled from it (one line
//! each for Countdown), every child is scored once (prior and value), and the leaf's own
//! value estimate is backed up along the path (W += v, N += 1 on root..leaf).
use petgraph::graph::NodeIndex;
use rand::Rng;

use super::puct::{first_max, priors, puct};
use super::scoring::{score, ScoringStats};
use super::{DistillSelection, TreeDistillConfig};
use crate::engine::methods::deepsearch::search::uct::uct;
use crate::engine::policy::sampler::{Completion, Finish, Request, SampleStats, SamplingParams};
use crate::engine::policy::{Generator, Qwen2, Tokenizer};
use crate::engine::rl::interrupt::{ask, Check, Halt};
use crate::engine::rl::record::{GroupSource, TreeRecord};
use crate::engine::rl::tree::{Node, Terminal, Tree};
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
    /// Every simulation in order: the leaf it reached and the value it backed up.
    pub log: Vec<(NodeIndex, f64)>,
}

/// A distillation search as the store keeps it: the tree, marked as distillation's, with
/// every simulation in order (the leaf reached, the value backed up) for the replay.
pub fn distill_record(
    problem: &str,
    prompt: &str,
    tree: &Tree,
    expansions: usize,
    cap_event: bool,
    log: &[(NodeIndex, f64)],
    advantages: &std::collections::HashMap<u32, f32>,
) -> TreeRecord {
    let mut record =
        TreeRecord::from_tree(problem, prompt, tree, expansions, cap_event, advantages);
    record.source = GroupSource::Distill;
    record.simulations = log
        .iter()
        .map(|&(leaf, v)| (leaf.index() as u32, v as f32))
        .collect();
    record
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
    /// Every finished simulation: the leaf reached and the value backed up.
    pub log: Vec<(NodeIndex, f64)>,
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
            log: Vec::new(),
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
    let capped = |s: &State| cfg.max_tree_tokens > 0 && s.generated >= cfg.max_tree_tokens as u64;
    while s.pending.is_none() && s.simulations < cfg.simulations && !capped(s) {
        let path = descend(&s.tree, cfg);
        let leaf = *path.last().unwrap_or(&s.tree.root);
        if let Some(t) = &s.tree.node(leaf).terminal {
            let v = t.value;
            backup(&mut s.tree, &path, v);
            s.log.push((leaf, v));
            s.simulations += 1;
            continue;
        }
        if s.tree.context(leaf).len() + 1 >= max_pos || s.tree.node(leaf).depth >= cfg.max_depth {
            // Nothing more fits: the leaf ends as an unfinished path.
            s.tree.node_mut(leaf).terminal = Some(Terminal {
                value: cfg.unfinished(),
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
        // An identical sibling (same tokens) is one child with a larger multiplicity, so
        // simulations do not spread over copies (its prior counts every copy).
        if cfg.merge_siblings {
            let twin = s
                .tree
                .children(leaf)
                .into_iter()
                .find(|&k| s.tree.node(k).tokens == c.tokens);
            if let Some(k) = twin {
                s.tree.node_mut(k).multiplicity += 1;
                continue;
            }
        }
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
    // A merged child holds `multiplicity` samples: its prior is their summed probability.
    let weighted: Vec<f64> = added
        .iter()
        .zip(seq_logprobs)
        .map(|(&i, &lp)| lp + f64::from(s.tree.node(i).multiplicity.max(1)).ln())
        .collect();
    let p = priors(&weighted);
    for (k, &i) in added.iter().enumerate() {
        let n = s.tree.node_mut(i);
        n.prior = Some(p[k]);
        n.value = values[k];
    }
    if let Some(path) = s.pending.take() {
        let leaf = *path.last().unwrap_or(&s.tree.root);
        let v = s.tree.node(leaf).value.unwrap_or(0.0);
        backup(&mut s.tree, &path, v);
        s.log.push((leaf, v));
        s.simulations += 1;
    }
}

/// Searches one tree per problem, `cfg.simulations` simulations each. Steps come from
/// `generator`; priors and values from `scorer` (the trainer's own model, which carries
/// the value head, whatever engine generates).
#[allow(clippy::too_many_arguments)]
pub fn search<R: Rng>(
    generator: &dyn Generator,
    scorer: &Qwen2,
    tok: &Tokenizer,
    prompts: &[Vec<u32>],
    judges: &[DistillJudge],
    cfg: &TreeDistillConfig,
    rng: &mut R,
    stop: &mut Check,
) -> Result<(Vec<DistillTree>, SampleStats, ScoringStats), Halt> {
    let mut states: Vec<State> = prompts
        .iter()
        .map(|p| State::new(Tree::new(p.clone())))
        .collect();
    let mut stats = SampleStats::default();
    let mut scoring = ScoringStats::default();
    let max_pos = generator.max_context();
    // The roots' values (the first simulation backs them up).
    let roots: Vec<(Vec<u32>, usize)> = prompts.iter().map(|p| (p.clone(), 0)).collect();
    for (s, r) in states.iter_mut().zip(score(scorer, &roots, &mut scoring)?) {
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
    let per_call = (crate::engine::rl::rollout::MAX_ROWS / cfg.width.max(1)).max(1);
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
                    max_tokens: None,
                })
                .collect();
            ask(stop)?;
            let (completions, st) = generator.generate(&requests, &params, true, rng)?;
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
            let scored = score(scorer, &items, &mut scoring)?;
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
                log: s.log,
                tree: s.tree,
            }
        })
        .collect();
    Ok((trees, stats, scoring))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn completion(tok: &Tokenizer, text: &str, finish: Finish) -> Completion {
        let tokens = tok.encode(text).unwrap_or_default();
        Completion {
            request: 0,
            logprobs: vec![-0.5; tokens.len()],
            entropies: vec![0.5; tokens.len()],
            tokens,
            finish,
            cache: None,
        }
    }

    fn reward(text: &str) -> (f64, bool, String) {
        let ok = text.ends_with("ans 1");
        (
            if ok { 1.0 } else { 0.0 },
            ok,
            if ok { "correct" } else { "wrong" }.into(),
        )
    }

    fn open(_: &str) -> StepJudgement {
        StepJudgement::Open
    }

    const JUDGE: DistillJudge = DistillJudge {
        reward: &reward,
        step: &open,
    };

    fn cfg(simulations: usize) -> TreeDistillConfig {
        TreeDistillConfig {
            simulations,
            ..TreeDistillConfig::default()
        }
    }

    /// Root (value 0.2) expanded into a correct terminal `a` (prior 0.75) and an open `b`
    /// (prior 0.25, value -0.3).
    fn expanded_root(tok: &Tokenizer, c: &TreeDistillConfig) -> (State, NodeIndex, NodeIndex) {
        let mut s = State::new(Tree::new(vec![1, 5]));
        let root = s.tree.root;
        s.tree.node_mut(root).value = Some(0.2);
        simulate_until_expansion(&mut s, c, 128);
        assert_eq!(s.pending, Some(vec![root]));
        let added = add_children(
            &mut s,
            vec![
                completion(tok, "ans 1", Finish::Eos),
                completion(tok, "1+1=2\n", Finish::Delimiter),
            ],
            tok,
            c,
            &JUDGE,
        );
        finish_expansion(
            &mut s,
            &added,
            &[0.75f64.ln(), 0.25f64.ln()],
            &[Some(0.9), Some(-0.3)],
        );
        (s, added[0], added[1])
    }

    /// Identical siblings are one child with a multiplicity whose prior counts every copy
    /// (three `1+1=2` of equal probability and one `ans 1`: priors 3/4 and 1/4); with
    /// merging off they are separate children.
    #[test]
    fn identical_siblings_merge_and_their_prior_sums_the_copies() {
        let tok = Tokenizer::default();
        for merge in [true, false] {
            let c = TreeDistillConfig {
                merge_siblings: merge,
                ..cfg(1)
            };
            let mut s = State::new(Tree::new(vec![1, 5]));
            simulate_until_expansion(&mut s, &c, 128);
            let step = || completion(&tok, "1+1=2\n", Finish::Delimiter);
            let added = add_children(
                &mut s,
                vec![
                    step(),
                    completion(&tok, "ans 1", Finish::Eos),
                    step(),
                    step(),
                ],
                &tok,
                &c,
                &JUDGE,
            );
            let lps = vec![(0.25f64).ln(); added.len()];
            finish_expansion(&mut s, &added, &lps, &vec![Some(0.0); added.len()]);
            if merge {
                assert_eq!(added.len(), 2);
                assert_eq!(s.tree.node(added[0]).multiplicity, 3);
                assert!((s.tree.node(added[0]).prior.unwrap() - 0.75).abs() < 1e-12);
                assert!((s.tree.node(added[1]).prior.unwrap() - 0.25).abs() < 1e-12);
            } else {
                assert_eq!(added.len(), 4);
                assert!(added.iter().all(|&a| s.tree.node(a).multiplicity == 1));
            }
        }
    }

    /// Under the binary reward an unfinished path scores as a wrong answer (0); under the
    /// dense reward as no answer (-1); a set value wins.
    #[test]
    fn an_unfinished_path_scores_like_a_wrong_answer_under_its_reward() {
        let binary = TreeDistillConfig {
            reward: super::super::DistillReward::Binary,
            ..TreeDistillConfig::default()
        };
        assert_eq!(binary.unfinished(), 0.0);
        assert_eq!(TreeDistillConfig::default().unfinished(), -1.0);
        let set = TreeDistillConfig {
            unfinished_reward: Some(-0.5),
            ..binary
        };
        assert_eq!(set.unfinished(), -0.5);
    }

    #[test]
    fn expansion_sets_priors_and_backs_up_the_leaf_value() {
        let tok = Tokenizer::default();
        let c = cfg(1);
        let (s, a, b) = expanded_root(&tok, &c);
        let root = s.tree.root;
        assert!((s.tree.node(a).prior.unwrap() - 0.75).abs() < 1e-12);
        assert!((s.tree.node(b).prior.unwrap() - 0.25).abs() < 1e-12);
        // The expanded leaf's own value went up its path (the root alone here).
        assert_eq!((s.tree.node(root).n, s.tree.node(root).q), (1, 0.2));
        assert_eq!(s.tree.node(root).expanded_at, Some(0));
        assert!(s.tree.node(a).terminal.as_ref().unwrap().correct);
        assert!(s.tree.node(b).terminal.is_none());
        assert_eq!(s.simulations, 1);
    }

    #[test]
    fn puct_revisits_the_rewarding_terminal_and_distills_it() {
        let tok = Tokenizer::default();
        let c = cfg(4);
        let (mut s, a, b) = expanded_root(&tok, &c);
        let root = s.tree.root;
        // Simulation 2, N(root) = 1: pUCT(a) = 0 + 0.5 * 0.75 * 1 / 1 = 0.375 beats
        // pUCT(b) = 0.125, and a is terminal: reward 1 backs up without the model.
        assert_eq!(select_child(&s.tree, root, &c), Some(a));
        simulate_until_expansion(&mut s, &c, 128);
        // Simulations 3 and 4 also pick a: Q(a) = 1 dominates b's exploration term.
        assert_eq!(s.simulations, 4);
        assert!(s.pending.is_none());
        assert_eq!((s.tree.node(a).n, s.tree.node(a).q), (3, 3.0));
        assert_eq!(s.tree.node(root).n, 4);
        assert!((s.tree.node(root).q - 3.2).abs() < 1e-12);
        assert_eq!(s.tree.node(b).n, 0);
        assert_eq!(
            super::super::target::most_visited_path(&s.tree),
            (vec![a], true)
        );
    }

    #[test]
    fn uct_without_a_prior_ignores_the_priors() {
        let tok = Tokenizer::default();
        let c = TreeDistillConfig {
            selection: DistillSelection::Uct,
            ..cfg(1)
        };
        let (mut s, a, b) = expanded_root(&tok, &c);
        // Both unvisited: UCT is 0 for both, ties go to the first child whatever the prior.
        s.tree.node_mut(a).prior = Some(0.01);
        s.tree.node_mut(b).prior = Some(0.99);
        assert_eq!(select_child(&s.tree, s.tree.root, &c), Some(a));
    }

    #[test]
    fn an_open_most_visited_path_is_kept_and_fsck_accepts_it_for_distill_trees_only() {
        let tok = Tokenizer::default();
        let c = cfg(2);
        let (mut s, a, b) = expanded_root(&tok, &c);
        // Make the terminal's prior tiny: pUCT(a) = 0.5 * 0.01 = 0.005 < pUCT(b) = 0.125,
        // so b is expanded next (it needs the model).
        s.tree.node_mut(a).prior = Some(0.01);
        simulate_until_expansion(&mut s, &c, 128);
        let root = s.tree.root;
        assert_eq!(s.pending, Some(vec![root, b]));
        let added = expand_with_a_wrong_step(&mut s, &tok, &c);
        // b's value -0.3 went up root..b.
        assert_eq!((s.tree.node(b).n, s.tree.node(b).q), (1, -0.3));
        // The path follows b (visited) into its one unvisited child, a leaf: unfinished.
        let (path, at_terminal) = super::super::target::most_visited_path(&s.tree);
        assert_eq!((path.clone(), at_terminal), (vec![b, added[0]], false));
        for &i in path.iter().chain([&root]) {
            s.tree.node_mut(i).distilled = true;
        }
        let mut record =
            TreeRecord::from_tree("p", "1 2:3\n", &s.tree, 2, false, &Default::default());
        record.source = GroupSource::Distill;
        assert!(crate::store::fsck::tree_problems(&record).is_empty());
        record.source = GroupSource::Search;
        assert!(!crate::store::fsck::tree_problems(&record).is_empty());
        // Two distilled siblings are not a path.
        record.source = GroupSource::Distill;
        record.nodes[a.index()].distilled = true;
        let problems = crate::store::fsck::tree_problems(&record);
        assert!(
            problems.iter().any(|p| p.contains("distilled children")),
            "{problems:?}"
        );
    }

    /// Finishes the pending expansion with one child, the step `2+2=4` (sequence
    /// log-probability -1, value 0.1).
    fn expand_with_a_wrong_step(
        s: &mut State,
        tok: &Tokenizer,
        c: &TreeDistillConfig,
    ) -> Vec<NodeIndex> {
        let added = add_children(
            s,
            vec![completion(tok, "2+2=4\n", Finish::Delimiter)],
            tok,
            c,
            &JUDGE,
        );
        finish_expansion(s, &added, &[-1.0], &[Some(0.1)]);
        added
    }

    /// The replay from the stored record ends in the stored W and N of every node, for a
    /// search with a second expansion and for one revisiting a terminal.
    #[test]
    fn the_stored_simulations_replay_to_the_stored_visits() {
        let tok = Tokenizer::default();
        let check = |s: &State| {
            let mut record = distill_record(
                "p",
                "1 2:3\n",
                &s.tree,
                s.expansions,
                false,
                &s.log,
                &Default::default(),
            );
            let steps = super::super::replay::replay(&record).unwrap();
            assert_eq!(steps.len(), s.simulations);
            let last = steps.last().unwrap();
            assert_eq!(last.expansions_done as usize, s.expansions);
            for n in &record.nodes {
                let (w, visits) = last.state[n.id as usize].unwrap();
                assert!(
                    (w - n.q as f64).abs() < 1e-5 && visits == n.n,
                    "node {}",
                    n.id
                );
            }
            // fsck replays them too, and flags a simulation that does not add up.
            assert!(crate::store::fsck::tree_problems(&record).is_empty());
            record.simulations[0].1 += 0.5;
            let problems = crate::store::fsck::tree_problems(&record);
            assert!(
                problems.iter().any(|p| p.contains("simulations replay to")),
                "{problems:?}"
            );
        };
        let c = cfg(4);
        let (mut s, _, _) = expanded_root(&tok, &c);
        simulate_until_expansion(&mut s, &c, 128);
        check(&s);
        let c = cfg(3);
        let (mut s, a, _) = expanded_root(&tok, &c);
        s.tree.node_mut(a).prior = Some(0.01);
        simulate_until_expansion(&mut s, &c, 128);
        expand_with_a_wrong_step(&mut s, &tok, &c);
        simulate_until_expansion(&mut s, &c, 128);
        assert_eq!(s.expansions, 2);
        check(&s);
    }
}
