//! The explorer's state and keys. It renders snapshots of the store (views/), so a finished
//! run is replayed with the same code a live one would use.
use std::collections::HashSet;

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

use super::snapshot::{path_entropy, status, visible_rows, RunSnapshot};
use super::theme::Theme;
use crate::engine::control::Directive;
use crate::engine::search::record::TreeRecord;
use crate::engine::search::replay::{replay, ReplayStep};
use crate::engine::trainer::Summary;
use crate::store::{Store, StoreError};

use super::attach::{Attached, Leave};
use super::source::RunSource;

use super::filters::{Filter, NodeFilter, SortBy};
use super::form::RetuneForm;

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
}

/// One confident-wrong path: problem index, terminal node id, its path entropy.
#[derive(Clone, Debug, PartialEq)]
pub struct WrongPath {
    pub problem: usize,
    pub node: u32,
    pub entropy: f64,
}

pub struct App {
    /// Where the run is read from: the store, or the live run's trainer.
    pub source: Box<dyn RunSource>,
    pub snapshot: RunSnapshot,
    pub theme: Theme,
    pub screen: Screen,
    /// The iteration every view shows.
    pub iteration: u64,
    pub trees: Vec<TreeRecord>,
    pub filter: Filter,
    pub problem_sel: usize,
    /// Problem shown in the tree view (index into `trees`).
    pub problem: usize,
    pub node_sel: usize,
    pub folded: HashSet<u32>,
    pub wrong_sel: usize,
    pub help: bool,
    pub maximized: bool,
    pub quit: bool,
    pub message: String,
    pending_g: bool,
    /// The live run's trainer, when this explorer is attached to one.
    pub live: Option<Attached>,
    /// Live mode follows the newest iteration until the cursor is moved or `f` freezes.
    pub following: bool,
    /// The trainer's current phase and progress.
    pub phase: String,
    /// The trainer acknowledged the pause at a safe point.
    pub paused: bool,
    pub finished: Option<Result<Summary, String>>,
    /// Asking whether to stop training.
    pub confirm_stop: bool,
    /// Asking whether to stop the run this explorer started or leave it in the background.
    pub confirm_leave: bool,
    /// How the user left a live run.
    pub left: Option<Leave>,
    /// The `:` command line being typed.
    pub command: Option<String>,
    /// Every run of the store, for the compare view (loaded when it opens).
    pub compare: Vec<RunSnapshot>,
    pub compare_sel: usize,
    /// Nodes listed by the tree view.
    pub node_filter: NodeFilter,
    /// Order of the Problems view.
    pub sort: SortBy,
    /// Where the last frame drew the focused list, for mouse selection.
    pub list_hit: std::cell::Cell<Option<ListHit>>,
    /// The retune form, when open.
    pub form: Option<RetuneForm>,
    /// The search replay in the tree view, while it is on.
    pub replay: Option<Replay>,
}

/// The search replay of one tree: its expansions, replayed once when the replay starts,
/// and the one on screen.
pub struct Replay {
    pub iteration: u64,
    pub problem: usize,
    pub steps: Vec<ReplayStep>,
    pub step: usize,
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
        Self::open_source(Box::new(store), run, theme)
    }

    /// Opens `run` of `source` at its newest iteration.
    pub fn open_source(
        source: Box<dyn RunSource>,
        run: &str,
        theme: Theme,
    ) -> Result<Self, StoreError> {
        let snapshot = RunSnapshot::load(source.as_ref(), run)?;
        let iteration = snapshot.last_iteration();
        let mut app = App {
            source,
            snapshot,
            theme,
            screen: Screen::Dashboard,
            iteration: 0,
            trees: Vec::new(),
            filter: Filter::All,
            problem_sel: 0,
            problem: 0,
            node_sel: 0,
            folded: HashSet::new(),
            wrong_sel: 0,
            help: false,
            maximized: false,
            quit: false,
            message: String::new(),
            pending_g: false,
            live: None,
            following: true,
            phase: String::new(),
            paused: false,
            finished: None,
            confirm_stop: false,
            confirm_leave: false,
            left: None,
            command: None,
            compare: Vec::new(),
            compare_sel: 0,
            node_filter: NodeFilter::All,
            sort: SortBy::Order,
            list_hit: std::cell::Cell::new(None),
            form: None,
            replay: None,
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
                self.source.trees(&self.snapshot.run.name, it)?
            };
            self.iteration = it;
            self.problem = self.problem.min(self.trees.len().saturating_sub(1));
            self.node_sel = 0;
            self.folded.clear();
        }
        Ok(())
    }

    /// Loads every run of the store for the compare view.
    pub fn load_compare(&mut self) -> Result<(), StoreError> {
        // A run of an `arbor compare` is compared with its group; any other with all runs.
        let group = self.snapshot.run.comparison.clone();
        let mut runs = Vec::new();
        for r in self.source.runs()? {
            if group.is_none() || r.comparison == group {
                runs.push(RunSnapshot::load(self.source.as_ref(), &r.name)?);
            }
        }
        self.compare = runs;
        self.compare_sel = self.compare_sel.min(self.compare.len().saturating_sub(1));
        Ok(())
    }

    /// Switches the replay to another run of the store (not while a run is live here).
    pub fn open_run(&mut self, name: &str) -> Result<(), StoreError> {
        if self.live.is_some() {
            self.message = "a live run is open: replay other runs with arbor view".into();
            return Ok(());
        }
        self.snapshot = RunSnapshot::load(self.source.as_ref(), name)?;
        self.trees.clear();
        self.iteration = 0;
        self.goto(u64::MAX)?;
        self.screen = Screen::Dashboard;
        Ok(())
    }

    /// Problems of the iteration that pass the filter, in the chosen order (indices into
    /// `trees`).
    pub fn listed(&self) -> Vec<usize> {
        let mut v: Vec<usize> = (0..self.trees.len())
            .filter(|&i| self.filter.keeps(status(&self.trees[i])))
            .collect();
        match self.sort {
            SortBy::Order => {}
            SortBy::Success => v.sort_by(|&a, &b| {
                super::snapshot::success(&self.trees[a])
                    .total_cmp(&super::snapshot::success(&self.trees[b]))
            }),
            SortBy::Nodes => v.sort_by_key(|&i| std::cmp::Reverse(self.trees[i].nodes.len())),
        }
        v
    }

    pub fn tree(&self) -> Option<&TreeRecord> {
        self.trees.get(self.problem)
    }

    /// The replayed expansions of the shown tree and the step on screen, while the search
    /// replay is on for it.
    pub fn replay_step(&self) -> Option<(&[ReplayStep], usize)> {
        let r = self.replay.as_ref()?;
        (r.iteration == self.iteration && r.problem == self.problem && r.step < r.steps.len())
            .then_some((r.steps.as_slice(), r.step))
    }

    /// Every expansion of the shown tree, replayed from the store with the run's backup
    /// settings.
    pub fn replay_steps(&self) -> Result<Vec<ReplayStep>, String> {
        let t = self.tree().ok_or("no tree at this iteration")?;
        if t.source != crate::engine::search::record::GroupSource::Search {
            return Err(format!(
                "only DeepSearch trees can be replayed (this one is {:?})",
                t.source
            ));
        }
        let cfg = crate::engine::config::RunConfig::from_toml(&self.snapshot.run.config_toml)
            .unwrap_or_default();
        replay(t, cfg.search.gamma_min, cfg.search.backup)
    }

    /// Moves the search replay one expansion forward (`>`) or back (`<`); back from the
    /// first expansion leaves the replay. The tree is replayed when the replay starts.
    fn step_replay(&mut self, forward: bool) {
        let current = self.replay_step().map(|(_, k)| k);
        let steps = match self.replay.take() {
            Some(r) if current.is_some() => r.steps,
            _ => match self.replay_steps() {
                Ok(s) => s,
                Err(e) => {
                    self.message = e;
                    return;
                }
            },
        };
        let last = steps.len().saturating_sub(1);
        let next = match (current, forward) {
            (None, true) => Some(0),
            (None, false) => Some(last),
            (Some(k), true) => Some((k + 1).min(last)),
            (Some(0), false) => None,
            (Some(k), false) => Some(k - 1),
        };
        self.node_sel = 0;
        self.message = match next {
            Some(k) => format!("search replay: expansion {} of {}", k + 1, steps.len()),
            None => "search replay off".into(),
        };
        self.replay = next.map(|step| Replay {
            iteration: self.iteration,
            problem: self.problem,
            steps,
            step,
        });
    }

    pub fn rows(&self) -> Vec<(u32, usize)> {
        let Some(t) = self.tree() else {
            return Vec::new();
        };
        let mut rows = visible_rows(t, &self.folded);
        // During the replay only the nodes created by then are listed.
        if let Some((steps, k)) = self.replay_step() {
            let state = &steps[k].state;
            rows.retain(|&(id, _)| state.get(id as usize).is_some_and(|s| s.is_some()));
        }
        if self.node_filter == NodeFilter::All {
            return rows;
        }
        rows.into_iter()
            .filter(|&(id, _)| t.node(id).is_some_and(|n| self.node_filter.keeps(n)))
            .collect()
    }

    /// The node under the tree cursor.
    pub fn selected_node(&self) -> Option<u32> {
        self.rows().get(self.node_sel).map(|r| r.0)
    }

    /// Confident-wrong paths of the iteration, surest first.
    pub fn wrong_paths(&self) -> Vec<WrongPath> {
        let mut out: Vec<WrongPath> = Vec::new();
        for (i, t) in self.trees.iter().enumerate() {
            // The marked path ends at a recorded wrong terminal.
            if let Some(n) = t
                .nodes
                .iter()
                .find(|n| n.confident_wrong && n.correct == Some(false) && n.recorded)
            {
                out.push(WrongPath {
                    problem: i,
                    node: n.id,
                    entropy: path_entropy(t, n.id),
                });
            }
        }
        out.sort_by(|a, b| a.entropy.total_cmp(&b.entropy));
        out
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

    /// `id` and every node below it in the shown tree.
    fn subtree(&self, id: u32) -> Vec<u32> {
        let Some(t) = self.tree() else {
            return Vec::new();
        };
        let mut kids: std::collections::HashMap<u32, Vec<u32>> = Default::default();
        for n in &t.nodes {
            if let Some(p) = n.parent {
                kids.entry(p).or_default().push(n.id);
            }
        }
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() {
            out.extend(kids.get(&out[i]).into_iter().flatten().copied());
            i += 1;
        }
        out
    }

    fn select_node(&mut self, id: u32) {
        if let Some(pos) = self.rows().iter().position(|r| r.0 == id) {
            self.node_sel = pos;
        }
    }

    fn list_len(&self) -> usize {
        match self.screen {
            Screen::Dashboard => 0,
            Screen::Problems => self.listed().len(),
            Screen::Tree => self.rows().len(),
            Screen::Wrong => self.wrong_paths().len(),
            Screen::Compare => self.compare.len(),
        }
    }

    fn cursor(&mut self) -> Option<&mut usize> {
        match self.screen {
            Screen::Dashboard => None,
            Screen::Problems => Some(&mut self.problem_sel),
            Screen::Tree => Some(&mut self.node_sel),
            Screen::Wrong => Some(&mut self.wrong_sel),
            Screen::Compare => Some(&mut self.compare_sel),
        }
    }

    fn move_by(&mut self, delta: i64) {
        let len = self.list_len();
        if let Some(c) = self.cursor() {
            let max = len.saturating_sub(1) as i64;
            *c = (*c as i64 + delta).clamp(0, max.max(0)) as usize;
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
                    let len = self.list_len();
                    if let Some(c) = self.cursor() {
                        if i < len {
                            *c = i;
                        }
                    }
                }
            }
            MouseEventKind::Down(MouseButton::Left) if m.row == 1 => {
                // Tabs are drawn as "title │ title │ ..." from column 1.
                let mut x = 1u16;
                for s in Screen::ALL {
                    let w = s.title().chars().count() as u16 + 3;
                    if m.column < x + w {
                        self.screen = s;
                        if s == Screen::Compare {
                            if let Err(e) = self.load_compare() {
                                self.message = e.to_string();
                            }
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

    fn key(&mut self, key: KeyEvent) -> Result<(), StoreError> {
        let ctrl = key.modifiers.contains(KeyModifiers::CONTROL);
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        if self.help {
            if matches!(
                key.code,
                KeyCode::Esc | KeyCode::Char('?') | KeyCode::F(1) | KeyCode::Char('q')
            ) {
                self.help = false;
            }
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
        let g = std::mem::take(&mut self.pending_g);
        let running = self.live.is_some() && self.finished.is_none();
        let control = running && !self.live.as_ref().is_some_and(|l| l.readonly());
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
            KeyCode::Char('?') | KeyCode::F(1) => self.help = true,
            KeyCode::Esc => {
                self.maximized = false;
                self.screen = match self.screen {
                    Screen::Tree => Screen::Problems,
                    Screen::Problems | Screen::Wrong | Screen::Compare => Screen::Dashboard,
                    Screen::Dashboard => Screen::Dashboard,
                };
            }
            KeyCode::Char(c @ '1'..='5') => {
                self.screen = Screen::ALL[(c as u8 - b'1') as usize];
                if self.screen == Screen::Compare {
                    self.load_compare()?;
                }
            }
            KeyCode::Tab => {
                let i = Screen::ALL
                    .iter()
                    .position(|s| *s == self.screen)
                    .unwrap_or(0);
                self.screen = Screen::ALL[(i + 1) % Screen::ALL.len()];
                if self.screen == Screen::Compare {
                    self.load_compare()?;
                }
            }
            KeyCode::BackTab => {
                let i = Screen::ALL
                    .iter()
                    .position(|s| *s == self.screen)
                    .unwrap_or(0);
                self.screen = Screen::ALL[(i + Screen::ALL.len() - 1) % Screen::ALL.len()];
                if self.screen == Screen::Compare {
                    self.load_compare()?;
                }
            }
            KeyCode::Down | KeyCode::Char('j') => self.move_by(1),
            KeyCode::Up | KeyCode::Char('k') => self.move_by(-1),
            KeyCode::PageDown => self.move_by(10),
            KeyCode::PageUp => self.move_by(-10),
            KeyCode::Char('d') if ctrl => self.move_by(10),
            KeyCode::Char('u') if ctrl => self.move_by(-10),
            KeyCode::Home => self.move_by(i64::MIN / 2),
            KeyCode::Char('g') if g => self.move_by(i64::MIN / 2),
            KeyCode::Char('g') => self.pending_g = true,
            KeyCode::End | KeyCode::Char('G') => self.move_by(i64::MAX / 2),
            // Replay: the iteration cursor.
            KeyCode::Char('[') => {
                self.following = false;
                self.goto(self.iteration.saturating_sub(1))?
            }
            KeyCode::Char(']') => self.goto(self.iteration + 1)?,
            KeyCode::Char('L') => {
                self.following = true;
                self.goto(u64::MAX)?
            }
            KeyCode::Char('/') if self.screen == Screen::Problems => {
                self.filter = self.filter.next();
                self.problem_sel = 0;
            }
            KeyCode::Char('s') if self.screen == Screen::Problems => {
                self.sort = self.sort.next();
                self.problem_sel = 0;
                self.message = format!("sorted by {}", self.sort.label());
            }
            KeyCode::Char('>') if self.screen == Screen::Tree => self.step_replay(true),
            KeyCode::Char('<') if self.screen == Screen::Tree => self.step_replay(false),
            KeyCode::Char('/') if self.screen == Screen::Tree => {
                self.node_filter = self.node_filter.next();
                self.node_sel = 0;
                self.message = format!("showing {}", self.node_filter.label());
            }
            KeyCode::Char('e') | KeyCode::Char('z') => self.maximized = !self.maximized,
            KeyCode::Char(' ') if self.screen == Screen::Tree => {
                if let Some(id) = self.selected_node() {
                    if !self.folded.remove(&id) {
                        self.folded.insert(id);
                    }
                }
            }
            KeyCode::Left if shift && self.screen == Screen::Tree => {
                if let Some(id) = self.selected_node() {
                    self.folded.extend(self.subtree(id));
                }
            }
            KeyCode::Right if shift && self.screen == Screen::Tree => {
                if let Some(id) = self.selected_node() {
                    for n in self.subtree(id) {
                        self.folded.remove(&n);
                    }
                }
            }
            KeyCode::Left | KeyCode::Char('h') if self.screen == Screen::Tree => {
                if let Some(id) = self.selected_node() {
                    self.folded.insert(id);
                }
            }
            KeyCode::Right | KeyCode::Char('l') if self.screen == Screen::Tree => {
                if let Some(id) = self.selected_node() {
                    self.folded.remove(&id);
                }
            }
            KeyCode::Left | KeyCode::Char('h') => self.goto(self.iteration.saturating_sub(1))?,
            KeyCode::Right | KeyCode::Char('l') => self.goto(self.iteration + 1)?,
            KeyCode::Enter => match self.screen {
                Screen::Dashboard => self.screen = Screen::Problems,
                Screen::Problems => {
                    if let Some(&i) = self.listed().get(self.problem_sel) {
                        self.problem = i;
                        self.node_sel = 0;
                        self.folded.clear();
                        self.screen = Screen::Tree;
                        self.hold_still();
                    }
                }
                Screen::Wrong => {
                    if let Some(w) = self.wrong_paths().get(self.wrong_sel).cloned() {
                        self.problem = w.problem;
                        self.folded.clear();
                        self.screen = Screen::Tree;
                        self.select_node(w.node);
                        self.hold_still();
                    }
                }
                Screen::Tree => {}
                Screen::Compare => {
                    if let Some(c) = self.compare.get(self.compare_sel) {
                        let name = c.run.name.clone();
                        self.open_run(&name)?;
                    }
                }
            },
            _ => {}
        }
        Ok(())
    }
}
