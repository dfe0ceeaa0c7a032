//! The keys every view answers to (quit, pause, commands, help, views, the iteration
//! cursor) as one list, the dispatch of a key (popups first, then these, then the current
//! view's own keys, then Left Right as the iteration cursor), and the mouse.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::attach::Leave;
use super::explorer::{App, Screen};
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
        if self.help {
            self.help_key(key);
            return Ok(());
        }
        if self.form.is_some() {
            return self.form_key(key);
        }
        if let Some(cmd) = self.command.as_mut() {
            match key.code {
                KeyCode::Esc => self.command = None,
                KeyCode::Backspace => {
                    cmd.pop();
                }
                KeyCode::Char(c) => cmd.push(c),
                KeyCode::Enter => {
                    let line = self.command.take().unwrap_or_default();
                    self.run_command(&line)?;
                }
                _ => {}
            }
            return Ok(());
        }
        if self.confirm_stop {
            match key.code {
                KeyCode::Char('y') | KeyCode::Enter => {
                    self.confirm_stop = false;
                    self.stop();
                    self.left = Some(Leave::Stop);
                    self.quit = true;
                }
                KeyCode::Char('n') | KeyCode::Esc => self.confirm_stop = false,
                _ => {}
            }
            return Ok(());
        }
        if self.confirm_leave {
            match key.code {
                KeyCode::Char('s') => {
                    self.confirm_leave = false;
                    self.stop();
                    self.left = Some(Leave::Stop);
                    self.quit = true;
                }
                KeyCode::Char('d') | KeyCode::Char('b') => {
                    self.confirm_leave = false;
                    self.left = Some(Leave::Detach);
                    self.quit = true;
                }
                KeyCode::Esc | KeyCode::Char('n') => self.confirm_leave = false,
                _ => {}
            }
            return Ok(());
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
            KeyCode::Char('c') if ctrl && owned => self.confirm_leave = true,
            KeyCode::Char('q') if owned => self.confirm_leave = true,
            KeyCode::Char('c') if ctrl && running => {
                self.left = Some(Leave::Detach);
                self.quit = true;
            }
            KeyCode::Char('q') if running => {
                self.left = Some(Leave::Detach);
                self.quit = true;
            }
            KeyCode::Char(':') => self.command = Some(String::new()),
            KeyCode::Char('X') if control => self.confirm_stop = true,
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
            KeyCode::Char('?') | KeyCode::F(1) => {
                self.help = true;
                self.help_scroll = 0;
            }
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

    /// Keys while the help popup is open: scroll it, or close it.
    fn help_key(&mut self, key: KeyEvent) {
        let max = self.help_max_scroll.get();
        let s = &mut self.help_scroll;
        match key.code {
            KeyCode::Esc | KeyCode::Char('?') | KeyCode::F(1) | KeyCode::Char('q') => {
                self.help = false
            }
            KeyCode::Down | KeyCode::Char('j') => *s = (*s + 1).min(max),
            KeyCode::Up | KeyCode::Char('k') => *s = s.saturating_sub(1),
            KeyCode::PageDown | KeyCode::Char(' ') => *s = (*s + 10).min(max),
            KeyCode::PageUp => *s = s.saturating_sub(10),
            KeyCode::Home | KeyCode::Char('g') => *s = 0,
            KeyCode::End | KeyCode::Char('G') => *s = max,
            _ => {}
        }
    }
}
