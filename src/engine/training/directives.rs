//! The user's directives between iterations: stop, signal, checkpoint, skip, retune.
use crate::engine::rl::interrupt::Phase;
use crate::engine::training::control::{retune, ControlEvent, Directive, EventKind, StopReason};
use crate::engine::training::error::EngineError;
use crate::engine::training::resume::CheckpointKind;
use crate::engine::training::sink::Sink;
use crate::engine::training::trainer::Trainer;

impl Trainer {
    /// Applies the directives waiting before the next iteration and says whether they
    /// stop the run. `interrupted` is the phase a stop gave up, if any: the run stops
    /// then even when the sink names no stop.
    pub(crate) fn apply_directives(
        &mut self,
        sink: &mut dyn Sink,
        interrupted: Option<Phase>,
    ) -> Result<Option<StopReason>, EngineError> {
        // A resume must see the settings in force: a changed setting is checkpointed.
        let mut changed = false;
        let mut retuned = false;
        let given_up = interrupted.map(|p| match &self.eval_owed {
            Some(m) => format!(
                " during the evaluation of iteration {}, which is run on --resume",
                m.iteration
            ),
            None => format!(
                " during {} (iteration {} is redone on --resume)",
                p.label(),
                self.iteration + 1
            ),
        });
        for d in sink.directives(self.iteration + 1) {
            let mut ev = ControlEvent::new(self.iteration, EventKind::Stop);
            match d {
                Directive::Stop => {
                    ev.reason = given_up.as_ref().map(|g| format!("stopped{g}"));
                    sink.event(&ev)?;
                    return Ok(Some(StopReason::User));
                }
                Directive::Signal { name } => {
                    ev.reason = Some(format!(
                        "{name}: stopped at a safe point with a checkpoint; continue with --resume{}",
                        given_up.as_deref().unwrap_or("")
                    ));
                    sink.event(&ev)?;
                    return Ok(Some(StopReason::Signal));
                }
                Directive::Checkpoint => {
                    self.checkpoint(sink, CheckpointKind::Requested)?;
                    ev.kind = EventKind::Checkpoint;
                }
                Directive::Skip { problem } => {
                    if let Some(i) = self.data.train.iter().position(|p| p.id == problem) {
                        self.stream.skipped.insert(i);
                    }
                    ev.kind = EventKind::Skip;
                    changed = true;
                    ev.key = Some(problem);
                }
                Directive::Retune { key, value } => {
                    match retune(&mut self.cfg, &key, &value) {
                        Ok((old, new)) => {
                            ev.kind = EventKind::Retune;
                            changed = true;
                            retuned = true;
                            ev.old = Some(old);
                            ev.new = Some(new);
                        }
                        Err(reason) => {
                            ev.kind = EventKind::Refused;
                            ev.new = Some(value);
                            ev.reason = Some(reason.to_string());
                        }
                    }
                    ev.key = Some(key);
                }
            }
            sink.event(&ev)?;
        }
        if retuned {
            // The method reads its settings from its own section: rebuild it on them.
            self.rebuild_method()?;
        }
        if changed && self.iteration > 0 {
            self.checkpoint(sink, CheckpointKind::Requested)?;
        }
        if let Some(g) = given_up {
            // Interrupted, but the sink named no stop: stop all the same.
            sink.event(&ControlEvent {
                reason: Some(format!("stopped{g}")),
                ..ControlEvent::new(self.iteration, EventKind::Stop)
            })?;
            return Ok(Some(StopReason::User));
        }
        Ok(None)
    }
}
