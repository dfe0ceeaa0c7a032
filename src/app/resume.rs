//! `arbor train --resume RUN`: continue a run from its newest readable checkpoint.
//!
//! Iterations committed after that checkpoint are rolled back and recomputed: the
//! checkpoint holds every RNG, the data cursor, the optimizer and the settings in force,
//! so on the same machine they come out the same as before the crash.
use anyhow::{anyhow, bail, Context, Result};

use crate::app::commands::train::{drive, TrainOptions};
use crate::app::live::Begin;
use crate::engine::training::config::RunConfig;
use crate::engine::training::control::{retunable_names, retune, ControlEvent, EventKind};
use crate::engine::training::resume;
use crate::engine::training::split;
use crate::engine::training::trainer::Trainer;
use crate::store::{RunStatus, Store};

/// Flags that would change what the run is; a resume keeps the run's own.
fn refuse_changes(o: &TrainOptions) -> Result<()> {
    let fixed = [
        ("--method", o.method.is_some()),
        ("--seed", o.seed.is_some()),
        ("--config", o.config.is_some()),
        ("--train-data", o.train_data.is_some()),
        ("--test-data", o.test_data.is_some()),
        ("--run", o.run.is_some()),
        ("--model", o.model.is_some()),
        ("--device", o.device.is_some()),
        ("--task", o.task.is_some()),
    ];
    if let Some((flag, _)) = fixed.iter().find(|(_, set)| *set) {
        bail!(
            "{flag} cannot be combined with --resume: a resumed run keeps its own settings \
             (change retunable ones with --set KEY=VALUE, extend it with --iterations or \
             --budget-tokens)"
        );
    }
    Ok(())
}

/// Applies `--set KEY=VALUE` retunes, validated like the explorer's.
fn apply_sets(cfg: &mut RunConfig, sets: &[String]) -> Result<Vec<(String, String, String)>> {
    let mut done = Vec::new();
    for s in sets {
        let (k, v) = s.split_once('=').ok_or_else(|| {
            anyhow!(
                "--set {s:?}: expected KEY=VALUE, e.g. --set lr=1e-5 (retunable: {})",
                retunable_names()
            )
        })?;
        let (old, new) = retune(cfg, k.trim(), v).map_err(|e| anyhow!("--set {s}: {e}"))?;
        done.push((k.trim().to_string(), old, new));
    }
    Ok(done)
}

pub fn resume_run(name: &str, o: TrainOptions) -> Result<()> {
    refuse_changes(&o)?;
    if crate::app::background::wants_explorer(o.headless) {
        return crate::app::background::train_in_background(&o.store, &o.theme);
    }
    let store = Store::open_existing(&o.store)?;
    let run = store.require_run(name)?;
    let device = candle_core::Device::Cpu;
    // The newest checkpoint that loads; a damaged one is reported and an older one tried.
    let mut problems = Vec::new();
    let mut found = None;
    for ck in store.checkpoints(name)?.into_iter().rev() {
        if ck.iteration > run.last_iteration {
            continue;
        }
        match resume::load(&ck.dir, &device) {
            Ok(loaded) => {
                found = Some((ck, loaded));
                break;
            }
            Err(e) => {
                eprintln!(
                    "warning: checkpoint of iteration {} is unusable: {e}",
                    ck.iteration
                );
                problems.push(e.to_string());
            }
        }
    }
    if found.is_none() && !problems.is_empty() {
        bail!(
            "run {name}: no readable checkpoint ({}); start a new run instead",
            problems.join("; ")
        );
    }
    let (from, mut cfg, begin) = match found {
        Some((ck, loaded)) => {
            let cfg = RunConfig::from_toml(&loaded.state.config_toml)
                .map_err(|e| anyhow!("{}: settings in the checkpoint: {e}", ck.dir.display()))?;
            (ck.iteration, cfg, Some(loaded))
        }
        // No checkpoint yet: the run restarts from its beginning with the same seed.
        None => {
            let cfg = RunConfig::from_toml(&run.config_toml)
                .map_err(|e| anyhow!("run {name}: stored config is unreadable: {e}"))?;
            (0, cfg, None)
        }
    };
    if let Some(i) = o.iterations {
        cfg.train.iterations = i;
    }
    if let Some(b) = o.budget_tokens {
        cfg.train.budget_tokens = Some(b);
    }
    // The engine may have moved (a new host after a crash): where generation goes does
    // not change what is trained, as every server sample is rescored by the trainer.
    if let Some(g) = &o.generator {
        cfg.generator.apply_flag(g).map_err(|e| anyhow!(e))?;
    }
    let sets = apply_sets(&mut cfg, &o.set)?;
    cfg.validate()
        .map_err(|e| anyhow!("resume of {name}: {e}"))?;
    cfg.generator
        .reachable()
        .map_err(|e| anyhow!("resume of {name}: generator: {e}"))?;
    let done_by_count = cfg.train.iterations <= from;
    let done_by_budget = begin.as_ref().is_some_and(|l| {
        cfg.train
            .budget_tokens
            .is_some_and(|b| l.state.generated_tokens >= b)
    });
    if run.status == RunStatus::Finished && (done_by_count || done_by_budget) {
        bail!(
            "run {name} already finished ({} iterations); pass --iterations N (more than {}) \
             or a larger --budget-tokens to extend it",
            run.last_iteration,
            from
        );
    }
    let data = split::load(&cfg.data).with_context(|| format!("resume of {name}"))?;
    let begin = match begin {
        Some(l) => Begin::Resume(Box::new(
            Trainer::restore(
                cfg.clone(),
                l.policy,
                data,
                l.state,
                &l.moments,
                l.reference,
            )
            .with_context(|| format!("resume of {name}"))?,
        )),
        None => Begin::Fresh(data),
    };
    // Everything is loaded and checked: only now is the store changed.
    let before = run.last_iteration;
    let record = store.roll_back(&run, from)?;
    store.forget_events_after(name, from, &[EventKind::Nonfinite])?;
    let mut ev = ControlEvent {
        old: Some(before.to_string()),
        new: Some(from.to_string()),
        reason: Some(if from == before {
            format!("resumed after iteration {from}")
        } else {
            format!(
                "resumed from the checkpoint of iteration {from}; iterations {}..={before} \
                 are recomputed",
                from + 1
            )
        }),
        ..ControlEvent::new(from, EventKind::Resume)
    };
    store.append_event(name, &ev)?;
    for (k, old, new) in sets {
        ev.kind = EventKind::Retune;
        ev.key = Some(k);
        ev.old = Some(old);
        ev.new = Some(new);
        ev.reason = Some("--set on resume".into());
        store.append_event(name, &ev)?;
    }
    eprintln!("resuming run {name} after iteration {from}");
    drive(cfg, begin, store, record, o.log_every)
}
