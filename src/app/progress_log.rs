//! The plain progress line a headless run writes when stderr is not a terminal (nohup, a
//! scheduler's log), the way trainers' console loggers do: iteration, tokens, train
//! accuracy, loss, iterations per second, ETA, and evaluation results when they happen.
use std::str::FromStr;
use std::time::{Duration, Instant};

/// How often the line is written: every so many seconds, or iterations (`--log-every`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum LogEvery {
    Seconds(f64),
    Iterations(u64),
}

impl Default for LogEvery {
    fn default() -> Self {
        LogEvery::Seconds(10.0)
    }
}

impl FromStr for LogEvery {
    type Err = String;
    /// `30s`, `30` (seconds) or `100it` (iterations).
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || {
            format!("--log-every {s:?}: expected seconds (`30s` or `30`) or iterations (`100it`), more than 0")
        };
        let t = s.trim();
        if let Some(n) = t.strip_suffix("it") {
            return match n.trim().parse::<u64>() {
                Ok(n) if n > 0 => Ok(LogEvery::Iterations(n)),
                _ => Err(bad()),
            };
        }
        match t.strip_suffix('s').unwrap_or(t).trim().parse::<f64>() {
            Ok(x) if x.is_finite() && x > 0.0 => Ok(LogEvery::Seconds(x)),
            _ => Err(bad()),
        }
    }
}

/// What the line says, from the trainer's progress and the last committed iteration.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LineFacts {
    pub iteration: u64,
    pub total: u64,
    pub tokens: u64,
    pub accuracy: f64,
    pub loss: f64,
    /// Iterations per second since this process began training.
    pub rate: f64,
    pub eval_pass1: Option<f64>,
}

fn duration(s: f64) -> String {
    let s = s.round() as u64;
    match s {
        0..60 => format!("{s}s"),
        60..3600 => format!("{}m{:02}s", s / 60, s % 60),
        _ => format!("{}h{:02}m", s / 3600, s % 3600 / 60),
    }
}

/// `it 120/3000  tokens 45210  acc 0.06  loss -0.012  2.31 it/s  eta 20m46s | eval pass@1 0.083`
pub fn line(f: &LineFacts) -> String {
    let eta = if f.rate > 0.0 && f.total >= f.iteration {
        duration((f.total - f.iteration) as f64 / f.rate)
    } else {
        "-".into()
    };
    let eval = f
        .eval_pass1
        .map(|p| format!(" | eval pass@1 {p:.3}"))
        .unwrap_or_default();
    format!(
        "it {}/{}  tokens {}  acc {:.2}  loss {:+.3}  {:.2} it/s  eta {eta}{eval}",
        f.iteration, f.total, f.tokens, f.accuracy, f.loss, f.rate
    )
}

/// Decides when a line is due.
#[derive(Debug)]
pub struct ProgressLog {
    every: LogEvery,
    started: Option<(Instant, u64)>,
    last: Option<(Instant, u64)>,
}

impl ProgressLog {
    pub fn new(every: LogEvery) -> Self {
        Self {
            every,
            started: None,
            last: None,
        }
    }

    /// Iterations per second since the first iteration this process saw.
    pub fn rate(&mut self, iteration: u64) -> f64 {
        let (t0, i0) = *self.started.get_or_insert((Instant::now(), iteration));
        let dt = t0.elapsed().as_secs_f64();
        if dt > 0.0 && iteration > i0 {
            (iteration - i0) as f64 / dt
        } else {
            0.0
        }
    }

    /// Whether iteration `iteration` gets a line (always when `eval` is true).
    pub fn due(&mut self, iteration: u64, eval: bool) -> bool {
        let due = eval
            || match (self.every, self.last) {
                (_, None) => true,
                (LogEvery::Seconds(s), Some((t, _))) => t.elapsed() >= Duration::from_secs_f64(s),
                (LogEvery::Iterations(n), Some((_, i))) => iteration >= i + n,
            };
        if due {
            self.last = Some((Instant::now(), iteration));
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_every_parses_seconds_and_iterations_and_refuses_the_rest() {
        assert_eq!("30s".parse(), Ok(LogEvery::Seconds(30.0)));
        assert_eq!("2.5".parse(), Ok(LogEvery::Seconds(2.5)));
        assert_eq!("100it".parse(), Ok(LogEvery::Iterations(100)));
        for bad in ["0", "-1s", "0it", "fast", "nan", ""] {
            let e = bad.parse::<LogEvery>().unwrap_err();
            assert!(e.contains("--log-every"), "{e}");
        }
    }

    #[test]
    fn the_line_has_every_fact_and_an_eta_from_the_rate() {
        let f = LineFacts {
            iteration: 120,
            total: 3000,
            tokens: 45210,
            accuracy: 0.0625,
            loss: -0.0123,
            rate: 2.0,
            eval_pass1: Some(0.083),
        };
        assert_eq!(
            line(&f),
            "it 120/3000  tokens 45210  acc 0.06  loss -0.012  2.00 it/s  eta 24m00s | eval pass@1 0.083"
        );
        let f = LineFacts {
            rate: 0.0,
            eval_pass1: None,
            ..f
        };
        assert!(line(&f).ends_with("eta -"));
    }

    #[test]
    fn lines_are_due_every_n_iterations_and_at_evaluations() {
        let mut log = ProgressLog::new(LogEvery::Iterations(10));
        assert!(log.due(1, false));
        assert!(!log.due(5, false));
        assert!(log.due(7, true));
        assert!(!log.due(16, false));
        assert!(log.due(17, false));
    }
}
