//! Steering a run while it runs: directives the trainer applies at safe points (between
//! iterations, never inside an update), and the retunable settings with their validation.
use serde::{Deserialize, Serialize};

use crate::engine::training::config::{ConfigError, RunConfig};

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
    /// Who asked for it: the viewer that sent it (its client name), "trainer" for the
    /// trainer's own pauses; none for the trainer's own events and older stores.
    #[serde(default)]
    pub source: Option<String>,
}

impl ControlEvent {
    /// An event of `kind` at `iteration`, now, with no key, values or reason.
    pub fn new(iteration: u64, kind: EventKind) -> Self {
        Self {
            iteration,
            unix_time: crate::engine::training::trainer::unix_now(),
            kind,
            key: None,
            old: None,
            new: None,
            reason: None,
            source: None,
        }
    }
}

/// One setting that can be changed while a run trains: `:set`, the retune form, `--set`
/// on resume and the explorer's help all read this table, so they cannot disagree.
pub struct Retunable {
    /// The short name typed after `:set`, in the form and in `--set NAME=VALUE`.
    pub name: &'static str,
    /// Where it lives in the run's config (the field validation errors name).
    pub path: &'static str,
    /// What it changes, in a few words, for the help.
    pub about: &'static str,
    /// The value in force, as text.
    pub get: fn(&RunConfig) -> String,
    /// Parses `value` and sets it; the whole config is validated afterwards.
    pub set: fn(&mut RunConfig, &str) -> Result<(), RetuneError>,
}

/// A retune refused: an unknown key, a value that does not parse, or a value the
/// config's validation refuses (naming the field). The config is left unchanged.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RetuneError {
    #[error("{key:?} cannot be retuned; retunable settings: {}", retunable_names())]
    NotRetunable { key: String },
    #[error("{key}: {value:?} is not a valid number")]
    NotANumber { key: &'static str, value: String },
    #[error(transparent)]
    Invalid(#[from] ConfigError),
}

/// An entry of [`RETUNABLE`] for the config field `$($field).+`.
macro_rules! retunable {
    ($name:literal, $path:literal, $($field:ident).+, $about:literal) => {
        Retunable {
            name: $name,
            path: $path,
            about: $about,
            get: |c| c.$($field).+.to_string(),
            set: |c, v| {
                c.$($field).+ = parse($name, v)?;
                Ok(())
            },
        }
    };
}

/// The settings that can be changed during a run (marked (R) in the config's docs).
pub const RETUNABLE: [Retunable; 9] = [
    retunable!("lr", "train.lr", train.lr, "AdamW learning rate"),
    retunable!(
        "temperature",
        "train.temperature",
        train.temperature,
        "sampling temperature of training rollouts"
    ),
    retunable!(
        "c_uct",
        "search.c_uct",
        search.c_uct,
        "UCT exploration constant"
    ),
    retunable!(
        "l1",
        "search.l1",
        search.l1,
        "frontier weight of tanh(Q(parent))"
    ),
    retunable!(
        "l2",
        "search.l2",
        search.l2,
        "frontier weight of the step entropy"
    ),
    retunable!(
        "l3",
        "search.l3",
        search.l3,
        "frontier weight of the depth bonus"
    ),
    retunable!(
        "width",
        "search.width",
        search.width,
        "children sampled per expansion"
    ),
    retunable!("n", "search.n", search.n, "trajectories recorded per tree"),
    retunable!(
        "delta",
        "adaptive.delta",
        adaptive.delta,
        "keep a problem in the hard set while Pass1@K <= delta"
    ),
];

/// The retunable setting called `name`, if there is one.
pub fn retunable(name: &str) -> Option<&'static Retunable> {
    RETUNABLE.iter().find(|r| r.name == name)
}

/// The short names of every retunable setting, comma-separated, for messages.
pub fn retunable_names() -> String {
    RETUNABLE.map(|r| r.name).join(", ")
}

/// The value in force of a retunable setting, as text (None for an unknown key).
pub fn current(cfg: &RunConfig, key: &str) -> Option<String> {
    retunable(key).map(|r| (r.get)(cfg))
}

fn parse<T: std::str::FromStr>(key: &'static str, value: &str) -> Result<T, RetuneError> {
    value
        .trim()
        .parse::<T>()
        .map_err(|_| RetuneError::NotANumber {
            key,
            value: value.to_string(),
        })
}

/// Applies `key = value` to a copy of `cfg`, validates the copy, and only then commits it.
/// Returns the old and new values as text; on error `cfg` is unchanged.
pub fn retune(
    cfg: &mut RunConfig,
    key: &str,
    value: &str,
) -> Result<(String, String), RetuneError> {
    let r = retunable(key).ok_or_else(|| RetuneError::NotRetunable {
        key: key.to_string(),
    })?;
    let mut next = cfg.clone();
    let old = (r.get)(&next);
    (r.set)(&mut next, value)?;
    next.validate()?;
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
            let e = retune(&mut c, k, v).unwrap_err().to_string();
            assert!(!e.is_empty());
            assert_eq!(c, before, "{k}={v} changed the config");
        }
        assert!(matches!(
            retune(&mut c, "lr", "-1"),
            Err(RetuneError::Invalid(ConfigError { field, .. })) if field == "train.lr"
        ));
        assert!(retune(&mut c, "lr", "-1")
            .unwrap_err()
            .to_string()
            .contains("train.lr"));
        assert!(retune(&mut c, "gamma", "1")
            .unwrap_err()
            .to_string()
            .contains("c_uct"));
        assert_eq!(
            retune(&mut c, "lr", "fast").unwrap_err().to_string(),
            "lr: \"fast\" is not a valid number"
        );
    }

    /// Every entry reads and writes the field its path names: setting the value in force
    /// changes nothing, and a refused value names the entry's path or name.
    #[test]
    fn every_entry_reads_and_writes_its_own_field() {
        let toml = RunConfig::default().to_toml();
        for r in &RETUNABLE {
            let mut c = RunConfig::default();
            let v = (r.get)(&c);
            assert_eq!(retune(&mut c, r.name, &v), Ok((v.clone(), v)));
            assert_eq!(c, RunConfig::default(), "{}", r.name);
            let (table, field) = r.path.split_once('.').unwrap();
            assert!(toml.contains(&format!("[{table}]")), "{}", r.path);
            assert!(toml.contains(&format!("\n{field} = ")), "{}", r.path);
            let e = retune(&mut c, r.name, "x").unwrap_err().to_string();
            assert!(e.contains(r.name), "{e}");
        }
        let mut c = RunConfig::default();
        retune(&mut c, "l1", "0.25").unwrap();
        assert_eq!(c.search.l1, 0.25);
        retune(&mut c, "delta", "0.5").unwrap();
        assert_eq!(c.adaptive.delta, 0.5);
    }
}
