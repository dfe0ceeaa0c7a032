//! `arbor fsck`: the store's consistency check.
use anyhow::{bail, Result};

use crate::store::Store;

/// `arbor fsck`: prints what was checked and every problem; fails if there is one.
/// With `live`, a store held by a live run is checked by its trainer, between commits.
pub fn fsck(path: &std::path::Path, live: bool) -> Result<()> {
    let client = crate::app::serve::client::Client::connect(path, true)?;
    let (problems, summary) = match client {
        Some(c) if live => c.fsck()?,
        Some(c) => bail!(
            "store {} is held by the live run {} (pid {}): check it through its trainer \
             with `arbor fsck --live --store {}`",
            path.display(),
            c.hello.run,
            c.hello.pid,
            path.display()
        ),
        None => {
            let report = Store::open_existing(path)?.fsck()?;
            let summary = report.summary();
            (report.problems, summary)
        }
    };
    for p in &problems {
        println!("problem: {p}");
    }
    println!("{}: {summary}", path.display());
    if problems.is_empty() {
        println!("ok");
        Ok(())
    } else {
        bail!(
            "{}: {} problems found (listed above)",
            path.display(),
            problems.len()
        )
    }
}
