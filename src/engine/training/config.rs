//! The run configuration: plain data with the defaults documented field by field.
//!
//! A TOML file may set any subset; unknown keys are refused with their name, and
//! [`RunConfig::validate`] names the field of any out-of-range value.
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::engine::methods::deepsearch::adaptive::AdaptiveConfig;
use crate::engine::methods::deepsearch::search::config::SearchConfig;
use crate::engine::methods::passk::PassKConfig;
use crate::engine::rl::config::TrainConfig;
use crate::engine::training::registry::MethodKind;

/// Everything a run needs; `arbor train --config FILE.toml` overrides any subset.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RunConfig {
    /// Seed of the run's RNGs: problem order, sampling, initialisation of the update
    /// order. Default 1.
    pub seed: u64,
    /// Training method. Default grpo (deepsearch once search is built).
    pub method: MethodKind,
    pub data: DataConfig,
    pub policy: TinyPolicy,
    pub warm_start: WarmStartConfig,
    pub train: TrainConfig,
    pub search: SearchConfig,
    pub adaptive: AdaptiveConfig,
    pub eval: EvalConfig,
    pub tree_distill: crate::engine::methods::tree_distill::TreeDistillConfig,
    pub cispo: crate::engine::rl::cispo::CispoConfig,
    /// The `passk` method's settings.
    pub passk: PassKConfig,
    /// The `treerl` method's settings.
    pub treerl: crate::engine::methods::treerl::TreeRlConfig,
    /// Where training samples come from: arbor's candle sampler or an inference engine.
    pub generator: crate::engine::policy::server::remote::GeneratorConfig,
}

/// Where problems come from.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// countdown (default) or math (JSONL `problem` / `answer` from train_data and
    /// test_data, judged by the last `\boxed{}`; needs policy.model).
    pub task: crate::engine::task::TaskKind,
    /// Math task's answer comparison: "minerva" (Minerva/DAPO normalisation, the paper's
    /// released reward; default) or "lenient" (also \left/\right, \dfrac, %, trailing
    /// periods, ...).
    pub math_verifier: crate::engine::task::math::MathVerifier,
    /// Countdown preset used to generate problems (and whose verifier rules apply).
    /// Default "default".
    pub preset: String,
    /// Seed of the generated split; fixed apart from the run seed so every run and
    /// method sees the same problems. Default 1234.
    pub seed: u64,
    /// Generated training problems. Default 2000.
    pub train_size: usize,
    /// Generated held-out problems. Default 200.
    pub test_size: usize,
    /// Generated validation problems (0: none). With a validation split, train,
    /// validation and test come from disjoint number multisets, a held-out multiset
    /// giving several targets where the preset has few multisets. Settings and plateaus
    /// are judged on validation, never on test. Default 0.
    pub validation_size: usize,
    /// JSONL file of validation problems replacing the generated ones.
    pub validation_data: Option<PathBuf>,
    /// JSONL file of training problems (`nums`, `target`) replacing the generated ones.
    pub train_data: Option<PathBuf>,
    /// JSONL file of held-out problems replacing the generated ones.
    pub test_data: Option<PathBuf>,
}

/// Size of the tiny default transformer (Qwen2 architecture).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TinyPolicy {
    /// Default 128.
    pub hidden_size: usize,
    /// Default 384.
    pub intermediate_size: usize,
    /// Default 4.
    pub num_hidden_layers: usize,
    /// Default 4.
    pub num_attention_heads: usize,
    /// Default 2 (grouped-query attention, as Qwen2).
    pub num_key_value_heads: usize,
    /// Default 128 positions (prompt plus completion).
    pub max_position_embeddings: usize,
    /// A checkpoint folder in Hugging Face layout (config.json, model.safetensors or
    /// shards, tokenizer.json) to train instead of the tiny model; no warm start then,
    /// and the sizes above are ignored. Default: none.
    pub model: Option<std::path::PathBuf>,
    /// cpu, cuda, or auto (CUDA when built with `--features cuda` and a GPU is present,
    /// else CPU with a message). Default "cpu".
    pub device: String,
}

/// Supervised warm start on undirected solver traces.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct WarmStartConfig {
    /// Optimizer steps. Default 600 (about 3 minutes on 2 cores).
    pub steps: usize,
    /// Sequences per step. Default 64.
    pub batch_size: usize,
    /// Peak learning rate (linear warm-up, cosine decay). Default 3e-3.
    pub lr: f64,
    /// Seed of initialisation and traces; fixed so all runs share one cached warm start.
    /// Default 0.
    pub seed: u64,
}

/// Held-out evaluation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// Evaluate every this many iterations (and at start and end); 0: start and end only.
    /// Default 200.
    pub every: u64,
    /// Samples per test problem: pass@1 is mean@k, pass@k the unbiased estimator. Default 32.
    pub k: usize,
    /// Sampling temperature for evaluation. Default 1.0.
    pub temperature: f32,
    /// Test problems used (0: all). Default 0.
    pub problems: usize,
    /// Also evaluate whenever the generated training tokens cross a multiple of this
    /// (0: off). `arbor compare` uses it so every method is measured at the same
    /// compute milestones. Default 0.
    #[serde(default)]
    pub every_tokens: u64,
    /// Which split the run's evaluations use: test (default) or validation (to choose
    /// settings or detect a plateau without looking at test; needs
    /// data.validation_size or data.validation_data).
    #[serde(default)]
    pub split: EvalSplit,
}

/// The split a run is evaluated on.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EvalSplit {
    #[default]
    Test,
    Validation,
}

impl Default for RunConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            method: MethodKind::Grpo,
            data: DataConfig::default(),
            policy: TinyPolicy::default(),
            warm_start: WarmStartConfig::default(),
            train: TrainConfig::default(),
            search: SearchConfig::default(),
            adaptive: AdaptiveConfig::default(),
            eval: EvalConfig::default(),
            tree_distill: Default::default(),
            cispo: Default::default(),
            passk: Default::default(),
            treerl: Default::default(),
            generator: Default::default(),
        }
    }
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            task: crate::engine::task::TaskKind::Countdown,
            math_verifier: crate::engine::task::math::MathVerifier::Minerva,
            preset: "default".into(),
            seed: 1234,
            train_size: 2000,
            test_size: 200,
            validation_size: 0,
            validation_data: None,
            train_data: None,
            test_data: None,
        }
    }
}

impl Default for TinyPolicy {
    fn default() -> Self {
        Self {
            hidden_size: 128,
            intermediate_size: 384,
            num_hidden_layers: 4,
            num_attention_heads: 4,
            num_key_value_heads: 2,
            max_position_embeddings: 128,
            model: None,
            device: "cpu".into(),
        }
    }
}

impl Default for WarmStartConfig {
    fn default() -> Self {
        Self {
            steps: 600,
            batch_size: 64,
            lr: 3e-3,
            seed: 0,
        }
    }
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            every: 200,
            k: 32,
            temperature: 1.0,
            problems: 0,
            every_tokens: 0,
            split: EvalSplit::Test,
        }
    }
}

/// TOML a [`RunConfig`] cannot be read from: the parser's message (which names the
/// unknown or mistyped key, with its line and a caret under it), without its trailing
/// newline.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .0.to_string().trim_end())]
pub struct TomlError(pub toml::de::Error);

/// A configuration problem, naming the field.
#[derive(Debug, Clone, thiserror::Error, PartialEq)]
#[error("{field} = {value}: {reason}")]
pub struct ConfigError {
    pub field: String,
    pub value: String,
    pub reason: String,
}

fn check(
    ok: bool,
    field: &str,
    value: impl std::fmt::Display,
    reason: &str,
) -> Result<(), ConfigError> {
    if ok {
        Ok(())
    } else {
        Err(ConfigError {
            field: field.into(),
            value: value.to_string(),
            reason: reason.into(),
        })
    }
}

fn positive_f64(field: &str, v: f64) -> Result<(), ConfigError> {
    check(
        v.is_finite() && v > 0.0,
        field,
        v,
        "must be a positive number",
    )
}

fn non_negative_f64(field: &str, v: f64) -> Result<(), ConfigError> {
    check(
        v.is_finite() && v >= 0.0,
        field,
        v,
        "must be a non-negative number",
    )
}

fn positive_usize(field: &str, v: usize) -> Result<(), ConfigError> {
    check(v > 0, field, v, "must be at least 1")
}

impl RunConfig {
    /// Parses TOML text; errors name the unknown or mistyped key (and its line).
    pub fn from_toml(text: &str) -> Result<Self, TomlError> {
        toml::from_str(text).map_err(TomlError)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string(self).unwrap_or_default()
    }

    /// Checks every value's range.
    pub fn validate(&self) -> Result<(), ConfigError> {
        self.validate_data()?;
        self.validate_policy()?;
        self.validate_train()?;
        self.validate_search()?;
        self.validate_adaptive_and_eval()?;
        // The key is the field and the problem the reason; the value stays empty, so the
        // message reads as it did before these errors were typed.
        self.generator.validate().map_err(|e| ConfigError {
            field: e.key.into(),
            value: String::new(),
            reason: e.problem.to_string(),
        })
    }

    fn validate_data(&self) -> Result<(), ConfigError> {
        let d = &self.data;
        if d.task == crate::engine::task::TaskKind::Math {
            check(
                d.train_data.is_some() && d.test_data.is_some(),
                "data.task",
                "math",
                "needs data.train_data and data.test_data (--train-data, --test-data): JSONL with problem and answer fields",
            )?;
            check(
                self.policy.model.is_some(),
                "data.task",
                "math",
                "needs policy.model (--model DIR): the tiny model's warm start is Countdown's",
            )?;
        }
        positive_usize("data.test_size", d.test_size)?;
        positive_usize("data.train_size", d.train_size)?;
        Ok(())
    }

    fn validate_policy(&self) -> Result<(), ConfigError> {
        let p = &self.policy;
        positive_usize("policy.hidden_size", p.hidden_size)?;
        positive_usize("policy.intermediate_size", p.intermediate_size)?;
        positive_usize("policy.num_hidden_layers", p.num_hidden_layers)?;
        positive_usize("policy.num_attention_heads", p.num_attention_heads)?;
        positive_usize("policy.num_key_value_heads", p.num_key_value_heads)?;
        check(
            p.max_position_embeddings >= 32,
            "policy.max_position_embeddings",
            p.max_position_embeddings,
            "must be at least 32",
        )?;
        check(
            matches!(p.device.as_str(), "cpu" | "cuda" | "auto"),
            "policy.device",
            &p.device,
            "must be cpu, cuda or auto",
        )?;
        check(
            p.hidden_size % p.num_attention_heads == 0,
            "policy.num_attention_heads",
            p.num_attention_heads,
            &format!("must divide policy.hidden_size ({})", p.hidden_size),
        )?;
        check(
            (p.hidden_size / p.num_attention_heads) % 2 == 0,
            "policy.hidden_size",
            p.hidden_size,
            "divided by num_attention_heads must be even (rotary embeddings)",
        )?;
        check(
            p.num_attention_heads % p.num_key_value_heads == 0,
            "policy.num_key_value_heads",
            p.num_key_value_heads,
            &format!(
                "must divide policy.num_attention_heads ({})",
                p.num_attention_heads
            ),
        )?;
        let w = &self.warm_start;
        positive_usize("warm_start.batch_size", w.batch_size)?;
        positive_f64("warm_start.lr", w.lr)?;
        Ok(())
    }

    fn validate_train(&self) -> Result<(), ConfigError> {
        let p = &self.policy;
        let t = &self.train;
        check(
            t.iterations > 0,
            "train.iterations",
            t.iterations,
            "must be at least 1",
        )?;
        if let Some(b) = t.budget_tokens {
            check(b > 0, "train.budget_tokens", b, "must be at least 1")?;
        }
        positive_usize("train.problems_per_step", t.problems_per_step)?;
        check(
            t.group_size >= 2,
            "train.group_size",
            t.group_size,
            "must be at least 2",
        )?;
        positive_f64("train.lr", t.lr)?;
        check(t.lr < 1.0, "train.lr", t.lr, "must be below 1")?;
        non_negative_f64("train.weight_decay", t.weight_decay)?;
        non_negative_f64("train.max_grad_norm", t.max_grad_norm)?;
        check(
            t.clip_low.is_finite() && t.clip_low > 0.0 && t.clip_low < 1.0,
            "train.clip_low",
            t.clip_low,
            "must be in (0, 1)",
        )?;
        positive_f64("train.clip_high", t.clip_high)?;
        non_negative_f64("train.dual_clip", t.dual_clip)?;
        check(
            t.dual_clip == 0.0 || t.dual_clip > 1.0,
            "train.dual_clip",
            t.dual_clip,
            "must be 0 (off) or above 1",
        )?;
        check(
            t.temperature.is_finite() && t.temperature > 0.0,
            "train.temperature",
            t.temperature,
            "must be a positive number",
        )?;
        positive_usize("train.max_tokens", t.max_tokens)?;
        // With a checkpoint folder the context length is its config.json's, checked there.
        check(
            p.model.is_some() || t.max_tokens < p.max_position_embeddings,
            "train.max_tokens",
            t.max_tokens,
            "must be below policy.max_position_embeddings",
        )?;
        positive_usize("train.minibatches", t.minibatches)?;
        positive_usize("train.epochs", t.epochs)?;
        positive_usize("train.min_sequences_per_step", t.min_sequences_per_step)?;
        check(
            t.steps_per_1k_tokens.is_finite() && t.steps_per_1k_tokens >= 0.0,
            "train.steps_per_1k_tokens",
            t.steps_per_1k_tokens,
            "must be 0 (off) or a positive number of optimizer steps per 1,000 generated tokens",
        )?;
        Ok(())
    }

    fn validate_search(&self) -> Result<(), ConfigError> {
        let s = &self.search;
        check(s.width >= 1, "search.width", s.width, "must be at least 1")?;
        check(s.n >= 2, "search.n", s.n, "must be at least 2")?;
        non_negative_f64("search.c_uct", s.c_uct)?;
        for (name, v) in [
            ("search.l1", s.l1),
            ("search.l2", s.l2),
            ("search.l3", s.l3),
        ] {
            check(v.is_finite(), name, v, "must be a finite number")?;
        }
        positive_usize("search.max_depth", s.max_depth)?;
        positive_usize("search.step_max_tokens", s.step_max_tokens)?;
        positive_usize("passk.k", self.passk.k)?;
        positive_usize("treerl.chains", self.treerl.chains)?;
        positive_usize("treerl.branches", self.treerl.branches)?;
        if let Some(lr) = self.tree_distill.value_lr {
            positive_f64("tree_distill.value_lr", lr)?;
        }
        check(
            s.gamma_min.is_finite() && (0.0..=1.0).contains(&s.gamma_min),
            "search.gamma_min",
            s.gamma_min,
            "must be in [0, 1]",
        )?;
        positive_usize("search.max_expansions", s.max_expansions)?;
        positive_usize("search.max_tree_tokens", s.max_tree_tokens)?;
        positive_f64("search.q_max", s.q_max)?;
        positive_f64("search.eps_q", s.eps_q)?;
        check(
            s.overlong_buffer <= s.overlong_max,
            "search.overlong_buffer",
            s.overlong_buffer,
            "must not exceed search.overlong_max",
        )?;
        Ok(())
    }

    fn validate_adaptive_and_eval(&self) -> Result<(), ConfigError> {
        let a = &self.adaptive;
        positive_usize("adaptive.filter_k", a.filter_k)?;
        check(
            a.skip_above.is_finite() && (0.0..=1.0).contains(&a.skip_above),
            "adaptive.skip_above",
            a.skip_above,
            "must be in [0, 1]",
        )?;
        check(
            a.delta.is_finite() && (0.0..=1.0).contains(&a.delta),
            "adaptive.delta",
            a.delta,
            "must be in [0, 1]",
        )?;
        let e = &self.eval;
        positive_usize("eval.k", e.k)?;
        check(
            e.split == EvalSplit::Test
                || self.data.validation_size > 0
                || self.data.validation_data.is_some(),
            "eval.split",
            "\"validation\"",
            "needs a validation split: set data.validation_size (or data.validation_data)",
        )?;
        check(
            e.temperature.is_finite() && e.temperature >= 0.0,
            "eval.temperature",
            e.temperature,
            "must be a non-negative number (0 is greedy)",
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {

    #[test]
    fn the_paper_config_parses_and_validates() {
        let cfg = RunConfig::from_toml(include_str!("../../../configs/paper.toml")).unwrap();
        cfg.validate().unwrap();
        assert_eq!(cfg.method, MethodKind::DeepSearch);
        assert_eq!(cfg.data.task, crate::engine::task::TaskKind::Math);
        assert_eq!(
            cfg.search.step,
            crate::engine::methods::deepsearch::search::config::StepMode::Chunk
        );
        assert_eq!(
            (cfg.search.step_max_tokens, cfg.search.max_depth),
            (256, 64)
        );
        assert_eq!((cfg.train.lr, cfg.train.problems_per_step), (1e-6, 256));
    }

    use super::*;

    #[test]
    fn defaults_validate_and_round_trip_through_toml() {
        let c = RunConfig::default();
        c.validate().unwrap();
        assert_eq!(RunConfig::from_toml(&c.to_toml()).unwrap(), c);
        assert_eq!(RunConfig::from_toml("").unwrap(), c);
    }

    #[test]
    fn unknown_keys_and_bad_values_name_the_field() {
        let e = RunConfig::from_toml("[train]\nlearning_rate = 0.1\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("learning_rate"), "{e}");
        assert_eq!(e, e.trim_end(), "no trailing newline");
        let e = RunConfig::from_toml("[train]\nlr = \"fast\"\n")
            .unwrap_err()
            .to_string();
        assert!(e.contains("lr") && e.contains("line 2"), "{e}");
        let c = RunConfig::from_toml("[train]\nlr = -0.1\n").unwrap();
        let e = c.validate().unwrap_err();
        assert_eq!(e.field, "train.lr");
        let c = RunConfig::from_toml("[train]\ntemperature = nan\n").unwrap();
        assert_eq!(c.validate().unwrap_err().field, "train.temperature");
    }

    #[test]
    fn methods_parse_and_unknown_lists_valid_ones() {
        for name in MethodKind::NAMES {
            let toml = format!("method = \"{name}\"");
            let c = RunConfig::from_toml(&toml).unwrap();
            assert_eq!(c.method.name(), *name);
            assert_eq!(name.parse::<MethodKind>().unwrap(), c.method);
        }
        assert_eq!("dapo".parse::<MethodKind>(), Ok(MethodKind::Dapo));
        let e = "ppo".parse::<MethodKind>().unwrap_err().to_string();
        assert!(e.contains("grpo") && e.contains("ppo"), "{e}");
    }
}
