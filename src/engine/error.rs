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
    /// Stopped (the user or a signal) before the phase ended; nothing of it was kept.
    #[error("stopped during the {0}: nothing of it was kept")]
    Stopped(&'static str),
}
