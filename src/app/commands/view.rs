//! `arbor view`: the explorer on a live or stored run, and the UI loop.
use std::path::PathBuf;

use anyhow::{anyhow, Result};

use crate::app::explorer::App;
use crate::store::{RunRecord, Store};

pub struct ViewOptions {
    pub run: Option<String>,
    pub store: PathBuf,
    pub theme: String,
    /// Attach to a live run without any control.
    pub readonly: bool,
}

/// One line per run for `arbor view` without `--run`; `live` names the run being trained.
fn list_runs(runs: &[RunRecord], live: Option<(&str, u32)>, store: &std::path::Path) -> String {
    let mut out = format!("runs in {}:\n", store.display());
    let mut runs: Vec<&RunRecord> = runs.iter().collect();
    runs.sort_by_key(|r| std::cmp::Reverse(r.created_unix));
    for r in &runs {
        let state = match live {
            Some((name, pid)) if name == r.name => format!("live, pid {pid}"),
            _ => format!("{:?}", r.status).to_lowercase(),
        };
        out.push_str(&format!(
            "  {:<28} {:<13} seed {:<4} {:>6} iterations  {state}\n",
            r.name, r.method, r.seed, r.last_iteration
        ));
    }
    if runs.is_empty() {
        out.push_str("  (none yet: train one with `arbor train`)\n");
    } else {
        out.push_str(&format!(
            "open one with `arbor view --store {} --run NAME` (a live one is attached; \
             --readonly hides every control)",
            store.display()
        ));
    }
    out
}

/// `arbor view`: attach to the live run beside the store, or replay a stored run;
/// without `--run`, list the runs.
pub fn view(o: ViewOptions) -> Result<()> {
    let theme = crate::app::theme::Theme::choose(&o.theme).map_err(|e| anyhow!(e))?;
    if let Some(client) = crate::app::serve::client::Client::connect(&o.store, o.readonly)? {
        let live = client.hello.run.clone();
        let Some(name) = o.run else {
            println!(
                "{}",
                list_runs(&client.runs()?, Some((&live, client.hello.pid)), &o.store)
            );
            return Ok(());
        };
        let pid = client.hello.pid;
        let log = client.pointer.log.clone();
        let mut app = App::attach(client, o.store.clone(), Some(&name), theme, false)?;
        let mut terminal = ratatui::init();
        let result = run_ui(&mut terminal, &mut app);
        ratatui::restore();
        if name == live && app.finished.is_none() {
            match app.left {
                Some(crate::app::attach::Leave::Stop) => {
                    println!("asked run {name} to stop at its next safe point")
                }
                _ => println!(
                    "{}",
                    crate::app::background::detach_line(&name, &o.store, pid, log.as_deref())
                ),
            }
        }
        return result;
    }
    let store = Store::open_existing(&o.store)?;
    let Some(name) = o.run else {
        println!("{}", list_runs(&store.runs()?, None, &o.store));
        return Ok(());
    };
    let mut app = crate::app::explorer::App::open(store, &name, theme)?;
    let mut terminal = ratatui::init();
    let result = run_ui(&mut terminal, &mut app);
    ratatui::restore();
    result
}

/// The UI loop: terminal events, a 100 ms tick that drains trainer notifications, and a
/// redraw only when something changed.
pub fn run_ui(terminal: &mut ratatui::DefaultTerminal, app: &mut App) -> Result<()> {
    use crossterm::event::{Event, EventStream, KeyEventKind};
    use futures::StreamExt;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::EnableMouseCapture);
    let result = rt.block_on(async {
        let mut events = EventStream::new();
        let mut tick = tokio::time::interval(std::time::Duration::from_millis(100));
        let mut dirty = true;
        while !app.quit {
            if dirty {
                terminal.draw(|f| crate::app::views::draw(f, app))?;
                dirty = false;
            }
            tokio::select! {
                ev = events.next() => match ev {
                    Some(Ok(Event::Key(k))) if k.kind == KeyEventKind::Press => {
                        app.on_key(k);
                        dirty = true;
                    }
                    Some(Ok(Event::Mouse(m))) => {
                        app.on_mouse(m);
                        dirty = true;
                    }
                    Some(Ok(Event::Resize(_, _))) => dirty = true,
                    Some(Err(e)) => return Err(anyhow::Error::from(e)),
                    None => break,
                    _ => {}
                },
                _ = tick.tick() => {
                    if app.pump()? {
                        dirty = true;
                    }
                }
            }
        }
        Ok(())
    });
    let _ = crossterm::execute!(std::io::stdout(), crossterm::event::DisableMouseCapture);
    result
}
