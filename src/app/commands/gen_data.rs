//! `arbor gen-data`: Countdown splits written as JSONL.
use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::engine::task::countdown::{generate, Preset};
use crate::engine::task::write_jsonl;

pub struct GenDataOptions {
    pub preset: String,
    pub seed: u64,
    pub train: usize,
    pub test: usize,
    /// Validation problems (0: the two-way split of before).
    pub validation: usize,
    pub out: PathBuf,
}

pub fn gen_data(o: GenDataOptions) -> Result<()> {
    let preset = Preset::by_name(&o.preset)?;
    let (train_set, validation_set, test_set, seed) = if o.validation > 0 {
        let s = crate::engine::task::countdown::generate_held_out(
            &preset,
            o.seed,
            o.train,
            o.validation,
            o.test,
        )?;
        (s.train, s.validation, s.test, s.seed)
    } else {
        let s = generate(&preset, o.seed, o.train, o.test)?;
        (s.train, Vec::new(), s.test, s.seed)
    };
    std::fs::create_dir_all(&o.out)
        .with_context(|| format!("cannot create {}", o.out.display()))?;
    let train = o.out.join("train.jsonl");
    let test = o.out.join("test.jsonl");
    write_jsonl(&train, &train_set)?;
    write_jsonl(&test, &test_set)?;
    if o.validation > 0 {
        write_jsonl(&o.out.join("validation.jsonl"), &validation_set)?;
    }
    let settings = serde_json::json!({
        "preset": preset,
        "seed": seed,
        "train": train_set.len(),
        "validation": validation_set.len(),
        "test": test_set.len(),
        "multisets": "disjoint between splits",
    });
    let meta = o.out.join("split.json");
    std::fs::write(&meta, serde_json::to_vec_pretty(&settings)?)
        .with_context(|| format!("cannot write {}", meta.display()))?;
    println!(
        "{}",
        serde_json::json!({
            "train": train, "test": test, "preset": o.preset, "seed": o.seed,
            "train_problems": train_set.len(), "test_problems": test_set.len(),
            "validation_problems": validation_set.len(),
        })
    );
    Ok(())
}
