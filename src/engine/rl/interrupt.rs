//! Stop and pause inside a phase. Long computations (warm-start steps, evaluation and
//! filter batches, tree expansions, rollouts) ask a check before each batch; whoever runs
//! them answers it (the trainer asks its sink, which may block there while the run is
//! paused). The computations see only the check, never the sink or the store.
//!
//! A stop gives the computation up: it returns [`Halt::Interrupted`] and nothing it
//! computed is kept. The trainer then rewinds what the abandoned iteration changed, so a
//! checkpoint written at the stop is the state after the last committed iteration.

/// Asked before each batch of a long computation: `true` gives it up.
pub type Check<'a> = dyn FnMut() -> bool + 'a;

/// A check that never stops (for callers with no one to stop them).
pub fn never() -> impl FnMut() -> bool {
    || false
}

/// Why an interruptible computation ended without a result.
#[derive(Debug, thiserror::Error)]
pub enum Halt {
    /// A check asked it to stop.
    #[error("interrupted")]
    Interrupted,
    #[error(transparent)]
    Model(#[from] candle_core::Error),
}

impl From<crate::engine::policy::generator::GenerateError> for Halt {
    fn from(e: crate::engine::policy::generator::GenerateError) -> Self {
        Halt::Model(e.into())
    }
}

impl Halt {
    /// The model error of a computation run with [`never`], which cannot be interrupted.
    pub fn into_model(self) -> candle_core::Error {
        match self {
            Halt::Model(e) => e,
            Halt::Interrupted => candle_core::Error::Msg("interrupted".into()),
        }
    }
}

/// Gives up (`Err(Halt::Interrupted)`) when `check` says so.
pub fn ask(check: &mut Check) -> Result<(), Halt> {
    if check() {
        Err(Halt::Interrupted)
    } else {
        Ok(())
    }
}

/// What a sink answers at a check inside a phase.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interrupt {
    /// Go on (after the pause, if the run was paused).
    Continue,
    /// A stop is pending: give the phase up. The sink's next `directives` says which.
    Stop,
}

/// Phases shown to the user, and where a stop or pause can take effect.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    WarmStart,
    Evaluate,
    Train,
    /// Adaptive training's hard-set filtering at a round's start.
    Filter,
    /// An iteration's tree search (deepsearch, tree_distill).
    Search,
    /// An iteration's direct sampling (grpo, dapo, best_of_n, cispo).
    Sample,
}

impl Phase {
    pub const ALL: [Phase; 6] = [
        Phase::WarmStart,
        Phase::Evaluate,
        Phase::Train,
        Phase::Filter,
        Phase::Search,
        Phase::Sample,
    ];

    /// The phase whose [`Phase::label`] is `label` (the form a live status carries).
    pub fn from_label(label: &str) -> Option<Phase> {
        Phase::ALL.into_iter().find(|p| p.label() == label)
    }

    pub fn label(self) -> &'static str {
        match self {
            Phase::WarmStart => "warm start",
            Phase::Evaluate => "evaluate",
            Phase::Train => "train",
            Phase::Filter => "filter",
            Phase::Search => "search",
            Phase::Sample => "sample",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_is_found_by_its_label() {
        for p in Phase::ALL {
            assert_eq!(Phase::from_label(p.label()), Some(p));
        }
        assert_eq!(Phase::from_label(""), None);
        assert_eq!(Phase::from_label("warm_start"), None);
    }
}
