//! Problem files of any task: JSONL, one problem a line, read with the task's own line
//! parser. Errors name the file, the line and the field; writing goes through a
//! temporary file and a rename.
use std::path::{Path, PathBuf};

use super::{countdown, math, Problem};

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

/// What is wrong with one line of a problem file (any task's), naming the field at
/// fault; [`DataError::Line`] adds the file and the line number.
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
    /// What only Countdown checks (the numbers' count and signs).
    #[error(transparent)]
    Countdown(#[from] countdown::data::BadNumbers),
    /// What only math checks (the ground truth).
    #[error(transparent)]
    Math(#[from] math::data::BadAnswer),
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
