//! The explorer driven by scripted keys while a real trainer runs in the same process.
use std::time::{Duration, Instant};

use arbor::app::explorer::App;
use arbor::app::theme::Theme;
use arbor::app::views::draw;
use arbor::engine::config::{Method, RunConfig};
use arbor::engine::control::{Directive, EventKind, StopReason};
use arbor::engine::sink::Phase;
use arbor::engine::split;
use arbor::store::sink::StoreSink;
use arbor::store::{RunRecord, Store};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

fn key(app: &mut App, code: KeyCode) {
    app.on_key(KeyEvent::new(code, KeyModifiers::NONE));
}

fn command(app: &mut App, line: &str) {
    key(app, KeyCode::Char(':'));
    for c in line.chars() {
        key(app, KeyCode::Char(c));
    }
    key(app, KeyCode::Enter);
}

/// Pumps notifications until `done` holds (or fails after a generous timeout).
fn wait(app: &mut App, what: &str, mut done: impl FnMut(&App) -> bool) {
    let start = Instant::now();
    while !done(app) {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out waiting for {what}"
        );
        app.pump().unwrap();
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn screen(app: &App) -> String {
    let mut t = Terminal::new(TestBackend::new(100, 30)).unwrap();
    t.draw(|f| draw(f, app)).unwrap();
    let buf = t.backend().buffer().clone();
    (0..30)
        .map(|y| (0..100).map(|x| buf[(x, y)].symbol()).collect::<String>() + "\n")
        .collect()
}

#[test]
fn pause_retune_refuse_replay_and_stop_while_training() {
    let mut cfg = RunConfig {
        method: Method::DeepSearch,
        ..RunConfig::default()
    };
    cfg.data.train_size = 200;
    cfg.data.test_size = 8;
    cfg.policy.hidden_size = 32;
    cfg.policy.intermediate_size = 64;
    cfg.policy.num_hidden_layers = 1;
    cfg.policy.num_attention_heads = 2;
    cfg.policy.num_key_value_heads = 1;
    cfg.warm_start.steps = 20;
    cfg.warm_start.batch_size = 16;
    cfg.train.iterations = 100_000;
    cfg.train.problems_per_step = 2;
    cfg.search.width = 3;
    cfg.search.n = 3;
    cfg.adaptive.steps_per_round = 1000;
    cfg.eval.k = 2;
    cfg.eval.every = 0;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sled")).unwrap();
    let run = RunRecord::new("live", "deepsearch", 1, cfg.to_toml());
    store.create_run(&run).unwrap();
    let data = split::load(&cfg.data).unwrap();
    let handle = arbor::app::live::start(
        cfg,
        data,
        StoreSink {
            store: store.clone(),
            run,
        },
    );
    let mut app = App::open(store.clone(), "live", Theme::load("mono").unwrap()).unwrap();
    app.live = Some(handle);

    wait(&mut app, "two iterations", |a| {
        a.snapshot.last_iteration() >= 2
    });
    assert_eq!(
        app.iteration,
        app.snapshot.last_iteration(),
        "live mode follows the newest"
    );

    // Pause: takes effect at the next safe point, shown in words, and holds.
    key(&mut app, KeyCode::Char('p'));
    wait(&mut app, "the pause", |a| a.paused);
    let at = app.snapshot.last_iteration();
    assert!(screen(&app).contains("PAUSED"));
    std::thread::sleep(Duration::from_millis(600));
    app.pump().unwrap();
    let held = store.require_run("live").unwrap().last_iteration;
    assert!(held <= at + 1, "paused at {at} but reached {held}");
    let events = store.events("live").unwrap();
    assert!(events.iter().any(|e| e.kind == EventKind::Pause));

    // A good retune is applied at the safe point and recorded with old and new values.
    command(&mut app, "set c_uct 1.5");
    assert!(app.message.contains("2 -> 1.5"), "{}", app.message);
    // A bad one is refused with its reason and changes nothing.
    command(&mut app, "set lr -1");
    assert!(
        app.message.contains("refused") && app.message.contains("train.lr"),
        "{}",
        app.message
    );
    command(&mut app, "set gamma 3");
    assert!(app.message.contains("cannot be retuned"), "{}", app.message);
    // The form: `r` opens it on the values in force; Down to temperature, type, Enter.
    key(&mut app, KeyCode::Char('r'));
    assert!(screen(&app).contains("retune (applies at the next safe point)"));
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Delete);
    for c in "0.9".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    assert!(app.form.is_none());
    assert!(
        app.message.contains("temperature") && app.message.contains("-> 0.9"),
        "{}",
        app.message
    );
    key(&mut app, KeyCode::Char('p'));
    wait(&mut app, "the retunes", |a| {
        a.snapshot
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Retune)
            .count()
            >= 2
    });
    let events = store.events("live").unwrap();
    let r = events.iter().find(|e| e.kind == EventKind::Retune).unwrap();
    assert_eq!(
        (r.key.as_deref(), r.old.as_deref(), r.new.as_deref()),
        (Some("c_uct"), Some("2"), Some("1.5"))
    );
    assert!(events.iter().any(|e| e.kind == EventKind::Retune
        && e.key.as_deref() == Some("temperature")
        && e.new.as_deref() == Some("0.9")));
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Refused)
        .collect();
    assert_eq!(refused.len(), 2);
    assert!(refused[0]
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("train.lr"));
    assert!(!events
        .iter()
        .any(|e| e.kind == EventKind::Retune && e.key.as_deref() == Some("lr")));

    // Replay of iteration 1 shows iteration 1's numbers while the run goes on.
    command(&mut app, "goto iter 1");
    assert_eq!(app.iteration, 1);
    let first = store
        .iterations::<arbor::engine::trainer::IterationMetrics>("live")
        .unwrap()[0]
        .clone();
    assert_eq!(app.snapshot.metrics(1), Some(&first));
    assert_eq!(app.trees, store.trees("live", 1).unwrap());
    let s = screen(&app);
    assert!(s.contains("replay: iteration 1 of"), "{s}");
    assert!(
        s.contains(&format!("reward     {:.3}", first.train_reward)),
        "{s}"
    );

    // Drilling into a tree of the live run freezes the view on that iteration.
    key(&mut app, KeyCode::Char('L'));
    assert!(app.following);
    app.screen = arbor::app::explorer::Screen::Problems;
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, arbor::app::explorer::Screen::Tree);
    assert!(!app.following, "{}", app.message);
    let frozen = app.iteration;
    std::thread::sleep(Duration::from_millis(300));
    app.pump().unwrap();
    assert_eq!(app.iteration, frozen);

    // Quit asks first; y stops the trainer at a safe point.
    key(&mut app, KeyCode::Char('q'));
    assert!(app.confirm_stop && !app.quit);
    key(&mut app, KeyCode::Char('n'));
    assert!(!app.confirm_stop && !app.quit);
    key(&mut app, KeyCode::Char('q'));
    key(&mut app, KeyCode::Char('y'));
    assert!(app.quit);
    let t = app.live.as_mut().unwrap().thread.take().unwrap();
    t.join().unwrap();
    app.pump().unwrap();
    let summary = app.finished.take().unwrap().unwrap();
    assert_eq!(summary.stopped_by, StopReason::User);
    assert!(store
        .events("live")
        .unwrap()
        .iter()
        .any(|e| e.kind == EventKind::Stop));
}

/// A pause during a long warm start holds inside it (the control says so and the event
/// names the phase); a stop then ends the run with no iteration and nothing cached.
#[test]
fn pause_and_stop_take_effect_inside_the_warm_start() {
    let mut cfg = RunConfig::default();
    cfg.data.train_size = 40;
    cfg.data.test_size = 4;
    cfg.policy.hidden_size = 32;
    cfg.policy.intermediate_size = 64;
    cfg.policy.num_hidden_layers = 1;
    cfg.policy.num_attention_heads = 2;
    cfg.policy.num_key_value_heads = 1;
    cfg.warm_start.steps = 1_000_000;
    cfg.warm_start.batch_size = 16;
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("s.sled")).unwrap();
    let run = RunRecord::new("live", "grpo", 1, cfg.to_toml());
    store.create_run(&run).unwrap();
    let data = split::load(&cfg.data).unwrap();
    let key = arbor::engine::warm_start::warm_start_key(
        &cfg,
        &arbor::engine::warm_start::policy_config(
            &cfg,
            &arbor::engine::policy::CharTokenizer::default(),
        ),
        &data,
    );
    let mut handle = arbor::app::live::start(
        cfg,
        data,
        StoreSink {
            store: store.clone(),
            run,
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    handle.control.set_paused(true);
    let t0 = Instant::now();
    while handle.control.held_in() != Some(Phase::WarmStart) {
        assert!(
            t0.elapsed() < Duration::from_secs(2),
            "the pause did not take effect"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let pause = store
        .events("live")
        .unwrap()
        .into_iter()
        .find(|e| e.kind == EventKind::Pause)
        .expect("a pause event");
    assert_eq!(pause.reason.as_deref(), Some("paused during warm start"));
    handle.control.push(Directive::Stop);
    handle.thread.take().unwrap().join().unwrap();
    let mut summary = None;
    while let Ok(note) = handle.notes.try_recv() {
        if let arbor::app::live::Note::Finished(s) = note {
            summary = Some(s.unwrap());
        }
    }
    let summary = summary.expect("a summary");
    assert_eq!(summary.stopped_by, StopReason::User);
    assert_eq!(summary.iterations, 0);
    assert!(store.warm_start(&key).unwrap().is_none());
    assert!(store.checkpoints("live").unwrap().is_empty());
}
