/// Errors of a training run.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error("model: {0}")]
    Model(#[from] candle_core::Error),
    #[error("{0}")]
    Sink(#[from] super::sink::SinkError),
    #[error("{0}")]
    Data(String),
    /// The inference engine the run generates on. The generator's error is part of the
    /// message, not a `source()` (a report printing the chain would repeat it).
    #[error("generator: {0}")]
    Generator(crate::engine::policy::server::remote::GeneratorError),
    /// A checkpoint's stored RNG position.
    #[error(transparent)]
    RngState(#[from] crate::engine::training::resume::RngStateError),
    /// The warm start's weights as bytes.
    #[error(transparent)]
    WeightBytes(#[from] crate::engine::policy::checkpoint::WeightBytesError),
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
