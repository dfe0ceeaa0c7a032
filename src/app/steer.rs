//! Steering from the explorer: the `:` command line, pause, stop, detach, and the live
//! run's status. Every action goes to the trainer over its socket, which validates a
//! retune against the settings in force: a bad value is refused at once with its reason,
//! recorded with its source, and nothing changes.
use crossterm::event::KeyEvent;

use super::explorer::{App, Modal};
use super::form::{FormOutcome, RetuneForm};
use super::serve::protocol::Action;
use crate::engine::training::control::{retunable_names, Directive, RETUNABLE};
use crate::store::StoreError;

impl App {
    /// Sends `action` to the live run; the reply (or the refusal) goes to the footer.
    pub(crate) fn send(&mut self, action: Action) {
        let Some(l) = &self.live else {
            self.message = "this run is not live: nothing to control".into();
            return;
        };
        self.message = match l.client.control(action) {
            Ok(line) => line,
            Err(StoreError::Live(e)) => e,
            Err(e) => e.to_string(),
        };
    }

    pub(crate) fn push(&mut self, d: Directive) {
        let action = match d {
            Directive::Checkpoint => Action::Checkpoint,
            Directive::Skip { problem } => Action::Skip { problem },
            Directive::Retune { key, value } => Action::Retune { key, value },
            Directive::Stop | Directive::Signal { .. } => Action::Stop,
        };
        self.send(action);
    }

    pub(crate) fn toggle_pause(&mut self) {
        let asked = self.live.as_ref().is_some_and(|l| l.status.pause_requested);
        self.send(if asked { Action::Resume } else { Action::Pause });
        if let Some(l) = self.live.as_mut() {
            if !self.message.starts_with("refused") {
                l.status.pause_requested = !asked;
            }
        }
    }

    /// Asks the trainer to stop at its next safe point (a paused trainer is woken).
    pub fn stop(&mut self) {
        self.send(Action::Stop);
    }

    /// Opens the retune form on the settings in force.
    pub(crate) fn open_form(&mut self) {
        if let Some(l) = &self.live {
            self.modal = Some(Modal::Retune(RetuneForm::new(&l.cfg)));
        }
    }

    /// A key while the retune form is open (taken out of the App; put back while it is
    /// edited): Enter sends every validated change.
    pub(crate) fn form_key(
        &mut self,
        mut form: RetuneForm,
        key: KeyEvent,
    ) -> Result<(), StoreError> {
        let Some(live) = self.live.as_ref() else {
            return Ok(());
        };
        match form.key(key, &live.cfg) {
            FormOutcome::Editing => self.modal = Some(Modal::Retune(form)),
            FormOutcome::Cancelled => {
                self.message = "retune cancelled: nothing changed".into();
            }
            FormOutcome::Apply(changes) => {
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

    /// Runs a `:` command: `set KEY VALUE` (`set` or `set KEY` shows values in force),
    /// `goto iter N`, `checkpoint`, `skip ID`, `pause`, `resume`, `stop`, `detach`.
    pub fn run_command(&mut self, line: &str) -> Result<(), StoreError> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["set", key, value] => {
                if self.live.is_none() {
                    self.message = "this run is not live: nothing to retune".into();
                    return Ok(());
                }
                self.send(Action::Retune {
                    key: key.to_string(),
                    value: value.to_string(),
                });
            }
            ["set"] | ["set", _] => {
                let Some(live) = self.live.as_ref() else {
                    self.message = "this run is not live: nothing to retune".into();
                    return Ok(());
                };
                let shown: Vec<String> = RETUNABLE
                    .iter()
                    .filter(|r| words.len() == 1 || words[1] == r.name)
                    .map(|r| format!("{} = {} ({})", r.name, (r.get)(&live.cfg), r.path))
                    .collect();
                self.message = if shown.is_empty() {
                    format!(
                        "{:?} cannot be retuned; retunable settings: {}",
                        words[1],
                        retunable_names()
                    )
                } else {
                    format!("in force: {}", shown.join(", "))
                };
            }
            ["goto", "iter", n] | ["goto", n] => match n.parse::<u64>() {
                Ok(n) => {
                    self.hold_still();
                    self.goto(n)?;
                }
                Err(_) => self.message = format!("goto: {n:?} is not an iteration number"),
            },
            ["checkpoint"] => self.push(Directive::Checkpoint),
            ["skip", id] => self.push(Directive::Skip {
                problem: id.to_string(),
            }),
            ["pause"] | ["resume"] => self.toggle_pause(),
            ["stop"] if self.live.is_some() => self.modal = Some(Modal::ConfirmStop),
            ["stop"] => self.message = "this run is not live: nothing to stop".into(),
            ["detach"] | ["quit"] | ["q"] => {
                if self.live.is_some() {
                    self.left = Some(super::attach::Leave::Detach);
                }
                self.quit = true;
            }
            [] => {}
            _ => {
                self.message = format!(
                    "unknown command {line:?}: set KEY VALUE, goto iter N, checkpoint, skip ID, pause, resume, stop, detach"
                )
            }
        }
        Ok(())
    }

    /// Asks the live run for news: its status every tick, and only the iterations and
    /// events committed since the last ask. Returns whether anything changed.
    pub fn pump(&mut self) -> Result<bool, StoreError> {
        let Some(live) = self.live.as_mut() else {
            return Ok(false);
        };
        let status = match live.client.status() {
            Ok(s) => s,
            Err(e) => {
                // The trainer has gone: what it committed is in the store, reopened here.
                self.lost_trainer(e);
                return Ok(true);
            }
        };
        let changed = status != live.status;
        if status.alerts.len() > live.seen_alerts {
            self.message = status.alerts[status.alerts.len() - 1].clone();
            live.seen_alerts = status.alerts.len();
        }
        if status.paused != live.status.paused {
            self.message = if status.paused {
                "paused at a safe point (p resumes)".into()
            } else {
                "resumed".into()
            };
        }
        // The settings in force change only with a retune: parsed only then.
        if status.config_toml != live.status.config_toml {
            if let Ok(cfg) =
                crate::engine::training::config::RunConfig::from_toml(&status.config_toml)
            {
                live.cfg = cfg;
            }
        }
        self.paused = status.paused;
        self.phase = if status.finished.is_some() {
            "finished".into()
        } else if status.phase.is_empty() {
            "starting".into()
        } else {
            format!(
                "{} {}/{} {}",
                status.phase, status.done, status.total, status.note
            )
        };
        let finished = status.finished.clone();
        let committed = status.last_iteration != self.snapshot.last_iteration();
        live.status = status;
        if let Some(f) = finished {
            if self.finished.is_none() {
                self.phase = match &f {
                    Ok(_) => "finished".into(),
                    Err(e) => format!("failed: {e}"),
                };
                self.finished = Some(f);
            }
        }
        let name = self.snapshot.run.name.clone();
        if committed {
            self.snapshot.refresh(self.source.as_ref(), &name)?;
            if self.following {
                self.goto(u64::MAX)?;
            }
        } else if changed {
            // Events (pause, retune) arrive without a commit.
            self.snapshot.refresh_events(self.source.as_ref(), &name)?;
        }
        Ok(changed || committed)
    }
}
