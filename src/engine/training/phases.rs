//! Where an iteration's time goes. The iteration is cut into consecutive spans, each
//! timed and charged to one phase, so the phases add up to the iteration's wall time and
//! "other" is what was measured outside the named phases, not a remainder.
use std::time::Instant;

use serde::{Deserialize, Serialize};

/// Wall seconds per phase of an iteration (fields added after schema 2's first records
/// default to 0 when read).
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct PhaseSeconds {
    /// Sampling (direct rollouts, their verification included) or tree search (step
    /// judgement and padding rollouts included).
    pub sample: f64,
    /// Turning samples or trees into rewards, advantages, training samples and records.
    #[serde(default)]
    pub scoring: f64,
    /// The adaptive hard-set filtering at the start of a round.
    #[serde(default)]
    pub filtering: f64,
    pub update: f64,
    pub eval: f64,
    /// Committing the iteration and writing its checkpoint.
    #[serde(default)]
    pub store: f64,
    /// Everything else the iteration did (problem choice, metrics, events, progress).
    #[serde(default)]
    pub other: f64,
    /// The iteration's wall time, from its first span to its last.
    #[serde(default)]
    pub wall: f64,
}

/// The phases an iteration's spans are charged to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Span {
    Sample,
    Scoring,
    Filtering,
    Update,
    Eval,
    Store,
    Other,
}

impl PhaseSeconds {
    /// Each phase with its name, in the order the dashboard lists them.
    pub fn phases(&self) -> [(&'static str, f64); 7] {
        [
            ("sampling/search", self.sample),
            ("scoring", self.scoring),
            ("filtering", self.filtering),
            ("update", self.update),
            ("evaluation", self.eval),
            ("store", self.store),
            ("other", self.other),
        ]
    }

    /// The phases' total (the wall time, up to the clock's own cost).
    pub fn total(&self) -> f64 {
        self.phases().iter().map(|p| p.1).sum()
    }

    pub fn add(&mut self, o: &PhaseSeconds) {
        self.sample += o.sample;
        self.scoring += o.scoring;
        self.filtering += o.filtering;
        self.update += o.update;
        self.eval += o.eval;
        self.store += o.store;
        self.other += o.other;
        self.wall += o.wall;
    }

    fn slot(&mut self, s: Span) -> &mut f64 {
        match s {
            Span::Sample => &mut self.sample,
            Span::Scoring => &mut self.scoring,
            Span::Filtering => &mut self.filtering,
            Span::Update => &mut self.update,
            Span::Eval => &mut self.eval,
            Span::Store => &mut self.store,
            Span::Other => &mut self.other,
        }
    }
}

/// Times consecutive spans of one iteration.
#[derive(Clone, Debug)]
pub struct PhaseClock {
    start: Instant,
    mark: Instant,
    seconds: PhaseSeconds,
}

impl PhaseClock {
    pub fn start() -> Self {
        let now = Instant::now();
        Self {
            start: now,
            mark: now,
            seconds: PhaseSeconds::default(),
        }
    }

    /// Charges the span since the last charge to `span`.
    pub fn charge(&mut self, span: Span) {
        let now = Instant::now();
        *self.seconds.slot(span) += (now - self.mark).as_secs_f64();
        self.mark = now;
    }

    /// Charges the span since the last charge to `span`, less `inner` seconds measured
    /// inside it, which go to `inner_span`.
    pub fn charge_split(&mut self, span: Span, inner_span: Span, inner: f64) {
        let now = Instant::now();
        let all = (now - self.mark).as_secs_f64();
        let inner = inner.clamp(0.0, all);
        *self.seconds.slot(span) += all - inner;
        *self.seconds.slot(inner_span) += inner;
        self.mark = now;
    }

    /// The phases so far; the last span is charged to other and the wall time taken.
    pub fn finish(&mut self) -> PhaseSeconds {
        self.charge(Span::Other);
        let mut s = self.seconds;
        s.wall = self.start.elapsed().as_secs_f64();
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn old_records_read_with_zero_new_phases() {
        let s: PhaseSeconds =
            serde_json::from_str(r#"{"sample":1.5,"update":0.5,"eval":0.0}"#).unwrap();
        assert_eq!(s.sample, 1.5);
        assert_eq!((s.scoring, s.store, s.other, s.wall), (0.0, 0.0, 0.0, 0.0));
    }

    #[test]
    fn spans_are_charged_once_and_add_up() {
        let mut c = PhaseClock::start();
        c.charge(Span::Update);
        c.charge_split(Span::Sample, Span::Scoring, 1e9);
        let s = c.finish();
        assert!(s.sample == 0.0, "inner time is clamped to the span");
        assert!(s.total() <= s.wall);
        let mut sum = PhaseSeconds::default();
        sum.add(&s);
        sum.add(&s);
        assert_eq!(sum.update, 2.0 * s.update);
    }
}
