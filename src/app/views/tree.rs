//! The tree of one problem: every node with its step, q, N, Q, entropy and frontier score
//! (search distillation's trees: prior P, value V and the distilled path as well);
//! correct, recorded and confident-wrong nodes set apart by symbol as well as colour; and a
//! detail pane with the selected node's full context and the verifier's reason.
use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph};
use ratatui::Frame;

use super::list::ListCursor;
use super::{Action, Ctx, KeyHelp, Legend, View};
use crate::app::ending::{Caps, Ending};
use crate::app::filters::NodeFilter;
use crate::app::snapshot::{children, visible_rows};
use crate::engine::methods::deepsearch::search::replay::{replay, ReplayStep, ReplayUnit};
use crate::engine::rl::record::{GroupSource, NodeRecord, TreeRecord};
use crate::engine::task::StepKind;
use crate::engine::training::config::RunConfig;

/// The tree of one problem of the iteration: which problem, the cursor, folded nodes,
/// the node filter and the search replay.
#[derive(Default)]
pub struct TreeView {
    /// The problem shown (index into the iteration's trees).
    pub problem: usize,
    pub list: ListCursor,
    pub folded: HashSet<u32>,
    pub filter: NodeFilter,
    /// The search replay, while it is on.
    pub replay: Option<Replay>,
}

/// The search replay of one tree: its expansions, replayed once when the replay starts,
/// and the one on screen.
pub struct Replay {
    pub iteration: u64,
    pub problem: usize,
    pub steps: Vec<ReplayStep>,
    pub step: usize,
}

const KEYS: &[KeyHelp] = &[
    ListCursor::KEYS,
    KeyHelp::new("Space", "fold / unfold the node").footer("fold"),
    KeyHelp::new("h l, Left Right", "fold / unfold the node"),
    KeyHelp::new("Shift-Left Shift-Right", "fold / unfold the whole subtree"),
    KeyHelp::new(
        "F",
        "cycle filter: all nodes, terminals, recorded, confident-wrong path",
    )
    .footer("filter"),
    KeyHelp::new(
        "< >",
        "replay the search: previous / next expansion or simulation (< from the first leaves it)",
    )
    .footer("replay"),
    super::history::OPEN,
];

/// The symbols of the tree list, explained in the help.
const LEGEND: &[(&str, &str)] = &[
    ("✓ ✗ !", "correct, wrong, on the confident-wrong path"),
    ("◆ ○ ▸", "root, open node, folded node"),
    (
        "how it ended",
        "right answer, wrong answer, invalid, malformed (neither a step nor an answer), \
         capped (no answer by the depth or token limit), unfinished (no answer, or never \
         expanded); the node pane adds the verifier's reason",
    ),
    ("q N Q H", "backed-up value, visits, q / N, step entropy"),
    (
        "F [rec]",
        "frontier score; the end of a recorded trajectory",
    ),
    (
        "[invalid] [forced]",
        "step judged invalid / the one legal step",
    ),
    ("xN merged", "N identical samples in one node"),
    (
        "P V [distilled]",
        "tree_distill: prior, value estimate, most-visited path",
    ),
    (
        "◀ expanded, + new",
        "search replay: the node expanded and its new children; every number is the \
         one at that expansion",
    ),
];

impl TreeView {
    /// Shows problem `problem` with every node unfolded, the cursor on `node` if given.
    pub fn open(&mut self, problem: usize, node: Option<u32>, ctx: &Ctx) {
        self.problem = problem;
        self.folded.clear();
        match node {
            Some(id) => self.select_node(id, ctx),
            None => self.list.sel = 0,
        }
    }

    /// After the iteration changed: the same problem number, cursor at the top, unfolded.
    pub fn reset(&mut self, trees: usize) {
        self.problem = self.problem.min(trees.saturating_sub(1));
        self.list.sel = 0;
        self.folded.clear();
    }

    pub fn tree<'a>(&self, ctx: &Ctx<'a>) -> Option<&'a TreeRecord> {
        ctx.trees.get(self.problem)
    }

    /// The replayed expansions of the shown tree and the step on screen, while the search
    /// replay is on for it.
    pub fn replay_step(&self, iteration: u64) -> Option<(&[ReplayStep], usize)> {
        let r = self.replay.as_ref()?;
        (r.iteration == iteration && r.problem == self.problem && r.step < r.steps.len())
            .then_some((r.steps.as_slice(), r.step))
    }

    /// `n` as it was at the replayed expansion while the search replay is on: q and N
    /// from the replay engine's state, the frontier score only once the node was picked
    /// for expansion, and what the search decides after it ends (advantages, recorded and
    /// confident-wrong paths) not yet known. Otherwise `n` as stored.
    pub fn shown<'n>(&self, ctx: &Ctx, n: &'n NodeRecord) -> Cow<'n, NodeRecord> {
        let Some((steps, k)) = self.replay_step(ctx.iteration) else {
            return Cow::Borrowed(n);
        };
        let mut m = n.clone();
        let (q, visits) = steps[k]
            .state
            .get(n.id as usize)
            .copied()
            .flatten()
            .unwrap_or((0.0, 0));
        (m.q, m.n) = (q as f32, visits);
        if n.expanded_at.is_none_or(|e| e >= steps[k].expansions_done) {
            (m.expanded_at, m.frontier_score, m.runner_up) = (None, None, None);
        }
        (m.advantage, m.recorded, m.confident_wrong, m.distilled) = (None, false, false, false);
        Cow::Owned(m)
    }

    /// Nodes of the shown tree on screen: all, or those created by the replayed expansion.
    pub fn node_count(&self, ctx: &Ctx) -> usize {
        match self.replay_step(ctx.iteration) {
            Some((steps, k)) => steps[k].state.iter().filter(|s| s.is_some()).count(),
            None => self.tree(ctx).map_or(0, |t| t.nodes.len()),
        }
    }

    /// Every expansion of the shown tree, replayed from the store with the run's backup
    /// settings.
    pub fn replay_steps(&self, ctx: &Ctx) -> Result<Vec<ReplayStep>, String> {
        let t = self.tree(ctx).ok_or("no tree at this iteration")?;
        match t.source {
            GroupSource::Search => {
                let cfg = RunConfig::from_toml(&ctx.snapshot.run.config_toml).unwrap_or_default();
                replay(t, cfg.search.gamma_min, cfg.search.backup).map_err(|e| e.to_string())
            }
            GroupSource::Distill => {
                crate::engine::methods::tree_distill::replay::replay(t).map_err(|e| e.to_string())
            }
            other => Err(format!(
                "only searched trees (DeepSearch, tree_distill) can be replayed (this one is \
                 {other:?})"
            )),
        }
    }

    /// Moves the search replay one expansion forward (`>`) or back (`<`); back from the
    /// first expansion leaves the replay. The tree is replayed when the replay starts.
    fn step_replay(&mut self, forward: bool, ctx: &Ctx) -> Action {
        let current = self.replay_step(ctx.iteration).map(|(_, k)| k);
        let steps = match self.replay.take() {
            Some(r) if current.is_some() => r.steps,
            _ => match self.replay_steps(ctx) {
                Ok(s) => s,
                Err(e) => return Action::Say(e),
            },
        };
        let last = steps.len().saturating_sub(1);
        let next = match (current, forward) {
            (None, true) => Some(0),
            (None, false) => Some(last),
            (Some(k), true) => Some((k + 1).min(last)),
            (Some(0), false) => None,
            (Some(k), false) => Some(k - 1),
        };
        self.list.sel = 0;
        let said = match next {
            Some(k) => format!(
                "search replay: {} {} of {}",
                steps[k].unit.word(),
                k + 1,
                steps.len()
            ),
            None => "search replay off".into(),
        };
        self.replay = next.map(|step| Replay {
            iteration: ctx.iteration,
            problem: self.problem,
            steps,
            step,
        });
        Action::Say(said)
    }

    /// The listed rows, (node id, depth): unfolded, created by the replayed expansion,
    /// and passing the node filter.
    pub fn rows(&self, ctx: &Ctx) -> Vec<(u32, usize)> {
        let Some(t) = self.tree(ctx) else {
            return Vec::new();
        };
        let mut rows = visible_rows(t, &self.folded);
        // During the replay only the nodes created by then are listed.
        if let Some((steps, k)) = self.replay_step(ctx.iteration) {
            let state = &steps[k].state;
            rows.retain(|&(id, _)| state.get(id as usize).is_some_and(|s| s.is_some()));
        }
        if self.filter == NodeFilter::All {
            return rows;
        }
        rows.into_iter()
            .filter(|&(id, _)| t.node(id).is_some_and(|n| self.filter.keeps(n)))
            .collect()
    }

    /// The node under the cursor.
    pub fn selected_node(&self, ctx: &Ctx) -> Option<u32> {
        self.rows(ctx).get(self.list.sel).map(|r| r.0)
    }

    fn select_node(&mut self, id: u32, ctx: &Ctx) {
        if let Some(pos) = self.rows(ctx).iter().position(|r| r.0 == id) {
            self.list.sel = pos;
        }
    }

    /// `id` and every node below it in the shown tree.
    fn subtree(&self, id: u32, ctx: &Ctx) -> Vec<u32> {
        let Some(t) = self.tree(ctx) else {
            return Vec::new();
        };
        let mut kids: HashMap<u32, Vec<u32>> = HashMap::new();
        for n in &t.nodes {
            if let Some(p) = n.parent {
                kids.entry(p).or_default().push(n.id);
            }
        }
        let mut out = vec![id];
        let mut i = 0;
        while i < out.len() {
            out.extend(kids.get(&out[i]).into_iter().flatten().copied());
            i += 1;
        }
        out
    }
}

impl View for TreeView {
    fn keys(&self) -> &'static [KeyHelp] {
        KEYS
    }

    fn legend(&self) -> Option<Legend> {
        Some(Legend {
            title: "legend",
            entries: LEGEND
                .iter()
                .map(|&(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        })
    }

    fn on_key(&mut self, key: KeyEvent, ctx: &Ctx) -> Action {
        if self.list.on_key(key, self.rows(ctx).len()) {
            return Action::Done;
        }
        let shift = key.modifiers.contains(KeyModifiers::SHIFT);
        let selected = self.selected_node(ctx);
        match key.code {
            KeyCode::Char('H') => return Action::OpenHistory(self.problem),
            KeyCode::Char('>') => return self.step_replay(true, ctx),
            KeyCode::Char('<') => return self.step_replay(false, ctx),
            KeyCode::Char('F') => {
                self.filter = self.filter.next();
                self.list.sel = 0;
                return Action::Say(format!("showing {}", self.filter.label()));
            }
            KeyCode::Char(' ') => {
                if let Some(id) = selected {
                    if !self.folded.remove(&id) {
                        self.folded.insert(id);
                    }
                }
            }
            KeyCode::Left if shift => {
                if let Some(id) = selected {
                    self.folded.extend(self.subtree(id, ctx));
                }
            }
            KeyCode::Right if shift => {
                if let Some(id) = selected {
                    for n in self.subtree(id, ctx) {
                        self.folded.remove(&n);
                    }
                }
            }
            KeyCode::Left | KeyCode::Char('h') => {
                if let Some(id) = selected {
                    self.folded.insert(id);
                }
            }
            KeyCode::Right | KeyCode::Char('l') => {
                if let Some(id) = selected {
                    self.folded.remove(&id);
                }
            }
            _ => return Action::Pass,
        }
        Action::Done
    }

    fn draw(&self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        draw(f, area, self, ctx)
    }

    fn cursor(&mut self) -> Option<&mut ListCursor> {
        Some(&mut self.list)
    }

    fn len(&self, ctx: &Ctx) -> usize {
        self.rows(ctx).len()
    }
}

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

fn draw(f: &mut Frame, area: Rect, view: &TreeView, ctx: &Ctx) {
    let Some(t) = view.tree(ctx) else {
        f.render_widget(
            Paragraph::new("no tree at this iteration")
                .block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    let (list_area, detail_area) = if ctx.maximized || area.width < 100 && area.height >= 18 {
        if ctx.maximized {
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
    let cfg = RunConfig::from_toml(&ctx.snapshot.run.config_toml).unwrap_or_default();
    let caps = Caps::of(&cfg, t);
    let rows = view.rows(ctx);
    let replayed = view.replay_step(ctx.iteration);
    // Inside the borders, after the cursor's column.
    let row_width = list_area.width.saturating_sub(3) as usize;
    // Only the rows that fit are built, so trees of thousands of nodes stay responsive.
    let height = list_area.height.saturating_sub(2).max(1) as usize;
    let sel = view.list.at(rows.len());
    let offset = sel
        .saturating_sub(height / 2)
        .min(rows.len().saturating_sub(height));
    let items: Vec<ListItem> = rows[offset..(offset + height).min(rows.len())]
        .iter()
        .filter_map(|&(id, depth)| {
            // The node as stored, or as it was at the replayed expansion.
            let n = &*view.shown(ctx, t.node(id)?);
            // During the replay an open node may yet be expanded: it has not ended.
            let leaf = !kids.contains_key(&id) && (replayed.is_none() || n.is_terminal());
            let folded = view.folded.contains(&id) && kids.contains_key(&id);
            let text = if id == 0 {
                t.prompt.trim_end().to_string()
            } else {
                n.text.trim_end().replace('\n', "⏎")
            };
            let style = match (n.correct, n.confident_wrong) {
                (Some(true), _) => ctx.theme.correct,
                (_, true) => ctx.theme.confident_wrong,
                (Some(false), _) => ctx.theme.wrong,
                _ if n.recorded => ctx.theme.recorded,
                _ => ctx.theme.text,
            };
            let mut spans = vec![
                Span::raw("  ".repeat(depth)),
                Span::raw(if folded { "▸" } else { " " }),
                Span::styled(format!("{} ", marker(n)), style),
            ];
            spans.extend(ctx.text_spans(text, 12, style));
            spans.extend([
                Span::raw(" "),
                match Ending::of(n, leaf, caps) {
                    Ending::Continued => Span::raw(""),
                    e => Span::styled(format!("{} ", e.kind()), style),
                },
                Span::styled(
                    format!(
                        "q={:+.2} N={} Q={:+.2} H={:.2}",
                        n.q,
                        n.n,
                        n.mean_q(),
                        n.entropy
                    ),
                    ctx.theme.muted,
                ),
            ]);
            if let Some((steps, k)) = &replayed {
                let step = &steps[*k];
                if step.node == id {
                    let what = match (step.unit, step.children.is_empty()) {
                        (ReplayUnit::Simulation, true) => " ◀ reached",
                        _ => " ◀ expanded",
                    };
                    spans.push(Span::styled(what, ctx.theme.accent));
                } else if step.children.contains(&id) {
                    spans.push(Span::styled(" + new", ctx.theme.accent));
                }
            }
            if let Some(fs) = n.frontier_score {
                spans.push(Span::styled(format!(" F={fs:+.3}"), ctx.theme.muted));
            }
            if let Some(p) = n.prior {
                spans.push(Span::styled(format!(" P={p:.2}"), ctx.theme.muted));
            }
            if let Some(v) = n.value {
                spans.push(Span::styled(format!(" V={v:+.2}"), ctx.theme.muted));
            }
            if n.distilled && id != 0 {
                spans.push(Span::styled(" [distilled]", ctx.theme.recorded));
            }
            if n.recorded {
                spans.push(Span::styled(" [rec]", ctx.theme.recorded));
            }
            match n.step {
                StepKind::Invalid => spans.push(Span::styled(" [invalid]", ctx.theme.wrong)),
                StepKind::Forced => spans.push(Span::styled(" [forced]", ctx.theme.muted)),
                StepKind::Open => {}
            }
            if n.multiplicity > 1 {
                spans.push(Span::styled(
                    format!(" x{} merged", n.multiplicity),
                    ctx.theme.muted,
                ));
            }
            // A row too long for the list loses whole words from its end, never half of one.
            Some(ListItem::new(super::drop_words(
                Line::from(spans),
                row_width,
            )))
        })
        .collect();
    let replay_label = replayed
        .as_ref()
        .map(|(steps, k)| format!(" · replay {}/{}", k + 1, steps.len()))
        .unwrap_or_default();
    // The longest title that fits the top border with a line to spare; never cut.
    let prompt = t.prompt.trim_end();
    let (it, size, filter) = (ctx.iteration, view.node_count(ctx), view.filter.label());
    let title = super::fit_words(
        &[
            format!(
                " {} {prompt} · iteration {it} · {size} nodes · {:?} · {filter}{replay_label} ",
                t.problem, t.source
            ),
            format!(
                " {} {prompt} · it {it} · {size} nodes · {filter}{replay_label} ",
                t.problem
            ),
            format!(" {prompt} · it {it} · {size} nodes{replay_label} "),
            format!(" {prompt}{replay_label} "),
        ],
        list_area.width.saturating_sub(3) as usize,
    );
    let list = List::new(items)
        .block(Block::default().borders(Borders::ALL).title(title))
        .highlight_style(ctx.theme.selected)
        .highlight_symbol(">");
    let mut state = ListState::default().with_selected(Some(sel - offset));
    f.render_stateful_widget(list, list_area, &mut state);
    super::record_hit(ctx, list_area, 1, offset + state.offset());

    if let (Some(area), Some(id)) = (detail_area, view.selected_node(ctx)) {
        f.render_widget(super::node::detail(view, ctx, t, id), area);
    }
}

#[cfg(test)]
mod tests {
    use crate::app::explorer::Screen;
    use crate::app::test_app::{app, key, screen};
    use crate::engine::rl::record::{GroupSource, NodeRecord, TreeRecord};
    use crate::engine::task::countdown::verifier::Reason;
    use crossterm::event::KeyCode;

    fn ended(id: u32, text: &str, reason: Reason, depth: u32) -> NodeRecord {
        let mut n = NodeRecord::blank(id, Some(0), depth);
        n.text = text.into();
        n.terminal_value = Some(if reason == Reason::Correct { 1.0 } else { -1.0 });
        n.correct = Some(reason == Reason::Correct);
        n.reason = Some(reason.to_string());
        n
    }

    /// Issue 27 item 3: every ended node says why on its row, and the node pane adds the
    /// verifier's reason (the malformed `2+8=1ans 1` among them).
    #[test]
    fn every_tree_node_says_why_it_ended() {
        let (_dir, mut app) = app();
        let mut open = NodeRecord::blank(6, Some(0), 1);
        open.text = "8-2=6".into();
        let wrong = Reason::WrongValue {
            got: "16".into(),
            target: 10,
        };
        let mut capped = ended(7, "2*8=16", Reason::NoAnswer, 8);
        capped.parent = Some(0);
        app.trees = vec![TreeRecord {
            problem: "p1".into(),
            prompt: "2 8:10".into(),
            source: GroupSource::Search,
            expansions: 1,
            cap_event: false,
            nodes: vec![
                NodeRecord::blank(0, None, 0),
                ended(1, "2+8=1ans 1", Reason::Malformed { line: 1 }, 1),
                ended(2, "ans 10", Reason::Correct, 1),
                ended(3, "ans 16", wrong, 1),
                ended(4, "2/0=0", Reason::DivisionByZero { line: 1 }, 1),
                ended(5, "28", Reason::NoAnswer, 1),
                open,
                capped,
            ],
            simulations: Vec::new(),
        }];
        app.screen = Screen::Tree;
        let s = screen(&app, 200, 60);
        for (text, why) in [
            ("2+8=1ans 1", "malformed"),
            ("ans 10", "right answer"),
            ("ans 16", "wrong answer"),
            ("2/0=0", "invalid"),
            ("28 ", "unfinished"),
            ("8-2=6", "unfinished"),
            ("2*8=16", "capped"),
        ] {
            let row = s
                .lines()
                .find(|l| l.contains(&format!(" {text}")) && l.contains("q="))
                .unwrap_or_else(|| panic!("{text}: {s}"));
            assert!(row.contains(&format!(" {why} ")), "{text}: {row}");
        }
        // The node pane: the malformed line with the verifier's reason, at 80x24 too.
        key(&mut app, KeyCode::Char('j'));
        for (w, h) in [(200, 60), (80, 24)] {
            let s = screen(&app, w, h);
            assert!(s.contains("malformed: line 1: not a step or an"), "{s}");
        }
    }
}
