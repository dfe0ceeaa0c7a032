//! The explorer's shared state. Each view (views/) owns its own state and keys, and the
//! keys of every view are in `keys`; the App holds the run on screen (read from the store,
//! or from the trainer when the run is live here) and hands it to the views as a [`Ctx`].
//! A finished run is replayed with the same code a live one would use.
use std::cell::Cell;

use super::snapshot::RunSnapshot;
use super::theme::Theme;
use super::views::wrong::{wrong_paths, WrongPath};
use super::views::{Ctx, Views};
use crate::engine::methods::deepsearch::search::replay::ReplayStep;
use crate::engine::rl::record::TreeRecord;
use crate::engine::training::records::Summary;
use crate::store::{Store, StoreError};

use super::attach::{Attached, Leave};
use super::source::RunSource;

use super::form::RetuneForm;
use super::search::Search;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Screen {
    Dashboard,
    Problems,
    Tree,
    Wrong,
    Compare,
    /// Every sample of one problem (opened from the problems view).
    Samples,
    /// One problem over the run (opened from a view that shows a problem).
    History,
    /// The matches of a run-wide search.
    Search,
}

impl Screen {
    pub const ALL: [Screen; 5] = [
        Screen::Dashboard,
        Screen::Problems,
        Screen::Tree,
        Screen::Wrong,
        Screen::Compare,
    ];
    /// Every view: the tabs, then the views opened from them.
    pub const EVERY: [Screen; 8] = [
        Screen::Dashboard,
        Screen::Problems,
        Screen::Tree,
        Screen::Wrong,
        Screen::Compare,
        Screen::Samples,
        Screen::History,
        Screen::Search,
    ];
    pub fn title(self) -> &'static str {
        match self {
            Screen::Samples => "Samples (o in Problems)",
            Screen::History => "History (H on a problem)",
            Screen::Search => "Search results (/ then Tab: the whole run)",
            Screen::Dashboard => "1 Dashboard",
            Screen::Problems => "2 Problems",
            Screen::Tree => "3 Tree",
            Screen::Wrong => "4 Confident-wrong",
            Screen::Compare => "5 Compare",
        }
    }
    /// Where Esc goes from here.
    pub(crate) fn parent(self) -> Screen {
        match self {
            Screen::Tree | Screen::Samples | Screen::History | Screen::Search => Screen::Problems,
            _ => Screen::Dashboard,
        }
    }
    /// The tab this view is shown under.
    pub(crate) fn tab(self) -> Screen {
        match self {
            Screen::Samples | Screen::History | Screen::Search => Screen::Problems,
            s => s,
        }
    }
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
    /// Every view with its own state.
    pub views: Views,
    /// The popup or line that has the keys, if one is open.
    pub modal: Option<Modal>,
    /// The last help line that can be on top, as the last frame drew it.
    pub help_max_scroll: Cell<usize>,
    pub maximized: bool,
    pub quit: bool,
    pub message: String,
    /// The live run's trainer, when this explorer is attached to one.
    pub live: Option<Attached>,
    /// Live mode follows the newest iteration until the user moves into one (a cursor
    /// move in a list, a tree opened, the search replay, another iteration) or `f` holds
    /// it; `L` or `f` follows again.
    pub following: bool,
    /// The trainer's current phase and progress.
    pub phase: String,
    /// The trainer acknowledged the pause at a safe point.
    pub paused: bool,
    pub finished: Option<Result<Summary, String>>,
    /// How the user left a live run.
    pub left: Option<Leave>,
    /// Where the last frame drew the focused list, for mouse selection.
    pub list_hit: Cell<Option<ListHit>>,
    /// The last text search and its matches (highlighted, `n` / `N` move).
    pub search: Option<Search>,
}

/// What takes every key while it is open, drawn over the view; one at a time.
pub enum Modal {
    /// The help popup, its first line on screen `scroll`.
    Help { scroll: usize },
    /// The retune form.
    Retune(RetuneForm),
    /// The `:` command line being typed.
    Command(String),
    /// The search line being typed; Tab switches between this iteration and the run.
    Search { text: String, run_wide: bool },
    /// Asking whether to stop training.
    ConfirmStop,
    /// Asking whether to stop the run this explorer started or leave it in the background.
    ConfirmLeave,
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
            views: Views::default(),
            modal: None,
            help_max_scroll: Cell::new(0),
            maximized: false,
            quit: false,
            message: String::new(),
            live: None,
            following: true,
            phase: String::new(),
            paused: false,
            finished: None,
            left: None,
            list_hit: Cell::new(None),
            search: None,
        };
        app.goto(iteration)?;
        Ok(app)
    }

    /// Moves the replay cursor to `iteration` (clamped) and loads its trees.
    pub fn goto(&mut self, iteration: u64) -> Result<(), StoreError> {
        let last = self.snapshot.last_iteration();
        let it = iteration.clamp(last.min(1), last);
        if it != self.iteration || self.trees.is_empty() {
            self.trees = if it == 0 {
                Vec::new()
            } else {
                self.source.trees(&self.snapshot.run.name, it)?
            };
            self.iteration = it;
            self.views.tree.reset(self.trees.len());
            self.views.samples.reset(self.trees.len());
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
        self.snapshot = RunSnapshot::load(self.source.as_ref(), name)?;
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
            search: self.search.as_ref(),
        }
    }

    /// The views, mutable, beside the run they read.
    pub(crate) fn split(&mut self) -> (&mut Views, Ctx<'_>) {
        let ctx = Ctx {
            snapshot: &self.snapshot,
            iteration: self.iteration,
            trees: &self.trees,
            theme: &self.theme,
            maximized: self.maximized,
            list_hit: &self.list_hit,
            search: self.search.as_ref(),
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

    /// Whether the help popup is open.
    pub fn help_open(&self) -> bool {
        matches!(self.modal, Some(Modal::Help { .. }))
    }

    /// The first line of the help popup on screen (0 when it is closed).
    pub fn help_scroll(&self) -> usize {
        match self.modal {
            Some(Modal::Help { scroll }) => scroll,
            _ => 0,
        }
    }

    /// Confident-wrong paths of the iteration, surest first.
    pub fn wrong_paths(&self) -> Vec<WrongPath> {
        wrong_paths(&self.trees)
    }

    /// Holds the iteration on screen: new iterations of a live run no longer replace it,
    /// so the cursor stays on the problem and node it was moved to. `L` or `f` follows
    /// the newest again.
    pub(crate) fn hold_still(&mut self) {
        if self.following {
            self.following = false;
            if self.live.is_some() {
                self.message = format!(
                    "holding iteration {} (training goes on; L follows the newest)",
                    self.iteration
                );
            }
        }
    }

    /// Follows the newest iteration: it is shown now and whenever a new one is committed.
    pub(crate) fn follow(&mut self) -> Result<(), StoreError> {
        self.following = true;
        if self.live.is_some() {
            self.message = "following the newest iteration".into();
        }
        self.goto(u64::MAX)
    }

    /// Iterations committed after the one on screen.
    pub fn newer(&self) -> u64 {
        self.snapshot
            .last_iteration()
            .saturating_sub(self.iteration)
    }
}
