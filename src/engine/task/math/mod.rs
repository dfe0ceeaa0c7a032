//! Math problems with boxed answers: the answer is the last `\boxed{}` near the end of
//! the completion, compared with the ground truth after Minerva's normalisation, as the
//! paper's reward (DAPO's verifier) does.
//!
//! * `boxed.rs`: the last box in the completion's last 300 characters.
//! * `normalize.rs`: Minerva's `normalize_final_answer`, faithful to the Python.
//! * `lenient.rs`: arbor's optional extra rules on top (`\dfrac`, `\left(`, `\%`, ...).
//! * `verifier.rs`: the verdict, with the reason the explorer shows.
//! * `data.rs`: JSONL problems with `problem` and `answer`.
//! * `problem.rs`: a problem's question and answer, its prompt, and the verdicts' reasons.
pub mod boxed;
pub mod data;
pub mod lenient;
pub mod normalize;
pub mod problem;
pub mod verifier;

#[cfg(test)]
mod tests;

pub use boxed::{last_boxed, TAIL_CHARS};
pub use data::load_math_jsonl;
pub use lenient::normalize_lenient;
pub use normalize::normalize_final_answer;
pub use problem::{problem, Instance, Reason, MATH_INSTRUCTION};
pub use verifier::{verify, MathVerifier, UnknownVerifier, Verdict};
// The name the fuzz target imports.
pub use verifier::verify as check_answer;
