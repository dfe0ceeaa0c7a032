//! Exhaustive solver over exact rationals: every value reachable from the numbers under
//! the rules, with the number of distinct solutions, one canonical solution (step format)
//! and the fewest numbers needed.
//!
//! Two solutions are the same when their expression trees are equal once the operands of
//! `+` and `*` are put in a fixed order; `(a+b)+c` and `a+(b+c)` remain different.
use std::collections::{BTreeMap, HashMap, HashSet};

use super::{Rational, Rules, UseRule};

/// What the solver knows about one integer value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SolutionInfo {
    pub count: u64,
    /// Steps then the answer line, e.g. `12-7=5\n5*3=15\nans 15`; solutions through
    /// fractions as `<answer>EXPR</answer>`.
    pub canonical: String,
    pub min_numbers: usize,
    /// Some solution is a chain: every operation takes at least one given number
    /// (`((a+b)*c)-d`). When false, every solution needs a balanced form, an operation on
    /// two intermediate results (`(a+b)*(c-d)`).
    pub chain: bool,
}

/// The shape of the simplest solution a problem has (the evaluation's slice).
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Shape {
    /// Some solution is a chain.
    Chain,
    /// Every solution combines two intermediate results.
    Balanced,
}

impl Shape {
    pub fn name(self) -> &'static str {
        match self {
            Shape::Chain => "chain",
            Shape::Balanced => "balanced",
        }
    }
}

impl SolutionInfo {
    pub fn shape(&self) -> Shape {
        if self.chain {
            Shape::Chain
        } else {
            Shape::Balanced
        }
    }
}

/// Every integer value reachable from a set of numbers.
#[derive(Clone, Debug, Default)]
pub struct Solutions {
    by_value: BTreeMap<i64, SolutionInfo>,
}

impl Solutions {
    pub fn get(&self, target: i64) -> Option<&SolutionInfo> {
        self.by_value.get(&target)
    }

    /// Reachable integers, ascending.
    pub fn reachable_integers(&self) -> Vec<i64> {
        self.by_value.keys().copied().collect()
    }
}

#[derive(Clone)]
struct Item {
    value: Rational,
    /// Canonical expression text (for deduplication).
    expr: String,
    /// Steps that produced it.
    steps: Vec<String>,
    used: usize,
    /// Every operation in it takes at least one given number.
    chain: bool,
}

struct Search<'a> {
    rules: &'a Rules,
    seen: HashMap<Rational, HashSet<String>>,
    /// Values with a chain solution.
    chains: HashSet<Rational>,
    best: HashMap<Rational, (usize, Vec<String>, String)>,
}

impl Search<'_> {
    fn record(&mut self, it: &Item) {
        if it.chain {
            self.chains.insert(it.value);
        }
        self.seen
            .entry(it.value)
            .or_default()
            .insert(it.expr.clone());
        let e = self
            .best
            .entry(it.value)
            .or_insert((usize::MAX, Vec::new(), String::new()));
        if it.used < e.0 || (it.used == e.0 && it.steps.len() < e.1.len()) {
            *e = (it.used, it.steps.clone(), it.expr.clone());
        }
    }

    fn explore(&mut self, items: &[Item]) {
        let any_subset = self.rules.use_rule == UseRule::AtMostOnce;
        if items.len() == 1 || any_subset {
            for it in items {
                self.record(it);
            }
        }
        if items.len() < 2 {
            return;
        }
        for i in 0..items.len() {
            for j in (i + 1)..items.len() {
                let rest: Vec<Item> = items
                    .iter()
                    .enumerate()
                    .filter(|&(k, _)| k != i && k != j)
                    .map(|(_, x)| x.clone())
                    .collect();
                for (a, b, op) in candidates(&items[i], &items[j]) {
                    let Some(v) = a.value.apply(op, b.value) else {
                        continue;
                    };
                    if !self.rules.allows(&v) || v.to_f64().abs() > 1e12 {
                        continue;
                    }
                    let expr = if op == '+' || op == '*' {
                        let (x, y) = if a.expr <= b.expr {
                            (&a.expr, &b.expr)
                        } else {
                            (&b.expr, &a.expr)
                        };
                        format!("({x}{op}{y})")
                    } else {
                        format!("({}{op}{})", a.expr, b.expr)
                    };
                    let mut steps = a.steps.clone();
                    steps.extend(b.steps.iter().cloned());
                    steps.push(format!("{}{op}{}={}", a.value, b.value, v));
                    let mut next = rest.clone();
                    next.push(Item {
                        value: v,
                        expr,
                        steps,
                        used: a.used + b.used,
                        chain: (a.used == 1 && b.chain) || (b.used == 1 && a.chain),
                    });
                    self.explore(&next);
                }
            }
        }
    }
}

/// Ordered operand pairs and operators to try for two items.
fn candidates<'a>(x: &'a Item, y: &'a Item) -> Vec<(&'a Item, &'a Item, char)> {
    vec![
        (x, y, '+'),
        (x, y, '*'),
        (x, y, '-'),
        (y, x, '-'),
        (x, y, '/'),
        (y, x, '/'),
    ]
}

/// Solves exhaustively. Fast for up to 4 numbers; 5 or 6 take noticeably longer.
pub fn solve(nums: &[i64], rules: &Rules) -> Solutions {
    let items: Vec<Item> = nums
        .iter()
        .map(|&n| Item {
            value: Rational::from_int(n),
            expr: n.to_string(),
            steps: Vec::new(),
            used: 1,
            chain: true,
        })
        .collect();
    let mut s = Search {
        rules,
        seen: HashMap::new(),
        chains: HashSet::new(),
        best: HashMap::new(),
    };
    s.explore(&items);
    let mut by_value = BTreeMap::new();
    for (v, exprs) in &s.seen {
        let Some(int) = v.to_integer() else { continue };
        let Some((used, steps, expr)) = s.best.get(v) else {
            continue;
        };
        // Step lines hold integers only; a solution through fractions is written in the
        // chat format instead.
        let integral = steps
            .iter()
            .all(|l| !l.rsplit('=').next().unwrap_or("").contains('/'));
        let text = if integral {
            let mut t = steps.join("\n");
            if !t.is_empty() {
                t.push('\n');
            }
            t.push_str(&format!("ans {int}"));
            t
        } else {
            format!("<answer>{expr}</answer>")
        };
        by_value.insert(
            int,
            SolutionInfo {
                count: exprs.len() as u64,
                canonical: text,
                min_numbers: *used,
                chain: s.chains.contains(v),
            },
        );
    }
    Solutions { by_value }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exactly(nonneg: bool) -> Rules {
        Rules {
            use_rule: UseRule::ExactlyOnce,
            nonneg_integers: nonneg,
        }
    }

    /// A chain of the four numbers reaches 24 from 1, 2, 3, 4 (`((1+2)+3)*4`); only a
    /// balanced form reaches 120 from 9, 1, 7, 5 (`(9+1)*(7+5)`), checked against a brute
    /// force over every chain.
    #[test]
    fn shapes_tell_chains_from_balanced_forms() {
        let rules = exactly(true);
        let s = solve(&[1, 2, 3, 4], &rules);
        assert_eq!(s.get(24).unwrap().shape(), Shape::Chain);
        // 3 numbers: every solution is a chain.
        let s = solve(&[3, 7, 12], &rules);
        assert!(s
            .reachable_integers()
            .iter()
            .all(|&t| s.get(t).unwrap().chain));
        // (9+1)*(7+5) = 120: no chain of 9, 1, 7, 5 reaches 120 (checked by brute force
        // over orders and operators below).
        let s = solve(&[9, 1, 7, 5], &rules);
        assert_eq!(s.get(120).unwrap().shape(), Shape::Balanced);
        assert!(!chain_reaches(&[9, 1, 7, 5], 120));
        assert!(chain_reaches(&[1, 2, 3, 4], 24));
    }

    /// Every chain over every order of `nums`: start from one number, apply an operator
    /// with the next (on either side), over exact rationals, non-negative integers only.
    fn chain_reaches(nums: &[i64], target: i64) -> bool {
        fn go(v: Rational, rest: &[i64], target: i64) -> bool {
            if rest.is_empty() {
                return v == Rational::from_int(target);
            }
            (0..rest.len()).any(|i| {
                let n = Rational::from_int(rest[i]);
                let others: Vec<i64> = rest
                    .iter()
                    .enumerate()
                    .filter(|&(j, _)| j != i)
                    .map(|(_, &x)| x)
                    .collect();
                ['+', '-', '*', '/'].iter().any(|&op| {
                    [v.apply(op, n), n.apply(op, v)]
                        .into_iter()
                        .flatten()
                        .filter(|r| r.to_integer().is_some_and(|x| x >= 0))
                        .any(|r| go(r, &others, target))
                })
            })
        }
        (0..nums.len()).any(|i| {
            let rest: Vec<i64> = nums
                .iter()
                .enumerate()
                .filter(|&(j, _)| j != i)
                .map(|(_, &x)| x)
                .collect();
            go(Rational::from_int(nums[i]), &rest, target)
        })
    }

    #[test]
    fn known_cases() {
        let s = solve(&[3, 7, 12], &exactly(true));
        // 3 * (12 - 7) = 15, (7 - 3) * 12 = 48, 3 * 7 * 12 = 252.
        for t in [15, 48, 252, 22] {
            assert!(s.get(t).is_some(), "{t} should be reachable");
        }
        assert!(s.get(1000).is_none());
        assert!(solve(&[1, 1, 1], &exactly(true)).get(100).is_none());
        // 24 from 1 5 5 5 needs a fraction: 5 * (5 - 1/5).
        assert!(solve(&[1, 5, 5, 5], &exactly(false)).get(24).is_some());
        assert!(solve(&[1, 5, 5, 5], &exactly(true)).get(24).is_none());
    }

    #[test]
    fn counts_distinct_expressions() {
        // From 2 and 3 exactly once: 2+3, 2*3, 3-2, 2-3 (needs negatives), 2/3, 3/2.
        let s = solve(&[2, 3], &exactly(false));
        assert_eq!(s.get(5).unwrap().count, 1);
        assert_eq!(s.get(6).unwrap().count, 1);
        assert_eq!(s.get(1).unwrap().count, 1);
        assert_eq!(s.get(-1).unwrap().count, 1);
        assert_eq!(s.reachable_integers(), vec![-1, 1, 5, 6]);
        // 2 2 -> 4 two ways: 2+2 and 2*2.
        assert_eq!(solve(&[2, 2], &exactly(true)).get(4).unwrap().count, 2);
    }

    #[test]
    fn min_numbers_under_at_most_once() {
        let r = Rules {
            use_rule: UseRule::AtMostOnce,
            nonneg_integers: false,
        };
        let s = solve(&[4, 6, 9], &r);
        assert_eq!(s.get(9).unwrap().min_numbers, 1);
        assert_eq!(s.get(10).unwrap().min_numbers, 2);
        assert_eq!(s.get(19).unwrap().min_numbers, 3);
        assert_eq!(s.get(9).unwrap().canonical, "ans 9");
    }
}
