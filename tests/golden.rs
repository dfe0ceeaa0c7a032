//! Golden runs: every method's fixed-seed run of a few iterations on the tiny model, its
//! summary, per-iteration records and trees compared with `tests/golden/<arm>.json`.
//!
//! Written before the method seam was cut (issue 23) so that moving code cannot move a
//! number: integers, strings and tree shapes must match exactly, floats within 1e-6.
//! Wall times are left out. Bless new goldens with `ARBOR_BLESS=1 cargo test --test
//! golden` only when a number moved for a stated reason (say it in the commit).
//!
//! The floats depend on the CPU's vector kernels (AVX-512, AVX2 or scalar), so a golden
//! records the tier it was written on and is compared only on that tier; on another the
//! test says so and compares the run with itself (a second run gives the same numbers).
use std::path::PathBuf;

use arbor::engine::task::countdown::{generate, Preset};
use arbor::engine::training::config::RunConfig;
use arbor::engine::training::sink::MemorySink;
use arbor::engine::training::split::RunData;
use arbor::engine::training::trainer::Trainer;
use arbor::engine::training::warm_start::prepare_policy;
use serde_json::{json, Value};

fn small_config(method: &str) -> RunConfig {
    let mut c = RunConfig {
        method: method.parse().unwrap(),
        seed: 7,
        ..RunConfig::default()
    };
    c.policy.hidden_size = 64;
    c.policy.intermediate_size = 128;
    c.policy.num_hidden_layers = 2;
    c.policy.num_attention_heads = 4;
    c.policy.num_key_value_heads = 2;
    c.warm_start.steps = 1200;
    c.warm_start.batch_size = 32;
    c.train.problems_per_step = 4;
    c.train.group_size = 4;
    c.train.max_tokens = 40;
    c.train.iterations = 3;
    c.eval.k = 2;
    c.eval.every = 2;
    c.search.width = 3;
    c.search.n = 4;
    c.adaptive.precheck = 8;
    c.adaptive.filter_k = 2;
    c.tree_distill.simulations = 6;
    c
}

/// The arms: a name and its settings.
fn arms() -> Vec<(&'static str, RunConfig)> {
    let mut paper = small_config("deepsearch");
    paper.search.paper_switches();
    let mut tps = small_config("grpo");
    tps.train.tokens_per_step = 120;
    tps.train.min_sequences_per_step = 4;
    let mut dense = small_config("grpo");
    dense.train.reward = arbor::engine::task::RewardKind::Dense;
    let mut cispo_kl = small_config("cispo");
    cispo_kl.cispo.kl_coef = 0.01;
    vec![
        ("grpo", small_config("grpo")),
        ("grpo_tokens_per_step", tps),
        ("grpo_dense", dense),
        ("dapo", small_config("dapo")),
        ("best_of_n", small_config("best_of_n")),
        ("cispo", small_config("cispo")),
        ("cispo_kl", cispo_kl),
        ("deepsearch_arbor", small_config("deepsearch")),
        ("deepsearch_paper", paper),
        ("tree_distill", small_config("tree_distill")),
    ]
}

fn data() -> RunData {
    let preset = Preset::by_name("default").unwrap();
    let split = generate(&preset, 11, 48, 8).unwrap();
    RunData {
        train: split.train,
        validation: Vec::new(),
        test: split.test,
        rules: arbor::engine::task::Rules::countdown(preset.rules),
        preset: preset.name,
    }
}

fn tier() -> &'static str {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return "avx512";
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return "avx2";
        }
    }
    "scalar"
}

/// Drops what differs between identical runs: times and clocks.
fn strip_times(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for k in [
                "wall_seconds",
                "store_seconds",
                "phase_seconds",
                "seconds",
                "unix_time",
                "filter_seconds",
                "scoring_seconds",
                "sample_seconds",
                "tokens_per_second",
            ] {
                m.remove(k);
            }
            for (_, x) in m.iter_mut() {
                strip_times(x);
            }
        }
        Value::Array(a) => a.iter_mut().for_each(strip_times),
        _ => {}
    }
}

/// Every arm starts from one warm start (the store's cache of it, shared).
fn run(cfg: &RunConfig, warm: &mut std::collections::HashMap<String, Vec<u8>>) -> Value {
    let data = data();
    let mut sink = MemorySink {
        warm: std::mem::take(warm),
        ..MemorySink::default()
    };
    let (policy, key) = prepare_policy(cfg, &data, &mut sink).unwrap();
    *warm = std::mem::take(&mut sink.warm);
    let mut trainer = Trainer::new(cfg.clone(), policy, data).unwrap();
    let summary = trainer.run("golden", &key, &mut sink).unwrap();
    let mut v = json!({
        "summary": summary,
        "iterations": sink.iterations,
        "trees": sink.trees,
        "checkpoints": sink.checkpoints,
    });
    strip_times(&mut v);
    v
}

/// The first difference between `a` and `b` (floats within 1e-6, absolute or relative).
fn diff(path: &str, a: &Value, b: &Value) -> Option<String> {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x.is_f64() || y.is_f64() {
                let (x, y) = (x.as_f64().unwrap(), y.as_f64().unwrap());
                let tol = 1e-6 * x.abs().max(y.abs()).max(1.0);
                ((x - y).abs() > tol).then(|| format!("{path}: {x} != {y}"))
            } else {
                (x != y).then(|| format!("{path}: {x} != {y}"))
            }
        }
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            keys.into_iter().find_map(|k| match (x.get(k), y.get(k)) {
                (Some(p), Some(q)) => diff(&format!("{path}.{k}"), p, q),
                _ => Some(format!("{path}.{k}: present on one side only")),
            })
        }
        (Value::Array(x), Value::Array(y)) => {
            if x.len() != y.len() {
                return Some(format!("{path}: length {} != {}", x.len(), y.len()));
            }
            x.iter()
                .zip(y)
                .enumerate()
                .find_map(|(i, (p, q))| diff(&format!("{path}[{i}]"), p, q))
        }
        _ => (a != b).then(|| format!("{path}: {a} != {b}")),
    }
}

fn golden_path(arm: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/golden")
        .join(format!("{arm}.json"))
}

#[test]
fn every_method_reproduces_its_golden_run() {
    let bless = std::env::var_os("ARBOR_BLESS").is_some();
    let mut failures = Vec::new();
    let mut warm = std::collections::HashMap::new();
    for (arm, cfg) in arms() {
        let got = run(&cfg, &mut warm);
        let path = golden_path(arm);
        if bless {
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            let file = json!({ "tier": tier(), "run": got });
            std::fs::write(&path, serde_json::to_string_pretty(&file).unwrap() + "\n").unwrap();
            continue;
        }
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("{}: {e}; bless with ARBOR_BLESS=1", path.display()));
        let want: Value = serde_json::from_str(&text).unwrap();
        if want["tier"] != tier() {
            eprintln!(
                "{arm}: golden written on {} kernels, this CPU runs {}; checking the run \
                 reproduces itself instead",
                want["tier"],
                tier()
            );
            if let Some(d) = diff(arm, &got, &run(&cfg, &mut warm)) {
                failures.push(format!("{arm} (run against itself): {d}"));
            }
            continue;
        }
        if let Some(d) = diff(arm, &want["run"], &got) {
            failures.push(d);
        }
    }
    assert!(
        failures.is_empty(),
        "golden runs moved:\n{}",
        failures.join("\n")
    );
}
