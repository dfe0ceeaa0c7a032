//! The keys every view answers to (quit, pause, commands, help, views, the iteration
//! cursor) as one list, the dispatch of a key (popups first, then these, then the current
//! view's own keys, then Left Right as the iteration cursor), and the mouse.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::attach::Leave;
use super::explorer::{App, Modal, Screen};
use super::views::{Action, KeyHelp};
use crate::engine::training::control::Directive;
use crate::store::StoreError;

/// The keys every view answers to, for the help popup and the footer. Left Right go to
/// the view first, so the tree view folds with them.
pub const GLOBAL_KEYS: &[KeyHelp] = &[
    KeyHelp::new(
        "q, Ctrl-C",
        "quit; from a live run, detach (it goes on); a run this explorer started asks: \
         leave it training in the background or stop it",
    )
    .footer("quit"),
    KeyHelp::new("X", "stop training at the next safe point (asks first)")
        .footer("stop")
        .live(),
    KeyHelp::new("p", "pause / resume training at the next safe point")
        .footer("pause")
        .live(),
    KeyHelp::new(
        "r",
        "retune form: edit the settings in force, Enter applies, Esc cancels",
    )
    .footer("retune")
    .live(),
    KeyHelp::new("c", "checkpoint at the next safe point").live(),
    KeyHelp::new(
        ":",
        "command: set NAME VALUE (NAMEs in the dashboard's help; set, set NAME: values \
         in force), goto iter N, checkpoint, skip ID, pause, resume, stop, detach",
    )
    .footer("command"),
    KeyHelp::new("?, F1", "this help; j k scroll it, Esc closes it").footer("help"),
    KeyHelp::new(
        "1-5, Tab, Shift-Tab",
        "dashboard, problems, tree, confident-wrong, compare",
    )
    .footer("views"),
    KeyHelp::new("Esc", "back one level").footer("back"),
    KeyHelp::new("[ ]", "previous / next iteration (replay)").footer("iteration"),
    KeyHelp::new(
        "Left Right, h l",
        "previous / next iteration, except in the tree view (which folds with them)",
    ),
    KeyHelp::new("L", "the newest iteration, following it"),
    KeyHelp::new("f", "freeze the view / follow the newest iteration").footer("freeze"),
    KeyHelp::new("e, z", "maximize the main pane"),
];

impl App {
    /// Moves the current view's list cursor by `delta` rows.
    fn move_by(&mut self, delta: i64) {
        let screen = self.screen;
        let (views, ctx) = self.split();
        let view = views.get_mut(screen);
        let len = view.len(&ctx);
        if let Some(c) = view.cursor() {
            c.move_by(delta, len);
        }
    }

    /// Mouse: the wheel moves the cursor, a click on the tab line switches views.
    pub fn on_mouse(&mut self, m: crossterm::event::MouseEvent) {
        use crossterm::event::{MouseButton, MouseEventKind};
        match m.kind {
            MouseEventKind::ScrollDown => self.move_by(3),
            MouseEventKind::ScrollUp => self.move_by(-3),
            MouseEventKind::Down(MouseButton::Left) if m.row > 1 => {
                let hit = self.list_hit.get();
                if let Some(i) = hit.and_then(|h| h.index_at(m.column, m.row)) {
                    let screen = self.screen;
                    let (views, ctx) = self.split();
                    let view = views.get_mut(screen);
                    let len = view.len(&ctx);
                    if let Some(c) = view.cursor().filter(|_| i < len) {
                        c.sel = i;
                    }
                }
            }
            MouseEventKind::Down(MouseButton::Left) if m.row == 1 => {
                // Tabs are drawn as "title │ title │ ..." from column 1.
                let mut x = 1u16;
                for s in Screen::ALL {
                    let w = s.title().chars().count() as u16 + 3;
                    if m.column < x + w {
                        if let Err(e) = self.show(s) {
                            self.message = e.to_string();
                        }
                        break;
                    }
                    x += w;
                }
            }
            _ => {}
        }
    }

    /// Handles one key; errors from the store go to the status line.
    pub fn on_key(&mut self, key: KeyEvent) {
        if let Err(e) = self.key(key) {
            self.message = e.to_string();
        }
    }

    /// Switches to view `s` (the compare view loads the runs it compares).
    pub(crate) fn show(&mut self, s: Screen) -> Result<(), StoreError> {
        self.screen = s;
        if s == Screen::Compare {
            self.load_compare()?;
        }
        Ok(())
    }

    fn key(&mut self, key: KeyEvent) -> Result<(), StoreError> {
        if let Some(modal) = self.modal.take() {
            return self.modal_key(modal, key);
        }
        if self.global_key(key)? {
            return Ok(());
        }
        let screen = self.screen;
        let (views, ctx) = self.split();
        match views.get_mut(screen).on_key(key, &ctx) {
            Action::Pass => self.iteration_key(key)?,
            Action::Done => {}
            Action::Say(s) => self.message = s,
            Action::Show(s) => self.show(s)?,
            Action::OpenTree { problem, node } => {
                let (views, ctx) = self.split();
                views.tree.open(problem, node, &ctx);
                self.screen = Screen::Tree;
                self.hold_still();
            }
            Action::OpenRun(name) => self.open_run(&name)?,
        }
        Ok(())
    }

    /// The keys of [`GLOBAL_KEYS`] no view overrides; says whether `key` was one.
    fn global_key(&mut self, key: KeyEvent) -> Result<bool, StoreError> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let running = self.live.is_some() && self.finished.is_none();
        let control = self.can_steer();
        let owned = running && self.live.as_ref().is_some_and(|l| l.owned);
        match key.code {
            // Leaving a run this explorer started asks; any other live run is detached.
            KeyCode::Char('c') if ctrl && owned => self.modal = Some(Modal::ConfirmLeave),
            KeyCode::Char('q') if owned => self.modal = Some(Modal::ConfirmLeave),
            KeyCode::Char('c') if ctrl && running => {
                self.left = Some(Leave::Detach);
                self.quit = true;
            }
            KeyCode::Char('q') if running => {
                self.left = Some(Leave::Detach);
                self.quit = true;
            }
            KeyCode::Char(':') => self.modal = Some(Modal::Command(String::new())),
            KeyCode::Char('X') if control => self.modal = Some(Modal::ConfirmStop),
            KeyCode::Char('r') if control => self.open_form(),
            KeyCode::Char('p') if control => self.toggle_pause(),
            KeyCode::Char('c') if control && !ctrl => self.push(Directive::Checkpoint),
            KeyCode::Char('X' | 'r' | 'p' | 'c') if running && !ctrl => {
                self.message =
                    "this viewer is attached read-only (--readonly): control is refused".into()
            }
            KeyCode::Char('f') => {
                self.following = !self.following;
                self.message = if self.following {
                    "following the newest iteration".into()
                } else {
                    "view frozen (the run keeps going)".into()
                };
            }
            KeyCode::Char('c') if ctrl => self.quit = true,
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') | KeyCode::F(1) => self.modal = Some(Modal::Help { scroll: 0 }),
            KeyCode::Esc => {
                self.maximized = false;
                self.screen = self.screen.parent();
            }
            KeyCode::Char(c @ '1'..='5') => self.show(Screen::ALL[(c as u8 - b'1') as usize])?,
            KeyCode::Tab | KeyCode::BackTab => {
                let n = Screen::ALL.len();
                let i = Screen::ALL
                    .iter()
                    .position(|s| *s == self.screen)
                    .unwrap_or(0);
                let step = if key.code == KeyCode::Tab { 1 } else { n - 1 };
                self.show(Screen::ALL[(i + step) % n])?;
            }
            KeyCode::Char('[') => {
                self.following = false;
                self.goto(self.iteration.saturating_sub(1))?
            }
            KeyCode::Char(']') => self.goto(self.iteration + 1)?,
            KeyCode::Char('L') => {
                self.following = true;
                self.goto(u64::MAX)?
            }
            KeyCode::Char('e') | KeyCode::Char('z') => self.maximized = !self.maximized,
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Left Right and h l move the iteration cursor in views that do not use them.
    fn iteration_key(&mut self, key: KeyEvent) -> Result<(), StoreError> {
        match key.code {
            KeyCode::Left | KeyCode::Char('h') => self.goto(self.iteration.saturating_sub(1)),
            KeyCode::Right | KeyCode::Char('l') => self.goto(self.iteration + 1),
            _ => Ok(()),
        }
    }

    /// A key while `modal` is open (taken out of the App): it is put back unless the key
    /// closes it.
    fn modal_key(&mut self, modal: Modal, key: KeyEvent) -> Result<(), StoreError> {
        match modal {
            Modal::Help { scroll } => {
                self.modal = self
                    .help_key(scroll, key)
                    .map(|scroll| Modal::Help { scroll })
            }
            Modal::Retune(form) => return self.form_key(form, key),
            Modal::Command(mut cmd) => match key.code {
                KeyCode::Esc => {}
                KeyCode::Enter => self.run_command(&cmd)?,
                KeyCode::Backspace => {
                    cmd.pop();
                    self.modal = Some(Modal::Command(cmd));
                }
                KeyCode::Char(c) => {
                    cmd.push(c);
                    self.modal = Some(Modal::Command(cmd));
                }
                _ => self.modal = Some(Modal::Command(cmd)),
            },
            Modal::ConfirmStop => match key.code {
                KeyCode::Char('y') | KeyCode::Enter => self.leave(Leave::Stop),
                KeyCode::Char('n') | KeyCode::Esc => {}
                _ => self.modal = Some(Modal::ConfirmStop),
            },
            Modal::ConfirmLeave => match key.code {
                KeyCode::Char('s') => self.leave(Leave::Stop),
                KeyCode::Char('d') | KeyCode::Char('b') => self.leave(Leave::Detach),
                KeyCode::Esc | KeyCode::Char('n') => {}
                _ => self.modal = Some(Modal::ConfirmLeave),
            },
        }
        Ok(())
    }

    /// Quits, detaching from the live run or asking it to stop first.
    fn leave(&mut self, how: Leave) {
        if how == Leave::Stop {
            self.stop();
        }
        self.left = Some(how);
        self.quit = true;
    }

    /// Keys while the help popup is open, its first line `scroll`: the new first line, or
    /// None when the key closes it.
    fn help_key(&self, scroll: usize, key: KeyEvent) -> Option<usize> {
        let max = self.help_max_scroll.get();
        let s = scroll;
        Some(match key.code {
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::F(1) | KeyCode::Char('q') => return None,
            KeyCode::Down | KeyCode::Char('j') => (s + 1).min(max),
            KeyCode::Up | KeyCode::Char('k') => s.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => (s + 10).min(max),
            KeyCode::PageUp => s.saturating_sub(10),
            KeyCode::Home | KeyCode::Char('g') => 0,
            KeyCode::End | KeyCode::Char('G') => max,
            _ => s,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::test_app::{app, key, screen};

    /// One modal at a time takes every key, and the screen draws the one open.
    #[test]
    fn the_open_modal_takes_the_keys_and_is_drawn() {
        let (_dir, mut app) = app();
        // The command line: `q` is typed, not quit; the footer shows the line.
        key(&mut app, KeyCode::Char(':'));
        for c in "qx".chars() {
            key(&mut app, KeyCode::Char(c));
        }
        key(&mut app, KeyCode::Backspace);
        assert!(!app.quit);
        assert!(screen(&app, 80, 24).contains(":q "));
        key(&mut app, KeyCode::Esc);
        assert!(app.modal.is_none() && !app.quit);
        // Help: `q` closes it, then quits.
        key(&mut app, KeyCode::F(1));
        assert!(app.help_open());
        assert!(screen(&app, 80, 24).contains("┌ keys"));
        key(&mut app, KeyCode::Char('q'));
        assert!(app.modal.is_none() && !app.quit);
        // The stop question: other keys leave it open; `n` keeps training.
        app.modal = Some(Modal::ConfirmStop);
        assert!(screen(&app, 80, 24).contains("Stop training at the next safe point?"));
        key(&mut app, KeyCode::Char('x'));
        assert!(matches!(app.modal, Some(Modal::ConfirmStop)));
        key(&mut app, KeyCode::Char('n'));
        assert!(app.modal.is_none() && !app.quit);
        // Leaving a run this explorer started: `d` leaves it in the background.
        app.modal = Some(Modal::ConfirmLeave);
        assert!(screen(&app, 80, 24).contains("This explorer started the run"));
        key(&mut app, KeyCode::Char('d'));
        assert!(app.quit && app.modal.is_none());
        assert_eq!(app.left, Some(Leave::Detach));
    }
}
