//! Confident-wrong inspector: across the iteration's problems, the wrong paths the model
//! was surest of, lowest path entropy first; Enter opens one in its tree.
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::Rect;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState};
use ratatui::Frame;

use super::list::ListCursor;
use super::{Action, Ctx, KeyHelp, View};
use crate::app::snapshot::{path, path_entropy};
use crate::engine::rl::record::TreeRecord;

/// One confident-wrong path: problem index, terminal node id, its path entropy.
#[derive(Clone, Debug, PartialEq)]
pub struct WrongPath {
    pub problem: usize,
    pub node: u32,
    pub entropy: f64,
}

/// Confident-wrong paths of the iteration, surest first.
pub fn wrong_paths(trees: &[TreeRecord]) -> Vec<WrongPath> {
    let mut out: Vec<WrongPath> = Vec::new();
    for (i, t) in trees.iter().enumerate() {
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

/// The list of confident-wrong paths and its cursor.
#[derive(Default)]
pub struct WrongView {
    pub list: ListCursor,
}

const KEYS: &[KeyHelp] = &[
    ListCursor::KEYS,
    KeyHelp::new("Enter", "open the path in its tree, at its wrong terminal").footer("open"),
];

impl View for WrongView {
    fn keys(&self) -> &'static [KeyHelp] {
        KEYS
    }

    fn on_key(&mut self, key: KeyEvent, ctx: &Ctx) -> Action {
        let paths = wrong_paths(ctx.trees);
        if self.list.on_key(key, paths.len()) {
            return Action::Done;
        }
        match key.code {
            KeyCode::Enter => match paths.get(self.list.sel) {
                Some(w) => Action::OpenTree {
                    problem: w.problem,
                    node: Some(w.node),
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
        wrong_paths(ctx.trees).len()
    }
}

fn draw(f: &mut Frame, area: Rect, view: &WrongView, ctx: &Ctx) {
    let paths = wrong_paths(ctx.trees);
    let items: Vec<ListItem> = paths
        .iter()
        .map(|w| {
            let t = &ctx.trees[w.problem];
            let steps: Vec<String> = path(t, w.node)
                .into_iter()
                .skip(1)
                .filter_map(|i| t.node(i))
                .map(|n| n.text.trim_end().replace('\n', " "))
                .collect();
            let reason = t
                .nodes
                .iter()
                .find(|n| n.id == w.node)
                .and_then(|n| n.reason.clone())
                .unwrap_or_default();
            ListItem::new(Line::from(vec![
                Span::styled(format!("! H={:.3} ", w.entropy), ctx.theme.confident_wrong),
                Span::styled(
                    format!("{} {} ", t.problem, t.prompt.trim_end()),
                    ctx.theme.text,
                ),
                Span::styled(steps.join(" | "), ctx.theme.muted),
                Span::styled(format!("  ({reason})"), ctx.theme.wrong),
            ]))
        })
        .collect();
    let title = format!(
        " confident-wrong paths of iteration {} ({}) ",
        ctx.iteration,
        paths.len()
    );
    let list = List::new(items)
        .block(Block::default().borders(Borders::ALL).title(title))
        .highlight_style(ctx.theme.selected)
        .highlight_symbol(">");
    let mut state = ListState::default().with_selected(Some(view.list.at(paths.len())));
    f.render_stateful_widget(list, area, &mut state);
    super::record_hit(ctx, area, 1, state.offset());
}
