//! Every sample of one problem in the iteration, for every method: a sampled group's
//! completions (GRPO, DAPO, CISPO, best-of-N: children of a `Direct` root) or a tree's
//! recorded paths, each with its reward, advantage, tokens and why it ended in the
//! verifier's words, the ground truth above them, sorted and filtered by keys.
use crossterm::event::{KeyCode, KeyEvent};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, List, ListItem, ListState, Paragraph, Wrap};
use ratatui::Frame;

use super::list::ListCursor;
use super::{Action, Ctx, KeyHelp, View};
use crate::app::ending::{Caps, Ending};
use crate::app::ground_truth::GroundTruth;
use crate::app::snapshot::{children, path};
use crate::engine::rl::record::{GroupSource, NodeRecord, TreeRecord};
use crate::engine::training::config::RunConfig;

/// One sample: a whole completion, or a tree's path from the root to a recorded end.
#[derive(Clone, Debug, PartialEq)]
pub struct Sample {
    /// The node the sample ends at.
    pub node: u32,
    /// The completion, its steps one per line.
    pub text: String,
    /// The reward it was trained with: a sampled completion's under `train.reward` (1 or
    /// 0 under the binary reward), a tree terminal's value as the search backed it up;
    /// none for an unfinished path.
    pub reward: Option<f32>,
    pub correct: Option<bool>,
    /// The advantage its (last) tokens were trained with, if trained.
    pub advantage: Option<f32>,
    pub tokens: usize,
    pub ending: Ending,
}

/// The samples of `t`: its recorded ends (a sampled group's completions are all
/// recorded), or every terminal where nothing was recorded; in the order sampled.
pub fn samples(t: &TreeRecord, caps: Caps, cfg: &RunConfig) -> Vec<Sample> {
    let kids = children(t);
    let recorded = t.nodes.iter().any(|n| n.recorded);
    t.nodes
        .iter()
        .filter(|n| {
            n.id != 0
                && if recorded {
                    n.recorded
                } else {
                    n.is_terminal()
                }
        })
        .map(|n| {
            let steps: Vec<_> = path(t, n.id)
                .into_iter()
                .skip(1)
                .filter_map(|i| t.node(i))
                .collect();
            Sample {
                node: n.id,
                text: steps
                    .iter()
                    .map(|s| s.text.trim_end())
                    .collect::<Vec<_>>()
                    .join("\n"),
                reward: trained_reward(cfg, t, n),
                correct: n.correct,
                advantage: n.advantage,
                tokens: steps.iter().map(|s| s.tokens.len()).sum(),
                ending: Ending::of(n, !kids.contains_key(&n.id), caps),
            }
        })
        .collect()
}

/// The reward a sample was trained with. A sampled group stores +1 or -1 (right or
/// wrong) as its terminal value; the method trained on `train.reward` of the verdict,
/// which is recomputed here (binary from the stored verdict; the others by verifying the
/// completion again against the prompt's numbers under the preset's rules). A search
/// tree's terminal value is its reward already.
fn trained_reward(cfg: &RunConfig, t: &TreeRecord, n: &NodeRecord) -> Option<f32> {
    use crate::engine::task::{countdown, reward, verify, Problem, RewardKind, Rules, Spec};
    if t.source != GroupSource::Direct {
        return n.terminal_value;
    }
    let correct = n.correct?;
    match cfg.train.reward {
        RewardKind::Binary => Some(if correct { 1.0 } else { 0.0 }),
        _ if correct => Some(1.0),
        kind => {
            if cfg.data.task != crate::engine::task::TaskKind::Countdown {
                return None;
            }
            let (nums, target) = crate::app::ground_truth::countdown_numbers(&t.prompt)?;
            let rules = Rules::countdown(crate::app::ground_truth::preset_rules(cfg));
            let p = Problem {
                id: t.problem.clone(),
                spec: Spec::Countdown(countdown::Instance::new(nums, target)),
            };
            Some(reward(kind, &verify(&p, &n.text, &rules), &p))
        }
    }
}

/// The order of the samples.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Order {
    #[default]
    Sampled,
    /// Highest reward first (then highest advantage).
    Top,
    /// Lowest reward first (then lowest advantage).
    Bottom,
    Longest,
    Shortest,
}

impl Order {
    fn next(self) -> Self {
        match self {
            Order::Sampled => Order::Top,
            Order::Top => Order::Bottom,
            Order::Bottom => Order::Longest,
            Order::Longest => Order::Shortest,
            Order::Shortest => Order::Sampled,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Order::Sampled => "as sampled",
            Order::Top => "reward, highest first",
            Order::Bottom => "reward, lowest first",
            Order::Longest => "longest first",
            Order::Shortest => "shortest first",
        }
    }
}

/// Which samples are listed.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Only {
    #[default]
    All,
    Wrong,
    Malformed,
}

impl Only {
    fn next(self) -> Self {
        match self {
            Only::All => Only::Wrong,
            Only::Wrong => Only::Malformed,
            Only::Malformed => Only::All,
        }
    }
    fn label(self) -> &'static str {
        match self {
            Only::All => "all",
            Only::Wrong => "wrong only",
            Only::Malformed => "malformed only",
        }
    }
    fn keeps(self, s: &Sample) -> bool {
        match self {
            Only::All => true,
            Only::Wrong => s.correct != Some(true),
            Only::Malformed => matches!(s.ending, Ending::Malformed(_)),
        }
    }
}

/// The samples of one problem of the iteration: which problem, the cursor, the order,
/// the filter and how many are kept (top or bottom k).
#[derive(Default)]
pub struct SamplesView {
    /// The problem shown (index into the iteration's trees).
    pub problem: usize,
    pub list: ListCursor,
    pub order: Order,
    pub only: Only,
    /// Only the first k of the order (None: all).
    pub k: Option<usize>,
}

/// k when `t` or `b` is first pressed.
const DEFAULT_K: usize = 5;

const KEYS: &[KeyHelp] = &[
    ListCursor::KEYS,
    KeyHelp::new("t", "top k by reward (+ - change k)").footer("top k"),
    KeyHelp::new("b", "bottom k by reward (+ - change k)").footer("bottom k"),
    KeyHelp::new("+ -", "one more / one fewer in the top or bottom k"),
    KeyHelp::new("a", "every sample again, as sampled (no k)"),
    KeyHelp::new(
        "s",
        "cycle order: as sampled, reward high / low first, longest, shortest",
    )
    .footer("sort"),
    KeyHelp::new("F", "cycle filter: all, wrong only, malformed only").footer("filter"),
    KeyHelp::new("Enter", "open the sample's end in the tree").footer("tree"),
    super::history::OPEN,
];

impl SamplesView {
    /// Shows problem `problem` with every sample, as sampled.
    pub fn open(&mut self, problem: usize) {
        *self = SamplesView {
            problem,
            ..SamplesView::default()
        };
    }

    /// After the iteration changed: the same problem number, cursor at the top.
    pub fn reset(&mut self, trees: usize) {
        self.problem = self.problem.min(trees.saturating_sub(1));
        self.list.sel = 0;
    }

    pub fn tree<'a>(&self, ctx: &Ctx<'a>) -> Option<&'a TreeRecord> {
        ctx.trees.get(self.problem)
    }

    /// The listed samples: filtered, ordered, cut to k.
    pub fn listed(&self, ctx: &Ctx) -> Vec<Sample> {
        let Some(t) = self.tree(ctx) else {
            return Vec::new();
        };
        let cfg = RunConfig::from_toml(&ctx.snapshot.run.config_toml).unwrap_or_default();
        let mut v: Vec<Sample> = samples(t, Caps::of(&cfg, t), &cfg)
            .into_iter()
            .filter(|s| self.only.keeps(s))
            .collect();
        let by_reward = |a: &Sample, b: &Sample| {
            let r = |s: &Sample| (s.reward.unwrap_or(-1.0), s.advantage.unwrap_or(0.0));
            let ((ra, aa), (rb, ab)) = (r(a), r(b));
            ra.total_cmp(&rb).then(aa.total_cmp(&ab))
        };
        match self.order {
            Order::Sampled => {}
            Order::Top => v.sort_by(|a, b| by_reward(b, a)),
            Order::Bottom => v.sort_by(by_reward),
            Order::Longest => v.sort_by_key(|s| std::cmp::Reverse(s.tokens)),
            Order::Shortest => v.sort_by_key(|s| s.tokens),
        }
        if let Some(k) = self.k {
            v.truncate(k);
        }
        v
    }

    fn keep(&mut self, order: Order) -> Action {
        self.order = order;
        let k = *self.k.get_or_insert(DEFAULT_K);
        self.list.sel = 0;
        let which = if order == Order::Bottom {
            "bottom"
        } else {
            "top"
        };
        Action::Say(format!("{which} {k} by reward"))
    }
}

impl View for SamplesView {
    fn keys(&self) -> &'static [KeyHelp] {
        KEYS
    }

    fn on_key(&mut self, key: KeyEvent, ctx: &Ctx) -> Action {
        let listed = self.listed(ctx);
        if self.list.on_key(key, listed.len()) {
            return Action::Done;
        }
        match key.code {
            KeyCode::Char('H') => Action::OpenHistory(self.problem),
            KeyCode::Char('t') => self.keep(Order::Top),
            KeyCode::Char('b') => self.keep(Order::Bottom),
            KeyCode::Char('+') | KeyCode::Char('-') => {
                let Some(k) = self.k else {
                    return Action::Say("t or b first: top or bottom k by reward".into());
                };
                let k = if key.code == KeyCode::Char('+') {
                    k + 1
                } else {
                    k.saturating_sub(1).max(1)
                };
                self.k = Some(k);
                Action::Say(format!("k = {k}"))
            }
            KeyCode::Char('a') => {
                (self.k, self.order) = (None, Order::Sampled);
                self.list.sel = 0;
                Action::Say("every sample".into())
            }
            KeyCode::Char('s') => {
                self.order = self.order.next();
                self.list.sel = 0;
                Action::Say(format!("sorted: {}", self.order.label()))
            }
            KeyCode::Char('F') => {
                self.only = self.only.next();
                self.list.sel = 0;
                Action::Say(format!("showing {}", self.only.label()))
            }
            KeyCode::Enter => match listed.get(self.list.at(listed.len())) {
                Some(s) => Action::OpenTree {
                    problem: self.problem,
                    node: Some(s.node),
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
        self.listed(ctx).len()
    }
}

/// "+1", "-1", or "-" for a path that did not end.
/// A reward: whole numbers as `+1`, `+0`, `-1`; others (the dense reward) to 2 places.
fn reward_text(x: Option<f32>) -> String {
    match x {
        Some(v) if (v - v.round()).abs() < 1e-6 => format!("{v:+.0}"),
        other => signed(other, 2),
    }
}

fn signed(x: Option<f32>, decimals: usize) -> String {
    x.map_or("-".into(), |v| format!("{v:+.decimals$}"))
}

fn draw(f: &mut Frame, area: Rect, view: &SamplesView, ctx: &Ctx) {
    let Some(t) = view.tree(ctx) else {
        f.render_widget(
            Paragraph::new("no problem at this iteration")
                .block(Block::default().borders(Borders::ALL)),
            area,
        );
        return;
    };
    let cfg = RunConfig::from_toml(&ctx.snapshot.run.config_toml).unwrap_or_default();
    let listed = view.listed(ctx);
    let total = samples(t, Caps::of(&cfg, t), &cfg).len();
    let truth = GroundTruth::of(&cfg, t).line();
    let [truth_area, list_area, detail_area] = Layout::vertical([
        Constraint::Length(3),
        Constraint::Percentage(55),
        Constraint::Min(4),
    ])
    .areas(area);
    f.render_widget(
        Paragraph::new(Line::from(vec![
            Span::styled("ground truth: ", ctx.theme.accent),
            Span::styled(truth, ctx.theme.correct),
        ]))
        .wrap(Wrap { trim: false })
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(super::fit_words(
                    &[
                        format!(
                            " {} {} · iteration {} · {:?} ",
                            t.problem,
                            t.prompt.trim_end(),
                            ctx.iteration,
                            t.source
                        ),
                        format!(" {} · it {} ", t.prompt.trim_end(), ctx.iteration),
                    ],
                    truth_area.width.saturating_sub(3) as usize,
                )),
        ),
        truth_area,
    );
    let row_width = list_area.width.saturating_sub(3) as usize;
    let items: Vec<ListItem> = listed
        .iter()
        .map(|s| {
            let style = match s.correct {
                Some(true) => ctx.theme.correct,
                Some(false) => ctx.theme.wrong,
                None => ctx.theme.text,
            };
            let mark = match s.correct {
                Some(true) => "✓",
                Some(false) => "✗",
                None => "○",
            };
            let mut spans = vec![
                Span::styled(format!("{mark} #{:<3} ", s.node), style),
                Span::styled(
                    format!(
                        "r {} adv {} tok {:<4} ",
                        reward_text(s.reward),
                        signed(s.advantage, 2),
                        s.tokens
                    ),
                    ctx.theme.muted,
                ),
                Span::styled(format!("{:<13}", s.ending.kind()), style),
            ];
            spans.extend(ctx.text_spans(s.text.replace('\n', "⏎"), 0, ctx.theme.text));
            ListItem::new(super::drop_words(Line::from(spans), row_width))
        })
        .collect();
    let kept = match view.k {
        Some(k) => format!(" · k {k}"),
        None => String::new(),
    };
    let (shown, only, order) = (listed.len(), view.only.label(), view.order.label());
    let title = super::fit_words(
        &[
            format!(" samples: {shown} of {total} · {only} · {order}{kept} "),
            format!(" {shown} of {total} · {only}{kept} "),
            format!(" {shown}/{total} "),
        ],
        list_area.width.saturating_sub(3) as usize,
    );
    let sel = view.list.at(listed.len());
    let mut state = ListState::default().with_selected(Some(sel));
    f.render_stateful_widget(
        List::new(items)
            .block(Block::default().borders(Borders::ALL).title(title))
            .highlight_style(ctx.theme.selected)
            .highlight_symbol(">"),
        list_area,
        &mut state,
    );
    super::record_hit(ctx, list_area, 1, state.offset());
    let detail = match listed.get(sel) {
        Some(s) => {
            let mut lines = vec![
                Line::styled(
                    format!(
                        "node {}  reward {}  advantage {}  {} tokens",
                        s.node,
                        reward_text(s.reward),
                        signed(s.advantage, 3),
                        s.tokens
                    ),
                    ctx.theme.accent,
                ),
                Line::from(format!("verifier: {}", s.ending.words())),
            ];
            lines.extend(s.text.lines().map(|l| Line::from(l.to_string())));
            lines
        }
        None => vec![Line::from(match view.only {
            Only::All => "no samples stored for this problem",
            _ => "no sample passes the filter (F cycles it)",
        })],
    };
    f.render_widget(
        Paragraph::new(detail)
            .wrap(Wrap { trim: false })
            .block(Block::default().borders(Borders::ALL).title(" sample ")),
        detail_area,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::app::explorer::Screen;
    use crate::app::test_app::{app, key, screen};
    use crate::engine::rl::record::NodeRecord;
    use crate::engine::task::countdown::{verify, Instance, Rules};

    /// A GRPO-like group of "2 8:10": a right answer, a wrong one, a malformed line and
    /// a long invalid one, judged by the real verifier.
    fn group() -> TreeRecord {
        let mut t = TreeRecord::direct("p7", "2 8:10\n");
        let p = Instance::new(vec![2, 8], 10);
        for (i, (text, adv, tokens)) in [
            ("2+8=10\nans 10", 0.75, 6),
            ("2*8=16\nans 16", -0.25, 2),
            ("2+8=1ans 1", -0.25, 9),
            ("2*8=16\n16-2=14\nans 14", -0.25, 14),
        ]
        .into_iter()
        .enumerate()
        {
            let v = verify(&p, text, &Rules::default());
            let right = v.reason == crate::engine::task::countdown::Reason::Correct;
            t.nodes.push(NodeRecord {
                text: text.into(),
                tokens: vec![1; tokens],
                terminal_value: Some(if right { 1.0 } else { -1.0 }),
                correct: Some(right),
                reason: Some(v.reason.to_string()),
                recorded: true,
                advantage: Some(adv),
                ..NodeRecord::blank(i as u32 + 1, Some(0), 1)
            });
        }
        t
    }

    fn rows(s: &str) -> Vec<&str> {
        s.lines().filter(|l| l.contains(" tok ")).collect()
    }

    /// Issue 27 item 4: `o` in the problems view opens every sample with its reward,
    /// advantage, tokens and ending, the exact solver's solution above them; t / b keep
    /// the top or bottom k by reward, s sorts by length, / keeps wrong or malformed ones.
    #[test]
    fn a_group_opens_by_prompt_with_ground_truth_and_sorts_and_filters() {
        let (_dir, mut app) = app();
        app.trees = vec![group()];
        app.screen = Screen::Problems;
        key(&mut app, KeyCode::Char('o'));
        assert_eq!(app.screen, Screen::Samples);
        for (w, h) in [(200, 60), (80, 24)] {
            let s = screen(&app, w, h);
            assert!(s.contains("ground truth: 2+8=10 · ans 10"), "{s}");
            assert_eq!(rows(&s).len(), 4, "{s}");
            // The tab of the problems view is the one lit; the footer has the keys.
            assert!(s.contains("t top k") && s.contains("b bottom k"), "{s}");
        }
        let s = screen(&app, 200, 60);
        let r = rows(&s);
        assert!(
            r[0].contains("✓ #1") && r[0].contains("r +1 adv +0.75 tok 6"),
            "{s}"
        );
        assert!(r[0].contains("right answer"), "{s}");
        assert!(
            r[1].contains("r +0 adv -0.25 tok 2") && r[1].contains("wrong answer"),
            "{s}"
        );
        assert!(r[2].contains("malformed"), "{s}");
        assert!(r[3].contains("invalid"), "{s}");
        // The selected sample's verdict in the verifier's words.
        assert!(s.contains("verifier: right answer"), "{s}");
        key(&mut app, KeyCode::Char('j'));
        let s = screen(&app, 200, 60);
        assert!(s.contains("verifier: wrong answer: reaches 16"), "{s}");

        // Bottom 2 by reward: two wrong ones, lowest advantage first; + grows k.
        key(&mut app, KeyCode::Char('b'));
        key(&mut app, KeyCode::Char('-'));
        key(&mut app, KeyCode::Char('-'));
        key(&mut app, KeyCode::Char('-'));
        let s = screen(&app, 80, 24);
        assert_eq!(rows(&s).len(), 2, "{s}");
        assert!(rows(&s).iter().all(|r| r.contains("✗")), "{s}");
        key(&mut app, KeyCode::Char('+'));
        assert_eq!(rows(&screen(&app, 200, 60)).len(), 3);
        // Top 3: the right one first.
        key(&mut app, KeyCode::Char('t'));
        let s = screen(&app, 200, 60);
        assert!(rows(&s)[0].contains("✓ #1"), "{s}");
        key(&mut app, KeyCode::Char('a'));
        // Longest first, then shortest.
        key(&mut app, KeyCode::Char('s'));
        key(&mut app, KeyCode::Char('s'));
        key(&mut app, KeyCode::Char('s'));
        let s = screen(&app, 200, 60);
        assert!(rows(&s)[0].contains("tok 14"), "{s}");
        key(&mut app, KeyCode::Char('s'));
        assert!(rows(&screen(&app, 200, 60))[0].contains("tok 2 "));
        // Wrong only, then malformed only.
        key(&mut app, KeyCode::Char('F'));
        let s = screen(&app, 200, 60);
        assert_eq!(rows(&s).len(), 3, "{s}");
        key(&mut app, KeyCode::Char('F'));
        let s = screen(&app, 80, 24);
        assert_eq!(rows(&s).len(), 1, "{s}");
        assert!(s.contains("malformed"), "{s}");
        // Enter opens the sample's end in the tree; Esc goes back to the problems.
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.screen, Screen::Tree);
        assert_eq!(app.selected_node(), Some(3));
        key(&mut app, KeyCode::Esc);
        assert_eq!(app.screen, Screen::Problems);
    }

    /// A tree's samples are its recorded paths, each read from the root with its steps'
    /// tokens summed.
    #[test]
    fn a_trees_samples_are_its_recorded_paths() {
        let mut t = TreeRecord::direct("p", "2 8:10\n");
        t.source = crate::engine::rl::record::GroupSource::Search;
        let mut step = NodeRecord::blank(1, Some(0), 1);
        step.text = "2+8=10".into();
        step.tokens = vec![1; 4];
        let mut end = NodeRecord::blank(2, Some(1), 2);
        end.text = "ans 10".into();
        end.tokens = vec![1; 3];
        end.terminal_value = Some(1.0);
        end.correct = Some(true);
        end.recorded = true;
        end.advantage = Some(0.5);
        t.nodes.extend([step, end]);
        let s = samples(&t, Caps::default(), &RunConfig::default());
        assert_eq!(s.len(), 1);
        assert_eq!(
            (s[0].node, s[0].text.as_str(), s[0].tokens),
            (2, "2+8=10\nans 10", 7)
        );
        assert_eq!(s[0].ending, Ending::RightAnswer);
    }

    /// A sampled group stores +1 / -1 for right / wrong; the samples show the reward the
    /// method trained with: 0 for a wrong answer under the binary reward, the distance
    /// reward under the dense one (2*8=16 for 10: 1 - 2 * 6/10 = -0.2).
    #[test]
    fn a_groups_samples_show_the_reward_they_were_trained_with() {
        let mut t = TreeRecord::direct("p", "2 8:10\n");
        let mut wrong = NodeRecord::blank(1, Some(0), 1);
        wrong.text = "2*8=16\nans 16".into();
        wrong.terminal_value = Some(-1.0);
        wrong.correct = Some(false);
        wrong.recorded = true;
        let mut right = NodeRecord::blank(2, Some(0), 1);
        right.text = "2+8=10\nans 10".into();
        right.terminal_value = Some(1.0);
        right.correct = Some(true);
        right.recorded = true;
        t.nodes.extend([wrong, right]);
        let mut cfg = RunConfig::default();
        let rewards = |cfg: &RunConfig| -> Vec<Option<f32>> {
            samples(&t, Caps::default(), cfg)
                .iter()
                .map(|s| s.reward)
                .collect()
        };
        assert_eq!(rewards(&cfg), vec![Some(0.0), Some(1.0)]);
        cfg.train.reward = crate::engine::task::RewardKind::Dense;
        let r = rewards(&cfg);
        assert!((r[0].unwrap() + 0.2).abs() < 1e-6, "{r:?}");
        assert_eq!(r[1], Some(1.0));
        assert_eq!(reward_text(r[0]), "-0.20");
        assert_eq!(reward_text(Some(0.0)), "+0");
    }
}
