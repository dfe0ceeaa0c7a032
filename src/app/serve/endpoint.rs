//! Where a live run listens: a Unix socket in a short per-user directory (socket paths are
//! limited to about 108 bytes, a store path may be longer) and a pointer file beside the
//! store that names it. The socket's name is a hash of the store's canonical path, so a
//! socket left by a killed trainer is found and replaced by the next one.
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The socket and pointer of one store.
#[derive(Clone, Debug, PartialEq)]
pub struct Endpoint {
    pub socket: PathBuf,
    pub pointer: PathBuf,
}

/// What the pointer file beside the store says about the live run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Pointer {
    pub pid: u32,
    pub socket: PathBuf,
    pub run: String,
    /// arbor's version (the viewer refuses another).
    pub version: String,
    /// Where the trainer's stderr goes, when it runs in the background.
    pub log: Option<PathBuf>,
}

/// `runs/arbor.sled` -> `runs/arbor.sled.live`.
pub fn pointer_path(store: &Path) -> PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_os_string();
    name.push(".live");
    store.with_file_name(name)
}

/// FNV-1a: stable across builds and platforms (std's hasher is not).
fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The per-user socket directory: `$XDG_RUNTIME_DIR/arbor` when that is short, else
/// `/tmp/arbor-<uid>`; created owner-only, and refused if someone else owns it or others
/// may enter it.
pub fn socket_dir() -> io::Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    let dir = match std::env::var_os("XDG_RUNTIME_DIR").map(PathBuf::from) {
        Some(d) if d.is_dir() && d.as_os_str().len() < 60 => d.join("arbor"),
        _ => PathBuf::from(format!("/tmp/arbor-{uid}")),
    };
    match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("cannot create the socket folder {}: {e}", dir.display()),
            ))
        }
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != uid {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "{} is not a folder of this user: remove it or set XDG_RUNTIME_DIR",
                dir.display()
            ),
        ));
    }
    if meta.permissions().mode() & 0o077 != 0 {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))?;
    }
    Ok(dir)
}

/// The endpoint of the store at `store` (which must exist).
pub fn endpoint(store: &Path) -> io::Result<Endpoint> {
    let canonical = std::fs::canonicalize(store)
        .map_err(|e| io::Error::new(e.kind(), format!("store {}: {e}", store.display())))?;
    let hash = fnv1a(canonical.as_os_str().as_encoded_bytes());
    Ok(Endpoint {
        socket: socket_dir()?.join(format!("{hash:016x}.sock")),
        pointer: pointer_path(store),
    })
}

/// The pointer beside `store`, if there is one that parses.
pub fn read_pointer(store: &Path) -> Option<Pointer> {
    read_pointer_at(&pointer_path(store))
}

/// The pointer file at `path`, if it parses.
pub fn read_pointer_at(path: &Path) -> Option<Pointer> {
    let text = std::fs::read_to_string(path).ok()?;
    serde_json::from_str(&text).ok()
}

/// Writes the pointer under a temporary name, then renames it into place.
pub fn write_pointer(path: &Path, p: &Pointer) -> io::Result<()> {
    let tmp = path.with_extension("live.tmp");
    let text = serde_json::to_string(p).map_err(io::Error::other)?;
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path)
}

/// Whether process `pid` is alive (signal 0 asks without sending anything).
pub fn alive(pid: u32) -> bool {
    // SAFETY: kill with signal 0 only checks that the process exists.
    pid <= i32::MAX as u32 && unsafe { libc::kill(pid as i32, 0) } == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_short_stable_and_owner_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let deep = dir.path().join("a".repeat(100)).join("b".repeat(100));
        std::fs::create_dir_all(&deep).unwrap();
        let store = deep.join("arbor.sled");
        std::fs::create_dir(&store).unwrap();
        let e = endpoint(&store).unwrap();
        assert!(e.socket.as_os_str().len() < 100, "{}", e.socket.display());
        assert_eq!(e, endpoint(&store).unwrap(), "stable for the same store");
        assert_eq!(e.pointer, deep.join("arbor.sled.live"));
        let mode = std::fs::metadata(e.socket.parent().unwrap())
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "socket folder is owner-only: {mode:o}");
        let other = deep.join("other.sled");
        std::fs::create_dir(&other).unwrap();
        assert_ne!(e.socket, endpoint(&other).unwrap().socket);
    }
}
