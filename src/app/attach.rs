//! The explorer attached to a live run: the trainer's connection, its last status, and
//! what leaving means (detach, or stop a trainer this explorer started).
use std::path::PathBuf;
use std::sync::Arc;

use super::explorer::App;
use super::live::LiveStatus;
use super::serve::client::Client;
use super::theme::Theme;
use crate::engine::training::config::RunConfig;
use crate::store::{Store, StoreError};

pub struct Attached {
    pub client: Arc<Client>,
    /// The trainer's status at the last tick.
    pub status: LiveStatus,
    /// The settings in force (the retune form starts from them).
    pub cfg: RunConfig,
    /// Alerts already shown.
    pub seen_alerts: usize,
    /// The store the run lives in (reopened directly if the trainer goes away).
    pub store: PathBuf,
    /// This explorer started the trainer in the background: quitting asks whether to
    /// stop it or leave it running.
    pub owned: bool,
}

impl Attached {
    pub fn readonly(&self) -> bool {
        self.client.hello.readonly
    }
}

/// What the user chose when leaving a live run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Leave {
    /// The run goes on without this viewer.
    Detach,
    /// The run was asked to stop at its next safe point.
    Stop,
}

impl App {
    /// Opens the live run `run` (default: the one the trainer serves) through `client`.
    pub fn attach(
        client: Client,
        store: PathBuf,
        run: Option<&str>,
        theme: Theme,
        owned: bool,
    ) -> Result<Self, StoreError> {
        let client = Arc::new(client);
        let status = client.status()?;
        let cfg = RunConfig::from_toml(&status.config_toml).unwrap_or_default();
        let name = run.unwrap_or(&client.hello.run).to_string();
        let live = name == client.hello.run;
        let mut app = App::open_source(Box::new(client.clone()), &name, theme)?;
        if live {
            app.live = Some(Attached {
                client,
                status: LiveStatus::default(),
                cfg,
                seen_alerts: status.alerts.len(),
                store,
                owned,
            });
            app.pump()?;
        }
        Ok(app)
    }

    /// The trainer stopped answering: the run is read from the store from now on (once
    /// its process has let go of it).
    pub(crate) fn lost_trainer(&mut self, e: StoreError) {
        let Some(live) = self.live.take() else {
            return;
        };
        let name = self.snapshot.run.name.clone();
        for _ in 0..50 {
            if let Ok(store) = Store::open_existing(&live.store) {
                self.source = Box::new(store);
                break;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let _ = self.snapshot.refresh(self.source.as_ref(), &name);
        if self.finished.is_none() {
            if let Some(f) = live.status.finished.clone() {
                self.finished = Some(f);
            }
        }
        self.phase.clear();
        self.message = match &self.finished {
            Some(_) => format!("run {name} has ended; replaying it from the store"),
            None => format!("{e}; replaying what was committed"),
        };
        let _ = self.goto(u64::MAX);
    }
}
