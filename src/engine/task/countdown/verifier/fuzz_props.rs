//! A second verifier written from the grammar alone, and random answers (well-formed,
//! mutated, deeply nested, arbitrary) on which the two must agree.
//!
//! The reference shares no code with the verifier: it lexes first and parses with a
//! shunting-yard into postfix (the verifier is recursive descent), it computes with its
//! own fraction type whose cross-cancelling arithmetic overflows later than `Rational`,
//! and it has its own step-line lexer and pool. It agrees with the verifier on the full
//! verdict (outcome and reason) whenever the answer parses; when the answer does not
//! parse, the verifier may instead report an arithmetic error from the part it already
//! evaluated (it evaluates while parsing), and the verdict must still be `Invalid`.
use proptest::prelude::*;

use super::*;

/// The documented limit on a number's digits.
const DIGITS: usize = 18;
const STEP_CHARS: &str = "0123456789+-*/=() ans";
const EXPR_CHARS: &str = "0123456789+-*/() ";

fn problem(nums: &[i64], target: i64) -> Instance {
    Instance::new(nums.to_vec(), target)
}

fn rules(exactly_once: bool, nonneg: bool) -> Rules {
    Rules {
        use_rule: if exactly_once {
            UseRule::ExactlyOnce
        } else {
            UseRule::AtMostOnce
        },
        nonneg_integers: nonneg,
    }
}

// ---------------------------------------------------------------- reference fractions

/// `n/d` in lowest terms, `d > 0`, `n != i128::MIN`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Q {
    n: i128,
    d: i128,
}

fn gcd(a: i128, b: i128) -> i128 {
    let (mut a, mut b) = (a.unsigned_abs(), b.unsigned_abs());
    while b != 0 {
        (a, b) = (b, a % b);
    }
    // Both inputs exclude i128::MIN, so the gcd fits.
    a as i128
}

impl Q {
    fn int(n: i64) -> Q {
        Q { n: n.into(), d: 1 }
    }

    fn make(n: i128, d: i128) -> Option<Q> {
        if d == 0 || n == i128::MIN || d == i128::MIN {
            return None;
        }
        let g = gcd(n, d);
        let s = d.signum();
        Some(Q {
            n: s * n / g,
            d: s * d / g,
        })
    }

    fn add(self, o: Q) -> Option<Q> {
        let g = gcd(self.d, o.d);
        let n = self
            .n
            .checked_mul(o.d / g)?
            .checked_add(o.n.checked_mul(self.d / g)?)?;
        Q::make(n, (self.d / g).checked_mul(o.d)?)
    }

    fn mul(self, o: Q) -> Option<Q> {
        let (g1, g2) = (gcd(self.n, o.d).max(1), gcd(o.n, self.d).max(1));
        let n = (self.n / g1).checked_mul(o.n / g2)?;
        Q::make(n, (self.d / g2).checked_mul(o.d / g1)?)
    }

    /// None for overflow; the caller rules out division by zero.
    fn apply(self, op: char, o: Q) -> Option<Q> {
        match op {
            '+' => self.add(o),
            '-' => self.add(Q { n: -o.n, d: o.d }),
            '*' => self.mul(o),
            _ => self.mul(Q::make(o.d, o.n)?),
        }
    }

    fn text(self) -> String {
        if self.d == 1 {
            format!("{}", self.n)
        } else {
            format!("{}/{}", self.n, self.d)
        }
    }
}

// ---------------------------------------------------------------- reference verifier

/// What the reference expects of the verifier.
#[derive(Debug)]
enum Expect {
    /// Exactly this verdict.
    Exact(Verdict),
    /// This verdict, or `TooLarge`: an operand reached 2^63, so the products `Rational`
    /// forms on the way may overflow i128 where the reference's cross-cancelling ones
    /// did not. Below 2^63 every product fits, so the verifier must not refuse.
    ExactOrTooLarge(Verdict),
    /// The answer does not parse, for this reason; the verifier may report an arithmetic
    /// error it met first.
    Syntax(Reason),
    /// The reference's own arithmetic overflowed: the value is beyond any check.
    Overflow,
}

fn invalid(reason: Reason) -> Verdict {
    Verdict {
        outcome: Outcome::Invalid,
        reason,
    }
}

fn judged(v: Q, target: i64) -> Verdict {
    if v == Q::int(target) {
        Verdict {
            outcome: Outcome::Correct,
            reason: Reason::Correct,
        }
    } else {
        Verdict {
            outcome: Outcome::WrongValue {
                value: v.n as f64 / v.d as f64,
            },
            reason: Reason::WrongValue {
                got: v.text(),
                target,
            },
        }
    }
}

/// A literal: optional `-`, then digits; at most 18 digits.
fn literal(s: &str, line: usize) -> Result<i64, Reason> {
    let digits = s.trim_start_matches('-').len();
    if digits > DIGITS {
        return Err(Reason::TooLarge { line });
    }
    s.parse().map_err(|_| Reason::Malformed { line })
}

/// The multiset rule: `used` in order against `nums`, then (exactly once) nothing left.
fn pool_check(nums: &[i64], used: &[i64], r: &Rules) -> Result<(), Reason> {
    let mut left = nums.to_vec();
    for &u in used {
        match left.iter().position(|&x| x == u) {
            Some(i) => {
                left.remove(i);
            }
            None if nums.contains(&u) => return Err(Reason::NumberReused { number: u }),
            None => return Err(Reason::NumberNotAvailable { line: 1, number: u }),
        }
    }
    if r.use_rule == UseRule::ExactlyOnce && !left.is_empty() {
        left.sort_unstable();
        return Err(Reason::NumbersMissing { missing: left });
    }
    Ok(())
}

fn reference(p: &Instance, text: &str, r: &Rules) -> Expect {
    if text.len() > MAX_INPUT {
        return Expect::Exact(Verdict {
            outcome: Outcome::NoAnswer,
            reason: Reason::TooLong { bytes: text.len() },
        });
    }
    let tag = text.match_indices("<answer>").last().and_then(|(i, _)| {
        let body = &text[i + "<answer>".len()..];
        body.find("</answer>").map(|j| &body[..j])
    });
    match tag {
        Some(expr) => reference_expression(p, expr, r),
        None => Expect::Exact(reference_steps(p, text, r)),
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tok<'a> {
    Num(&'a str),
    Op(char),
    Open,
    Close,
}

/// Postfix: literals and operators.
enum Post<'a> {
    Lit(&'a str),
    Op(char),
}

fn precedence(op: char) -> u8 {
    if op == '+' || op == '-' {
        1
    } else {
        2
    }
}

fn reference_expression(p: &Instance, expr: &str, r: &Rules) -> Expect {
    if let Some(c) = expr.chars().find(|c| !EXPR_CHARS.contains(*c)) {
        return Expect::Exact(invalid(Reason::BadToken { line: 1, found: c }));
    }
    // Lex.
    let mut toks = Vec::new();
    let mut rest = expr;
    while let Some(c) = rest.chars().next() {
        if c.is_ascii_digit() {
            let end = rest
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len());
            toks.push(Tok::Num(&rest[..end]));
            rest = &rest[end..];
            continue;
        }
        match c {
            '(' => toks.push(Tok::Open),
            ')' => toks.push(Tok::Close),
            ' ' => {}
            op => toks.push(Tok::Op(op)),
        }
        rest = &rest[1..];
    }
    // Shunting-yard, checking the operand/operator alternation and the nesting depth.
    let malformed = Expect::Syntax(Reason::Malformed { line: 1 });
    let (mut out, mut stack, mut depth, mut want_operand) = (Vec::new(), Vec::new(), 0, true);
    for t in toks {
        match t {
            Tok::Num(s) if want_operand => {
                out.push(Post::Lit(s));
                want_operand = false;
            }
            Tok::Open if want_operand => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Expect::Syntax(Reason::TooDeep);
                }
                stack.push(Tok::Open);
            }
            Tok::Op(o) if !want_operand => {
                while let Some(&Tok::Op(top)) = stack.last() {
                    if precedence(top) < precedence(o) {
                        break;
                    }
                    stack.pop();
                    out.push(Post::Op(top));
                }
                stack.push(Tok::Op(o));
                want_operand = true;
            }
            Tok::Close if !want_operand && depth > 0 => {
                while let Some(Tok::Op(top)) = stack.pop() {
                    out.push(Post::Op(top));
                }
                depth -= 1;
            }
            _ => return malformed,
        }
    }
    if want_operand || depth > 0 {
        return malformed;
    }
    while let Some(Tok::Op(top)) = stack.pop() {
        out.push(Post::Op(top));
    }
    // Evaluate the postfix left to right: the verifier's order of errors.
    let (mut vals, mut used): (Vec<Q>, Vec<i64>) = (Vec::new(), Vec::new());
    let mut big = false;
    let exact = |v: Verdict, big: bool| {
        if big {
            Expect::ExactOrTooLarge(v)
        } else {
            Expect::Exact(v)
        }
    };
    for item in out {
        match item {
            Post::Lit(s) => match literal(s, 1) {
                Ok(n) => {
                    used.push(n);
                    vals.push(Q::int(n));
                }
                Err(e) => return exact(invalid(e), big),
            },
            Post::Op(o) => {
                let (Some(b), Some(a)) = (vals.pop(), vals.pop()) else {
                    unreachable!("the alternation check leaves two operands per operator")
                };
                if o == '/' && b.n == 0 {
                    return exact(invalid(Reason::DivisionByZero { line: 1 }), big);
                }
                big |= [a.n, a.d, b.n, b.d]
                    .iter()
                    .any(|x| x.unsigned_abs() >= 1 << 63);
                let Some(v) = a.apply(o, b) else {
                    return Expect::Overflow;
                };
                if r.nonneg_integers && (v.d != 1 || v.n < 0) {
                    let value = v.text();
                    return exact(invalid(Reason::BadIntermediate { line: 1, value }), big);
                }
                vals.push(v);
            }
        }
    }
    let v = vals[0];
    match pool_check(&p.nums, &used, r) {
        Err(e) => exact(invalid(e), big),
        Ok(()) => exact(judged(v, p.target), big),
    }
}

/// A step line's tokens: signed integers and single characters. A `-` right before a
/// digit is a sign where an operand is expected (start of line, or after a symbol).
#[derive(Debug, PartialEq)]
enum STok<'a> {
    Int(&'a str),
    Sym(char),
}

fn lex_step(line: &str) -> Vec<STok<'_>> {
    let b = line.as_bytes();
    let (mut out, mut i) = (Vec::new(), 0);
    while i < b.len() {
        let operand_next = !matches!(out.last(), Some(STok::Int(_)));
        let signed = b[i] == b'-' && operand_next && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        if b[i].is_ascii_digit() || signed {
            let start = i;
            i += 1;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            out.push(STok::Int(&line[start..i]));
        } else {
            if b[i] != b' ' {
                out.push(STok::Sym(char::from(b[i])));
            }
            i += 1;
        }
    }
    out
}

/// Matches `toks` against a pattern of `None` (an integer) and `Some(symbols)`; the first
/// token that fails decides the reason, as in a left-to-right parser.
fn match_line(toks: &[STok], pattern: &[Option<&str>], line: usize) -> Result<Vec<i64>, Reason> {
    let mut ints = Vec::new();
    for (k, want) in pattern.iter().enumerate() {
        match (toks.get(k), want) {
            (Some(STok::Int(s)), None) => ints.push(literal(s, line)?),
            (Some(STok::Sym(c)), Some(set)) if set.contains(*c) => {}
            _ => return Err(Reason::Malformed { line }),
        }
    }
    if toks.len() > pattern.len() {
        return Err(Reason::Malformed { line });
    }
    Ok(ints)
}

fn reference_steps(p: &Instance, text: &str, r: &Rules) -> Verdict {
    let mut left: Vec<i64> = p.nums.clone();
    let take = |left: &mut Vec<i64>, n: i64, line: usize| -> Result<(), Reason> {
        match left.iter().position(|&x| x == n) {
            Some(i) => {
                left.remove(i);
                Ok(())
            }
            None if p.nums.contains(&n) => Err(Reason::NumberReused { number: n }),
            None => Err(Reason::NumberNotAvailable { line, number: n }),
        }
    };
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        let l = raw.trim_matches([' ', '\t', '\r', '\x0c', '\n']);
        if l.is_empty() {
            continue;
        }
        if let Some(c) = l.chars().find(|c| !STEP_CHARS.contains(*c)) {
            return invalid(Reason::BadToken { line, found: c });
        }
        if let Some(rest) = l.strip_prefix("ans") {
            let n = match match_line(&lex_step(rest), &[None], line) {
                Ok(ints) => ints[0],
                Err(e) => return invalid(e),
            };
            if let Err(e) = take(&mut left, n, line) {
                return invalid(e);
            }
            if r.use_rule == UseRule::ExactlyOnce && !left.is_empty() {
                left.sort_unstable();
                return invalid(Reason::NumbersMissing { missing: left });
            }
            return judged(Q::int(n), p.target);
        }
        let pattern = [None, Some("+-*/"), None, Some("="), None];
        let toks = lex_step(l);
        let (a, b, claimed) = match match_line(&toks, &pattern, line) {
            Ok(ints) => (ints[0], ints[1], ints[2]),
            Err(e) => return invalid(e),
        };
        let STok::Sym(op) = toks[1] else {
            unreachable!("the pattern put an operator second")
        };
        if let Err(e) = take(&mut left, a, line).and_then(|()| take(&mut left, b, line)) {
            return invalid(e);
        }
        if op == '/' && b == 0 {
            return invalid(Reason::DivisionByZero { line });
        }
        let actual = Q::int(a)
            .apply(op, Q::int(b))
            .expect("i64 operands fit i128");
        if r.nonneg_integers && (actual.d != 1 || actual.n < 0) {
            return invalid(Reason::BadIntermediate {
                line,
                value: actual.text(),
            });
        }
        if actual != Q::int(claimed) {
            return invalid(Reason::WrongArithmetic {
                line,
                claimed,
                actual: actual.text(),
            });
        }
        left.push(claimed);
    }
    Verdict {
        outcome: Outcome::NoAnswer,
        reason: Reason::NoAnswer,
    }
}

/// The verifier agrees with the reference, within bounded time.
fn agree(p: &Instance, text: &str, r: &Rules) -> Result<(), TestCaseError> {
    let t = std::time::Instant::now();
    let got = verify(p, text, r);
    let took = t.elapsed();
    prop_assert!(
        took.as_secs_f64() < 2.0,
        "{} bytes took {took:?}",
        text.len()
    );
    let arithmetic = |r: &Reason| {
        matches!(
            r,
            Reason::DivisionByZero { .. }
                | Reason::TooLarge { .. }
                | Reason::BadIntermediate { .. }
        )
    };
    match reference(p, text, r) {
        Expect::Exact(want) => prop_assert!(
            got == want,
            "{text:?} {:?}: verifier {got:?}, reference {want:?}",
            p.nums
        ),
        Expect::ExactOrTooLarge(want) => prop_assert!(
            got == want || got.reason == Reason::TooLarge { line: 1 },
            "{text:?} {:?}: verifier {got:?}, reference {want:?}",
            p.nums
        ),
        Expect::Syntax(reason) => {
            prop_assert_eq!(&got.outcome, &Outcome::Invalid, "{:?}", text);
            prop_assert!(
                got.reason == reason || arithmetic(&got.reason),
                "{text:?}: verifier {:?}, reference {reason:?}",
                got.reason
            );
        }
        // Beyond i128 even with cancelling: nothing to compare but the absence of a panic.
        Expect::Overflow => {}
    }
    Ok(())
}

// ---------------------------------------------------------------- generators

#[derive(Clone, Debug)]
enum Expr {
    Num(i64),
    Op(char, Box<Expr>, Box<Expr>),
}

fn tree() -> impl Strategy<Value = Expr> {
    // At most 16 leaves below 100: every numerator and denominator stays below 100^16,
    // far from i128's limit, so neither side may overflow.
    let leaf = prop_oneof![8 => 1i64..=20, 1 => Just(0i64), 1 => 21i64..=99].prop_map(Expr::Num);
    leaf.prop_recursive(4, 8, 2, |inner| {
        (
            prop::sample::select(vec!['+', '-', '*', '/']),
            inner.clone(),
            inner,
        )
            .prop_map(|(o, a, b)| Expr::Op(o, Box::new(a), Box::new(b)))
    })
}

fn leaves_of(e: &Expr, out: &mut Vec<i64>) {
    match e {
        Expr::Num(n) => out.push(*n),
        Expr::Op(_, a, b) => {
            leaves_of(a, out);
            leaves_of(b, out);
        }
    }
}

/// The tree's value, computed on the tree (no text involved); None on division by zero.
fn tree_value(e: &Expr) -> Option<Q> {
    match e {
        Expr::Num(n) => Some(Q::int(*n)),
        Expr::Op(o, a, b) => {
            let (a, b) = (tree_value(a)?, tree_value(b)?);
            if *o == '/' && b.n == 0 {
                return None;
            }
            a.apply(*o, b)
        }
    }
}

/// Renders with as few parentheses as the precedence needs, plus extra ones and spaces
/// where `style` says so.
fn render(e: &Expr, style: &mut impl Iterator<Item = u8>, out: &mut String) {
    let extra = style.next().unwrap_or(1) % 10 == 0;
    if extra {
        out.push('(');
    }
    match e {
        Expr::Num(n) => out.push_str(&n.to_string()),
        Expr::Op(o, a, b) => {
            let p = precedence(*o);
            let spaces =
                |k: Option<u8>| " ".repeat(usize::from(k.unwrap_or(0) % 4).saturating_sub(1));
            let (before, after) = (spaces(style.next()), spaces(style.next()));
            let wrap_a = matches!(**a, Expr::Op(c, ..) if precedence(c) < p);
            // Right operands of equal precedence keep their parentheses: a-(b-c).
            let wrap_b = matches!(**b, Expr::Op(c, ..) if precedence(c) <= p);
            render_wrapped(a, wrap_a, style, out);
            out.push_str(&format!("{before}{o}{after}"));
            render_wrapped(b, wrap_b, style, out);
        }
    }
    if extra {
        out.push(')');
    }
}

fn render_wrapped(e: &Expr, wrap: bool, style: &mut impl Iterator<Item = u8>, out: &mut String) {
    if wrap {
        out.push('(');
    }
    render(e, style, out);
    if wrap {
        out.push(')');
    }
}

/// Small edits that usually break the grammar: (position, kind, character).
fn mutate(text: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = text.chars().collect();
    for &(at, kind, c) in edits {
        let at = if chars.is_empty() {
            0
        } else {
            at % (chars.len() + 1)
        };
        match kind % 4 {
            0 if at < chars.len() => {
                chars.remove(at);
            }
            1 if at < chars.len() => {
                let next = (at + 1) % chars.len();
                chars.swap(at, next);
            }
            2 if at < chars.len() => chars.insert(at, chars[at]),
            _ => chars.insert(at, c),
        }
    }
    chars.into_iter().collect()
}

fn edit_char() -> impl Strategy<Value = char> {
    prop_oneof![
        8 => prop::sample::select("()+-*/ 0123456789".chars().collect::<Vec<_>>()),
        2 => prop::sample::select("=\nans\r\t".chars().collect::<Vec<_>>()),
        1 => prop::sample::select(vec!['é', '１', '\0', '\u{200f}', '\u{301}', '\u{3000}', 'x']),
    ]
}

fn edits(max: usize) -> impl Strategy<Value = Vec<(usize, u8, char)>> {
    prop::collection::vec((any::<usize>(), any::<u8>(), edit_char()), 0..=max)
}

/// Digit runs of `text` as numbers: a pool that the answer uses, up to a variation.
fn pool_for(text: &str, variant: u8, extra: i64) -> Vec<i64> {
    let mut nums: Vec<i64> = text
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty() && s.len() <= DIGITS)
        .filter_map(|s| s.parse().ok())
        .collect();
    match variant % 5 {
        0 | 1 => {}
        2 => {
            nums.pop();
        }
        3 => nums.push(extra),
        _ => {
            if let Some(x) = nums.first_mut() {
                *x += 1;
            }
        }
    }
    nums.reverse();
    nums
}

/// A Countdown step script over `nums`: mostly legal picks and true results, some wrong
/// claims, foreign numbers and odd spacing, then (usually) an `ans` line.
fn step_text(nums: &[i64], script: &[(usize, usize, u8, u8)], ans: (u8, i64)) -> String {
    let mut pool = nums.to_vec();
    let mut out = String::new();
    let mut last = None;
    for &(i, j, op, style) in script {
        if pool.len() < 2 {
            break;
        }
        let a = pool.swap_remove(i % pool.len());
        let b = if style % 11 == 0 {
            30
        } else {
            pool.swap_remove(j % pool.len())
        };
        let op = ['+', '-', '*', '/'][usize::from(op % 4)];
        let truth = match op {
            '+' => a + b,
            '-' => a - b,
            '*' => a * b,
            _ => a.checked_div(b).unwrap_or(0),
        };
        let claim = if style % 7 == 0 { truth + 1 } else { truth };
        let sp = if style % 3 == 0 { " " } else { "" };
        out.push_str(&format!("{a}{sp}{op}{sp}{b}{sp}={sp}{claim}"));
        out.push_str(if style % 5 == 0 { "\r\n" } else { "\n" });
        if style % 13 == 0 {
            out.push('\n');
        }
        pool.push(claim);
        last = Some(claim);
    }
    match ans.0 % 4 {
        0 | 1 => out.push_str(&format!("ans {}", last.unwrap_or(ans.1))),
        2 => out.push_str(&format!("ans {}", ans.1)),
        _ => {}
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    /// Well-formed and mutated chat answers over small numbers: same verdict as the
    /// reference, and for well-formed ones the reference parses to the tree's value.
    #[test]
    fn expressions_agree_with_the_reference(
        e in tree(),
        style in prop::collection::vec(any::<u8>(), 64),
        wrap in prop_oneof![4 => 0usize..3, 1 => (MAX_DEPTH - 3)..(MAX_DEPTH + 3)],
        edits in prop_oneof![1 => Just(Vec::new()), 1 => edits(3)],
        (variant, extra, hit, target) in (any::<u8>(), 0i64..30, any::<bool>(), -5i64..100),
        (once, nonneg) in (any::<bool>(), any::<bool>()),
    ) {
        let mut body = String::new();
        render(&e, &mut style.into_iter(), &mut body);
        let body = format!("{}{body}{}", "(".repeat(wrap), ")".repeat(wrap));
        let value = tree_value(&e);
        if edits.is_empty() && wrap < 3 {
            // The reference reads the rendered text back to the tree's value.
            let mut leaves = Vec::new();
            leaves_of(&e, &mut leaves);
            let text = format!("<answer>{body}</answer>");
            match (reference(&problem(&leaves, 0), &text, &rules(true, false)), value) {
                (Expect::Exact(v), Some(want)) => prop_assert_eq!(v, judged(want, 0), "{}", body),
                (Expect::Exact(v), None) => {
                    prop_assert_eq!(v.reason, Reason::DivisionByZero { line: 1 }, "{}", body)
                }
                (other, _) => prop_assert!(false, "{body}: the reference says {other:?}"),
            }
        }
        let body = mutate(&body, &edits);
        let nums = pool_for(&body, variant, extra);
        let target = match value {
            Some(q) if hit && q.d == 1 && q.n.abs() < 1_000_000 => q.n as i64,
            _ => target,
        };
        let text = format!("I try 12-7=5 first.\n<answer>{body}</answer>");
        agree(&problem(&nums, target), &text, &rules(once, nonneg))?;
    }

    /// Step scripts, legal and broken, under every rule set: the same verdict, reason
    /// and line as the reference.
    #[test]
    fn step_texts_agree_with_the_reference(
        nums in prop::collection::vec(prop_oneof![9 => 1i64..=25, 1 => Just(0i64)], 2..=5),
        script in prop::collection::vec((any::<usize>(), any::<usize>(), any::<u8>(), any::<u8>()), 0..=5),
        ans in (any::<u8>(), -3i64..60),
        edits in prop_oneof![2 => Just(Vec::new()), 1 => edits(3)],
        (target, hit) in (0i64..60, any::<bool>()),
        (once, nonneg) in (any::<bool>(), any::<bool>()),
    ) {
        let script = step_text(&nums, &script, ans);
        // Aim at the answer line's value half the time, so `Correct` is exercised.
        let answered = script.rsplit_once("ans ").and_then(|(_, n)| n.parse().ok());
        let target = if hit { answered.unwrap_or(target) } else { target };
        let text = mutate(&script, &edits);
        agree(&problem(&nums, target), &text, &rules(once, nonneg))?;
    }

    /// Big literals (up to 19 digits), where `Rational` may overflow: a value the verifier
    /// reports is the exact value, and it only refuses with `TooLarge`.
    #[test]
    fn big_numbers_are_exact_or_too_large(
        lits in prop::collection::vec(prop_oneof![1i64..=20, 1i64..=999_999_999_999_999_999, Just(1i64 << 59)], 1..=5),
        ops in prop::collection::vec(prop::sample::select(vec!['+', '-', '*', '/']), 4),
        nineteen in any::<bool>(),
        (once, nonneg) in (any::<bool>(), any::<bool>()),
    ) {
        let mut body = lits[0].to_string();
        for (k, n) in lits[1..].iter().enumerate() {
            body.push(ops[k]);
            body.push_str(&n.to_string());
        }
        if nineteen {
            body.push_str("*1000000000000000000");
        }
        let text = format!("<answer>{body}</answer>");
        let mut nums = lits.clone();
        nums.push(1_000_000_000_000_000_000);
        agree(&problem(&nums, 1), &text, &rules(once, nonneg))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Any string at all, in both formats: no panic, bounded time, and the reference's
    /// verdict.
    #[test]
    fn arbitrary_strings_agree_and_never_panic(s in any::<String>(), tagged in any::<bool>()) {
        let text = if tagged { format!("<answer>{s}</answer>") } else { s };
        agree(&problem(&[3, 7, 12, 25], 72), &text, &Rules::default())?;
        agree(&problem(&[3, 7, 12, 25], 72), &text, &rules(false, false))?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// The verifier's own alphabet around floods of parentheses (up to 200k each side,
    /// so beyond MAX_INPUT too): no panic, no stack overflow, bounded time, same verdict.
    #[test]
    fn deep_soup_agrees_and_never_panics(
        soup in "[()+\\-*/= 0-9\n]{0,300}",
        open in prop_oneof![2 => 0usize..100, 2 => 0usize..30_000, 1 => 0usize..200_000],
        close in prop_oneof![2 => 0usize..100, 2 => 0usize..30_000, 1 => 0usize..200_000],
        tagged in any::<bool>(),
    ) {
        let body = format!("{}{soup}{}", "(".repeat(open), ")".repeat(close));
        let text = if tagged { format!("<answer>{body}</answer>") } else { body };
        agree(&problem(&[3, 7, 12, 25], 72), &text, &Rules::default())?;
        agree(&problem(&[3, 7, 12, 25], 72), &text, &rules(true, false))?;
    }
}

#[test]
fn the_reference_knows_the_worked_examples() {
    let p = problem(&[3, 7, 12], 15);
    let r = Rules::default();
    for text in [
        "12-7=5\n5*3=15\nans 15",
        "<answer>(12 - 7) * 3</answer>",
        "12-7=5\n12-5=7",
        "<answer>3*(12-7</answer>",
        "<answer>12/(7-7)*3</answer>",
        "1 2-7=5",
        "ans -0015",
    ] {
        agree(&p, text, &r).unwrap();
    }
    assert!(matches!(
        reference(&p, "<answer>3*(12-7)</answer>", &r),
        Expect::Exact(Verdict {
            outcome: Outcome::Correct,
            ..
        })
    ));
    assert!(matches!(
        reference(&p, "<answer>3*(12-7</answer>", &r),
        Expect::Syntax(Reason::Malformed { line: 1 })
    ));
}
