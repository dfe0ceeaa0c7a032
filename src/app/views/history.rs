//! One problem's life over the run: every iteration it was trained in, with its success
//! rate, its tree's size and best q, and when it was first solved; Enter goes to that
//! iteration's tree of it, `o` to its samples there. The App reads the rows from the
//! store when the view opens ([`HistoryRow::of`] per tree); the view only shows them.
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, Paragraph, Row, Table, TableState, Wrap};
use ratatui::Frame;

use super::list::ListCursor;
use super::{Action, Ctx, KeyHelp, View};
use crate::app::snapshot::success;
use crate::engine::rl::record::TreeRecord;

/// The problem in one iteration that trained it.
#[derive(Clone, Debug, PartialEq)]
pub struct HistoryRow {
    pub iteration: u64,
    /// Fraction of its recorded samples that were right.
    pub success: f64,
    pub samples: usize,
    pub nodes: usize,
    /// The highest q of any node below the root.
    pub best_q: Option<f32>,
    pub solved: bool,
}

impl HistoryRow {
    pub fn of(iteration: u64, t: &TreeRecord) -> Self {
        HistoryRow {
            iteration,
            success: success(t),
            samples: t.nodes.iter().filter(|n| n.recorded).count(),
            nodes: t.nodes.len(),
            best_q: t
                .nodes
                .iter()
                .filter(|n| n.id != 0)
                .map(|n| n.q)
                .max_by(f32::total_cmp),
            solved: t.solved(),
        }
    }
}

/// The history of one problem.
#[derive(Default)]
pub struct HistoryView {
    /// The problem's id and prompt.
    pub problem: String,
    pub prompt: String,
    pub rows: Vec<HistoryRow>,
    pub list: ListCursor,
}

const KEYS: &[KeyHelp] = &[
    ListCursor::KEYS,
    KeyHelp::new("Enter", "go to that iteration's tree of the problem").footer("tree"),
    KeyHelp::new("o", "go to that iteration's samples of the problem").footer("samples"),
];

/// The key that opens a problem's history, in the views that show a problem.
pub const OPEN: KeyHelp = KeyHelp::new(
    "H",
    "the problem's history over the run: every iteration it was trained in",
)
.footer("history");

impl HistoryView {
    pub fn new(problem: String, prompt: String, rows: Vec<HistoryRow>) -> Self {
        // The cursor starts on the newest iteration.
        let mut list = ListCursor::default();
        list.sel = rows.len().saturating_sub(1);
        HistoryView {
            problem,
            prompt,
            rows,
            list,
        }
    }

    /// The first iteration in which a recorded sample was right.
    pub fn first_solved(&self) -> Option<u64> {
        self.rows.iter().find(|r| r.solved).map(|r| r.iteration)
    }

    fn selected(&self) -> Option<u64> {
        self.rows
            .get(self.list.at(self.rows.len()))
            .map(|r| r.iteration)
    }
}

impl View for HistoryView {
    fn keys(&self) -> &'static [KeyHelp] {
        KEYS
    }

    fn on_key(&mut self, key: KeyEvent, _ctx: &Ctx) -> Action {
        if self.list.on_key(key, self.rows.len()) {
            return Action::Done;
        }
        let samples = match key.code {
            KeyCode::Enter => false,
            KeyCode::Char('o') => true,
            _ => return Action::Pass,
        };
        match self.selected() {
            Some(iteration) => Action::OpenAt {
                iteration,
                problem: self.problem.clone(),
                samples,
            },
            None => Action::Done,
        }
    }

    fn draw(&self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        draw(f, area, self, ctx)
    }

    fn cursor(&mut self) -> Option<&mut ListCursor> {
        Some(&mut self.list)
    }

    fn len(&self, _ctx: &Ctx) -> usize {
        self.rows.len()
    }
}

fn draw(f: &mut Frame, area: Rect, view: &HistoryView, ctx: &Ctx) {
    let [summary_area, table_area] =
        Layout::vertical([Constraint::Length(4), Constraint::Min(3)]).areas(area);
    let trained = view.rows.len();
    let solved_in = view.rows.iter().filter(|r| r.solved).count();
    let first = match view.first_solved() {
        Some(i) => format!("first solved at iteration {i}"),
        None => "never solved".to_string(),
    };
    let mean = if trained == 0 {
        0.0
    } else {
        view.rows.iter().map(|r| r.success).sum::<f64>() / trained as f64
    };
    let summary = vec![
        Line::styled(
            format!(
                "trained in {trained} of {} iterations, solved in {solved_in}; {first}",
                ctx.snapshot.last_iteration()
            ),
            ctx.theme.accent,
        ),
        Line::from(format!("mean success {mean:.2}")),
    ];
    let title = super::fit_words(
        &[
            format!(" history of {} {} ", view.problem, view.prompt.trim_end()),
            format!(" history of {} ", view.problem),
        ],
        summary_area.width.saturating_sub(3) as usize,
    );
    f.render_widget(
        Paragraph::new(summary)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(title)),
        summary_area,
    );
    let first = view.first_solved();
    let rows: Vec<Row> = view
        .rows
        .iter()
        .map(|r| {
            let mark = match (r.solved, Some(r.iteration) == first) {
                (true, true) => "✓ first",
                (true, false) => "✓",
                (false, _) => "✗",
            };
            let style = if r.solved {
                ctx.theme.correct
            } else {
                ctx.theme.wrong
            };
            let here = if r.iteration == ctx.iteration {
                " ◀"
            } else {
                ""
            };
            Row::new(vec![
                format!("{}{here}", r.iteration),
                mark.to_string(),
                format!("{:.2}", r.success),
                r.samples.to_string(),
                r.nodes.to_string(),
                r.best_q.map_or("-".into(), |q| format!("{q:+.2}")),
            ])
            .style(style)
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Length(11),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(8),
            Constraint::Length(6),
            Constraint::Length(7),
        ],
    )
    .header(
        Row::new(vec![
            "iteration",
            "solved",
            "success",
            "samples",
            "nodes",
            "best q",
        ])
        .style(ctx.theme.accent),
    )
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(format!(" iterations that trained it: {trained} ")),
    )
    .row_highlight_style(ctx.theme.selected)
    .highlight_symbol("> ");
    let mut state = TableState::default().with_selected(Some(view.list.at(view.rows.len())));
    f.render_stateful_widget(table, table_area, &mut state);
    super::record_hit(ctx, table_area, 2, state.offset());
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyCode;

    use crate::app::explorer::Screen;
    use crate::app::test_app::{app_with, key, screen};
    use crate::engine::rl::record::{NodeRecord, TreeRecord};

    /// A group of `problem` with one sample per entry of `right`.
    fn group(problem: &str, right: &[bool]) -> TreeRecord {
        let mut t = TreeRecord::direct(problem, "2 8:10\n");
        for (i, &r) in right.iter().enumerate() {
            t.nodes.push(NodeRecord {
                text: if r { "2+8=10\nans 10" } else { "ans 16" }.into(),
                q: if r { 1.0 } else { -1.0 },
                n: 1,
                terminal_value: Some(if r { 1.0 } else { -1.0 }),
                correct: Some(r),
                recorded: true,
                ..NodeRecord::blank(i as u32 + 1, Some(0), 1)
            });
        }
        t
    }

    /// Issue 27 item 5: H on a problem lists the iterations that trained it with its
    /// success, tree size and best q, says when it was first solved, and Enter / o go to
    /// that iteration's tree / samples of it; from the tree and the samples views too.
    #[test]
    fn a_problems_history_lists_its_iterations_and_jumps_to_them() {
        let (_dir, mut app) = app_with(vec![
            vec![group("p1", &[false, false]), group("p2", &[true])],
            vec![group("p2", &[false])],
            vec![
                group("p2", &[true, true]),
                group("p1", &[true, false, false, true]),
            ],
        ]);
        assert_eq!(app.iteration, 3);
        app.screen = Screen::Problems;
        key(&mut app, KeyCode::Char('j'));
        key(&mut app, KeyCode::Char('H'));
        assert_eq!(app.screen, Screen::History);
        for (w, h) in [(200, 60), (80, 24)] {
            let s = screen(&app, w, h);
            assert!(s.contains("history of p1"), "{s}");
            assert!(
                s.contains("trained in 2 of 3 iterations, solved in 1; first solved at"),
                "{s}"
            );
            let rows: Vec<&str> = s
                .lines()
                .filter(|l| l.contains('✓') || l.contains('✗'))
                .collect();
            assert_eq!(rows.len(), 2, "{s}");
            assert!(rows[0].contains("1 ") && rows[0].contains("✗") && rows[0].contains("0.00"));
            assert!(
                rows[1].contains("✓ first") && rows[1].contains("0.50"),
                "{s}"
            );
            assert!(rows[1].contains(" 5 ") && rows[1].contains("+1.00"), "{s}");
        }
        // Enter on iteration 1 goes there and opens p1's tree; o its samples.
        key(&mut app, KeyCode::Char('k'));
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.iteration, 1);
        assert_eq!(app.screen, Screen::Tree);
        assert_eq!(app.tree().unwrap().problem, "p1");
        assert!(!app.following);
        // From the tree view, H again; then o on iteration 3 opens the samples there.
        key(&mut app, KeyCode::Char('H'));
        assert_eq!(app.screen, Screen::History);
        key(&mut app, KeyCode::Char('G'));
        key(&mut app, KeyCode::Char('o'));
        assert_eq!((app.iteration, app.screen), (3, Screen::Samples));
        let s = screen(&app, 80, 24);
        assert!(s.contains("4 of 4"), "{s}");
        key(&mut app, KeyCode::Char('H'));
        assert_eq!(app.views.history.rows.len(), 2);
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.screen, Screen::Problems);
    }
}
