//! The first minutes of a fresh live run, before its first iteration: the warm start as
//! a phase of its own (a gauge with an ETA, its loss curve, and what it is), then the
//! start-of-run evaluation, instead of empty charts.
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::Line;
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, Gauge, GraphType, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::explorer::App;
use crate::app::live::LiveStatus;
use crate::engine::rl::interrupt::Phase;

/// Whether the dashboard shows the first minutes: a live run with no iteration yet.
pub fn shown(app: &App) -> bool {
    app.live
        .as_ref()
        .is_some_and(|l| l.status.last_iteration == 0 && l.status.finished.is_none())
}

/// "2m05s"; the remaining time of `done` of `total` units after `seconds`.
pub fn eta(done: u64, total: u64, seconds: f64) -> Option<String> {
    if done == 0 || done > total || !seconds.is_finite() {
        return None;
    }
    let left = seconds / done as f64 * (total - done) as f64;
    let s = left.round() as u64;
    Some(if s >= 60 {
        format!("{}m{:02}s", s / 60, s % 60)
    } else {
        format!("{s}s")
    })
}

fn what(s: &LiveStatus) -> String {
    if s.last_done.contains("cached warm start") {
        format!(
            "{}: the warm start was trained by an earlier run with the same settings and \
             read from the store's cache.",
            s.last_done
        )
    } else {
        "The warm start: supervised steps on legal but undirected step traces, so the tiny \
         model writes well-formed steps before RL begins. It is cached in the store under \
         its settings: the next run with the same settings starts from it at once."
            .into()
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let Some(s) = app.live.as_ref().map(|l| &l.status) else {
        return;
    };
    let text = what(s);
    // The explanation, wrapped to the box: as many lines as it needs.
    let inner = area.width.saturating_sub(2).max(1) as usize;
    let lines = text.chars().count().div_ceil(inner) as u16 + 1;
    let [about, gauge, curve] = Layout::vertical([
        Constraint::Length(lines + 2),
        Constraint::Length(3),
        Constraint::Min(3),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(text)
            .wrap(Wrap { trim: true })
            .style(app.theme.text)
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(" first minutes "),
            ),
        about,
    );
    let phase = if s.phase.is_empty() {
        "starting"
    } else {
        s.phase.as_str()
    };
    let ratio = if s.total == 0 {
        0.0
    } else {
        (s.done as f64 / s.total as f64).clamp(0.0, 1.0)
    };
    let eta = eta(s.done, s.total, s.phase_seconds)
        .map(|e| format!("  eta {e}"))
        .unwrap_or_default();
    let unit = if s.running() == Some(Phase::Evaluate) {
        "start-of-run evaluation, batch"
    } else {
        "step"
    };
    f.render_widget(
        Gauge::default()
            .block(
                Block::default()
                    .borders(Borders::ALL)
                    .title(format!(" {phase} ")),
            )
            .gauge_style(app.theme.recorded)
            .ratio(ratio)
            .label(format!("{unit} {}/{}  {}{eta}", s.done, s.total, s.note)),
        gauge,
    );
    let loss: Vec<(f64, f64)> = s
        .warm_losses
        .iter()
        .enumerate()
        .map(|(i, &l)| ((i + 1) as f64, l as f64))
        .collect();
    let x_max = loss.len().max(1) as f64;
    let y_max = loss.iter().map(|p| p.1).fold(0.1f64, f64::max);
    let title = match loss.last() {
        Some((_, l)) => format!(" warm start loss (now {l:.3}) "),
        None => " warm start loss ".into(),
    };
    f.render_widget(
        Chart::new(vec![Dataset::default()
            .name("loss")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(app.theme.recorded)
            .data(&loss)])
        .block(Block::default().borders(Borders::ALL).title(title))
        .x_axis(
            Axis::default()
                .bounds([0.0, x_max])
                .labels(vec![Line::from("0"), Line::from(format!("{x_max:.0}"))]),
        )
        .y_axis(
            Axis::default()
                .bounds([0.0, y_max])
                .labels(vec![Line::from("0"), Line::from(format!("{y_max:.2}"))]),
        ),
        curve,
    );
}

#[cfg(test)]
mod tests {
    use super::eta;

    #[test]
    fn eta_is_the_remaining_share_of_the_elapsed_time() {
        assert_eq!(eta(0, 10, 5.0), None);
        assert_eq!(eta(5, 10, 5.0).as_deref(), Some("5s"));
        assert_eq!(eta(100, 600, 25.0).as_deref(), Some("2m05s"));
        assert_eq!(eta(11, 10, 5.0), None);
    }
}
