//! The search's invariants on synthetic trees: random children (terminal or not, correct
//! or not, random confidences) drive the real state machine.
use proptest::prelude::*;
use rand::{Rng, SeedableRng};

use super::super::frontier::{linear_frontier, on_frontier, score_of, weights, DepthBonus};
use super::super::pick::NegativePick;
use super::*;
use crate::engine::policy::tokenizer::Tokenizer;

/// A child step: its tokens encode whether it ends and whether it is correct, so the judge
/// can read the verdict back from the text.
fn child(
    rng: &mut rand_chacha::ChaCha8Rng,
    p_end: f64,
    p_correct: f64,
    tok: &Tokenizer,
) -> Completion {
    let ends = rng.random_bool(p_end);
    let text = if ends {
        if rng.random_bool(p_correct) {
            "ans 1"
        } else {
            "ans 0"
        }
    } else {
        ["1+1=2\n", "2+2=4\n", "3+3=6\n", "4+4=8\n"][rng.random_range(0..4)]
    };
    let tokens = tok.encode(text).unwrap_or_default();
    let logprobs: Vec<f32> = tokens
        .iter()
        .map(|_| -rng.random_range(0.01f32..3.0))
        .collect();
    Completion {
        request: 0,
        entropies: logprobs.iter().map(|l| -l).collect(),
        tokens,
        logprobs,
        finish: if ends { Finish::Eos } else { Finish::Delimiter },
        cache: None,
    }
}

fn verdict(text: &str) -> (bool, String) {
    let ok = text.ends_with("ans 1");
    (ok, if ok { "correct".into() } else { "wrong".into() })
}

/// Synthetic step judgement: `3+3=6` breaks a rule, `2+2=4` leaves one continuation.
fn step_judgement(text: &str) -> StepJudgement {
    if text.ends_with("3+3=6\n") {
        StepJudgement::Invalid("three".into())
    } else if text.ends_with("2+2=4\n") {
        StepJudgement::Forced
    } else {
        StepJudgement::Open
    }
}

const JUDGE: Judge = Judge {
    verify: &verdict,
    step: &step_judgement,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn invariants_hold_on_random_trees(
        seed in any::<u64>(),
        p_end in 0.05f64..0.9,
        p_correct in 0.0f64..0.6,
        width in 1usize..5,
        n in 1usize..6,
        uct_selection in any::<bool>(),
        step_check in any::<bool>(),
        merge_siblings in any::<bool>(),
        record_invalid in any::<bool>(),
    ) {
        let tok = Tokenizer::default();
        let cfg = SearchConfig {
            width,
            n,
            max_depth: 6,
            max_expansions: 40,
            selection: if uct_selection { Selection::Uct } else { Selection::Frontier },
            step_check,
            merge_siblings,
            record_invalid,
            ..SearchConfig::default()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut s = State::new(Tree::new(vec![1]), n);
        let mut picked_total = 0;
        while !s.done {
            let cur = s.current.unwrap_or(s.tree.root);
            prop_assert!(s.tree.node(cur).expandable(), "only unexpanded nodes are expanded");
            let copies = if s.tree.node(cur).step == StepKind::Forced { 1 } else { width };
            let kids: Vec<Completion> = (0..copies).map(|_| child(&mut rng, p_end, p_correct, &tok)).collect();
            let before = s.recorded.len();
            advance(&mut s, kids, &tok, &cfg, &JUDGE, &mut rng);
            check_frontier(&s, &cfg)?;
            // Exactly one terminal is backed up per expansion that produced terminals.
            prop_assert!(s.recorded.len() <= before + 1);
            picked_total = s.recorded.len();
        }
        let t = &s.tree;
        // Each tree records exactly n trajectories or counts a cap event.
        prop_assert!(s.recorded.len() == n || s.cap_event, "recorded {} of {n}", s.recorded.len());
        prop_assert_eq!(picked_total, s.recorded.len());
        for i in t.graph.node_indices() {
            let node = t.node(i);
            // Picked terminals below (or at) this node.
            let below = s.recorded.iter().filter(|&&r| t.path(r).contains(&i)).count() as u32;
            if i == t.root {
                prop_assert_eq!(node.n, below);
            } else if node.terminal.is_some() {
                prop_assert_eq!(node.n, below, "terminal N counts its own backup");
            } else {
                prop_assert_eq!(node.n, 1 + below, "N = 1 + backed-up terminals below");
            }
            // A node on a backed-up correct path never has q < 0.
            let on_correct = s.recorded.iter().any(|&r| {
                t.node(r).terminal.as_ref().is_some_and(|x| x.correct) && t.path(r).contains(&i)
            });
            if on_correct {
                prop_assert!(node.q >= 0.0, "q {} on a correct path", node.q);
            }
            // Children's multiplicities add up to the samples drawn: width, or 1 for a
            // forced step; without merging every sample is its own node.
            let kids = t.children(i);
            let drawn: u32 = kids.iter().map(|&k| t.node(k).multiplicity).sum();
            let copies = if node.step == StepKind::Forced { 1 } else { width as u32 };
            prop_assert!(kids.is_empty() || drawn == copies, "{drawn} of {copies}");
            if !merge_siblings {
                prop_assert!(kids.iter().all(|&k| t.node(k).multiplicity == 1));
            } else {
                let mut texts: Vec<&Vec<u32>> = kids.iter().map(|&k| &t.node(k).tokens).collect();
                texts.sort();
                texts.dedup();
                prop_assert_eq!(texts.len(), kids.len(), "siblings are distinct");
            }
            prop_assert_eq!(node.expanded, !kids.is_empty());
            if node.step == StepKind::Invalid {
                prop_assert!(step_check && node.terminal.as_ref().is_some_and(|x| !x.correct));
                prop_assert!(record_invalid || !node.recorded);
            }
        }
        // Replayed from what is stored, the search ends in the stored q and N.
        let rec = crate::engine::rl::record::TreeRecord::from_tree(
            "p", "x", t, s.expansions, s.cap_event, &Default::default(),
        );
        let steps = crate::engine::methods::deepsearch::search::replay::replay(&rec, cfg.gamma_min, cfg.backup)
            .expect("a search tree replays");
        prop_assert_eq!(steps.len(), s.expansions);
        let last = &steps[steps.len() - 1].state;
        for n in &rec.nodes {
            let (q, k) = last[n.id as usize].expect("every node exists at the end");
            prop_assert!((q as f32 - n.q).abs() < 1e-5 && k == n.n, "node {}: {q} {k} vs {} {}", n.id, n.q, n.n);
        }
        // Every expansion is numbered once, in order (the search replay's order).
        let mut order: Vec<u32> = t
            .graph
            .node_weights()
            .filter(|n| n.expanded)
            .map(|n| n.expanded_at.expect("an expanded node has its order"))
            .collect();
        order.sort_unstable();
        prop_assert_eq!(order, (0..s.expansions as u32).collect::<Vec<_>>());
        // The confident-wrong path is marked exactly when nothing correct was recorded.
        let solved = s.recorded.iter().any(|&r| t.node(r).terminal.as_ref().is_some_and(|x| x.correct));
        let marked = t.graph.node_weights().any(|x| x.confident_wrong);
        prop_assert_eq!(marked, !solved && !s.recorded.is_empty());
    }
}

/// The frontier index holds exactly the linear scan's frontier with the same scores, in
/// the scan's order (score, then pre-order), so it picks what the scan picks.
fn check_frontier(s: &State, cfg: &SearchConfig) -> std::result::Result<(), TestCaseError> {
    let Some(f) = s.frontier.as_ref() else {
        return Ok(());
    };
    let w = weights(cfg);
    let mut scan: Vec<(usize, f64)> = s
        .tree
        .preorder()
        .into_iter()
        .filter(|&i| on_frontier(&s.tree, i))
        .map(|i| (i.index(), score_of(&s.tree, i, &w)))
        .collect();
    prop_assert_eq!(f.len(), scan.len(), "members");
    scan.retain(|x| !x.1.is_nan());
    // A stable sort keeps pre-order among equal scores.
    scan.sort_by(|a, b| {
        let k = |x: f64| if x == 0.0 { 0.0 } else { x };
        k(b.1).total_cmp(&k(a.1))
    });
    let bits = |v: Vec<(usize, f64)>| -> Vec<(usize, u64)> {
        v.into_iter().map(|(i, x)| (i, x.to_bits())).collect()
    };
    // The runner-up is the second of the ranking (for replaying the search).
    prop_assert_eq!(
        f.runner_up().map(f64::to_bits),
        scan.get(1).map(|x| x.1.to_bits())
    );
    prop_assert_eq!(bits(f.ranked()), bits(scan));
    let oracle = linear_frontier(&s.tree, cfg).map(|(i, x)| (i.index(), x.to_bits()));
    prop_assert_eq!(f.best().map(|(i, x)| (i, x.to_bits())), oracle);
    Ok(())
}

/// A child whose log-probabilities come from three values, so frontier scores tie often
/// (siblings always tie when l2 = 0).
fn tied_child(rng: &mut rand_chacha::ChaCha8Rng, p_end: f64, k: usize) -> Completion {
    let ends = rng.random_bool(p_end);
    let tokens: Vec<u32> = if ends {
        vec![40 + rng.random_range(0..2u32)]
    } else {
        // Distinct per sibling, so merging never hides a child.
        vec![10 + k as u32, 20 + rng.random_range(0..3u32)]
    };
    let logprobs: Vec<f32> = tokens
        .iter()
        .map(|_| [-0.5f32, -1.0, -2.0][rng.random_range(0..3)])
        .collect();
    Completion {
        request: 0,
        entropies: logprobs.iter().map(|l| -l).collect(),
        tokens,
        logprobs,
        finish: if ends { Finish::Eos } else { Finish::Delimiter },
        cache: None,
    }
}

fn parity_verdict(text: &str) -> (bool, String) {
    (text.len() % 2 == 0, String::new())
}

const PARITY_JUDGE: Judge = Judge {
    verify: &parity_verdict,
    step: &|_| StepJudgement::Open,
};

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// On random trees of up to a few hundred nodes, with random weights and many tied
    /// scores, every selection is the linear scan's (ties to the first in pre-order).
    #[test]
    fn frontier_index_picks_what_the_linear_scan_picks(
        seed in any::<u64>(),
        p_end in 0.05f64..0.7,
        width in 1usize..5,
        l1 in prop::sample::select(vec![0.0, 0.4, 1.0]),
        l2 in prop::sample::select(vec![0.0, 0.3]),
        l3 in prop::sample::select(vec![0.0, 0.01, 0.5]),
        bonus in prop::sample::select(vec![DepthBonus::Linear, DepthBonus::Log, DepthBonus::Sqrt]),
        negative in prop::sample::select(vec![NegativePick::MostConfident, NegativePick::LeastConfident, NegativePick::Random]),
    ) {
        let tok = Tokenizer::default();
        let cfg = SearchConfig {
            width,
            n: 1000,
            max_depth: 12,
            max_expansions: 150,
            l1,
            l2,
            l3,
            depth_bonus: bonus,
            negative,
            step_check: false,
            ..SearchConfig::default()
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
        let mut s = State::new(Tree::new(vec![1]), cfg.n);
        while !s.done {
            let kids: Vec<Completion> = (0..width).map(|k| tied_child(&mut rng, p_end, k)).collect();
            advance(&mut s, kids, &tok, &cfg, &PARITY_JUDGE, &mut rng);
            check_frontier(&s, &cfg)?;
            // A node carries a frontier score only once the frontier chose it (it is
            // expanded next and never chosen again): that choice is the scan's.
            if let Some(cur) = s.current.filter(|&c| s.tree.node(c).frontier_score.is_some()) {
                let scan = linear_frontier(&s.tree, &cfg).map(|(i, _)| i);
                prop_assert_eq!(Some(cur), scan);
            }
        }
    }
}

fn completion(tokens: Vec<u32>, finish: Finish) -> Completion {
    Completion {
        request: 0,
        entropies: vec![0.5; tokens.len()],
        logprobs: vec![-0.5; tokens.len()],
        tokens,
        finish,
        cache: None,
    }
}

#[test]
fn chunk_steps_continue_when_full_and_end_at_eos_even_as_the_last_token() {
    let eos = crate::engine::policy::tokenizer::EOS;
    let chunk = SearchConfig {
        step: StepMode::Chunk,
        step_max_tokens: 4,
        ..SearchConfig::default()
    };
    let line = SearchConfig {
        step_max_tokens: 4,
        ..SearchConfig::default()
    };
    let full = completion(vec![5, 6, 7, 8], Finish::Limit);
    let eos_last = completion(vec![5, 6, 7, eos], Finish::Eos);
    let cut_by_context = completion(vec![5, 6], Finish::Limit);
    assert!(
        !step_ends(&full, &chunk),
        "a full chunk is a step, not an end"
    );
    assert!(
        step_ends(&eos_last, &chunk),
        "EOS as the chunk's last token ends it"
    );
    assert!(step_ends(&cut_by_context, &chunk));
    assert!(
        step_ends(&full, &line),
        "an over-long line ends the trajectory"
    );
    assert!(!step_ends(
        &completion(vec![5, 9], Finish::Delimiter),
        &line
    ));
}

#[test]
fn the_sampler_reports_eos_when_it_is_the_last_token_a_chunk_allows() {
    use crate::engine::policy::sampler::{sample, Request, SamplingParams};
    use crate::engine::policy::{Policy, PolicyConfig};
    let tok = Tokenizer::default();
    let mut cfg = PolicyConfig::tiny(tok.vocab_size(), 1, 2);
    cfg.hidden_size = 16;
    cfg.intermediate_size = 32;
    cfg.num_hidden_layers = 1;
    cfg.num_attention_heads = 2;
    cfg.num_key_value_heads = 1;
    let policy = Policy::init(cfg, tok.clone(), 3, &candle_core::Device::Cpu).unwrap();
    // Chunks of one token at a high temperature: every EOS drawn as the chunk's last (and
    // only) token is reported as Eos, never as Limit.
    let model = policy.sampler_model().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let params = SamplingParams {
        temperature: 3.0,
        max_tokens: 1,
        stop_at: None,
        eos: tok.eos(),
    };
    let prompt = tok.prompt_ids("3 7 12:72\n");
    let reqs = vec![Request {
        context: &prompt,
        cache: None,
        copies: 400,
        max_tokens: None,
    }];
    let (out, _) = sample(&model, &reqs, &params, false, &mut rng).unwrap();
    let mut eos_seen = 0;
    for c in &out {
        assert_eq!(c.tokens.len(), 1);
        if c.tokens[0] == tok.eos() {
            eos_seen += 1;
            assert_eq!(c.finish, Finish::Eos);
        } else {
            assert_eq!(c.finish, Finish::Limit);
        }
    }
    assert!(eos_seen > 0, "no EOS drawn in 400 tries at temperature 3");
}

/// The example on numbers 4 6 12: `4/1=4` (no 1) and `6*16=126` end at once as
/// wrong terminals with the verifier's reason, identical siblings merge, and once one
/// number is left the answer line is expanded with width 1.
#[test]
fn countdown_steps_are_judged_merged_and_forced() {
    use crate::engine::task::{task_of, Rules};
    let tok = Tokenizer::default();
    let p = crate::engine::task::countdown::problem("t", vec![4, 6, 12], 22);
    let rules = Rules::default();
    let task = task_of(&rules);
    let verify = |text: &str| {
        let v = task.verify(&p, text);
        (v.is_correct(), v.reason.to_string())
    };
    let step = |text: &str| task.judge_step(&p, text);
    let judge = Judge {
        verify: &verify,
        step: &step,
    };
    let cfg = SearchConfig {
        width: 4,
        n: 2,
        ..SearchConfig::default()
    };
    let line = |t: &str, finish| completion(tok.encode(t).unwrap(), finish);
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let mut s = State::new(Tree::new(vec![1]), cfg.n);
    let kids = vec![
        line("4/1=4\n", Finish::Delimiter),
        line("6*16=126\n", Finish::Delimiter),
        line("4+6=10\n", Finish::Delimiter),
        line("4+6=10\n", Finish::Delimiter),
    ];
    advance(&mut s, kids, &tok, &cfg, &judge, &mut rng);
    let t = &s.tree;
    let kids = t.children(t.root);
    assert_eq!(kids.len(), 3, "the two 4+6=10 merged");
    let invalid: Vec<_> = kids
        .iter()
        .filter(|&&k| t.node(k).step == StepKind::Invalid)
        .collect();
    assert_eq!(invalid.len(), 2);
    assert_eq!(
        t.node(*invalid[0]).terminal.as_ref().unwrap().reason,
        "line 1: 1 is not available"
    );
    let open = kids
        .iter()
        .copied()
        .find(|&k| t.node(k).terminal.is_none())
        .unwrap();
    assert_eq!(t.node(open).multiplicity, 2);
    // One of the invalid terminals was recorded (record_invalid), so the search moves on
    // to the frontier: the open node.
    assert_eq!(s.recorded.len(), 1);
    assert_eq!(s.current, Some(open));
    // 10+12=22 leaves one number: forced.
    advance(
        &mut s,
        vec![line("10+12=22\n", Finish::Delimiter); 4],
        &tok,
        &cfg,
        &judge,
        &mut rng,
    );
    let forced = s.current.unwrap();
    assert_eq!(s.tree.node(forced).step, StepKind::Forced);
    assert_eq!(s.tree.node(forced).multiplicity, 4);
    advance(
        &mut s,
        vec![line("ans 22", Finish::Eos)],
        &tok,
        &cfg,
        &judge,
        &mut rng,
    );
    assert!(s.done);
    let last = *s.recorded.last().unwrap();
    assert!(s.tree.node(last).terminal.as_ref().unwrap().correct);
    // N counts a merged node once: 1 + the recorded terminal below it.
    assert_eq!(s.tree.node(forced).n, 2);
}
