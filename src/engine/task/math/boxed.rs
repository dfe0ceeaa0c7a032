//! The last `\boxed{...}` of a completion: the answer the verifier reads.
//!
//! As DAPO's verifier does, only the end of the completion is searched, so an answer must
//! be given last, not quoted somewhere in the reasoning, and the work per completion is
//! bounded whatever its length. Besides DAPO's `\boxed{...}`, the forms of the MATH
//! benchmark's extractor are read too: `\fbox{...}` and the brace-less `\boxed 5`.

/// Characters at the end of a completion searched for the answer (DAPO: 300, "the longest
/// answer in MATH-500 has 159 characters").
pub const TAIL_CHARS: usize = 300;

/// The last [`TAIL_CHARS`] characters of `completion`.
pub fn tail(completion: &str) -> &str {
    let start = completion
        .char_indices()
        .rev()
        .nth(TAIL_CHARS - 1)
        .map_or(0, |(i, _)| i);
    &completion[start..]
}

/// The content of the last box in the completion's tail, braces balanced; None if there
/// is none, or if the last one never closes (DAPO then reads no answer, and neither does
/// arbor: an earlier box is not a fallback).
pub fn last_boxed(completion: &str) -> Option<&str> {
    let tail = tail(completion);
    let (start, form) = last_opener(tail)?;
    match form {
        Form::Braced => braced_content(&tail[start..]),
        Form::Bare => {
            // `\boxed 5$` or `\boxed 5`: to the closing `$`, the line's end or the end.
            let arg = &tail[start..];
            let end = arg.find(['$', '\n']).unwrap_or(arg.len());
            let v = arg[..end].trim();
            (!v.is_empty()).then_some(v)
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Form {
    /// `\boxed{`, `\boxed {`, `\fbox{`: the content starts after the brace.
    Braced,
    /// `\boxed 5`: the content starts after the spaces.
    Bare,
}

/// Where the content of the last box opener starts, and its form. `\boxedx` or a `\boxed`
/// at the very end opens nothing.
fn last_opener(tail: &str) -> Option<(usize, Form)> {
    let mut last = None;
    for name in ["\\boxed", "\\fbox"] {
        for (at, _) in tail.match_indices(name) {
            let after = &tail[at + name.len()..];
            let rest = after.trim_start_matches(' ');
            let skipped = after.len() - rest.len();
            let content = at + name.len() + skipped;
            let opener = if rest.starts_with('{') {
                Some((content + 1, Form::Braced))
            } else if skipped > 0 && name == "\\boxed" && !rest.is_empty() {
                Some((content, Form::Bare))
            } else {
                None
            };
            if let Some(o) = opener {
                if last.is_none_or(|(s, _)| s < o.0) {
                    last = Some(o);
                }
            }
        }
    }
    last
}

/// `body` is what follows an opening brace: everything up to its matching `}`.
fn braced_content(body: &str) -> Option<&str> {
    let mut depth = 1usize;
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    return Some(&body[..i]);
                }
            }
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_last_box_near_the_end() {
        let cases: [(&str, Option<&str>); 18] = [
            ("so \\boxed{5}", Some("5")),
            ("\\boxed{3} then \\boxed{4}.", Some("4")),
            ("\\boxed{\\frac{1}{2}}", Some("\\frac{1}{2}")),
            ("\\boxed{{a}{b}}", Some("{a}{b}")),
            ("\\boxed{\\{1, 2\\}}", Some("\\{1, 2\\}")),
            ("\\fbox{9}", Some("9")),
            ("\\boxed{1} \\fbox{9}", Some("9")),
            ("\\fbox{9} \\boxed{1}", Some("1")),
            ("$\\boxed 12$", Some("12")),
            ("\\boxed 12\nDone.", Some("12")),
            ("\\boxed {7}", Some("7")),
            ("\\boxed{2} and \\boxedx", Some("2")),
            ("\\boxed{2} and finally \\boxed", Some("2")),
            ("no box here", None),
            ("\\boxed{unclosed", None),
            ("\\boxed{1} then \\boxed{unclosed", None),
            ("\\boxed{}", Some("")),
            ("\\boxed{é ü 字}", Some("é ü 字")),
        ];
        for (text, want) in cases {
            assert_eq!(last_boxed(text), want, "extracting from {text:?}");
        }
    }

    #[test]
    fn only_the_tail_counts() {
        let late = format!("\\boxed{{1}}{}", "x".repeat(TAIL_CHARS));
        assert_eq!(last_boxed(&late), None);
        let just_in = format!("\\boxed{{1}}{}", "字".repeat(TAIL_CHARS - 10));
        assert_eq!(last_boxed(&just_in), Some("1"));
        // A box cut by the tail's start is not read either.
        let cut = format!("\\boxed{{1{}}}", "x".repeat(TAIL_CHARS));
        assert_eq!(last_boxed(&cut), None);
        assert_eq!(tail("abc"), "abc");
        assert_eq!(tail(&"é".repeat(1000)).chars().count(), TAIL_CHARS);
    }

    #[test]
    fn bounded_time_on_huge_input() {
        let huge = "\\boxed{".repeat(1 << 20);
        let start = std::time::Instant::now();
        assert_eq!(last_boxed(&huge), None);
        assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    }
}
