//! `treerl`: TreeRL's entropy-guided tree search, EPTree ("TreeRL: LLM Reinforcement
//! Learning with On-Policy Tree Search", arXiv 2506.11902). Per problem: M whole chains;
//! then for L rounds every chain of the last round forks at its N highest-entropy tokens
//! (or N random ones, `fork = "random"`, the control for where to branch), each fork
//! resampling that token and continuing T branches to the end. Forks may fall inside a
//! step. A node is a segment of tokens between forks; every leaf is a training sample.
//!
//! Advantages (TreeRL section 3.2): V(s) is the mean reward of the leaves below segment
//! s; each token of s gets (V(s) - V(root)) + (V(s) - V(parent(s))), the global and the
//! local term, divided by sqrt(|L(s)|) (the leaves below s) so that shared prefixes,
//! trained once per leaf, are not over-weighted. At a leaf the two terms are the leaf's
//! reward minus the tree's mean and minus its parent's subtree mean. Settings under
//! `[treerl]`; the clipped objective with clip-higher, as DeepSearch's.
use rand::seq::index::sample as sample_indices;
use rand::Rng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::engine::methods::{Method, Objective};
use crate::engine::policy::sampler::{Request, SampleStats};
use crate::engine::rl::config::TrainConfig;
use crate::engine::rl::groups::{filtered, Batch, GroupContext, Outcome, SearchMetrics};
use crate::engine::rl::interrupt::{ask, Halt, Phase};
use crate::engine::rl::record::{GroupSource, NodeRecord, TreeRecord};
use crate::engine::rl::rollout::{prompt_tokens, rollouts, Trajectory, MAX_ROWS};
use crate::engine::rl::update::Sample;
use crate::engine::task::{reward, verify, Problem, Verdict};

/// Where a chain forks.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fork {
    /// At its highest-entropy tokens (EPTree).
    #[default]
    Entropy,
    /// At uniformly random tokens (the control, same shape).
    Random,
}

/// `[treerl]`. The defaults give 2 + 2 x 3 x 1 = 8 leaves per problem, GRPO's group size.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TreeRlConfig {
    /// M: whole chains sampled per problem first (paper: 6). Default 2.
    pub chains: usize,
    /// N: forks per chain and round (paper: 2). Default 3.
    pub forks: usize,
    /// T: branches per fork (paper: 2). Default 1.
    pub branches: usize,
    /// L: rounds of forking; each forks the chains of the round before (paper: 1).
    /// Default 1.
    pub rounds: usize,
    /// entropy (default) or random.
    pub fork: Fork,
    /// Divide a segment's advantage by sqrt(leaves below it) (paper: yes). Default true.
    pub reweight: bool,
}

impl Default for TreeRlConfig {
    fn default() -> Self {
        Self {
            chains: 2,
            forks: 3,
            branches: 1,
            rounds: 1,
            fork: Fork::Entropy,
            reweight: true,
        }
    }
}

pub struct TreeRl {
    cfg: TreeRlConfig,
    repetition_filter: bool,
}

impl TreeRl {
    pub fn new(cfg: &TreeRlConfig, repetition_filter: bool) -> Self {
        Self {
            cfg: cfg.clone(),
            repetition_filter,
        }
    }
}

impl Method for TreeRl {
    fn phase(&self) -> Phase {
        Phase::Search
    }

    fn batch(
        &mut self,
        ctx: &mut GroupContext<ChaCha8Rng>,
        problems: &[Problem],
        _idx: &[usize],
    ) -> Result<Batch, Halt> {
        let (forests, sampling, forks) = grow(ctx, problems, &self.cfg)?;
        let scoring = std::time::Instant::now();
        let mut batch = Batch {
            sampling,
            ..Batch::default()
        };
        let mut m = SearchMetrics {
            search_tokens_forwarded: batch.sampling.forwarded_tokens,
            ..SearchMetrics::default()
        };
        for ((p, leaves), forks) in problems.iter().zip(forests).zip(forks) {
            let prompt = prompt_tokens(ctx.tok, p);
            let tree = SegmentTree::build(&leaves);
            let rewards: Vec<f64> = leaves.iter().map(|l| l.traj.reward as f64).collect();
            let adv = tree.advantages(&rewards, self.cfg.reweight);
            let solved = leaves.iter().any(|l| l.traj.correct());
            m.trees += 1;
            m.trees_solved += solved as u64;
            m.expansions += forks as u64;
            m.nodes += tree.nodes.len() as u64;
            m.tree_tokens_distinct += prompt.len() as u64
                + tree
                    .nodes
                    .iter()
                    .map(|n| (n.to - n.from) as u64)
                    .sum::<u64>();
            batch.solved_problems += solved as usize;
            for (j, leaf) in leaves.iter().enumerate() {
                let t = &leaf.traj;
                batch.outcomes.push(Outcome::of(t));
                let mut token_adv = vec![0.0f32; t.tokens.len()];
                for &s in &tree.paths[j] {
                    let n = &tree.nodes[s];
                    for a in &mut token_adv[n.from..n.to] {
                        *a = adv[s] as f32;
                    }
                }
                if t.tokens.is_empty()
                    || token_adv.iter().all(|&a| a == 0.0)
                    || filtered(self.repetition_filter, t)
                {
                    continue;
                }
                let mass: f64 = token_adv.iter().map(|a| a.abs() as f64).sum();
                m.advantage_mass += mass;
                if !solved {
                    m.unsolved_advantage_mass += mass;
                }
                batch.samples.push(Sample {
                    prompt: prompt.clone(),
                    response: t.tokens.clone(),
                    advantages: token_adv,
                    returns: Vec::new(),
                });
            }
            batch
                .trees
                .push(tree.record(p, &leaves, &adv, forks, |t| ctx.tok.decode(t)));
        }
        batch.search = Some(m);
        batch.scoring_seconds = scoring.elapsed().as_secs_f64();
        Ok(batch)
    }

    fn objective(&self, train: &TrainConfig) -> Objective {
        Objective::clipped(train, false)
    }
}

/// One leaf: a whole response, the first token it sampled itself (`start`; before it
/// the tokens are its parent's) and the leaf it forked from.
#[derive(Clone, Debug)]
pub struct Leaf {
    pub traj: Trajectory,
    pub start: usize,
    pub parent: Option<usize>,
}

/// The positions a chain forks at: its `n` highest-entropy tokens in `from..to` (ties
/// to the earlier token), or `n` random ones; in position order.
pub fn fork_positions<R: Rng>(
    entropies: &[f32],
    from: usize,
    to: usize,
    n: usize,
    fork: Fork,
    rng: &mut R,
) -> Vec<usize> {
    let to = to.min(entropies.len());
    if from >= to || n == 0 {
        return Vec::new();
    }
    let mut picked: Vec<usize> = match fork {
        Fork::Entropy => {
            let mut pos: Vec<usize> = (from..to).collect();
            pos.sort_by(|&a, &b| entropies[b].total_cmp(&entropies[a]).then(a.cmp(&b)));
            pos.truncate(n);
            pos
        }
        Fork::Random => sample_indices(rng, to - from, n.min(to - from))
            .into_iter()
            .map(|i| from + i)
            .collect(),
    };
    picked.sort_unstable();
    picked
}

/// Each problem's leaves, the sampling accounting, and the forks made per problem.
type Grown = (Vec<Vec<Leaf>>, SampleStats, Vec<usize>);

/// M chains per problem, then L rounds of forks. Returns each problem's leaves (parents
/// before children), the sampling accounting and the forks made per problem.
fn grow(
    ctx: &mut GroupContext<ChaCha8Rng>,
    problems: &[Problem],
    cfg: &TreeRlConfig,
) -> Result<Grown, Halt> {
    let refs: Vec<&Problem> = problems.iter().collect();
    let params = ctx.direct_params();
    let max_tokens = params.max_tokens;
    let (groups, mut stats) = rollouts(
        ctx.generator,
        ctx.tok,
        &refs,
        cfg.chains,
        &params,
        ctx.rules,
        ctx.train.reward,
        ctx.rng,
        ctx.stop,
    )?;
    let mut forests: Vec<Vec<Leaf>> = groups
        .into_iter()
        .map(|g| {
            g.into_iter()
                .map(|traj| Leaf {
                    traj,
                    start: 0,
                    parent: None,
                })
                .collect()
        })
        .collect();
    let mut forks = vec![0usize; problems.len()];
    let prompts: Vec<Vec<u32>> = problems.iter().map(|p| prompt_tokens(ctx.tok, p)).collect();
    let mut last_round: Vec<Vec<usize>> = forests.iter().map(|f| (0..f.len()).collect()).collect();
    for _ in 0..cfg.rounds {
        // (problem, parent leaf, fork position, context)
        let mut asks: Vec<(usize, usize, usize, Vec<u32>)> = Vec::new();
        for (i, leaves) in forests.iter().enumerate() {
            for &j in &last_round[i] {
                let l = &leaves[j];
                // A fork resamples its token: after the leaf's own first token (forking
                // there would make a sibling, not a branch), with budget left after it.
                let to = l.traj.tokens.len().min(max_tokens.saturating_sub(1));
                for p in fork_positions(
                    &l.traj.entropies,
                    l.start + 1,
                    to,
                    cfg.forks,
                    cfg.fork,
                    ctx.rng,
                ) {
                    let mut context = prompts[i].clone();
                    context.extend_from_slice(&l.traj.tokens[..p]);
                    asks.push((i, j, p, context));
                    forks[i] += 1;
                }
            }
        }
        let mut next: Vec<Vec<usize>> = vec![Vec::new(); problems.len()];
        for chunk in asks.chunks((MAX_ROWS / cfg.branches.max(1)).max(1)) {
            ask(ctx.stop)?;
            let requests: Vec<Request> = chunk
                .iter()
                .map(|(_, _, p, context)| Request {
                    context,
                    cache: None,
                    copies: cfg.branches,
                    max_tokens: Some(max_tokens - p),
                })
                .collect();
            let (completions, s) = ctx.generator.generate(&requests, &params, false, ctx.rng)?;
            stats.add(&s);
            for c in completions {
                let (i, j, p, _) = &chunk[c.request];
                let (i, j, p) = (*i, *j, *p);
                let parent = &forests[i][j].traj;
                let mut tokens = parent.tokens[..p].to_vec();
                tokens.extend_from_slice(&c.tokens);
                let mut logprobs = parent.logprobs[..p].to_vec();
                logprobs.extend_from_slice(&c.logprobs);
                let mut entropies = parent.entropies[..p].to_vec();
                entropies.extend_from_slice(&c.entropies);
                let text = ctx.tok.decode(&tokens);
                let verdict: Verdict = verify(&problems[i], &text, ctx.rules);
                let r = reward(ctx.train.reward, &verdict, &problems[i]);
                forests[i].push(Leaf {
                    traj: Trajectory {
                        tokens,
                        logprobs,
                        entropies,
                        finish: c.finish,
                        text,
                        verdict,
                        reward: r,
                    },
                    start: p,
                    parent: Some(j),
                });
                next[i].push(forests[i].len() - 1);
            }
        }
        last_round = next;
    }
    Ok((forests, stats, forks))
}

/// One segment: tokens `from..to` of leaf `leaf`'s response.
#[derive(Clone, Debug, PartialEq)]
pub struct Segment {
    pub parent: Option<usize>,
    pub leaf: usize,
    pub from: usize,
    pub to: usize,
}

/// The leaves as a tree of segments: node 0 is the root (the prompt), every other node
/// a segment; `paths[j]` lists leaf j's segments from the root down.
#[derive(Clone, Debug)]
pub struct SegmentTree {
    pub nodes: Vec<Segment>,
    pub paths: Vec<Vec<usize>>,
}

impl SegmentTree {
    /// Splits each leaf's own tokens at the positions its children forked at.
    pub fn build(leaves: &[Leaf]) -> Self {
        let mut nodes = vec![Segment {
            parent: None,
            leaf: usize::MAX,
            from: 0,
            to: 0,
        }];
        let mut paths: Vec<Vec<usize>> = Vec::with_capacity(leaves.len());
        // (leaf, end position) -> the segment ending there.
        let mut ends: std::collections::HashMap<(usize, usize), usize> = Default::default();
        for (j, l) in leaves.iter().enumerate() {
            let mut cuts: Vec<usize> = leaves
                .iter()
                .filter(|c| c.parent == Some(j) && c.start > l.start)
                .map(|c| c.start)
                .filter(|&p| p < l.traj.tokens.len())
                .collect();
            cuts.sort_unstable();
            cuts.dedup();
            let (mut parent, mut path) = match l.parent {
                None => (0, Vec::new()),
                Some(i) => {
                    let at = ends[&(i, l.start)];
                    let upto = paths[i].iter().position(|&s| s == at).map_or(0, |k| k + 1);
                    (at, paths[i][..upto].to_vec())
                }
            };
            let mut from = l.start;
            for to in cuts.into_iter().chain([l.traj.tokens.len()]) {
                if to <= from {
                    continue;
                }
                nodes.push(Segment {
                    parent: Some(parent),
                    leaf: j,
                    from,
                    to,
                });
                parent = nodes.len() - 1;
                ends.insert((j, to), parent);
                path.push(parent);
                from = to;
            }
            paths.push(path);
        }
        Self { nodes, paths }
    }

    /// Leaves below each node (the root: all).
    pub fn leaves_below(&self) -> Vec<Vec<usize>> {
        let mut below = vec![Vec::new(); self.nodes.len()];
        below[0] = (0..self.paths.len()).collect();
        for (j, path) in self.paths.iter().enumerate() {
            for &s in path {
                below[s].push(j);
            }
        }
        below
    }

    /// Each node's advantage from the leaves' rewards: the global term V(s) - V(root)
    /// plus the local term V(s) - V(parent), over sqrt(|L(s)|) when `reweight`.
    pub fn advantages(&self, rewards: &[f64], reweight: bool) -> Vec<f64> {
        let below = self.leaves_below();
        let v: Vec<f64> = below
            .iter()
            .map(|ls| {
                if ls.is_empty() {
                    0.0
                } else {
                    ls.iter().map(|&j| rewards[j]).sum::<f64>() / ls.len() as f64
                }
            })
            .collect();
        self.nodes
            .iter()
            .enumerate()
            .map(|(s, n)| match n.parent {
                None => 0.0,
                Some(p) => {
                    let a = (v[s] - v[0]) + (v[s] - v[p]);
                    if reweight {
                        a / (below[s].len().max(1) as f64).sqrt()
                    } else {
                        a
                    }
                }
            })
            .collect()
    }

    /// What is stored of the tree: every segment with its leaves' statistics; a leaf's
    /// last segment carries its verdict.
    pub fn record(
        &self,
        p: &Problem,
        leaves: &[Leaf],
        adv: &[f64],
        forks: usize,
        decode: impl Fn(&[u32]) -> String,
    ) -> TreeRecord {
        let below = self.leaves_below();
        let mut record = TreeRecord::direct(&p.id, &p.prompt());
        record.source = GroupSource::Branch;
        record.expansions = forks as u32;
        let root = &mut record.nodes[0];
        root.n = below[0].len() as u32;
        root.q = below[0].iter().map(|&j| signed(&leaves[j])).sum();
        let mut depth = vec![0u32; self.nodes.len()];
        for (s, n) in self.nodes.iter().enumerate().skip(1) {
            let parent = n.parent.unwrap_or(0);
            depth[s] = depth[parent] + 1;
            let l = &leaves[n.leaf].traj;
            let tokens = l.tokens[n.from..n.to].to_vec();
            let lp = &l.logprobs[n.from.min(l.logprobs.len())..n.to.min(l.logprobs.len())];
            let is_leaf_end = n.to == l.tokens.len();
            let mut node = NodeRecord {
                tokens: tokens.clone(),
                text: decode(&tokens),
                q: below[s].iter().map(|&j| signed(&leaves[j])).sum(),
                n: below[s].len() as u32,
                entropy: if lp.is_empty() {
                    0.0
                } else {
                    -lp.iter().sum::<f32>() / lp.len() as f32
                },
                advantage: Some(adv[s] as f32),
                ..NodeRecord::blank(s as u32, Some(parent as u32), depth[s])
            };
            if is_leaf_end {
                let correct = l.correct();
                node.terminal_value = Some(if correct { 1.0 } else { -1.0 });
                node.correct = Some(correct);
                node.reason = Some(l.verdict.reason.to_string());
                node.recorded = true;
            }
            record.nodes.push(node);
        }
        record
    }
}

/// +1 for a correct leaf, -1 otherwise (the explorer's q scale).
fn signed(l: &Leaf) -> f32 {
    if l.traj.correct() {
        1.0
    } else {
        -1.0
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;
    use crate::engine::policy::sampler::Finish;
    use crate::engine::task::countdown::Reason;
    use crate::engine::task::Outcome as VOutcome;

    fn leaf(len: usize, start: usize, parent: Option<usize>, correct: bool) -> Leaf {
        Leaf {
            traj: Trajectory {
                tokens: vec![7; len],
                logprobs: vec![-0.5; len],
                entropies: vec![0.1; len],
                finish: Finish::Eos,
                text: String::new(),
                verdict: Verdict {
                    outcome: if correct {
                        VOutcome::Correct
                    } else {
                        VOutcome::WrongValue { value: 0.0 }
                    },
                    reason: if correct {
                        Reason::Correct
                    } else {
                        Reason::NoAnswer
                    }
                    .into(),
                },
                reward: correct as u8 as f32,
            },
            start,
            parent,
        }
    }

    #[test]
    fn entropy_forks_pick_the_most_uncertain_tokens_random_ones_the_same_count() {
        let h = [0.1, 0.9, 0.2, 0.9, 0.5, 0.0];
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(
            fork_positions(&h, 1, 6, 2, Fork::Entropy, &mut rng),
            vec![1, 3]
        );
        assert_eq!(
            fork_positions(&h, 2, 6, 2, Fork::Entropy, &mut rng),
            vec![3, 4]
        );
        let r = fork_positions(&h, 1, 6, 3, Fork::Random, &mut rng);
        assert_eq!(r.len(), 3);
        assert!(r.iter().all(|&p| (1..6).contains(&p)) && r.windows(2).all(|w| w[0] < w[1]));
        assert!(fork_positions(&h, 5, 5, 2, Fork::Entropy, &mut rng).is_empty());
    }

    /// Chain 0 (10 tokens, wrong) forks at 4 (leaf 2, correct) and 7 (leaf 3, wrong);
    /// chain 1 (8 tokens, wrong) has no forks.
    fn example() -> (Vec<Leaf>, SegmentTree) {
        let leaves = vec![
            leaf(10, 0, None, false),
            leaf(8, 0, None, false),
            leaf(9, 4, Some(0), true),
            leaf(12, 7, Some(0), false),
        ];
        let t = SegmentTree::build(&leaves);
        (leaves, t)
    }

    #[test]
    fn segments_split_at_forks_and_paths_share_prefixes() {
        let (_, t) = example();
        let seg = |s: usize| (t.nodes[s].parent, t.nodes[s].from, t.nodes[s].to);
        // Chain 0: [0,4) [4,7) [7,10); chain 1: [0,8); leaf 2: [4,9) under [0,4); leaf 3:
        // [7,12) under [4,7).
        assert_eq!(seg(1), (Some(0), 0, 4));
        assert_eq!(seg(2), (Some(1), 4, 7));
        assert_eq!(seg(3), (Some(2), 7, 10));
        assert_eq!(seg(4), (Some(0), 0, 8));
        assert_eq!(seg(5), (Some(1), 4, 9));
        assert_eq!(seg(6), (Some(2), 7, 12));
        assert_eq!(
            t.paths,
            vec![vec![1, 2, 3], vec![4], vec![1, 5], vec![1, 2, 6]]
        );
    }

    #[test]
    fn advantages_are_global_plus_local_over_sqrt_leaves() {
        let (leaves, t) = example();
        let r: Vec<f64> = leaves.iter().map(|l| l.traj.reward as f64).collect();
        let a = t.advantages(&r, false);
        // V(root) = 1/4; V([0,4)) = 1/3 (leaves 0, 2, 3); V(leaf 2's [4,9)) = 1.
        let v_root = 0.25;
        let v1 = 1.0 / 3.0;
        assert!((a[1] - 2.0 * (v1 - v_root)).abs() < 1e-12);
        // Leaf 2's own segment: (1 - 1/4) + (1 - 1/3).
        assert!((a[5] - (0.75 + 2.0 / 3.0)).abs() < 1e-12);
        // Chain 1 (wrong, alone under the root): 2 * (0 - 1/4).
        assert!((a[4] + 0.5).abs() < 1e-12);
        let w = t.advantages(&r, true);
        assert!((w[1] - a[1] / 3f64.sqrt()).abs() < 1e-12);
        assert!((w[5] - a[5]).abs() < 1e-12);
        // No reward spread, no signal.
        assert!(t.advantages(&[0.0; 4], true).iter().all(|&x| x == 0.0));
    }

    #[test]
    fn the_record_has_one_terminal_per_leaf_and_shared_visits() {
        let (leaves, t) = example();
        let r: Vec<f64> = leaves.iter().map(|l| l.traj.reward as f64).collect();
        let adv = t.advantages(&r, true);
        let p = crate::engine::task::countdown::problem("p", vec![1, 2], 3);
        let rec = t.record(&p, &leaves, &adv, 2, |tok| format!("{}", tok.len()));
        assert_eq!(rec.source, GroupSource::Branch);
        assert_eq!(rec.nodes.len(), 7);
        assert_eq!(rec.nodes.iter().filter(|n| n.recorded).count(), 4);
        assert_eq!(rec.nodes[1].n, 3);
        assert!(rec.solved());
        assert_eq!(rec.nodes[5].depth, 2);
    }
}
