//! DeepSearch (arXiv 2509.25454): the search (`search/`, sections 3-6), Tree-GRPO's
//! scores (`tree_grpo`, section 8) and adaptive training (`adaptive`, `rounds`, section
//! 7). This file builds an iteration's groups.
//!
//! DeepSearch's groups: one MCTS tree per problem whose n recorded trajectories are scored
//! with Tree-GRPO, or, for problems the solution cache knows, cached solutions plus fresh
//! rollouts scored by outcome (the search is skipped: a cache hit).
pub mod adaptive;
pub mod method;
pub mod rounds;
pub mod search;
pub mod tree_grpo;

use std::collections::HashMap;

use rand::Rng;

use crate::engine::methods::deepsearch::adaptive::{
    register_by_code_rule, AdaptiveConfig, CacheRule, SolutionCache,
};
use crate::engine::methods::deepsearch::search::config::SearchConfig;
use crate::engine::methods::deepsearch::search::mcts::search;
use crate::engine::methods::deepsearch::tree_grpo::{
    group_token_advantages, negative_path_advantages, ScoreSettings, ScoredPath, TokenScore,
    Unsolved,
};
use crate::engine::policy::sampler::Finish;
use crate::engine::rl::groups::{filtered, Batch, GroupContext, Outcome, SearchMetrics};
use crate::engine::rl::interrupt::Halt;
use crate::engine::rl::record::{GroupSource, NodeRecord, TreeRecord};
use crate::engine::rl::rollout::is_repetitive;
use crate::engine::rl::rollout::{rollouts_n, Trajectory};
use crate::engine::rl::update::Sample;
use crate::engine::task::{reward, task_of, verify, Problem, RewardKind, StepJudgement, StepKind};

/// Solutions a searched problem offers to the cache.
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Registration {
    /// Index of the problem in the training split.
    pub problem: usize,
    pub solutions: Vec<Vec<u32>>,
}

fn score_settings(sc: &SearchConfig, token_score: TokenScore) -> ScoreSettings {
    ScoreSettings {
        q_max: sc.q_max,
        eps_q: sc.eps_q,
        overlong_max: sc.overlong_max,
        overlong_buffer: sc.overlong_buffer,
        token_score,
        normalise: sc.advantage,
    }
}

/// Builds the iteration's groups. `idx[i]` is `problems[i]`'s index in the training
/// split (the cache's key).
pub fn search_batch<R: Rng>(
    ctx: &mut GroupContext<R>,
    settings: (&SearchConfig, &AdaptiveConfig),
    problems: &[Problem],
    idx: &[usize],
    cache: Option<&SolutionCache>,
) -> Result<(Batch, Vec<Registration>), Halt> {
    let (sc, ad) = settings;
    let cached: Vec<bool> = idx
        .iter()
        .map(|&i| cache.is_some_and(|c| c.get(i).is_some()))
        .collect();
    let searched: Vec<&Problem> = problems
        .iter()
        .zip(&cached)
        .filter(|(_, &c)| !c)
        .map(|(p, _)| p)
        .collect();
    let (results, mut sampling) = search(
        ctx.generator,
        ctx.tok,
        &searched,
        sc,
        ctx.train.temperature,
        ctx.rules,
        ctx.rng,
        ctx.stop,
    )?;
    let mut m = SearchMetrics {
        search_tokens_forwarded: sampling.forwarded_tokens,
        cache_hits: cached.iter().filter(|&&c| c).count() as u64,
        ..SearchMetrics::default()
    };

    // One direct-rollout call: padding for capped trees, fresh samples for cached problems.
    let mut result_of = vec![None; problems.len()];
    let mut k = 0;
    for (i, &c) in cached.iter().enumerate() {
        if !c {
            result_of[i] = Some(k);
            k += 1;
        }
    }
    let counts: Vec<usize> = (0..problems.len())
        .map(|i| match result_of[i] {
            Some(r) => results[r].missing,
            None => sc.n,
        })
        .collect();
    let direct = if counts.iter().any(|&c| c > 0) {
        let refs: Vec<&Problem> = problems.iter().collect();
        let params = ctx.direct_params();
        let (g, s) = rollouts_n(
            ctx.generator,
            ctx.tok,
            &refs,
            &counts,
            &params,
            ctx.rules,
            RewardKind::Binary,
            ctx.rng,
            ctx.stop,
        )?;
        sampling.add(&s);
        g
    } else {
        vec![Vec::new(); problems.len()]
    };

    let scoring = std::time::Instant::now();
    let mut batch = Batch {
        sampling,
        ..Batch::default()
    };
    let mut registrations = Vec::new();
    for (i, p) in problems.iter().enumerate() {
        let mut extra = direct[i].clone();
        match result_of[i] {
            None => {
                // Cache hit: the first min(#cached, n) rollouts become cached solutions.
                let solutions = cache.and_then(|c| c.get(idx[i])).unwrap_or(&[]);
                for (slot, sol) in extra.iter_mut().zip(solutions) {
                    *slot = cached_trajectory(ctx, p, sol);
                }
                cached_group(ctx, (sc, ad), p, &extra, &mut batch, &mut m);
            }
            Some(r) => {
                let res = &results[r];
                let reg = tree_group(ctx, (sc, ad), p, res, &extra, &mut batch, &mut m);
                let correct: Vec<Vec<u32>> = reg;
                let recorded = res.recorded.len();
                let offer = match ad.cache_rule {
                    CacheRule::Code => register_by_code_rule(correct.len(), recorded, ad.delta),
                    CacheRule::Paper => !correct.is_empty(),
                };
                if offer {
                    registrations.push(Registration {
                        problem: idx[i],
                        solutions: correct,
                    });
                }
            }
        }
    }
    m.registrations = registrations.len() as u64;
    batch.search = Some(m);
    batch.scoring_seconds = scoring.elapsed().as_secs_f64();
    Ok((batch, registrations))
}

/// A cached solution as a trajectory (re-verified, so the stored verdict is current).
fn cached_trajectory<R: Rng>(ctx: &GroupContext<R>, p: &Problem, tokens: &[u32]) -> Trajectory {
    let text = ctx.tok.decode(tokens);
    let verdict = verify(p, &text, ctx.rules);
    Trajectory {
        reward: reward(RewardKind::Binary, &verdict, p),
        tokens: tokens.to_vec(),
        logprobs: Vec::new(),
        entropies: Vec::new(),
        finish: Finish::Eos,
        text,
        verdict,
    }
}

/// Outcome-scored group of whole trajectories.
fn cached_group<R: Rng>(
    ctx: &GroupContext<R>,
    (sc, ad): (&SearchConfig, &AdaptiveConfig),
    p: &Problem,
    group: &[Trajectory],
    batch: &mut Batch,
    m: &mut SearchMetrics,
) {
    if group.iter().any(|t| t.correct()) {
        batch.solved_problems += 1;
    }
    let paths: Vec<ScoredPath> = group
        .iter()
        .map(|t| {
            let v = if t.correct() { 1.0 } else { -1.0 };
            ScoredPath {
                steps: vec![(v, t.tokens.len())],
                terminal_value: v,
            }
        })
        .collect();
    let advs = group_token_advantages(&paths, &score_settings(sc, TokenScore::Outcome));
    let prompt = crate::engine::rl::rollout::prompt_tokens(ctx.tok, p);
    let mut record = TreeRecord::direct(&p.id, &p.prompt());
    record.source = GroupSource::Cached;
    for (t, adv) in group.iter().zip(advs) {
        record.push_sample(t, adv.first().copied().unwrap_or(0.0));
        batch.outcomes.push(Outcome::of(t));
        if !t.tokens.is_empty()
            && adv.iter().any(|&a| a != 0.0)
            && !filtered(ad.repetition_filter, t)
        {
            m.advantage_mass += adv.iter().map(|a| a.abs() as f64).sum::<f64>();
            batch.samples.push(Sample {
                prompt: prompt.clone(),
                response: t.tokens.clone(),
                advantages: adv,
                returns: Vec::new(),
            });
        }
    }
    batch.trees.push(record);
}

/// Token advantages of a tree's group (recorded paths, then padding). A solved group is
/// scored by Tree-GRPO; an unsolved one as `search.unsolved` says.
pub fn tree_advantages(
    sc: &SearchConfig,
    paths: &[ScoredPath],
    confident_wrong: &[bool],
    solved: bool,
) -> Vec<Vec<f32>> {
    let score = sc.token_score;
    let zeros = |p: &ScoredPath| vec![0.0f32; p.steps.iter().map(|s| s.1).sum()];
    match (solved, sc.unsolved) {
        (true, _) | (false, Unsolved::Keep) => {
            group_token_advantages(paths, &score_settings(sc, score))
        }
        (false, Unsolved::Outcome) => {
            group_token_advantages(paths, &score_settings(sc, TokenScore::Outcome))
        }
        (false, Unsolved::Skip) => paths.iter().map(zeros).collect(),
        (false, Unsolved::Negative) => paths
            .iter()
            .enumerate()
            .map(|(i, p)| {
                if confident_wrong.get(i).copied().unwrap_or(false) {
                    negative_path_advantages(p, &score_settings(sc, score))
                } else {
                    zeros(p)
                }
            })
            .collect(),
    }
}

/// Tree-GRPO group of a searched problem (plus padding); returns its correct solutions.
fn tree_group<R: Rng>(
    ctx: &GroupContext<R>,
    (sc, ad): (&SearchConfig, &AdaptiveConfig),
    p: &Problem,
    r: &crate::engine::methods::deepsearch::search::mcts::SearchResult,
    pad: &[Trajectory],
    batch: &mut Batch,
    m: &mut SearchMetrics,
) -> Vec<Vec<u32>> {
    let tree = &r.tree;
    m.trees += 1;
    m.expansions += r.expansions as u64;
    m.cap_events += u64::from(r.cap_event);
    m.nodes += tree.len() as u64;
    m.tree_tokens_distinct += tree.distinct_tokens();
    m.padded += pad.len() as u64;
    for n in tree.graph.node_weights() {
        m.merged += u64::from(n.multiplicity.saturating_sub(1));
        m.invalid_nodes += u64::from(n.step == StepKind::Invalid);
        m.forced_nodes += u64::from(n.step == StepKind::Forced);
    }
    let mut paths = Vec::new();
    let mut responses = Vec::new();
    let mut path_nodes = Vec::new();
    let mut correct = Vec::new();
    let mut right = Vec::new();
    for &t in &r.recorded {
        let nodes: Vec<_> = tree.path(t).into_iter().skip(1).collect();
        let value = tree.node(t).terminal.as_ref().map_or(-1.0, |x| x.value);
        paths.push(ScoredPath {
            steps: nodes
                .iter()
                .map(|&i| (tree.node(i).q, tree.node(i).tokens.len()))
                .collect(),
            terminal_value: value,
        });
        path_nodes.push(nodes);
        let response = tree.response(t);
        batch.outcomes.push(Outcome {
            reward: if value > 0.0 { 1.0 } else { 0.0 },
            correct: value > 0.0,
            entropy: tree.trajectory_exact_entropy(t),
            nll: tree.trajectory_entropy(t),
            tokens: response.len(),
        });
        if value > 0.0 {
            correct.push(response.clone());
        }
        right.push(value > 0.0);
        responses.push(response);
    }
    if !correct.is_empty() {
        m.trees_solved += 1;
    }
    let confident_wrong: Vec<bool> = r
        .recorded
        .iter()
        .map(|&t| tree.node(t).confident_wrong)
        .collect();
    // Padding is judged as the search judges its steps: line by line, ending at the
    // first invalid or deciding line.
    let task = task_of(ctx.rules);
    let judged: Vec<JudgedPad> = pad
        .iter()
        .map(|t| {
            judge_pad(
                t,
                ctx.tok.newline().filter(|_| sc.step_check),
                &|text| task.judge_step(p, text),
                &|tokens| ctx.tok.decode(tokens),
            )
        })
        .collect();
    for j in &judged {
        let v = if j.correct { 1.0 } else { -1.0 };
        paths.push(ScoredPath {
            steps: vec![(v, j.tokens.len())],
            terminal_value: v,
        });
        batch.outcomes.push(Outcome::new(
            if j.correct { 1.0 } else { 0.0 },
            j.correct,
            &j.logprobs,
            &j.entropies,
            j.tokens.len(),
        ));
        right.push(j.correct);
        responses.push(j.tokens.clone());
    }
    let solved = right.iter().any(|&ok| ok);
    if solved {
        batch.solved_problems += 1;
    }
    let advs = tree_advantages(sc, &paths, &confident_wrong, solved);
    let mass: f64 = advs.iter().flatten().map(|a| a.abs() as f64).sum::<f64>();
    m.advantage_mass += mass;
    if !solved {
        m.unsolved_advantage_mass += mass;
    }
    // Each node's tokens share one advantage: read it at the node's first token.
    let mut node_adv = HashMap::new();
    for (nodes, adv) in path_nodes.iter().zip(&advs) {
        let mut offset = 0;
        for &i in nodes {
            if let Some(&a) = adv.get(offset) {
                node_adv.insert(i.index() as u32, a);
            }
            offset += tree.node(i).tokens.len();
        }
    }
    let mut record = TreeRecord::from_tree(
        &p.id,
        &p.prompt(),
        tree,
        r.expansions,
        r.cap_event,
        &node_adv,
    );
    let searched = record.nodes.len();
    let mut pad_nodes = 0;
    for (j, adv) in judged.iter().zip(&advs[r.recorded.len()..]) {
        pad_nodes += record_pad(
            &mut record,
            searched,
            j,
            adv.first().copied().unwrap_or(0.0),
            sc.merge_siblings,
        );
    }
    *m.pad_nodes.get_or_insert(0) += pad_nodes;
    batch.trees.push(record);
    let prompt = tree.prompt.clone();
    for ((response, adv), ok) in responses.into_iter().zip(advs).zip(right) {
        // The repetition filter drops wrong samples that repeat themselves.
        let dropped = ad.repetition_filter && !ok && is_repetitive(&ctx.tok.decode(&response));
        if !response.is_empty() && adv.iter().any(|&a| a != 0.0) && !dropped {
            batch.samples.push(Sample {
                prompt: prompt.clone(),
                response,
                advantages: adv,
                returns: Vec::new(),
            });
        }
    }
    correct
}

/// A padded rollout as the search would have judged it: split into lines (when step
/// judgement is on and the tokenizer has a newline token), cut after its first invalid
/// or deciding line. The tokens after the cut were generated (and are charged) but are
/// not trained on.
#[derive(Clone, Debug, PartialEq)]
pub struct JudgedPad {
    pub tokens: Vec<u32>,
    pub logprobs: Vec<f32>,
    pub entropies: Vec<f32>,
    /// The kept tokens' lines: (end position, how the line was judged).
    pub lines: Vec<(usize, StepKind)>,
    pub correct: bool,
    pub reason: String,
    /// The kept tokens' text.
    pub text: String,
}

/// Judges a padded rollout line by line (`newline`: the delimiter, or none to keep the
/// rollout whole); `step(text)` judges the response up to a line's end.
pub fn judge_pad(
    t: &Trajectory,
    newline: Option<u32>,
    step: &dyn Fn(&str) -> StepJudgement,
    decode: &dyn Fn(&[u32]) -> String,
) -> JudgedPad {
    let mut ends: Vec<usize> = match newline {
        Some(nl) => t
            .tokens
            .iter()
            .enumerate()
            .filter(|&(_, &x)| x == nl)
            .map(|(i, _)| i + 1)
            .collect(),
        None => Vec::new(),
    };
    if ends.last() != Some(&t.tokens.len()) && !t.tokens.is_empty() {
        ends.push(t.tokens.len());
    }
    let mut lines = Vec::new();
    let mut verdict = (t.correct(), t.verdict.reason.to_string());
    let mut cut = t.tokens.len();
    for (k, &end) in ends.iter().enumerate() {
        let last = k + 1 == ends.len();
        let judged = if newline.is_some() && !last {
            step(&decode(&t.tokens[..end]))
        } else {
            StepJudgement::Open
        };
        match judged {
            StepJudgement::Open => lines.push((end, StepKind::Open)),
            StepJudgement::Forced => lines.push((end, StepKind::Forced)),
            StepJudgement::Invalid(reason) => {
                lines.push((end, StepKind::Invalid));
                verdict = (false, reason);
                cut = end;
                break;
            }
            StepJudgement::Decided { correct, reason } => {
                lines.push((end, StepKind::Open));
                verdict = (correct, reason);
                cut = end;
                break;
            }
        }
    }
    JudgedPad {
        text: decode(&t.tokens[..cut]),
        tokens: t.tokens[..cut].to_vec(),
        logprobs: t.logprobs[..cut.min(t.logprobs.len())].to_vec(),
        entropies: t.entropies[..cut.min(t.entropies.len())].to_vec(),
        lines,
        correct: verdict.0,
        reason: verdict.1,
    }
}

/// Adds a judged pad to a tree's record as one sample under the root (the replay knows
/// such recorded, never-picked children as padding), its step the judgement of its last
/// kept line. With `merge`, a pad whose tokens equal a root child's joins it (its
/// multiplicity grows; a pad's counts go into a pad node, never into the search's own
/// nodes, ids below `searched`), so no two siblings share a text. Returns the nodes added.
pub fn record_pad(
    record: &mut TreeRecord,
    searched: usize,
    j: &JudgedPad,
    advantage: f32,
    merge: bool,
) -> u64 {
    let value = if j.correct { 1.0 } else { -1.0 };
    let twin = merge
        .then(|| {
            record
                .nodes
                .iter()
                .position(|n| n.parent == Some(0) && n.tokens == j.tokens)
        })
        .flatten();
    if let Some(i) = twin {
        let n = &mut record.nodes[i];
        n.multiplicity += 1;
        if i >= searched {
            n.n += 1;
            n.q += value;
        }
        return 0;
    }
    let id = record.nodes.len() as u32;
    let entropy = if j.logprobs.is_empty() {
        0.0
    } else {
        -j.logprobs.iter().sum::<f32>() / j.logprobs.len() as f32
    };
    record.nodes.push(NodeRecord {
        tokens: j.tokens.clone(),
        text: j.text.clone(),
        q: value,
        n: 1,
        entropy,
        terminal_value: Some(value),
        correct: Some(j.correct),
        reason: Some(j.reason.clone()),
        recorded: true,
        advantage: Some(advantage),
        step: j.lines.last().map_or(StepKind::Open, |l| l.1),
        ..NodeRecord::blank(id, Some(0), 1)
    });
    1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A group built by hand: two recorded paths through the tree and a padded rollout.
    /// Path 1: a step with q = 0.5 (2 tokens) then a correct answer (1 token); path 2: a
    /// step with q = -0.6 (1 token) then a wrong answer (2 tokens); the pad: 3 wrong
    /// tokens scored by outcome.
    fn group(first_correct: bool) -> Vec<ScoredPath> {
        let v = if first_correct { 1.0 } else { -1.0 };
        vec![
            ScoredPath {
                steps: vec![(0.5, 2), (v, 1)],
                terminal_value: v,
            },
            ScoredPath {
                steps: vec![(-0.6, 1), (-1.0, 2)],
                terminal_value: -1.0,
            },
            ScoredPath {
                steps: vec![(-1.0, 3)],
                terminal_value: -1.0,
            },
        ]
    }

    fn cfg(unsolved: Unsolved) -> SearchConfig {
        SearchConfig {
            unsolved,
            ..SearchConfig::default()
        }
    }

    #[test]
    fn a_solved_group_is_tree_grpo_whatever_the_unsolved_mode() {
        // mu = (1 - 1 - 1) / 3 = -1/3.
        let mu = -1.0 / 3.0;
        for mode in [
            Unsolved::Keep,
            Unsolved::Outcome,
            Unsolved::Skip,
            Unsolved::Negative,
        ] {
            let a = tree_advantages(&cfg(mode), &group(true), &[false, false], true);
            let want0 = (0.5f64.tanh() - mu) as f32;
            assert!((a[0][0] - want0).abs() < 1e-6 && (a[0][1] - want0).abs() < 1e-6);
            assert!((a[0][2] - (1.0 - mu) as f32).abs() < 1e-6);
            assert!((a[1][0] - ((-0.6f64).tanh() - mu) as f32).abs() < 1e-6);
            assert!((a[1][1] - (-1.0 - mu) as f32).abs() < 1e-6);
            assert_eq!(a[2], vec![(-1.0 - mu) as f32; 3]);
        }
    }

    #[test]
    fn unsolved_groups_follow_the_mode() {
        let paths = group(false);
        let cw = [false, true];
        // keep: mu = -1, intermediate tokens pushed up, terminals 0.
        let keep = tree_advantages(&cfg(Unsolved::Keep), &paths, &cw, false);
        assert!((keep[0][0] - (0.5f64.tanh() + 1.0) as f32).abs() < 1e-6);
        assert!(keep[1][0] > 0.0 && keep[1][1] == 0.0 && keep[2] == vec![0.0; 3]);
        // outcome: every token R - mu = 0.
        let outcome = tree_advantages(&cfg(Unsolved::Outcome), &paths, &cw, false);
        assert!(outcome.iter().flatten().all(|&a| a == 0.0));
        // skip: nothing.
        let skip = tree_advantages(&cfg(Unsolved::Skip), &paths, &cw, false);
        assert!(skip.iter().flatten().all(|&a| a == 0.0));
        assert_eq!(skip[1].len(), 3);
        // negative: only the confident-wrong path, its own scores, no mu.
        let neg = tree_advantages(&cfg(Unsolved::Negative), &paths, &cw, false);
        assert!(neg[0].iter().chain(&neg[2]).all(|&a| a == 0.0));
        assert!((neg[1][0] - (-0.6f64).tanh() as f32).abs() < 1e-6);
        assert_eq!(&neg[1][1..], &[-1.0, -1.0]);
    }

    mod pads {
        use proptest::prelude::*;

        use super::super::*;
        use crate::engine::policy::tokenizer::Tokenizer;
        use crate::engine::task::Rules;

        fn pad(tok: &Tokenizer, p: &Problem, text: &str) -> Trajectory {
            let tokens = tok.encode(text).unwrap();
            let verdict = verify(p, text, &Rules::default());
            Trajectory {
                reward: reward(RewardKind::Binary, &verdict, p),
                logprobs: vec![-0.5; tokens.len()],
                entropies: vec![0.5; tokens.len()],
                tokens,
                finish: Finish::Eos,
                text: text.into(),
                verdict,
            }
        }

        /// Pads go into `record` (one search node, "5/5=1\n", under the root) as
        /// judged line paths; returns the record.
        fn with_pads(p: &Problem, texts: &[&str], merge: bool) -> TreeRecord {
            let tok = Tokenizer::default();
            let task = task_of(&Rules::default());
            let mut record = TreeRecord::direct(&p.id, &p.prompt());
            let searched = record.nodes.len();
            for text in texts {
                let j = judge_pad(
                    &pad(&tok, p, text),
                    tok.newline(),
                    &|t| task.judge_step(p, t),
                    &|t| tok.decode(t),
                );
                record_pad(&mut record, searched, &j, -1.0, merge);
            }
            record
        }

        /// The case checked from outside (issue 24): two padded rollouts `5/5=1\nans 1`
        /// under one root were two sibling terminals with the same text, unjudged.
        #[test]
        fn identical_pads_merge_into_one_judged_sample() {
            let p = crate::engine::task::countdown::problem("train-001082", vec![5, 5, 3], 8);
            let r = with_pads(&p, &["5/5=1\nans 1", "5/5=1\nans 1"], true);
            let kids: Vec<&NodeRecord> = r.nodes.iter().filter(|n| n.parent == Some(0)).collect();
            assert_eq!(kids.len(), 1, "{:?}", r.nodes);
            assert_eq!(kids[0].text, "5/5=1\nans 1");
            assert_eq!(kids[0].multiplicity, 2);
            assert_eq!(kids[0].n, 2);
            assert!(kids[0].recorded && kids[0].correct == Some(false));
            // Without merging the two stay apart, as independent samples.
            let r = with_pads(&p, &["5/5=1\nans 1", "5/5=1\nans 1"], false);
            assert_eq!(r.nodes.len(), 3);
        }

        #[test]
        fn a_pad_ends_at_its_first_invalid_line() {
            let p = crate::engine::task::countdown::problem("t", vec![4, 6, 12], 18);
            let tok = Tokenizer::default();
            let task = task_of(&Rules::default());
            let t = pad(&tok, &p, "4+6=11\n11+12=23\nans 23");
            let j = judge_pad(&t, tok.newline(), &|x| task.judge_step(&p, x), &|x| {
                tok.decode(x)
            });
            assert_eq!(j.lines.len(), 1);
            assert_eq!(j.lines[0].1, StepKind::Invalid);
            assert_eq!(j.tokens, tok.encode("4+6=11\n").unwrap());
            assert!(!j.correct && j.reason.contains("10"), "{}", j.reason);
        }

        proptest! {
            /// Under merging no two siblings share a text, and a pad is cut at its first
            /// invalid line (no line of a kept pad but its last is judged invalid).
            #[test]
            fn merged_pads_have_distinct_siblings_and_no_line_after_an_invalid_one(
                picks in proptest::collection::vec(
                    proptest::collection::vec(0usize..4, 1..4), 1..8)
            ) {
                let lines = ["4+6=10\n", "12-6=6\n", "4*6=24\n", "ans 18"];
                let texts: Vec<String> = picks
                    .iter()
                    .map(|ls| ls.iter().map(|&i| lines[i]).collect::<String>())
                    .collect();
                let refs: Vec<&str> = texts.iter().map(|s| s.as_str()).collect();
                let p = crate::engine::task::countdown::problem("t", vec![4, 6, 12], 18);
                let r = with_pads(&p, &refs, true);
                let task = task_of(&Rules::default());
                for a in &r.nodes {
                    let lines: Vec<&str> = a.text.split_inclusive('\n').collect();
                    for k in 1..lines.len() {
                        let prefix: String = lines[..k].concat();
                        let ok = !matches!(task.judge_step(&p, &prefix), StepJudgement::Invalid(_));
                        prop_assert!(ok, "{:?} goes on after an invalid line", a.text);
                    }
                    for b in &r.nodes {
                        if a.id < b.id && a.parent.is_some() && a.parent == b.parent {
                            prop_assert_ne!(&a.text, &b.text);
                        }
                    }
                }
            }
        }
    }
}
