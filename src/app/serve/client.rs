//! The viewer's side of the socket: finds a live run beside a store, says hello, and asks.
//! A pointer whose process is gone, or a socket nobody answers, is stale: the store is
//! then opened directly.
use std::io;
use std::os::unix::net::UnixStream;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use serde::de::DeserializeOwned;

use super::endpoint::{alive, read_pointer, Pointer};
use super::protocol::{read_frame, write_frame, Action, Reply, Request, PROTOCOL, VERSION};
use super::server::HelloReply;
use crate::app::live::LiveStatus;
use crate::engine::rl::record::TreeRecord;
use crate::engine::training::control::ControlEvent;
use crate::engine::training::records::IterationMetrics;
use crate::store::{RunRecord, StoreError};

/// A connection to a live run's trainer.
pub struct Client {
    stream: Mutex<UnixStream>,
    pub hello: HelloReply,
    pub pointer: Pointer,
}

/// Why a viewer could not attach to a run that is live.
#[derive(Debug, thiserror::Error)]
pub enum AttachError {
    #[error("the live run's trainer (pid {pid}) refused this viewer: {reason}")]
    Refused { pid: u32, reason: String },
    #[error("cannot talk to the live run's trainer at {socket}: {source}")]
    Io { socket: String, source: io::Error },
}

/// How long a reply may take (a live fsck of a large store is the slowest).
const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

fn lost(e: impl std::fmt::Display) -> StoreError {
    StoreError::Live(format!(
        "the connection to the trainer was lost ({e}); the run may have ended: open it again \
         with `arbor view`"
    ))
}

impl Client {
    /// Attaches to the live run beside `store`; `Ok(None)` when there is none (no pointer,
    /// or a stale one).
    pub fn connect(store: &Path, readonly: bool) -> Result<Option<Client>, AttachError> {
        let Some(pointer) = read_pointer(store) else {
            return Ok(None);
        };
        if !alive(pointer.pid) {
            return Ok(None);
        }
        let Ok(stream) = UnixStream::connect(&pointer.socket) else {
            return Ok(None);
        };
        let io_err = |source| AttachError::Io {
            socket: pointer.socket.display().to_string(),
            source,
        };
        stream
            .set_read_timeout(Some(REPLY_TIMEOUT))
            .map_err(io_err)?;
        let client = format!(
            "viewer pid {}{}",
            std::process::id(),
            if readonly { " (read-only)" } else { "" }
        );
        let hello = Request::Hello {
            protocol: PROTOCOL,
            version: VERSION.into(),
            readonly,
            client,
        };
        let mut s = stream;
        let json = serde_json::to_vec(&hello).map_err(|e| io_err(io::Error::other(e)))?;
        // A trainer serving all the viewers it takes answers and closes before reading
        // the hello: its answer is still there to read when the hello cannot be sent.
        let sent = write_frame(&mut s, &json, &[]);
        let (json, _) = match read_frame(&mut s) {
            Ok(frame) => frame,
            Err(e) => return Err(io_err(sent.err().unwrap_or(e))),
        };
        let reply: Reply = serde_json::from_slice(&json)
            .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        if let Some(reason) = reply.error {
            return Err(AttachError::Refused {
                pid: pointer.pid,
                reason,
            });
        }
        let hello: HelloReply = serde_json::from_value(reply.value)
            .map_err(|e| io_err(io::Error::new(io::ErrorKind::InvalidData, e)))?;
        Ok(Some(Client {
            stream: Mutex::new(s),
            hello,
            pointer,
        }))
    }

    /// One request and its reply: (value, binary part).
    fn call_raw(&self, req: &Request) -> Result<(serde_json::Value, Vec<u8>), StoreError> {
        let mut s = self.stream.lock().unwrap_or_else(|p| p.into_inner());
        let json = serde_json::to_vec(req).map_err(|e| StoreError::Encode(e.to_string()))?;
        write_frame(&mut *s, &json, &[]).map_err(lost)?;
        let (json, bin) = read_frame(&mut *s).map_err(lost)?;
        let reply: Reply = serde_json::from_slice(&json).map_err(lost)?;
        match reply.error {
            Some(e) => Err(StoreError::Live(e)),
            None => Ok((reply.value, bin)),
        }
    }

    fn call<T: DeserializeOwned>(&self, req: &Request) -> Result<T, StoreError> {
        let (v, _) = self.call_raw(req)?;
        serde_json::from_value(v)
            .map_err(|e| StoreError::Live(format!("unexpected reply from the trainer: {e}")))
    }

    pub fn status(&self) -> Result<LiveStatus, StoreError> {
        self.call(&Request::Status)
    }

    pub fn runs(&self) -> Result<Vec<RunRecord>, StoreError> {
        self.call(&Request::Runs)
    }

    pub fn run(&self, name: &str) -> Result<RunRecord, StoreError> {
        self.call(&Request::Run { name: name.into() })
    }

    pub fn iterations_after(
        &self,
        name: &str,
        after: u64,
    ) -> Result<Vec<IterationMetrics>, StoreError> {
        self.call(&Request::Iterations {
            name: name.into(),
            after,
        })
    }

    /// Raw iteration records (what `arbor export --metrics` writes).
    pub fn iteration_values(&self, name: &str) -> Result<Vec<serde_json::Value>, StoreError> {
        self.call(&Request::Iterations {
            name: name.into(),
            after: 0,
        })
    }

    pub fn events_from(&self, name: &str, from: usize) -> Result<Vec<ControlEvent>, StoreError> {
        self.call(&Request::Events {
            name: name.into(),
            from,
        })
    }

    pub fn trees(&self, name: &str, iteration: u64) -> Result<Vec<TreeRecord>, StoreError> {
        let (_, bin) = self.call_raw(&Request::Trees {
            name: name.into(),
            iteration,
        })?;
        postcard::from_bytes(&bin)
            .map_err(|e| StoreError::Live(format!("the trainer sent unreadable trees: {e}")))
    }

    /// Sends a control action; the reply is a line to show.
    pub fn control(&self, action: Action) -> Result<String, StoreError> {
        self.call(&Request::Control { action })
    }

    /// The trainer's check of its store: (problems, summary).
    pub fn fsck(&self) -> Result<(Vec<String>, String), StoreError> {
        #[derive(serde::Deserialize)]
        struct R {
            problems: Vec<String>,
            summary: String,
        }
        let r: R = self.call(&Request::Fsck)?;
        Ok((r.problems, r.summary))
    }
}
