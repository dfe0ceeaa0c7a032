/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
    #[error("{0}")]
    Sink(#[from] super::sink::SinkError),
    #[error("{0}")]
    Data(String),
    #[error("config: {0}")]
    Config(String),
    #[error("{0}")]
    Unsupported(String),
    /// A stop inside a phase gave the phase up (the trainer ends the run at its next safe
    /// point; callers outside it treat this as a stop, not a failure).
    #[error("stopped inside a phase")]
    Interrupted,
}

impl From<crate::engine::rl::interrupt::Halt> for EngineError {
    fn from(h: crate::engine::rl::interrupt::Halt) -> Self {
        match h {
            crate::engine::rl::interrupt::Halt::Interrupted => EngineError::Interrupted,
            crate::engine::rl::interrupt::Halt::Model(e) => EngineError::Model(e),
        }
    }
}
