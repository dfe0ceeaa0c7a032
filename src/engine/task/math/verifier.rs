//! Is a completion's boxed answer the ground truth? The paper's verifier (DAPO's
//! `compute_score_boxed`, which DeepSearch's released code trains with): the last box in
//! the completion's last 300 characters, both sides normalised the Minerva way, then
//! compared as strings. Arbor adds one equivalence: plain decimals equal in value match
//! (`0.50` and `.5`), compared exactly as decimal text, never through floats.

use serde::{Deserialize, Serialize};

use super::boxed::{last_boxed, TAIL_CHARS};
use super::lenient::{extra_rules, normalize_lenient};
use super::normalize::normalize_final_answer;

/// Which normalisation the verifier applies to both sides.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MathVerifier {
    /// Minerva's `normalize_final_answer`, as the paper's reward (the default).
    #[default]
    Minerva,
    /// Minerva's, then arbor's extra rules (`\dfrac`, `\left(`, `\%`, trailing `.`, ...;
    /// see `lenient.rs`). Accepts everything `Minerva` accepts, and more.
    Lenient,
}

/// The verdict on one completion.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Correct {
        /// The boxed text, as written.
        answer: String,
    },
    Wrong {
        /// The boxed text, as written.
        answer: String,
        /// The ground truth, as given.
        expected: String,
    },
    /// No box in the last [`TAIL_CHARS`] characters, or the last one never closes.
    NoAnswer,
}

impl Verdict {
    pub fn is_correct(&self) -> bool {
        matches!(self, Verdict::Correct { .. })
    }

    /// The reason the explorer shows; the same words as the Countdown verifier's reasons
    /// for math (`Reason::MathAnswer`, `Reason::NoBoxed`).
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Verdict::Correct { .. } => write!(f, "correct"),
            Verdict::Wrong { answer, expected } => {
                write!(f, "boxed answer {answer:?} is not {expected:?}")
            }
            Verdict::NoAnswer => write!(f, "no \\boxed{{}} in the last {TAIL_CHARS} characters"),
        }
    }
}

/// A math verifier name that is neither `minerva` nor `lenient`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown math verifier {0:?}; expected minerva or lenient")]
pub struct UnknownVerifier(pub String);

impl std::str::FromStr for MathVerifier {
    type Err = UnknownVerifier;
    fn from_str(s: &str) -> Result<Self, UnknownVerifier> {
        match s {
            "minerva" => Ok(MathVerifier::Minerva),
            "lenient" => Ok(MathVerifier::Lenient),
            o => Err(UnknownVerifier(o.to_string())),
        }
    }
}

impl MathVerifier {
    /// `answer` as this verifier compares it.
    pub fn normalize(self, answer: &str) -> String {
        match self {
            MathVerifier::Minerva => normalize_final_answer(answer),
            MathVerifier::Lenient => normalize_lenient(answer),
        }
    }

    /// Whether two answers are the same once normalised. An answer that normalises to
    /// nothing (`\boxed{}`, `\boxed{\ldots}`) matches nothing, not even an empty truth
    /// (DAPO would match those; the data loader rejects such truths).
    pub fn equivalent(self, answer: &str, expected: &str) -> bool {
        let (a, e) = (
            normalize_final_answer(answer),
            normalize_final_answer(expected),
        );
        same(&a, &e) || (self == MathVerifier::Lenient && same(&extra_rules(&a), &extra_rules(&e)))
    }

    /// Judges `completion` against the ground-truth `expected` answer.
    pub fn verify(self, completion: &str, expected: &str) -> Verdict {
        let Some(answer) = last_boxed(completion) else {
            return Verdict::NoAnswer;
        };
        let answer = answer.to_string();
        if self.equivalent(&answer, expected) {
            Verdict::Correct { answer }
        } else {
            Verdict::Wrong {
                answer,
                expected: expected.to_string(),
            }
        }
    }
}

/// Judges `completion` against `expected` with the paper's verifier ([`MathVerifier::Minerva`]).
pub fn verify(completion: &str, expected: &str) -> Verdict {
    MathVerifier::default().verify(completion, expected)
}

/// Equal normalised answers, or plain decimals of equal value.
fn same(answer: &str, expected: &str) -> bool {
    !answer.is_empty()
        && (answer == expected
            || matches!((decimal(answer), decimal(expected)), (Some(x), Some(y)) if x == y))
}

/// A plain decimal (`-0.50`, `+7`, `.5`, `3.`) in canonical form (`-0.5`, `7`, `0.5`,
/// `3`; zero is `0`), or None if `s` is anything else. Exact at any length.
fn decimal(s: &str) -> Option<String> {
    let (negative, unsigned) = match s.as_bytes().first()? {
        b'-' => (true, &s[1..]),
        b'+' => (false, &s[1..]),
        _ => (false, s),
    };
    let (whole, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let digits = |p: &str| p.bytes().all(|b| b.is_ascii_digit());
    if whole.len() + frac.len() == 0 || !digits(whole) || !digits(frac) {
        return None;
    }
    let whole = whole.trim_start_matches('0');
    let frac = frac.trim_end_matches('0');
    let magnitude = match (whole.is_empty(), frac.is_empty()) {
        (true, true) => return Some("0".into()),
        (_, true) => whole.to_string(),
        (true, false) => format!("0.{frac}"),
        (false, false) => format!("{whole}.{frac}"),
    };
    Some(if negative {
        format!("-{magnitude}")
    } else {
        magnitude
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_in_canonical_form() {
        let cases = [
            ("0.50", Some("0.5")),
            (".5", Some("0.5")),
            ("3.", Some("3")),
            ("007", Some("7")),
            ("+7", Some("7")),
            ("-0.0", Some("0")),
            ("-2.500", Some("-2.5")),
            ("12345678901234567891", Some("12345678901234567891")),
            (".", None),
            ("-", None),
            ("", None),
            ("1.2.3", None),
            ("1e3", None),
            ("--1", None),
            ("١٢", None),
        ];
        for (s, want) in cases {
            assert_eq!(decimal(s).as_deref(), want, "{s:?}");
        }
    }

    #[test]
    fn reasons_read_like_the_countdown_verifier() {
        assert_eq!(verify("\\boxed{8}", "8").reason(), "correct");
        assert_eq!(
            verify("\\boxed{7}", "8").reason(),
            "boxed answer \"7\" is not \"8\""
        );
        assert_eq!(
            verify("it is 8", "8").reason(),
            "no \\boxed{} in the last 300 characters"
        );
    }

    #[test]
    fn verifier_names_parse() {
        assert_eq!("minerva".parse(), Ok(MathVerifier::Minerva));
        assert_eq!("lenient".parse(), Ok(MathVerifier::Lenient));
        let e = "strict".parse::<MathVerifier>().unwrap_err().to_string();
        assert!(e.contains("minerva or lenient"), "{e}");
    }
}
