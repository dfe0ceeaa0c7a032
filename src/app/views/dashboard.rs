//! Dashboard: charts over iterations up to the cursor, and the compute spent.
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Axis, Block, Borders, Chart, Dataset, GraphType, Paragraph};
use ratatui::Frame;

use super::{num, Action, Ctx, KeyHelp, Legend, View};
use crate::app::explorer::Screen;
use crate::app::help::wrap;
use crate::engine::training::control::RETUNABLE;
use crate::engine::training::phases::PhaseSeconds;

/// The dashboard has no state of its own: it shows the iteration under the App's cursor.
#[derive(Default)]
pub struct DashboardView;

const KEYS: &[KeyHelp] =
    &[KeyHelp::new("Enter", "the problems of this iteration").footer("problems")];

impl View for DashboardView {
    fn keys(&self) -> &'static [KeyHelp] {
        KEYS
    }

    /// The settings a live run can change, from the one table `:set`, the form and
    /// `--set` use.
    fn legend(&self) -> Option<Legend> {
        Some(Legend {
            title: "retunable: :set NAME VALUE, the r form, --set NAME=VALUE on resume",
            entries: RETUNABLE
                .iter()
                .map(|r| (r.name.to_string(), format!("{} ({})", r.about, r.path)))
                .collect(),
        })
    }

    fn on_key(&mut self, key: KeyEvent, _ctx: &Ctx) -> Action {
        match key.code {
            KeyCode::Enter => Action::Show(Screen::Problems),
            _ => Action::Pass,
        }
    }

    fn draw(&self, f: &mut Frame, area: Rect, ctx: &Ctx) {
        draw(f, area, ctx)
    }
}

fn draw(f: &mut Frame, area: Rect, ctx: &Ctx) {
    let [charts, facts] =
        Layout::horizontal([Constraint::Percentage(65), Constraint::Percentage(35)]).areas(area);
    let upto: Vec<_> = ctx
        .snapshot
        .iterations
        .iter()
        .filter(|m| m.iteration <= ctx.iteration)
        .collect();
    let acc: Vec<(f64, f64)> = upto
        .iter()
        .map(|m| (m.iteration as f64, m.train_accuracy))
        .collect();
    // The start-of-run evaluation rides on the first iteration's record; it is the
    // point at 0.
    let start = ctx
        .snapshot
        .iterations
        .first()
        .and_then(|m| m.eval_start.as_ref());
    let eval: Vec<(f64, f64)> = start
        .map(|e| (0.0, e.pass1))
        .into_iter()
        .chain(
            upto.iter()
                .filter_map(|m| m.eval.as_ref().map(|e| (m.iteration as f64, e.pass1))),
        )
        .collect();
    let ent: Vec<(f64, f64)> = upto
        .iter()
        .map(|m| (m.iteration as f64, m.mean_entropy))
        .collect();
    let x_max = (ctx.iteration.max(1)) as f64;
    let [top, bottom] =
        Layout::vertical([Constraint::Percentage(60), Constraint::Percentage(40)]).areas(charts);
    let y_max = acc
        .iter()
        .chain(&eval)
        .map(|p| p.1)
        .fold(0.05f64, f64::max)
        .min(1.0);
    let chart = Chart::new(vec![
        Dataset::default()
            .name("train acc")
            .marker(Marker::Braille)
            .graph_type(GraphType::Line)
            .style(ctx.theme.recorded)
            .data(&acc),
        Dataset::default()
            .name("eval pass@1 *")
            .marker(Marker::Dot)
            .graph_type(GraphType::Scatter)
            .style(ctx.theme.correct)
            .data(&eval),
    ])
    .block(Block::default().borders(Borders::ALL).title(" accuracy "))
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
    f.render_widget(chart, top);
    let e_max = ent.iter().map(|p| p.1).fold(0.1f64, f64::max);
    let chart = Chart::new(vec![Dataset::default()
        .name("mean entropy")
        .marker(Marker::Braille)
        .graph_type(GraphType::Line)
        .style(ctx.theme.accent)
        .data(&ent)])
    .block(Block::default().borders(Borders::ALL).title(" entropy "))
    .x_axis(Axis::default().bounds([0.0, x_max]))
    .y_axis(
        Axis::default()
            .bounds([0.0, e_max])
            .labels(vec![Line::from("0"), Line::from(format!("{e_max:.2}"))]),
    );
    f.render_widget(chart, bottom);

    let m = ctx.snapshot.metrics(ctx.iteration);
    let last_eval = upto
        .iter()
        .rev()
        .find_map(|m| m.eval.as_ref())
        .or(start.filter(|_| !upto.is_empty()));
    let mut lines: Vec<Fact> = vec![
        Fact::new(format!("iteration  {}", ctx.iteration)),
        Fact::new(format!("train acc  {}", num(m.map(|m| m.train_accuracy)))),
        Fact::new(format!("reward     {}", num(m.map(|m| m.train_reward)))),
        Fact::new(format!("loss       {}", num(m.map(|m| m.update.loss)))),
        // Engines return no full-distribution entropy: with one, the trainer's
        // recomputation over the engine's tokens is what is shown (and what the
        // frontier scores).
        Fact::new(format!(
            "entropy    {}{}",
            num(m.map(|m| m.mean_entropy)),
            if m.is_some_and(|m| m.generator.is_some()) {
                "  (trainer's rescoring)"
            } else {
                ""
            }
        )),
        Fact::new(format!("nll        {}", num(m.map(|m| m.mean_nll)))),
        Fact::new(format!(
            "solved     {} ({}/1k tok)",
            m.map_or(0, |m| m.problems_solved),
            num(m.map(|m| m.solved_per_1k_tokens))
        ))
        .short(format!(
            "solved     {} ({}/1k)",
            m.map_or(0, |m| m.problems_solved),
            m.map(|m| format!("{:.2}", m.solved_per_1k_tokens))
                .unwrap_or_else(|| "-".into())
        )),
        Fact::new(format!(
            "opt steps  {}",
            m.map_or(0, |m| m.update.optimizer_steps)
        )),
        Fact::new(format!(
            "lr         {}",
            m.map(|m| format!("{:.2e}", m.lr)).unwrap_or_default()
        )),
        match last_eval {
            Some(e) => Fact::new(format!(
                "eval       pass@1 {}  pass@{} {}",
                num(Some(e.pass1)),
                e.k,
                num(Some(e.pass_k))
            ))
            .short(format!(
                "eval p@1 {} p@{} {}",
                num(Some(e.pass1)),
                e.k,
                num(Some(e.pass_k))
            )),
            None => Fact::new("eval       none yet".to_string()),
        },
        Fact::new(format!(
            "tokens     {}",
            m.map_or(0, |m| m.cumulative_generated_tokens)
        )),
    ];
    if let Some(s) = m.and_then(|m| m.search.as_ref()) {
        lines.push(Fact::new(format!(
            "trees      {} ({} solved)",
            s.trees, s.trees_solved
        )));
        lines.push(Fact::new(format!(
            "expansions {} ({:.1}/tree)",
            s.expansions,
            s.expansions as f64 / s.trees.max(1) as f64
        )));
        lines.push(Fact::new(format!("nodes      {}", s.nodes)));
        lines.push(Fact::new(format!("cache hits {}", s.cache_hits)));
        lines.push(Fact::new(format!("cap events {}", s.cap_events)));
        lines.push(Fact::new(format!(
            "steps      {} invalid, {} forced, {} merged",
            s.invalid_nodes, s.forced_nodes, s.merged
        )));
        lines.push(
            Fact::new(format!(
                "unsolved   {:.0}% of advantage mass",
                100.0 * s.unsolved_share()
            ))
            .short(format!(
                "unsolved   {:.0}% adv. mass",
                100.0 * s.unsolved_share()
            )),
        );
        if s.simulations > 0 {
            lines.push(Fact::new(format!(
                "distill    {:.1} sims/tree, {} scoring tokens",
                s.simulations as f64 / s.trees.max(1) as f64,
                s.scoring_tokens
            )));
        }
    }
    if let Some(m) = m.filter(|m| m.update.value_loss > 0.0 || m.update.kl > 0.0) {
        lines.push(Fact::new(format!(
            "value/KL   {} / {}",
            num(Some(m.update.value_loss)),
            num(Some(m.update.kl))
        )));
        if let Some(ev) = m.update.explained_variance {
            lines.push(Fact::new(format!("value EV   {ev:+.2}")));
        }
    }
    if let Some((r, a)) = m
        .and_then(|m| m.search.as_ref())
        .and_then(|s| s.distill_means())
    {
        lines.push(Fact::new(format!("return/adv {r:+.2} / {a:+.2}")));
    }
    if let Some(a) = m.and_then(|m| m.adaptive.as_ref()) {
        lines.push(Fact::new(format!(
            "hard set   {} (round {})",
            a.hard_set_size, a.round
        )));
        lines.push(Fact::new(format!("cache size {}", a.cache_size)));
        if a.filter_tokens > 0 {
            lines.push(Fact::new(format!(
                "filter     {} tokens{}",
                a.filter_tokens,
                if a.filter_skipped {
                    " (skipped by the precheck)"
                } else {
                    ""
                }
            )));
        }
    }
    if let Some(m) = m {
        let tps = m.sampling.generated_tokens as f64 / m.seconds.sample.max(1e-9);
        lines.push(Fact::new(format!("tokens/s   {tps:.0}")));
        lines.push(Fact::new(format!("temp       {}", m.temperature)));
    }
    // Where the run's time went, over the iterations up to the cursor.
    let mut spent = PhaseSeconds::default();
    for m in &upto {
        spent.add(&m.seconds);
    }
    let total = spent.total();
    if total > 0.0 {
        let per = total / upto.len().max(1) as f64;
        lines.push(
            Fact::new(format!("time       {per:.2} s/iteration"))
                .short(format!("time       {per:.2} s/it")),
        );
        for (name, secs) in spent.phases() {
            lines.push(Fact::new(format!(
                "  {name:<16}{:>5.1}%",
                100.0 * secs / total
            )));
        }
    }
    // Control events up to the cursor: the replay shows when the run changed and why.
    let events: Vec<_> = ctx
        .snapshot
        .events
        .iter()
        .filter(|e| e.iteration <= ctx.iteration)
        .collect();
    if !events.is_empty() {
        lines.push(Fact::new("events"));
        for e in events.iter().rev().take(6) {
            let what = match (&e.key, &e.old, &e.new, &e.reason) {
                (Some(k), Some(o), Some(n), _) => format!("{} {k} {o} -> {n}", e.kind),
                (Some(k), None, Some(n), Some(r)) => format!("{} {k}={n}: {r}", e.kind),
                (Some(k), _, _, _) => format!("{} {k}", e.kind),
                _ => e.kind.to_string(),
            };
            lines.push(Fact::new(format!(" it {}: {what}", e.iteration)));
        }
    }
    // Each fact fits the pane with a column to spare: its short form, or wrapped beside
    // its label; never cut.
    let width = facts.width.saturating_sub(3) as usize;
    let lines: Vec<Line> = lines
        .iter()
        .flat_map(|l| l.fit(width))
        .map(Line::from)
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(
            Block::default()
                .borders(Borders::ALL)
                .title(" this iteration "),
        ),
        facts,
    );
}

/// A line of the facts pane, "label      value", and a shorter form for a narrow pane.
struct Fact {
    text: String,
    short: Option<String>,
}

/// The label column of a fact.
const LABEL: usize = 11;

impl Fact {
    fn new(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            short: None,
        }
    }
    fn short(self, short: String) -> Self {
        Self {
            short: Some(short),
            ..self
        }
    }

    /// The fact in lines of at most `width` columns: whole, or its short form, or the
    /// short form wrapped at spaces (beside its label where there is room).
    fn fit(&self, width: usize) -> Vec<String> {
        let cols = |t: &str| Span::raw(t).width();
        let t = match &self.short {
            _ if cols(&self.text) <= width => return vec![self.text.clone()],
            Some(s) if cols(s) <= width => return vec![s.clone()],
            Some(s) => s.as_str(),
            None => self.text.as_str(),
        };
        let labelled = !t.starts_with(' ')
            && t.is_char_boundary(LABEL)
            && t[..LABEL].ends_with(' ')
            && width >= LABEL + 8;
        if !labelled {
            return wrap(t, width);
        }
        let (label, value) = t.split_at(LABEL);
        wrap(value, width - LABEL)
            .into_iter()
            .enumerate()
            .map(|(i, l)| {
                let head = if i == 0 {
                    label.to_string()
                } else {
                    " ".repeat(LABEL)
                };
                head + &l
            })
            .collect()
    }
}
