//! What viewer and trainer say over the socket. Each message is a frame: a JSON part and a
//! binary part (trees travel as the store's own postcard records), each behind a 4-byte
//! big-endian length. The first request of a connection is `Hello`; a viewer of another
//! protocol or arbor version is refused with both versions named.
//!
//! A declared length is checked against the reader's [`Limits`] before anything is read,
//! and a part's buffer grows only with the bytes that arrive, so a peer that declares a
//! gigabyte and sends nothing costs nothing.
use std::io::{self, Read, Write};

use serde::{Deserialize, Serialize};

/// Bumped whenever a request or reply changes shape.
pub const PROTOCOL: u32 = 1;

/// This build's version, checked on connect.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The largest parts a reader accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub json: u32,
    pub bin: u32,
}

/// A trainer's reply, read by a viewer: a run's metrics in JSON (far smaller than this),
/// one iteration's trees in the binary part.
pub const REPLY_LIMITS: Limits = Limits {
    json: 256 << 20,
    bin: 1 << 30,
};

/// A viewer's request, read by the trainer: a short JSON part (the longest is a retune or
/// a run's name) and no binary part.
pub const REQUEST_LIMITS: Limits = Limits {
    json: 64 << 10,
    bin: 0,
};

/// The buffer a part starts with; it grows as the bytes arrive.
const FIRST_CHUNK: usize = 64 << 10;

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
            format!("a frame's {what} part of {len} bytes is over the limit of {max} bytes"),
        ));
    }
    // Allocated as the bytes come, never ahead of them.
    let mut buf = Vec::with_capacity((len as usize).min(FIRST_CHUNK));
    r.take(len as u64).read_to_end(&mut buf)?;
    if buf.len() < len as usize {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the frame ended after {} of its {what} part's {len} bytes",
                buf.len()
            ),
        ));
    }
    Ok(buf)
}

/// Reads one reply frame: (JSON, binary). EOF before the first byte is `UnexpectedEof`.
pub fn read_frame(r: &mut impl Read) -> io::Result<(Vec<u8>, Vec<u8>)> {
    read_frame_within(r, REPLY_LIMITS)
}

/// Reads one frame whose parts are within `limits`.
pub fn read_frame_within(r: &mut impl Read, limits: Limits) -> io::Result<(Vec<u8>, Vec<u8>)> {
    let json = read_part(r, limits.json, "JSON")?;
    let bin = read_part(r, limits.bin, "binary")?;
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
        // A request carries no binary part.
        let e = read_frame_within(&mut buf.as_slice(), REQUEST_LIMITS).unwrap_err();
        assert!(e.to_string().contains("binary part of 2 bytes"), "{e}");
    }

    /// A gigabyte declared and a few bytes sent: an error once the bytes end, and the
    /// buffer never grew past what arrived.
    #[test]
    fn a_declared_length_allocates_nothing_ahead_of_the_bytes() {
        let mut frame = (1u32 << 30).to_be_bytes().to_vec();
        frame.extend_from_slice(b"{}{}");
        let limits = Limits {
            json: u32::MAX,
            bin: 0,
        };
        let e = read_frame_within(&mut frame.as_slice(), limits).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof);
        assert!(e.to_string().contains("after 4 of"), "{e}");
    }

    proptest::proptest! {
        /// Any bytes: a frame within the limits, or an error; never a panic, and never
        /// more bytes kept than were sent.
        #[test]
        fn any_bytes_read_as_a_frame_or_an_error(bytes in proptest::collection::vec(
            proptest::prelude::any::<u8>(), 0..512,
        )) {
            if let Ok((json, bin)) = read_frame_within(&mut bytes.as_slice(), REQUEST_LIMITS) {
                proptest::prop_assert!(json.len() + bin.len() + 8 <= bytes.len());
                proptest::prop_assert!(bin.is_empty());
            }
        }

        /// A frame that is valid, then cut anywhere: an error, never a short frame.
        #[test]
        fn a_cut_frame_is_an_error(
            json in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            bin in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
            cut in 0usize..608,
        ) {
            let mut buf = Vec::new();
            write_frame(&mut buf, &json, &bin).unwrap();
            let whole = read_frame(&mut buf.as_slice()).unwrap();
            proptest::prop_assert_eq!(&whole, &(json, bin));
            if cut < buf.len() {
                proptest::prop_assert!(read_frame(&mut &buf[..cut]).is_err());
            }
        }
    }
}
