//! The verifier as a security boundary: adversarial inputs (deep nesting, huge numbers,
//! unicode, NUL bytes, megabyte inputs) never panic or overflow the stack, and random
//! expressions agree with an independent exact evaluator written here (its own rational
//! type over an expression tree, sharing no code with the verifier's parser).
use proptest::prelude::*;

use super::*;

fn p(nums: &[i64], target: i64) -> Instance {
    Instance::new(nums.to_vec(), target)
}

fn loose() -> Rules {
    Rules {
        use_rule: UseRule::ExactlyOnce,
        nonneg_integers: false,
    }
}

/// An expression tree: leaves are numbers, nodes an operator over two subtrees.
#[derive(Clone, Debug)]
enum Expr {
    Num(i64),
    Op(char, Box<Expr>, Box<Expr>),
}

/// The reference: a reduced fraction over i128, None on overflow or division by zero.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Frac(i128, i128);

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.abs(), b.abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a.max(1)
}

impl Frac {
    fn make(n: i128, d: i128) -> Option<Frac> {
        if d == 0 {
            return None;
        }
        let g = gcd(n, d);
        let s = if d < 0 { -1 } else { 1 };
        Some(Frac(s * n / g, s * d / g))
    }
}

fn eval(e: &Expr) -> Option<Frac> {
    match e {
        Expr::Num(n) => Some(Frac(*n as i128, 1)),
        Expr::Op(o, a, b) => {
            let (Frac(an, ad), Frac(bn, bd)) = (eval(a)?, eval(b)?);
            match o {
                '+' => Frac::make(
                    an.checked_mul(bd)?.checked_add(bn.checked_mul(ad)?)?,
                    ad.checked_mul(bd)?,
                ),
                '-' => Frac::make(
                    an.checked_mul(bd)?.checked_sub(bn.checked_mul(ad)?)?,
                    ad.checked_mul(bd)?,
                ),
                '*' => Frac::make(an.checked_mul(bn)?, ad.checked_mul(bd)?),
                _ => Frac::make(an.checked_mul(bd)?, ad.checked_mul(bn)?),
            }
        }
    }
}

fn render(e: &Expr) -> String {
    match e {
        Expr::Num(n) => n.to_string(),
        Expr::Op(o, a, b) => format!("({}{o}{})", render(a), render(b)),
    }
}

fn leaves(e: &Expr, out: &mut Vec<i64>) {
    match e {
        Expr::Num(n) => out.push(*n),
        Expr::Op(_, a, b) => {
            leaves(a, out);
            leaves(b, out);
        }
    }
}

fn expr() -> impl Strategy<Value = Expr> {
    let leaf = (0i64..1000).prop_map(Expr::Num);
    leaf.prop_recursive(5, 24, 2, |inner| {
        (
            prop::sample::select(vec!['+', '-', '*', '/']),
            inner.clone(),
            inner,
        )
            .prop_map(|(o, a, b)| Expr::Op(o, Box::new(a), Box::new(b)))
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Same acceptance and the same value as the independent evaluator.
    #[test]
    fn random_expressions_agree_with_the_reference(e in expr(), hit in any::<bool>()) {
        let mut nums = Vec::new();
        leaves(&e, &mut nums);
        let want = eval(&e);
        // Aim at the true value half the time, so both verdicts are exercised.
        let target = match want {
            Some(Frac(n, 1)) if hit && n.abs() < 1_000_000_000 => n as i64,
            _ => 7,
        };
        let text = format!("<answer>{}</answer>", render(&e));
        let v = verify(&p(&nums, target), &text, &loose());
        match (want, &v.outcome) {
            (Some(Frac(n, 1)), Outcome::Correct) => prop_assert_eq!(n, target as i128),
            (Some(f), Outcome::WrongValue { value }) => {
                prop_assert!(f != Frac(target as i128, 1));
                let x = f.0 as f64 / f.1 as f64;
                prop_assert!((value - x).abs() <= 1e-9 * x.abs().max(1.0), "{text}: {value} vs {x}");
            }
            // Division by zero, or a value too large for the verifier's exact arithmetic.
            (None, Outcome::Invalid) => {}
            (Some(_), Outcome::Invalid) => prop_assert!(
                matches!(v.reason, Reason::TooLarge { .. } | Reason::TooDeep),
                "{text}: {v:?}"
            ),
            (w, o) => prop_assert!(false, "{text}: reference {w:?}, verifier {o:?}"),
        }
    }

    /// Arbitrary bytes, as lossy text, in both formats.
    #[test]
    fn arbitrary_bytes_never_panic(b in prop::collection::vec(any::<u8>(), 0..2000)) {
        let s = String::from_utf8_lossy(&b);
        let _ = verify(&p(&[1, 2, 3], 6), &s, &Rules::default());
        let _ = verify(&p(&[1, 2, 3], 6), &format!("<answer>{s}</answer>"), &Rules::default());
    }

    /// Text over the verifier's own alphabet, where parsing goes deepest.
    #[test]
    fn grammar_soup_never_panics(s in "[()+*/=0-9 \\n<>answer/-]{0,400}") {
        let _ = verify(&p(&[3, 7, 12], 15), &s, &Rules::default());
        let _ = verify(&p(&[3, 7, 12], 15), &format!("<answer>{s}</answer>"), &loose());
    }
}

#[test]
fn adversarial_inputs_are_refused_with_a_reason() {
    let rules = Rules::default();
    let q = p(&[1, 2, 3], 6);
    let cases: Vec<String> = vec![
        format!(
            "<answer>{}1{}</answer>",
            "(".repeat(200_000),
            ")".repeat(200_000)
        ),
        format!("{}1{}", "(".repeat(100_000), ")".repeat(100_000)),
        format!("<answer>{}</answer>", "9".repeat(100_000)),
        format!("{}+1={}", "9".repeat(50), "9".repeat(50)),
        "<answer>99999999999999999*99999999999999999*99999999999999999</answer>".into(),
        "<answer>１+２+３</answer>".into(),
        "1+2=3\n3+3=６\n".into(),
        "<answer>1+2+3\u{0}</answer>".into(),
        "\u{202e}1+2=3\n3+3=6".into(),
        "1\u{301}+2=3".into(),
        "<answer>".repeat(50_000),
        "</answer>".repeat(50_000),
        "1+2=3\n".repeat(300_000),
        "=".repeat(1_000_000),
        "(((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((((1))".into(),
        format!("<answer>{}</answer>", "1/".repeat(30_000) + "1"),
        format!("<answer>{}</answer>", "-".repeat(30_000) + "1"),
    ];
    for c in &cases {
        let v = verify(&q, c, &rules);
        assert!(!v.is_correct(), "{}...: accepted", &c[..c.len().min(40)]);
        assert!(!v.reason.to_string().is_empty());
    }
    // Deep nesting within the limit still works.
    let ok = format!("<answer>{}1+2+3{}</answer>", "(".repeat(30), ")".repeat(30));
    assert!(verify(&q, &ok, &rules).is_correct());
}
