//! The arms of a comparison: a method, a label, and settings that differ from the shared
//! config. `deepsearch-paper` is DeepSearch with the paper's switches (no step judgement,
//! no merging, unsolved trees kept); `--arm LABEL=METHOD:KEY=VALUE:...` names any other
//! variant, for ablations.
use anyhow::{anyhow, bail, Result};

use crate::engine::training::config::RunConfig;
use crate::engine::training::registry::MethodKind;

#[derive(Clone, Debug, PartialEq)]
pub struct Arm {
    /// Column and run-name label.
    pub label: String,
    pub method: MethodKind,
    /// Dotted config keys and TOML values applied on top of the shared config.
    pub overrides: Vec<(String, String)>,
}

impl Arm {
    /// An item of `--methods`: a method name or `deepsearch-paper`.
    pub fn from_method(name: &str) -> Result<Arm> {
        if name == "deepsearch-paper" {
            return Ok(Arm {
                label: name.into(),
                method: MethodKind::DeepSearch,
                overrides: vec![
                    ("search.step_check".into(), "false".into()),
                    ("search.merge_siblings".into(), "false".into()),
                    ("search.unsolved".into(), "\"keep\"".into()),
                ],
            });
        }
        let method: MethodKind = name.parse().map_err(|e| anyhow!("--methods: {e}"))?;
        Ok(Arm {
            label: method.name().into(),
            method,
            overrides: Vec::new(),
        })
    }

    /// `LABEL=METHOD[:KEY=VALUE]...`, e.g. `nomerge=deepsearch:search.merge_siblings=false`.
    pub fn parse(spec: &str) -> Result<Arm> {
        let (label, rest) = spec.split_once('=').ok_or_else(|| {
            anyhow!("--arm {spec:?}: expected LABEL=METHOD[:KEY=VALUE...], e.g. nomerge=deepsearch:search.merge_siblings=false")
        })?;
        crate::store::validate_run_name(label).map_err(|e| anyhow!("--arm {spec:?}: {e}"))?;
        let mut parts = rest.split(':');
        let base = Arm::from_method(parts.next().unwrap_or(""))
            .map_err(|e| anyhow!("--arm {spec:?}: {e}"))?;
        let mut overrides = base.overrides;
        for kv in parts {
            let (k, v) = kv
                .split_once('=')
                .ok_or_else(|| anyhow!("--arm {spec:?}: {kv:?} is not KEY=VALUE"))?;
            overrides.push((k.trim().to_string(), toml_value(v.trim())));
        }
        Ok(Arm {
            label: label.to_string(),
            method: base.method,
            overrides,
        })
    }

    /// The shared config with this arm's method and overrides, validated.
    pub fn config(&self, base: &RunConfig) -> Result<RunConfig> {
        let mut cfg = base.clone();
        cfg.method = self.method;
        if self.overrides.is_empty() {
            return Ok(cfg);
        }
        let mut doc: toml::Table = toml::from_str(&cfg.to_toml())?;
        for (key, value) in &self.overrides {
            let v: toml::Value = toml::from_str::<toml::Table>(&format!("v = {value}"))
                .map_err(|e| anyhow!("arm {}: {key} = {value}: {e}", self.label))?
                .remove("v")
                .ok_or_else(|| anyhow!("arm {}: {key} has no value", self.label))?;
            let mut table = &mut doc;
            let path: Vec<&str> = key.split('.').collect();
            for part in &path[..path.len() - 1] {
                table = table
                    .entry(part.to_string())
                    .or_insert_with(|| toml::Value::Table(Default::default()))
                    .as_table_mut()
                    .ok_or_else(|| anyhow!("arm {}: {key}: {part} is not a section", self.label))?;
            }
            table.insert(path[path.len() - 1].to_string(), v);
        }
        let text = toml::to_string(&doc)?;
        let cfg: RunConfig =
            toml::from_str(&text).map_err(|e| anyhow!("arm {}: {}", self.label, e.message()))?;
        cfg.validate()
            .map_err(|e| anyhow!("arm {}: {e}", self.label))?;
        if cfg.method != self.method {
            bail!(
                "arm {}: set the method with LABEL=METHOD, not a key",
                self.label
            );
        }
        Ok(cfg)
    }
}

/// A bare word becomes a TOML string; numbers, booleans and quoted strings stay as they are.
fn toml_value(v: &str) -> String {
    let plain = v == "true"
        || v == "false"
        || v.parse::<f64>().is_ok()
        || v.starts_with('"')
        || v.starts_with('[');
    if plain {
        v.to_string()
    } else {
        format!("{v:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::methods::deepsearch::tree_grpo::Unsolved;

    #[test]
    fn arms_set_their_method_and_overrides() {
        let base = RunConfig::default();
        let paper = Arm::from_method("deepsearch-paper").unwrap();
        let c = paper.config(&base).unwrap();
        assert_eq!(c.method, MethodKind::DeepSearch);
        assert!(!c.search.step_check && !c.search.merge_siblings);
        assert_eq!(c.search.unsolved, Unsolved::Keep);
        let a = Arm::parse("neg=deepsearch:search.unsolved=negative:train.lr=5e-5").unwrap();
        let c = a.config(&base).unwrap();
        assert_eq!(c.search.unsolved, Unsolved::Negative);
        assert_eq!(c.train.lr, 5e-5);
        assert_eq!(a.label, "neg");
        assert_eq!(Arm::from_method("grpo").unwrap().label, "grpo");
    }

    #[test]
    fn bad_arms_name_the_culprit() {
        let base = RunConfig::default();
        let e = Arm::parse("x=deepsearch:search.nope=1")
            .unwrap()
            .config(&base)
            .unwrap_err();
        assert!(e.to_string().contains("nope"), "{e}");
        let e = Arm::parse("x=deepsearch:train.lr=-1")
            .unwrap()
            .config(&base)
            .unwrap_err();
        assert!(e.to_string().contains("train.lr"), "{e}");
        assert!(Arm::parse("deepsearch")
            .unwrap_err()
            .to_string()
            .contains("LABEL=METHOD"));
        assert!(Arm::parse("x=sgd")
            .unwrap_err()
            .to_string()
            .contains("unknown method"));
        assert!(Arm::parse("a b=grpo").is_err());
    }
}
