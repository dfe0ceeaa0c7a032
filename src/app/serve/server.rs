//! The trainer serves its run: a thread accepts viewers on the store's socket, one thread
//! per viewer answers its requests from the store (which this process holds), the status
//! board and the control state. Nothing listens on the network.
//!
//! No viewer can make the trainer hold much: requests are small frames (`REQUEST_LIMITS`,
//! refused with the limit named before a byte of the body is read), connections are
//! [`Bounds::viewers`] at most (the next is refused with a message), a hello must come
//! soon after connecting and a started request must finish, or the connection is closed.
use std::io::{self, Read};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use super::endpoint::{endpoint, write_pointer, Endpoint, Pointer};
use super::protocol::{
    read_frame_within, write_frame, Action, Reply, Request, PROTOCOL, REQUEST_LIMITS, VERSION,
};
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

/// Viewers served at once by default.
pub const MAX_VIEWERS: usize = 32;

/// How much of the trainer one connection, or many, may hold.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bounds {
    /// Connections served at once; the next is refused with a message.
    pub viewers: usize,
    /// A new connection's hello must arrive whole within this.
    pub hello_within: Duration,
    /// A request, once its first byte came, must arrive whole within this.
    pub frame_within: Duration,
    /// A reply must be taken by the viewer within this.
    pub write_within: Duration,
}

impl Default for Bounds {
    fn default() -> Self {
        Bounds {
            viewers: MAX_VIEWERS,
            hello_within: Duration::from_secs(10),
            frame_within: Duration::from_secs(30),
            write_within: Duration::from_secs(60),
        }
    }
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
    start_bounded(shared, store_path, log, Bounds::default())
}

/// [`start`] with other bounds on the viewers.
pub fn start_bounded(
    shared: Shared,
    store_path: &Path,
    log: Option<PathBuf>,
    bounds: Bounds,
) -> io::Result<Server> {
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
        .spawn(move || accept_loop(listener, shared, flag, bounds))?;
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

/// A served connection, counted while it lives.
struct Open(Arc<AtomicUsize>);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn accept_loop(listener: UnixListener, shared: Shared, stop: Arc<AtomicBool>, bounds: Bounds) {
    let open = Arc::new(AtomicUsize::new(0));
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                if open.load(Ordering::SeqCst) >= bounds.viewers {
                    refuse(&mut stream, bounds.viewers);
                    continue;
                }
                open.fetch_add(1, Ordering::SeqCst);
                let counted = Open(open.clone());
                let s = shared.clone();
                // If the thread cannot start, the closure and its count are dropped.
                let _ = std::thread::Builder::new()
                    .name("arbor-viewer".into())
                    .spawn(move || {
                        let _counted = counted;
                        if stream.set_nonblocking(false).is_ok() {
                            serve_viewer(stream, s, bounds);
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

/// Tells a connection past the limit why it is closed, without waiting on it.
fn refuse(stream: &mut UnixStream, viewers: usize) {
    if stream.set_nonblocking(true).is_err() {
        return;
    }
    // What the viewer sent so far (a hello: a few KiB at most are read) is taken, so
    // closing does not reset the connection before it reads the refusal.
    let mut sink = [0u8; 4096];
    for _ in 0..16 {
        if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
            break;
        }
    }
    let _ = send(
        stream,
        &error(format!(
            "this trainer serves at most {viewers} viewers at once and has that many: close \
             one (arbor view, export or fsck --live) and attach again"
        )),
        &[],
    );
}

/// The next request's JSON: waits as long as the viewer likes for its first byte, then
/// `within` for the rest.
fn next_request(stream: &mut UnixStream, within: Duration) -> io::Result<Vec<u8>> {
    stream.set_read_timeout(None)?;
    let mut first = [0u8; 1];
    stream.read_exact(&mut first)?;
    stream.set_read_timeout(Some(within))?;
    let mut rest = first.chain(&*stream);
    read_frame_within(&mut rest, REQUEST_LIMITS).map(|(json, _)| json)
}

/// A frame refused for its size is answered with why before the connection closes (its
/// bytes cannot be skipped safely); a timeout or a hang-up closes it.
fn answer_bad_frame(stream: &mut UnixStream, e: &io::Error) {
    if e.kind() == io::ErrorKind::InvalidData {
        let _ = send(stream, &error(format!("{e}; closing this connection")), &[]);
    }
}

/// One viewer: `Hello` first (versions checked), then requests until it hangs up.
fn serve_viewer(mut stream: UnixStream, shared: Shared, bounds: Bounds) {
    if stream.set_write_timeout(Some(bounds.write_within)).is_err()
        || stream.set_read_timeout(Some(bounds.hello_within)).is_err()
    {
        return;
    }
    let json = match read_frame_within(&mut stream, REQUEST_LIMITS) {
        Ok((json, _)) => json,
        Err(e) => return answer_bad_frame(&mut stream, &e),
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
    loop {
        let json = match next_request(&mut stream, bounds.frame_within) {
            Ok(json) => json,
            Err(e) => {
                answer_bad_frame(&mut stream, &e);
                break;
            }
        };
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

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::time::Instant;

    use super::*;
    use crate::app::serve::client::{AttachError, Client};
    use crate::app::serve::protocol::read_frame;
    use crate::engine::training::config::RunConfig;
    use crate::store::RunRecord;

    /// A server of a fresh store's run with `bounds`; the folder must outlive it.
    fn serve(bounds: Bounds) -> (tempfile::TempDir, PathBuf, Server) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s.sled");
        let store = Store::open(&path).unwrap();
        let cfg = RunConfig::default();
        let run = RunRecord::new("unit", "deepsearch", 1, cfg.to_toml());
        store.create_run(&run).unwrap();
        let shared = Shared {
            store,
            run: run.name.clone(),
            control: Arc::new(ControlState::default()),
            board: Arc::new(StatusBoard::new(&run, &cfg)),
        };
        let server = start_bounded(shared, &path, None, bounds).unwrap();
        (dir, path, server)
    }

    /// The error of the next reply on `s`, or None when the server closed it.
    fn refusal(s: &mut UnixStream) -> Option<String> {
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let (json, _) = read_frame(s).ok()?;
        serde_json::from_slice::<Reply>(&json).unwrap().error
    }

    fn hello() -> Vec<u8> {
        let mut buf = Vec::new();
        let hello = Request::Hello {
            protocol: PROTOCOL,
            version: VERSION.into(),
            readonly: true,
            client: "unit".into(),
        };
        write_frame(&mut buf, &serde_json::to_vec(&hello).unwrap(), &[]).unwrap();
        buf
    }

    /// Past the viewer limit a connection is refused with the limit named; a silent
    /// connection is closed once the hello is overdue, and a request that stops halfway
    /// once the rest is overdue, which frees their places.
    #[test]
    fn viewers_past_the_limit_and_silent_or_stalled_ones_are_turned_away() {
        let bounds = Bounds {
            viewers: 2,
            hello_within: Duration::from_millis(400),
            frame_within: Duration::from_millis(400),
            write_within: Duration::from_secs(5),
        };
        let (_dir, path, server) = serve(bounds);
        let socket = server.socket().to_path_buf();
        // One stalled mid-request after its hello, one silent.
        let mut stalled = UnixStream::connect(&socket).unwrap();
        stalled.write_all(&hello()).unwrap();
        assert_eq!(refusal(&mut stalled), None, "hello answered");
        stalled.write_all(&[0, 0, 0, 20, b'{']).unwrap();
        let mut silent = UnixStream::connect(&socket).unwrap();
        std::thread::sleep(Duration::from_millis(100));
        // The third is refused, as a client says it.
        match Client::connect(&path, true) {
            Err(AttachError::Refused { reason, .. }) => {
                assert!(reason.contains("at most 2 viewers"), "{reason}")
            }
            Err(e) => panic!("{e}"),
            Ok(_) => panic!("a third viewer was served"),
        }
        // Both are closed when overdue, and a viewer is served again.
        let start = Instant::now();
        assert_eq!(refusal(&mut silent), None);
        assert_eq!(refusal(&mut stalled), None);
        assert!(start.elapsed() < Duration::from_secs(5));
        let start = Instant::now();
        let client = loop {
            match Client::connect(&path, true) {
                Ok(Some(c)) => break c,
                _ if start.elapsed() < Duration::from_secs(5) => {
                    std::thread::sleep(Duration::from_millis(50))
                }
                Ok(None) => panic!("not served"),
                Err(e) => panic!("{e}"),
            }
        };
        assert_eq!(client.runs().unwrap().len(), 1);
    }

    /// A length over the request limit is answered with the limit before any body is
    /// read; so is a request with a binary part, and a request before hello.
    #[test]
    fn oversized_requests_and_requests_before_hello_are_refused_with_why() {
        let (_dir, _path, server) = serve(Bounds::default());
        let socket = server.socket().to_path_buf();
        let mut s = UnixStream::connect(&socket).unwrap();
        s.write_all(&u32::MAX.to_be_bytes()).unwrap();
        let e = refusal(&mut s).unwrap();
        assert!(
            e.contains("JSON part of 4294967295 bytes is over the limit"),
            "{e}"
        );
        let mut s = UnixStream::connect(&socket).unwrap();
        s.write_all(&hello()).unwrap();
        assert_eq!(refusal(&mut s), None);
        let mut frame = Vec::new();
        write_frame(&mut frame, br#"{"op":"status"}"#, b"x").unwrap();
        s.write_all(&frame).unwrap();
        let e = refusal(&mut s).unwrap();
        assert!(e.contains("binary part of 1 bytes"), "{e}");
        let mut s = UnixStream::connect(&socket).unwrap();
        let mut frame = Vec::new();
        write_frame(&mut frame, br#"{"op":"status"}"#, &[]).unwrap();
        s.write_all(&frame).unwrap();
        assert_eq!(refusal(&mut s).unwrap(), "expected hello first");
    }
}
