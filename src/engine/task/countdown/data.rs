//! JSONL problem files (`nums`, `target`, the public 3to4 set's field names). Errors name
//! the file, the line and the field; writing goes through a temporary file and a rename.
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::Problem;

/// Most numbers a problem may have (the solver is exhaustive).
pub const MAX_NUMBERS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    // The line's error is part of the message, so it is not also a `source()`: a
    // report that prints the chain ("{:#}") would print it twice.
    #[error("{path} line {line}: {error}")]
    Line {
        path: PathBuf,
        line: usize,
        error: LineError,
    },
    #[error("{0}: no problems in the file")]
    Empty(PathBuf),
}

/// What is wrong with one line of a problem file (Countdown's or math's), naming the
/// field at fault; [`DataError::Line`] adds the file and the line number.
#[derive(Debug, thiserror::Error)]
pub enum LineError {
    #[error("invalid JSON: {0}")]
    Json(serde_json::Error),
    #[error("expected a JSON object, found {found}")]
    NotAnObject { found: String },
    #[error("missing field \"{field}\"")]
    Missing { field: &'static str },
    #[error("field \"{field}\": expected {expected}, found {found}")]
    Type {
        field: &'static str,
        expected: &'static str,
        found: String,
    },
    #[error("field \"{field}\": empty")]
    Empty { field: &'static str },
    #[error("field \"nums\": {count} numbers, at most {MAX_NUMBERS} are supported")]
    TooManyNumbers { count: usize },
    #[error("field \"{field}\": {value} is negative (Countdown {what} are non-negative integers)")]
    Negative {
        field: &'static str,
        value: i64,
        /// "targets" or "numbers".
        what: &'static str,
    },
    /// A math answer given as a number JSON cannot keep exactly.
    #[error("field \"answer\": the number {text} cannot be read exactly; write it as a string")]
    InexactNumber { text: String },
    /// A math answer that Minerva's normalisation deletes.
    #[error(
        "field \"answer\": {answer:?} is empty once normalised (Minerva's rules delete \
         it), so no completion could match it"
    )]
    EmptyOnceNormalised { answer: String },
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
        return Err(LineError::TooManyNumbers { count: nums.len() });
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
        return Err(LineError::Negative {
            field: "target",
            value: target,
            what: "targets",
        });
    }
    if let Some(&n) = nums.iter().find(|&&n| n < 0) {
        return Err(LineError::Negative {
            field: "nums",
            value: n,
            what: "numbers",
        });
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
    Ok(Problem {
        id,
        nums,
        target,
        solution: opt_str("solution"),
        num_solutions: obj.get("num_solutions").and_then(|x| x.as_u64()),
        min_numbers: obj
            .get("min_numbers")
            .and_then(|x| x.as_u64())
            .map(|x| x as usize),
        question: None,
        answer: None,
    })
}

pub fn load_jsonl(path: &Path) -> Result<Vec<Problem>, DataError> {
    load_problems(path, parse_line)
}

/// Reads a JSONL problem file with `parse(line text, file stem, line number)`: blank
/// lines and a leading byte-order mark are skipped, errors name the file and line, and an
/// empty file is refused. Shared by the Countdown and math loaders.
pub fn load_problems(
    path: &Path,
    parse: impl Fn(&str, &str, usize) -> Result<Problem, LineError>,
) -> Result<Vec<Problem>, DataError> {
    let text = std::fs::read_to_string(path).map_err(|source| DataError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "line".into());
    let mut out = Vec::new();
    for (i, l) in text.trim_start_matches('\u{feff}').lines().enumerate() {
        if l.trim().is_empty() {
            continue;
        }
        let p = parse(l, &stem, i + 1).map_err(|error| DataError::Line {
            path: path.to_path_buf(),
            line: i + 1,
            error,
        })?;
        out.push(p);
    }
    if out.is_empty() {
        return Err(DataError::Empty(path.to_path_buf()));
    }
    Ok(out)
}

pub fn write_jsonl(path: &Path, problems: &[Problem]) -> Result<(), DataError> {
    use std::io::Write;
    let io = |source| DataError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut text = String::new();
    for p in problems {
        let line = serde_json::to_string(p).map_err(|e| io(std::io::Error::other(e)))?;
        text.push_str(&line);
        text.push('\n');
    }
    let tmp = path.with_extension("jsonl.tmp");
    let mut f = std::fs::File::create(&tmp).map_err(io)?;
    f.write_all(text.as_bytes()).map_err(io)?;
    f.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_line_numbered_errors() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.jsonl");
        let probs = vec![Problem {
            id: "a".into(),
            nums: vec![1, 2, 3],
            target: 6,
            solution: Some("1+2=3\nans 3".into()),
            num_solutions: Some(2),
            min_numbers: Some(3),
            question: None,
            answer: None,
        }];
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
