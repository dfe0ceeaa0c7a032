//! Math problems as JSONL, one object a line: `problem` (text), `answer` (string or
//! number), optional `id` (string or number; the file's stem and line number otherwise).
//! Blank lines are skipped. Errors name the file, the line and the field at fault.
use std::path::Path;

use serde_json::{Map, Value};

use super::normalize::normalize_final_answer;
use super::problem::problem;
use crate::engine::task::data::{load_problems, DataError, LineError};
use crate::engine::task::Problem;

/// What only math checks of a problem line; part of [`LineError`].
#[derive(Debug, thiserror::Error)]
pub enum BadAnswer {
    /// A number JSON cannot keep exactly.
    #[error("field \"answer\": the number {text} cannot be read exactly; write it as a string")]
    InexactNumber { text: String },
    /// An answer that Minerva's normalisation deletes.
    #[error(
        "field \"answer\": {answer:?} is empty once normalised (Minerva's rules delete \
         it), so no completion could match it"
    )]
    EmptyOnceNormalised { answer: String },
}

/// Loads a math JSONL file.
pub fn load_math_jsonl(path: &Path) -> Result<Vec<Problem>, DataError> {
    load_problems(path, parse_line)
}

fn parse_line(text: &str, stem: &str, line: usize) -> Result<Problem, LineError> {
    let v: Value = serde_json::from_str(text).map_err(LineError::Json)?;
    let obj = v.as_object().ok_or_else(|| LineError::NotAnObject {
        found: kind(&v).into(),
    })?;
    let question = match obj.get("problem") {
        Some(Value::String(s)) if !s.trim().is_empty() => s.clone(),
        Some(Value::String(_)) => return Err(LineError::Empty { field: "problem" }),
        Some(other) => {
            return Err(LineError::Type {
                field: "problem",
                expected: "a string",
                found: kind(other).into(),
            })
        }
        None => return Err(LineError::Missing { field: "problem" }),
    };
    let answer = answer(obj)?;
    let id = match obj.get("id") {
        None | Some(Value::Null) => format!("{stem}-{line}"),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(LineError::Type {
                field: "id",
                expected: "a string or a number",
                found: kind(other).into(),
            })
        }
    };
    Ok(problem(id, question, answer))
}

/// The ground truth as text. A number is taken as JSON wrote it, unless JSON could not
/// keep it exactly (beyond 64-bit integers, or an exponent): then it must be a string.
fn answer(obj: &Map<String, Value>) -> Result<String, LineError> {
    let answer = match obj.get("answer") {
        Some(Value::String(s)) => s.trim().to_string(),
        Some(Value::Number(n)) => {
            let text = n.to_string();
            if text.contains(['e', 'E']) {
                return Err(BadAnswer::InexactNumber { text }.into());
            }
            text
        }
        Some(other) => {
            return Err(LineError::Type {
                field: "answer",
                expected: "a string or a number",
                found: kind(other).into(),
            })
        }
        None => return Err(LineError::Missing { field: "answer" }),
    };
    if answer.is_empty() {
        return Err(LineError::Empty { field: "answer" });
    }
    if normalize_final_answer(&answer).is_empty() {
        return Err(BadAnswer::EmptyOnceNormalised { answer }.into());
    }
    Ok(answer)
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Vec<Problem>, DataError> {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("train.jsonl");
        std::fs::write(&p, text).unwrap();
        load_math_jsonl(&p)
    }

    #[test]
    fn problems_answers_and_ids() {
        let ps = load(
            "\u{feff}{\"problem\": \"1+1?\", \"answer\": 2}\n\n\
             {\"problem\": \"Half?\", \"answer\": \" \\\\frac{1}{2} \", \"id\": \"h\"}\r\n\
             {\"problem\": \"Pi?\", \"answer\": 3.14, \"id\": 7}\n",
        )
        .unwrap();
        assert_eq!(ps.len(), 3);
        assert_eq!(
            (ps[0].id.as_str(), ps[0].math().map(|m| m.answer.as_str())),
            ("train-1", Some("2"))
        );
        assert_eq!(
            (ps[1].id.as_str(), ps[1].math().map(|m| m.answer.as_str())),
            ("h", Some("\\frac{1}{2}"))
        );
        assert_eq!(
            (ps[2].id.as_str(), ps[2].math().map(|m| m.answer.as_str())),
            ("7", Some("3.14"))
        );
        assert!(ps[0].prompt().starts_with("1+1?\n") && ps[0].prompt().contains("\\boxed{}"));
    }

    #[test]
    fn errors_name_file_line_and_field() {
        let ok = "{\"problem\": \"p\", \"answer\": \"1\"}\n";
        let cases = [
            ("{\"problem\": \"p\"}", "missing field \"answer\""),
            ("{\"answer\": \"1\"}", "missing field \"problem\""),
            (
                "{\"problem\": \"p\", \"answer\": [1]}",
                "field \"answer\": expected a string or a number, found an array",
            ),
            (
                "{\"problem\": \"p\", \"answer\": \" \"}",
                "field \"answer\": empty",
            ),
            (
                "{\"problem\": \"p\", \"answer\": \"units\"}",
                "field \"answer\": \"units\" is empty once normalised",
            ),
            ("{\"problem\": \"p\", \"answer\": 1e400}", "invalid JSON"),
            (
                "{\"problem\": \"p\", \"answer\": 123456789012345678901234}",
                "write it as a string",
            ),
            (
                "{\"problem\": 3, \"answer\": \"1\"}",
                "field \"problem\": expected a string, found a number",
            ),
            (
                "{\"problem\": \"\", \"answer\": \"1\"}",
                "field \"problem\": empty",
            ),
            (
                "{\"problem\": \"p\", \"answer\": \"1\", \"id\": true}",
                "field \"id\": expected a string or a number, found a boolean",
            ),
            ("[1, 2]", "expected a JSON object, found an array"),
            ("{\"problem\": \"p\", ", "invalid JSON"),
        ];
        for (line, want) in cases {
            let e = load(&format!("{ok}\n{line}\n")).unwrap_err().to_string();
            assert!(e.contains("train.jsonl line 3: "), "{e}");
            assert!(e.contains(want), "{line}: {e}");
        }
        assert!(load("\n\n")
            .unwrap_err()
            .to_string()
            .contains("no problems"));
        let missing = load_math_jsonl(Path::new("/nonexistent/m.jsonl")).unwrap_err();
        assert!(
            missing.to_string().contains("/nonexistent/m.jsonl"),
            "{missing}"
        );
    }
}
