//! Text search over a run's samples and tree nodes: `/` searches the iteration on screen,
//! Tab in the search line the whole run (which iterations hold a step or an answer).
//! Matches are highlighted wherever a node's text is drawn, and `n` / `N` go to the
//! next / previous match's node in the tree view.
use ratatui::style::Style;
use ratatui::text::Span;

use super::explorer::{App, Modal, Screen};
use crate::engine::rl::record::TreeRecord;
use crate::store::StoreError;

/// One node whose text holds the query.
#[derive(Clone, Debug, PartialEq)]
pub struct Hit {
    pub iteration: u64,
    /// The problem's id, and its index among that iteration's trees.
    pub problem: String,
    pub index: usize,
    pub node: u32,
    /// The node's text (the prompt for the root).
    pub text: String,
}

/// The last search run and the match on screen.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Search {
    pub query: String,
    /// Searched every iteration, not only the one on screen.
    pub run_wide: bool,
    pub hits: Vec<Hit>,
    /// The match `n` / `N` last went to (none yet: `n` goes to the first).
    pub at: Option<usize>,
}

impl Search {
    /// The iterations holding a match, each with its number of matches, oldest first.
    pub fn iterations(&self) -> Vec<(u64, usize)> {
        let mut out: Vec<(u64, usize)> = Vec::new();
        for h in &self.hits {
            match out.last_mut() {
                Some((it, n)) if *it == h.iteration => *n += 1,
                _ => out.push((h.iteration, 1)),
            }
        }
        out
    }
}

/// Where `query` occurs in `text`, ignoring case: byte ranges of `text`.
pub fn find(text: &str, query: &str) -> Vec<(usize, usize)> {
    if query.is_empty() {
        return Vec::new();
    }
    let (hay, needle) = (text.to_lowercase(), query.to_lowercase());
    // Lowercasing may change byte lengths outside ASCII; such text is matched as a whole.
    if hay.len() != text.len() {
        return if hay.contains(&needle) {
            vec![(0, text.len())]
        } else {
            Vec::new()
        };
    }
    hay.match_indices(&needle)
        .map(|(i, m)| (i, i + m.len()))
        .collect()
}

/// The nodes of `trees` (iteration `iteration`) whose text holds `query`.
pub fn hits_in(iteration: u64, trees: &[TreeRecord], query: &str) -> Vec<Hit> {
    let mut hits = Vec::new();
    for (index, t) in trees.iter().enumerate() {
        for n in &t.nodes {
            let text = if n.id == 0 { &t.prompt } else { &n.text };
            if !find(text, query).is_empty() {
                hits.push(Hit {
                    iteration,
                    problem: t.problem.clone(),
                    index,
                    node: n.id,
                    text: text.trim_end().to_string(),
                });
            }
        }
    }
    hits
}

/// `text` as spans in `base`, the parts matching `query` in `hit`.
pub fn highlight(text: String, query: Option<&str>, base: Style, hit: Style) -> Vec<Span<'static>> {
    let found = query.map(|q| find(&text, q)).unwrap_or_default();
    if found.is_empty() {
        return vec![Span::styled(text, base)];
    }
    let mut spans = Vec::new();
    let mut at = 0;
    for (a, b) in found {
        if a > at {
            spans.push(Span::styled(text[at..a].to_string(), base));
        }
        spans.push(Span::styled(text[a..b].to_string(), hit));
        at = b;
    }
    if at < text.len() {
        spans.push(Span::styled(text[at..].to_string(), base));
    }
    spans
}

impl App {
    /// Runs the search typed in the search line.
    pub(crate) fn run_search(&mut self, query: &str, run_wide: bool) -> Result<(), StoreError> {
        let query = query.trim().to_string();
        if query.is_empty() {
            self.search = None;
            self.message = "search cleared".into();
            return Ok(());
        }
        let hits = if run_wide {
            let mut hits = Vec::new();
            self.each_iteration(|it, trees| hits.extend(hits_in(it, trees, &query)))?;
            hits
        } else {
            hits_in(self.iteration, &self.trees, &query)
        };
        let search = Search {
            query,
            run_wide,
            hits,
            at: None,
        };
        let iterations = search.iterations().len();
        let scope = if run_wide {
            format!("the run ({iterations} iterations)")
        } else {
            format!("iteration {}", self.iteration)
        };
        self.message = match search.hits.len() {
            0 => format!("no match for {:?} in {scope}", search.query),
            n => format!("{n} matches for {:?} in {scope}; n / N move", search.query),
        };
        let first = !search.hits.is_empty();
        self.search = Some(search);
        if run_wide {
            self.views.search.list.sel = 0;
            self.screen = Screen::Search;
        } else if first {
            self.go_to_hit(0)?;
        }
        Ok(())
    }

    /// `n` / `N`: the next / previous match, opened in the tree view.
    pub(crate) fn next_hit(&mut self, forward: bool) -> Result<(), StoreError> {
        let Some(s) = &self.search else {
            self.message = "no search yet: / searches this iteration's texts".into();
            return Ok(());
        };
        let len = s.hits.len();
        if len == 0 {
            self.message = format!("no match for {:?}", s.query);
            return Ok(());
        }
        let to = match (s.at, forward) {
            (None, true) => 0,
            (None, false) => len - 1,
            (Some(k), true) => (k + 1) % len,
            (Some(k), false) => (k + len - 1) % len,
        };
        self.go_to_hit(to)
    }

    /// Opens match `k` of the search: its iteration (held), its tree, the cursor on it.
    pub(crate) fn go_to_hit(&mut self, k: usize) -> Result<(), StoreError> {
        let Some(hit) = self.search.as_ref().and_then(|s| s.hits.get(k)).cloned() else {
            return Ok(());
        };
        if let Some(s) = self.search.as_mut() {
            s.at = Some(k);
        }
        self.hold_still();
        self.goto(hit.iteration)?;
        let (views, ctx) = self.split();
        // Every node shown, so the match is listed.
        views.tree.filter = crate::app::filters::NodeFilter::All;
        views.tree.replay = None;
        views.tree.open(hit.index, Some(hit.node), &ctx);
        self.screen = Screen::Tree;
        let len = self.search.as_ref().map_or(0, |s| s.hits.len());
        self.message = format!(
            "match {} of {len}: iteration {}, {}, node {}",
            k + 1,
            hit.iteration,
            hit.problem,
            hit.node
        );
        Ok(())
    }

    /// A key in the search line being typed (`modal` taken out of the App).
    pub(crate) fn search_line_key(
        &mut self,
        mut text: String,
        mut run_wide: bool,
        key: crossterm::event::KeyEvent,
    ) -> Result<(), StoreError> {
        use crossterm::event::KeyCode;
        match key.code {
            KeyCode::Esc => return Ok(()),
            KeyCode::Enter => return self.run_search(&text, run_wide),
            KeyCode::Tab | KeyCode::BackTab => run_wide = !run_wide,
            KeyCode::Backspace => {
                text.pop();
            }
            KeyCode::Char(c) => text.push(c),
            _ => {}
        }
        self.modal = Some(Modal::Search { text, run_wide });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_ignore_case_and_are_highlighted_in_place() {
        assert_eq!(find("2+8=10\nANS 10", "ans"), vec![(7, 10)]);
        assert_eq!(find("ans 10 ans", "ANS"), vec![(0, 3), (7, 10)]);
        assert!(find("abc", "").is_empty());
        let hit = Style::default().add_modifier(ratatui::style::Modifier::REVERSED);
        let spans = highlight("x ans y".into(), Some("ans"), Style::default(), hit);
        let parts: Vec<&str> = spans.iter().map(|s| s.content.as_ref()).collect();
        assert_eq!(parts, ["x ", "ans", " y"]);
        assert_eq!(spans[1].style, hit);
    }
}

#[cfg(test)]
mod app_tests {
    use crossterm::event::KeyCode;
    use ratatui::backend::TestBackend;
    use ratatui::style::Modifier;
    use ratatui::Terminal;

    use crate::app::explorer::{App, Screen};
    use crate::app::test_app::{app_with, key, screen};
    use crate::engine::rl::record::{NodeRecord, TreeRecord};

    fn group(problem: &str, texts: &[&str]) -> TreeRecord {
        let mut t = TreeRecord::direct(problem, "2 8:10\n");
        for (i, text) in texts.iter().enumerate() {
            t.nodes.push(NodeRecord {
                text: text.to_string(),
                recorded: true,
                terminal_value: Some(-1.0),
                correct: Some(false),
                ..NodeRecord::blank(i as u32 + 1, Some(0), 1)
            });
        }
        t
    }

    fn typed(app: &mut App, text: &str) {
        key(app, KeyCode::Char('/'));
        for c in text.chars() {
            key(app, KeyCode::Char(c));
        }
    }

    /// The cells of the screen drawn reversed (search matches; the cursor row is not).
    fn reversed(app: &App, w: u16, h: u16) -> String {
        let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
        t.draw(|f| crate::app::views::draw(f, app)).unwrap();
        let buf = t.backend().buffer().clone();
        (0..h)
            .flat_map(|y| (0..w).map(move |x| (x, y)))
            .filter(|&(x, y)| buf[(x, y)].modifier.contains(Modifier::REVERSED))
            .map(|(x, y)| buf[(x, y)].symbol().to_string())
            .collect()
    }

    /// Issue 27 item 6: `/` searches this iteration's texts and opens the first match in
    /// the tree, highlighted; n / N move between matches; Tab in the line searches the
    /// whole run and lists the iterations that hold the text, Enter opens a match there.
    #[test]
    fn search_this_iteration_and_the_run_with_highlights_and_n() {
        let (_dir, mut app) = app_with(vec![
            vec![group("p1", &["2*8=16\nans 16", "ans 2"])],
            vec![group("p1", &["ans 3"])],
            vec![
                group("p1", &["8-2=6\nans 6"]),
                group("p2", &["ans 16", "8+8=16\nans 16"]),
            ],
        ]);
        assert_eq!(app.iteration, 3);
        typed(&mut app, "ANS 16");
        // The line is in the footer while it is typed.
        assert!(screen(&app, 80, 24).contains("/ANS 16"));
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.screen, Screen::Tree);
        assert_eq!(app.search.as_ref().unwrap().hits.len(), 2);
        assert_eq!(
            (app.tree().unwrap().problem.as_str(), app.selected_node()),
            ("p2", Some(1))
        );
        for (w, h) in [(200, 60), (80, 24)] {
            let s = screen(&app, w, h);
            assert!(s.contains("match 1 of 2"), "{s}");
            // Both matches of the tree drawn highlighted.
            assert_eq!(reversed(&app, w, h).matches("ans 16").count(), 2, "{s}");
        }
        key(&mut app, KeyCode::Char('n'));
        assert_eq!(app.selected_node(), Some(2));
        key(&mut app, KeyCode::Char('n'));
        assert_eq!(app.selected_node(), Some(1));
        key(&mut app, KeyCode::Char('N'));
        assert_eq!(app.selected_node(), Some(2));

        // The whole run: iterations 1 and 3 hold it.
        typed(&mut app, "ans 16");
        key(&mut app, KeyCode::Tab);
        assert!(screen(&app, 80, 24).contains("search the whole run"));
        key(&mut app, KeyCode::Enter);
        assert_eq!(app.screen, Screen::Search);
        for (w, h) in [(200, 60), (80, 24)] {
            let s = screen(&app, w, h);
            assert!(s.contains("3 matches in 2 of 3 iterations"), "{s}");
            assert!(s.contains("iterations (matches): 1 (1), 3 (2)"), "{s}");
            assert!(reversed(&app, w, h).contains("ans 16"), "{s}");
        }
        // Enter on the first match opens iteration 1's tree at it, holding it.
        key(&mut app, KeyCode::Enter);
        assert_eq!((app.iteration, app.screen), (1, Screen::Tree));
        assert_eq!(app.selected_node(), Some(1));
        assert!(!app.following);
        key(&mut app, KeyCode::Char('n'));
        assert_eq!(
            (app.iteration, app.tree().unwrap().problem.as_str()),
            (3, "p2")
        );
        // A search with no match says so and moves nothing.
        typed(&mut app, "zzz");
        key(&mut app, KeyCode::Enter);
        assert!(app.message.contains("no match for \"zzz\" in iteration 3"));
    }
}
