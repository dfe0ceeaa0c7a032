//! Arbor's rules on top of Minerva's normalisation, for [`MathVerifier::Lenient`]
//! (`crate::engine::task::math::MathVerifier`).
//!
//! Minerva leaves `\dfrac{1}{2}`, `\left(1,2\right)` and `50\%` as they are, so the
//! paper's reward calls them wrong against `\frac{1}{2}`, `(1,2)` and `50`. These rules
//! (most from the MATH benchmark's `strip_string`) remove that TeX spelling. They run on
//! Minerva's output, so two answers Minerva makes equal stay equal: the lenient verifier
//! only ever turns a wrong verdict into a correct one.

use super::normalize::normalize_final_answer;

/// Minerva's normalisation, then arbor's extra rules.
pub fn normalize_lenient(answer: &str) -> String {
    extra_rules(&normalize_final_answer(answer))
}

/// Size commands whose spelling does not change the value.
const RENAMED: [(&str, &str); 4] = [
    ("\\dfrac", "\\frac"),
    ("\\tfrac", "\\frac"),
    ("\\dbinom", "\\binom"),
    ("\\tbinom", "\\binom"),
];

/// Spacing and style commands, and the percent sign.
const DROPPED: [&str; 6] = ["\\displaystyle", "\\!", "\\,", "\\:", "\\%", "%"];

/// Font wrappers whose content is kept (braces balanced, unlike Minerva's `\text{}`).
const UNWRAPPED: [&str; 3] = ["\\mathrm{", "\\mathbf{", "\\textrm{"];

/// The extra rules alone, applied to an answer Minerva's rules have normalised.
pub fn extra_rules(minerva: &str) -> String {
    let mut s: String = minerva.chars().filter(|c| !c.is_whitespace()).collect();
    for (before, after) in RENAMED {
        s = s.replace(before, after);
    }
    s = drop_delimiter_sizes(&s);
    for dropped in DROPPED {
        s = s.replace(dropped, "");
    }
    for cmd in UNWRAPPED {
        s = unwrap_balanced(&s, cmd);
    }
    s = drop_grouping_commas(&s);
    s.trim_end_matches('.').to_string()
}

/// `\left(` -> `(` and `\right]` -> `]`, but `\leftarrow` and `\rightarrow` stay.
fn drop_delimiter_sizes(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let cmd = &rest[at..];
        let size = ["\\left", "\\right"].into_iter().find(|name| {
            cmd.strip_prefix(name)
                .is_some_and(|after| !after.starts_with(|c: char| c.is_ascii_alphabetic()))
        });
        match size {
            Some(name) => rest = &cmd[name.len()..],
            None => {
                out.push('\\');
                rest = &cmd[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Every `\cmd{x}` becomes `x`, with `x` running to the matching brace. One pass: a
/// stack remembers which open braces belong to a dropped wrapper.
fn unwrap_balanced(s: &str, cmd: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut wrapper_braces = Vec::new();
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if rest.starts_with(cmd) {
            wrapper_braces.push(true);
            rest = &rest[cmd.len()..];
            continue;
        }
        match c {
            '{' => wrapper_braces.push(false),
            '}' if wrapper_braces.pop() == Some(true) => {
                rest = &rest[1..];
                continue;
            }
            _ => {}
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

/// `-1,234.5` -> `-1234.5`: commas go only from a number grouped in threes (Minerva
/// already does it for whole non-negative numbers), so the pair `(1,2)` keeps its comma.
fn drop_grouping_commas(s: &str) -> String {
    let unsigned = s.strip_prefix(['-', '+']).unwrap_or(s);
    let (whole, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    let mut groups = whole.split(',');
    let first = groups.next().unwrap_or_default();
    let digits = |g: &str| g.bytes().all(|b| b.is_ascii_digit());
    let grouped = whole.contains(',')
        && (1..=3).contains(&first.len())
        && digits(first)
        && groups.all(|g| g.len() == 3 && digits(g))
        && digits(frac);
    if grouped {
        s.replace(',', "")
    } else {
        s.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_extra_rule() {
        let cases = [
            // (raw, normalised)
            ("\\dfrac{1}{2}", "\\frac{1}{2}"),
            ("\\tfrac12", "\\frac{1}{2}"),
            ("\\dbinom{5}{2}", "\\binom{5}{2}"),
            ("\\left( 1, 2 \\right)", "(1,2)"),
            ("\\left[0,1\\right)", "[0,1)"),
            ("\\left\\{1\\right\\}", "\\{1\\}"),
            ("x\\leftarrow y", "x\\leftarrowy"),
            ("A \\rightarrow B", "A\\rightarrowB"),
            ("\\displaystyle\\frac{1}{2}", "\\frac{1}{2}"),
            ("1\\!000", "1000"),
            ("1\\,000", "1000"),
            ("50\\%", "50"),
            ("50%", "50"),
            ("\\mathrm{(B)}", "(B)"),
            ("\\mathbf{v}", "v"),
            ("\\mathrm{\\frac{1}{2}}", "\\frac{1}{2}"),
            ("\\mathrm{unclosed", "unclosed"),
            ("-1,234.5", "-1234.5"),
            ("1,234.5", "1234.5"),
            ("1,23.5", "1,23.5"),
            ("(1,2)", "(1,2)"),
            ("7.", "7"),
            ("x = 5.", "5"),
            ("\\text{5\\%.}", "5"),
            ("a\tb\nc", "abc"),
            ("", ""),
        ];
        for (raw, want) in cases {
            assert_eq!(normalize_lenient(raw), want, "normalising {raw:?}");
        }
    }

    #[test]
    fn linear_time_on_adversarial_input() {
        let start = std::time::Instant::now();
        for unit in ["\\mathrm{", "\\left", "{", "1,000", "\\"] {
            let _ = normalize_lenient(&unit.repeat((1 << 20) / unit.len()));
        }
        assert!(start.elapsed().as_secs() < 10, "{:?}", start.elapsed());
    }
}
