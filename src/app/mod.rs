//! The terminal side: headless progress, and the explorer (views, keys, themes), which
//! renders snapshots of the store.
pub mod across_run;
pub mod arms;
pub mod attach;
pub mod background;
pub mod commands;
pub mod compare;
pub mod ending;
pub mod explorer;
pub mod filters;
pub mod form;
pub mod ground_truth;
pub mod headless;
pub mod help;
pub mod keys;
pub mod live;
pub mod plot;
pub mod progress_log;
pub mod resume;
pub mod search;
pub mod serve;
pub mod snapshot;
pub mod source;
pub mod steer;
#[cfg(test)]
mod test_app;
pub mod theme;
pub mod views;
