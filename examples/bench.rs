//! arbor's benchmark harness, release build: `cargo run --release --example bench`.
//! Prints one table and one JSON line. Figures are measured side by side in one run:
//!
//! * sampler tokens/s at batch 1, 16 and 64 (KV-cached decoding, 48 tokens per row);
//! * one policy-gradient training step on 128 sequences of 41 tokens;
//! * during a DeepSearch iteration: tokens pushed through the model / distinct tree
//!   tokens, search bookkeeping (selection, backup, frontier, pick) / search wall time,
//!   and judging (decoding, step judgement, verification) / search wall time;
//! * store write time / iteration wall time and stored bytes per node;
//! * explorer frame time for a 10,000-node tree (80x24 and 200x60);
//! * peak resident memory of the process;
//! * sampler speed against PyTorch eager on the same weights (bench/torch_sampler.py),
//!   and iteration time with the explorer attached / headless;
//! * search bookkeeping per expansion on synthetic trees of 100 to 100,000 nodes (a stub
//!   generator returns fixed children: no model, only the bookkeeping is timed);
//! * one core's fp32 matmul peak, and the sampler's and update step's useful FLOP/s as a
//!   fraction of it;
//! * the update step against PyTorch eager (bench/torch_update.py): the same step checked
//!   for equal loss, gradients and AdamW moments, then timed at batch 16 and 128;
//! * where DeepSearch iterations spend their time, by phase.
//!
//! `cargo run --release --example bench -- sampler|search|tree|profile|frame|ui` runs one
//! part (`profile`: the update step's time by stage, not in the full run).
use std::time::Instant;

use arbor::app::explorer::{App, Screen};
use arbor::app::theme::Theme;
use arbor::engine::methods::deepsearch::search::config::SearchConfig;
use arbor::engine::methods::deepsearch::search::mcts::search;
use arbor::engine::policy::sampler::{
    sample, Completion, Finish, Request, SampleStats, SamplingParams,
};
use arbor::engine::policy::tokenizer::BOS;
use arbor::engine::policy::Generator;
use arbor::engine::policy::{CharTokenizer, Policy};
use arbor::engine::rl::objective::Clip;
use arbor::engine::rl::optim::{AdamW, AdamWConfig};
use arbor::engine::rl::record::{GroupSource, NodeRecord, TreeRecord};
use arbor::engine::rl::update::{policy_update, PolicyObjective, Sample, UpdateSettings};
use arbor::engine::task::{countdown, Rules};
use arbor::engine::training::config::RunConfig;
use arbor::engine::training::registry::MethodKind;
use arbor::engine::training::split;
use arbor::engine::training::trainer::Trainer;
use arbor::engine::training::warm_start::{policy_config, prepare_policy};
use arbor::store::sink::StoreSink;
use arbor::store::{RunRecord, RunStatus, Store};
use candle_core::Device;
use rand::{Rng, SeedableRng};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> anyhow::Result<()> {
    arbor::default_threads();
    arbor::keep_freed_memory();
    // As arbor's binary does; ARBOR_KEEP_DENORMALS=1 measures without it.
    if std::env::var_os("ARBOR_KEEP_DENORMALS").is_none() {
        arbor::flush_denormals();
    }
    let mut rows: Vec<(String, f64, String)> = Vec::new();
    // Other processes on the machine distort timings, 2-thread ones most: say how busy
    // it was when the run started.
    let load = std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|l| l.split_whitespace().next().and_then(|v| v.parse().ok()))
        .unwrap_or(f64::NAN);
    rows.push((
        "machine load average (1 min) at start".into(),
        load,
        format!(
            "{} cores; above ~0 other processes share them",
            std::thread::available_parallelism().map_or(0, |n| n.get())
        ),
    ));
    // `-- sampler` (or search, frame, ui) runs one part only.
    let only = std::env::args().nth(1);
    if only.as_deref() == Some("update-child") {
        // Run by `update_vs_torch` with another RAYON_NUM_THREADS: arbor's update times.
        for (b, ms) in arbor_update_ms()? {
            println!("{}", serde_json::json!({"batch": b, "ms": ms}));
        }
        return Ok(());
    }
    if only.as_deref() == Some("update") {
        // The PyTorch comparison of the update step alone (part of `sampler`).
        let peak = matmul_peak()?;
        update_vs_torch(&mut rows, peak)?;
    }
    let want = |part: &str| only.as_deref().is_none_or(|o| o == part);
    if want("sampler") {
        sampler_and_step(&mut rows)?;
    }
    if want("search") {
        search_and_store(&mut rows)?;
    }
    if want("tree") {
        bookkeeping_scaling(&mut rows)?;
    }
    if only.as_deref() == Some("profile") {
        rows.push((
            "fp32 matmul GFLOP/s, one core (candle, 1024^3)".into(),
            matmul_peak()? / 1e9,
            "the machine's measured peak".into(),
        ));
        update_profile(&mut rows)?;
        gemm_shapes(&mut rows)?;
    }
    if want("frame") {
        frame_time(&mut rows)?;
    }
    if want("ui") {
        ui_attached(&mut rows)?;
    }
    if want("server") {
        server_generator(&mut rows)?;
    }
    rows.push((
        "peak resident memory MiB".into(),
        peak_mib(),
        "goal < 2048".into(),
    ));

    println!("{:<52} {:>12}  goal", "figure", "value");
    for (name, v, goal) in &rows {
        println!("{name:<52} {v:>12.3}  {goal}");
    }
    let json: serde_json::Map<String, serde_json::Value> = rows
        .iter()
        .map(|(k, v, _)| (k.clone(), serde_json::json!((v * 1000.0).round() / 1000.0)))
        .collect();
    println!("{}", serde_json::Value::Object(json));
    Ok(())
}

fn sampler_and_step(rows: &mut Vec<(String, f64, String)>) -> anyhow::Result<()> {
    let tok = CharTokenizer::default();
    let cfg = RunConfig::default();
    let policy = Policy::init(policy_config(&cfg, &tok), tok.into(), 0, &Device::Cpu)?;
    let model = policy.sampler_model()?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let prompt: Vec<u32> = std::iter::once(BOS)
        .chain(policy.tokenizer.encode("3 7 12:72\n")?)
        .collect();
    let params = SamplingParams {
        temperature: 1.0,
        max_tokens: 48,
        stop_at: None,
        eos: u32::MAX, // never stops early: fixed-length rows
    };
    let peak = matmul_peak()?;
    rows.push((
        "fp32 matmul GFLOP/s, one core (candle, 1024^3)".into(),
        peak / 1e9,
        "the machine's measured peak".into(),
    ));
    let pc = policy.config.clone();
    let mut arbor_tps = Vec::new();
    for batch in [1usize, 16, 64] {
        let reps = if batch == 1 { 20 } else { 5 };
        let req = [Request {
            context: &prompt,
            cache: None,
            copies: batch,
            max_tokens: None,
        }];
        sample(&model, &req, &params, false, &mut rng)?;
        let t = Instant::now();
        let (mut tokens, mut forwarded) = (0, 0);
        for _ in 0..reps {
            let st = sample(&model, &req, &params, false, &mut rng)?.1;
            tokens += st.generated_tokens;
            forwarded += st.forwarded_tokens;
        }
        let secs = t.elapsed().as_secs_f64();
        let tps = tokens as f64 / secs;
        arbor_tps.push((batch, tps));
        rows.push((
            format!("sampler tokens/s, batch {batch}"),
            tps,
            String::new(),
        ));
        // Useful work: every forwarded position through the blocks, the LM head for the
        // sampled tokens only, attention over the positions before each.
        let per_row = forwarded as f64 / (reps * batch) as f64;
        let rows_done = (reps * batch) as f64;
        let flops = rows_done
            * (2.0 * body_params(&pc) * per_row
                + 2.0 * head_params(&pc) * (tokens as f64 / rows_done)
                + attention_flops(&pc, per_row));
        rows.push((
            format!("sampler useful FLOP/s / peak, batch {batch}"),
            flops / secs / peak,
            if batch == 64 {
                "goal >= 0.25".into()
            } else {
                String::new()
            },
        ));
    }
    torch_ratio(&policy, &prompt, &arbor_tps, rows);
    let mut opt = AdamW::new(policy.vars(), AdamWConfig::new(1e-4, 0.0, 1.0))?;
    let samples: Vec<Sample> = (0..128)
        .map(|i| Sample {
            prompt: prompt.clone(),
            response: (0..30).map(|j| 3 + ((i + j) % 20) as u32).collect(),
            advantages: vec![if i % 2 == 0 { 1.0 } else { -1.0 }; 30],
            returns: Vec::new(),
        })
        .collect();
    let settings = UpdateSettings {
        objective: PolicyObjective::Clipped(Clip {
            low: 0.2,
            high: 0.28,
            dual: Some(10.0),
        }),
        value_coef: 0.0,
        kl_coef: 0.0,
        reference: None,
        minibatches: 1,
        epochs: 1,
        lr: 1e-4,
        warmup_steps: 0,
        compute: candle_core::DType::F32,
        poison: false,
    };
    policy_update(&policy, &mut opt, &samples, &settings, &mut rng)?;
    let t = Instant::now();
    for _ in 0..10 {
        policy_update(&policy, &mut opt, &samples, &settings, &mut rng)?;
    }
    let step_secs = t.elapsed().as_secs_f64() / 10.0;
    rows.push((
        "train step ms (128 seqs x 41 tokens)".into(),
        step_secs * 1000.0,
        String::new(),
    ));
    rows.push((
        "train step useful FLOP/s / peak (128 x 41)".into(),
        update_flops(&pc, 128, 40) / step_secs / peak,
        String::new(),
    ));
    update_vs_torch(rows, peak)?;
    Ok(())
}

/// One core's fp32 matmul throughput: a 1024 x 1024 by 1024 x 1024 candle matmul (the
/// bench runs on one thread), best of five.
fn matmul_peak() -> anyhow::Result<f64> {
    let n = 1024;
    let a = candle_core::Tensor::randn(0f32, 1.0, (n, n), &Device::Cpu)?;
    let b = candle_core::Tensor::randn(0f32, 1.0, (n, n), &Device::Cpu)?;
    a.matmul(&b)?;
    let mut best = f64::INFINITY;
    for _ in 0..5 {
        let t = Instant::now();
        let c = a.matmul(&b)?;
        std::hint::black_box(&c);
        best = best.min(t.elapsed().as_secs_f64());
    }
    Ok(2.0 * (n * n * n) as f64 / best)
}

/// Weights the transformer blocks multiply by (attention and MLP projections).
fn body_params(c: &arbor::engine::policy::PolicyConfig) -> f64 {
    let (h, hd) = (c.hidden_size, c.head_dim());
    let q = h * c.num_attention_heads * hd;
    let kv = 2 * h * c.num_key_value_heads * hd;
    let o = c.num_attention_heads * hd * h;
    let mlp = 3 * h * c.intermediate_size;
    (c.num_hidden_layers * (q + kv + o + mlp)) as f64
}

/// The LM head's weights (tied or not, it is one matmul per scored position).
fn head_params(c: &arbor::engine::policy::PolicyConfig) -> f64 {
    (c.hidden_size * c.vocab_size) as f64
}

/// Scores and weighted values of one row whose `positions` positions each attend to
/// every position up to themselves: 2 matmuls x 2 FLOP x layers x query width x keys.
fn attention_flops(c: &arbor::engine::policy::PolicyConfig, positions: f64) -> f64 {
    let width = (c.num_attention_heads * c.head_dim()) as f64;
    4.0 * c.num_hidden_layers as f64 * width * positions * (positions + 1.0) / 2.0
}

/// A training step's useful FLOPs: forward plus backward (twice the forward) over every
/// position of `batch` rows of `positions`, LM head included.
fn update_flops(c: &arbor::engine::policy::PolicyConfig, batch: usize, positions: usize) -> f64 {
    let p = positions as f64;
    let forward = 2.0 * (body_params(c) + head_params(c)) * p + attention_flops(c, p);
    3.0 * forward * batch as f64
}

/// A short warm start (so trees look like real ones), then DeepSearch iterations into a
/// temporary store.
fn search_and_store(rows: &mut Vec<(String, f64, String)>) -> anyhow::Result<()> {
    let mut cfg = RunConfig {
        method: MethodKind::DeepSearch,
        ..RunConfig::default()
    };
    cfg.warm_start.steps = 200;
    cfg.train.iterations = 4;
    cfg.eval.every = 0;
    cfg.eval.problems = 16;
    cfg.adaptive.enabled = false;
    let data = split::load(&cfg.data)?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("bench.sled"))?;
    let run = RunRecord::new("bench", "deepsearch", 1, cfg.to_toml());
    store.create_run(&run)?;
    let mut sink = StoreSink {
        store: store.clone(),
        run,
    };
    eprintln!("bench: warm start (200 steps)...");
    let (policy, key) = prepare_policy(&cfg, &data, &mut sink)?;

    // One search of 16 trees, timed directly.
    let model = policy.sampler_model()?;
    let problems: Vec<_> = data.train.iter().take(16).collect();
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(1);
    let t = Instant::now();
    let (results, stats) = search(
        &model,
        &policy.tokenizer,
        &problems,
        &cfg.search,
        1.0,
        &data.rules,
        &mut rng,
        &mut arbor::engine::rl::interrupt::never(),
    )?;
    let wall = t.elapsed().as_secs_f64();
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
    let book: f64 = results.iter().map(|r| r.bookkeeping_seconds).sum();
    let judging: f64 = results.iter().map(|r| r.judging_seconds).sum();
    rows.push((
        "search: tokens forwarded / distinct tree tokens".into(),
        stats.forwarded_tokens as f64 / distinct as f64,
        "goal <= 1.05".into(),
    ));
    rows.push((
        "search: bookkeeping / search wall time".into(),
        book / wall,
        "goal < 0.01".into(),
    ));
    rows.push((
        "search: judging (decode, steps, verifier) / wall".into(),
        judging / wall,
        String::new(),
    ));
    rows.push((
        "search: generated tokens/s".into(),
        stats.generated_tokens as f64 / wall,
        String::new(),
    ));

    let t = Instant::now();
    let mut trainer = Trainer::new(cfg, policy, data)?;
    let summary = trainer.run("bench", &key, &mut sink)?;
    let wall = t.elapsed().as_secs_f64();
    let (mut bytes, mut nodes) = (0, 0);
    for i in 1..=summary.iterations {
        let (b, n) = store.tree_bytes("bench", i)?;
        bytes += b;
        nodes += n;
    }
    rows.push((
        "store write time / iteration wall time".into(),
        summary.store_seconds / wall,
        "goal < 0.03".into(),
    ));
    rows.push((
        "store bytes per node".into(),
        bytes as f64 / nodes.max(1) as f64,
        String::new(),
    ));
    // Where the DeepSearch iterations' time went, measured span by span.
    let ph = summary.phase_seconds;
    for (name, secs) in ph.phases() {
        rows.push((
            format!("iteration time share: {name}"),
            secs / ph.wall.max(1e-12),
            String::new(),
        ));
    }
    rows.push((
        "iteration phases sum / iteration wall time".into(),
        ph.total() / ph.wall.max(1e-12),
        "goal 1 +- 0.05; other < 0.05".into(),
    ));
    Ok(())
}

/// Children without a model: every request gets `copies` distinct two-token steps, a
/// quarter of them ending (EOS), with log-probabilities drawn from the rng, so the tree
/// grows wide and deep and terminals are backed up while only bookkeeping costs time.
struct FixedChildren;

impl Generator for FixedChildren {
    fn max_context(&self) -> usize {
        usize::MAX / 2
    }

    fn generate(
        &self,
        requests: &[Request],
        _params: &SamplingParams,
        _keep_cache: bool,
        rng: &mut dyn rand::RngCore,
    ) -> arbor::engine::policy::generator::Result<(Vec<Completion>, SampleStats)> {
        let mut out = Vec::new();
        for (r, req) in requests.iter().enumerate() {
            for k in 0..req.copies {
                let ends = rng.next_u32() % 4 == 0;
                let tokens = vec![5 + k as u32, if ends { 2 } else { 9 }];
                let logprobs: Vec<f32> = tokens
                    .iter()
                    .map(|_| -((rng.next_u32() % 1000) as f32 + 1.0) / 400.0)
                    .collect();
                out.push(Completion {
                    request: r,
                    entropies: logprobs.iter().map(|l| -l).collect(),
                    tokens,
                    logprobs,
                    finish: if ends { Finish::Eos } else { Finish::Delimiter },
                    cache: None,
                });
            }
        }
        let generated = out.iter().map(|c| c.tokens.len() as u64).sum();
        let stats = SampleStats {
            forwarded_tokens: generated,
            forward_passes: 1,
            generated_tokens: generated,
        };
        Ok((out, stats))
    }
}

/// Search bookkeeping (selection, backup, frontier maintenance, terminal pick) per
/// expansion as one tree grows to 100, 1k, 10k and 100k nodes, at the paper's width 8 and
/// depth 64, with the stub generator above.
fn bookkeeping_scaling(rows: &mut Vec<(String, f64, String)>) -> anyhow::Result<()> {
    let tok: arbor::engine::policy::Tokenizer = CharTokenizer::default().into();
    let problem = countdown::problem("bench", vec![4, 6, 12], 22);
    let rules = Rules::default();
    let mut per_expansion = Vec::new();
    for size in [100usize, 1_000, 10_000, 100_000] {
        let cfg = SearchConfig {
            width: 8,
            n: usize::MAX,
            max_depth: 64,
            max_expansions: size / 8,
            max_tree_tokens: usize::MAX,
            step_check: false,
            ..SearchConfig::default()
        };
        // Small trees are grown many times (different seeds) so every size times at least
        // 12,500 expansions; the median tree's figure is reported (another process on
        // the machine disturbs single trees).
        let reps = (100_000 / size).max(9) as u64;
        let mut rates = Vec::new();
        let mut last = None;
        for seed in 0..reps {
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
            let (mut results, _) = search(
                &FixedChildren,
                &tok,
                &[&problem],
                &cfg,
                1.0,
                &rules,
                &mut rng,
                &mut arbor::engine::rl::interrupt::never(),
            )?;
            let r = &results[0];
            rates.push(r.bookkeeping_seconds * 1e6 / r.expansions.max(1) as f64);
            last = results.pop();
        }
        let r = last.ok_or_else(|| anyhow::anyhow!("search returned no tree"))?;
        rates.sort_by(f64::total_cmp);
        let us = rates[rates.len() / 2];
        per_expansion.push(us);
        let deepest = r
            .tree
            .graph
            .node_weights()
            .map(|n| n.depth)
            .max()
            .unwrap_or(0);
        rows.push((
            format!("search bookkeeping us/expansion, {size}-node tree"),
            us,
            format!(
                "{} nodes, {} expansions, depth {deepest}, median of {reps} trees",
                r.tree.len(),
                r.expansions
            ),
        ));
    }
    rows.push((
        "search bookkeeping growth 1k -> 100k nodes".into(),
        per_expansion[3] / per_expansion[1],
        "goal < 3".into(),
    ));
    Ok(())
}

/// A random 10,000-node tree drawn by the tree view.
fn frame_time(rows: &mut Vec<(String, f64, String)>) -> anyhow::Result<()> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(7);
    let nodes: Vec<NodeRecord> = (0..10_000u32)
        .map(|id| {
            let parent = (id > 0).then(|| rng.random_range(0..id));
            let terminal = id > 0 && rng.random_bool(0.3);
            NodeRecord {
                tokens: vec![5, 6, 7, 8, 9, 10],
                text: "12-7=5\n".into(),
                q: rng.random_range(-1.0..1.0),
                n: rng.random_range(0..5),
                entropy: rng.random_range(0.0..2.0),
                frontier_score: rng.random_bool(0.1).then_some(0.1),
                terminal_value: terminal.then_some(-1.0),
                correct: terminal.then(|| rng.random_bool(0.2)),
                reason: terminal.then(|| "wrong".into()),
                recorded: terminal && rng.random_bool(0.1),
                confident_wrong: rng.random_bool(0.01),
                ..NodeRecord::blank(id, parent, 0)
            }
        })
        .collect();
    let tree = TreeRecord {
        problem: "big".into(),
        prompt: "3 7 12:72\n".into(),
        source: GroupSource::Search,
        expansions: 0,
        cap_event: false,
        nodes,
        simulations: Vec::new(),
    };
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("f.sled"))?;
    let run = RunRecord {
        name: "frame".into(),
        method: "deepsearch".into(),
        seed: 1,
        status: RunStatus::Finished,
        created_unix: 0,
        config_toml: String::new(),
        warm_start: None,
        last_iteration: 0,
        summary: None,
        comparison: None,
    };
    store.create_run(&run)?;
    let bytes = postcard::to_allocvec(&tree)?;
    let metrics = arbor::engine::training::records::IterationMetrics {
        iteration: 1,
        method: "deepsearch".into(),
        ..Default::default()
    };
    store.commit_iteration(
        &run,
        1,
        &metrics,
        vec![(arbor::store::keys::tree_key("frame", 1, 0), bytes)],
    )?;
    let mut app = match App::open(
        store,
        "frame",
        Theme::load("dark").map_err(anyhow::Error::msg)?,
    ) {
        Ok(a) => a,
        Err(e) => anyhow::bail!("{e}"),
    };
    app.screen = Screen::Tree;
    app.views.tree.list.sel = 5_000;
    for (w, h) in [(80u16, 24u16), (200, 60)] {
        let mut term = Terminal::new(TestBackend::new(w, h))?;
        term.draw(|f| arbor::app::views::draw(f, &app))?;
        let reps = 50;
        let t = Instant::now();
        for i in 0..reps {
            app.views.tree.list.sel = 4_000 + i * 37;
            term.draw(|f| arbor::app::views::draw(f, &app))?;
        }
        rows.push((
            format!("explorer frame ms, 10,000-node tree, {w}x{h}"),
            t.elapsed().as_secs_f64() * 1000.0 / reps as f64,
            "goal < 16".into(),
        ));
    }
    Ok(())
}

/// Mean iteration time (sampling + update) of the same GRPO iterations, headless and
/// with an explorer attached through the run's socket (asking for its status and
/// redrawing at 10 Hz). The two
/// alternate (headless, attached, headless, ...) so machine noise hits both alike; the
/// ratio reported is the median of the pairs.
fn ui_attached(rows: &mut Vec<(String, f64, String)>) -> anyhow::Result<()> {
    let mut cfg = RunConfig::default();
    cfg.warm_start.steps = 50;
    cfg.train.iterations = 20;
    cfg.eval.every = 0;
    cfg.eval.problems = 8;
    cfg.eval.k = 2;
    let data = split::load(&cfg.data)?;
    let dir = tempfile::tempdir()?;
    let store = Store::open(&dir.path().join("ui.sled"))?;
    let config_toml = cfg.to_toml();
    let record = |name: &str| RunRecord::new(name, "grpo", 1, config_toml.clone());
    let mean_iteration = |name: &str| -> anyhow::Result<f64> {
        let its: Vec<arbor::engine::training::records::IterationMetrics> =
            store.iterations(name)?;
        Ok(its
            .iter()
            .map(|m| m.seconds.sample + m.seconds.update)
            .sum::<f64>()
            / its.len().max(1) as f64)
    };
    let headless_run = |name: &str| -> anyhow::Result<f64> {
        store.create_run(&record(name))?;
        let mut sink = StoreSink {
            store: store.clone(),
            run: record(name),
        };
        let (policy, key) = prepare_policy(&cfg, &data, &mut sink)?;
        Trainer::new(cfg.clone(), policy, data.clone())?.run(name, &key, &mut sink)?;
        mean_iteration(name)
    };
    let attached_run = |name: &str| -> anyhow::Result<f64> {
        store.create_run(&record(name))?;
        let handle = arbor::app::live::spawn_served(
            cfg.clone(),
            arbor::app::live::Begin::Fresh(data.clone()),
            store.clone(),
            record(name),
        )?;
        // The viewer attaches through the socket, as `arbor view` does.
        let client = loop {
            if let Some(c) = arbor::app::serve::client::Client::connect(store.path(), false)? {
                break c;
            }
            std::thread::sleep(std::time::Duration::from_millis(20));
        };
        let mut app = App::attach(
            client,
            store.path().to_path_buf(),
            Some(name),
            Theme::load("dark").map_err(anyhow::Error::msg)?,
            false,
        )?;
        let mut term = Terminal::new(TestBackend::new(120, 40))?;
        while app.finished.is_none() && app.live.is_some() {
            app.pump()?;
            term.draw(|f| arbor::app::views::draw(f, &app))?;
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        drop(app);
        handle
            .join()
            .map_err(|_| anyhow::anyhow!("the trainer thread panicked"))?
            .map_err(anyhow::Error::msg)?;
        mean_iteration(name)
    };
    // The first run trains and caches the warm start; it is not timed.
    headless_run("warm")?;
    let (mut h, mut a, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..3 {
        let x = headless_run(&format!("headless-{i}"))?;
        let y = attached_run(&format!("attached-{i}"))?;
        h.push(x);
        a.push(y);
        ratios.push(y / x);
    }
    ratios.sort_by(f64::total_cmp);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    rows.push((
        "iteration ms, headless (3 runs x 20 it)".into(),
        mean(&h) * 1000.0,
        String::new(),
    ));
    rows.push((
        "iteration ms, explorer attached (3 runs x 20 it)".into(),
        mean(&a) * 1000.0,
        String::new(),
    ));
    rows.push((
        "iteration time attached / headless (median pair)".into(),
        ratios[1],
        format!(
            "goal ~1.0 (pairs {})",
            ratios
                .iter()
                .map(|r| format!("{r:.2}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    ));
    Ok(())
}

/// Tokens per second of the candle sampler and of the llama.cpp server generator (a
/// real `llama-server` on arbor's GGUF export, rescoring included) on the same tiny model
/// and requests, side by side. Needs `LLAMA_SERVER` (scripts/llamacpp_check.sh builds
/// one); skipped with a row saying so otherwise.
fn server_generator(rows: &mut Vec<(String, f64, String)>) -> anyhow::Result<()> {
    use arbor::engine::policy::generator::Generator;
    use arbor::engine::policy::server::{wire::Engine, ServerConfig, ServerGenerator};
    let Ok(bin) = std::env::var("LLAMA_SERVER") else {
        rows.push((
            "llama.cpp server generator: not measured".into(),
            f64::NAN,
            "set LLAMA_SERVER (scripts/llamacpp_check.sh builds llama-server)".into(),
        ));
        return Ok(());
    };
    let tok = CharTokenizer::default();
    let cfg = RunConfig::default();
    let policy = Policy::init(policy_config(&cfg, &tok), tok.into(), 0, &Device::Cpu)?;
    let model = policy.sampler_model()?;
    let dir = tempfile::tempdir()?;
    let gguf = dir.path().join("bench.gguf");
    arbor::engine::policy::gguf::save_gguf(
        &policy,
        &gguf,
        arbor::engine::policy::checkpoint::SaveDtype::F32,
    )?;
    let port = 18500 + (std::process::id() % 400) as u16;
    let mut server = std::process::Command::new(&bin)
        .arg("-m")
        .arg(&gguf)
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .args(["-c", "4096", "-t", "1", "--parallel", "16", "--no-warmup"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let url = format!("http://127.0.0.1:{port}");
    let result = (|| -> anyhow::Result<()> {
        let start = Instant::now();
        while ureq::get(&format!("{url}/health"))
            .call()
            .map_or(true, |r| !r.status().is_success())
        {
            anyhow::ensure!(start.elapsed().as_secs() < 60, "llama-server did not start");
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let gen = ServerGenerator::new(
            ServerConfig {
                engine: Engine::Llamacpp,
                url: url.clone(),
                max_in_flight: 16,
                timeout: std::time::Duration::from_secs(120),
                retries: 1,
                model: None,
            },
            &model,
            None,
        );
        let prompt = bench_prompt(&CharTokenizer::default())?;
        let params = SamplingParams {
            temperature: 1.0,
            max_tokens: 48,
            stop_at: None,
            eos: u32::MAX,
        };
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
        for batch in [1usize, 16] {
            let req = [Request {
                context: &prompt,
                cache: None,
                copies: batch,
                max_tokens: None,
            }];
            let mut tps = Vec::new();
            for g in [&model as &dyn Generator, &gen as &dyn Generator] {
                g.generate(&req, &params, false, &mut rng)?;
                let t = Instant::now();
                let mut tokens = 0;
                for _ in 0..5 {
                    tokens += g
                        .generate(&req, &params, false, &mut rng)?
                        .1
                        .generated_tokens;
                }
                tps.push(tokens as f64 / t.elapsed().as_secs_f64());
            }
            rows.push((
                format!("candle sampler tokens/s, batch {batch} (same run)"),
                tps[0],
                String::new(),
            ));
            rows.push((
                format!("llama.cpp server generator tokens/s, batch {batch}"),
                tps[1],
                "with the trainer's rescoring of every sample".into(),
            ));
        }
        rows.push((
            "llama.cpp vs trainer mean |log-prob| difference".into(),
            gen.stats().mean_logprob_abs_diff(),
            "f32 both sides".into(),
        ));
        Ok(())
    })();
    let _ = server.kill();
    let _ = server.wait();
    result
}

/// PyTorch eager (transformers' Qwen2ForCausalLM, CPU, same threads) decoding the same
/// weights: the policy is exported in Hugging Face layout and bench/torch_sampler.py run
/// with `ARBOR_TORCH_PYTHON` (a python with torch and transformers) or bench/run_torch.sh
/// (which makes bench/.venv from PyPI on first use). Reported as arbor / PyTorch.
fn torch_ratio(
    policy: &Policy,
    prompt: &[u32],
    arbor_tps: &[(usize, f64)],
    rows: &mut Vec<(String, f64, String)>,
) {
    let outcome = (|| -> anyhow::Result<Vec<(usize, f64)>> {
        let dir = tempfile::tempdir()?;
        arbor::engine::policy::checkpoint::save_hf(
            policy,
            dir.path(),
            arbor::engine::policy::checkpoint::SaveDtype::F32,
        )?;
        // Logits of the prompt, to check both sides compute the same model.
        let model = policy.sampler_model()?;
        let x = candle_core::Tensor::new(prompt, &Device::Cpu)?.unsqueeze(0)?;
        let logits: Vec<Vec<f32>> = model.forward_train(&x)?.squeeze(0)?.to_vec2()?;
        let check = dir.path().join("logits.json");
        std::fs::write(
            &check,
            serde_json::json!({"ids": prompt, "logits": logits}).to_string(),
        )?;
        let threads = std::thread::available_parallelism().map_or(2, |n| n.get());
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let script = root.join("bench/torch_sampler.py");
        if std::env::var_os("ARBOR_TORCH_PYTHON").is_none() && !root.join("bench/.venv").exists() {
            eprintln!("installing torch and transformers into bench/.venv (first run only)...");
        }
        let torch = || match std::env::var_os("ARBOR_TORCH_PYTHON") {
            Some(py) => {
                let mut c = std::process::Command::new(py);
                c.arg(&script);
                c
            }
            None => std::process::Command::new(root.join("bench/run_torch.sh")),
        };
        let ids: Vec<String> = prompt.iter().map(|i| i.to_string()).collect();
        // PyTorch's CPU threads can hurt on tiny matrices: it is measured with 1 thread and
        // with all of them, and its faster result is the one compared.
        let mut counts = vec![1, threads];
        counts.dedup();
        let mut res: Vec<(usize, f64)> = Vec::new();
        for (i, t) in counts.iter().enumerate() {
            let out = torch()
                .arg("--model")
                .arg(dir.path())
                .args([
                    "--threads",
                    &t.to_string(),
                    "--batches",
                    "1,16",
                    "--reps",
                    "20,5",
                ])
                .args(["--new-tokens", "48", "--prompt", &ids.join(",")])
                .arg("--check-logits")
                .arg(&check)
                .output()?;
            if !out.status.success() {
                anyhow::bail!(
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                        .lines()
                        .last()
                        .unwrap_or("")
                );
            }
            for line in String::from_utf8_lossy(&out.stdout).lines() {
                let v: serde_json::Value = serde_json::from_str(line)?;
                if let (0, Some(d)) = (i, v["max_abs_logit_diff"].as_f64()) {
                    rows.push((
                        "PyTorch vs arbor max |logit diff|".into(),
                        d,
                        "same model: < 1e-3".into(),
                    ));
                }
                if let (Some(b), Some(tps)) = (v["batch"].as_u64(), v["tokens_per_s"].as_f64()) {
                    rows.push((
                        format!("PyTorch eager tokens/s, batch {b}, {t} thread(s)"),
                        tps,
                        String::new(),
                    ));
                    match res.iter_mut().find(|(x, _)| *x == b as usize) {
                        Some(r) => r.1 = r.1.max(tps),
                        None => res.push((b as usize, tps)),
                    }
                }
            }
        }
        Ok(res)
    })();
    match outcome {
        Ok(torch) => {
            for (b, t) in torch {
                rows.push((
                    format!("PyTorch eager tokens/s, batch {b}"),
                    t,
                    String::new(),
                ));
                if let Some((_, a)) = arbor_tps.iter().find(|(x, _)| *x == b) {
                    rows.push((
                        format!("sampler speed arbor / PyTorch (faster setting), batch {b}"),
                        a / t,
                        "goal >= 1.5".into(),
                    ));
                }
            }
        }
        Err(e) => rows.push((
            "PyTorch comparison: not measured".into(),
            f64::NAN,
            format!("{e}"),
        )),
    }
}

fn peak_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|v| v.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// The update comparison's batch: `batch` sequences of the bench prompt and 30 response
/// tokens, advantages in -2..=2 per token (zero, positive, and negative ones that reach
/// the dual clip).
fn update_samples(prompt: &[u32], batch: usize) -> Vec<Sample> {
    (0..batch)
        .map(|i| Sample {
            prompt: prompt.to_vec(),
            response: (0..30).map(|j| 3 + ((i * 7 + j) % 20) as u32).collect(),
            advantages: (0..30).map(|j| ((i + 3 * j) % 5) as f32 - 2.0).collect(),
            returns: Vec::new(),
        })
        .collect()
}

fn bench_prompt(tok: &CharTokenizer) -> anyhow::Result<Vec<u32>> {
    Ok(std::iter::once(BOS)
        .chain(tok.encode("3 7 12:72\n").map_err(anyhow::Error::msg)?)
        .collect())
}

fn bench_adamw(policy: &Policy) -> anyhow::Result<AdamW> {
    Ok(AdamW::new(policy.vars(), AdamWConfig::new(1e-4, 0.0, 1.0))?)
}

const UPDATE_CLIP: Clip = Clip {
    low: 0.2,
    high: 0.28,
    dual: Some(10.0),
};

fn fresh_policy() -> anyhow::Result<Policy> {
    let tok = CharTokenizer::default();
    let cfg = RunConfig::default();
    Ok(Policy::init(
        policy_config(&cfg, &tok),
        tok.into(),
        0,
        &Device::Cpu,
    )?)
}

/// The batch sizes in `ARBOR_UPDATE_BATCHES` (`16` or `16,128`), which `update-child` and
/// `profile` time instead of their own (for a profiler).
fn update_batches() -> Option<Vec<usize>> {
    let v = std::env::var("ARBOR_UPDATE_BATCHES").ok()?;
    Some(v.split(',').filter_map(|b| b.trim().parse().ok()).collect())
}

/// Arbor's update step (`policy_update`: forward with gradients, clipped loss, backward,
/// AdamW) in ms at batch 16 and 128, on this process's threads: the median of 20 (batch
/// 16) or 5 (batch 128) timed steps after one warm-up step.
fn arbor_update_ms() -> anyhow::Result<Vec<(usize, f64)>> {
    let policy = fresh_policy()?;
    let prompt = bench_prompt(&CharTokenizer::default())?;
    let mut opt = bench_adamw(&policy)?;
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(0);
    let settings = UpdateSettings {
        objective: PolicyObjective::Clipped(UPDATE_CLIP),
        value_coef: 0.0,
        kl_coef: 0.0,
        reference: None,
        minibatches: 1,
        epochs: 1,
        lr: 1e-4,
        warmup_steps: 0,
        compute: candle_core::DType::F32,
        poison: false,
    };
    let mut out = Vec::new();
    for batch in update_batches().unwrap_or_else(|| vec![16, 128]) {
        let samples = update_samples(&prompt, batch);
        policy_update(&policy, &mut opt, &samples, &settings, &mut rng)?;
        let reps = if batch == 16 { 20 } else { 5 };
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = Instant::now();
            policy_update(&policy, &mut opt, &samples, &settings, &mut rng)?;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
        // The median step, as bench/torch_update.py reports.
        times.sort_by(f64::total_cmp);
        out.push((batch, times[reps / 2]));
    }
    Ok(out)
}

/// One update step on batch 16 from the policy's current weights, written for the
/// PyTorch side to check: the loss, every gradient (`grad.<name>`) and the AdamW moments
/// after the step (`m.<name>`, `v.<name>`).
fn arbor_reference_step(
    policy: &Policy,
    prompt: &[u32],
    dir: &std::path::Path,
) -> anyhow::Result<()> {
    use arbor::engine::rl::batch::{pack, Sequence};
    let samples = update_samples(prompt, 16);
    let seqs: Vec<Sequence> = samples
        .iter()
        .map(|s| Sequence {
            prompt: &s.prompt,
            response: &s.response,
            advantages: &s.advantages,
            returns: &s.returns,
        })
        .collect();
    let b = pack(&seqs, &Device::Cpu)?;
    // The update step's own path (the taped body on the CPU), so the check covers it.
    let model = policy.trainable()?;
    let taped = model.hidden_taped(&b.ids)?;
    let logp =
        arbor::engine::policy::model::token_logprobs(&model.logits(taped.hidden())?, &b.targets)?;
    let loss = arbor::engine::rl::objective::policy_loss(
        &logp,
        &logp.detach(),
        &b.advantages,
        &b.mask,
        &UPDATE_CLIP,
    )?;
    let grads = taped.backward(&model, &loss)?;
    let mut out = std::collections::HashMap::new();
    for (name, var) in policy.vars() {
        let g = grads
            .get(var.as_tensor())
            .ok_or_else(|| anyhow::anyhow!("no gradient for {name}"))?;
        out.insert(format!("grad.{name}"), g.clone());
    }
    let mut opt = bench_adamw(policy)?;
    opt.step(&grads, 1e-4)?;
    for (name, t) in opt.state_tensors() {
        out.insert(name, t);
    }
    candle_core::safetensors::save(&out, dir.join("arbor_step.safetensors"))?;
    let batches: serde_json::Map<String, serde_json::Value> = [16usize, 128]
        .iter()
        .map(|&n| -> anyhow::Result<(String, serde_json::Value)> {
            let s = update_samples(prompt, n);
            let seqs: Vec<Sequence> = s
                .iter()
                .map(|s| Sequence {
                    prompt: &s.prompt,
                    response: &s.response,
                    advantages: &s.advantages,
                    returns: &s.returns,
                })
                .collect();
            let b = pack(&seqs, &Device::Cpu)?;
            Ok((
                n.to_string(),
                serde_json::json!({
                    "ids": b.ids.to_vec2::<u32>()?,
                    "targets": b.targets.to_vec2::<u32>()?,
                    "mask": b.mask.to_vec2::<f32>()?,
                    "advantages": b.advantages.to_vec2::<f32>()?,
                }),
            ))
        })
        .collect::<anyhow::Result<_>>()?;
    std::fs::write(
        dir.join("batches.json"),
        serde_json::json!({
            "loss": loss.to_scalar::<f32>()?,
            "clip": {"low": UPDATE_CLIP.low, "high": UPDATE_CLIP.high, "dual": UPDATE_CLIP.dual},
            "adamw": {"lr": 1e-4, "beta1": 0.9, "beta2": 0.999, "eps": 1e-8, "max_grad_norm": 1.0},
            "batches": batches,
        })
        .to_string(),
    )?;
    Ok(())
}

/// Arbor's update times from a child process on `threads` threads (`keep_denormals`:
/// without [`arbor::flush_denormals`]).
fn update_child(threads: usize, keep_denormals: bool) -> anyhow::Result<Vec<(usize, f64)>> {
    let mut cmd = std::process::Command::new(std::env::current_exe()?);
    cmd.arg("update-child")
        .env("RAYON_NUM_THREADS", threads.to_string());
    if keep_denormals {
        cmd.env("ARBOR_KEEP_DENORMALS", "1");
    }
    let out = cmd.output()?;
    if !out.status.success() {
        anyhow::bail!(
            "the {threads}-thread update child failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| -> anyhow::Result<(usize, f64)> {
            let v: serde_json::Value = serde_json::from_str(l)?;
            Ok((
                v["batch"].as_u64().unwrap_or(0) as usize,
                v["ms"].as_f64().unwrap_or(f64::NAN),
            ))
        })
        .collect()
}

/// The update step against PyTorch eager (bench/torch_update.py through
/// bench/run_torch.sh, or `ARBOR_TORCH_PYTHON`): the same weights and batch, checked for
/// the same loss, gradients and AdamW moments, then timed at batch 16 and 128 with 1 and
/// 2 threads on both sides (arbor's figures come from a child process with
/// RAYON_NUM_THREADS set). The sides take turns over `ARBOR_BENCH_ROUNDS` rounds (3);
/// each figure is the best round's median step. Reported as PyTorch time / arbor time.
fn update_vs_torch(rows: &mut Vec<(String, f64, String)>, peak: f64) -> anyhow::Result<()> {
    let policy = fresh_policy()?;
    let pc = policy.config.clone();
    let prompt = bench_prompt(&CharTokenizer::default())?;
    let dir = tempfile::tempdir()?;
    arbor::engine::policy::checkpoint::save_hf(
        &policy,
        dir.path(),
        arbor::engine::policy::checkpoint::SaveDtype::F32,
    )?;
    arbor_reference_step(&policy, &prompt, dir.path())?;
    drop(policy);
    let threads = std::thread::available_parallelism()
        .map_or(2, |n| n.get())
        .min(2);
    let mut counts = vec![1, threads];
    counts.dedup();
    // Arbor's update before denormals were flushed, for the record (1 thread).
    for (b, m) in update_child(1, true)? {
        rows.push((
            format!("update step ms, batch {b}, 1 thread(s): arbor, denormals kept"),
            m,
            "before flush_denormals".into(),
        ));
    }
    // The machine's speed drifts over minutes (other tenants), so the two sides take
    // turns: each round times arbor, then PyTorch (default, then with denormals
    // flushed) at each thread count, and every figure is its best round.
    let rounds: usize = std::env::var("ARBOR_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3)
        .max(1);
    let keep_min = |v: &mut Vec<(usize, usize, f64)>, t: usize, b: usize, ms: f64| match v
        .iter_mut()
        .find(|x| x.0 == t && x.1 == b)
    {
        Some(x) => x.2 = x.2.min(ms),
        None => v.push((t, b, ms)),
    };
    let mut arbor: Vec<(usize, usize, f64)> = Vec::new();
    let mut torch_runs: Vec<(usize, usize, f64)> = Vec::new();
    let mut torch_flushed: Vec<(usize, usize, f64)> = Vec::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("bench/torch_update.py");
    let mut checked = false;
    let mut torch_failed: Option<anyhow::Error> = None;
    for _ in 0..rounds {
        for &t in &counts {
            for (b, m) in update_child(t, false)? {
                keep_min(&mut arbor, t, b, m);
            }
            if torch_failed.is_some() {
                continue;
            }
            for flush in [false, true] {
                let mut cmd = match std::env::var_os("ARBOR_TORCH_PYTHON") {
                    Some(py) => {
                        let mut c = std::process::Command::new(py);
                        c.arg(&script);
                        c
                    }
                    None => {
                        let mut c = std::process::Command::new(root.join("bench/run_torch.sh"));
                        c.arg("torch_update.py");
                        c
                    }
                };
                cmd.arg("--model")
                    .arg(dir.path())
                    .arg("--threads")
                    .arg(t.to_string());
                if !checked {
                    cmd.arg("--check")
                        .arg(dir.path().join("arbor_step.safetensors"));
                }
                if flush {
                    cmd.arg("--flush-denormal");
                }
                let out = cmd.output()?;
                if !out.status.success() {
                    torch_failed = Some(anyhow::anyhow!(
                        "{}",
                        String::from_utf8_lossy(&out.stderr)
                            .lines()
                            .last()
                            .unwrap_or("")
                    ));
                    break;
                }
                for line in String::from_utf8_lossy(&out.stdout).lines() {
                    let v: serde_json::Value = serde_json::from_str(line)?;
                    if let Some(c) = v.get("check") {
                        checked = true;
                        for (key, label, goal) in [
                            (
                                "loss_rel",
                                "update check: |loss diff| / |loss|, x1e-6",
                                "same step: < 100 (1e-4)",
                            ),
                            (
                                "grad_rel",
                                "update check: max |grad diff| / max |grad|, x1e-6",
                                "same step: < 1000 (1e-3)",
                            ),
                            (
                                "m_rel",
                                "update check: max |AdamW m diff| / max |m|, x1e-6",
                                "same step: < 1000 (1e-3)",
                            ),
                            (
                                "v_rel",
                                "update check: max |AdamW v diff| / max |v|, x1e-6",
                                "same step: < 1000 (1e-3)",
                            ),
                        ] {
                            // In millionths, so the table's three decimals show them.
                            rows.push((
                                label.into(),
                                1e6 * c[key].as_f64().unwrap_or(f64::NAN),
                                goal.into(),
                            ));
                        }
                    }
                    if let (Some(b), Some(ms)) = (v["batch"].as_u64(), v["ms"].as_f64()) {
                        let b = b as usize;
                        let side = if flush {
                            &mut torch_flushed
                        } else {
                            &mut torch_runs
                        };
                        keep_min(side, t, b, ms);
                    }
                }
            }
        }
    }
    for &(t, b, m) in &arbor {
        rows.push((
            format!("update step ms, batch {b}, {t} thread(s): arbor"),
            m,
            format!("best of {rounds} rounds, each the median step"),
        ));
        if t == 1 {
            rows.push((
                format!("update useful FLOP/s / peak, batch {b}, 1 thread"),
                update_flops(&pc, b, 40) / (m / 1000.0) / peak,
                String::new(),
            ));
        }
    }
    for (side, how) in [(&torch_runs, ""), (&torch_flushed, ", denormals flushed")] {
        for &(t, b, ms) in side {
            rows.push((
                format!("update step ms, batch {b}, {t} thread(s): PyTorch{how}"),
                ms,
                format!("best of {rounds} rounds, each the median step"),
            ));
        }
    }
    let outcome = (|| -> anyhow::Result<()> {
        if let Some(e) = torch_failed {
            return Err(e);
        }
        // PyTorch's time per (threads, batch): the faster of its two denormal settings.
        let mut torch_best: Vec<(usize, usize, f64)> = Vec::new();
        for &(t, b, ms) in torch_runs.iter().chain(&torch_flushed) {
            keep_min(&mut torch_best, t, b, ms);
        }
        for &(t, b, ms) in &torch_best {
            if let Some(&(_, _, a)) = arbor.iter().find(|x| x.0 == t && x.1 == b) {
                rows.push((
                    format!(
                        "update speed arbor / PyTorch (faster setting), batch {b}, {t} thread(s)"
                    ),
                    ms / a,
                    "goal >= 1.5".into(),
                ));
            }
        }
        // The figure: each side at its faster thread count.
        for b in [16usize, 128] {
            let best = |v: &[(usize, usize, f64)]| {
                v.iter()
                    .filter(|x| x.1 == b)
                    .map(|x| x.2)
                    .fold(f64::INFINITY, f64::min)
            };
            rows.push((
                format!("update speed arbor / PyTorch, batch {b}, each at its faster threads"),
                best(&torch_best) / best(&arbor),
                "goal >= 1.5".into(),
            ));
        }
        Ok(())
    })();
    if let Err(e) = outcome {
        rows.push((
            "PyTorch update comparison: not measured".into(),
            f64::NAN,
            format!("{e}"),
        ));
    }
    Ok(())
}

/// Where arbor's update step spends its time at batch 128 (one thread): packing, the
/// model view, the forward to logits, log-probabilities and loss, backward, AdamW.
fn update_profile(rows: &mut Vec<(String, f64, String)>) -> anyhow::Result<()> {
    use arbor::engine::rl::batch::{pack, Sequence};
    let policy = fresh_policy()?;
    let prompt = bench_prompt(&CharTokenizer::default())?;
    let mut opt = bench_adamw(&policy)?;
    // The first of `ARBOR_UPDATE_BATCHES`, else 128.
    let batch = update_batches()
        .and_then(|b| b.first().copied())
        .unwrap_or(128);
    let samples = update_samples(&prompt, batch);
    let mut spans = [0f64; 6];
    let reps = 4;
    for rep in 0..=reps {
        let mut t = Instant::now();
        let mut lap = |k: usize, spans: &mut [f64; 6]| {
            if rep > 0 {
                spans[k] += t.elapsed().as_secs_f64();
            }
            t = Instant::now();
        };
        let seqs: Vec<Sequence> = samples
            .iter()
            .map(|s| Sequence {
                prompt: &s.prompt,
                response: &s.response,
                advantages: &s.advantages,
                returns: &s.returns,
            })
            .collect();
        let b = pack(&seqs, &Device::Cpu)?;
        lap(0, &mut spans);
        let model = policy.trainable()?;
        lap(1, &mut spans);
        let taped = model.hidden_taped(&b.ids)?;
        let logits = model.logits(taped.hidden())?;
        lap(2, &mut spans);
        let logp = arbor::engine::policy::model::token_logprobs(&logits, &b.targets)?;
        let loss = arbor::engine::rl::objective::policy_loss(
            &logp,
            &logp.detach(),
            &b.advantages,
            &b.mask,
            &UPDATE_CLIP,
        )?;
        loss.to_scalar::<f32>()?;
        lap(3, &mut spans);
        let grads = taped.backward(&model, &loss)?;
        lap(4, &mut spans);
        opt.step(&grads, 1e-4)?;
        lap(5, &mut spans);
    }
    for (k, name) in [
        "pack",
        "model view",
        "forward to logits",
        "log-probs and loss",
        "backward",
        "AdamW",
    ]
    .iter()
    .enumerate()
    {
        rows.push((
            format!("update profile ms, batch {batch}: {name}"),
            spans[k] * 1000.0 / reps as f64,
            String::new(),
        ));
    }
    Ok(())
}

/// GFLOP/s of the matmul shapes one update step at batch 128 (40 positions) is made of:
/// where candle's gemm is slow on them.
fn gemm_shapes(rows: &mut Vec<(String, f64, String)>) -> anyhow::Result<()> {
    use candle_core::Tensor;
    let d = Device::Cpu;
    let r = |s: &[usize]| Tensor::randn(0f32, 1.0, s, &d);
    let time = |f: &dyn Fn() -> candle_core::Result<Tensor>, flops: f64| -> anyhow::Result<f64> {
        f()?;
        let mut best = f64::INFINITY;
        for _ in 0..5 {
            let t = Instant::now();
            std::hint::black_box(f()?);
            best = best.min(t.elapsed().as_secs_f64());
        }
        Ok(flops / best / 1e9)
    };
    let x = r(&[5120, 128])?;
    let w = r(&[384, 128])?;
    let g = r(&[5120, 384])?;
    let q = r(&[128, 4, 40, 32])?;
    let k = r(&[128, 4, 40, 32])?;
    let p = r(&[128, 4, 40, 40])?;
    type Case<'a> = (
        &'a str,
        Box<dyn Fn() -> candle_core::Result<Tensor> + 'a>,
        f64,
    );
    let cases: Vec<Case> = vec![
        (
            "x W^T (5120x128 . 128x384)",
            Box::new(|| x.matmul(&w.t()?)),
            2.0 * 5120.0 * 128.0 * 384.0,
        ),
        (
            "g W (5120x384 . 384x128)",
            Box::new(|| g.matmul(&w)),
            2.0 * 5120.0 * 128.0 * 384.0,
        ),
        (
            "x^T g (128x5120 . 5120x384)",
            Box::new(|| x.t()?.matmul(&g)),
            2.0 * 5120.0 * 128.0 * 384.0,
        ),
        (
            "g^T x (384x5120 . 5120x128)",
            Box::new(|| g.t()?.matmul(&x)),
            2.0 * 5120.0 * 128.0 * 384.0,
        ),
        (
            "q k^T (512 x 40x32 . 32x40)",
            Box::new(|| q.matmul(&k.t()?)),
            2.0 * 512.0 * 40.0 * 40.0 * 32.0,
        ),
        (
            "p v (512 x 40x40 . 40x32)",
            Box::new(|| p.matmul(&k)),
            2.0 * 512.0 * 40.0 * 40.0 * 32.0,
        ),
        (
            "p^T q (512 x 40x40 . 40x32)",
            Box::new(|| p.t()?.matmul(&q)),
            2.0 * 512.0 * 40.0 * 40.0 * 32.0,
        ),
    ];
    for (name, f, flops) in &cases {
        rows.push((
            format!("gemm GFLOP/s: {name}"),
            time(f.as_ref(), *flops)?,
            String::new(),
        ));
    }
    Ok(())
}
