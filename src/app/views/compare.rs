//! Compare: every run of the store side by side, held-out pass@1 against the generated
//! tokens spent to reach it (the compute-matched question).
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Row, Table, TableState};
use ratatui::Frame;

use super::list::ListCursor;
use super::{Action, Ctx, KeyHelp, View};
use crate::app::snapshot::RunSnapshot;

const PALETTE: [Color; 6] = [
    Color::Cyan,
    Color::Yellow,
    Color::Green,
    Color::Magenta,
    Color::Red,
    Color::Blue,
];

/// The runs compared (loaded by the App when the view opens) and the cursor.
#[derive(Default)]
pub struct CompareView {
    pub runs: Vec<RunSnapshot>,
    pub list: ListCursor,
}

const KEYS: &[KeyHelp] = &[
    ListCursor::KEYS,
    KeyHelp::new("Enter", "open the run (replay)").footer("open run"),
];

impl View for CompareView {
    fn keys(&self) -> &'static [KeyHelp] {
        KEYS
    }

    fn on_key(&mut self, key: KeyEvent, _ctx: &Ctx) -> Action {
        if self.list.on_key(key, self.runs.len()) {
            return Action::Done;
        }
        match key.code {
            KeyCode::Enter => match self.runs.get(self.list.sel) {
                Some(r) => Action::OpenRun(r.run.name.clone()),
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

    fn len(&self, _ctx: &Ctx) -> usize {
        self.runs.len()
    }
}

fn draw(f: &mut Frame, area: Rect, view: &CompareView, ctx: &Ctx) {
    let [table_area, chart_area] =
        Layout::vertical([Constraint::Percentage(45), Constraint::Percentage(55)]).areas(area);
    let rows: Vec<Row> = view
        .runs
        .iter()
        .map(|s| {
            let evals: Vec<_> = s
                .iterations
                .iter()
                .filter_map(|m| m.eval.as_ref())
                .collect();
            let start = s
                .run
                .summary
                .as_ref()
                .and_then(|v| v["eval_start"]["pass@1"].as_f64());
            let end = evals.last().map(|e| e.pass1);
            Row::new(vec![
                s.run.name.clone(),
                s.run.method.clone(),
                s.run.seed.to_string(),
                s.last_iteration().to_string(),
                s.iterations
                    .last()
                    .map_or(0, |m| m.cumulative_generated_tokens)
                    .to_string(),
                super::num(start),
                super::num(end),
                format!("{:?}", s.run.status).to_lowercase(),
            ])
        })
        .collect();
    let table = Table::new(
        rows,
        [
            Constraint::Min(14),
            Constraint::Length(10),
            Constraint::Length(5),
            Constraint::Length(6),
            Constraint::Length(10),
            Constraint::Length(7),
            Constraint::Length(7),
            Constraint::Length(9),
        ],
    )
    .header(
        Row::new(vec![
            "run", "method", "seed", "iters", "tokens", "p@1 0", "p@1 end", "status",
        ])
        .style(ctx.theme.accent),
    )
    .block(
        Block::default()
            .borders(Borders::ALL)
            .title(match &ctx.snapshot.run.comparison {
                Some(c) => format!(" comparison {c}: {} runs ", view.runs.len()),
                None => format!(" {} runs ", view.runs.len()),
            }),
    )
    .row_highlight_style(ctx.theme.selected)
    .highlight_symbol("> ");
    let mut state = TableState::default().with_selected(Some(view.list.at(view.runs.len())));
    f.render_stateful_widget(table, table_area, &mut state);
    super::record_hit(ctx, table_area, 2, state.offset());

    let series: Vec<Vec<(f64, f64)>> = view
        .runs
        .iter()
        .map(|s| {
            s.iterations
                .iter()
                .filter_map(|m| {
                    m.eval
                        .as_ref()
                        .map(|e| (m.cumulative_generated_tokens as f64, e.pass1))
                })
                .collect()
        })
        .collect();
    let x_max = series.iter().flatten().map(|p| p.0).fold(1.0, f64::max);
    let y_max = series
        .iter()
        .flatten()
        .map(|p| p.1)
        .fold(0.05, f64::max)
        .min(1.0);
    let datasets: Vec<Dataset> = view
        .runs
        .iter()
        .zip(&series)
        .enumerate()
        .map(|(i, (s, d))| {
            let style = if ctx.theme.name == "mono" {
                Style::default()
            } else {
                Style::default().fg(PALETTE[i % PALETTE.len()])
            };
            Dataset::default()
                .name(s.run.name.clone())
                .marker(Marker::Braille)
                .graph_type(GraphType::Line)
                .style(style)
                .data(d)
        })
        .collect();
    let chart = Chart::new(datasets)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" held-out pass@1 vs generated tokens "),
        )
        .x_axis(
            Axis::default()
                .bounds([0.0, x_max])
                .labels(vec![Line::from("0"), Line::from(format!("{x_max:.0}"))]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, y_max])
                .labels(vec![Line::from("0"), Line::from(format!("{y_max:.2}"))]),
        );
    f.render_widget(chart, chart_area);
}
