//! The trainer serves its run: a thread accepts viewers on the store's socket, one thread
//! per viewer answers its requests from the store (which this process holds), the status
//! board and the control state. Nothing listens on the network.
use std::io;
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use super::endpoint::{endpoint, write_pointer, Endpoint, Pointer};
use super::protocol::{read_frame, write_frame, Action, Reply, Request, PROTOCOL, VERSION};
use crate::app::live::{ControlState, StatusBoard};
use crate::engine::training::control::{retune, ControlEvent, Directive};
use crate::store::Store;

/// What every viewer's thread answers from.
#[derive(Clone)]
pub struct Shared {
    pub store: Store,
    pub run: String,
    pub control: Arc<ControlState>,
    pub board: Arc<StatusBoard>,
}

/// The listening socket; dropping it stops accepting and removes the socket and pointer.
pub struct Server {
    endpoint: Endpoint,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// What `Hello` answers.
#[derive(Clone, Debug, PartialEq, Serialize, serde::Deserialize)]
pub struct HelloReply {
    pub run: String,
    pub pid: u32,
    pub version: String,
    pub protocol: u32,
    pub readonly: bool,
}

/// Starts serving the run of `shared` beside the store at `store_path`.
pub fn start(shared: Shared, store_path: &Path, log: Option<PathBuf>) -> io::Result<Server> {
    use std::os::unix::fs::PermissionsExt;
    let ep = endpoint(store_path)?;
    // This process holds the store's lock, so a socket already at this path was left by a
    // trainer that was killed: it is replaced.
    match std::fs::remove_file(&ep.socket) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let listener = UnixListener::bind(&ep.socket).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}", ep.socket.display()),
        )
    })?;
    std::fs::set_permissions(&ep.socket, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    write_pointer(
        &ep.pointer,
        &Pointer {
            pid: std::process::id(),
            socket: ep.socket.clone(),
            run: shared.run.clone(),
            version: VERSION.to_string(),
            log,
        },
    )?;
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let thread = std::thread::Builder::new()
        .name("arbor-serve".into())
        .spawn(move || accept_loop(listener, shared, flag))?;
    Ok(Server {
        endpoint: ep,
        stop,
        thread: Some(thread),
    })
}

impl Server {
    pub fn socket(&self) -> &Path {
        &self.endpoint.socket
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        let _ = std::fs::remove_file(&self.endpoint.socket);
        // The pointer is removed only if it is still this process's.
        if super::endpoint::read_pointer_at(&self.endpoint.pointer)
            .is_some_and(|p| p.pid == std::process::id())
        {
            let _ = std::fs::remove_file(&self.endpoint.pointer);
        }
    }
}

fn accept_loop(listener: UnixListener, shared: Shared, stop: Arc<AtomicBool>) {
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((stream, _)) => {
                let s = shared.clone();
                let _ = std::thread::Builder::new()
                    .name("arbor-viewer".into())
                    .spawn(move || {
                        if stream.set_nonblocking(false).is_ok() {
                            serve_viewer(stream, s);
                        }
                    });
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(50))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    }
}

fn send(stream: &mut UnixStream, reply: &Reply, bin: &[u8]) -> io::Result<()> {
    let json = serde_json::to_vec(reply).map_err(io::Error::other)?;
    write_frame(stream, &json, bin)
}

fn error(msg: impl Into<String>) -> Reply {
    Reply {
        value: serde_json::Value::Null,
        error: Some(msg.into()),
    }
}

fn value(v: impl Serialize) -> Reply {
    match serde_json::to_value(v) {
        Ok(value) => Reply { value, error: None },
        Err(e) => error(format!("cannot encode the reply: {e}")),
    }
}

/// One viewer: `Hello` first (versions checked), then requests until it hangs up.
fn serve_viewer(mut stream: UnixStream, shared: Shared) {
    let Ok((json, _)) = read_frame(&mut stream) else {
        return;
    };
    let (readonly, client) = match serde_json::from_slice::<Request>(&json) {
        Ok(Request::Hello {
            protocol,
            version,
            readonly,
            client,
        }) => {
            if protocol != PROTOCOL || version != VERSION {
                let _ = send(
                    &mut stream,
                    &error(format!(
                        "this trainer is arbor {VERSION} (protocol {PROTOCOL}); the viewer is \
                         arbor {version} (protocol {protocol}): attach with the same arbor \
                         build that started the run"
                    )),
                    &[],
                );
                return;
            }
            (readonly, client)
        }
        _ => {
            let _ = send(&mut stream, &error("expected hello first"), &[]);
            return;
        }
    };
    let hello = HelloReply {
        run: shared.run.clone(),
        pid: std::process::id(),
        version: VERSION.into(),
        protocol: PROTOCOL,
        readonly,
    };
    if send(&mut stream, &value(&hello), &[]).is_err() {
        return;
    }
    shared.board.update(|s| s.viewers += 1);
    while let Ok((json, _)) = read_frame(&mut stream) {
        let (reply, bin) = match serde_json::from_slice::<Request>(&json) {
            Ok(req) => answer(&shared, req, readonly, &client),
            Err(e) => (error(format!("malformed request: {e}")), Vec::new()),
        };
        if send(&mut stream, &reply, &bin).is_err() {
            break;
        }
    }
    shared
        .board
        .update(|s| s.viewers = s.viewers.saturating_sub(1));
}

fn answer(shared: &Shared, req: Request, readonly: bool, client: &str) -> (Reply, Vec<u8>) {
    let store = &shared.store;
    let r = match req {
        Request::Hello { .. } => error("hello was already said"),
        Request::Status => value(shared.board.snapshot()),
        Request::Runs => store.runs().map_or_else(|e| error(e.to_string()), value),
        Request::Run { name } => store
            .require_run(&name)
            .map_or_else(|e| error(e.to_string()), value),
        Request::Iterations { name, after } => store
            .iterations_after::<serde_json::Value>(&name, after)
            .map_or_else(|e| error(e.to_string()), value),
        Request::Events { name, from } => store.events(&name).map_or_else(
            |e| error(e.to_string()),
            |ev| value(ev.get(from..).unwrap_or_default()),
        ),
        Request::Trees { name, iteration } => {
            return match store.trees(&name, iteration) {
                Ok(trees) => match postcard::to_allocvec(&trees) {
                    Ok(bin) => (value(trees.len()), bin),
                    Err(e) => (error(format!("cannot encode trees: {e}")), Vec::new()),
                },
                Err(e) => (error(e.to_string()), Vec::new()),
            }
        }
        Request::Control { action } if readonly => error(format!(
            "refused {}: this viewer is attached read-only (--readonly)",
            action_name(&action)
        )),
        Request::Control { action } => control(shared, action, client),
        Request::Fsck => {
            let _gate = shared
                .board
                .commit_gate
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            store.fsck().map_or_else(
                |e| error(e.to_string()),
                |r| {
                    value(serde_json::json!({
                        "problems": r.problems,
                        "summary": r.summary(),
                    }))
                },
            )
        }
    };
    (r, Vec::new())
}

fn action_name(a: &Action) -> &'static str {
    match a {
        Action::Pause => "pause",
        Action::Resume => "resume",
        Action::Stop => "stop",
        Action::Checkpoint => "checkpoint",
        Action::Retune { .. } => "retune",
        Action::Skip { .. } => "skip",
    }
}

/// Applies a viewer's action; the reply's value is a line for its footer.
fn control(shared: &Shared, action: Action, client: &str) -> Reply {
    let c = &shared.control;
    let line = match action {
        Action::Pause => {
            c.set_paused(Some(client.to_string()));
            shared.board.update(|s| s.pause_requested = true);
            "pausing at the next safe point".to_string()
        }
        Action::Resume => {
            c.set_paused(None);
            shared.board.update(|s| s.pause_requested = false);
            "resuming".to_string()
        }
        Action::Stop => {
            c.push(Directive::Stop, client);
            c.set_paused(None);
            shared.board.update(|s| s.pause_requested = false);
            "stopping at the next safe point".to_string()
        }
        Action::Checkpoint => {
            c.push(Directive::Checkpoint, client);
            "checkpoint at the next safe point".to_string()
        }
        Action::Skip { problem } => {
            let line = format!("skipping {problem} from the next iteration");
            c.push(Directive::Skip { problem }, client);
            line
        }
        Action::Retune { key, value } => {
            // Validated against the settings in force: a refusal changes nothing, is
            // answered at once, and recorded with its source.
            let mut cfg = match shared.board.config() {
                Ok(c) => c,
                Err(e) => return error(e),
            };
            match retune(&mut cfg, &key, &value) {
                Ok((old, new)) => {
                    c.push(
                        Directive::Retune {
                            key: key.clone(),
                            value,
                        },
                        client,
                    );
                    format!("{key}: {old} -> {new} at the next safe point")
                }
                Err(reason) => {
                    let it = shared.board.snapshot().last_iteration;
                    let _ = shared.store.append_event(
                        &shared.run,
                        &ControlEvent {
                            key: Some(key),
                            new: Some(value),
                            reason: Some(reason.to_string()),
                            source: Some(client.to_string()),
                            ..ControlEvent::new(
                                it,
                                crate::engine::training::control::EventKind::Refused,
                            )
                        },
                    );
                    return error(format!("refused: {reason}"));
                }
            }
        }
    };
    value(line)
}
