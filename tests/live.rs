//! Watching a run this process did not start: a headless `arbor train` runs as its own
//! process, and explorers attach to it through the socket beside its store, with scripted
//! keys: read a tree, pause, retune (good, bad, through the form), a read-only viewer
//! refused, detach, reattach while the run goes on, a second trainer refused, replay,
//! and stop.
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use arbor::app::explorer::{App, Modal, Screen};
use arbor::app::serve::client::Client;
use arbor::app::serve::protocol::Action;
use arbor::app::theme::Theme;
use arbor::app::views::draw;
use arbor::engine::training::control::{EventKind, StopReason};
use crossterm::event::{KeyCode, KeyEvent, KeyModifiers};
use ratatui::backend::TestBackend;
use ratatui::Terminal;

const CONFIG: &str = r#"
seed = 1
method = "deepsearch"
[data]
train_size = 200
test_size = 8
[policy]
hidden_size = 32
intermediate_size = 64
num_hidden_layers = 1
num_attention_heads = 2
num_key_value_heads = 1
[warm_start]
steps = 20
batch_size = 16
[train]
iterations = 100000
problems_per_step = 2
checkpoint_every = 0
[search]
width = 3
n = 3
[adaptive]
steps_per_round = 1000
[eval]
every = 0
k = 2
"#;

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

/// Pumps the viewer until `done` holds (or fails after a generous timeout).
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

fn trainer(store: &Path, cfg: &Path) -> Child {
    Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["train", "--headless", "--run", "live", "--config"])
        .arg(cfg)
        .arg("--store")
        .arg(store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Attaches once the trainer serves (it starts serving before its warm start).
fn connect(store: &Path, readonly: bool) -> Client {
    let start = Instant::now();
    loop {
        if let Some(c) = Client::connect(store, readonly).unwrap() {
            return c;
        }
        assert!(start.elapsed() < Duration::from_secs(60), "never served");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn attach(store: &Path, readonly: bool) -> App {
    let c = connect(store, readonly);
    App::attach(
        c,
        store.to_path_buf(),
        None,
        Theme::load("mono").unwrap(),
        false,
    )
    .unwrap()
}

#[test]
fn attach_pause_retune_detach_reattach_and_stop_a_headless_run() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let store = dir.path().join("s.sled");
    let mut child = trainer(&store, &cfg);

    let mut app = attach(&store, false);
    assert!(app.live.is_some(), "attached to the live run");
    wait(&mut app, "two iterations", |a| {
        a.snapshot.last_iteration() >= 2
    });
    assert_eq!(
        app.iteration,
        app.snapshot.last_iteration(),
        "follows the newest"
    );
    // A tree of the live run, read through the socket.
    assert!(!app.trees.is_empty());
    app.screen = Screen::Tree;
    let s = screen(&app);
    assert!(s.contains("q=") && s.contains("N="), "{s}");
    app.screen = Screen::Dashboard;

    // A second trainer on the same store is refused with the clear message.
    let second = trainer(&store, &cfg).wait_with_output().unwrap();
    assert!(!second.status.success());
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(err.contains("in use by another arbor process"), "{err}");

    // A live run offers its own keys in the footer and the help.
    let s = screen(&app);
    assert!(s.contains("p pause") && s.contains("r retune"), "{s}");
    key(&mut app, KeyCode::Char('?'));
    let s = screen(&app);
    assert!(
        s.contains("retune form") && s.contains("pause / resume"),
        "{s}"
    );
    key(&mut app, KeyCode::Esc);

    // Pause: takes effect at the next safe point, shown in words, and holds.
    key(&mut app, KeyCode::Char('p'));
    wait(&mut app, "the pause", |a| a.paused);
    let at = app.snapshot.last_iteration();
    assert!(screen(&app).contains("PAUSED"));
    std::thread::sleep(Duration::from_millis(600));
    app.pump().unwrap();
    assert!(
        app.snapshot.last_iteration() <= at + 1,
        "paused but went on"
    );
    assert!(app
        .snapshot
        .events
        .iter()
        .any(|e| e.kind == EventKind::Pause));

    // A good retune is accepted; bad ones are refused with their reason.
    command(&mut app, "set c_uct 1.5");
    assert!(app.message.contains("2 -> 1.5"), "{}", app.message);
    command(&mut app, "set lr -1");
    assert!(
        app.message.contains("refused") && app.message.contains("train.lr"),
        "{}",
        app.message
    );
    command(&mut app, "set gamma 3");
    assert!(app.message.contains("cannot be retuned"), "{}", app.message);
    // `set NAME` shows the value in force, from the retunable table: the paused trainer
    // has not applied the retune yet.
    command(&mut app, "set c_uct");
    assert!(
        app.message.contains("c_uct = 2 (search.c_uct)"),
        "{}",
        app.message
    );
    // The form: `r` opens it on the values in force; Down to temperature, type, Enter.
    key(&mut app, KeyCode::Char('r'));
    let s = screen(&app);
    assert!(s.contains("retune (applies at the next safe point)"), "{s}");
    // Its foot lists its keys, and the selected setting's config path.
    for k in arbor::app::form::KEYS {
        assert!(s.contains(k.footer.unwrap()), "{s}");
    }
    assert!(s.contains("train.lr: AdamW learning rate"), "{s}");
    key(&mut app, KeyCode::Down);
    key(&mut app, KeyCode::Delete);
    for c in "0.9".chars() {
        key(&mut app, KeyCode::Char(c));
    }
    key(&mut app, KeyCode::Enter);
    assert!(app.modal.is_none());
    assert!(
        app.message.contains("temperature") && app.message.contains("-> 0.9"),
        "{}",
        app.message
    );

    // A read-only viewer sees the run but every control attempt is refused.
    let mut ro = attach(&store, true);
    assert!(ro.live.as_ref().unwrap().readonly());
    assert!(!ro.trees.is_empty() || ro.snapshot.last_iteration() == 0);
    key(&mut ro, KeyCode::Char('p'));
    assert!(ro.message.contains("read-only"), "{}", ro.message);
    command(&mut ro, "set c_uct 1");
    assert!(ro.message.contains("read-only"), "{}", ro.message);
    let direct = connect(&store, true).control(Action::Stop).unwrap_err();
    assert!(direct.to_string().contains("read-only"), "{direct}");
    assert!(screen(&ro).contains("read-only"));
    drop(ro);

    // Resume: the retunes are applied at the safe point, with old values and the source.
    key(&mut app, KeyCode::Char('p'));
    wait(&mut app, "the retunes", |a| {
        a.snapshot
            .events
            .iter()
            .filter(|e| e.kind == EventKind::Retune)
            .count()
            >= 2
    });
    let events = app.snapshot.events.clone();
    let r = events.iter().find(|e| e.kind == EventKind::Retune).unwrap();
    assert_eq!(
        (r.key.as_deref(), r.old.as_deref(), r.new.as_deref()),
        (Some("c_uct"), Some("2"), Some("1.5"))
    );
    assert!(
        r.source.as_deref().unwrap_or("").starts_with("viewer pid"),
        "{r:?}"
    );
    let refused: Vec<_> = events
        .iter()
        .filter(|e| e.kind == EventKind::Refused)
        .collect();
    assert_eq!(refused.len(), 2, "{refused:?}");
    assert!(refused[0]
        .reason
        .as_deref()
        .unwrap_or("")
        .contains("train.lr"));
    assert!(!events
        .iter()
        .any(|e| e.kind == EventKind::Retune && e.key.as_deref() == Some("lr")));
    wait(&mut app, "the settings in force", |a| {
        a.live.as_ref().unwrap().cfg.search.c_uct == 1.5
    });

    // Replay of iteration 1 shows iteration 1's numbers while the run goes on.
    command(&mut app, "goto iter 1");
    assert_eq!(app.iteration, 1);
    let first = app.snapshot.metrics(1).unwrap().clone();
    let s = screen(&app);
    assert!(s.contains("holding iteration 1 ("), "{s}");
    assert!(
        s.contains(&format!("reward     {:.3}", first.train_reward)),
        "{s}"
    );

    // Drilling into a tree of the live run freezes the view on that iteration.
    key(&mut app, KeyCode::Char('L'));
    assert!(app.following);
    app.screen = Screen::Problems;
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Tree);
    assert!(!app.following, "{}", app.message);
    let frozen = app.iteration;
    std::thread::sleep(Duration::from_millis(300));
    app.pump().unwrap();
    assert_eq!(app.iteration, frozen);

    // q detaches: the run goes on without a viewer; a new viewer reattaches.
    key(&mut app, KeyCode::Char('q'));
    assert!(app.quit && app.modal.is_none());
    assert_eq!(app.left, Some(arbor::app::attach::Leave::Detach));
    let before = app.snapshot.last_iteration();
    drop(app);
    std::thread::sleep(Duration::from_millis(500));
    let mut again = attach(&store, false);
    wait(&mut again, "the run going on", |a| {
        a.snapshot.last_iteration() > before + 1
    });
    assert!(
        child.try_wait().unwrap().is_none(),
        "the trainer still runs"
    );

    // Stopping is its own confirmed action.
    key(&mut again, KeyCode::Char('X'));
    assert!(matches!(again.modal, Some(Modal::ConfirmStop)) && !again.quit);
    key(&mut again, KeyCode::Char('n'));
    assert!(again.modal.is_none());
    command(&mut again, "stop");
    assert!(matches!(again.modal, Some(Modal::ConfirmStop)));
    key(&mut again, KeyCode::Char('y'));
    assert!(again.quit);
    assert_eq!(again.left, Some(arbor::app::attach::Leave::Stop));
    wait(&mut again, "the end of the run", |a| a.finished.is_some());
    let summary = again.finished.take().unwrap().unwrap();
    assert_eq!(summary.stopped_by, StopReason::User);
    drop(again);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(line["stopped_by"], "user");
    // The socket and the pointer are gone; the store opens directly and says who stopped.
    assert!(Client::connect(&store, false).unwrap().is_none());
    assert!(!store.with_file_name("s.sled.live").exists());
    let s = arbor::store::Store::open_existing(&store).unwrap();
    let stop = s
        .events("live")
        .unwrap()
        .into_iter()
        .find(|e| e.kind == EventKind::Stop)
        .unwrap();
    assert!(stop.source.unwrap_or_default().starts_with("viewer pid"));
}

#[test]
fn the_first_minutes_show_the_warm_start_and_a_stale_socket_is_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(
        &cfg,
        CONFIG
            .replace("steps = 20", "steps = 5000")
            .replace("iterations = 100000", "iterations = 2"),
    )
    .unwrap();
    let store = dir.path().join("s.sled");
    let mut child = trainer(&store, &cfg);
    let mut app = attach(&store, false);
    wait(&mut app, "warm-start steps", |a| {
        a.live
            .as_ref()
            .is_some_and(|l| l.status.phase == "warm start" && l.status.warm_losses.len() >= 5)
    });
    let s = screen(&app);
    for want in [
        "first minutes",
        "warm start loss",
        "eta",
        "step ",
        "before the first iteration",
        "cached in the store",
    ] {
        assert!(s.contains(want), "{want:?} missing:\n{s}");
    }
    assert!(!s.contains("iteration 0 of 0"), "{s}");

    // A pause takes effect between warm-start steps, and holds.
    key(&mut app, KeyCode::Char('p'));
    wait(&mut app, "the pause in the warm start", |a| a.paused);
    assert!(screen(&app).contains("PAUSED in the warm start"));
    let steps = |a: &App| a.live.as_ref().unwrap().status.warm_losses.len();
    let held = steps(&app);
    std::thread::sleep(Duration::from_millis(600));
    app.pump().unwrap();
    assert!(
        steps(&app) <= held + 1,
        "paused at {held} but went on to {}",
        steps(&app)
    );
    assert!(app
        .snapshot
        .events
        .iter()
        .any(|e| e.kind == EventKind::Pause
            && e.reason.as_deref() == Some("paused during the warm start")));
    key(&mut app, KeyCode::Char('p'));
    wait(&mut app, "the warm start going on", |a| steps(a) > held + 2);

    // SIGKILL leaves the socket and the pointer behind: they are recognised as stale...
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(store.with_file_name("s.sled.live").exists());
    assert!(Client::connect(&store, false).unwrap().is_none());
    drop(app);
    // ...and replaced by the next trainer of the store.
    let child = Command::new(env!("CARGO_BIN_EXE_arbor"))
        .args(["train", "--headless", "--run", "second", "--config"])
        .arg(&cfg)
        .arg("--store")
        .arg(&store)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut app = App::attach(
        connect(&store, false),
        store.to_path_buf(),
        None,
        Theme::load("mono").unwrap(),
        false,
    )
    .unwrap();
    assert_eq!(app.snapshot.run.name, "second");
    // A stop during the warm start takes effect at the next step, not at its end.
    wait(&mut app, "warm-start steps", |a| {
        a.live
            .as_ref()
            .is_some_and(|l| l.status.warm_losses.len() >= 3)
    });
    key(&mut app, KeyCode::Char('X'));
    key(&mut app, KeyCode::Char('y'));
    let asked = Instant::now();
    drop(app);
    let out = child.wait_with_output().unwrap();
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "took {:?} to stop",
        asked.elapsed()
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("nothing cached"), "{err}");
    let summary: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&out.stdout).trim()).unwrap();
    assert_eq!(
        (
            summary["stopped_by"].as_str(),
            summary["iterations"].as_u64()
        ),
        (Some("user"), Some(0))
    );
    assert!(!store.with_file_name("s.sled.live").exists());
    let s = arbor::store::Store::open_existing(&store).unwrap();
    assert!(s.warm_start_keys().unwrap().is_empty());
}

/// Issue 27, follow and hold: a live view follows the newest iteration until the user
/// moves into one (a cursor move in the problem list or a tree, a tree opened, the
/// search replay, `[`); then it holds that iteration and problem while training goes on,
/// the header says how many iterations are newer, and `L` (or `f`) follows again.
#[test]
fn live_views_follow_the_newest_iteration_until_the_user_moves_into_one() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let store = dir.path().join("s.sled");
    let mut child = trainer(&store, &cfg);
    let mut app = attach(&store, false);
    wait(&mut app, "two iterations", |a| {
        a.snapshot.last_iteration() >= 2
    });
    // Following: each new iteration replaces the one on screen.
    assert!(app.following);
    let seen = app.iteration;
    wait(&mut app, "the view to follow", |a| a.iteration > seen);
    let s = screen(&app);
    assert!(
        s.contains(&format!("live: iteration {} of", app.iteration)),
        "{s}"
    );

    // A cursor move in the problem list holds the iteration and the problem under it.
    key(&mut app, KeyCode::Char('2'));
    assert!(app.following, "switching views does not hold");
    key(&mut app, KeyCode::Char('j'));
    assert!(!app.following);
    let held = app.iteration;
    let listed = app.listed();
    let problem = app.trees[listed[app.views.problems.list.at(listed.len())]]
        .problem
        .clone();
    wait(&mut app, "two newer iterations", |a| {
        a.snapshot.last_iteration() >= held + 2
    });
    assert_eq!(app.iteration, held);
    let s = screen(&app);
    let newer = app.snapshot.last_iteration() - held;
    assert!(
        s.contains(&format!("holding iteration {held} ({newer} newer)")),
        "{s}"
    );
    // Enter opens that problem's tree, of the held iteration.
    key(&mut app, KeyCode::Enter);
    assert_eq!(app.screen, Screen::Tree);
    assert_eq!(
        (app.iteration, app.tree().unwrap().problem.clone()),
        (held, problem)
    );

    // L follows the newest again; a move in the tree holds; f toggles.
    key(&mut app, KeyCode::Char('L'));
    assert!(app.following);
    assert_eq!(app.iteration, app.snapshot.last_iteration());
    assert!(screen(&app).contains("live: iteration"));
    key(&mut app, KeyCode::Char('j'));
    assert!(!app.following);
    let held = app.iteration;
    wait(&mut app, "a newer iteration", |a| {
        a.snapshot.last_iteration() > held
    });
    assert_eq!(app.iteration, held);
    key(&mut app, KeyCode::Char('f'));
    assert!(app.following && app.iteration == app.snapshot.last_iteration());
    key(&mut app, KeyCode::Char('f'));
    assert!(!app.following);
    // The search replay and `[` hold too.
    key(&mut app, KeyCode::Char('L'));
    key(&mut app, KeyCode::Char('>'));
    assert!(!app.following, "{}", app.message);
    key(&mut app, KeyCode::Char('L'));
    let last = app.iteration;
    key(&mut app, KeyCode::Char('['));
    assert!(!app.following && app.iteration == last - 1);
    assert!(screen(&app).contains(&format!("holding iteration {}", last - 1)));

    child.kill().unwrap();
    child.wait().unwrap();
}

/// The trainer's resident memory in bytes (Linux), to see that no abuse made it allocate.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .map_or(0, |kb| kb * 1024)
}

fn frame(json: &[u8], bin: &[u8]) -> Vec<u8> {
    let mut buf = Vec::new();
    arbor::app::serve::protocol::write_frame(&mut buf, json, bin).unwrap();
    buf
}

fn hello_frame(protocol: u32) -> Vec<u8> {
    let hello = arbor::app::serve::protocol::Request::Hello {
        protocol,
        version: arbor::app::serve::protocol::VERSION.into(),
        readonly: true,
        client: "abuse".into(),
    };
    frame(&serde_json::to_vec(&hello).unwrap(), &[])
}

/// Sends `bytes` on a new connection (after a hello if `hello`), and reads the replies
/// until the trainer closes it: their errors, in order. Panics if the trainer neither
/// answers nor closes within 20 s once the sending side is shut.
fn abuse(socket: &Path, hello: bool, bytes: &[u8], shut: bool) -> Vec<String> {
    use arbor::app::serve::protocol::{read_frame, Reply};
    use std::io::Write;
    let mut s = std::os::unix::net::UnixStream::connect(socket).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    if hello {
        s.write_all(&hello_frame(arbor::app::serve::protocol::PROTOCOL))
            .unwrap();
        let (json, _) = read_frame(&mut s).unwrap();
        let reply: Reply = serde_json::from_slice(&json).unwrap();
        assert_eq!(reply.error, None);
    }
    // The trainer may close before everything is sent: that is an answer too.
    let _ = s.write_all(bytes);
    if shut {
        let _ = s.shutdown(std::net::Shutdown::Write);
    }
    let mut errors = Vec::new();
    loop {
        match read_frame(&mut s) {
            Ok((json, _)) => {
                let reply: Reply = serde_json::from_slice(&json).unwrap();
                errors.push(reply.error.unwrap_or_default());
            }
            Err(e) => {
                assert!(
                    !matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ),
                    "the trainer neither answered nor closed: {e}"
                );
                return errors;
            }
        }
    }
}

/// Issue 27 item 9: a live trainer's socket under abuse (garbage, a 4 GiB declared
/// length, a 1 GiB binary part that never comes, an unterminated frame, a 100k-deep JSON,
/// a wrong version, requests before hello, 300 connections at once, and any bytes at
/// all, as a property) answers each with why or closes it, allocates nothing for bytes
/// that never came, serves at most 32 viewers, and the run keeps committing iterations.
#[test]
fn the_socket_stays_safe_under_abuse_and_training_goes_on() {
    use arbor::app::serve::protocol::read_frame;
    use proptest::prelude::*;
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("c.toml");
    std::fs::write(&cfg, CONFIG).unwrap();
    let store = dir.path().join("s.sled");
    let child = trainer(&store, &cfg);
    let client = connect(&store, false);
    let socket = client.pointer.socket.clone();
    let pid = client.pointer.pid;
    let start = Instant::now();
    while client.status().unwrap().last_iteration < 1 {
        assert!(start.elapsed() < Duration::from_secs(120), "no iteration");
        std::thread::sleep(Duration::from_millis(50));
    }
    let before = rss(pid);

    // Garbage bytes: answered (the declared length is over the limit) and closed.
    let garbage: Vec<u8> = (0..4096u32)
        .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
        .collect();
    abuse(&socket, false, &garbage, true);
    abuse(&socket, true, &garbage, true);
    // A 4 GiB declared length, before and after hello: refused with the limit.
    for hello in [false, true] {
        let e = abuse(&socket, hello, &[0xff; 4], false);
        assert!(e[0].contains("over the limit of 65536 bytes"), "{e:?}");
    }
    // A 1 GiB binary part that never comes: requests have none, refused at once.
    let mut big = br#"{"op":"status"}"#.len().to_be_bytes()[4..].to_vec();
    big.extend_from_slice(br#"{"op":"status"}"#);
    big.extend_from_slice(&(1u32 << 30).to_be_bytes());
    for hello in [false, true] {
        let e = abuse(&socket, hello, &big, false);
        assert!(
            e[0].contains("binary part of 1073741824 bytes is over the limit of 0"),
            "{e:?}"
        );
    }
    // An unterminated frame, held open through the rest; and one cut by a hang-up.
    let mut unterminated = std::os::unix::net::UnixStream::connect(&socket).unwrap();
    {
        use std::io::Write;
        unterminated.write_all(&hello_frame(1)).unwrap();
        read_frame(&mut unterminated).unwrap();
        unterminated.write_all(&[0, 0, 1, 0, b'{', b'"']).unwrap();
    }
    assert!(abuse(&socket, true, &[0, 0, 1, 0, b'{'], true).is_empty());
    // A 100k-deep JSON is over the size limit; a deep one within it is refused by the
    // parser's depth limit, and the connection goes on.
    let deep = |d: usize| "[".repeat(d) + &"]".repeat(d);
    let e = abuse(&socket, true, &frame(deep(100_000).as_bytes(), &[]), false);
    assert!(e[0].contains("over the limit"), "{e:?}");
    for deep in [
        deep(30_000),
        "{\"a\":".repeat(10_000) + "1" + &"}".repeat(10_000),
    ] {
        let mut two = frame(deep.as_bytes(), &[]);
        two.extend(frame(br#"{"op":"status"}"#, &[]));
        let e = abuse(&socket, true, &two, true);
        assert!(e[0].starts_with("malformed request"), "{e:?}");
        assert_eq!(e.get(1).map(String::as_str), Some(""), "then served: {e:?}");
    }
    // A wrong version is refused naming both; a request before hello is refused.
    let e = abuse(&socket, false, &hello_frame(999), true);
    assert!(
        e[0].contains("protocol 999") && e[0].contains("same arbor"),
        "{e:?}"
    );
    let e = abuse(&socket, false, &frame(br#"{"op":"status"}"#, &[]), true);
    assert_eq!(e, vec!["expected hello first".to_string()]);

    // Any bytes at all, with or without a hello first: answered or closed, never a hang.
    let bytes = prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..600),
        (any::<u32>(), proptest::collection::vec(any::<u8>(), 0..200)).prop_map(|(n, b)| {
            let mut v = n.to_be_bytes().to_vec();
            v.extend(b);
            v
        }),
        (0u32..64, proptest::collection::vec(any::<u8>(), 0..64)).prop_map(|(n, b)| {
            let mut v = (b.len() as u32).to_be_bytes().to_vec();
            v.extend(&b);
            v.extend(n.to_be_bytes());
            v
        }),
    ];
    let mut runner = proptest::test_runner::TestRunner::new(ProptestConfig {
        cases: 48,
        failure_persistence: None,
        ..ProptestConfig::default()
    });
    runner
        .run(&(any::<bool>(), bytes), |(hello, bytes)| {
            abuse(&socket, hello, &bytes, true);
            Ok(())
        })
        .unwrap();

    // 300 connections at once: at most 32 are served, the rest refused with why.
    let held: Vec<_> = (0..300)
        .map(|_| std::os::unix::net::UnixStream::connect(&socket).unwrap())
        .collect();
    let mut refused = 0;
    for mut s in held.iter() {
        s.set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        if let Ok((json, _)) = read_frame(&mut s) {
            let reply: arbor::app::serve::protocol::Reply = serde_json::from_slice(&json).unwrap();
            let e = reply.error.unwrap_or_default();
            assert!(e.contains("at most 32 viewers"), "{e}");
            refused += 1;
        }
    }
    assert!(refused >= 300 - 32, "{refused} refused");
    drop(held);
    drop(unterminated);

    // Nothing allocated for the bytes that never came, and the run goes on: the first
    // viewer still reads it, a new one attaches, and iterations are still committed.
    let grew = rss(pid).saturating_sub(before);
    assert!(grew < 256 << 20, "the trainer grew by {grew} bytes");
    let now = client.status().unwrap().last_iteration;
    let start = Instant::now();
    while client.status().unwrap().last_iteration < now + 2 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "training stopped"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let start = Instant::now();
    let again = loop {
        match Client::connect(&store, true) {
            Ok(Some(c)) => break c,
            _ if start.elapsed() < Duration::from_secs(20) => {
                std::thread::sleep(Duration::from_millis(100))
            }
            other => panic!("{:?}", other.err()),
        }
    };
    assert!(again.status().unwrap().last_iteration >= now + 2);
    client.control(Action::Stop).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
