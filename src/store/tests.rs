use super::*;

fn run(name: &str) -> RunRecord {
    RunRecord::new(name, "grpo", 1, String::new())
}

#[test]
fn runs_and_iterations_round_trip_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sled");
    let store = Store::open(&path).unwrap();
    store.create_run(&run("a")).unwrap();
    store.create_run(&run("a-b")).unwrap();
    assert!(matches!(
        store.create_run(&run("a")),
        Err(StoreError::RunExists(_))
    ));
    let r = store.require_run("a").unwrap();
    for i in [1u64, 2, 10, 300] {
        store
            .commit_iteration(&r, i, &serde_json::json!({ "it": i }), vec![])
            .unwrap();
    }
    let its: Vec<serde_json::Value> = store.iterations("a").unwrap();
    let seen: Vec<u64> = its.iter().map(|v| v["it"].as_u64().unwrap()).collect();
    assert_eq!(seen, vec![1, 2, 10, 300]);
    // The other run's prefix does not bleed into this one.
    assert!(store
        .iterations::<serde_json::Value>("a-b")
        .unwrap()
        .is_empty());
    assert_eq!(store.require_run("a").unwrap().last_iteration, 300);
    let names: Vec<String> = store.runs().unwrap().into_iter().map(|r| r.name).collect();
    assert_eq!(names, vec!["a", "a-b"]);
}

#[test]
fn newer_schema_is_refused_with_the_version() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sled");
    {
        let store = Store::open(&path).unwrap();
        store
            .overwrite_header_for_tests(&Header {
                schema_version: SCHEMA_VERSION + 1,
                created_by: "arbor 9".into(),
            })
            .unwrap();
    }
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(
        err.contains(&format!("schema version {}", SCHEMA_VERSION + 1)) && err.contains("s.sled"),
        "{err}"
    );
}

#[test]
fn a_file_where_the_store_should_be_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.sled");
    std::fs::write(&path, b"garbage").unwrap();
    let err = Store::open(&path).err().unwrap().to_string();
    assert!(err.contains("not an arbor store"), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), b"garbage");
}

#[test]
fn missing_run_lists_known_runs_and_bad_names_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sled")).unwrap();
    store.create_run(&run("x")).unwrap();
    let err = store.require_run("y").err().unwrap().to_string();
    assert!(err.contains("\"y\"") && err.contains("x"), "{err}");
    assert!(store.create_run(&run("../etc")).is_err());
    assert!(store.create_run(&run("")).is_err());
}

#[test]
fn warm_start_blobs_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sled")).unwrap();
    assert!(store.warm_start("k").unwrap().is_none());
    let meta = WarmStartMeta {
        key: "k".into(),
        description: serde_json::json!({"steps": 3}),
    };
    store.put_warm_start(&meta, &[1, 2, 3]).unwrap();
    let (m, w) = store.warm_start("k").unwrap().unwrap();
    assert_eq!(m, meta);
    assert_eq!(w, vec![1, 2, 3]);
}
