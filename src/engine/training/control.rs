//! Steering a run while it runs: directives the trainer applies at safe points (between
//! iterations, never inside an update), and the retunable settings with their validation.
use serde::{Deserialize, Serialize};

use crate::engine::config::RunConfig;

/// What the trainer is asked to do at its next safe point.
#[derive(Clone, Debug, PartialEq)]
pub enum Directive {
    /// Set a retunable setting (`key`, textual `value`).
    Retune { key: String, value: String },
    /// Write a checkpoint now.
    Checkpoint,
    /// Leave out a training problem (by id) from now on.
    Skip { problem: String },
    /// End the run after the current iteration.
    Stop,
    /// End the run after the current iteration because the process got SIGTERM or
    /// SIGINT ([`StopReason::Signal`]).
    Signal { name: String },
}

/// What a recorded control event was (stored as its lowercase name).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    Pause,
    Resume,
    Retune,
    /// A retune refused, with its reason.
    Refused,
    Checkpoint,
    Skip,
    Stop,
    /// An iteration's update steps were skipped for a NaN or infinite loss or gradient.
    Nonfinite,
    Plateau,
}

impl EventKind {
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Pause => "pause",
            EventKind::Resume => "resume",
            EventKind::Retune => "retune",
            EventKind::Refused => "refused",
            EventKind::Checkpoint => "checkpoint",
            EventKind::Skip => "skip",
            EventKind::Stop => "stop",
            EventKind::Nonfinite => "nonfinite",
            EventKind::Plateau => "plateau",
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Why a run ended (the summary's `stopped_by`, under these lowercase names).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StopReason {
    /// It ran its configured iterations.
    Iterations,
    /// It spent its token budget.
    Budget,
    /// The user stopped it.
    User,
    /// SIGTERM or SIGINT (headless).
    Signal,
    /// Repeated non-finite updates and no user to resume it.
    Nonfinite,
    /// The evaluation plateaued (`train.stop_at_plateau`).
    Plateau,
}

impl StopReason {
    /// Whether the run was cut short and is left to be resumed (`--resume`), rather than
    /// finished.
    pub fn resumable(self) -> bool {
        matches!(
            self,
            StopReason::User | StopReason::Signal | StopReason::Nonfinite
        )
    }
}

/// A control action as recorded in the store, with the iteration it took effect at.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ControlEvent {
    pub iteration: u64,
    pub unix_time: u64,
    pub kind: EventKind,
    pub key: Option<String>,
    pub old: Option<String>,
    pub new: Option<String>,
    /// Why a retune was refused.
    pub reason: Option<String>,
}

impl ControlEvent {
    /// An event of `kind` at `iteration`, now, with no key, values or reason.
    pub fn new(iteration: u64, kind: EventKind) -> Self {
        Self {
            iteration,
            unix_time: crate::engine::trainer::unix_now(),
            kind,
            key: None,
            old: None,
            new: None,
            reason: None,
        }
    }
}

/// The settings that can be changed during a run, by their short names.
pub const RETUNABLE: [(&str, &str); 9] = [
    ("lr", "train.lr"),
    ("temperature", "train.temperature"),
    ("c_uct", "search.c_uct"),
    ("l1", "search.l1"),
    ("l2", "search.l2"),
    ("l3", "search.l3"),
    ("width", "search.width"),
    ("n", "search.n"),
    ("delta", "adaptive.delta"),
];

/// The value in force of a retunable setting, as text (None for an unknown key).
pub fn current(cfg: &RunConfig, key: &str) -> Option<String> {
    Some(match key {
        "lr" => cfg.train.lr.to_string(),
        "temperature" => cfg.train.temperature.to_string(),
        "c_uct" => cfg.search.c_uct.to_string(),
        "l1" => cfg.search.l1.to_string(),
        "l2" => cfg.search.l2.to_string(),
        "l3" => cfg.search.l3.to_string(),
        "width" => cfg.search.width.to_string(),
        "n" => cfg.search.n.to_string(),
        "delta" => cfg.adaptive.delta.to_string(),
        _ => return None,
    })
}

fn parse<T: std::str::FromStr>(key: &str, value: &str) -> Result<T, String> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| format!("{key}: {value:?} is not a valid number"))
}

/// Applies `key = value` to a copy of `cfg`, validates the copy, and only then commits it.
/// Returns the old and new values as text; on error `cfg` is unchanged.
pub fn retune(cfg: &mut RunConfig, key: &str, value: &str) -> Result<(String, String), String> {
    let mut next = cfg.clone();
    let old = match key {
        "lr" => std::mem::replace(&mut next.train.lr, parse(key, value)?).to_string(),
        "temperature" => {
            std::mem::replace(&mut next.train.temperature, parse(key, value)?).to_string()
        }
        "c_uct" => std::mem::replace(&mut next.search.c_uct, parse(key, value)?).to_string(),
        "l1" => std::mem::replace(&mut next.search.l1, parse(key, value)?).to_string(),
        "l2" => std::mem::replace(&mut next.search.l2, parse(key, value)?).to_string(),
        "l3" => std::mem::replace(&mut next.search.l3, parse(key, value)?).to_string(),
        "width" => std::mem::replace(&mut next.search.width, parse(key, value)?).to_string(),
        "n" => std::mem::replace(&mut next.search.n, parse(key, value)?).to_string(),
        "delta" => std::mem::replace(&mut next.adaptive.delta, parse(key, value)?).to_string(),
        _ => {
            return Err(format!(
                "{key:?} cannot be retuned; retunable settings: {}",
                RETUNABLE.map(|(k, _)| k).join(", ")
            ))
        }
    };
    next.validate().map_err(|e| e.to_string())?;
    let new = value.trim().to_string();
    *cfg = next;
    Ok((old, new))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_reasons_keep_their_stored_names() {
        let e: ControlEvent = serde_json::from_str(
            r#"{"iteration":3,"unix_time":0,"kind":"nonfinite","key":null,"old":null,"new":null,"reason":null}"#,
        )
        .unwrap();
        assert_eq!(e.kind, EventKind::Nonfinite);
        let json = serde_json::to_value(ControlEvent::new(1, EventKind::Refused)).unwrap();
        assert_eq!(json["kind"], "refused");
        use EventKind::*;
        for k in [
            Pause, Resume, Retune, Refused, Checkpoint, Skip, Stop, Nonfinite, Plateau,
        ] {
            assert_eq!(serde_json::to_value(k).unwrap(), k.to_string());
        }
        for (r, name) in [
            (StopReason::Iterations, "iterations"),
            (StopReason::Budget, "budget"),
            (StopReason::User, "user"),
            (StopReason::Signal, "signal"),
            (StopReason::Nonfinite, "nonfinite"),
            (StopReason::Plateau, "plateau"),
        ] {
            assert_eq!(serde_json::to_value(r).unwrap(), name);
        }
    }

    #[test]
    fn valid_retunes_apply_and_bad_ones_change_nothing() {
        let mut c = RunConfig::default();
        assert_eq!(
            retune(&mut c, "c_uct", "1.5"),
            Ok(("2".into(), "1.5".into()))
        );
        assert_eq!(c.search.c_uct, 1.5);
        let before = c.clone();
        for (k, v) in [
            ("lr", "-1"),
            ("lr", "fast"),
            ("temperature", "nan"),
            ("width", "0"),
            ("delta", "2"),
            ("gamma", "1"),
        ] {
            let e = retune(&mut c, k, v).unwrap_err();
            assert!(!e.is_empty());
            assert_eq!(c, before, "{k}={v} changed the config");
        }
        assert!(retune(&mut c, "lr", "-1").unwrap_err().contains("train.lr"));
        assert!(retune(&mut c, "gamma", "1").unwrap_err().contains("c_uct"));
    }
}
