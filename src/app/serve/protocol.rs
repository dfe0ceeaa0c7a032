//! What viewer and trainer say over the socket. Each message is a frame: a JSON part and a
//! binary part (trees travel as the store's own postcard records), each behind a 4-byte
//! big-endian length. The first request of a connection is `Hello`; a viewer of another
//! protocol or arbor version is refused with both versions named.
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// Bumped whenever a request or reply changes shape.
pub const PROTOCOL: u32 = 1;

/// This build's version, checked on connect.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// Largest JSON part accepted (a run's metrics are far smaller).
const MAX_JSON: u32 = 256 << 20;
/// Largest binary part accepted (one iteration's trees).
const MAX_BIN: u32 = 1 << 30;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    Hello {
        protocol: u32,
        version: String,
        /// A read-only viewer's control requests are refused.
        readonly: bool,
        /// Who is asking (recorded with every control action it sends).
        client: String,
    },
    /// The trainer's phase, progress, pause state and settings in force.
    Status,
    Runs,
    Run {
        name: String,
    },
    /// Committed iteration records after `after` (0: all), oldest first.
    Iterations {
        name: String,
        after: u64,
    },
    /// Control events from index `from` on.
    Events {
        name: String,
        from: usize,
    },
    /// One committed iteration's trees (in the binary part of the reply).
    Trees {
        name: String,
        iteration: u64,
    },
    /// A control action for the live run.
    Control {
        action: Action,
    },
    /// The store check, run by the trainer between commits.
    Fsck,
}

/// What a viewer may ask the live run to do.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
pub enum Action {
    Pause,
    Resume,
    Stop,
    Checkpoint,
    Retune { key: String, value: String },
    Skip { problem: String },
}

/// The trainer's answer: a value, or an error in words for the user.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    #[serde(default)]
    pub value: serde_json::Value,
    #[serde(default)]
    pub error: Option<String>,
}

/// Writes one frame.
pub fn write_frame(w: &mut impl Write, json: &[u8], bin: &[u8]) -> io::Result<()> {
    let (jl, bl) = (len32(json.len())?, len32(bin.len())?);
    let mut buf = Vec::with_capacity(8 + json.len() + bin.len());
    buf.extend_from_slice(&jl.to_be_bytes());
    buf.extend_from_slice(json);
    buf.extend_from_slice(&bl.to_be_bytes());
    buf.extend_from_slice(bin);
    w.write_all(&buf)?;
    w.flush()
}

fn len32(n: usize) -> io::Result<u32> {
    u32::try_from(n).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "frame too large"))
}

fn read_part(r: &mut impl Read, max: u32, what: &str) -> io::Result<Vec<u8>> {
    let mut len = [0u8; 4];
    r.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len);
    if len > max {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            format!("{what} part of {len} bytes is over the limit of {max}"),
        ));
    }
    let mut buf = vec![0u8; len as usize];
    r.read_exact(&mut buf)?;
    Ok(buf)
}

/// Reads one frame: (JSON, binary). EOF before the first byte is `UnexpectedEof`.
pub fn read_frame(r: &mut impl Read) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let json = read_part(r, MAX_JSON, "JSON")?;
    let bin = read_part(r, MAX_BIN, "binary")?;
    Ok((json, bin))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_lengths_are_refused() {
        let mut buf = Vec::new();
        let req = Request::Control {
            action: Action::Retune {
                key: "lr".into(),
                value: "1e-5".into(),
            },
        };
        write_frame(&mut buf, &serde_json::to_vec(&req).unwrap(), b"\x01\x02").unwrap();
        let (j, b) = read_frame(&mut buf.as_slice()).unwrap();
        assert_eq!(serde_json::from_slice::<Request>(&j).unwrap(), req);
        assert_eq!(b, b"\x01\x02");
        // A length over the limit is an error, not an allocation.
        let bad = [0xffu8, 0xff, 0xff, 0xff];
        let e = read_frame(&mut bad.as_slice()).unwrap_err();
        assert!(e.to_string().contains("over the limit"), "{e}");
        // A truncated frame is an error too.
        assert!(read_frame(&mut &buf[..buf.len() - 1]).is_err());
    }
}
