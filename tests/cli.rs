//! The command-line contract, end to end through the real binary on a tiny model.
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn arbor(args: &[&str], cwd: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(args)
        .current_dir(cwd)
        .output()
        .expect("the arbor binary runs")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn last_json(o: &Output) -> serde_json::Value {
    let out = String::from_utf8_lossy(&o.stdout);
    let line = out
        .lines()
        .last()
        .unwrap_or_else(|| panic!("no stdout; stderr: {}", stderr(o)));
    serde_json::from_str(line).unwrap_or_else(|e| panic!("last line {line:?} is not JSON: {e}"))
}

/// A config small enough to train in seconds.
const TINY: &str = r#"
seed = 3
[data]
train_size = 300
test_size = 12
[policy]
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 1
num_attention_heads = 2
num_key_value_heads = 1
[warm_start]
steps = 30
batch_size = 16
[train]
iterations = 3
problems_per_step = 4
group_size = 4
max_tokens = 40
checkpoint_every = 2
[eval]
every = 2
k = 4
"#;

fn tiny_config(dir: &Path) -> PathBuf {
    let p = dir.join("tiny.toml");
    std::fs::write(&p, TINY).unwrap();
    p
}

fn check_eval(v: &serde_json::Value, k: u64, problems: u64) {
    for field in ["pass@1", "pass@k"] {
        let x = v[field]
            .as_f64()
            .unwrap_or_else(|| panic!("{field} missing in {v}"));
        assert!((0.0..=1.0).contains(&x), "{field} = {x}");
    }
    assert_eq!(v["k"], k);
    assert_eq!(v["problems"], problems);
}

#[test]
fn train_then_eval_follow_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let store = dir.path().join("s.sled");
    let o = arbor(
        &[
            "train",
            "--method",
            "grpo",
            "--headless",
            "--seed",
            "5",
            "--config",
            cfg.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
            "--run",
            "t1",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let s = last_json(&o);
    assert_eq!(s["run"], "t1");
    assert_eq!(s["method"], "grpo");
    assert_eq!(s["seed"], 5);
    assert_eq!(s["iterations"], 3);
    assert!(s["generated_tokens"].as_u64().unwrap() > 0);
    assert!(s["wall_seconds"].as_f64().unwrap() > 0.0);
    check_eval(&s["eval_start"], 4, 12);
    check_eval(&s["eval_end"], 4, 12);
    // The warm start is a visible phase, not a silent wait.
    assert!(stderr(&o).contains("warm start"), "{}", stderr(&o));

    let e = arbor(
        &["eval", "--run", "t1", "--store", store.to_str().unwrap()],
        dir.path(),
    );
    assert!(e.status.success(), "eval failed: {}", stderr(&e));
    let v = last_json(&e);
    check_eval(&v, 4, 12);
    // Same checkpoint, same evaluation seed: the numbers of the run's last evaluation.
    assert_eq!(v["pass@1"], s["eval_end"]["pass@1"]);
    // Its raw data: a line per problem, from which `arbor intervals` gives back its
    // interval.
    let file = v["per_problem"].as_str().unwrap();
    assert_eq!(std::fs::read_to_string(file).unwrap().lines().count(), 12);
    let i = arbor(&["intervals", file], dir.path());
    assert!(i.status.success(), "{}", stderr(&i));
    let g = last_json(&i);
    assert_eq!(g["pass@1"], v["pass@1"]);
    assert_eq!(g["pass@1_ci95"], v["pass@1_ci95"]);
    assert_eq!(g["pass@k_ci95"], v["pass@k_ci95"]);

    // Test-time strategies at equal token budgets.
    let e = arbor(
        &[
            "eval",
            "--run",
            "t1",
            "--strategies",
            "sample,best_of_n,mcts",
            "--budgets",
            "1,4",
            "--store",
            store.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(e.status.success(), "eval failed: {}", stderr(&e));
    let v = last_json(&e);
    let rs = v["strategies"].as_array().unwrap();
    assert_eq!(rs.len(), 6);
    for r in rs {
        let acc = r["accuracy"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&acc), "{r}");
        let spent = r["tokens_per_problem"].as_f64().unwrap();
        let allowed = r["token_budget"].as_f64().unwrap();
        assert!(spent > 0.0, "{r}");
        if r["strategy"] == "mcts" {
            // The tree stops at its allowance (one step past it at most).
            assert!(spent <= allowed + 40.0 * 8.0, "{r}");
        }
    }
    // best_of_n with the verifier is never below plain sampling on the same samples.
    for b in [1, 4] {
        let get = |s: &str| {
            rs.iter()
                .find(|r| r["strategy"] == s && r["budget"] == b)
                .unwrap()["accuracy"]
                .as_f64()
                .unwrap()
        };
        assert!(get("best_of_n") >= get("sample"));
    }
    assert!(stderr(&e).contains("| strategy | budget |"));

    // A second run reuses the cached warm start and starts from the same policy.
    let o2 = arbor(
        &[
            "train",
            "--method",
            "dapo",
            "--headless",
            "--config",
            cfg.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
            "--iterations",
            "1",
        ],
        dir.path(),
    );
    assert!(o2.status.success(), "{}", stderr(&o2));
    let s2 = last_json(&o2);
    assert_eq!(s2["warm_start"], s["warm_start"]);
    assert_eq!(s2["eval_start"], s["eval_start"]);
    assert!(
        stderr(&o2).contains("loaded cached warm start"),
        "{}",
        stderr(&o2)
    );
    assert_eq!(s2["run"], "dapo-s3-1");

    // The same name twice is refused.
    let o3 = arbor(
        &[
            "train",
            "--headless",
            "--config",
            cfg.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
            "--run",
            "t1",
        ],
        dir.path(),
    );
    assert!(!o3.status.success());
    assert!(stderr(&o3).contains("already exists"), "{}", stderr(&o3));
}

#[test]
fn budget_tokens_stops_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let store = dir.path().join("s.sled");
    let o = arbor(
        &[
            "train",
            "--headless",
            "--config",
            cfg.to_str().unwrap(),
            "--store",
            store.to_str().unwrap(),
            "--iterations",
            "50",
            "--budget-tokens",
            "100",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let s = last_json(&o);
    assert_eq!(s["stopped_by"], "budget");
    assert!(s["iterations"].as_u64().unwrap() < 50);
    assert!(s["generated_tokens"].as_u64().unwrap() >= 100);
}

#[test]
fn gen_data_writes_leak_free_splits_that_train_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("data");
    let o = arbor(
        &[
            "gen-data",
            "--preset",
            "default",
            "--seed",
            "9",
            "--train",
            "200",
            "--test",
            "20",
            "--out",
            out.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let read = |name: &str| -> Vec<serde_json::Value> {
        std::fs::read_to_string(out.join(name))
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    };
    let (train, test) = (read("train.jsonl"), read("test.jsonl"));
    assert_eq!((train.len(), test.len()), (200, 20));
    let multiset = |v: &serde_json::Value| {
        let mut n: Vec<i64> = v["nums"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_i64().unwrap())
            .collect();
        n.sort();
        n
    };
    let test_sets: Vec<Vec<i64>> = test.iter().map(multiset).collect();
    assert!(train.iter().all(|p| !test_sets.contains(&multiset(p))));
    assert!(train.iter().all(|p| p["target"].is_i64()));
    // Same seed, same files.
    let out2 = dir.path().join("data2");
    arbor(
        &[
            "gen-data",
            "--preset",
            "default",
            "--seed",
            "9",
            "--train",
            "200",
            "--test",
            "20",
            "--out",
            out2.to_str().unwrap(),
        ],
        dir.path(),
    );
    assert_eq!(
        std::fs::read(out.join("train.jsonl")).unwrap(),
        std::fs::read(out2.join("train.jsonl")).unwrap()
    );
    // Unknown preset is named.
    let bad = arbor(&["gen-data", "--preset", "nope", "--out", "x"], dir.path());
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("nope"), "{}", stderr(&bad));
}

/// Runs a bad invocation and checks: non-zero exit, message contains `needle`, and the
/// store was not created.
fn refused(args: &[&str], needle: &str, dir: &Path) {
    let o = arbor(args, dir);
    assert!(!o.status.success(), "{args:?} succeeded");
    let err = stderr(&o);
    assert!(err.contains(needle), "{args:?}: {err:?} lacks {needle:?}");
    assert!(!err.contains("panicked"), "{err}");
    assert!(!dir.join("s.sled").exists(), "{args:?} created the store");
}

#[test]
fn bad_input_is_refused_naming_the_culprit_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d);
    let c = cfg.to_str().unwrap();
    let base = ["train", "--headless", "--store", "s.sled"];
    let with = |extra: &[&str]| -> Vec<String> {
        base.iter().chain(extra).map(|s| s.to_string()).collect()
    };
    let run = |extra: &[&str], needle: &str| {
        let args = with(extra);
        let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
        refused(&refs, needle, d);
    };

    std::fs::write(
        d.join("bad.jsonl"),
        "{\"nums\":[1,2,3],\"target\":6}\n{\"nums\":\"1,2\",\"target\":3}\n",
    )
    .unwrap();
    run(&["--config", c, "--train-data", "bad.jsonl"], "line 2");
    std::fs::write(
        d.join("trunc.jsonl"),
        "{\"nums\":[1,2,3],\"target\":6}\n{\"nums\":[1,2",
    )
    .unwrap();
    run(&["--config", c, "--test-data", "trunc.jsonl"], "line 2");
    run(
        &["--config", c, "--train-data", "missing.jsonl"],
        "missing.jsonl",
    );

    std::fs::write(d.join("neg.toml"), "[train]\nlr = -0.001\n").unwrap();
    run(&["--config", "neg.toml"], "train.lr");
    std::fs::write(d.join("unknown.toml"), "[train]\nlearning_rate = 0.1\n").unwrap();
    run(&["--config", "unknown.toml"], "learning_rate");
    std::fs::write(d.join("nan.toml"), "[train]\ntemperature = nan\n").unwrap();
    run(&["--config", "nan.toml"], "train.temperature");
    run(&["--config", "nowhere.toml"], "nowhere.toml");
    run(&["--method", "ppo"], "ppo");
    run(&["--config", c, "--run", "../escape"], "../escape");

    // A store written by a newer schema: refused, its contents untouched.
    let newer = d.join("newer.sled");
    {
        let s = arbor::store::Store::open(&newer).unwrap();
        s.overwrite_header_for_tests(&arbor::store::Header {
            schema_version: arbor::store::SCHEMA_VERSION + 1,
            created_by: "arbor 99".into(),
        })
        .unwrap();
    }
    let o = arbor(
        &[
            "train",
            "--headless",
            "--config",
            c,
            "--store",
            "newer.sled",
        ],
        d,
    );
    assert!(!o.status.success());
    let err = stderr(&o);
    assert!(
        err.contains("newer.sled") && err.contains("schema version"),
        "{err}"
    );
    let s = arbor::store::Store::open(&newer)
        .err()
        .expect("still refused");
    assert!(s.to_string().contains("schema version"));

    // eval of an unknown run names it and lists what exists.
    let o = arbor(&["eval", "--run", "ghost", "--store", "newer.sled"], d);
    assert!(!o.status.success());
    let o = arbor(&["eval", "--run", "ghost", "--store", "nostore.sled"], d);
    assert!(
        !o.status.success() && stderr(&o).contains("nostore.sled"),
        "{}",
        stderr(&o)
    );
    assert!(!d.join("nostore.sled").exists());
}

#[test]
fn compare_runs_methods_at_equal_tokens_and_writes_table_plot_and_store_group() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d);
    let o = arbor(
        &[
            "compare",
            "--methods",
            "grpo,dapo,deepsearch",
            "--seeds",
            "1,2",
            "--budget-tokens",
            "6000",
            "--milestones",
            "2",
            "--eval-k",
            "2",
            "--config",
            cfg.to_str().unwrap(),
            "--store",
            "s.sled",
            "--out",
            "cmp",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let line = last_json(&o);
    assert_eq!(line["comparison"], "cmp-1");
    let rows = line["runs"].as_array().unwrap();
    assert_eq!(rows.len(), 6);
    for f in ["table.md", "pass1_vs_tokens.svg", "comparison.json"] {
        assert!(d.join("cmp").join(f).exists(), "{f}");
    }
    let svg = std::fs::read_to_string(d.join("cmp/pass1_vs_tokens.svg")).unwrap();
    assert_eq!(
        svg.matches("<polyline").count(),
        6 + 3,
        "a line per run and a mean per method"
    );
    let table = std::fs::read_to_string(d.join("cmp/table.md")).unwrap();

    let store = arbor::store::Store::open_existing(&d.join("s.sled")).unwrap();
    let cmp = &store.comparisons().unwrap()[0];
    assert_eq!(cmp.runs.len(), 6);
    let mut first_problems = std::collections::HashMap::new();
    for row in rows {
        let name = row["run"].as_str().unwrap();
        let run = store.require_run(name).unwrap();
        assert_eq!(run.comparison.as_deref(), Some("cmp-1"));
        let its: Vec<arbor::engine::training::records::IterationMetrics> =
            store.iterations(name).unwrap();
        let last = its.last().unwrap();
        // Stopped at the budget: at or past it, and not a whole iteration later.
        assert!(last.cumulative_generated_tokens >= 6000);
        if its.len() >= 2 {
            assert!(its[its.len() - 2].cumulative_generated_tokens < 6000);
        }
        assert_eq!(row["generated_tokens"], last.cumulative_generated_tokens);
        // Evaluated whenever a 3000-token milestone is crossed, and at the end.
        let mut before = 0;
        for m in &its {
            let crossed = m.cumulative_generated_tokens / 3000 > before / 3000;
            assert_eq!(
                m.eval.is_some(),
                crossed || m.iteration == last.iteration,
                "{name}"
            );
            before = m.cumulative_generated_tokens;
        }
        assert_eq!(row["pass1"], last.eval.as_ref().unwrap().pass1);
        assert!(table.contains(&format!(
            "| {} | {} | {} | {} |",
            row["method"].as_str().unwrap(),
            row["seed"],
            its.len(),
            last.cumulative_generated_tokens
        )));
        let method = row["method"].as_str().unwrap().to_string();
        let seed = row["seed"].as_u64().unwrap();
        let problems: Vec<String> = store
            .trees(name, 1)
            .unwrap()
            .into_iter()
            .map(|t| t.problem)
            .collect();
        first_problems.insert((method, seed), problems);
    }
    // One seed, one problem stream: grpo and dapo see the same problems.
    for s in [1u64, 2] {
        assert_eq!(
            first_problems[&("grpo".to_string(), s)],
            first_problems[&("dapo".to_string(), s)]
        );
    }
    // The same warm start and starting evaluation for every run.
    let starts: std::collections::HashSet<String> =
        rows.iter().map(|r| r["pass1_start"].to_string()).collect();
    assert_eq!(starts.len(), 1);

    // The raw data: the per-problem file and a run's stored evaluations give back every
    // interval the table printed.
    let o = arbor(&["intervals", "cmp/per_problem.jsonl"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let groups: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(groups.len(), 6);
    for row in rows {
        let g = groups
            .iter()
            .find(|g| g["group"]["run"] == row["run"])
            .unwrap();
        assert_eq!(g["pass@1"], row["pass1"]);
        for i in 0..2 {
            let (a, b) = (
                g["pass@1_ci95"][i].as_f64().unwrap(),
                row["pass1_ci"][i].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-12, "{g} {row}");
        }
    }
    let name = rows[0]["run"].as_str().unwrap();
    let its: Vec<arbor::engine::training::records::IterationMetrics> =
        store.iterations(name).unwrap();
    drop(store);
    let o = arbor(
        &[
            "export",
            "--run",
            name,
            "--evaluations",
            "--store",
            "s.sled",
            "--out",
            "e.jsonl",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = arbor(&["intervals", "e.jsonl"], d);
    assert!(o.status.success(), "{}", stderr(&o));
    let last: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&o.stdout).lines().last().unwrap()).unwrap();
    let end = its.last().unwrap();
    assert_eq!(last["group"]["iteration"], end.iteration);
    let e = end.eval.as_ref().unwrap();
    assert_eq!(last["pass@1"].as_f64().unwrap(), e.pass1);
    assert_eq!(last["pass@1_ci95"][0].as_f64().unwrap(), e.pass1_ci.0);
    assert_eq!(last["pass@1_ci95"][1].as_f64().unwrap(), e.pass1_ci.1);
}

/// A table in docs/results recomputed from its committed raw file: `arbor intervals` gives
/// back every per-arm interval of the equal-steps comparison (issue 24's raw data).
#[test]
fn intervals_recompute_a_committed_table_from_its_raw_file() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dir = root.join("docs/results/where-trees-pay/equal-steps/eq-d");
    let cmp: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("comparison.json")).unwrap())
            .unwrap();
    let o = arbor(
        &[
            "intervals",
            "--at",
            "8",
            "--reference",
            cmp["reference"].as_str().unwrap(),
            dir.join("per_problem.jsonl").to_str().unwrap(),
        ],
        root,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let groups: Vec<serde_json::Value> = String::from_utf8_lossy(&o.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let runs = cmp["runs"].as_array().unwrap();
    assert_eq!(groups.len(), runs.len());
    for row in runs {
        let g = groups
            .iter()
            .find(|g| g["group"]["run"] == row["run"])
            .unwrap();
        assert!(g["multisets"].as_u64().unwrap() > 100, "{g}");
        for (mine, theirs) in [("pass@1", "pass1"), ("pass@k", "pass_k")] {
            assert!((g[mine].as_f64().unwrap() - row[theirs].as_f64().unwrap()).abs() < 1e-12);
        }
        for i in 0..2 {
            let (a, b) = (
                g["pass@1_ci95"][i].as_f64().unwrap(),
                row["pass1_ci"][i].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-12, "{g} {row}");
        }
        // The paired difference with the reference arm, as the table printed it.
        let d = &row["paired_diff"];
        if d.is_null() {
            assert!(g["paired"].is_null(), "{g}");
            continue;
        }
        let p = &g["paired"];
        assert_eq!(p["sense"], "reference minus arm");
        assert!((p["difference"].as_f64().unwrap() - d["mean"].as_f64().unwrap()).abs() < 1e-12);
        for i in 0..2 {
            let (a, b) = (
                p["ci95"][i].as_f64().unwrap(),
                d["ci95"][i].as_f64().unwrap(),
            );
            assert!((a - b).abs() < 1e-12, "{p} {d}");
        }
    }
    assert!(stderr(&o).contains("resampling number multisets"));
}

/// The plateau protocol's contract: every arm starts from one checkpoint (a folder, or a
/// run's latest checkpoint), on a three-way split, and the JSON carries the fair-terms
/// accounting and a paired difference per non-reference arm.
#[test]
fn compare_from_a_checkpoint_pairs_every_arm_with_the_reference() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let cfg = tiny_config(d);
    let cfg = cfg.to_str().unwrap();
    let o = arbor(
        &[
            "train",
            "--headless",
            "--method",
            "grpo",
            "--iterations",
            "2",
            "--config",
            cfg,
            "--store",
            "s.sled",
            "--run",
            "base",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let o = arbor(
        &[
            "save-model",
            "--run",
            "base",
            "--store",
            "s.sled",
            "--out",
            "model",
        ],
        d,
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let common = [
        "--seeds",
        "1",
        "--budget-tokens",
        "2500",
        "--milestones",
        "1",
        "--eval-k",
        "2",
        "--config",
        cfg,
        "--validation-size",
        "10",
        "--test-size",
        "12",
        "--methods",
        "grpo,deepsearch-paper",
        "--arm",
        "arb=deepsearch:adaptive.enabled=false",
        "--reference",
        "arb",
    ];
    let mut args = vec![
        "compare", "--from", "model", "--store", "c.sled", "--out", "cmp",
    ];
    args.extend(common);
    let o = arbor(&args, d);
    assert!(o.status.success(), "{}", stderr(&o));
    let line = last_json(&o);
    assert_eq!(line["from"], "model");
    assert_eq!(line["reference"], "arb");
    assert_eq!(line["evaluated_on"], "test");
    assert_eq!(line["test_problems"], 12);
    assert_eq!(line["tokens_per_step"], 2048);
    let rows = line["runs"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    for r in rows {
        for f in [
            "optimizer_steps",
            "steps_per_1k_tokens",
            "filter_tokens",
            "solved_per_1k_tokens",
            "trained_per_generated",
            "wall_seconds",
        ] {
            assert!(r[f].is_number(), "{f} in {r}");
        }
        if r["method"] == "arb" {
            assert!(r["paired_diff"].is_null());
            assert_eq!(r["filter_tokens"], 0, "the arm turned filtering off");
        } else {
            let ci = r["paired_diff"]["ci95"].as_array().unwrap();
            let mean = r["paired_diff"]["mean"].as_f64().unwrap();
            assert!(
                ci[0].as_f64().unwrap() <= mean + 1e-12 && mean <= ci[1].as_f64().unwrap() + 1e-12
            );
        }
        assert!(
            !r.to_string().contains("\"correct\""),
            "per-problem counts stay out"
        );
    }
    let starts: std::collections::HashSet<String> =
        rows.iter().map(|r| r["pass1_start"].to_string()).collect();
    assert_eq!(starts.len(), 1, "one starting checkpoint");
    let table = std::fs::read_to_string(d.join("cmp/table.md")).unwrap();
    assert!(table.contains("arb minus arm (95% CI)") && table.contains("optimizer steps"));
    // The store's run records the checkpoint as its start.
    let store = arbor::store::Store::open_existing(&d.join("c.sled")).unwrap();
    let run = store.require_run(rows[0]["run"].as_str().unwrap()).unwrap();
    assert!(run.warm_start.unwrap().starts_with("model:"));
    // The start-of-run evaluation rides on iteration 1's record (the dashboard shows it).
    let its: Vec<arbor::engine::training::records::IterationMetrics> =
        store.iterations(&run.name).unwrap();
    let start = its[0]
        .eval_start
        .as_ref()
        .expect("eval_start on iteration 1");
    assert_eq!(start.pass1, rows[0]["pass1_start"].as_f64().unwrap());
    assert!(its[1..].iter().all(|m| m.eval_start.is_none()));
    drop(store);

    // --from a run of the store: its latest checkpoint.
    let mut args = vec![
        "compare", "--from", "base", "--store", "s.sled", "--out", "cmp2",
    ];
    args.extend(common);
    let o = arbor(&args, d);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(last_json(&o)["from"], "base");
    // An unknown run or folder is named.
    let mut args = vec!["compare", "--from", "nope", "--store", "s.sled"];
    args.extend(common);
    let o = arbor(&args, d);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("--from nope"), "{}", stderr(&o));
}

/// Search distillation and CISPO: trained, checkpointed with their value head and KL
/// reference, resumed, exported with P, V, N and the distilled path, checked by fsck, and
/// searched at test time (refused without a value head).
#[test]
fn tree_distill_and_cispo_train_resume_export_and_search_at_test_time() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let store = dir.path().join("s.sled");
    let s = store.to_str().unwrap();
    let c = cfg.to_str().unwrap();
    let train = |extra: &[&str]| {
        let mut args = vec!["train", "--headless", "--config", c, "--store", s];
        args.extend_from_slice(extra);
        arbor(&args, dir.path())
    };
    let o = train(&[
        "--method",
        "tree_distill",
        "--run",
        "td",
        "--iterations",
        "2",
    ]);
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let summary = last_json(&o);
    assert_eq!(summary["method"], "tree_distill");
    // Compute beside generation is reported: the prior-and-value pass and the KL forward.
    assert!(summary["scoring_tokens"].as_u64().unwrap() > 0, "{summary}");
    assert!(
        summary["reference_tokens"].as_u64().unwrap() > 0,
        "{summary}"
    );
    // The fresh value head was fitted before RL on the starting policy's own samples,
    // their tokens charged to the run, measured on held-out problems.
    let fit = &summary["value_prefit"];
    assert_eq!(fit["steps"], 200, "{fit}");
    assert!(fit["tokens"].as_u64().unwrap() > 0, "{fit}");
    assert!(
        fit["tokens"].as_u64().unwrap() < summary["generated_tokens"].as_u64().unwrap(),
        "{summary}"
    );
    assert!(
        fit["heldout_loss_after"].as_f64().unwrap() < fit["heldout_loss_before"].as_f64().unwrap(),
        "{fit}"
    );
    // The checkpoint keeps the head beside a plain Qwen2 model, and the KL's reference.
    let ck = dir.path().join("s.sled.checkpoints/td/iter-000002");
    for f in [
        "model.safetensors",
        "value_head.safetensors",
        "reference.safetensors",
    ] {
        assert!(ck.join(f).exists(), "{f} missing in {}", ck.display());
    }
    let e = arbor(
        &["export", "--run", "td", "--iteration", "2", "--store", s],
        dir.path(),
    );
    assert!(e.status.success(), "export failed: {}", stderr(&e));
    let v: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    let trees = v["trees"].as_array().unwrap();
    assert_eq!(trees.len(), 4);
    for t in trees {
        assert_eq!(t["source"], "distill");
        // Its simulations, in order, for the replay: the first reaches the root.
        let sims = t["simulations"].as_array().unwrap();
        assert!(!sims.is_empty(), "{t}");
        assert_eq!(sims[0]["leaf"], 0, "{t}");
        let nodes = t["nodes"].as_array().unwrap();
        let root = &nodes[0];
        assert_eq!(root["distilled"], true);
        assert!(root["visits"].as_u64().unwrap() > 0, "{root}");
        // Children carry a prior (summing to 1 over siblings) and a value estimate.
        let kids: Vec<&serde_json::Value> = nodes.iter().filter(|n| n["parent"] == 0).collect();
        assert!(!kids.is_empty());
        let p: f64 = kids.iter().map(|n| n["prior"].as_f64().unwrap()).sum();
        assert!((p - 1.0).abs() < 1e-4, "priors sum to {p}");
        assert!(kids.iter().all(|n| n["value"].as_f64().is_some()));
        assert!(nodes.iter().filter(|n| n["distilled"] == true).count() >= 2);
    }
    // The Hugging Face export stays a plain Qwen2 checkpoint, the head saved beside it.
    let hf = dir.path().join("hf");
    let o = arbor(
        &[
            "save-model",
            "--run",
            "td",
            "--out",
            hf.to_str().unwrap(),
            "--store",
            s,
        ],
        dir.path(),
    );
    assert!(o.status.success(), "save-model failed: {}", stderr(&o));
    let names = |f: &str| -> Vec<String> {
        let bytes = std::fs::read(hf.join(f)).unwrap();
        let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        st.names().into_iter().map(|n| n.to_string()).collect()
    };
    assert!(names("model.safetensors")
        .iter()
        .all(|n| !n.starts_with("value_head.")));
    assert_eq!(names("value_head.safetensors").len(), 6);
    // Resume goes on from the checkpoint with the same reference.
    let r = arbor(
        &[
            "train",
            "--headless",
            "--store",
            s,
            "--resume",
            "td",
            "--iterations",
            "3",
        ],
        dir.path(),
    );
    assert!(r.status.success(), "resume failed: {}", stderr(&r));
    assert_eq!(last_json(&r)["iterations"], 3);
    // A resume keeps the fit it had (same report), never fits again.
    assert_eq!(last_json(&r)["value_prefit"], summary["value_prefit"]);
    let o = train(&["--method", "cispo", "--run", "cs", "--iterations", "1"]);
    assert!(o.status.success(), "cispo failed: {}", stderr(&o));
    assert_eq!(last_json(&o)["method"], "cispo");
    let f = arbor(&["fsck", "--store", s], dir.path());
    assert!(
        f.status.success(),
        "fsck: {}{}",
        stderr(&f),
        String::from_utf8_lossy(&f.stdout)
    );

    // Test time: pUCT with the value head, at equal tokens with best-of-N.
    let e = arbor(
        &[
            "eval",
            "--run",
            "td",
            "--strategies",
            "best_of_n,puct",
            "--budgets",
            "2",
            "--store",
            s,
        ],
        dir.path(),
    );
    assert!(e.status.success(), "eval failed: {}", stderr(&e));
    let v = last_json(&e);
    let puct = v["strategies"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["strategy"] == "puct")
        .cloned()
        .unwrap();
    let mv = puct["most_visited"].as_f64().unwrap();
    assert!(mv <= puct["accuracy"].as_f64().unwrap() + 1e-12, "{puct}");
    assert!(puct["tokens_per_problem"].as_f64().unwrap() > 0.0);
    // A run without a value head cannot use it.
    let e = arbor(
        &[
            "eval",
            "--run",
            "cs",
            "--strategies",
            "puct",
            "--budgets",
            "2",
            "--store",
            s,
        ],
        dir.path(),
    );
    assert!(!e.status.success());
    assert!(stderr(&e).contains("value head"), "{}", stderr(&e));
}

/// `arbor export ... | head`: a reader that goes away ends the command quietly.
#[test]
fn export_into_a_closed_pipe_ends_quietly() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let store = dir.path().join("s.sled");
    let s = store.to_str().unwrap();
    let o = arbor(
        &[
            "train",
            "--headless",
            "--method",
            "grpo",
            "--run",
            "g",
            "--config",
            cfg.to_str().unwrap(),
            "--store",
            s,
            "--iterations",
            "2",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    for args in [
        vec!["export", "--run", "g", "--iteration", "2", "--store", s],
        vec!["export", "--run", "g", "--metrics", "--store", s],
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_arbor"))
            .args(&args)
            .current_dir(dir.path())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        // The reader goes away before the first write, like `head` that already has
        // what it wanted.
        drop(child.stdout.take());
        let out = child.wait_with_output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!err.contains("panicked"), "{args:?}: {err}");
        assert!(err.trim().is_empty(), "{args:?}: {err}");
    }
}

/// The methods added on the method seam (grpo_hard, passk, treerl with both fork rules)
/// train, checkpoint their own state, resume and export through the real binary; a
/// treerl tree is stored as segments with one recorded terminal per leaf.
#[test]
fn seam_methods_train_resume_and_export() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("s.sled");
    let s = store.to_str().unwrap();
    for (method, run, extra) in [
        ("grpo_hard", "gh", ""),
        ("passk", "pk", "[passk]\nanneal_iterations = 2\n"),
        ("treerl", "te", ""),
        ("treerl", "tr", "[treerl]\nfork = \"random\"\n"),
    ] {
        let own = dir.path().join(format!("{run}.toml"));
        std::fs::write(&own, format!("{TINY}\n{extra}")).unwrap();
        let own = own.to_str().unwrap();
        let args = [
            "train",
            "--headless",
            "--config",
            own,
            "--store",
            s,
            "--method",
            method,
            "--run",
            run,
            "--iterations",
            "2",
        ];
        let o = arbor(&args, dir.path());
        assert!(o.status.success(), "{method} failed: {}", stderr(&o));
        assert_eq!(last_json(&o)["method"], method);
        let state = std::fs::read_to_string(dir.path().join(format!(
            "s.sled.checkpoints/{run}/iter-000002/trainer_state.json"
        )))
        .unwrap();
        let state: serde_json::Value = serde_json::from_str(&state).unwrap();
        if method == "grpo_hard" {
            assert!(state["grpo_hard_solved"].is_array(), "{state}");
        }
        let r = arbor(
            &[
                "train",
                "--headless",
                "--store",
                s,
                "--resume",
                run,
                "--iterations",
                "3",
            ],
            dir.path(),
        );
        assert!(r.status.success(), "{method} resume failed: {}", stderr(&r));
        assert_eq!(last_json(&r)["iterations"], 3);
    }
    let e = arbor(
        &["export", "--run", "te", "--iteration", "1", "--store", s],
        dir.path(),
    );
    assert!(e.status.success(), "export failed: {}", stderr(&e));
    let v: serde_json::Value = serde_json::from_slice(&e.stdout).unwrap();
    for t in v["trees"].as_array().unwrap() {
        assert_eq!(t["source"], "branch");
        let nodes = t["nodes"].as_array().unwrap();
        let leaves = nodes.iter().filter(|n| n["recorded"] == true).count();
        // 2 chains, each forking at up to 3 tokens with 1 branch: 2 to 8 leaves.
        assert!((2..=8).contains(&leaves), "{leaves} leaves");
        for n in &nodes[1..] {
            let p = n["parent"].as_u64().unwrap() as usize;
            assert!(p < nodes.len(), "{n}");
        }
    }
    let f = arbor(&["fsck", "--store", s], dir.path());
    assert!(f.status.success(), "fsck: {}", stderr(&f));
}

/// `arbor eval --strategies` with step-judged sampling: every strategy paired against
/// the reference at each budget, the per-problem file named in the JSON line.
#[test]
fn eval_pairs_strategies_against_step_judged_sampling_and_writes_raw_data() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = tiny_config(dir.path());
    let store = dir.path().join("s.sled");
    let s = store.to_str().unwrap();
    let c = cfg.to_str().unwrap();
    let o = arbor(
        &[
            "train",
            "--headless",
            "--config",
            c,
            "--store",
            s,
            "--run",
            "r",
            "--iterations",
            "1",
        ],
        dir.path(),
    );
    assert!(o.status.success(), "train failed: {}", stderr(&o));
    let e = arbor(
        &[
            "eval",
            "--run",
            "r",
            "--store",
            s,
            "--strategies",
            "sample,best_of_n,best_of_n_checked,mcts",
            "--budgets",
            "1,2",
            "--reference",
            "best_of_n_checked",
        ],
        dir.path(),
    );
    assert!(e.status.success(), "eval failed: {}", stderr(&e));
    let v = last_json(&e);
    assert_eq!(v["reference"], "best_of_n_checked");
    let paired = v["paired"].as_array().unwrap();
    assert_eq!(paired.len(), 6, "{v}");
    for d in paired {
        let (lo, hi) = (
            d["ci95"][0].as_f64().unwrap(),
            d["ci95"][1].as_f64().unwrap(),
        );
        let m = d["difference"].as_f64().unwrap();
        assert!(lo <= m + 1e-12 && m <= hi + 1e-12, "{d}");
    }
    for r in v["strategies"].as_array().unwrap() {
        assert!(
            r["within_allowance"].is_boolean() && r["overrun"].is_number(),
            "{r}"
        );
        if r["strategy"] == "best_of_n_checked" {
            let spent = r["tokens_per_problem"].as_f64().unwrap();
            let allowed = r["token_budget"].as_f64().unwrap();
            assert!(spent <= allowed + 1.0, "{r}");
        }
    }
    assert!(stderr(&e).contains("paired differences against best_of_n_checked"));
    let file = v["per_problem"].as_str().unwrap();
    let lines = std::fs::read_to_string(file).unwrap();
    // 4 strategies x 2 budgets x 12 test problems.
    assert_eq!(lines.lines().count(), 96);
    // `arbor intervals` gives back every accuracy interval and paired difference.
    let i = arbor(
        &["intervals", "--reference", "best_of_n_checked", file],
        Path::new("."),
    );
    assert!(i.status.success(), "{}", stderr(&i));
    let groups: Vec<serde_json::Value> = String::from_utf8_lossy(&i.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(groups.len(), 8);
    let find = |strategy: &serde_json::Value, budget: &serde_json::Value| {
        groups
            .iter()
            .find(|g| &g["group"]["strategy"] == strategy && &g["group"]["budget"] == budget)
            .unwrap()
    };
    for r in v["strategies"].as_array().unwrap() {
        let g = find(&r["strategy"], &r["budget"]);
        assert_eq!(g["pass@1"], r["accuracy"]);
        assert_eq!(g["pass@1_ci95"], r["accuracy_ci95"]);
    }
    for d in v["paired"].as_array().unwrap() {
        let g = find(&d["strategy"], &d["budget"]);
        assert_eq!(g["paired"]["difference"], d["difference"], "{g} {d}");
        assert_eq!(g["paired"]["ci95"], d["ci95"], "{g} {d}");
    }
    let first: serde_json::Value = serde_json::from_str(lines.lines().next().unwrap()).unwrap();
    for key in [
        "strategy", "budget", "problem", "multiset", "score", "tokens",
    ] {
        assert!(!first[key].is_null(), "{key} missing: {first}");
    }
}

/// The GPU check's CPU fallback (what CI can run): on a machine where nvidia-smi sees no
/// GPU, it makes a tiny model, passes the device check (the CPU's generic path against
/// its kernels) and trains GRPO and DeepSearch iterations, into one file.
#[test]
fn the_gpu_checks_cpu_fallback_runs_end_to_end() {
    let has_gpu = Command::new("nvidia-smi")
        .arg("-L")
        .output()
        .is_ok_and(|o| o.status.success());
    if has_gpu {
        eprintln!("a GPU is visible: the fallback is not what runs here; skipped");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gpu-check.txt");
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let o = Command::new(root.join("scripts/gpu_check.sh"))
        .arg(env!("CARGO_BIN_EXE_arbor"))
        .arg(&out)
        .env("GPU_CHECK_ITERATIONS", "2")
        .current_dir(root)
        .output()
        .expect("bash runs the script");
    let text = std::fs::read_to_string(&out).unwrap_or_default();
    assert!(o.status.success(), "{}\n{text}", stderr(&o));
    assert!(text.contains("cpu-fallback"), "{text}");
    assert!(text.contains(r#""ok":true"#), "{text}");
    assert!(
        text.contains("### grpo on tiny") && text.contains("### deepsearch on tiny"),
        "{text}"
    );
    assert!(
        text.contains("tokens/s") && text.contains("tree search:"),
        "{text}"
    );
    assert!(text.ends_with("gpu_check: done\n"), "{text}");
}
