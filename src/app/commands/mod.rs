//! What each command does, between parsing (main.rs) and the engine and store: one file
//! per command, and the helpers they share.
use anyhow::{Context, Result};

pub mod config;
pub mod device_check;
pub mod eval;
pub mod export;
pub mod fsck;
pub mod gen_data;
pub mod init_model;
pub mod intervals;
pub mod save_model;
pub mod train;
pub mod view;

/// Writes `text` to `path` under a temporary name, then renames it into place.
pub(crate) fn write_file(path: &std::path::Path, text: &str) -> Result<()> {
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text.as_bytes())
        .and_then(|_| std::fs::rename(&tmp, path))
        .with_context(|| format!("cannot write {}", path.display()))
}
