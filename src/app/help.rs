//! The help popup and the key footer, both built from the key tables: [`GLOBAL_KEYS`] and
//! the current view's [`View::keys`] and legend, so neither can drift from what the keys
//! do. Both wrap to the terminal's width instead of cutting text off.
//!
//! [`View::keys`]: super::views::View::keys
//! [`GLOBAL_KEYS`]: super::keys::GLOBAL_KEYS
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph};
use ratatui::Frame;

use super::explorer::{App, Modal, Screen};
use super::keys::global_help;
use super::views::{centered, KeyHelp, Views};

/// A titled group of help entries, (keys or symbol, meaning).
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    pub title: String,
    pub entries: Vec<(String, String)>,
}

/// The widest key column; longer key labels wrap inside it.
const KEY_COLUMN: usize = 22;

impl App {
    /// Whether this explorer may steer a live run: its keys (pause, retune, ...) work
    /// (not for a read-only viewer).
    pub(crate) fn can_steer(&self) -> bool {
        self.live.as_ref().is_some_and(|l| !l.readonly()) && self.finished.is_none()
    }

    /// What the help popup lists: the keys of every view, the current view's keys, and
    /// its legend.
    pub fn help_sections(&self) -> Vec<Section> {
        let running = self.can_steer();
        let entries = |keys: &mut dyn Iterator<Item = &KeyHelp>| -> Vec<(String, String)> {
            keys.filter(|k| k.active(running))
                .map(|k| (k.keys.to_string(), k.does.to_string()))
                .collect()
        };
        let view = self.views.get(self.screen);
        let mut v = vec![
            Section {
                title: "every view".into(),
                entries: entries(&mut global_help()),
            },
            Section {
                title: self.screen.title().into(),
                entries: entries(&mut view.keys().iter()),
            },
        ];
        if let Some(l) = view.legend() {
            v.push(Section {
                title: l.title.into(),
                entries: l.entries,
            });
        }
        v
    }

    /// The footer's items, "KEY label": the first key of each entry marked for it, of
    /// every view and then of the current one.
    pub fn footer_items(&self) -> Vec<String> {
        let running = self.can_steer();
        global_help()
            .chain(self.views.get(self.screen).keys())
            .filter(|k| k.active(running))
            .filter_map(|k| {
                let first = k.keys.split(", ").next().unwrap_or(k.keys);
                k.footer.map(|label| format!("{first} {label}"))
            })
            .collect()
    }

    /// The footer at `width` columns: the command being typed; or the last message (at
    /// most two lines) above the keys, packed into as many lines as they need.
    pub fn footer_lines(&self, width: u16) -> Vec<Line<'static>> {
        let width = (width as usize).max(1);
        match &self.modal {
            Some(Modal::Command(cmd)) => {
                return vec![Line::styled(format!(":{cmd}"), self.theme.accent)]
            }
            Some(Modal::Search { text, run_wide }) => {
                let scope = if *run_wide {
                    "the whole run; Tab: this iteration"
                } else {
                    "this iteration; Tab: the whole run"
                };
                return vec![
                    Line::styled(format!("/{text}"), self.theme.accent),
                    Line::styled(
                        format!("search {scope}; Enter searches, Esc cancels"),
                        self.theme.muted,
                    ),
                ];
            }
            _ => {}
        }
        let mut lines: Vec<Line> = wrap(&self.message, width)
            .into_iter()
            .take(2)
            .map(|l| Line::styled(l, self.theme.text))
            .collect();
        lines.extend(
            pack(&self.footer_items(), width)
                .into_iter()
                .map(|l| Line::styled(l, self.theme.muted)),
        );
        lines
    }

    /// The help popup, as wide as its longest line allows up to the screen's width, and
    /// scrolled by `help_scroll` where it is taller than the screen.
    pub(crate) fn draw_help(&self, f: &mut Frame) {
        let sections = self.help_sections();
        let area = f.area();
        let width = natural_width(&sections).min(area.width as usize) as u16;
        let lines = self.help_lines(&sections, width.saturating_sub(2) as usize);
        let popup = centered(area, width, lines.len() as u16 + 2);
        let inner = popup.height.saturating_sub(2) as usize;
        let max = lines.len().saturating_sub(inner);
        self.help_max_scroll.set(max);
        let top = self.help_scroll().min(max);
        let title = if max > 0 {
            format!(
                " keys {}-{} of {} · j k scroll · Esc closes ",
                top + 1,
                top + inner,
                lines.len()
            )
        } else {
            " keys · Esc closes ".to_string()
        };
        let shown: Vec<Line> = lines.into_iter().skip(top).take(inner).collect();
        f.render_widget(Clear, popup);
        f.render_widget(
            Paragraph::new(shown).block(Block::default().borders(Borders::ALL).title(title)),
            popup,
        );
    }

    /// The help as lines of at most `width` columns: each section's title, then its
    /// entries with the keys in a column and the meaning wrapped beside them.
    pub fn help_lines(&self, sections: &[Section], width: usize) -> Vec<Line<'static>> {
        let keys_w = key_column(sections).min(width / 3).max(1);
        // One column is left free before the right border.
        let does_w = width.saturating_sub(keys_w + 2).max(1);
        let mut out = Vec::new();
        for s in sections {
            for l in wrap(&s.title, width) {
                out.push(Line::styled(l, self.theme.selected));
            }
            for (keys, does) in &s.entries {
                let k = wrap(keys, keys_w);
                let d = wrap(does, does_w);
                for i in 0..k.len().max(d.len()) {
                    let key = k.get(i).map_or("", String::as_str);
                    let pad = keys_w.saturating_sub(key_width(key));
                    out.push(Line::from(vec![
                        Span::styled(format!("{key}{} ", " ".repeat(pad)), self.theme.accent),
                        Span::styled(d.get(i).cloned().unwrap_or_default(), self.theme.text),
                    ]));
                }
            }
        }
        out
    }
}

/// The first and last line of the key list in docs/explorer.md, generated by
/// [`keys_markdown`].
pub const DOCS_BEGIN: &str =
    "<!-- keys: generated from the key tables (src/app/keys.rs and each view's \
     KEYS); `ARBOR_BLESS=1 cargo test --lib app::keys` regenerates this list -->";
pub const DOCS_END: &str = "<!-- end of the generated keys -->";

/// The keys of every view and then each view's, as Markdown tables, for docs/explorer.md.
pub fn keys_markdown() -> String {
    let views = Views::default();
    let mut out = String::new();
    let mut table = |title: &str, keys: &mut dyn Iterator<Item = &KeyHelp>| {
        out.push_str(&format!("\n**{title}**\n\n| key | action |\n|---|---|\n"));
        for k in keys {
            let live = if k.live_only { " (live run)" } else { "" };
            out.push_str(&format!(
                "| `{}` | {}{live} |\n",
                k.keys,
                k.does.replace('|', "\\|")
            ));
        }
    };
    table("Every view", &mut global_help());
    for s in Screen::EVERY {
        table(s.title(), &mut views.get(s).keys().iter());
    }
    out
}

/// Display width of `s` in terminal columns.
fn key_width(s: &str) -> usize {
    Span::raw(s).width()
}

/// The key column: as wide as the widest key label, at most [`KEY_COLUMN`].
fn key_column(sections: &[Section]) -> usize {
    sections
        .iter()
        .flat_map(|s| &s.entries)
        .map(|(k, _)| key_width(k))
        .max()
        .unwrap_or(1)
        .min(KEY_COLUMN)
}

/// The popup's width with no line wrapped (borders included), at least 40.
fn natural_width(sections: &[Section]) -> usize {
    let keys = key_column(sections);
    let entries = sections
        .iter()
        .flat_map(|s| &s.entries)
        .map(|(_, d)| keys + 2 + key_width(d));
    let titles = sections.iter().map(|s| key_width(&s.title));
    entries.chain(titles).max().unwrap_or(0).max(38) + 2
}

/// `items` two spaces apart in lines of at most `width` columns, never splitting an item
/// that fits a line.
pub fn pack(items: &[String], width: usize) -> Vec<String> {
    let mut lines: Vec<String> = Vec::new();
    let mut line = String::new();
    for item in items {
        if !line.is_empty() && key_width(&line) + 2 + key_width(item) > width {
            lines.push(std::mem::take(&mut line));
        }
        if key_width(item) > width {
            lines.extend(wrap(item, width));
            continue;
        }
        if !line.is_empty() {
            line.push_str("  ");
        }
        line.push_str(item);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `text` broken at spaces into lines of at most `width` columns; a word wider than a
/// line is split. Empty text gives no lines.
pub fn wrap(text: &str, width: usize) -> Vec<String> {
    let width = width.max(1);
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        let mut word = word.to_string();
        // A word that fits no line is cut into pieces that do.
        while key_width(&word) > width {
            if !line.is_empty() {
                lines.push(std::mem::take(&mut line));
            }
            let cut: String = word
                .chars()
                .scan(0, |w, c| {
                    *w += key_width(&c.to_string());
                    (*w <= width).then_some(c)
                })
                .collect();
            // A character wider than the line still goes on one.
            let cut = if cut.is_empty() {
                word.chars().take(1).collect()
            } else {
                cut
            };
            word = word[cut.len()..].to_string();
            lines.push(cut);
        }
        let needed = if line.is_empty() { 0 } else { 1 } + key_width(&word);
        if !line.is_empty() && key_width(&line) + needed > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(&word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_every_word_within_the_width() {
        let text = "cycle: all nodes, terminals, recorded, confident-wrong path";
        for w in [1, 5, 12, 20, 80] {
            let lines = wrap(text, w);
            assert!(lines.iter().all(|l| key_width(l) <= w), "{w}: {lines:?}");
            if w >= 15 {
                assert_eq!(lines.join(" "), text);
            }
        }
        assert_eq!(wrap("a ✓ ✗", 3), vec!["a ✓", "✗"]);
        assert!(wrap("", 10).is_empty());
        assert_eq!(wrap("abcdef", 4), vec!["abcd", "ef"]);
    }

    #[test]
    fn pack_keeps_items_whole() {
        let items: Vec<String> = ["q quit", "? help", "1-5 views"].map(String::from).into();
        assert_eq!(pack(&items, 80), vec!["q quit  ? help  1-5 views"]);
        assert_eq!(pack(&items, 15), vec!["q quit  ? help", "1-5 views"]);
        assert_eq!(
            pack(&items, 5),
            vec!["q", "quit", "?", "help", "1-5", "views"]
        );
    }
}
