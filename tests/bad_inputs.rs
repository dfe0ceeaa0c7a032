//! The bad-input corpus (tests/bad_inputs/cases.toml): every case must be refused with a
//! clear message naming the culprit, a non-zero exit, no panic, and nothing written.
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Deserialize;

#[derive(Deserialize)]
struct Corpus {
    case: Vec<Case>,
    retune: Vec<Retune>,
}

#[derive(Deserialize)]
struct Case {
    name: String,
    args: Vec<String>,
    expect: Vec<String>,
    setup: Option<String>,
    mutate: Option<String>,
}

#[derive(Deserialize)]
struct Retune {
    key: String,
    value: String,
    expect: String,
}

fn corpus_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/bad_inputs")
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let dest = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &dest);
        } else {
            std::fs::copy(e.path(), dest).unwrap();
        }
    }
}

/// A store with a finished one-iteration run `r`, trained once for all cases.
fn trained(root: &Path) -> PathBuf {
    let store = root.join("t.sled");
    let out = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["train", "--headless", "--run", "r", "--config"])
        .arg(corpus_dir().join("tiny.toml"))
        .arg("--store")
        .arg(&store)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    store
}

/// The store's committed records, to compare before and after a refused command.
fn digest(store: &Path) -> String {
    let s = arbor::store::Store::open_existing(store).unwrap();
    let mut out = String::new();
    for r in s.runs().unwrap() {
        let its: Vec<serde_json::Value> = s.iterations(&r.name).unwrap();
        out += &format!(
            "{}|{:?}|{}|{:?}|{:?}\n",
            serde_json::to_string(&r).unwrap(),
            its,
            s.checkpoints(&r.name).unwrap().len(),
            s.events(&r.name).unwrap(),
            (1..=r.last_iteration)
                .map(|i| s.trees(&r.name, i).unwrap().len())
                .collect::<Vec<_>>()
        );
    }
    out
}

fn checkpoint_dir(store: &Path) -> PathBuf {
    let mut p = store.as_os_str().to_os_string();
    p.push(".checkpoints");
    PathBuf::from(p).join("r").join("iter-000001")
}

fn mutate(kind: &str, store: &Path) {
    let ck = checkpoint_dir(store);
    match kind {
        "truncate_model" => {
            let p = ck.join("model.safetensors");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() / 3]).unwrap();
        }
        "other_architecture" => {
            let p = ck.join("config.json");
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            v["intermediate_size"] = 96.into();
            std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        }
        "truncate_state" => {
            let p = ck.join("trainer_state.json");
            let b = std::fs::read(&p).unwrap();
            std::fs::write(&p, &b[..b.len() / 2]).unwrap();
        }
        "newer_state" => {
            let p = ck.join("trainer_state.json");
            let mut v: serde_json::Value =
                serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
            v["version"] = 99.into();
            std::fs::write(&p, serde_json::to_vec(&v).unwrap()).unwrap();
        }
        "delete_checkpoint" => std::fs::remove_dir_all(&ck).unwrap(),
        "newer_store" => {
            let s = arbor::store::Store::open(store).unwrap();
            s.overwrite_header_for_tests(&arbor::store::Header {
                schema_version: arbor::store::SCHEMA_VERSION + 1,
                created_by: "arbor 99".into(),
            })
            .unwrap();
        }
        "garbage_dir" => {
            for e in std::fs::read_dir(store).unwrap() {
                let p = e.unwrap().path();
                if p.is_file() {
                    std::fs::write(&p, b"garbage garbage garbage").unwrap();
                }
            }
        }
        other => panic!("unknown mutation {other}"),
    }
}

#[test]
fn every_bad_input_is_refused_clearly_and_writes_nothing() {
    let text = std::fs::read_to_string(corpus_dir().join("cases.toml")).unwrap();
    let corpus: Corpus = toml::from_str(&text).unwrap();
    assert!(
        corpus.case.len() + corpus.retune.len() >= 40,
        "the corpus has {} cases",
        corpus.case.len() + corpus.retune.len()
    );
    let shared = tempfile::tempdir().unwrap();
    let base = trained(shared.path());
    let mut failures = Vec::new();
    for case in &corpus.case {
        let tmp = tempfile::tempdir().unwrap();
        let store = tmp.path().join("s.sled");
        let t = tmp.path().join("t.sled");
        if case.setup.as_deref() == Some("trained") {
            copy_dir(&base, &t);
            let mut from = base.as_os_str().to_os_string();
            from.push(".checkpoints");
            let mut to = t.as_os_str().to_os_string();
            to.push(".checkpoints");
            copy_dir(Path::new(&from), Path::new(&to));
            // Point the copied index at the copied checkpoints.
            let s = arbor::store::Store::open(&t).unwrap();
            for c in s.checkpoints("r").unwrap() {
                let dir = checkpoint_dir(&t).with_file_name(c.dir.file_name().unwrap());
                s.record_checkpoint("r", c.iteration, &dir, c.kind).unwrap();
            }
        }
        if let Some(m) = &case.mutate {
            mutate(m, &t);
        }
        let before = (case.setup.is_some()
            && case.mutate.as_deref() != Some("newer_store")
            && case.mutate.as_deref() != Some("garbage_dir"))
        .then(|| digest(&t));
        let args: Vec<String> = case
            .args
            .iter()
            .map(|a| {
                a.replace("{corpus}", corpus_dir().to_str().unwrap())
                    .replace("{store}", store.to_str().unwrap())
                    .replace("{trained}", t.to_str().unwrap())
                    .replace("{tmp}", tmp.path().to_str().unwrap())
            })
            .collect();
        let out = Command::new(env!("CARGO_BIN_EXE_arbor"))
            .args(&args)
            .current_dir(tmp.path())
            .env_remove("RUST_BACKTRACE")
            .env_remove("RUST_LIB_BACKTRACE")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        let mut why = Vec::new();
        if out.status.success() {
            why.push("exit status 0".to_string());
        }
        if err.contains("panicked") {
            why.push("panicked".into());
        }
        for e in &case.expect {
            if !err.contains(e.as_str()) {
                why.push(format!("no {e:?} in the message"));
            }
        }
        if store.exists() {
            why.push("created a store".into());
        }
        if tmp.path().join("data").exists() {
            why.push("wrote data".into());
        }
        if let Some(before) = before {
            if digest(&t) != before {
                why.push("changed the store's records".into());
            }
        }
        if !why.is_empty() {
            let first = err.lines().take(3).collect::<Vec<_>>().join(" / ");
            failures.push(format!(
                "{}: {}\n    stderr: {first}",
                case.name,
                why.join(", ")
            ));
        }
    }

    use arbor::engine::training::config::RunConfig;
    for r in &corpus.retune {
        let mut cfg = RunConfig::default();
        let before = cfg.clone();
        match arbor::engine::training::control::retune(&mut cfg, &r.key, &r.value)
            .map_err(|e| e.to_string())
        {
            Ok(_) => failures.push(format!("retune {}={}: accepted", r.key, r.value)),
            Err(msg) if !msg.contains(&r.expect) => failures.push(format!(
                "retune {}={}: {msg:?} lacks {:?}",
                r.key, r.value, r.expect
            )),
            Err(_) => {}
        }
        if cfg != before {
            failures.push(format!(
                "retune {}={}: changed the settings",
                r.key, r.value
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        corpus.case.len() + corpus.retune.len(),
        failures.join("\n")
    );
}
