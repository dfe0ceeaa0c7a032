//! Minerva's `normalize_final_answer` (Lewkowycz et al., 2022): the normalisation DAPO's
//! math verifier, and so DeepSearch's released code, applies to both the boxed answer and
//! the ground truth before comparing them as strings.
//!
//! Written without regular expressions, in linear time. Each helper names the Python
//! `re.sub` it reproduces, including a detail that matters on multi-line answers: `.` in
//! those patterns never matches a newline, so every span they unwrap ends at a line's end.
//! Checked against the Python original on 700 random strings (`minerva_reference.json`,
//! produced by `scripts/minerva_reference.py`).

/// Applied in order, each to the whole string.
const SUBSTITUTIONS: [(&str, &str); 10] = [
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    ("\\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
];

/// Unit words and TeX noise deleted wherever they occur (so `"km"` also goes from
/// `"kmh"`: that is the original's behaviour and the paper's reward).
const REMOVED: [&str; 41] = [
    "square",
    "ways",
    "integers",
    "dollars",
    "mph",
    "inches",
    "hours",
    "km",
    "units",
    "\\ldots",
    "sue",
    "points",
    "feet",
    "minutes",
    "digits",
    "cents",
    "degrees",
    "cm",
    "gm",
    "pounds",
    "meters",
    "meals",
    "edges",
    "students",
    "childrentickets",
    "multiples",
    "\\text{s}",
    "\\text{.}",
    "\\text{\ns}",
    "\\text{}^2",
    "\\text{}^3",
    "\\text{\n}",
    "\\text{}",
    "\\mathrm{th}",
    "^\\circ",
    "^{\\circ}",
    "\\;",
    ",\\!",
    "{,}",
    "\"",
    "\\dots",
];

/// Minerva's normalisation of a final answer: the last `=`-separated part, without units,
/// dollar signs, `\text{}` wrappers and spaces, with `\frac12` and `\sqrt2` braced and
/// thousands separators dropped from whole numbers.
pub fn normalize_final_answer(answer: &str) -> String {
    let mut s = answer.rsplit('=').next().unwrap_or_default().to_string();
    for (before, after) in SUBSTITUTIONS {
        s = s.replace(before, after);
    }
    for removed in REMOVED {
        s = s.replace(removed, "");
    }
    s = per_line(&s, first_math_span);
    for cmd in ["\\text{", "\\textbf{", "\\overline{"] {
        s = unwrap_to_first_brace(&s, cmd);
    }
    s = per_line(&s, unwrap_boxed_to_last_brace);
    s = brace_short_fracs(&s);
    s = brace_short_sqrts(&s);
    s.retain(|c| c != '$');
    let digits = s.replace(',', "");
    // Python's `isdigit` also accepts other scripts' digits and superscripts; answers in
    // those are not worth a Unicode table, so only ASCII digits count here.
    if !digits.is_empty() && digits.chars().all(|c| c.is_ascii_digit()) {
        s = digits;
    }
    s.trim_matches(is_python_space).to_string()
}

/// The characters Python's `str.strip()` removes: Unicode whitespace plus the four
/// information separators U+001C..U+001F, which Rust's `trim` keeps.
fn is_python_space(c: char) -> bool {
    c.is_whitespace() || ('\u{1c}'..='\u{1f}').contains(&c)
}

/// Applies `f` to every line, keeping the newlines.
fn per_line(s: &str, f: fn(&str) -> String) -> String {
    s.split('\n').map(f).collect::<Vec<_>>().join("\n")
}

/// `re.sub(r"(.*?)(\$)(.*?)(\$)(.*)", "$\\3$", s)` on one line: a line holding two
/// dollar signs becomes its first `$...$` span.
fn first_math_span(line: &str) -> String {
    let Some(open) = line.find('$') else {
        return line.to_string();
    };
    match line[open + 1..].find('$') {
        Some(len) => format!("${}$", &line[open + 1..open + 1 + len]),
        None => line.to_string(),
    }
}

/// `re.sub(r"(\\cmd\{)(.*?)(\})", "\\2", s)`: every `\cmd{x}` becomes `x`, where `x`
/// runs to the first `}` (not the matching one) and may not cross a newline.
fn unwrap_to_first_brace(s: &str, cmd: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let (mut copied, mut search) = (0, 0);
    while let Some(found) = s[search..].find(cmd) {
        let start = search + found;
        let inner = start + cmd.len();
        let Some(len) = s[inner..].find(['}', '\n']) else {
            break;
        };
        let end = inner + len;
        if s.as_bytes()[end] == b'}' {
            out.push_str(&s[copied..start]);
            out.push_str(&s[inner..end]);
            copied = end + 1;
            search = copied;
        } else {
            // Every occurrence before this newline meets it before any `}`: skip them all.
            search = end;
        }
    }
    out.push_str(&s[copied..]);
    out
}

/// `re.sub(r"(\\boxed\{)(.*)(\})", "\\2", s)` on one line: the first `\boxed{` loses its
/// opening and the line's last `}` (greedy), whatever lies between.
fn unwrap_boxed_to_last_brace(line: &str) -> String {
    const OPEN: &str = "\\boxed{";
    let Some(start) = line.find(OPEN) else {
        return line.to_string();
    };
    let inner = start + OPEN.len();
    match line.rfind('}') {
        Some(close) if close >= inner => {
            format!(
                "{}{}{}",
                &line[..start],
                &line[inner..close],
                &line[close + 1..]
            )
        }
        _ => line.to_string(),
    }
}

/// `re.sub(r"(frac)([^{])(.)", "frac{\\2}{\\3}", s)`: `\frac12` -> `\frac{1}{2}`,
/// `\frac1{2}` -> `\frac{1}{{}2}` (sic: the original does that too).
fn brace_short_fracs(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 8);
    let mut i = 0;
    while i < chars.len() {
        let short_frac = chars[i..].starts_with(&['f', 'r', 'a', 'c'])
            && i + 5 < chars.len()
            && chars[i + 4] != '{'
            && chars[i + 5] != '\n';
        if short_frac {
            out.push_str("frac{");
            out.push(chars[i + 4]);
            out.push_str("}{");
            out.push(chars[i + 5]);
            out.push('}');
            i += 6;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

/// `re.sub(r"(sqrt)([^{])", "sqrt{\\2}", s)`: `\sqrt2` -> `\sqrt{2}`.
fn brace_short_sqrts(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut out = String::with_capacity(s.len() + 4);
    let mut i = 0;
    while i < chars.len() {
        if chars[i..].starts_with(&['s', 'q', 'r', 't'])
            && i + 4 < chars.len()
            && chars[i + 4] != '{'
        {
            out.push_str("sqrt{");
            out.push(chars[i + 4]);
            out.push('}');
            i += 5;
        } else {
            out.push(chars[i]);
            i += 1;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// One case per rule of the original, with the output the Python code gives.
    #[test]
    fn each_minerva_rule() {
        let cases = [
            // (raw, normalised)
            ("42", "42"),
            ("  42  ", "42"),
            ("x = 5", "5"),
            ("y=2x+1=7", "7"),
            ("100,000", "100000"),
            ("1,234,567", "1234567"),
            ("-1,000", "-1,000"),
            ("(1,2)", "(1,2)"),
            ("1,2", "12"),
            ("\\$5", "5"),
            ("5 dollars", "5"),
            ("12 inches", "12"),
            ("3 \\text{ cm}", "3"),
            ("90^\\circ", "90"),
            ("90^{\\circ}", "90"),
            ("\\text{(A)}", "(A)"),
            ("\\mbox{(A)}", "(A)"),
            ("\\textbf{B}", "B"),
            ("\\overline{AB}", "AB"),
            ("\\boxed{7}", "7"),
            ("\\frac12", "\\frac{1}{2}"),
            ("\\dfrac12", "\\dfrac{1}{2}"),
            ("\\frac{3}{4}", "\\frac{3}{4}"),
            ("\\frac1{2}", "\\frac{1}{{}2}"),
            ("\\sqrt2", "\\sqrt{2}"),
            ("2\\sqrt3", "2\\sqrt{3}"),
            ("\\sqrt{3}", "\\sqrt{3}"),
            ("$x^2$", "x^2"),
            ("the answer is $7$ apples", "7"),
            ("3 \\text{ and } 4", "34"),
            ("3, \\text{and} 4", "34"),
            ("10\\%", "10\\%"),
            ("5 units", "5"),
            ("\\ldots", ""),
            ("4 \\; 5", "45"),
            ("1,\\!000", "1000"),
            ("\\left( 1, 2 \\right)", "\\left(1,2\\right)"),
            ("an apple", "apple"),
            ("\"quoted\"", "quoted"),
            ("7.", "7."),
            ("7.$", "7"),
            ("2 cm", "2"),
            ("120 degrees", "120"),
            ("5\\text{th}", "5th"),
            ("5\\mathrm{th}", "5"),
            ("1{,}000", "1000"),
            ("\\$\\ 3", "3"),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_final_answer(raw), want, "normalising {raw:?}");
        }
    }

    /// Where `.` not matching a newline changes the result.
    #[test]
    fn spans_stop_at_line_ends_as_in_python() {
        assert_eq!(normalize_final_answer("a\n$x$b"), "a\nx");
        assert_eq!(normalize_final_answer("\\text{a\n\\text{b}"), "\\text{a\nb");
        assert_eq!(normalize_final_answer("\\boxed{1}\n\\boxed{2}}"), "1\n2}");
    }

    #[test]
    fn strips_what_python_strips() {
        assert_eq!(normalize_final_answer("\u{1c}5\u{a0}"), "5");
    }

    /// 700 random strings over the characters the rules act on (newlines, tabs and
    /// non-ASCII letters among them), normalised by the Python original.
    #[test]
    fn agrees_with_the_python_reference() {
        let pairs: Vec<(String, String)> =
            serde_json::from_str(include_str!("minerva_reference.json")).unwrap();
        assert_eq!(pairs.len(), 700);
        let wrong: Vec<String> = pairs
            .iter()
            .filter(|(raw, want)| &normalize_final_answer(raw) != want)
            .map(|(raw, want)| {
                format!(
                    "{raw:?}: want {want:?}, got {:?}",
                    normalize_final_answer(raw)
                )
            })
            .collect();
        assert!(
            wrong.is_empty(),
            "{} disagreements:\n{}",
            wrong.len(),
            wrong.join("\n")
        );
    }

    /// A megabyte of the patterns that would make a naive rescan quadratic.
    #[test]
    fn linear_time_on_adversarial_input() {
        let start = std::time::Instant::now();
        for unit in ["\\text{", "\\boxed{", "$", "frac", "sqrt", "\\text{a\n"] {
            let s = unit.repeat((1 << 20) / unit.len());
            let _ = normalize_final_answer(&s);
        }
        assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    }
}
