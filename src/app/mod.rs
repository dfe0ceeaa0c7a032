//! The terminal side: headless progress now; the explorer (views, keys, themes) renders
//! snapshots of the store.
pub mod commands;
pub mod headless;
