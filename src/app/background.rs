//! The explorer is always a client. `arbor` and `arbor train` in a terminal start the
//! trainer as a background process of its own (`arbor train --headless`, in a new session,
//! so it survives the terminal closing), wait for it to serve its run, and attach to it.
//! Quitting asks whether to stop training or leave it running in the background.
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

use super::attach::Leave;
use super::explorer::App;
use super::serve::client::Client;
use super::serve::endpoint::read_pointer;
use crate::store::Store;

/// Set for the background trainer: where its stderr goes (recorded in the pointer file so
/// a viewer can say where the log is).
pub const LOG_ENV: &str = "ARBOR_TRAINER_LOG";

/// How long the trainer may take to start serving (loading a large checkpoint).
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// Whether this command should start its trainer in the background and attach an
/// explorer: not `--headless`, and both stdin and stdout are a terminal.
pub fn wants_explorer(headless: bool) -> bool {
    use std::io::IsTerminal;
    let interactive = std::io::stdout().is_terminal() && std::io::stdin().is_terminal();
    if !headless && !interactive {
        eprintln!("note: not a terminal, running headless");
    }
    !headless && interactive
}

/// The trainer's command line: this one's arguments with `--headless` (the embedded
/// default, which has none, spelled out).
fn trainer_args() -> Vec<OsString> {
    let mut args: Vec<OsString> = std::env::args_os().skip(1).collect();
    if args.is_empty() {
        args = ["train", "--method", "deepsearch"]
            .map(OsString::from)
            .to_vec();
    }
    args.push("--headless".into());
    args
}

fn log_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(format!(
        ".trainer-{}.log",
        crate::engine::training::trainer::unix_now()
    ));
    store.with_file_name(name)
}

/// The last lines of the trainer's log, for an error message.
fn tail(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(15)..].join("\n")
}

/// Starts the trainer in the background, attaches the explorer, and handles leaving.
pub fn train_in_background(store: &Path, theme: &str) -> Result<()> {
    let theme = super::theme::Theme::choose(theme).map_err(|e| anyhow!(e))?;
    if let Some(dir) = store.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("cannot create the store's folder {}", dir.display()))?;
    }
    let log = log_path(store);
    let out = std::fs::File::create(&log)
        .with_context(|| format!("cannot write the trainer's log {}", log.display()))?;
    let err = out.try_clone()?;
    let exe = std::env::current_exe().context("cannot find the arbor executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(trainer_args())
        .env(LOG_ENV, &log)
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err);
    {
        use std::os::unix::process::CommandExt;
        // SAFETY: setsid is async-signal-safe and touches no memory of this process; a new
        // session has no controlling terminal, so closing the terminal does not end training.
        unsafe {
            cmd.pre_exec(|| {
                libc::setsid();
                Ok(())
            });
        }
    }
    let mut child = cmd.spawn().context("cannot start the trainer")?;
    let pid = child.id();
    let start = Instant::now();
    eprintln!("starting the trainer (pid {pid}, log {})...", log.display());
    let client = loop {
        if let Some(status) = child.try_wait()? {
            bail!(
                "the trainer exited ({status}) before it began serving its run; its log \
                 ({}) ends:\n{}",
                log.display(),
                tail(&log)
            );
        }
        if read_pointer(store).is_some_and(|p| p.pid == pid) {
            if let Some(c) = Client::connect(store, false)? {
                break c;
            }
        }
        if start.elapsed() > START_TIMEOUT {
            bail!(
                "the trainer (pid {pid}) did not begin serving within {}s; see its log {}",
                START_TIMEOUT.as_secs(),
                log.display()
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let name = client.hello.run.clone();
    let mut app = App::attach(client, store.to_path_buf(), None, theme, true)?;
    let mut terminal = ratatui::init();
    let ui = super::commands::view::run_ui(&mut terminal, &mut app);
    ratatui::restore();
    if ui.is_err() && app.finished.is_none() {
        // The explorer failed: training goes on in the background, as on a detach.
        app.left = Some(Leave::Detach);
    }
    match (app.left, app.finished.is_some()) {
        (Some(Leave::Detach), false) => {
            println!("{}", detach_line(&name, store, pid, Some(&log)));
            ui
        }
        _ => {
            if app.left == Some(Leave::Stop) {
                eprintln!("stopping run {name} at the next safe point...");
            }
            let status = child.wait()?;
            ui?;
            let store = Store::open_existing(store)?;
            let run = store.require_run(&name)?;
            if let Some(summary) = &run.summary {
                println!("{summary}");
            } else if run.status == crate::store::RunStatus::Stopped {
                // Stopped before its first iteration (during the warm start): the
                // trainer's last words say so.
                eprintln!(
                    "{}",
                    tail(&log)
                        .lines()
                        .last()
                        .unwrap_or_default()
                        .trim_start_matches("error: ")
                );
                return Ok(());
            }
            if !status.success() {
                bail!(
                    "the trainer of run {name} failed ({status}); its log ({}) ends:\n{}",
                    log.display(),
                    tail(&log)
                );
            }
            Ok(())
        }
    }
}

/// What a detaching viewer prints: the run goes on, and how to find it again.
pub fn detach_line(name: &str, store: &Path, pid: u32, log: Option<&Path>) -> String {
    let log = log
        .map(|l| format!(", log {}", l.display()))
        .unwrap_or_default();
    format!(
        "detached: run {name} goes on in the background (pid {pid}{log}). Watch it again \
         with `arbor view --store {} --run {name}`; stop it there with X or :stop.",
        store.display()
    )
}
