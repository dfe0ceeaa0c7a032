//! A verifier's verdict, for any task: how the completion ends ([`Outcome`], which the
//! reward reads) and why ([`Reason`], each task's own reasons behind one enum). Stored and
//! exported as they always were: a reason serializes as its task's reason does.
use serde::{Deserialize, Serialize};

use super::{countdown, math};

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Outcome {
    Correct,
    /// Well-formed and legal, but not the target.
    WrongValue {
        value: f64,
    },
    /// An answer is present but breaks a rule (or, for math, is not the ground truth).
    Invalid,
    /// No answer at all, or a completion too long to read.
    NoAnswer,
}

/// Why a completion got its verdict: the reason of the task that judged it. Untagged, so
/// the JSON is the task's reason itself (`"Correct"`, `{"NumberReused":{"number":3}}`,
/// `{"MathAnswer":{..}}`), as before the tasks had their own reasons.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reason {
    Countdown(countdown::Reason),
    Math(math::Reason),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Countdown(r) => r.fmt(f),
            Reason::Math(r) => r.fmt(f),
        }
    }
}

impl From<countdown::Reason> for Reason {
    fn from(r: countdown::Reason) -> Self {
        Reason::Countdown(r)
    }
}

impl From<math::Reason> for Reason {
    fn from(r: math::Reason) -> Self {
        Reason::Math(r)
    }
}

/// An outcome with its reason: a task's own reason type inside the task (`R`), the
/// neutral [`Reason`] everywhere else.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Verdict<R = Reason> {
    pub outcome: Outcome,
    pub reason: R,
}

impl<R> Verdict<R> {
    pub fn is_correct(&self) -> bool {
        self.outcome == Outcome::Correct
    }
    pub fn invalid(reason: R) -> Self {
        Verdict {
            outcome: Outcome::Invalid,
            reason,
        }
    }
    pub fn no_answer(reason: R) -> Self {
        Verdict {
            outcome: Outcome::NoAnswer,
            reason,
        }
    }
    /// The verdict with the task-neutral reason.
    pub fn neutral(self) -> Verdict
    where
        R: Into<Reason>,
    {
        Verdict {
            outcome: self.outcome,
            reason: self.reason.into(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reasons and verdicts as stored before the tasks had their own reason types.
    #[test]
    fn old_reasons_read_and_write_back_identically() {
        for old in [
            r#"{"outcome":"Correct","reason":"Correct"}"#,
            r#"{"outcome":"NoAnswer","reason":"NoAnswer"}"#,
            r#"{"outcome":"Invalid","reason":{"BadToken":{"line":2,"found":"x"}}}"#,
            r#"{"outcome":"Invalid","reason":{"NumbersMissing":{"missing":[3,7]}}}"#,
            r#"{"outcome":{"WrongValue":{"value":57.0}},"reason":{"WrongValue":{"got":"57","target":15}}}"#,
            r#"{"outcome":"Invalid","reason":{"MathAnswer":{"got":"41","expected":"42"}}}"#,
            r#"{"outcome":"NoAnswer","reason":"NoBoxed"}"#,
        ] {
            let v: Verdict = serde_json::from_str(old).unwrap();
            assert_eq!(serde_json::to_string(&v).unwrap(), old);
        }
        let math: Verdict = serde_json::from_str(
            r#"{"outcome":"Invalid","reason":{"MathAnswer":{"got":"41","expected":"42"}}}"#,
        )
        .unwrap();
        assert_eq!(
            math.reason,
            Reason::Math(math::Reason::MathAnswer {
                got: "41".into(),
                expected: "42".into()
            })
        );
        assert_eq!(math.reason.to_string(), "boxed answer \"41\" is not \"42\"");
        let no_box: Reason = serde_json::from_str(r#""NoBoxed""#).unwrap();
        assert_eq!(
            no_box.to_string(),
            "no \\boxed{} in the last 300 characters"
        );
        let reused: Reason = serde_json::from_str(r#"{"NumberReused":{"number":3}}"#).unwrap();
        assert_eq!(reused.to_string(), "number 3 reused");
    }
}
