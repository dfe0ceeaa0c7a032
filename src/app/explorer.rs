//! The explorer's shared state and its global keys. Each view (views/) owns its own state
//! and keys; the App holds the run on screen (read from the store, or the trainer when the
//! run is live here) and hands it to the views as a [`Ctx`]. A finished run is replayed
//! with the same code a live one would use.
use std::cell::Cell;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::snapshot::RunSnapshot;
use super::theme::Theme;
use super::views::wrong::{wrong_paths, WrongPath};
use super::views::{Action, Ctx, KeyHelp, Views};
use crate::engine::control::Directive;
use crate::engine::search::record::TreeRecord;
use crate::engine::search::replay::ReplayStep;
use crate::engine::trainer::Summary;
use crate::store::{Store, StoreError};

use super::form::RetuneForm;
use super::live::LiveHandle;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Dashboard,
    Problems,
    Tree,
    Wrong,
    Compare,
}

impl Screen {
    pub const ALL: [Screen; 5] = [
        Screen::Dashboard,
        Screen::Problems,
        Screen::Tree,
        Screen::Wrong,
        Screen::Compare,
    ];
    pub fn title(self) -> &'static str {
        match self {
            Screen::Dashboard => "1 Dashboard",
            Screen::Problems => "2 Problems",
            Screen::Tree => "3 Tree",
            Screen::Wrong => "4 Confident-wrong",
            Screen::Compare => "5 Compare",
        }
    }
    /// Where Esc goes from here.
    fn parent(self) -> Screen {
        match self {
            Screen::Tree => Screen::Problems,
            _ => Screen::Dashboard,
        }
    }
}

/// The keys every view answers to, for the help popup and the footer. The views' own
/// keys come first: a view that uses Left Right (the tree) keeps them from the iteration.
pub const GLOBAL_KEYS: &[KeyHelp] = &[
    KeyHelp::new("q, Ctrl-C", "quit (asks before stopping a live run)").footer("quit"),
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
         in force), goto iter N, checkpoint, skip ID, pause, resume, stop",
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

pub struct App {
    pub store: Store,
    pub snapshot: RunSnapshot,
    pub theme: Theme,
    pub screen: Screen,
    /// The iteration every view shows.
    pub iteration: u64,
    pub trees: Vec<TreeRecord>,
    /// Every view with its own state.
    pub views: Views,
    pub help: bool,
    /// The first line of the help popup on screen.
    pub help_scroll: usize,
    /// The last help line that can be on top, as the last frame drew it.
    pub help_max_scroll: Cell<usize>,
    pub maximized: bool,
    pub quit: bool,
    pub message: String,
    /// The trainer, when the run is live in this process.
    pub live: Option<LiveHandle>,
    /// Live mode follows the newest iteration until the cursor is moved or `f` freezes.
    pub following: bool,
    /// The trainer's current phase and progress.
    pub phase: String,
    /// The trainer acknowledged the pause at a safe point.
    pub paused: bool,
    pub finished: Option<Result<Summary, String>>,
    /// Asking whether to stop training before quitting.
    pub confirm_stop: bool,
    /// The `:` command line being typed.
    pub command: Option<String>,
    /// Where the last frame drew the focused list, for mouse selection.
    pub list_hit: Cell<Option<ListHit>>,
    /// The retune form, when open.
    pub form: Option<RetuneForm>,
}

/// The screen rows of a drawn list: item `offset` is on row `top`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ListHit {
    pub area: ratatui::layout::Rect,
    pub top: u16,
    pub offset: usize,
}

impl ListHit {
    /// The list index under screen cell (`column`, `row`), if any.
    pub fn index_at(&self, column: u16, row: u16) -> Option<usize> {
        let a = self.area;
        let inside = column >= a.x && column < a.x + a.width && row >= self.top;
        (inside && row < a.y + a.height).then(|| self.offset + (row - self.top) as usize)
    }
}

impl App {
    /// Opens `run` at its newest iteration.
    pub fn open(store: Store, run: &str, theme: Theme) -> Result<Self, StoreError> {
        let snapshot = RunSnapshot::load(&store, run)?;
        let iteration = snapshot.last_iteration();
        let mut app = App {
            store,
            snapshot,
            theme,
            screen: Screen::Dashboard,
            iteration: 0,
            trees: Vec::new(),
            views: Views::default(),
            help: false,
            help_scroll: 0,
            help_max_scroll: Cell::new(0),
            maximized: false,
            quit: false,
            message: String::new(),
            live: None,
            following: true,
            phase: String::new(),
            paused: false,
            finished: None,
            confirm_stop: false,
            command: None,
            list_hit: Cell::new(None),
            form: None,
        };
        app.goto(iteration)?;
        Ok(app)
    }

    /// Moves the replay cursor to `iteration` (clamped) and loads its trees.
    pub fn goto(&mut self, iteration: u64) -> Result<(), StoreError> {
        let last = self.snapshot.last_iteration();
        let it = iteration.clamp(last.min(1), last);
        if it == last {
            self.following = true;
        }
        if it != self.iteration || self.trees.is_empty() {
            self.trees = if it == 0 {
                Vec::new()
            } else {
                self.store.trees(&self.snapshot.run.name, it)?
            };
            self.iteration = it;
            self.views.tree.reset(self.trees.len());
        }
        Ok(())
    }

    /// Loads every run of the store for the compare view.
    pub fn load_compare(&mut self) -> Result<(), StoreError> {
        // A run of an `arbor compare` is compared with its group; any other with all runs.
        let group = self.snapshot.run.comparison.clone();
        let mut runs = Vec::new();
        for r in self.store.runs()? {
            if group.is_none() || r.comparison == group {
                runs.push(RunSnapshot::load(&self.store, &r.name)?);
            }
        }
        let view = &mut self.views.compare;
        view.list.sel = view.list.at(runs.len());
        view.runs = runs;
        Ok(())
    }

    /// Switches the replay to another run of the store (not while a run is live here).
    pub fn open_run(&mut self, name: &str) -> Result<(), StoreError> {
        if self.live.is_some() {
            self.message = "a live run is open: replay other runs with arbor view".into();
            return Ok(());
        }
        self.snapshot = RunSnapshot::load(&self.store, name)?;
        self.trees.clear();
        self.iteration = 0;
        self.goto(u64::MAX)?;
        self.screen = Screen::Dashboard;
        Ok(())
    }

    /// The run on screen, as the views read it.
    pub fn ctx(&self) -> Ctx<'_> {
        Ctx {
            snapshot: &self.snapshot,
            iteration: self.iteration,
            trees: &self.trees,
            theme: &self.theme,
            maximized: self.maximized,
            list_hit: &self.list_hit,
        }
    }

    /// The views, mutable, beside the run they read.
    fn split(&mut self) -> (&mut Views, Ctx<'_>) {
        let ctx = Ctx {
            snapshot: &self.snapshot,
            iteration: self.iteration,
            trees: &self.trees,
            theme: &self.theme,
            maximized: self.maximized,
            list_hit: &self.list_hit,
        };
        (&mut self.views, ctx)
    }

    /// Problems the Problems view lists, in its order (indices into `trees`).
    pub fn listed(&self) -> Vec<usize> {
        self.views.problems.listed(&self.trees)
    }

    /// The tree the tree view shows.
    pub fn tree(&self) -> Option<&TreeRecord> {
        self.trees.get(self.views.tree.problem)
    }

    /// Every expansion of the shown tree, replayed from the store.
    pub fn replay_steps(&self) -> Result<Vec<ReplayStep>, String> {
        self.views.tree.replay_steps(&self.ctx())
    }

    /// The rows the tree view lists, (node id, depth).
    pub fn rows(&self) -> Vec<(u32, usize)> {
        self.views.tree.rows(&self.ctx())
    }

    /// The node under the tree cursor.
    pub fn selected_node(&self) -> Option<u32> {
        self.views.tree.selected_node(&self.ctx())
    }

    /// Confident-wrong paths of the iteration, surest first.
    pub fn wrong_paths(&self) -> Vec<WrongPath> {
        wrong_paths(&self.trees)
    }

    /// Drilling into a tree of a live run freezes the view on its iteration, so the tree
    /// does not change under the cursor; `L` or `f` follows the newest again.
    fn hold_still(&mut self) {
        if self.live.is_some() && self.following {
            self.following = false;
            self.message = format!(
                "view frozen at iteration {} (training goes on; L follows the newest)",
                self.iteration
            );
        }
    }

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
    fn show(&mut self, s: Screen) -> Result<(), StoreError> {
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
                    self.quit = true;
                }
                KeyCode::Char('n') | KeyCode::Esc => self.confirm_stop = false,
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
        match key.code {
            KeyCode::Char('c') if ctrl && running => self.confirm_stop = true,
            KeyCode::Char('q') if running => self.confirm_stop = true,
            KeyCode::Char(':') => self.command = Some(String::new()),
            KeyCode::Char('r') if running => self.open_form(),
            KeyCode::Char('p') if running => self.toggle_pause(),
            KeyCode::Char('c') if running => {
                self.push(Directive::Checkpoint);
                self.message = "checkpoint at the next safe point".into();
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
