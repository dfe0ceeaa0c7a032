//! Every reason reachable, both formats, bounded time.
use super::*;

fn p(nums: &[i64], target: i64) -> Instance {
    Instance::new(nums.to_vec(), target)
}

fn r(text: &str) -> Reason {
    verify(&p(&[3, 7, 12], 15), text, &Rules::default()).reason
}

#[test]
fn correct_in_both_formats() {
    let v = verify(
        &p(&[3, 7, 12], 15),
        "12-7=5\n5*3=15\nans 15",
        &Rules::default(),
    );
    assert!(v.is_correct(), "{v:?}");
    let v = verify(
        &p(&[3, 7, 12], 15),
        "I think <answer>(12 - 7) * 3</answer>",
        &Rules::default(),
    );
    assert!(v.is_correct(), "{v:?}");
    // The last tag counts.
    let v = verify(
        &p(&[3, 7, 12], 15),
        "<answer>3+7+12</answer> no: <answer>3*(12-7)</answer>",
        &Rules::default(),
    );
    assert!(v.is_correct());
}

#[test]
fn every_reason_is_reachable() {
    assert_eq!(r(""), Reason::NoAnswer);
    assert_eq!(r("12-7=5\n"), Reason::NoAnswer);
    assert_eq!(
        r("12-7=5\n5x3=15"),
        Reason::BadToken {
            line: 2,
            found: 'x'
        }
    );
    assert_eq!(r("12-7"), Reason::Malformed { line: 1 });
    assert_eq!(
        r("12-9=3"),
        Reason::NumberNotAvailable { line: 1, number: 9 }
    );
    assert_eq!(r("12-7=5\n12-5=7"), Reason::NumberReused { number: 12 });
    assert_eq!(
        r("12-7=5\nans 5"),
        Reason::NumbersMissing { missing: vec![3] }
    );
    assert_eq!(
        r("12-7=6"),
        Reason::WrongArithmetic {
            line: 1,
            claimed: 6,
            actual: "5".into()
        }
    );
    assert_eq!(
        verify(&p(&[0, 4, 5], 1), "4/0=0", &Rules::default()).reason,
        Reason::DivisionByZero { line: 1 }
    );
    assert_eq!(
        r("3-7=-4"),
        Reason::BadIntermediate {
            line: 1,
            value: "-4".into()
        }
    );
    assert_eq!(
        r("7/3=2"),
        Reason::BadIntermediate {
            line: 1,
            value: "7/3".into()
        }
    );
    assert_eq!(
        r("12+7=19\n19*3=57\nans 57"),
        Reason::WrongValue {
            got: "57".into(),
            target: 15
        }
    );
    assert_eq!(r("99999999999999999999+1=3"), Reason::TooLarge { line: 1 });
    let deep = format!(
        "<answer>{}3{}</answer>",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert_eq!(r(&deep), Reason::TooDeep);
    assert!(matches!(r("ans 15 é"), Reason::BadToken { found: 'é', .. }));
    assert!(matches!(
        r("<answer>3+ä</answer>"),
        Reason::BadToken { found: 'ä', .. }
    ));
    // Every reason prints a sentence.
    assert_eq!(r("12-7=5\n12-5=7").to_string(), "number 12 reused");
}

#[test]
fn outcomes_separate_format_from_value() {
    let v = verify(
        &p(&[3, 7, 12], 15),
        "12+7=19\n19*3=57\nans 57",
        &Rules::default(),
    );
    assert_eq!(v.outcome, Outcome::WrongValue { value: 57.0 });
    assert_eq!(
        verify(&p(&[3, 7, 12], 15), "12-7=6", &Rules::default()).outcome,
        Outcome::Invalid
    );
    assert_eq!(
        verify(&p(&[3, 7, 12], 15), "hello", &Rules::default()).outcome,
        Outcome::Invalid
    );
    assert_eq!(
        verify(&p(&[3, 7, 12], 15), "", &Rules::default()).outcome,
        Outcome::NoAnswer
    );
}

#[test]
fn at_most_once_and_fractions() {
    let loose = Rules {
        use_rule: UseRule::AtMostOnce,
        nonneg_integers: false,
    };
    assert!(verify(&p(&[3, 7, 12], 4), "7-3=4\nans 4", &loose).is_correct());
    assert!(!verify(&p(&[3, 7, 12], 4), "7-3=4\nans 4", &Rules::default()).is_correct());
    let v = verify(&p(&[1, 5, 5, 5], 24), "<answer>5*(5-1/5)</answer>", &loose);
    assert!(v.is_correct(), "{v:?}");
    let strict = Rules::default();
    let v = verify(&p(&[1, 5, 5, 5], 24), "<answer>5*(5-1/5)</answer>", &strict);
    assert_eq!(v.outcome, Outcome::Invalid);
}

fn loose() -> Rules {
    Rules {
        use_rule: UseRule::ExactlyOnce,
        nonneg_integers: false,
    }
}

/// Runs `verify` and fails if it took a noticeable time (it is linear in the input).
fn timed(problem: &Instance, text: &str, rules: &Rules) -> Verdict {
    let t = std::time::Instant::now();
    let v = verify(problem, text, rules);
    assert!(
        t.elapsed().as_secs_f64() < 1.0,
        "{} bytes took {:?}",
        text.len(),
        t.elapsed()
    );
    v
}

#[test]
fn long_input_is_bounded() {
    // Longer than MAX_INPUT: rejected unread.
    let long = "1+1=2\n".repeat(100_000);
    let v = timed(&p(&[1, 1], 2), &long, &Rules::default());
    assert_eq!(v.outcome, Outcome::NoAnswer);
    assert_eq!(v.reason, Reason::TooLong { bytes: 600_000 });
    assert_eq!(
        v.reason.to_string(),
        "completion is 600000 bytes; the verifier reads at most 65536"
    );
    // Just under MAX_INPUT: read, and judged by its first bad step.
    let long = "1+1=2\n".repeat(MAX_INPUT / 6);
    let v = timed(&p(&[1, 1], 2), &long, &Rules::default());
    assert_eq!(v.reason, Reason::NumberReused { number: 1 });
    // Exactly MAX_INPUT bytes is still read.
    let mut exact = "3*(12-7)".to_string();
    exact = format!(
        "<answer>{exact}{}</answer>",
        " ".repeat(MAX_INPUT - 17 - exact.len())
    );
    assert_eq!(exact.len(), MAX_INPUT);
    assert!(timed(&p(&[3, 7, 12], 15), &exact, &Rules::default()).is_correct());
    // A megabyte of anything, in either format.
    for unit in ["(", "1", "\n", "\0", "é", "１", "ans 15\n", "<answer>"] {
        let mb = unit.repeat((1 << 20) / unit.len());
        let v = timed(&p(&[3, 7, 12], 15), &mb, &Rules::default());
        assert!(
            matches!(v.reason, Reason::TooLong { .. }),
            "{unit:?}: {v:?}"
        );
    }
}

/// Regression: input over MAX_INPUT used to be cut at 64 KiB, which could drop the real
/// last answer tag (an earlier correct one then counted) or shorten `ans 150` to `ans 15`.
#[test]
fn long_input_is_rejected_not_cut() {
    let pad = " ".repeat(MAX_INPUT);
    let text = format!("<answer>3*(12-7)</answer>{pad}<answer>3+7+12</answer>");
    let v = verify(&p(&[3, 7, 12], 15), &text, &Rules::default());
    assert!(matches!(v.reason, Reason::TooLong { .. }), "{v:?}");
    let steps = "12-7=5\n5*3=15\n";
    let pad = " ".repeat(MAX_INPUT - steps.len() - "ans 15".len());
    let text = format!("{steps}{pad}ans 150");
    let v = verify(&p(&[3, 7, 12], 15), &text, &Rules::default());
    assert_eq!(v.outcome, Outcome::NoAnswer, "{v:?}");
}

/// Regression: `(0-2^59)*2^59*512` is exactly i128::MIN, whose `abs()` in the rational
/// gcd panicked with overflow checks on.
#[test]
fn i128_min_intermediate_is_a_verdict_not_a_panic() {
    let p59 = 1i64 << 59;
    let prob = p(&[0, p59, p59, 512], 1);
    let v = verify(
        &prob,
        &format!("<answer>(0-{p59})*{p59}*512</answer>"),
        &loose(),
    );
    assert_eq!(
        v.reason,
        Reason::WrongValue {
            got: i128::MIN.to_string(),
            target: 1
        }
    );
    // One step further overflows: a verdict again.
    let prob = p(&[0, p59, p59, 512, 2], 1);
    let v = verify(
        &prob,
        &format!("<answer>(0-{p59})*{p59}*512*2</answer>"),
        &loose(),
    );
    assert_eq!(v.reason, Reason::TooLarge { line: 1 });
    // 2/-2^127 = -1/2^126 fits; 1/-2^127 does not.
    let v = verify(
        &prob,
        &format!("<answer>2/((0-{p59})*{p59}*512)</answer>"),
        &loose(),
    );
    assert_eq!(
        v.reason,
        Reason::WrongValue {
            got: format!("-1/{}", 1i128 << 126),
            target: 1
        }
    );
    let prob = p(&[0, p59, p59, 512, 1], 1);
    let v = verify(
        &prob,
        &format!("<answer>1/((0-{p59})*{p59}*512)</answer>"),
        &loose(),
    );
    assert_eq!(v.reason, Reason::TooLarge { line: 1 });
}

/// Regression: the step parser dropped every space before splitting, so `1 2-7=5` was
/// read as `12-7=5`.
#[test]
fn spaces_do_not_join_digits() {
    let prob = p(&[1, 2, 3, 7, 12], 15);
    let v = verify(&prob, "1 2-7=5", &Rules::default());
    assert_eq!(v.reason, Reason::Malformed { line: 1 });
    assert_eq!(r("12-7=5\n5*3=1 5"), Reason::Malformed { line: 2 });
    assert_eq!(r("12-7=5\n5*3=15\nans 1 5"), Reason::Malformed { line: 3 });
    // Spaces between tokens are fine, and a sign sticks to its digits.
    assert!(verify(
        &p(&[3, 7, 12], 15),
        "  12 - 7 = 5 \n 5 * 3 = 15\r\n ans 15 ",
        &Rules::default()
    )
    .is_correct());
    assert_eq!(
        verify(&p(&[3, 7, 12], 15), "12-- 7=19", &loose()).reason,
        Reason::Malformed { line: 1 }
    );
    assert_eq!(
        verify(&p(&[3, 7, 12], 15), "12--7=19", &loose()).reason,
        Reason::NumberNotAvailable {
            line: 1,
            number: -7
        }
    );
    assert!(
        verify(&p(&[3, 7, 12], -9), "3-12=-9\n-9*7=-63\n-63/7=-9", &loose())
            .reason
            .eq(&Reason::NumberReused { number: 7 })
    );
}

/// Regression: `str::trim` let Unicode spaces (U+3000, NEL, ...) around a step line
/// through, though only ASCII spaces are tokens.
#[test]
fn unicode_spaces_are_bad_tokens() {
    assert_eq!(
        r("\u{3000}12-7=5"),
        Reason::BadToken {
            line: 1,
            found: '\u{3000}'
        }
    );
    assert_eq!(
        r("12-7=5\n5*3=15\nans 15\u{85}"),
        Reason::BadToken {
            line: 3,
            found: '\u{85}'
        }
    );
}

#[test]
fn hostile_characters_are_bad_tokens() {
    let cases = [
        ("１２-7", '１'),
        ("12-7\0", '\0'),
        ("\u{200f}12-7", '\u{200f}'),
        ("12\u{301}-7", '\u{301}'),
        ("12-7\u{feff}", '\u{feff}'),
        ("12\t-7", '\t'),
        ("1\u{1d7d9}", '\u{1d7d9}'),
    ];
    for (expr, found) in cases {
        for text in [format!("{expr}=5"), format!("<answer>{expr}</answer>")] {
            assert_eq!(r(&text), Reason::BadToken { line: 1, found }, "{text:?}");
        }
    }
    // Reasons escape control and invisible characters when printed.
    assert_eq!(r("\u{1b}[2J").to_string(), "line 1: unexpected '\\u{1b}'");
    assert_eq!(r("\u{200f}").to_string(), "line 1: unexpected '\\u{200f}'");
}

#[test]
fn huge_numbers_are_too_large() {
    // 10^5 digits is over MAX_INPUT; 60 000 digits is read, digit by digit, once.
    let v = timed(&p(&[3, 7, 12], 15), &"9".repeat(100_000), &Rules::default());
    assert_eq!(v.reason, Reason::TooLong { bytes: 100_000 });
    let huge = "9".repeat(60_000);
    let prob = p(&[3, 7, 12], 15);
    for text in [
        format!("{huge}-7=5"),
        format!("12-{huge}=5"),
        format!("12-7={huge}"),
        format!("ans {huge}"),
        format!("<answer>{huge}</answer>"),
        format!("<answer>3*(12-{huge})</answer>"),
    ] {
        let v = timed(&prob, &text, &Rules::default());
        assert_eq!(v.reason, Reason::TooLarge { line: 1 }, "{}", &text[..20]);
    }
    // 18 digits are read; leading zeros count as digits.
    let max = "9".repeat(18);
    let v = verify(
        &p(&[3, 7, 12], 15),
        &format!("<answer>{max}</answer>"),
        &Rules::default(),
    );
    assert_eq!(
        v.reason,
        Reason::NumberNotAvailable {
            line: 1,
            number: 999_999_999_999_999_999
        }
    );
    assert_eq!(
        r(&format!("ans {}15", "0".repeat(17))),
        Reason::TooLarge { line: 1 }
    );
    // i64::MAX and beyond in steps; products of 18-digit numbers overflow i128 by the third.
    assert_eq!(r("ans -9223372036854775808"), Reason::TooLarge { line: 1 });
    let v = verify(
        &p(&[3, 7, 12], 15),
        &format!("<answer>{max}*{max}*{max}</answer>"),
        &loose(),
    );
    assert_eq!(v.reason, Reason::TooLarge { line: 1 });
}

#[test]
fn nesting_limit_is_exact() {
    let nest = |d: usize| {
        format!(
            "<answer>{}3*(12-7){}</answer>",
            "(".repeat(d),
            ")".repeat(d)
        )
    };
    let prob = p(&[3, 7, 12], 15);
    // `(12-7)` itself is one level.
    assert!(verify(&prob, &nest(MAX_DEPTH - 1), &Rules::default()).is_correct());
    assert_eq!(
        verify(&prob, &nest(MAX_DEPTH), &Rules::default()).reason,
        Reason::TooDeep
    );
    // Unbalanced floods are bounded too.
    for text in [
        format!("<answer>{}</answer>", "(".repeat(60_000)),
        format!("<answer>{}</answer>", ")".repeat(60_000)),
        format!("<answer>{}</answer>", "(1+".repeat(20_000)),
        "(".repeat(60_000),
    ] {
        let v = timed(&prob, &text, &Rules::default());
        assert_eq!(v.outcome, Outcome::Invalid);
    }
}

#[test]
fn many_steps_are_linear() {
    // Each step is checked, so a flood stops at the first one that uses up the pool.
    let nums: Vec<i64> = (1..=2000).collect();
    let mut text = String::new();
    for k in (2..=2000).step_by(2) {
        text.push_str(&format!("{}+{}={}\n", k - 1, k, 2 * k - 1));
    }
    let v = timed(&p(&nums, 1), &text, &loose());
    assert_eq!(v.reason, Reason::NoAnswer);
    let v = timed(&p(&nums, 1), &"\n".repeat(MAX_INPUT), &loose());
    assert_eq!(v.reason, Reason::NoAnswer);
}
