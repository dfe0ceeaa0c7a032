//! The explorer's views as components: each view is a type that owns its state (cursor,
//! filters, folds), answers its keys, draws itself and lists the keys it answers to. The
//! help popup and the footer are built from those lists (`app::help`), so they cannot
//! drift from what the keys do. Data of the run (snapshot, iteration, trees) comes in a
//! [`Ctx`]; reading the store is the App's.
pub mod compare;
pub mod dashboard;
mod first_minutes;
pub mod history;
pub mod list;
mod node;
pub mod problems;
pub mod samples;
pub mod search;
pub mod tree;
pub mod wrong;

use std::cell::Cell;

use crossterm::event::KeyEvent;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Tabs, Wrap};
use ratatui::Frame;

use super::explorer::{App, ListHit, Modal, Screen};
use super::snapshot::RunSnapshot;
use super::theme::Theme;
use crate::engine::rl::interrupt::Phase;
use crate::engine::rl::record::TreeRecord;

/// One entry of a view's key list: what the help popup says and the footer shows.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct KeyHelp {
    /// The keys as typed, e.g. "j k, Up Down".
    pub keys: &'static str,
    /// What they do, for the help popup.
    pub does: &'static str,
    /// A word or two for the footer, if the entry shows there.
    pub footer: Option<&'static str>,
    /// Only answered while a run trains in this process.
    pub live_only: bool,
}

impl KeyHelp {
    pub const fn new(keys: &'static str, does: &'static str) -> Self {
        Self {
            keys,
            does,
            footer: None,
            live_only: false,
        }
    }
    /// Shows the entry in the footer as "KEYS label".
    pub const fn footer(self, label: &'static str) -> Self {
        Self {
            footer: Some(label),
            ..self
        }
    }
    pub const fn live(self) -> Self {
        Self {
            live_only: true,
            ..self
        }
    }
    /// Whether the key does something now (live-only keys need a live run).
    pub fn active(&self, live: bool) -> bool {
        live || !self.live_only
    }
}

/// What a view shows besides its keys in the help: symbols, settings.
pub struct Legend {
    pub title: &'static str,
    /// (symbol or name, meaning).
    pub entries: Vec<(String, String)>,
}

/// What a view reads of the App: the run and the iteration on screen.
pub struct Ctx<'a> {
    pub snapshot: &'a RunSnapshot,
    /// The iteration every view shows.
    pub iteration: u64,
    /// That iteration's trees.
    pub trees: &'a [TreeRecord],
    pub theme: &'a Theme,
    /// The main pane fills the body.
    pub maximized: bool,
    /// Where the focused list was drawn, for mouse selection.
    pub list_hit: &'a Cell<Option<ListHit>>,
    /// The last text search, its matches highlighted.
    pub search: Option<&'a crate::app::search::Search>,
}

impl Ctx<'_> {
    /// The text searched for last, if any.
    pub fn query(&self) -> Option<&str> {
        self.search.map(|s| s.query.as_str())
    }

    /// How a search match is drawn: reversed and underlined, so it shows without colour.
    pub fn hit_style(&self) -> ratatui::style::Style {
        use ratatui::style::Modifier;
        self.theme
            .accent
            .add_modifier(Modifier::REVERSED | Modifier::UNDERLINED)
    }

    /// `text` padded to `width` columns, its search matches highlighted.
    pub fn text_spans(
        &self,
        text: String,
        width: usize,
        style: ratatui::style::Style,
    ) -> Vec<Span<'static>> {
        let pad = width.saturating_sub(Span::raw(text.as_str()).width());
        let mut spans = crate::app::search::highlight(text, self.query(), style, self.hit_style());
        spans.push(Span::styled(" ".repeat(pad), style));
        spans
    }
}

/// What a view's key asks the App to do.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Not this view's key: the App's fallback keys get it.
    Pass,
    /// Handled inside the view.
    Done,
    /// Handled; show this on the status line.
    Say(String),
    Show(Screen),
    /// Open every sample of `problem` (index into the iteration's trees).
    OpenSamples(usize),
    /// Open the history of `problem` (index into the iteration's trees) over the run.
    OpenHistory(usize),
    /// Open match `k` of the search in the tree view.
    GoToHit(usize),
    /// Go to `iteration` and open the tree (or the samples) of the problem with this id.
    OpenAt {
        iteration: u64,
        problem: String,
        samples: bool,
    },
    /// Open the tree of `problem` (index into the iteration's trees), at `node` if given.
    OpenTree {
        problem: usize,
        node: Option<u32>,
    },
    /// Replay another run of the store.
    OpenRun(String),
}

/// A view of the explorer.
pub trait View {
    /// The keys this view answers to, in the order the help lists them.
    fn keys(&self) -> &'static [KeyHelp];
    /// Symbols or settings the help explains for this view.
    fn legend(&self) -> Option<Legend> {
        None
    }
    fn on_key(&mut self, key: KeyEvent, ctx: &Ctx) -> Action;
    fn draw(&self, f: &mut Frame, area: Rect, ctx: &Ctx);
    /// The list cursor, for the mouse (None: the view has no list).
    fn cursor(&mut self) -> Option<&mut list::ListCursor> {
        None
    }
    /// Rows of the view's list.
    fn len(&self, _ctx: &Ctx) -> usize {
        0
    }
}

/// Every view of the explorer, each with its own state.
#[derive(Default)]
pub struct Views {
    pub dashboard: dashboard::DashboardView,
    pub problems: problems::ProblemsView,
    pub tree: tree::TreeView,
    pub wrong: wrong::WrongView,
    pub compare: compare::CompareView,
    pub samples: samples::SamplesView,
    pub history: history::HistoryView,
    pub search: search::SearchView,
}

impl Views {
    pub fn get(&self, s: Screen) -> &dyn View {
        match s {
            Screen::Dashboard => &self.dashboard,
            Screen::Problems => &self.problems,
            Screen::Tree => &self.tree,
            Screen::Wrong => &self.wrong,
            Screen::Compare => &self.compare,
            Screen::Samples => &self.samples,
            Screen::History => &self.history,
            Screen::Search => &self.search,
        }
    }
    pub fn get_mut(&mut self, s: Screen) -> &mut dyn View {
        match s {
            Screen::Dashboard => &mut self.dashboard,
            Screen::Problems => &mut self.problems,
            Screen::Tree => &mut self.tree,
            Screen::Wrong => &mut self.wrong,
            Screen::Compare => &mut self.compare,
            Screen::Samples => &mut self.samples,
            Screen::History => &mut self.history,
            Screen::Search => &mut self.search,
        }
    }
}

pub fn draw(f: &mut Frame, app: &App) {
    let area = f.area();
    let footer = app.footer_lines(area.width);
    let [header, body, footer_area] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(footer.len() as u16),
    ])
    .areas(area);
    draw_header(f, header, app);
    app.list_hit.set(None);
    let ctx = app.ctx();
    if app.screen == Screen::Dashboard && first_minutes::shown(app) {
        first_minutes::draw(f, body, app);
    } else {
        app.views.get(app.screen).draw(f, body, &ctx);
    }
    f.render_widget(Paragraph::new(footer), footer_area);
    match &app.modal {
        Some(Modal::Help { .. }) => app.draw_help(f),
        Some(Modal::Retune(form)) => draw_form(f, app, form),
        Some(Modal::ConfirmStop) => popup(
            f,
            " stop ",
            &[
                "Stop training at the next safe point?",
                "y / Enter: stop    n / Esc: keep training",
            ],
        ),
        Some(Modal::ConfirmLeave) => popup(
            f,
            " leave ",
            &[
                "This explorer started the run. On leaving:",
                "d: leave it training in the background",
                "s: stop training at the next safe point",
                "Esc: stay",
            ],
        ),
        // The command line is drawn in the footer.
        Some(Modal::Command(_)) | Some(Modal::Search { .. }) | None => {}
    }
}

/// A small framed question in the middle of the screen.
fn popup(f: &mut Frame, title: &str, lines: &[&str]) {
    let area = f.area();
    let w = area.width.min(50);
    let h = (lines.len() as u16 + 2).min(area.height);
    let rect = Rect::new(
        area.x + (area.width - w) / 2,
        area.y + area.height.saturating_sub(h) / 2,
        w,
        h,
    );
    f.render_widget(Clear, rect);
    f.render_widget(
        Paragraph::new(lines.iter().map(|l| Line::from(*l)).collect::<Vec<_>>())
            .wrap(Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(title.to_string()),
            ),
        rect,
    );
}

fn draw_header(f: &mut Frame, area: Rect, app: &App) {
    let [top, tabs] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    // The longest form that fits with a column to spare; never a word cut.
    let width = top.width.saturating_sub(1) as usize;
    let line = (0..HEADER_FORMS)
        .map(|level| header_line(app, level))
        .find(|l| l.width() <= width)
        .unwrap_or_else(|| drop_words(header_line(app, HEADER_FORMS - 1), width));
    f.render_widget(Paragraph::new(line), top);
    let titles: Vec<&str> = Screen::ALL.iter().map(|s| s.title()).collect();
    // A view opened from a tab's view shows under that tab.
    let sel = Screen::ALL
        .iter()
        .position(|s| *s == app.screen.tab())
        .unwrap_or(0);
    f.render_widget(
        Tabs::new(titles)
            .select(sel)
            .highlight_style(app.theme.selected),
        tabs,
    );
}

/// How many forms the header has, longest first.
const HEADER_FORMS: usize = 4;

/// The header line, shorter as `level` grows: 1 drops the method and seed, 2 shortens
/// the iteration, 3 drops the inference engine's line.
fn header_line(app: &App, level: usize) -> Line<'static> {
    let r = &app.snapshot.run;
    let status = format!("{:?}", r.status).to_lowercase();
    let (it, last) = (app.iteration, app.snapshot.last_iteration());
    let live = app.live.is_some();
    let name = if level >= 1 {
        format!("{} ", r.name)
    } else {
        format!("{} ({}, seed {}) ", r.name, r.method, r.seed)
    };
    let position = match (live, level >= 2) {
        (true, false) if last == 0 => "live: before the first iteration".to_string(),
        (true, true) if last == 0 => "live: before iteration 1".to_string(),
        (true, false) if !app.following => {
            format!("holding iteration {it} ({} newer)", app.newer())
        }
        (true, true) if !app.following => format!("holding it {it} (+{})", app.newer()),
        (true, false) => format!("live: iteration {it} of {last}"),
        (true, true) => format!("live: it {it}/{last}"),
        (false, false) => format!("replay: iteration {it} of {last}"),
        (false, true) => format!("replay: it {it}/{last}"),
    };
    // The search replay's moment, while the tree view replays one.
    let replay = app
        .views
        .tree
        .replay_step(app.iteration)
        .filter(|_| app.screen == Screen::Tree)
        .map(|(steps, k)| match level {
            0 | 1 => format!(
                ", search {} {}/{}",
                steps[k].unit.word(),
                k + 1,
                steps.len()
            ),
            _ => format!(", {} {}/{}", steps[k].unit.short(), k + 1, steps.len()),
        })
        .unwrap_or_default();
    let mut spans = vec![
        Span::styled(" arbor ", app.theme.accent),
        Span::styled(name, app.theme.text),
        Span::styled(position + &replay, app.theme.muted),
    ];
    if let Some(l) = &app.live {
        let checking = Some(l.status.checking.as_str()).filter(|p| !p.is_empty());
        if app.paused {
            let held = checking
                .filter(|p| Phase::from_label(p) != Some(Phase::Train))
                .map(|p| format!(" in the {p}"))
                .unwrap_or_default();
            spans.push(Span::styled(
                format!("  PAUSED{held}"),
                app.theme.confident_wrong,
            ));
        } else if l.status.pause_requested {
            let during = checking
                .map(|p| format!(" (in the {p})"))
                .unwrap_or_default();
            spans.push(Span::styled(
                format!("  pausing at the next safe point{during}"),
                app.theme.confident_wrong,
            ));
        }
        spans.push(Span::styled(format!("  {}", app.phase), app.theme.muted));
    } else {
        spans.push(Span::styled(format!(" [{status}]"), app.theme.muted));
    }
    // An inference engine samples: which, the weight version it served last, and whether
    // its log-probabilities still agree with the trainer's.
    let generator = app
        .snapshot
        .metrics(app.iteration)
        .and_then(|m| m.generator.as_ref());
    if let Some(g) = generator.filter(|_| level < 3) {
        let agree = g
            .mean_logprob_abs_diff
            .filter(|_| level < 1)
            .map(|d| format!(", |dlogp| {d:.1e}"))
            .unwrap_or_default();
        let stale = match g.stale_versions {
            0 => String::new(),
            k => format!(" ({k} behind)"),
        };
        spans.push(Span::styled(
            format!("  gen {} v{}{stale}{agree}", g.engine, g.weight_version),
            app.theme.muted,
        ));
    }
    Line::from(spans)
}

/// `line` with whole words dropped from its end until it is at most `width` wide.
pub(crate) fn drop_words(mut line: Line<'static>, width: usize) -> Line<'static> {
    while line.width() > width {
        let Some(last) = line.spans.last_mut() else {
            break;
        };
        let text = last.content.trim_end().to_string();
        match text.rfind(' ') {
            Some(i) => last.content = text[..i].to_string().into(),
            None => {
                line.spans.pop();
            }
        }
    }
    line
}

/// The first of `forms` (longest first) at most `width` columns wide; else the last with
/// whole words dropped from its end.
pub(crate) fn fit_words(forms: &[String], width: usize) -> String {
    forms
        .iter()
        .find(|t| Span::raw(t.as_str()).width() <= width)
        .cloned()
        .unwrap_or_else(|| {
            let last = forms.last().cloned().unwrap_or_default();
            let l = drop_words(Line::from(last), width);
            l.spans.iter().map(|s| s.content.as_ref()).collect()
        })
}

fn draw_form(f: &mut Frame, app: &App, form: &crate::app::form::RetuneForm) {
    let mut lines: Vec<Line> = form
        .fields
        .iter()
        .enumerate()
        .map(|(i, fl)| {
            let sel = i == form.selected;
            let changed = fl.value.trim() != fl.in_force;
            let style = if sel {
                app.theme.selected
            } else {
                app.theme.text
            };
            Line::from(vec![
                Span::styled(if sel { "> " } else { "  " }, app.theme.accent),
                Span::styled(format!("{:<12}", fl.setting.name), app.theme.accent),
                Span::styled(format!("{:<14}", fl.value), style),
                Span::styled(
                    if changed {
                        format!(" was {}", fl.in_force)
                    } else {
                        String::new()
                    },
                    app.theme.muted,
                ),
            ])
        })
        .collect();
    lines.push(Line::from(""));
    // The notes below the fields wrap to the popup, so its height counts every line.
    let inner = f.area().width.min(60).saturating_sub(2) as usize;
    let mut note = |text: &str, style| {
        for l in crate::app::help::wrap(text, inner) {
            lines.push(Line::styled(l, style));
        }
    };
    if let Some(fl) = form.fields.get(form.selected) {
        let s = fl.setting;
        note(&format!("{}: {}", s.path, s.about), app.theme.muted);
    }
    match &form.error {
        Some(e) => note(&format!("refused: {e}"), app.theme.wrong),
        None => {
            let hint: Vec<String> = crate::app::form::KEYS
                .iter()
                .filter_map(|k| k.footer.map(|l| format!("{} {l}", k.keys)))
                .collect();
            note(&hint.join(" · "), app.theme.muted)
        }
    }
    let popup = centered(f.area(), 60, lines.len() as u16 + 2);
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(ratatui::widgets::Wrap { trim: false })
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" retune (applies at the next safe point) "),
            ),
        popup,
    );
}

/// Remembers where a bordered list was drawn (its items start `skip` rows below the top
/// edge: the border, and a table's header) so a mouse click can select a row.
fn record_hit(ctx: &Ctx, area: Rect, skip: u16, offset: usize) {
    let inner = Rect::new(
        area.x + 1,
        area.y + 1,
        area.width.saturating_sub(2),
        area.height.saturating_sub(2),
    );
    ctx.list_hit.set(Some(ListHit {
        area: inner,
        top: area.y + skip,
        offset,
    }));
}

/// A `w` x `h` popup in the middle of `area`, shrunk to fit it.
pub(crate) fn centered(area: Rect, w: u16, h: u16) -> Rect {
    let (w, h) = (w.min(area.width), h.min(area.height));
    Rect::new(
        area.x + (area.width - w) / 2,
        area.y + (area.height - h) / 2,
        w,
        h,
    )
}

/// `x` formatted with 3 decimals, or a dash.
pub(crate) fn num(x: Option<f64>) -> String {
    x.map(|v| format!("{v:.3}")).unwrap_or_else(|| "-".into())
}
