//! Golden verdicts: one or more completions per rule of extraction and normalisation,
//! judged by both verifiers, and properties over arbitrary strings.
use proptest::prelude::*;

use super::*;

#[derive(Clone, Copy, Debug, PartialEq)]
enum V {
    /// Correct.
    C,
    /// Wrong: a box, but not the answer.
    W,
    /// No answer.
    N,
}
use V::{C, N, W};

fn kind(v: &Verdict) -> V {
    match v {
        Verdict::Correct { .. } => C,
        Verdict::Wrong { .. } => W,
        Verdict::NoAnswer => N,
    }
}

/// (completion, ground truth, Minerva's verdict, Lenient's verdict).
const GOLDEN: &[(&str, &str, V, V)] = &[
    // Extraction.
    ("The answer is \\boxed{42}.", "42", C, C),
    ("So \\boxed{41}.", "42", W, W),
    ("The answer is 42.", "42", N, N),
    ("\\boxed{42", "42", N, N),
    ("\\boxed{1} is wrong, \\boxed{2} is right", "2", C, C),
    ("\\boxed{2} is right, \\boxed{1} is wrong", "2", W, W),
    ("\\boxed{2}, then \\boxed{unclosed", "2", N, N),
    ("\\fbox{9}", "9", C, C),
    ("$\\boxed 9$", "9", C, C),
    ("\\boxed {9}", "9", C, C),
    ("\\boxed{\\boxed{5}}", "5", C, C),
    ("\\boxed{5}\n\nThat is all.", "5", C, C),
    ("答案是 \\boxed{字}", "字", C, C),
    ("\\boxed{}", "5", W, W),
    // Equations: the last side.
    ("\\boxed{x = 5}", "5", C, C),
    ("\\boxed{5}", "x=5", C, C),
    ("\\boxed{y = 2x + 1 = 7}", "7", C, C),
    // Spaces, dollars, quotes.
    ("\\boxed{ 8 }", "8", C, C),
    ("\\boxed{(1, 2)}", "(1,2)", C, C),
    ("\\boxed{-7}", "- 7", C, C),
    ("\\boxed{\\$5}", "5", C, C),
    ("\\boxed{x^2+1}", "$x^2+1$", C, C),
    // Units and their text wrappers.
    ("\\boxed{5 \\text{ dollars}}", "5", C, C),
    ("\\boxed{12 \\text{ inches}}", "12", C, C),
    ("\\boxed{3\\text{ cm}^2}", "3", C, C),
    ("\\boxed{\\text{5 meters}}", "5", C, C),
    ("\\boxed{2\\;\\text{km}}", "2", C, C),
    ("\\boxed{5 units}", "5", C, C),
    // Degrees.
    ("\\boxed{90^\\circ}", "90", C, C),
    ("\\boxed{90^{\\circ}}", "90", C, C),
    // Text and choice wrappers.
    ("\\boxed{\\text{(C)}}", "(C)", C, C),
    ("\\boxed{\\textbf{(C)}}", "(C)", C, C),
    ("\\boxed{\\mbox{(B)}}", "(B)", C, C),
    ("\\boxed{\\mathrm{(A)}}", "(A)", W, C),
    ("\\boxed{3 \\text{and} 4}", "3,4", C, C),
    // Shorthand TeX.
    ("\\boxed{\\frac12}", "\\frac{1}{2}", C, C),
    ("\\boxed{\\sqrt2}", "\\sqrt{2}", C, C),
    ("\\boxed{2\\sqrt3}", "2\\sqrt{3}", C, C),
    ("\\boxed{\\dfrac{1}{2}}", "\\frac{1}{2}", W, C),
    ("\\boxed{\\tfrac{3}{4}}", "\\frac34", W, C),
    ("\\boxed{\\displaystyle\\frac{1}{2}}", "\\frac{1}{2}", W, C),
    // Delimiters and spacing commands.
    ("\\boxed{\\left( 1, 2 \\right)}", "(1,2)", W, C),
    ("\\boxed{\\left[0, 1\\right)}", "[0,1)", W, C),
    ("\\boxed{\\{1, 2\\}}", "\\{1,2\\}", C, C),
    ("\\boxed{1,\\!000}", "1000", C, C),
    ("\\boxed{1\\!000}", "1000", W, C),
    ("\\boxed{1\\,000}", "1000", W, C),
    // Percent and trailing periods.
    ("\\boxed{50\\%}", "50", W, C),
    ("\\boxed{50\\%}", "50\\%", C, C),
    ("\\boxed{7.}", "7", C, C),
    ("\\boxed{\\text{Monday}.}", "\\text{Monday}", W, C),
    // Thousands separators.
    ("\\boxed{100,000}", "100000", C, C),
    ("\\boxed{100000}", "100,000", C, C),
    ("\\boxed{-1,000}", "-1000", W, C),
    ("\\boxed{1,234.5}", "1234.5", W, C),
    ("\\boxed{1,2}", "12", C, C),
    // Plain decimals compare by value, exactly.
    ("\\boxed{0.50}", "0.5", C, C),
    ("\\boxed{.5}", "0.5", C, C),
    ("\\boxed{+5}", "5", C, C),
    (
        "\\boxed{12345678901234567891}",
        "12345678901234567890",
        W,
        W,
    ),
    // No equivalences Minerva does not have.
    ("\\boxed{0.5}", "\\frac{1}{2}", W, W),
    ("\\boxed{\\frac{1}{2}}", "1/2", W, W),
    ("\\boxed{2x+1}", "1+2x", W, W),
    // A ground truth given boxed is unboxed too.
    ("\\boxed{7}", "\\boxed{7}", C, C),
    // An answer normalised to nothing matches nothing.
    ("\\boxed{\\ldots}", "\\ldots", W, W),
];

#[test]
fn golden_verdicts() {
    assert!(GOLDEN.len() >= 40);
    let mut wrong = Vec::new();
    for &(completion, truth, minerva, lenient) in GOLDEN {
        for (verifier, want) in [
            (MathVerifier::Minerva, minerva),
            (MathVerifier::Lenient, lenient),
        ] {
            let got = verifier.verify(completion, truth);
            if kind(&got) != want {
                wrong.push(format!(
                    "{verifier:?} on {completion:?} vs {truth:?}: want {want:?}, got {got:?}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn verify_is_the_minerva_verifier() {
    for &(completion, truth, minerva, _) in GOLDEN {
        assert_eq!(kind(&verify(completion, truth)), minerva, "{completion:?}");
        assert_eq!(check_answer(completion, truth), verify(completion, truth));
    }
}

#[test]
fn verdicts_keep_the_text_as_written() {
    assert_eq!(
        verify("\\boxed{\\frac12}", "\\frac{1}{2}"),
        Verdict::Correct {
            answer: "\\frac12".into()
        }
    );
    assert_eq!(
        verify("so \\boxed{ 7 }.", " 8"),
        Verdict::Wrong {
            answer: " 7 ".into(),
            expected: " 8".into()
        }
    );
}

/// An answer lost early in a long completion is not read.
#[test]
fn only_the_last_characters_are_searched() {
    let early = format!("\\boxed{{42}}{}", " and so on".repeat(40));
    assert_eq!(verify(&early, "42"), Verdict::NoAnswer);
    let late = format!("{}\\boxed{{42}}", " and so on".repeat(10_000));
    assert!(verify(&late, "42").is_correct());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn nothing_panics_on_arbitrary_text(s in any::<String>(), t in "[\\\\{}a-z0-9 $=,.^%\n]{0,80}") {
        let _ = last_boxed(&s);
        let _ = normalize_final_answer(&s);
        let _ = normalize_lenient(&s);
        for v in [MathVerifier::Minerva, MathVerifier::Lenient] {
            let _ = v.verify(&s, &t);
            let _ = v.verify(&t, &s);
            let _ = v.verify(&format!("\\boxed{{{s}}}"), &t);
            let _ = v.verify(&format!("\\boxed{{{t}}}"), &s);
        }
    }

    /// TeX soup over the characters the rules act on.
    #[test]
    fn lenient_accepts_all_minerva_accepts(
        a in "(\\\\(left|right|dfrac|frac|text|%|!|,)|[{}()$=,.% 0-9x])*",
        b in "(\\\\(left|right|dfrac|frac|text|%|!|,)|[{}()$=,.% 0-9x])*",
    ) {
        if MathVerifier::Minerva.equivalent(&a, &b) {
            prop_assert!(MathVerifier::Lenient.equivalent(&a, &b));
        }
    }

    /// Boxed after any text, a brace-free answer is read back whole, and matches itself
    /// unless it normalises to nothing.
    #[test]
    fn a_boxed_answer_is_read_back_and_matches_itself(
        before in any::<String>(),
        t in "[^\\\\{}]{0,100}",
    ) {
        let completion = format!("{before}\\boxed{{{t}}}");
        prop_assert_eq!(last_boxed(&completion), Some(t.as_str()));
        for v in [MathVerifier::Minerva, MathVerifier::Lenient] {
            let empty = normalize_final_answer(&t).is_empty();
            prop_assert_eq!(v.verify(&completion, &t).is_correct(), !empty);
        }
    }
}
