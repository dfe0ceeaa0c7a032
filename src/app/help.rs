//! The help popup's content: the keys valid in the current view.
use super::explorer::{App, Screen};

impl App {
    /// Keys valid in the current view, for the help popup.
    pub fn help_lines(&self) -> Vec<(&'static str, &'static str)> {
        let mut v = vec![
            ("q, Ctrl-C", "quit (asks before stopping a live run)"),
            ("p", "pause / resume (at a safe point)"),
            (
                ":",
                "command: set KEY VALUE, goto iter N, checkpoint, skip ID",
            ),
            (
                "r",
                "retune form: edit settings, Enter applies, Esc cancels",
            ),
            ("c", "checkpoint now"),
            ("f", "freeze / follow the newest iteration"),
            ("?, F1", "this help (Esc closes)"),
            ("1-5, Tab", "dashboard, problems, tree, wrong, compare"),
            ("[ ], Left Right", "previous / next iteration (replay)"),
            ("L", "newest iteration"),
            ("Esc", "back one level"),
            ("e, z", "maximize the main pane"),
        ];
        match self.screen {
            Screen::Dashboard => v.push(("Enter", "problems of this iteration")),
            Screen::Problems => {
                v.push(("j k, arrows, g g, G", "move"));
                v.push(("/", "cycle filter: all, solved, wrong only, cached"));
                v.push(("s", "cycle sort: batch order, success, tree size"));
                v.push(("Enter", "open the problem's tree"));
            }
            Screen::Tree => {
                v.push(("j k, arrows, PgUp/PgDn", "move"));
                v.push(("Space", "fold / unfold the node"));
                v.push((
                    "/",
                    "cycle: all nodes, terminals, recorded, confident-wrong path",
                ));
                v.push(("h l, Left Right", "fold / unfold"));
                v.push(("Shift-Left/Right", "fold / unfold the whole subtree"));
                v.push(("< >", "replay the search: previous / next expansion"));
                v.push(("✓ ✗ !", "correct, wrong, confident-wrong path"));
                v.push(("[invalid] [forced]", "step judged invalid / one legal step"));
                v.push(("xN merged", "N identical samples in one node"));
                v.push((
                    "P V [distilled]",
                    "tree_distill: prior, value estimate, most-visited path",
                ));
            }
            Screen::Wrong => {
                v.push(("j k", "move"));
                v.push(("Enter", "open the path in its tree"));
            }
            Screen::Compare => {
                v.push(("j k", "move"));
                v.push(("Enter", "open the run (replay)"));
            }
        }
        v
    }
}
