//! The retune form: every retunable setting with the value in force, edited in place.
//! Enter validates all changed fields together against a copy of the settings; if any
//! is refused nothing is sent, otherwise each change goes to the trainer as a directive
//! and takes effect at the next safe point.
use crossterm::event::{KeyCode, KeyEvent};

use super::views::KeyHelp;
use crate::engine::training::config::RunConfig;
use crate::engine::training::control::{retune, Retunable, RetuneError, RETUNABLE};

/// The keys [`RetuneForm::key`] answers to, shown at the form's foot.
pub const KEYS: &[KeyHelp] = &[
    KeyHelp::new("0-9 . e -", "type the value").footer("type"),
    KeyHelp::new("Up Down, Tab", "move between the settings").footer("move"),
    KeyHelp::new("Backspace, Delete", "delete a character, clear the value").footer("delete"),
    KeyHelp::new("Enter", "validate every change together and apply them").footer("apply"),
    KeyHelp::new("Esc", "close the form, changing nothing").footer("cancel"),
];

/// One editable setting.
#[derive(Clone)]
pub struct Field {
    pub setting: &'static Retunable,
    pub in_force: String,
    pub value: String,
}

#[derive(Clone)]
pub struct RetuneForm {
    pub fields: Vec<Field>,
    pub selected: usize,
    /// Why the last Enter was refused.
    pub error: Option<String>,
}

/// What a key did to the form.
#[derive(Clone, Debug, PartialEq)]
pub enum FormOutcome {
    Editing,
    Cancelled,
    /// Validated changes to send, as (key, value).
    Apply(Vec<(String, String)>),
}

impl RetuneForm {
    pub fn new(cfg: &RunConfig) -> Self {
        let fields = RETUNABLE
            .iter()
            .map(|setting| {
                let v = (setting.get)(cfg);
                Field {
                    setting,
                    in_force: v.clone(),
                    value: v,
                }
            })
            .collect();
        Self {
            fields,
            selected: 0,
            error: None,
        }
    }

    /// The fields whose text differs from the value in force.
    pub fn changes(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .filter(|f| f.value.trim() != f.in_force)
            .map(|f| (f.setting.name.to_string(), f.value.trim().to_string()))
            .collect()
    }

    /// Validates every change together on a copy of `cfg`; the first refusal is returned.
    pub fn validate(&self, cfg: &RunConfig) -> Result<RunConfig, RetuneError> {
        let mut copy = cfg.clone();
        for (k, v) in self.changes() {
            retune(&mut copy, &k, &v)?;
        }
        Ok(copy)
    }

    pub fn key(&mut self, key: KeyEvent, cfg: &RunConfig) -> FormOutcome {
        let n = self.fields.len();
        match key.code {
            KeyCode::Esc => return FormOutcome::Cancelled,
            KeyCode::Down | KeyCode::Tab => self.selected = (self.selected + 1) % n,
            KeyCode::Up | KeyCode::BackTab => self.selected = (self.selected + n - 1) % n,
            KeyCode::Backspace => {
                self.fields[self.selected].value.pop();
            }
            KeyCode::Delete => self.fields[self.selected].value.clear(),
            KeyCode::Char(c) if !c.is_control() => self.fields[self.selected].value.push(c),
            KeyCode::Enter => match self.validate(cfg) {
                Ok(_) => return FormOutcome::Apply(self.changes()),
                Err(reason) => self.error = Some(reason.to_string()),
            },
            _ => {}
        }
        FormOutcome::Editing
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crossterm::event::KeyModifiers;

    fn k(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    fn type_into(f: &mut RetuneForm, cfg: &RunConfig, field: &str, text: &str) {
        f.selected = f
            .fields
            .iter()
            .position(|x| x.setting.name == field)
            .unwrap();
        f.key(k(KeyCode::Delete), cfg);
        for c in text.chars() {
            f.key(k(KeyCode::Char(c)), cfg);
        }
    }

    #[test]
    fn shows_values_in_force_and_applies_only_changes() {
        let cfg = RunConfig::default();
        let mut f = RetuneForm::new(&cfg);
        assert_eq!(f.fields.len(), RETUNABLE.len());
        assert!(f.changes().is_empty());
        type_into(&mut f, &cfg, "c_uct", "1.5");
        type_into(&mut f, &cfg, "width", "3");
        assert_eq!(
            f.key(k(KeyCode::Enter), &cfg),
            FormOutcome::Apply(vec![
                ("c_uct".into(), "1.5".into()),
                ("width".into(), "3".into())
            ])
        );
    }

    #[test]
    fn a_bad_value_refuses_the_whole_form_with_its_reason() {
        let cfg = RunConfig::default();
        let mut f = RetuneForm::new(&cfg);
        type_into(&mut f, &cfg, "c_uct", "1.5");
        type_into(&mut f, &cfg, "lr", "-1");
        assert_eq!(f.key(k(KeyCode::Enter), &cfg), FormOutcome::Editing);
        let e = f.error.clone().unwrap();
        assert!(e.contains("lr"), "{e}");
        assert_eq!(f.key(k(KeyCode::Esc), &cfg), FormOutcome::Cancelled);
    }
}
