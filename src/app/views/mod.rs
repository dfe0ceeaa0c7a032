//! Drawing: one function per view, all from the App's snapshot of the store.
mod compare;
mod dashboard;
mod problems;
mod tree;
mod wrong;

use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Tabs, Wrap};
use ratatui::Frame;

use super::explorer::{App, Screen};

pub fn draw(f: &mut Frame, app: &App) {
    let [header, body, footer] = Layout::vertical([
        Constraint::Length(2),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(f.area());
    draw_header(f, header, app);
    app.list_hit.set(None);
    match app.screen {
        Screen::Dashboard => dashboard::draw(f, body, app),
        Screen::Problems => problems::draw(f, body, app),
        Screen::Tree => tree::draw(f, body, app),
        Screen::Wrong => wrong::draw(f, body, app),
        Screen::Compare => compare::draw(f, body, app),
    }
    if let Some(cmd) = &app.command {
        f.render_widget(
            Paragraph::new(format!(":{cmd}")).style(app.theme.accent),
            footer,
        );
    } else {
        let hint = if !app.message.is_empty() {
            app.message.clone()
        } else if app.live.is_some() {
            "q quit  p pause  r retune  : command  ? help  1-5 views  [ ] iteration  f freeze"
                .to_string()
        } else {
            "q quit  ? help  1-5 views  [ ] iteration  Enter open  Esc back".to_string()
        };
        f.render_widget(Paragraph::new(hint).style(app.theme.muted), footer);
    }
    if app.help {
        draw_help(f, app);
    }
    if let Some(form) = &app.form {
        draw_form(f, app, form);
    }
    if app.confirm_stop {
        let area = f.area();
        let w = area.width.min(50);
        let popup = Rect::new(
            area.x + (area.width - w) / 2,
            area.y + area.height / 2 - 2,
            w,
            4,
        );
        f.render_widget(Clear, popup);
        f.render_widget(
            Paragraph::new(vec![
                Line::from("Stop training and quit?"),
                Line::from("y / Enter: stop    n / Esc: keep training"),
            ])
            .block(Block::default().borders(Borders::ALL).title(" stop ")),
            popup,
        );
    }
}

fn draw_header(f: &mut Frame, area: Rect, app: &App) {
    let [top, tabs] = Layout::vertical([Constraint::Length(1), Constraint::Length(1)]).areas(area);
    let r = &app.snapshot.run;
    let status = format!("{:?}", r.status).to_lowercase();
    let mode = if app.live.is_some() && app.following {
        "live"
    } else {
        "replay"
    };
    let mut spans = vec![
        Span::styled(" arbor ", app.theme.accent),
        Span::styled(
            format!("{} ({}, seed {}) ", r.name, r.method, r.seed),
            app.theme.text,
        ),
        Span::styled(
            format!(
                "{mode}: iteration {} of {}",
                app.iteration,
                app.snapshot.last_iteration()
            ),
            app.theme.muted,
        ),
    ];
    if app.live.is_some() {
        let paused = app.live.as_ref().is_some_and(|l| l.control.paused());
        if app.paused {
            spans.push(Span::styled("  PAUSED", app.theme.confident_wrong));
        } else if paused {
            spans.push(Span::styled(
                "  pausing at the next safe point",
                app.theme.confident_wrong,
            ));
        }
        spans.push(Span::styled(format!("  {}", app.phase), app.theme.muted));
    } else {
        spans.push(Span::styled(format!(" [{status}]"), app.theme.muted));
    }
    let line = Line::from(spans);
    f.render_widget(Paragraph::new(line), top);
    let titles: Vec<&str> = Screen::ALL.iter().map(|s| s.title()).collect();
    let sel = Screen::ALL
        .iter()
        .position(|s| *s == app.screen)
        .unwrap_or(0);
    f.render_widget(
        Tabs::new(titles)
            .select(sel)
            .highlight_style(app.theme.selected),
        tabs,
    );
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
    if let Some(fl) = form.fields.get(form.selected) {
        let s = fl.setting;
        lines.push(Line::styled(
            format!("{}: {}", s.path, s.about),
            app.theme.muted,
        ));
    }
    match &form.error {
        Some(e) => lines.push(Line::styled(format!("refused: {e}"), app.theme.wrong)),
        None => lines.push(Line::styled(
            "type a value · Up/Down move · Enter apply · Esc cancel",
            app.theme.muted,
        )),
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

fn draw_help(f: &mut Frame, app: &App) {
    let entries = app.help_lines();
    // As wide as the longest line (key column, text, borders), as the screen allows;
    // narrower screens wrap.
    let width = entries
        .iter()
        .map(|(_, v)| 24 + v.chars().count() as u16 + 2)
        .max()
        .unwrap_or(64)
        .max(40);
    let lines: Vec<Line> = entries
        .into_iter()
        .map(|(k, v)| {
            Line::from(vec![
                Span::styled(format!("{k:<24}"), app.theme.accent),
                Span::raw(v),
            ])
        })
        .collect();
    let popup = centered(f.area(), width, lines.len() as u16 + 2);
    f.render_widget(Clear, popup);
    f.render_widget(
        Paragraph::new(lines)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" keys ")),
        popup,
    );
}

/// Remembers where a bordered list was drawn (its items start `skip` rows below the top
/// edge: the border, and a table's header) so a mouse click can select a row.
fn record_hit(app: &App, area: Rect, skip: u16, offset: usize) {
    let inner = Rect::new(
        area.x + 1,
        area.y + 1,
        area.width.saturating_sub(2),
        area.height.saturating_sub(2),
    );
    app.list_hit.set(Some(super::explorer::ListHit {
        area: inner,
        top: area.y + skip,
        offset,
    }));
}

/// A `w` x `h` popup in the middle of `area`, shrunk to fit it.
fn centered(area: Rect, w: u16, h: u16) -> Rect {
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
