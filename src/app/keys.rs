//! The keys every view answers to (quit, pause, commands, help, views, the iteration
//! cursor) as one table of keys, actions and help, the dispatch of a key (popups first, then these, then the current
//! view's own keys, then Left Right as the iteration cursor), and the mouse.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::attach::Leave;
use super::explorer::{App, Modal, Screen};
use super::views::{Action, KeyHelp};
use crate::engine::training::control::Directive;
use crate::store::StoreError;

/// A key as typed: its code, and whether Ctrl is held. An entry's key without Ctrl
/// answers it with any modifiers, unless another entry claims it with Ctrl (Ctrl-C quits,
/// `c` checkpoints).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Press {
    pub code: KeyCode,
    pub ctrl: bool,
}

impl Press {
    const fn key(code: KeyCode) -> Self {
        Self { code, ctrl: false }
    }
    const fn ch(c: char) -> Self {
        Self::key(KeyCode::Char(c))
    }
    const fn ctrl(c: char) -> Self {
        Self {
            code: KeyCode::Char(c),
            ctrl: true,
        }
    }

    /// The key as the help writes it: "q", "Ctrl-C", "F1", "Shift-Tab".
    pub fn name(&self) -> String {
        let base = match self.code {
            KeyCode::Char(c) if self.ctrl => c.to_ascii_uppercase().to_string(),
            KeyCode::Char(c) => c.to_string(),
            KeyCode::F(n) => format!("F{n}"),
            KeyCode::BackTab => "Shift-Tab".into(),
            other => format!("{other:?}"),
        };
        if self.ctrl {
            format!("Ctrl-{base}")
        } else {
            base
        }
    }

    /// The event this key sends.
    pub fn event(&self) -> KeyEvent {
        let m = if self.ctrl {
            KeyModifiers::CONTROL
        } else {
            KeyModifiers::NONE
        };
        KeyEvent::new(self.code, m)
    }
}

/// What a key of [`GLOBAL_KEYS`] does; `App::run_global` is its one handler.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GlobalAction {
    Quit,
    Stop,
    Pause,
    Retune,
    Checkpoint,
    Command,
    /// Open the search line.
    Search,
    /// The next / previous match of the search.
    NextMatch,
    Help,
    /// Switch views: by number, or the next / previous one.
    Views,
    Back,
    /// The previous / next iteration.
    Iteration,
    /// The newest iteration, following it.
    Newest,
    Freeze,
    Maximize,
}

/// When the App tries an entry: before the current view's keys, or only when the view
/// passes the key on (Left Right fold in the tree view).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Order {
    First,
    AfterView,
}

/// One entry of the keys every view answers to: the keys it matches, what they do, and
/// what the help popup, the footer and docs/explorer.md say of them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct GlobalKey {
    pub presses: &'static [Press],
    pub action: GlobalAction,
    pub order: Order,
    pub help: KeyHelp,
}

const fn entry(presses: &'static [Press], action: GlobalAction, help: KeyHelp) -> GlobalKey {
    GlobalKey {
        presses,
        action,
        order: Order::First,
        help,
    }
}

/// The keys every view answers to: dispatched from this table (`App::global_key`), and
/// listed from it in the help popup, the footer and docs/explorer.md.
pub const GLOBAL_KEYS: &[GlobalKey] = &[
    entry(
        &[Press::ch('q'), Press::ctrl('c')],
        GlobalAction::Quit,
        KeyHelp::new(
            "q, Ctrl-C",
            "quit; from a live run, detach (it goes on); a run this explorer started asks: \
             leave it training in the background or stop it",
        )
        .footer("quit"),
    ),
    entry(
        &[Press::ch('X')],
        GlobalAction::Stop,
        KeyHelp::new("X", "stop training at the next safe point (asks first)")
            .footer("stop")
            .live(),
    ),
    entry(
        &[Press::ch('p')],
        GlobalAction::Pause,
        KeyHelp::new("p", "pause / resume training at the next safe point")
            .footer("pause")
            .live(),
    ),
    entry(
        &[Press::ch('r')],
        GlobalAction::Retune,
        KeyHelp::new(
            "r",
            "retune form: edit the settings in force, Enter applies, Esc cancels",
        )
        .footer("retune")
        .live(),
    ),
    entry(
        &[Press::ch('c')],
        GlobalAction::Checkpoint,
        KeyHelp::new("c", "checkpoint at the next safe point").live(),
    ),
    entry(
        &[Press::ch(':')],
        GlobalAction::Command,
        KeyHelp::new(
            ":",
            "command: set NAME VALUE (NAMEs in the dashboard's help; set, set NAME: values \
             in force), goto iter N, checkpoint, skip ID, pause, resume, stop, detach",
        )
        .footer("command"),
    ),
    entry(
        &[Press::ch('/')],
        GlobalAction::Search,
        KeyHelp::new(
            "/",
            "search the texts of this iteration's samples and tree nodes (Tab in the line: \
             the whole run, listing the iterations that hold it); matches are highlighted",
        )
        .footer("search"),
    ),
    entry(
        &[Press::ch('n'), Press::ch('N')],
        GlobalAction::NextMatch,
        KeyHelp::new(
            "n N",
            "next / previous match of the search, opened in the tree",
        ),
    ),
    entry(
        &[Press::ch('?'), Press::key(KeyCode::F(1))],
        GlobalAction::Help,
        KeyHelp::new("?, F1", "this help; j k scroll it, Esc closes it").footer("help"),
    ),
    entry(
        &[
            Press::ch('1'),
            Press::ch('2'),
            Press::ch('3'),
            Press::ch('4'),
            Press::ch('5'),
            Press::key(KeyCode::Tab),
            Press::key(KeyCode::BackTab),
        ],
        GlobalAction::Views,
        KeyHelp::new(
            "1-5, Tab, Shift-Tab",
            "dashboard, problems, tree, confident-wrong, compare",
        )
        .footer("views"),
    ),
    entry(
        &[Press::key(KeyCode::Esc)],
        GlobalAction::Back,
        KeyHelp::new("Esc", "back one level").footer("back"),
    ),
    entry(
        &[Press::ch('['), Press::ch(']')],
        GlobalAction::Iteration,
        KeyHelp::new("[ ]", "previous / next iteration (replay)").footer("iteration"),
    ),
    GlobalKey {
        order: Order::AfterView,
        ..entry(
            &[
                Press::key(KeyCode::Left),
                Press::key(KeyCode::Right),
                Press::ch('h'),
                Press::ch('l'),
            ],
            GlobalAction::Iteration,
            KeyHelp::new(
                "Left Right, h l",
                "previous / next iteration, except in the tree view (which folds with them)",
            ),
        )
    },
    entry(
        &[Press::ch('L')],
        GlobalAction::Newest,
        KeyHelp::new(
            "L",
            "the newest iteration, following it (live: shown as it comes)",
        ),
    ),
    entry(
        &[Press::ch('f')],
        GlobalAction::Freeze,
        KeyHelp::new(
            "f",
            "hold the iteration on screen (the run goes on) / follow the newest; moving \
             into a list, a tree or another iteration holds it too",
        )
        .footer("hold"),
    ),
    entry(
        &[Press::ch('e'), Press::ch('z')],
        GlobalAction::Maximize,
        KeyHelp::new("e, z", "maximize the main pane"),
    ),
];

/// The help of every entry of [`GLOBAL_KEYS`], in order.
pub fn global_help() -> impl Iterator<Item = &'static KeyHelp> {
    GLOBAL_KEYS.iter().map(|g| &g.help)
}

/// The entry of [`GLOBAL_KEYS`] tried at `order` that answers `key`: one that names it
/// with its Ctrl state, else one that names it without Ctrl.
pub fn global_entry(key: &KeyEvent, order: Order) -> Option<&'static GlobalKey> {
    let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
    let find = |ctrl: bool| {
        GLOBAL_KEYS.iter().find(|g| {
            g.order == order
                && g.presses
                    .iter()
                    .any(|p| p.code == key.code && p.ctrl == ctrl)
        })
    };
    find(ctrl).or_else(|| find(false))
}

impl App {
    /// Moves the current view's list cursor by `delta` rows.
    fn move_by(&mut self, delta: i64) {
        self.hold_in_list();
        let screen = self.screen;
        let (views, ctx) = self.split();
        let view = views.get_mut(screen);
        let len = view.len(&ctx);
        if let Some(c) = view.cursor() {
            c.move_by(delta, len);
        }
    }

    /// Moving in a list of the iteration (problems, a tree and its replay, the
    /// confident-wrong paths) holds the iteration, so the next one does not replace what
    /// the cursor is on.
    fn hold_in_list(&mut self) {
        if matches!(
            self.screen,
            Screen::Problems | Screen::Tree | Screen::Wrong | Screen::Samples | Screen::History
        ) {
            self.hold_still();
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
                    self.hold_in_list();
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
        let action = views.get_mut(screen).on_key(key, &ctx);
        if matches!(action, Action::Done | Action::Say(_)) {
            self.hold_in_list();
        }
        match action {
            Action::Pass => {
                self.iteration_key(key)?;
            }
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
            Action::OpenSamples(problem) => {
                self.views.samples.open(problem);
                self.screen = Screen::Samples;
                self.hold_still();
            }
            Action::OpenHistory(problem) => self.open_history(problem)?,
            Action::GoToHit(k) => self.go_to_hit(k)?,
            Action::OpenAt {
                iteration,
                problem,
                samples,
            } => self.open_at(iteration, &problem, samples)?,
        }
        Ok(())
    }

    /// The keys of [`GLOBAL_KEYS`] tried before the view's; says whether `key` was one.
    fn global_key(&mut self, key: KeyEvent) -> Result<bool, StoreError> {
        match global_entry(&key, Order::First) {
            Some(g) => self.run_global(g.action, key),
            None => Ok(false),
        }
    }

    /// The keys of [`GLOBAL_KEYS`] a view passed on (Left Right and h l move the
    /// iteration cursor in views that do not use them); says whether `key` was one.
    fn iteration_key(&mut self, key: KeyEvent) -> Result<bool, StoreError> {
        match global_entry(&key, Order::AfterView) {
            Some(g) => self.run_global(g.action, key),
            None => Ok(false),
        }
    }

    /// Does `action` for `key`; says whether it applied (control keys do nothing where
    /// nothing trains, and the view gets the key).
    fn run_global(&mut self, action: GlobalAction, key: KeyEvent) -> Result<bool, StoreError> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let running = self.live.is_some() && self.finished.is_none();
        let control = self.can_steer();
        let owned = running && self.live.as_ref().is_some_and(|l| l.owned);
        match action {
            // Leaving a run this explorer started asks; any other live run is detached.
            GlobalAction::Quit if owned => self.modal = Some(Modal::ConfirmLeave),
            GlobalAction::Quit if running => self.leave(Leave::Detach),
            GlobalAction::Quit => self.quit = true,
            GlobalAction::Stop if control => self.modal = Some(Modal::ConfirmStop),
            GlobalAction::Retune if control => self.open_form(),
            GlobalAction::Pause if control => self.toggle_pause(),
            GlobalAction::Checkpoint if control => self.push(Directive::Checkpoint),
            GlobalAction::Stop
            | GlobalAction::Retune
            | GlobalAction::Pause
            | GlobalAction::Checkpoint => {
                if !running || ctrl {
                    return Ok(false);
                }
                self.message =
                    "this viewer is attached read-only (--readonly): control is refused".into()
            }
            GlobalAction::Command => self.modal = Some(Modal::Command(String::new())),
            GlobalAction::Search => {
                self.modal = Some(Modal::Search {
                    text: String::new(),
                    run_wide: false,
                })
            }
            GlobalAction::NextMatch => self.next_hit(key.code == KeyCode::Char('n'))?,
            GlobalAction::Help => self.modal = Some(Modal::Help { scroll: 0 }),
            GlobalAction::Views => {
                let n = Screen::ALL.len();
                let i = Screen::ALL
                    .iter()
                    .position(|s| *s == self.screen.tab())
                    .unwrap_or(0);
                let to = match key.code {
                    KeyCode::Char(c @ '1'..='9') => (c as u8 - b'1') as usize,
                    KeyCode::BackTab => i + n - 1,
                    _ => i + 1,
                };
                self.show(Screen::ALL[to % n])?;
            }
            GlobalAction::Back => {
                self.maximized = false;
                self.screen = self.screen.parent();
            }
            GlobalAction::Iteration => {
                let back = matches!(
                    key.code,
                    KeyCode::Char('[') | KeyCode::Left | KeyCode::Char('h')
                );
                self.hold_still();
                if back {
                    self.goto(self.iteration.saturating_sub(1))?
                } else {
                    self.goto(self.iteration + 1)?
                }
            }
            GlobalAction::Newest => self.follow()?,
            GlobalAction::Freeze if self.following => self.hold_still(),
            GlobalAction::Freeze => self.follow()?,
            GlobalAction::Maximize => self.maximized = !self.maximized,
        }
        Ok(true)
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
            Modal::Search { text, run_wide } => return self.search_line_key(text, run_wide, key),
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

    /// The keys an entry's help label names: "1-5, Tab" is 1 2 3 4 5 Tab.
    fn listed(label: &str) -> Vec<String> {
        label
            .split(", ")
            .flat_map(|part| part.split(' '))
            .flat_map(|t| match t.as_bytes() {
                [a, b'-', b] if a.is_ascii_digit() && b.is_ascii_digit() => {
                    (*a..=*b).map(|c| (c as char).to_string()).collect()
                }
                _ => vec![t.to_string()],
            })
            .collect()
    }

    /// Every key of every entry reaches that entry and does something (live-only ones
    /// only where a run trains, so not here); every key that does something is named in
    /// its entry's help, and the help names no key that does not dispatch.
    #[test]
    fn every_entry_dispatches_its_keys_and_the_help_names_every_key_that_does() {
        let (_dir, mut app) = app();
        let run = |app: &mut App, ev: KeyEvent, order: Order| {
            app.modal = None;
            app.quit = false;
            app.screen = Screen::Dashboard;
            match order {
                Order::First => app.global_key(ev).unwrap(),
                Order::AfterView => app.iteration_key(ev).unwrap(),
            }
        };
        for g in GLOBAL_KEYS {
            let mut names: Vec<String> = g.presses.iter().map(Press::name).collect();
            let mut label = listed(g.help.keys);
            names.sort();
            label.sort();
            assert_eq!(names, label, "{:?}: the help names other keys", g.action);
            for p in g.presses {
                let found = global_entry(&p.event(), g.order);
                assert_eq!(found, Some(g), "{} reaches another entry", p.name());
                let did = run(&mut app, p.event(), g.order);
                assert_eq!(did, !g.help.live_only, "{} of {:?}", p.name(), g.action);
            }
        }
        // Every key, plain, with Shift or with Ctrl: one that does something is listed.
        let mut codes: Vec<KeyCode> = (' '..='~').map(KeyCode::Char).collect();
        codes.extend((1..=12).map(KeyCode::F));
        codes.extend([
            KeyCode::Esc,
            KeyCode::Enter,
            KeyCode::Tab,
            KeyCode::BackTab,
            KeyCode::Left,
            KeyCode::Right,
            KeyCode::Up,
            KeyCode::Down,
            KeyCode::Home,
            KeyCode::End,
            KeyCode::PageUp,
            KeyCode::PageDown,
            KeyCode::Backspace,
            KeyCode::Delete,
        ]);
        for code in codes {
            for m in [
                KeyModifiers::NONE,
                KeyModifiers::SHIFT,
                KeyModifiers::CONTROL,
            ] {
                let ev = KeyEvent::new(code, m);
                for order in [Order::First, Order::AfterView] {
                    if run(&mut app, ev, order) {
                        let g = global_entry(&ev, order).unwrap();
                        let p = g.presses.iter().find(|p| p.code == code).unwrap();
                        assert!(listed(g.help.keys).contains(&p.name()), "{ev:?}");
                    }
                }
            }
        }
    }

    /// docs/explorer.md lists the keys as the tables render them.
    #[test]
    fn docs_explorer_md_lists_the_keys_of_the_tables() {
        use crate::app::help::{keys_markdown, DOCS_BEGIN, DOCS_END};
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/explorer.md");
        let doc = std::fs::read_to_string(&path).unwrap();
        let (Some(a), Some(b)) = (doc.find(DOCS_BEGIN), doc.find(DOCS_END)) else {
            panic!("docs/explorer.md lacks the lines {DOCS_BEGIN:?} and {DOCS_END:?}");
        };
        let inside = &doc[a + DOCS_BEGIN.len()..b];
        let want = format!("\n{}\n", keys_markdown());
        if inside != want {
            if std::env::var_os("ARBOR_BLESS").is_some() {
                let new = format!("{}{want}{}", &doc[..a + DOCS_BEGIN.len()], &doc[b..]);
                std::fs::write(&path, new).unwrap();
            } else {
                panic!(
                    "docs/explorer.md's key list differs from the key tables; regenerate \
                     it with: ARBOR_BLESS=1 cargo test --lib app::keys"
                );
            }
        }
    }
}
