//! Resumable checkpoints: everything a run needs to continue exactly where it was.
//!
//! A checkpoint folder holds the weights (`model.safetensors`, `config.json`, the Hugging
//! Face layout), the optimizer moments (`optimizer.safetensors`) and the trainer's state
//! (`trainer_state.json`: RNG, data cursor, round, hard set, solution cache, settings in
//! force). The folder is written under a temporary name, every file fsynced, then renamed
//! into place and the parent fsynced, so a checkpoint is either complete or absent.
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};

use crate::engine::policy::{checkpoint, Policy};
use crate::engine::rl::groups::SearchMetrics;
use crate::engine::rl::optim::AdamW;
use crate::engine::training::metrics::EvalResult;

/// Version of `trainer_state.json`; a newer one is refused.
pub const STATE_VERSION: u32 = 1;

pub const STATE_FILE: &str = "trainer_state.json";
pub const OPTIMIZER_FILE: &str = "optimizer.safetensors";

#[derive(Debug, thiserror::Error)]
pub enum ResumeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error(transparent)]
    Checkpoint(#[from] checkpoint::CheckpointError),
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ResumeError + '_ {
    move |source| ResumeError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A stored RNG position that is not a number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("rng.word_pos {word_pos:?} is not a number")]
pub struct RngStateError {
    pub word_pos: String,
}

/// A ChaCha stream's exact position.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RngState {
    pub seed: [u8; 32],
    pub stream: u64,
    /// The word position (a u128, kept as text for JSON).
    pub word_pos: String,
}

impl RngState {
    pub fn of(rng: &ChaCha8Rng) -> Self {
        Self {
            seed: rng.get_seed(),
            stream: rng.get_stream(),
            word_pos: rng.get_word_pos().to_string(),
        }
    }

    pub fn restore(&self) -> Result<ChaCha8Rng, RngStateError> {
        let pos: u128 = self.word_pos.parse().map_err(|_| RngStateError {
            word_pos: self.word_pos.clone(),
        })?;
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(pos);
        Ok(rng)
    }
}

/// The trainer's state between iterations, apart from weights and optimizer moments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainerState {
    pub version: u32,
    /// The last iteration this state includes.
    pub iteration: u64,
    /// The settings in force (retunes included), as TOML.
    pub config_toml: String,
    pub rng: RngState,
    pub data_rng: RngState,
    pub optimizer_steps: u64,
    pub generated_tokens: u64,
    pub pool: Vec<usize>,
    pub order: Vec<usize>,
    pub cursor: usize,
    pub skipped: Vec<usize>,
    pub search_totals: SearchMetrics,
    pub store_seconds: f64,
    pub eval_start: Option<EvalResult>,
    /// Consecutive iterations whose every update was non-finite.
    pub nonfinite_streak: u64,
    /// Generated tokens spent on hard-set filtering (part of `generated_tokens`).
    #[serde(default)]
    pub filter_tokens: u64,
    /// Optimizer steps owed to the tokens generated so far (`train.tokens_per_step`).
    #[serde(default)]
    pub steps_owed: f64,
    /// Samples waiting for their optimizer step.
    #[serde(default)]
    pub buffered: Vec<crate::engine::rl::update::Sample>,
    /// Problems solved and response tokens trained on so far.
    #[serde(default)]
    pub solved_total: u64,
    #[serde(default)]
    pub trained_tokens: u64,
    /// Token positions the KL reference was run on (compute beside the update's).
    #[serde(default)]
    pub reference_tokens: u64,
    /// The run's evaluations so far (plateau detection).
    #[serde(default)]
    pub eval_history: Vec<EvalResult>,
    /// The committed record of the last iteration when a stop interrupted its evaluation:
    /// the evaluation is run again when the run resumes, and the record amended with it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eval_owed: Option<crate::engine::training::records::IterationMetrics>,
    /// The value head's fit before the first iteration, once done (a resume keeps it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value_prefit: Option<crate::engine::rl::value_fit::ValueFit>,
    /// The method's own state (DeepSearch: `round`, `cache`, `pending`; grpo_hard: its
    /// solved set), as top-level keys: checkpoints written before the method seam hold
    /// DeepSearch's under the same names, so they resume unchanged.
    #[serde(flatten)]
    pub method: serde_json::Map<String, serde_json::Value>,
}

/// Why a checkpoint was written (scheduled ones are pruned to the newest few).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckpointKind {
    #[default]
    Scheduled,
    Requested,
    Final,
}

/// What a checkpoint write receives from the trainer.
pub struct TrainingCheckpoint<'a> {
    pub policy: &'a Policy,
    /// The initial policy's weights, when the run's loss has a KL to it.
    pub reference: Option<&'a HashMap<String, Tensor>>,
    pub optimizer: &'a AdamW,
    pub state: TrainerState,
    pub kind: CheckpointKind,
}

fn write_synced(path: &Path, bytes: &[u8]) -> Result<(), ResumeError> {
    use std::io::Write;
    let mut f = std::fs::File::create(path).map_err(io(path))?;
    f.write_all(bytes).map_err(io(path))?;
    f.sync_all().map_err(io(path))
}

/// Writes named tensors as safetensors (in name order, so the bytes do not depend on a
/// map's iteration order), synced.
fn write_tensors<'a>(
    path: &Path,
    named: impl IntoIterator<Item = (&'a String, &'a Tensor)>,
) -> Result<(), ResumeError> {
    let mut named: Vec<(&String, &Tensor)> = named.into_iter().collect();
    named.sort_by(|a, b| a.0.cmp(b.0));
    let bytes = safetensors::serialize(named.into_iter().map(|(k, v)| (k.as_str(), v)), None)
        .map_err(|e| ResumeError::Invalid {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
    write_synced(path, &bytes)
}

fn sync_dir(dir: &Path) -> Result<(), ResumeError> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .map_err(io(dir))
}

/// Writes the checkpoint folder `dir` atomically (a previous folder of that name is
/// replaced only once the new one is complete).
pub fn save(dir: &Path, ck: &TrainingCheckpoint) -> Result<(), ResumeError> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io(parent))?;
    let name = dir
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .unwrap_or_else(|| "checkpoint".into());
    let tmp = parent.join(format!(".{name}.tmp"));
    if tmp.exists() {
        std::fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
    }
    checkpoint::save(ck.policy, &tmp)?;
    let tensors = ck.optimizer.state_tensors();
    write_tensors(
        &tmp.join(OPTIMIZER_FILE),
        tensors.iter().map(|(k, v)| (k, v)),
    )?;
    if let Some(reference) = ck.reference {
        write_tensors(&tmp.join(REFERENCE_FILE), reference)?;
    }
    let state_path = tmp.join(STATE_FILE);
    let json = serde_json::to_vec_pretty(&ck.state).map_err(|e| ResumeError::Invalid {
        path: state_path.clone(),
        message: e.to_string(),
    })?;
    write_synced(&state_path, &json)?;
    sync_dir(&tmp)?;
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(io(dir))?;
    }
    std::fs::rename(&tmp, dir).map_err(io(dir))?;
    sync_dir(parent)
}

/// Reads only the trainer state of a checkpoint folder.
pub fn load_state(dir: &Path) -> Result<TrainerState, ResumeError> {
    let path = dir.join(STATE_FILE);
    let text = std::fs::read_to_string(&path).map_err(io(&path))?;
    let state: TrainerState = serde_json::from_str(&text).map_err(|e| ResumeError::Invalid {
        path: path.clone(),
        message: format!("not a trainer state: {e}"),
    })?;
    if state.version > STATE_VERSION {
        return Err(ResumeError::Invalid {
            path,
            message: format!(
                "written by a newer arbor (state version {}, this build reads {STATE_VERSION}); upgrade arbor",
                state.version
            ),
        });
    }
    Ok(state)
}

/// Reads the optimizer moments of a checkpoint folder.
pub fn load_optimizer(dir: &Path, device: &Device) -> Result<HashMap<String, Tensor>, ResumeError> {
    let path = dir.join(OPTIMIZER_FILE);
    let bytes = std::fs::read(&path).map_err(io(&path))?;
    candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| ResumeError::Invalid {
        path,
        message: format!("cannot read optimizer state: {e}"),
    })
}

/// The initial policy's weights of a run with a KL penalty (none for other runs).
pub const REFERENCE_FILE: &str = "reference.safetensors";

/// What a checkpoint folder holds.
pub struct Loaded {
    pub policy: Policy,
    pub moments: HashMap<String, Tensor>,
    pub state: TrainerState,
    /// The KL penalty's reference weights, if the run has them.
    pub reference: Option<HashMap<String, Tensor>>,
}

/// Loads everything: policy, optimizer moments, trainer state, reference weights.
pub fn load(dir: &Path, device: &Device) -> Result<Loaded, ResumeError> {
    let state = load_state(dir)?;
    let policy = checkpoint::load(dir, device)?;
    let moments = load_optimizer(dir, device)?;
    let path = dir.join(REFERENCE_FILE);
    let reference = if path.exists() {
        let bytes = std::fs::read(&path).map_err(io(&path))?;
        Some(
            candle_core::safetensors::load_buffer(&bytes, device).map_err(|e| {
                ResumeError::Invalid {
                    path,
                    message: format!("cannot read the reference policy: {e}"),
                }
            })?,
        )
    } else {
        None
    };
    Ok(Loaded {
        policy,
        moments,
        state,
        reference,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngCore;

    /// A `trainer_state.json` as written before the method seam (DeepSearch's round,
    /// cache and pending registrations as typed top-level fields) still loads, and the
    /// method reads its state from the same keys; a new one writes them back there.
    #[test]
    fn a_state_written_before_the_method_seam_loads_into_deepsearch() {
        use crate::engine::methods::deepsearch::method::DeepSearch;
        use crate::engine::methods::Method;
        let rng = RngState::of(&ChaCha8Rng::seed_from_u64(1));
        let rng = serde_json::to_string(&rng).unwrap();
        let old = format!(
            r#"{{"version":1,"iteration":7,"config_toml":"method = \"deepsearch\"\n",
            "rng":{rng},"data_rng":{rng},"optimizer_steps":9,"generated_tokens":1234,
            "pool":[0,2],"order":[2,0,1],"cursor":1,"round":3,
            "cache":{{"solutions":{{"2":[[5,6,2]]}}}},
            "pending":[{{"problem":0,"solutions":[[7,2]]}}],"skipped":[],
            "search_totals":{{}},"store_seconds":0.5,"eval_start":null,"nonfinite_streak":0}}"#
        );
        let state: TrainerState = serde_json::from_str(&old).unwrap();
        let mut m = DeepSearch::new(&Default::default(), &Default::default());
        m.load(&state.method).unwrap();
        let saved = m.save();
        assert_eq!(saved["round"], 3);
        assert_eq!(
            saved["cache"]["solutions"]["2"],
            serde_json::json!([[5, 6, 2]])
        );
        assert_eq!(saved["pending"][0]["problem"], 0);
        let again = TrainerState {
            method: saved,
            ..state
        };
        let text = serde_json::to_value(&again).unwrap();
        assert_eq!(text["round"], 3, "the keys stay top-level: {text}");
    }

    #[test]
    fn rng_state_round_trips_mid_stream() {
        let mut a = ChaCha8Rng::seed_from_u64(7);
        for _ in 0..13 {
            a.next_u32();
        }
        let s = RngState::of(&a);
        let json = serde_json::to_string(&s).unwrap();
        let mut b = serde_json::from_str::<RngState>(&json)
            .unwrap()
            .restore()
            .unwrap();
        for _ in 0..100 {
            assert_eq!(a.next_u64(), b.next_u64());
        }
    }
}
