//! Problems of the iteration under the cursor: status, success fraction, tree size.
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Rect};
use ratatui::widgets::{Block, Borders, Row, Table, TableState};
use ratatui::Frame;

use super::list::ListCursor;
use super::{Action, Ctx, KeyHelp, View};
use crate::app::filters::{Filter, SortBy};
use crate::app::snapshot::{status, success, ProblemStatus};
use crate::engine::rl::record::TreeRecord;

/// The problems list: its cursor, filter and order.
#[derive(Default)]
pub struct ProblemsView {
    pub list: ListCursor,
    pub filter: Filter,
    pub sort: SortBy,
}

const KEYS: &[KeyHelp] = &[
    ListCursor::KEYS,
    KeyHelp::new("F", "cycle filter: all, solved, wrong only, cached").footer("filter"),
    KeyHelp::new("s", "cycle sort: batch order, success, tree size").footer("sort"),
    KeyHelp::new("Enter", "open the problem's tree").footer("tree"),
    KeyHelp::new(
        "o",
        "open every sample of the problem (a group's completions or a tree's recorded \
         paths) with the ground truth",
    )
    .footer("samples"),
    super::history::OPEN,
];

impl ProblemsView {
    /// Problems of the iteration that pass the filter, in the chosen order (indices into
    /// `trees`).
    pub fn listed(&self, trees: &[TreeRecord]) -> Vec<usize> {
        let mut v: Vec<usize> = (0..trees.len())
            .filter(|&i| self.filter.keeps(status(&trees[i])))
            .collect();
        match self.sort {
            SortBy::Order => {}
            SortBy::Success => {
                v.sort_by(|&a, &b| success(&trees[a]).total_cmp(&success(&trees[b])))
            }
            SortBy::Nodes => v.sort_by_key(|&i| std::cmp::Reverse(trees[i].nodes.len())),
        }
        v
    }
}

impl View for ProblemsView {
    fn keys(&self) -> &'static [KeyHelp] {
        KEYS
    }

    fn on_key(&mut self, key: KeyEvent, ctx: &Ctx) -> Action {
        let listed = self.listed(ctx.trees);
        if self.list.on_key(key, listed.len()) {
            return Action::Done;
        }
        match key.code {
            KeyCode::Char('F') => {
                self.filter = self.filter.next();
                self.list.sel = 0;
                Action::Done
            }
            KeyCode::Char('s') => {
                self.sort = self.sort.next();
                self.list.sel = 0;
                Action::Say(format!("sorted by {}", self.sort.label()))
            }
            KeyCode::Char('o') => match listed.get(self.list.at(listed.len())) {
                Some(&problem) => Action::OpenSamples(problem),
                None => Action::Done,
            },
            KeyCode::Char('H') => match listed.get(self.list.at(listed.len())) {
                Some(&problem) => Action::OpenHistory(problem),
                None => Action::Done,
            },
            KeyCode::Enter => match listed.get(self.list.sel) {
                Some(&problem) => Action::OpenTree {
                    problem,
                    node: None,
                },
                None => Action::Done,
            },
            _ => Action::Pass,
        }
    }

    fn draw(&self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        draw(f, area, self, ctx)
    }

    fn cursor(&mut self) -> Option<&mut ListCursor> {
        Some(&mut self.list)
    }

    fn len(&self, ctx: &Ctx) -> usize {
        self.listed(ctx.trees).len()
    }
}

fn draw(f: &mut Frame, area: Rect, view: &ProblemsView, ctx: &Ctx) {
    let listed = view.listed(ctx.trees);
    let rows: Vec<Row> = listed
        .iter()
        .map(|&i| {
            let t = &ctx.trees[i];
            let st = status(t);
            let mark = match st {
                ProblemStatus::Solved => "✓",
                ProblemStatus::ConfidentWrongOnly => "!",
                ProblemStatus::Cached => "c",
            };
            let style = match st {
                ProblemStatus::Solved => ctx.theme.correct,
                ProblemStatus::ConfidentWrongOnly => ctx.theme.confident_wrong,
                ProblemStatus::Cached => ctx.theme.recorded,
            };
            Row::new(vec![
                format!("{mark} {}", st.label()),
                t.problem.clone(),
                t.prompt.trim_end().to_string(),
                format!("{:.2}", success(t)),
                t.nodes.len().to_string(),
            ])
            .style(style)
        })
        .collect();
    let title = format!(
        " problems of iteration {} ({} of {}, filter: {}, sort: {}) ",
        ctx.iteration,
        listed.len(),
        ctx.trees.len(),
        view.filter.label(),
        view.sort.label()
    );
    let table = Table::new(
        rows,
        [
            Constraint::Length(13),
            Constraint::Length(13),
            Constraint::Min(12),
            Constraint::Length(7),
            Constraint::Length(6),
        ],
    )
    .header(Row::new(vec!["status", "id", "prompt", "success", "nodes"]).style(ctx.theme.accent))
    .block(Block::default().borders(Borders::ALL).title(title))
    .row_highlight_style(ctx.theme.selected)
    .highlight_symbol("> ");
    let mut state = TableState::default().with_selected(Some(view.list.at(listed.len())));
    f.render_stateful_widget(table, area, &mut state);
    super::record_hit(ctx, area, 2, state.offset());
}
