//! End to end on the tiny model, through the library: the warm start teaches the format,
//! the search keeps its invariants on real trees, and training steps run for every method.
use arbor::engine::methods::deepsearch::search::config::SearchConfig;
use arbor::engine::methods::deepsearch::search::mcts::search;
use arbor::engine::policy::sampler::{sample, Request, SamplingParams};
use arbor::engine::policy::tokenizer::EOS;
use arbor::engine::rl::rollout::prompt_tokens;
use arbor::engine::task::countdown::{generate, Preset};
use arbor::engine::training::config::RunConfig;
use arbor::engine::training::registry::MethodKind;
use arbor::engine::training::sink::MemorySink;
use arbor::engine::training::split::RunData;
use arbor::engine::training::trainer::Trainer;
use arbor::engine::training::warm_start::prepare_policy;
use rand::SeedableRng;

fn small_config() -> RunConfig {
    let mut c = RunConfig::default();
    c.policy.hidden_size = 64;
    c.policy.intermediate_size = 128;
    c.policy.num_hidden_layers = 2;
    c.policy.num_attention_heads = 4;
    c.policy.num_key_value_heads = 2;
    c.warm_start.steps = 250;
    c.warm_start.batch_size = 32;
    c.train.problems_per_step = 4;
    c.train.group_size = 4;
    c.train.max_tokens = 40;
    c.eval.k = 4;
    c.search.width = 3;
    c.search.n = 4;
    c
}

fn data() -> RunData {
    let preset = Preset::by_name("default").unwrap();
    let split = generate(&preset, 11, 400, 16).unwrap();
    RunData {
        train: split.train,
        validation: Vec::new(),
        test: split.test,
        rules: arbor::engine::task::Rules::countdown(preset.rules),
        preset: preset.name,
    }
}

/// Lines `a<op>b=c` then `ans n`.
fn well_shaped(text: &str) -> bool {
    let lines: Vec<&str> = text.split('\n').collect();
    let Some((last, steps)) = lines.split_last() else {
        return false;
    };
    let num = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let step = |l: &str| {
        let Some((lhs, rhs)) = l.split_once('=') else {
            return false;
        };
        let Some(i) = lhs.find(['+', '-', '*', '/']) else {
            return false;
        };
        num(&lhs[..i]) && num(&lhs[i + 1..]) && num(rhs)
    };
    !steps.is_empty() && steps.iter().all(|l| step(l)) && last.strip_prefix("ans ").is_some_and(num)
}

#[test]
fn warm_start_teaches_well_formed_steps_and_search_keeps_its_invariants() {
    let cfg = small_config();
    let data = data();
    let mut sink = MemorySink::default();
    let (policy, key) = prepare_policy(&cfg, &data, &mut sink).unwrap();
    assert!(sink.warm.contains_key(&key), "the warm start is cached");

    // Most completions have the step shape ending in an answer line: format is learned
    // (a freshly initialised model produces none).
    let model = policy.sampler_model().unwrap();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let prompts: Vec<Vec<u32>> = data
        .test
        .iter()
        .map(|p| prompt_tokens(&policy.tokenizer, p))
        .collect();
    let requests: Vec<Request> = prompts
        .iter()
        .map(|c| Request {
            context: c,
            cache: None,
            copies: 8,
            max_tokens: None,
        })
        .collect();
    let params = SamplingParams {
        temperature: 1.0,
        max_tokens: 40,
        stop_at: None,
        eos: EOS,
    };
    let (outs, _) = sample(&model, &requests, &params, false, &mut rng).unwrap();
    let shaped = outs
        .iter()
        .filter(|c| {
            c.tokens.last() == Some(&EOS) && well_shaped(&policy.tokenizer.decode(&c.tokens))
        })
        .count();
    assert!(
        shaped * 2 > outs.len(),
        "only {shaped} of {} completions have the step shape after the warm start",
        outs.len()
    );

    // A real search: n recorded trajectories (or padding), q invariants, flags consistent.
    let sc = SearchConfig {
        width: 3,
        n: 4,
        max_expansions: 40,
        ..SearchConfig::default()
    };
    let problems: Vec<_> = data.test.iter().take(6).collect();
    let (results, stats) = search(
        &model,
        &policy.tokenizer,
        &problems,
        &sc,
        1.0,
        &data.rules,
        &mut rng,
        &mut arbor::engine::rl::interrupt::never(),
    )
    .unwrap();
    assert!(stats.forwarded_tokens > 0);
    let distinct: u64 = results
        .iter()
        .map(|r| {
            r.tree.prompt.len() as u64
                + r.tree
                    .graph
                    .node_weights()
                    .map(|n| n.tokens.len() as u64)
                    .sum::<u64>()
        })
        .sum();
    // Each prefix token is pushed through the model once; the last token of every
    // expanded node once more at most (its pending position).
    assert!(
        stats.forwarded_tokens
            <= distinct + results.iter().map(|r| r.expansions as u64).sum::<u64>()
    );
    for r in &results {
        let t = &r.tree;
        assert_eq!(r.recorded.len() + r.missing, sc.n);
        assert!(r
            .recorded
            .iter()
            .all(|&i| t.node(i).terminal.is_some() && t.node(i).recorded));
        for i in t.graph.node_indices() {
            let n = t.node(i);
            assert!(t.children(i).len() <= sc.width * 8);
            if n.terminal.is_none() && i != t.root {
                assert!(n.n >= 1, "non-terminal nodes start with N = 1");
            }
            // A node with a correct recorded descendant has q >= 0.
            let on_correct = r.recorded.iter().any(|&rec| {
                t.node(rec).terminal.as_ref().unwrap().correct && t.path(rec).contains(&i)
            });
            if on_correct {
                assert!(n.q >= 0.0, "node on a correct path has q {}", n.q);
            }
        }
        let solved = r
            .recorded
            .iter()
            .any(|&i| t.node(i).terminal.as_ref().unwrap().correct);
        let marked = t.graph.node_weights().any(|n| n.confident_wrong);
        if !r.recorded.is_empty() {
            assert_eq!(
                marked, !solved,
                "confident-wrong path marked exactly when unsolved"
            );
        }
    }
}

#[test]
fn every_method_trains_and_commits() {
    // Every registered method, so a new one is covered by its registry line.
    for &method in MethodKind::ALL {
        let mut cfg = small_config();
        cfg.method = method;
        cfg.warm_start.steps = 5;
        cfg.train.iterations = 2;
        cfg.eval.every = 0;
        let data = data();
        let mut sink = MemorySink::default();
        let (policy, key) = prepare_policy(&cfg, &data, &mut sink).unwrap();
        let mut trainer = Trainer::new(cfg.clone(), policy, data).unwrap();
        let summary = trainer.run("r", &key, &mut sink).unwrap();
        assert_eq!(summary.iterations, 2, "{method:?}");
        assert_eq!(sink.iterations.len(), 2);
        assert_eq!(sink.trees.len(), 2);
        assert_eq!(sink.trees[0].len(), cfg.train.problems_per_step);
        assert!(summary.generated_tokens > 0);
        // Every iteration's phases are measured spans that add up to its wall time;
        // the commit and checkpoint are charged to the iteration.
        let mut total = arbor::engine::training::phases::PhaseSeconds::default();
        for m in &sink.iterations {
            let s = m.seconds;
            assert!(s.wall > 0.0, "{method:?}: no wall time recorded");
            assert!(
                (s.total() - s.wall).abs() <= 0.05 * s.wall,
                "{method:?}: phases {s:?} sum to {} of wall {}",
                s.total(),
                s.wall
            );
            assert!(s.phases().iter().all(|p| p.1 >= 0.0), "{s:?}");
            assert!(s.sample > 0.0 && s.store > 0.0, "{s:?}");
            total.add(&s);
        }
        assert_eq!(
            summary.phase_seconds, total,
            "the summary sums the iterations"
        );
        if matches!(method, MethodKind::DeepSearch | MethodKind::TreeRl) {
            assert!(summary.expansions > 0, "{method:?}");
            assert!(summary.search_tokens_forwarded > 0);
            assert!(sink.iterations[0].search.is_some());
        }
    }
}
