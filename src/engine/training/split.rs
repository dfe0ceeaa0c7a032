//! The problems of a run: generated from a preset, or loaded from JSONL files.
use serde::Serialize;

use crate::engine::task::countdown::{generate, generate_held_out, HeldOutSplit, Preset};
use crate::engine::task::{task_of, Problem, Rules};
use crate::engine::training::config::DataConfig;
use crate::engine::training::error::EngineError;

/// Train and test problems with the verifier rules that apply to them.
#[derive(Clone, Debug, Serialize)]
pub struct RunData {
    pub train: Vec<Problem>,
    /// Decides settings and detects plateaus; empty unless asked for.
    #[serde(default)]
    pub validation: Vec<Problem>,
    pub test: Vec<Problem>,
    pub rules: Rules,
    pub preset: String,
}

/// Test problems only (for `arbor eval`), honouring `test_data`.
pub fn load(cfg: &DataConfig) -> Result<RunData, EngineError> {
    if cfg.task == crate::engine::task::TaskKind::Math {
        let rules = Rules::math(cfg.math_verifier);
        let task = task_of(&rules);
        let load = |p: &Option<std::path::PathBuf>, flag: &str| match p {
            Some(p) => task.load(p).map_err(|e| EngineError::Data(e.to_string())),
            None => Err(EngineError::Config(format!(
                "the math task needs {flag} (JSONL with problem and answer fields)"
            ))),
        };
        return Ok(RunData {
            train: load(&cfg.train_data, "--train-data")?,
            validation: match &cfg.validation_data {
                Some(_) => load(&cfg.validation_data, "--validation-data")?,
                None => Vec::new(),
            },
            test: load(&cfg.test_data, "--test-data")?,
            rules,
            preset: "math".into(),
        });
    }
    let preset = Preset::by_name(&cfg.preset)
        .map_err(|e| EngineError::Config(format!("data.preset: {e}")))?;
    let rules = Rules::countdown(preset.rules);
    let task = task_of(&rules);
    let load = |p: &std::path::Path| task.load(p).map_err(|e| EngineError::Data(e.to_string()));
    let wants_validation = cfg.validation_size > 0 || cfg.validation_data.is_some();
    if wants_validation {
        // Three disjoint splits by multiset; files replace the generated parts.
        let need =
            cfg.train_data.is_none() || cfg.test_data.is_none() || cfg.validation_data.is_none();
        let g = if need {
            Some(
                generate_held_out(
                    &preset,
                    cfg.seed,
                    cfg.train_size,
                    cfg.validation_size.max(1),
                    cfg.test_size,
                )
                .map_err(|e| EngineError::Data(e.to_string()))?,
            )
        } else {
            None
        };
        let pick = |file: &Option<std::path::PathBuf>,
                    part: fn(&HeldOutSplit) -> &Vec<Problem>|
         -> Result<Vec<Problem>, EngineError> {
            match (file, &g) {
                (Some(p), _) => load(p),
                (None, Some(g)) => Ok(part(g).clone()),
                (None, None) => Ok(Vec::new()),
            }
        };
        return Ok(RunData {
            train: pick(&cfg.train_data, |g| &g.train)?,
            validation: pick(&cfg.validation_data, |g| &g.validation)?,
            test: pick(&cfg.test_data, |g| &g.test)?,
            rules,
            preset: preset.name,
        });
    }
    let need_generated = cfg.train_data.is_none() || cfg.test_data.is_none();
    let generated = if need_generated {
        Some(
            generate(&preset, cfg.seed, cfg.train_size, cfg.test_size)
                .map_err(|e| EngineError::Data(e.to_string()))?,
        )
    } else {
        None
    };
    let train = match (&cfg.train_data, &generated) {
        (Some(p), _) => load(p)?,
        (None, Some(g)) => g.train.clone(),
        (None, None) => Vec::new(),
    };
    let test = match (&cfg.test_data, &generated) {
        (Some(p), _) => load(p)?,
        (None, Some(g)) => g.test.clone(),
        (None, None) => Vec::new(),
    };
    Ok(RunData {
        train,
        validation: Vec::new(),
        test,
        rules,
        preset: preset.name,
    })
}
