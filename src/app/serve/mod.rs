//! A live run served to viewers in other processes: the trainer listens on a Unix socket
//! beside its store (sled allows one process per store), and `arbor view`, `arbor export`
//! and `arbor fsck --live` read the run through it. See the README, "Watching a run".
pub mod client;
pub mod endpoint;
pub mod protocol;
pub mod server;
