//! The matches of a run-wide text search: which iterations hold the text (a step or an
//! answer), and every node that does, its match highlighted; Enter opens one in the tree.
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::Line;
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::list::ListCursor;
use super::{Action, Ctx, KeyHelp, View};
use crate::app::search::highlight;

/// The results list's cursor; the matches are the App's search.
#[derive(Default)]
pub struct SearchView {
    pub list: ListCursor,
}

const KEYS: &[KeyHelp] = &[
    ListCursor::KEYS,
    KeyHelp::new("Enter", "open the match in its iteration's tree").footer("open"),
];

impl View for SearchView {
    fn keys(&self) -> &'static [KeyHelp] {
        KEYS
    }

    fn on_key(&mut self, key: KeyEvent, ctx: &Ctx) -> Action {
        let len = self.len(ctx);
        if self.list.on_key(key, len) {
            return Action::Done;
        }
        match key.code {
            KeyCode::Enter if len > 0 => Action::GoToHit(self.list.at(len)),
            KeyCode::Enter => Action::Done,
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
        ctx.search.map_or(0, |s| s.hits.len())
    }
}

fn draw(f: &mut Frame, area: Rect, view: &SearchView, ctx: &Ctx) {
    let Some(s) = ctx.search else {
        f.render_widget(
            Paragraph::new("no search yet: / then Tab searches the whole run")
                .block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    let iterations = s.iterations();
    let [summary_area, list_area] =
        Layout::vertical([Constraint::Length(4), Constraint::Min(3)]).areas(area);
    let scope = if s.run_wide {
        "the run"
    } else {
        "one iteration"
    };
    let listing: Vec<String> = iterations
        .iter()
        .map(|(it, n)| format!("{it} ({n})"))
        .collect();
    let summary = vec![
        Line::styled(
            format!(
                "{} matches in {} of {} iterations of {scope}",
                s.hits.len(),
                iterations.len(),
                ctx.snapshot.last_iteration()
            ),
            ctx.theme.accent,
        ),
        Line::from(format!("iterations (matches): {}", listing.join(", "))),
    ];
    f.render_widget(
        Paragraph::new(summary).wrap(Wrap { trim: false }).block(
            Block::default()
                .borders(Borders::ALL)
                .title(format!(" search {:?} ", s.query)),
        ),
        summary_area,
    );
    let row_width = list_area.width.saturating_sub(3) as usize;
    let items: Vec<ListItem> = s
        .hits
        .iter()
        .map(|h| {
            let mut spans = vec![ratatui::text::Span::styled(
                format!("it {:<4} {} node {:<4} ", h.iteration, h.problem, h.node),
                ctx.theme.muted,
            )];
            spans.extend(highlight(
                h.text.replace('\n', "⏎"),
                Some(&s.query),
                ctx.theme.text,
                ctx.theme.selected,
            ));
            ListItem::new(super::drop_words(Line::from(spans), row_width))
        })
        .collect();
    let sel = view.list.at(s.hits.len());
    let mut state = ListState::default().with_selected(Some(sel));
    f.render_stateful_widget(
        List::new(items)
            .block(Block::default().borders(Borders::ALL).title(" matches "))
            .highlight_style(ctx.theme.accent)
            .highlight_symbol(">"),
        list_area,
        &mut state,
    );
    super::record_hit(ctx, list_area, 1, state.offset());
}
