//! JSONL problem files (`nums`, `target`, the public 3to4 set's field names). Errors name
//! the file, the line and the field; writing goes through a temporary file and a rename.
use std::path::Path;

use serde_json::Value;

use super::Instance;
use crate::engine::task::data::{load_problems, DataError, LineError};
use crate::engine::task::Problem;

/// Most numbers a problem may have (the solver is exhaustive).
pub const MAX_NUMBERS: usize = 8;

/// What only Countdown checks of a problem line; part of [`LineError`].
#[derive(Debug, thiserror::Error)]
pub enum BadNumbers {
    #[error("field \"nums\": {count} numbers, at most {MAX_NUMBERS} are supported")]
    TooMany { count: usize },
    #[error("field \"{field}\": {value} is negative (Countdown {what} are non-negative integers)")]
    Negative {
        field: &'static str,
        value: i64,
        /// "targets" or "numbers".
        what: &'static str,
    },
}

fn describe(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 {
        format!(
            "{}...",
            &s[..s.char_indices().nth(37).map_or(s.len(), |(i, _)| i)]
        )
    } else {
        s
    }
}

fn parse_line(text: &str, stem: &str, line: usize) -> Result<Problem, LineError> {
    let v: Value = serde_json::from_str(text).map_err(LineError::Json)?;
    let obj = v.as_object().ok_or_else(|| LineError::NotAnObject {
        found: describe(&v),
    })?;
    let nums_v = obj
        .get("nums")
        .ok_or(LineError::Missing { field: "nums" })?;
    let nums: Vec<i64> = nums_v
        .as_array()
        .and_then(|a| a.iter().map(|x| x.as_i64()).collect::<Option<Vec<_>>>())
        .ok_or_else(|| LineError::Type {
            field: "nums",
            expected: "an array of integers",
            found: describe(nums_v),
        })?;
    if nums.is_empty() {
        return Err(LineError::Empty { field: "nums" });
    }
    if nums.len() > MAX_NUMBERS {
        return Err(BadNumbers::TooMany { count: nums.len() }.into());
    }
    let t = obj
        .get("target")
        .ok_or(LineError::Missing { field: "target" })?;
    let target = t.as_i64().ok_or_else(|| LineError::Type {
        field: "target",
        expected: "an integer",
        found: describe(t),
    })?;
    if target < 0 {
        return Err(BadNumbers::Negative {
            field: "target",
            value: target,
            what: "targets",
        }
        .into());
    }
    if let Some(&n) = nums.iter().find(|&&n| n < 0) {
        return Err(BadNumbers::Negative {
            field: "nums",
            value: n,
            what: "numbers",
        }
        .into());
    }
    let id = match obj.get("id") {
        None | Some(Value::Null) => format!("{stem}-{line}"),
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        Some(other) => {
            return Err(LineError::Type {
                field: "id",
                expected: "a string",
                found: describe(other),
            })
        }
    };
    let opt_str = |k: &str| obj.get(k).and_then(|x| x.as_str()).map(str::to_string);
    Ok(Instance {
        nums,
        target,
        solution: opt_str("solution"),
        num_solutions: obj.get("num_solutions").and_then(|x| x.as_u64()),
        min_numbers: obj
            .get("min_numbers")
            .and_then(|x| x.as_u64())
            .map(|x| x as usize),
    }
    .into_problem(id))
}

pub fn load_jsonl(path: &Path) -> Result<Vec<Problem>, DataError> {
    load_problems(path, parse_line)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::task::data::write_jsonl;

    #[test]
    fn round_trip_and_line_numbered_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let probs = vec![Instance {
            nums: vec![1, 2, 3],
            target: 6,
            solution: Some("1+2=3\nans 3".into()),
            num_solutions: Some(2),
            min_numbers: Some(3),
        }
        .into_problem("a".into())];
        write_jsonl(&path, &probs).unwrap();
        assert_eq!(load_jsonl(&path).unwrap(), probs);

        std::fs::write(
            &path,
            "{\"nums\":[1,2],\"target\":3,\"extra\":1}\n\n{\"nums\":\"3,4\",\"target\":7}\n",
        )
        .unwrap();
        let e = load_jsonl(&path).unwrap_err().to_string();
        assert!(
            e.contains("line 3") && e.contains("\"nums\"") && e.contains("p.jsonl"),
            "{e}"
        );
        std::fs::write(&path, "{\"nums\":[1,2]}\n").unwrap();
        assert!(load_jsonl(&path)
            .unwrap_err()
            .to_string()
            .contains("missing field \"target\""));
        std::fs::write(&path, "{\"nums\":[1,2],\"target\":2.5}\n").unwrap();
        assert!(load_jsonl(&path)
            .unwrap_err()
            .to_string()
            .contains("\"target\""));
        std::fs::write(&path, "{\"nums\":[1,2],\"tar").unwrap();
        assert!(load_jsonl(&path)
            .unwrap_err()
            .to_string()
            .contains("line 1: invalid JSON"));
        std::fs::write(&path, "\n").unwrap();
        assert!(load_jsonl(&path)
            .unwrap_err()
            .to_string()
            .contains("no problems"));
        std::fs::write(&path, "{\"nums\":[1,2,3,4,5,6,7,8,9],\"target\":2}\n").unwrap();
        assert!(load_jsonl(&path)
            .unwrap_err()
            .to_string()
            .contains("at most 8"));
        // Ids default to the file stem and line.
        std::fs::write(&path, "\n{\"nums\":[1,2],\"target\":3}\n").unwrap();
        assert_eq!(load_jsonl(&path).unwrap()[0].id, "p-2");
    }
}
