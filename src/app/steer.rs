//! Steering from the explorer: the `:` command line, pause, stop, and the trainer's
//! notifications. Retunes are validated here against a copy of the settings in force, so
//! a bad value is refused at once with its reason and nothing changes.
use crate::engine::control::{retune, ControlEvent, Directive, EventKind};
use crate::store::StoreError;

use crossterm::event::KeyEvent;

use super::explorer::App;
use super::form::{FormOutcome, RetuneForm};
use super::live::Note;
use super::snapshot::RunSnapshot;

impl App {
    pub(crate) fn push(&self, d: Directive) {
        if let Some(l) = &self.live {
            l.control.push(d);
        }
    }

    pub(crate) fn toggle_pause(&mut self) {
        if let Some(l) = &self.live {
            let p = !l.control.paused();
            l.control.set_paused(p);
            self.message = if p {
                "pausing at the next safe point".into()
            } else {
                "resuming".into()
            };
        }
    }

    /// Asks the trainer to stop (a paused trainer is woken so it can).
    pub fn stop(&mut self) {
        self.push(Directive::Stop);
        if let Some(l) = &self.live {
            l.control.set_paused(false);
        }
    }

    /// Opens the retune form on the settings in force.
    pub(crate) fn open_form(&mut self) {
        if let Some(l) = &self.live {
            self.form = Some(RetuneForm::new(&l.cfg));
        }
    }

    /// A key while the retune form is open: Enter sends every validated change.
    pub(crate) fn form_key(&mut self, key: KeyEvent) -> Result<(), StoreError> {
        let (Some(form), Some(live)) = (self.form.as_mut(), self.live.as_ref()) else {
            self.form = None;
            return Ok(());
        };
        match form.key(key, &live.cfg) {
            FormOutcome::Editing => {}
            FormOutcome::Cancelled => {
                self.form = None;
                self.message = "retune cancelled: nothing changed".into();
            }
            FormOutcome::Apply(changes) => {
                self.form = None;
                if changes.is_empty() {
                    self.message = "no setting changed".into();
                }
                let mut said = Vec::new();
                for (k, v) in changes {
                    self.run_command(&format!("set {k} {v}"))?;
                    said.push(std::mem::take(&mut self.message));
                }
                if !said.is_empty() {
                    self.message = said.join("; ");
                }
            }
        }
        Ok(())
    }

    /// Runs a `:` command: `set KEY VALUE`, `goto iter N`, `checkpoint`, `skip ID`,
    /// `pause`, `resume`, `stop`.
    pub fn run_command(&mut self, line: &str) -> Result<(), StoreError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["set", key, value] => {
                let Some(live) = self.live.as_mut() else {
                    self.message = "this run is not live: nothing to retune".into();
                    return Ok(());
                };
                // Validate against a copy of the settings in force; a refusal changes nothing.
                let mut copy = live.cfg.clone();
                match retune(&mut copy, key, value) {
                    Ok((old, new)) => {
                        live.cfg = copy;
                        live.control.push(Directive::Retune {
                            key: key.to_string(),
                            value: value.to_string(),
                        });
                        self.message = format!("{key}: {old} -> {new} at the next safe point");
                    }
                    Err(reason) => {
                        self.message = format!("refused: {reason}");
                        self.store.append_event(
                            &self.snapshot.run.name,
                            &ControlEvent {
                                key: Some(key.to_string()),
                                new: Some(value.to_string()),
                                reason: Some(reason),
                                ..ControlEvent::new(self.snapshot.last_iteration(), EventKind::Refused)
                            },
                        )?;
                    }
                }
            }
            ["goto", "iter", n] | ["goto", n] => match n.parse::<u64>() {
                Ok(n) => {
                    self.following = false;
                    self.goto(n)?;
                }
                Err(_) => self.message = format!("goto: {n:?} is not an iteration number"),
            },
            ["checkpoint"] => self.push(Directive::Checkpoint),
            ["skip", id] => {
                self.push(Directive::Skip { problem: id.to_string() });
                self.message = format!("skipping {id} from the next iteration");
            }
            ["pause"] | ["resume"] => self.toggle_pause(),
            ["stop"] => self.confirm_stop = true,
            [] => {}
            _ => {
                self.message = format!(
                    "unknown command {line:?}: set KEY VALUE, goto iter N, checkpoint, skip ID, pause, resume, stop"
                )
            }
        }
        Ok(())
    }

    /// Drains the trainer's notifications; returns whether anything changed.
    pub fn pump(&mut self) -> Result<bool, StoreError> {
        let mut notes = Vec::new();
        if let Some(l) = self.live.as_mut() {
            while let Ok(n) = l.notes.try_recv() {
                notes.push(n);
            }
        }
        if notes.is_empty() {
            return Ok(false);
        }
        let mut committed = false;
        for n in notes {
            match n {
                Note::Progress {
                    phase,
                    done,
                    total,
                    note,
                } => {
                    self.phase = format!("{} {done}/{total} {note}", phase.label());
                }
                Note::PhaseDone(s) => self.phase = s,
                Note::Committed(_) => committed = true,
                Note::Paused(p) => {
                    self.paused = p;
                    self.message = if p {
                        "paused at a safe point (p resumes)".into()
                    } else {
                        "resumed".into()
                    };
                }
                Note::Alert(s) => self.message = s,
                Note::Finished(r) => {
                    let r = *r;
                    self.phase = match &r {
                        Ok(_) => "finished".into(),
                        Err(e) => format!("failed: {e}"),
                    };
                    self.finished = Some(r);
                    committed = true;
                }
            }
        }
        if committed {
            let name = self.snapshot.run.name.clone();
            self.snapshot = RunSnapshot::load(&self.store, &name)?;
            if self.following {
                self.goto(u64::MAX)?;
            }
        }
        Ok(true)
    }
}
