//! Unit tests' explorer: an App on a store holding one run with no iteration yet (no
//! training needed), and its screen drawn into ratatui's TestBackend.
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

use super::explorer::App;
use super::theme::Theme;
use super::views::draw;
use crate::engine::rl::record::TreeRecord;
use crate::engine::training::config::RunConfig;
use crate::engine::training::records::IterationMetrics;
use crate::store::keys::tree_key;
use crate::store::{RunRecord, Store};

/// An App on run "unit" of a fresh store; the folder must outlive it.
pub fn app() -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sled")).unwrap();
    let run = RunRecord::new("unit", "deepsearch", 1, RunConfig::default().to_toml());
    store.create_run(&run).unwrap();
    let app = App::open(store, "unit", Theme::load("mono").unwrap()).unwrap();
    (dir, app)
}

/// An App on run "unit" whose iterations 1, 2, ... hold these trees, at the newest.
pub fn app_with(iterations: Vec<Vec<TreeRecord>>) -> (tempfile::TempDir, App) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sled")).unwrap();
    let run = RunRecord::new("unit", "deepsearch", 1, RunConfig::default().to_toml());
    store.create_run(&run).unwrap();
    for (i, trees) in iterations.into_iter().enumerate() {
        let it = i as u64 + 1;
        let extra = trees
            .iter()
            .enumerate()
            .map(|(k, t)| {
                (
                    tree_key("unit", it, k as u32),
                    postcard::to_allocvec(t).unwrap(),
                )
            })
            .collect();
        let metrics = IterationMetrics {
            iteration: it,
            ..IterationMetrics::default()
        };
        store.commit_iteration(&run, it, &metrics, extra).unwrap();
    }
    let app = App::open(store, "unit", Theme::load("mono").unwrap()).unwrap();
    (dir, app)
}

/// The screen at `w` x `h`, one line per row.
pub fn screen(app: &App, w: u16, h: u16) -> String {
    let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
    t.draw(|f| draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..h)
        .map(|y| (0..w).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect()
}

pub fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}
