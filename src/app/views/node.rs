//! The detail pane of the tree view: the selected node's numbers, verdict, flags and full
//! context, and during the search replay the expansion on screen.
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph, Wrap};

use super::tree::TreeView;
use super::Ctx;
use crate::app::ending::{Caps, Ending};
use crate::app::snapshot::{path, path_entropy};
use crate::engine::rl::record::TreeRecord;
use crate::engine::rl::replay::ReplayUnit;
use crate::engine::task::StepKind;
use crate::engine::training::config::RunConfig;

pub(super) fn detail<'a>(view: &TreeView, ctx: &Ctx, t: &'a TreeRecord, id: u32) -> Paragraph<'a> {
    let Some(n) = t.node(id) else {
        return Paragraph::new("");
    };
    // Every number as it was at the replayed expansion, during the replay.
    let n = &*view.shown(ctx, n);
    let replaying = view.replay_step(ctx.iteration).is_some();
    let mut lines = Vec::new();
    // The node's numbers first, so they stay on screen in a short pane.
    let moment = view
        .replay_step(ctx.iteration)
        .map(|(steps, k)| format!(" at {} {}/{}", steps[k].unit.word(), k + 1, steps.len()))
        .unwrap_or_default();
    lines.push(Line::from(Span::styled(
        format!("node {id}  depth {}{moment}", n.depth),
        ctx.theme.accent,
    )));
    lines.push(Line::from(format!(
        "q = {:.4}  N = {}  Q = {:.4}",
        n.q,
        n.n,
        n.mean_q()
    )));
    if let Some((steps, k)) = view.replay_step(ctx.iteration) {
        let st = &steps[k];
        let vs = match (st.frontier_score, st.runner_up) {
            (Some(f), Some(r)) => format!(" frontier {f:+.3} vs runner-up {r:+.3}"),
            (Some(f), None) => format!(" frontier {f:+.3}, no runner-up"),
            _ => String::new(),
        };
        let (what, backup, after) = match st.unit {
            ReplayUnit::Expansion => (
                format!(
                    "node {} expanded{vs} -> children {:?}",
                    st.node, st.children
                ),
                match st.picked {
                    Some((p, v)) => format!("picked terminal {p} ({v:+.0}) backed up to the root"),
                    None => "no terminal picked: no backup".to_string(),
                },
                "advantages and the recorded and confident-wrong paths come after the search",
            ),
            ReplayUnit::Simulation => (
                if st.children.is_empty() {
                    format!("pUCT reached terminal node {}", st.node)
                } else {
                    format!(
                        "pUCT reached node {}, expanded -> children {:?}",
                        st.node, st.children
                    )
                },
                match st.picked {
                    Some((p, v)) => {
                        format!("backed up {v:+.3} from node {p}: W += v, N += 1 up to the root")
                    }
                    None => "no backup".to_string(),
                },
                "the distilled (most-visited) path and its advantages come after the search",
            ),
        };
        lines.push(Line::from(Span::styled(
            format!("replay {}/{}: {what}", k + 1, steps.len()),
            ctx.theme.accent,
        )));
        lines.push(Line::from(backup));
        lines.push(Line::styled(after, ctx.theme.muted));
    }
    lines.push(Line::from(format!(
        "step entropy H = {:.3}   path entropy = {}",
        n.entropy,
        Some(path_entropy(t, id))
            .filter(|h| h.is_finite())
            .map_or("-".to_string(), |h| format!("{h:.3}"))
    )));
    if t.source == crate::engine::rl::record::GroupSource::Distill {
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
    let cfg = RunConfig::from_toml(&ctx.snapshot.run.config_toml).unwrap_or_default();
    // During the replay an open node may yet be expanded: it has not ended.
    let leaf = !t.nodes.iter().any(|c| c.parent == Some(id)) && (!replaying || n.is_terminal());
    let verdict = match Ending::of(n, leaf, Caps::of(&cfg, t)) {
        Ending::Continued => "not terminal: the path goes on below".to_string(),
        e => format!("{} {}", super::tree::marker(n), e.words()),
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
    lines.push(Line::from(Span::styled("context", ctx.theme.accent)));
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
