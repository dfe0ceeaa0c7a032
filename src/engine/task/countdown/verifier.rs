//! The verifier: parses the model's completion (never evaluates it as code) with exact
//! rational arithmetic and returns a verdict with its reason.
//!
//! Two formats: the step format (`12-7=5` lines, then `ans 5`) that the tiny models write,
//! and the chat format's last `<answer>EXPR</answer>`.
//!
//! The completion is untrusted model output, so every input gets a verdict in time linear
//! in its length: nothing panics, nothing recurses deeper than [`MAX_DEPTH`], numbers
//! longer than 18 digits and arithmetic overflowing i128 are `TooLarge`, and completions
//! longer than [`MAX_INPUT`] bytes are not read at all (`TooLong`). Only ASCII digits,
//! `+ - * / = ( )`, spaces and the word `ans` are tokens; any other character (full-width
//! digits, NUL, RTL marks, combining marks) is a `BadToken`.
use serde::{Deserialize, Serialize};

use super::{Instance, Rational, Rules, UseRule};
use crate::engine::task::Outcome;

/// Longest completion read, in bytes. Longer input is rejected whole (`TooLong`), not cut:
/// a cut could drop the last answer tag or shorten `ans 123` to `ans 12`.
pub const MAX_INPUT: usize = 64 * 1024;
/// Deepest parenthesis nesting in the chat format.
pub const MAX_DEPTH: usize = 64;
/// Longest number literal.
const MAX_DIGITS: usize = 18;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub enum Reason {
    Correct,
    NoAnswer,
    BadToken {
        line: usize,
        found: char,
    },
    Malformed {
        line: usize,
    },
    NumberNotAvailable {
        line: usize,
        number: i64,
    },
    NumberReused {
        number: i64,
    },
    NumbersMissing {
        missing: Vec<i64>,
    },
    WrongArithmetic {
        line: usize,
        claimed: i64,
        actual: String,
    },
    DivisionByZero {
        line: usize,
    },
    BadIntermediate {
        line: usize,
        value: String,
    },
    WrongValue {
        got: String,
        target: i64,
    },
    TooLarge {
        line: usize,
    },
    TooDeep,
    /// The completion is longer than [`MAX_INPUT`] bytes.
    TooLong {
        bytes: usize,
    },
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Correct => write!(f, "correct"),
            Reason::NoAnswer => write!(f, "no answer line"),
            Reason::BadToken { line, found } => write!(f, "line {line}: unexpected {found:?}"),
            Reason::Malformed { line } => write!(f, "line {line}: not a step or an answer"),
            Reason::NumberNotAvailable { line, number } => {
                write!(f, "line {line}: {number} is not available")
            }
            Reason::NumberReused { number } => write!(f, "number {number} reused"),
            Reason::NumbersMissing { missing } => {
                let m: Vec<String> = missing.iter().map(|n| n.to_string()).collect();
                write!(f, "numbers not used: {}", m.join(", "))
            }
            Reason::WrongArithmetic {
                line,
                claimed,
                actual,
            } => write!(f, "step {line}: result is {actual}, not {claimed}"),
            Reason::DivisionByZero { line } => write!(f, "line {line}: division by zero"),
            Reason::BadIntermediate { line, value } => {
                write!(f, "line {line}: {value} is not a non-negative integer")
            }
            Reason::WrongValue { got, target } => write!(f, "reaches {got}, target is {target}"),
            Reason::TooLarge { line } => write!(f, "line {line}: number too large"),
            Reason::TooDeep => write!(
                f,
                "expression nested more than {MAX_DEPTH} parentheses deep"
            ),
            Reason::TooLong { bytes } => write!(
                f,
                "completion is {bytes} bytes; the verifier reads at most {MAX_INPUT}"
            ),
        }
    }
}

/// A Countdown verdict: the outcome with Countdown's reason.
pub type Verdict = crate::engine::task::Verdict<Reason>;

/// Verifies `completion` against `problem` under `rules`.
/// A completion too long to read counts as no answer.
pub fn verify(problem: &Instance, completion: &str, rules: &Rules) -> Verdict {
    if completion.len() > MAX_INPUT {
        return Verdict::no_answer(Reason::TooLong {
            bytes: completion.len(),
        });
    }
    match last_answer_tag(completion) {
        Some(expr) => verify_expression(problem, expr, rules),
        None => verify_steps(problem, completion, rules),
    }
}

/// The multiset of available numbers.
struct Pool {
    original: Vec<i64>,
    available: Vec<Rational>,
}

impl Pool {
    fn new(nums: &[i64]) -> Self {
        Self {
            original: nums.to_vec(),
            available: nums.iter().map(|&n| Rational::from_int(n)).collect(),
        }
    }

    /// Under "exactly once", every number must have been used.
    fn all_used(&self, rules: &Rules) -> Result<(), Reason> {
        if rules.use_rule != UseRule::ExactlyOnce || self.available.is_empty() {
            return Ok(());
        }
        let mut missing: Vec<i64> = self
            .available
            .iter()
            .filter_map(|r| r.to_integer())
            .collect();
        missing.sort_unstable();
        Err(Reason::NumbersMissing { missing })
    }

    /// Removes `v`; the error tells whether it was an original number used up.
    fn take(&mut self, v: Rational, line: usize) -> Result<(), Reason> {
        if let Some(i) = self.available.iter().position(|&a| a == v) {
            self.available.swap_remove(i);
            return Ok(());
        }
        match v.to_integer() {
            Some(n) if self.original.contains(&n) => Err(Reason::NumberReused { number: n }),
            Some(n) => Err(Reason::NumberNotAvailable { line, number: n }),
            None => Err(Reason::Malformed { line }),
        }
    }
}

fn parse_int(s: &str, line: usize) -> Result<i64, Reason> {
    let digits = s.strip_prefix('-').unwrap_or(s);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Reason::Malformed { line });
    }
    if digits.len() > MAX_DIGITS {
        return Err(Reason::TooLarge { line });
    }
    s.parse::<i64>().map_err(|_| Reason::TooLarge { line })
}

fn verify_steps(problem: &Instance, text: &str, rules: &Rules) -> Verdict {
    match walk_lines(problem, text, rules) {
        Replay::Broken(r) => Verdict::invalid(r),
        Replay::Answered(v) => v,
        Replay::Remaining(_) => Verdict::no_answer(Reason::NoAnswer),
    }
}

/// Where a step-format text stands after its lines: broken, answered, or the numbers
/// still available.
#[derive(Clone, Debug, PartialEq)]
pub(super) enum Replay {
    /// A line breaks a rule: the verifier's reason.
    Broken(Reason),
    /// An `ans` line: the verdict is final whatever follows.
    Answered(Verdict),
    /// Every line is a legal step; these numbers remain.
    Remaining(Vec<Rational>),
}

/// Replays the complete lines of a partial response (the text up to and including its
/// last newline) with the verifier's own checks: the search's step judgement.
pub(super) fn replay_lines(problem: &Instance, text: &str, rules: &Rules) -> Replay {
    if text.len() > MAX_INPUT {
        return Replay::Broken(Reason::TooLong { bytes: text.len() });
    }
    let complete = match text.rfind('\n') {
        Some(i) => &text[..=i],
        None => "",
    };
    walk_lines(problem, complete, rules)
}

/// Checks and applies the lines of `text` in order, up to the first answer line.
fn walk_lines(problem: &Instance, text: &str, rules: &Rules) -> Replay {
    let mut pool = Pool::new(&problem.nums);
    for (i, raw) in text.split('\n').enumerate() {
        let line = i + 1;
        // ASCII only: `str::trim` would also drop U+3000, U+0085 and other Unicode spaces.
        let l = raw.trim_matches(|c: char| c.is_ascii_whitespace());
        if l.is_empty() {
            continue;
        }
        if let Some(c) = l
            .chars()
            .find(|c| !(c.is_ascii_digit() || "+-*/=() ans".contains(*c)))
        {
            return Replay::Broken(Reason::BadToken { line, found: c });
        }
        if let Some(rest) = l.strip_prefix("ans") {
            let mut t = Tokens::new(rest, line);
            let answered = t
                .int()
                .and_then(|n| t.end().map(|()| Rational::from_int(n)))
                .and_then(|v| pool.take(v, line).map(|()| v))
                .and_then(|v| pool.all_used(rules).map(|()| v));
            return Replay::Answered(match answered {
                Ok(v) => judge(v, problem.target),
                Err(r) => Verdict::invalid(r),
            });
        }
        if let Err(r) = apply_step(&mut pool, l, line, rules) {
            return Replay::Broken(r);
        }
    }
    Replay::Remaining(pool.available)
}

/// The tokens of one step line. Spaces may separate tokens but not split a number (so
/// `1 2` is not 12); a `-` directly before digits where a number is expected is its sign.
struct Tokens<'a> {
    s: &'a str,
    i: usize,
    line: usize,
}

impl<'a> Tokens<'a> {
    fn new(s: &'a str, line: usize) -> Self {
        Self { s, i: 0, line }
    }

    fn skip_spaces(&mut self) {
        let b = self.s.as_bytes();
        while b.get(self.i) == Some(&b' ') {
            self.i += 1;
        }
    }

    fn int(&mut self) -> Result<i64, Reason> {
        self.skip_spaces();
        let b = self.s.as_bytes();
        let start = self.i;
        if b.get(self.i) == Some(&b'-') {
            self.i += 1;
        }
        while b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        // Only ASCII bytes were skipped, so `i` is a char boundary.
        parse_int(self.s.get(start..self.i).unwrap_or(""), self.line)
    }

    /// The next byte if it is one of `set`.
    fn symbol(&mut self, set: &[u8]) -> Result<u8, Reason> {
        self.skip_spaces();
        match self.s.as_bytes().get(self.i) {
            Some(c) if set.contains(c) => {
                self.i += 1;
                Ok(*c)
            }
            _ => Err(Reason::Malformed { line: self.line }),
        }
    }

    fn end(&mut self) -> Result<(), Reason> {
        self.skip_spaces();
        if self.i == self.s.len() {
            Ok(())
        } else {
            Err(Reason::Malformed { line: self.line })
        }
    }
}

/// `a<op>b=c`: checks and applies one step.
fn apply_step(pool: &mut Pool, l: &str, line: usize, rules: &Rules) -> Result<(), Reason> {
    let mut t = Tokens::new(l, line);
    let a = t.int()?;
    let op = char::from(t.symbol(b"+-*/")?);
    let b = t.int()?;
    t.symbol(b"=")?;
    let claimed = t.int()?;
    t.end()?;
    let (ra, rb) = (Rational::from_int(a), Rational::from_int(b));
    pool.take(ra, line)?;
    pool.take(rb, line)?;
    if op == '/' && b == 0 {
        return Err(Reason::DivisionByZero { line });
    }
    let actual = ra.apply(op, rb).ok_or(Reason::TooLarge { line })?;
    if !rules.allows(&actual) {
        return Err(Reason::BadIntermediate {
            line,
            value: actual.to_string(),
        });
    }
    if actual != Rational::from_int(claimed) {
        return Err(Reason::WrongArithmetic {
            line,
            claimed,
            actual: actual.to_string(),
        });
    }
    pool.available.push(actual);
    Ok(())
}

fn judge(v: Rational, target: i64) -> Verdict {
    if v == Rational::from_int(target) {
        Verdict {
            outcome: Outcome::Correct,
            reason: Reason::Correct,
        }
    } else {
        Verdict {
            outcome: Outcome::WrongValue { value: v.to_f64() },
            reason: Reason::WrongValue {
                got: v.to_string(),
                target,
            },
        }
    }
}

fn last_answer_tag(text: &str) -> Option<&str> {
    let start = text.rfind("<answer>")? + "<answer>".len();
    let len = text[start..].find("</answer>")?;
    Some(&text[start..start + len])
}

fn verify_expression(problem: &Instance, expr: &str, rules: &Rules) -> Verdict {
    if let Some(c) = expr
        .chars()
        .find(|c| !(c.is_ascii_digit() || "+-*/() ".contains(*c)))
    {
        return Verdict::invalid(Reason::BadToken { line: 1, found: c });
    }
    let mut p = Parser {
        s: expr.as_bytes(),
        i: 0,
        rules,
        literals: Vec::new(),
    };
    let v = match p.expr(0) {
        Ok(v) => v,
        Err(r) => return Verdict::invalid(r),
    };
    p.skip_ws();
    if p.i != p.s.len() {
        return Verdict::invalid(Reason::Malformed { line: 1 });
    }
    let mut pool = Pool::new(&problem.nums);
    for &n in &p.literals {
        if let Err(r) = pool.take(Rational::from_int(n), 1) {
            return Verdict::invalid(r);
        }
    }
    if let Err(r) = pool.all_used(rules) {
        return Verdict::invalid(r);
    }
    judge(v, problem.target)
}

/// Recursive descent over `expr := term (('+'|'-') term)*`, `term := factor (('*'|'/')
/// factor)*`, `factor := number | '(' expr ')'`, with a depth limit.
struct Parser<'a> {
    s: &'a [u8],
    i: usize,
    rules: &'a Rules,
    literals: Vec<i64>,
}

impl Parser<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i] == b' ' {
            self.i += 1;
        }
    }

    fn peek(&mut self) -> Option<u8> {
        self.skip_ws();
        self.s.get(self.i).copied()
    }

    fn check(&self, v: Rational) -> Result<Rational, Reason> {
        if self.rules.allows(&v) {
            Ok(v)
        } else {
            Err(Reason::BadIntermediate {
                line: 1,
                value: v.to_string(),
            })
        }
    }

    fn expr(&mut self, depth: usize) -> Result<Rational, Reason> {
        if depth > MAX_DEPTH {
            return Err(Reason::TooDeep);
        }
        let mut v = self.term(depth)?;
        while let Some(op @ (b'+' | b'-')) = self.peek() {
            self.i += 1;
            let r = self.term(depth)?;
            v = self.check(v.apply(op as char, r).ok_or(Reason::TooLarge { line: 1 })?)?;
        }
        Ok(v)
    }

    fn term(&mut self, depth: usize) -> Result<Rational, Reason> {
        let mut v = self.factor(depth)?;
        while let Some(op @ (b'*' | b'/')) = self.peek() {
            self.i += 1;
            let r = self.factor(depth)?;
            if op == b'/' && r.is_zero() {
                return Err(Reason::DivisionByZero { line: 1 });
            }
            v = self.check(v.apply(op as char, r).ok_or(Reason::TooLarge { line: 1 })?)?;
        }
        Ok(v)
    }

    fn factor(&mut self, depth: usize) -> Result<Rational, Reason> {
        match self.peek() {
            Some(b'(') => {
                self.i += 1;
                let v = self.expr(depth + 1)?;
                if self.peek() != Some(b')') {
                    return Err(Reason::Malformed { line: 1 });
                }
                self.i += 1;
                Ok(v)
            }
            Some(c) if c.is_ascii_digit() => {
                let start = self.i;
                while self.i < self.s.len() && self.s[self.i].is_ascii_digit() {
                    self.i += 1;
                }
                let lit = std::str::from_utf8(&self.s[start..self.i]).unwrap_or("");
                let n = parse_int(lit, 1)?;
                self.literals.push(n);
                Ok(Rational::from_int(n))
            }
            _ => Err(Reason::Malformed { line: 1 }),
        }
    }
}

#[cfg(test)]
mod fuzz_props;
#[cfg(test)]
mod security;
#[cfg(test)]
mod tests;
