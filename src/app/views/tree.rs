//! The tree of one problem: every node with its step, q, N, Q, entropy and frontier score
//! (search distillation's trees: prior P, value V and the distilled path as well);
//! correct, recorded and confident-wrong nodes set apart by symbol as well as colour; and a
//! detail pane with the selected node's full context and the verifier's reason.
use crate::engine::task::StepKind;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use crate::app::explorer::App;
use crate::app::snapshot::{children, path, path_entropy};
use crate::engine::search::record::NodeRecord;

/// The marker of a node: ✓ correct terminal, ✗ wrong terminal, ! on the confident-wrong
/// path, ● recorded, ○ open.
pub fn marker(n: &NodeRecord) -> &'static str {
    match (n.correct, n.confident_wrong) {
        (Some(true), _) => "✓",
        (_, true) => "!",
        (Some(false), _) => "✗",
        (None, _) if n.id == 0 => "◆",
        (None, _) => "○",
    }
}

pub fn draw(f: &mut Frame, area: Rect, app: &App) {
    let Some(t) = app.tree() else {
        f.render_widget(
            Paragraph::new("no tree at this iteration")
                .block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    let (list_area, detail_area) = if app.maximized || area.width < 100 && area.height >= 20 {
        if app.maximized {
            (area, None)
        } else {
            let [a, b] = Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)])
                .areas(area);
            (a, Some(b))
        }
    } else {
        let [a, b] = Layout::horizontal([Constraint::Percentage(58), Constraint::Percentage(42)])
            .areas(area);
        (a, Some(b))
    };
    let kids = children(t);
    let rows = app.rows();
    let replayed = app.replay_step();
    // q and N as the view shows them: stored, or at the replayed expansion.
    let stats = |n: &NodeRecord| -> (f64, u32) {
        match &replayed {
            Some((steps, k)) => steps[*k].state[n.id as usize].unwrap_or((0.0, 0)),
            None => (n.q as f64, n.n),
        }
    };
    // Only the rows that fit are built, so trees of thousands of nodes stay responsive.
    let height = list_area.height.saturating_sub(2).max(1) as usize;
    let sel = app.node_sel.min(rows.len().saturating_sub(1));
    let offset = sel
        .saturating_sub(height / 2)
        .min(rows.len().saturating_sub(height));
    let items: Vec<ListItem> = rows[offset..(offset + height).min(rows.len())]
        .iter()
        .filter_map(|&(id, depth)| {
            let n = t.node(id)?;
            let folded = app.folded.contains(&id) && kids.contains_key(&id);
            let text = if id == 0 {
                t.prompt.trim_end().to_string()
            } else {
                n.text.trim_end().replace('\n', "⏎")
            };
            let style = match (n.correct, n.confident_wrong) {
                (Some(true), _) => app.theme.correct,
                (_, true) => app.theme.confident_wrong,
                (Some(false), _) => app.theme.wrong,
                _ if n.recorded => app.theme.recorded,
                _ => app.theme.text,
            };
            let mut spans = vec![
                Span::raw("  ".repeat(depth)),
                Span::raw(if folded { "▸" } else { " " }),
                Span::styled(format!("{} ", marker(n)), style),
                Span::styled(format!("{text:<12} "), style),
                {
                    let (q, count) = stats(n);
                    let mean = if count == 0 { 0.0 } else { q / count as f64 };
                    Span::styled(
                        format!("q={q:+.2} N={count} Q={mean:+.2} H={:.2}", n.entropy),
                        app.theme.muted,
                    )
                },
            ];
            if let Some((steps, k)) = &replayed {
                let step = &steps[*k];
                if step.node == id {
                    spans.push(Span::styled(" ◀ expanded", app.theme.accent));
                } else if step.children.contains(&id) {
                    spans.push(Span::styled(" + new", app.theme.accent));
                }
            }
            if let Some(fs) = n.frontier_score {
                spans.push(Span::styled(format!(" F={fs:+.3}"), app.theme.muted));
            }
            if let Some(p) = n.prior {
                spans.push(Span::styled(format!(" P={p:.2}"), app.theme.muted));
            }
            if let Some(v) = n.value {
                spans.push(Span::styled(format!(" V={v:+.2}"), app.theme.muted));
            }
            if n.distilled && id != 0 {
                spans.push(Span::styled(" [distilled]", app.theme.recorded));
            }
            if n.recorded {
                spans.push(Span::styled(" [rec]", app.theme.recorded));
            }
            match n.step {
                StepKind::Invalid => spans.push(Span::styled(" [invalid]", app.theme.wrong)),
                StepKind::Forced => spans.push(Span::styled(" [forced]", app.theme.muted)),
                StepKind::Open => {}
            }
            if n.multiplicity > 1 {
                spans.push(Span::styled(
                    format!(" x{} merged", n.multiplicity),
                    app.theme.muted,
                ));
            }
            Some(ListItem::new(Line::from(spans)))
        })
        .collect();
    let replay_label = replayed
        .as_ref()
        .map(|(steps, k)| format!(" · replay {}/{}", k + 1, steps.len()))
        .unwrap_or_default();
    let title = format!(
        " {} {} · iteration {} · {} nodes · {:?} · {}{replay_label} ",
        t.problem,
        t.prompt.trim_end(),
        app.iteration,
        t.nodes.len(),
        t.source,
        app.node_filter.label()
    );
    let list = List::new(items)
        .block(Block::default().borders(Borders::ALL).title(title))
        .highlight_style(app.theme.selected)
        .highlight_symbol(">");
    let mut state = ListState::default().with_selected(Some(sel - offset));
    f.render_stateful_widget(list, list_area, &mut state);
    super::record_hit(app, list_area, 1, offset + state.offset());

    if let (Some(area), Some(id)) = (detail_area, app.selected_node()) {
        f.render_widget(detail(app, t, id), area);
    }
}

fn detail<'a>(
    app: &App,
    t: &'a crate::engine::search::record::TreeRecord,
    id: u32,
) -> Paragraph<'a> {
    let Some(n) = t.node(id) else {
        return Paragraph::new("");
    };
    let mut lines = Vec::new();
    if let Some((steps, k)) = app.replay_step() {
        let st = &steps[k];
        let vs = match (st.frontier_score, st.runner_up) {
            (Some(f), Some(r)) => format!(" frontier {f:+.3} vs runner-up {r:+.3}"),
            (Some(f), None) => format!(" frontier {f:+.3}, no runner-up"),
            _ => String::new(),
        };
        lines.push(Line::from(Span::styled(
            format!(
                "replay {}/{}: node {} expanded{vs} -> children {:?}",
                k + 1,
                steps.len(),
                st.node,
                st.children
            ),
            app.theme.accent,
        )));
        lines.push(Line::from(match st.picked {
            Some((p, v)) => format!("picked terminal {p} ({v:+.0}) backed up to the root"),
            None => "no terminal picked: no backup".to_string(),
        }));
    }
    lines.push(Line::from(Span::styled(
        format!("node {id}  depth {}", n.depth),
        app.theme.accent,
    )));
    lines.push(Line::from(format!(
        "q = {:.4}   N = {}   Q = {:.4}",
        n.q,
        n.n,
        n.mean_q()
    )));
    lines.push(Line::from(format!(
        "step entropy H = {:.3}   path entropy = {}",
        n.entropy,
        Some(path_entropy(t, id))
            .filter(|h| h.is_finite())
            .map_or("-".to_string(), |h| format!("{h:.3}"))
    )));
    if t.source == crate::engine::search::record::GroupSource::Distill {
        lines.push(Line::from(format!(
            "prior P = {}   value V = {}   W = {:.4}   visits N = {}",
            super::num(n.prior.map(f64::from)),
            super::num(n.value.map(f64::from)),
            n.q,
            n.n
        )));
        lines.push(Line::from(format!(
            "expanded {}   advantage R - V(parent) = {}",
            n.expanded_at
                .map_or("never".to_string(), |k| format!("#{}", k + 1)),
            super::num(n.advantage.map(f64::from))
        )));
    } else {
        lines.push(Line::from(format!(
            "frontier score = {}   advantage = {}",
            super::num(n.frontier_score.map(f64::from)),
            super::num(n.advantage.map(f64::from))
        )));
    }
    let verdict = match (n.correct, &n.reason) {
        (Some(true), _) => "✓ correct".to_string(),
        (Some(false), Some(r)) => format!("✗ wrong: {r}"),
        (Some(false), None) => "✗ wrong".into(),
        (None, _) => "not terminal".into(),
    };
    lines.push(Line::from(verdict));
    let mut flags = Vec::new();
    if n.picked {
        flags.push("picked");
    }
    if n.recorded {
        flags.push("recorded");
    }
    if n.confident_wrong {
        flags.push("! confident-wrong path");
    }
    if n.distilled && id != 0 {
        flags.push("on the distilled (most-visited) path");
    }
    match n.step {
        StepKind::Invalid => flags.push("invalid step (the task ended the path)"),
        StepKind::Forced => flags.push("forced step (one legal continuation, width 1)"),
        StepKind::Open => {}
    }
    let merged = format!("{} identical samples merged", n.multiplicity);
    if n.multiplicity > 1 {
        flags.push(&merged);
    }
    if !flags.is_empty() {
        lines.push(Line::from(flags.join(", ")));
    }
    lines.push(Line::from(Span::styled("context", app.theme.accent)));
    lines.push(Line::from(t.prompt.trim_end().to_string()));
    for i in path(t, id).into_iter().skip(1) {
        if let Some(p) = t.node(i) {
            lines.push(Line::from(p.text.trim_end().to_string()));
        }
    }
    Paragraph::new(lines)
        .wrap(Wrap { trim: false })
        .block(Block::default().borders(Borders::ALL).title(" node "))
}
