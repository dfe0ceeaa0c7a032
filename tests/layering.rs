//! The engine's folders depend one way: task <- policy <- rl <- methods <- training
//! (the app above, the store beside). Reads every `crate::engine::...` path in
//! src/engine and fails on an arrow that runs up, and on `pub use` in the engine's root.
use std::path::{Path, PathBuf};

const LAYERS: [&str; 5] = ["task", "policy", "rl", "methods", "training"];

fn level(folder: &str) -> Option<usize> {
    LAYERS.iter().position(|l| *l == folder)
}

fn files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

fn engine() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("src/engine")
}

/// Each `crate::engine::<folder>` a file names, with its line number.
fn arrows(text: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let code = line.split("//").next().unwrap_or("");
        let mut rest = code;
        while let Some(i) = rest.find("crate::engine::") {
            rest = &rest[i + "crate::engine::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            out.push((n + 1, name));
        }
    }
    out
}

#[test]
fn engine_folders_depend_one_way() {
    let root = engine();
    let mut all = Vec::new();
    files(&root, &mut all);
    let mut bad = Vec::new();
    for f in &all {
        let rel = f.strip_prefix(&root).unwrap();
        let Some(first) = rel.components().next() else {
            continue;
        };
        let folder = first.as_os_str().to_string_lossy().to_string();
        if rel.components().count() == 1 {
            // The engine's root holds mod.rs only.
            assert_eq!(
                folder, "mod.rs",
                "src/engine/{folder}: the engine's root holds only mod.rs; put the file in a layer"
            );
            continue;
        }
        let from = level(&folder).unwrap_or_else(|| {
            panic!("src/engine/{folder}/ is not a layer; the layers are {LAYERS:?}")
        });
        let text = std::fs::read_to_string(f).unwrap();
        for (line, to) in arrows(&text) {
            match level(&to) {
                Some(l) if l > from => bad.push(format!(
                    "{}:{line}: {folder}/ imports {to}/, which sits above it",
                    f.display()
                )),
                Some(_) => {}
                None => bad.push(format!(
                    "{}:{line}: crate::engine::{to} is not a layer (name the real path)",
                    f.display()
                )),
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}

#[test]
fn the_engine_root_declares_modules_only() {
    let text = std::fs::read_to_string(engine().join("mod.rs")).unwrap();
    for line in text.lines() {
        let l = line.trim();
        assert!(
            l.is_empty() || l.starts_with("//") || l.starts_with("pub mod "),
            "src/engine/mod.rs: {l:?} (only `pub mod` lines; import from the real path)"
        );
    }
}

#[test]
fn the_readme_layout_names_every_folder_under_src() {
    let base = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(base.join("README.md")).unwrap();
    let mut dirs = Vec::new();
    fn walk(d: &Path, base: &Path, out: &mut Vec<String>) {
        out.push(format!(
            "{}/",
            d.strip_prefix(base).unwrap().to_string_lossy()
        ));
        for e in std::fs::read_dir(d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, base, out);
            }
        }
    }
    walk(&base.join("src"), &base, &mut dirs);
    let missing: Vec<&String> = dirs
        .iter()
        .filter(|d| !readme.contains(d.as_str()))
        .collect();
    assert!(
        missing.is_empty(),
        "README.md's layout misses {missing:?}: add a line for each folder"
    );
}

/// Each task's folder under src/engine/task/ names no other task: what tasks share sits in
/// task/ itself (the problem, the verdict, the data files, the rules).
#[test]
fn tasks_do_not_import_each_other() {
    let tasks = engine().join("task");
    let names: Vec<String> = std::fs::read_dir(&tasks)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_dir())
        .map(|p| p.file_name().unwrap().to_string_lossy().to_string())
        .collect();
    assert!(names.len() >= 2, "{names:?}");
    let mut bad = Vec::new();
    for task in &names {
        let mut all = Vec::new();
        files(&tasks.join(task), &mut all);
        for f in &all {
            let text = std::fs::read_to_string(f).unwrap();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                for other in names.iter().filter(|o| *o != task) {
                    if code.contains(&format!("task::{other}")) {
                        bad.push(format!("{}:{}: {task}/ names {other}", f.display(), n + 1));
                    }
                }
            }
        }
    }
    assert!(bad.is_empty(), "{}", bad.join("\n"));
}
