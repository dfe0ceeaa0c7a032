//! A run's settings: the config file with the command-line overrides applied.
use anyhow::{anyhow, Context, Result};

use crate::app::commands::train::TrainOptions;
use crate::engine::policy::checkpoint;
use crate::engine::training::config::RunConfig;

/// Reads the config file (if any) and applies the command-line overrides.
pub fn resolve_config(o: &TrainOptions) -> Result<RunConfig> {
    let mut cfg = match &o.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read config {}", path.display()))?;
            RunConfig::from_toml(&text).map_err(|e| anyhow!("config {}: {e}", path.display()))?
        }
        None => RunConfig::default(),
    };
    if let Some(m) = o.method {
        cfg.method = m;
    }
    if let Some(s) = o.seed {
        cfg.seed = s;
    }
    if let Some(i) = o.iterations {
        cfg.train.iterations = i;
    }
    if let Some(b) = o.budget_tokens {
        cfg.train.budget_tokens = Some(b);
    }
    if let Some(p) = &o.train_data {
        cfg.data.train_data = Some(p.clone());
    }
    if let Some(p) = &o.test_data {
        cfg.data.test_data = Some(p.clone());
    }
    if let Some(m) = &o.model {
        cfg.policy.model = Some(m.clone());
    }
    if let Some(d) = &o.device {
        cfg.policy.device = d.clone();
    }
    if let Some(t) = o.task {
        cfg.data.task = t;
    }
    if let Some(g) = &o.generator {
        let (kind, url) = crate::engine::policy::server::remote::parse_generator_flag(g)
            .map_err(|e| anyhow!(e))?;
        cfg.generator.kind = kind;
        if let Some(u) = url {
            cfg.generator.url = u;
        }
    }
    let origin = o
        .config
        .as_ref()
        .map(|p| format!("config {}", p.display()))
        .unwrap_or_else(|| "settings".into());
    cfg.validate().map_err(|e| anyhow!("{origin}: {e}"))?;
    if let Some(dir) = &cfg.policy.model {
        checkpoint::check_folder(dir).map_err(|e| anyhow!("--model: {e}"))?;
    }
    Ok(cfg)
}
