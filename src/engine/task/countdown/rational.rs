//! Exact rationals over i128 with checked arithmetic: overflow is `None`, never a panic.
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rational {
    num: i128,
    den: i128,
}

/// Over magnitudes: `i128::MIN.abs()` would overflow, its `unsigned_abs()` does not.
fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Rational {
    /// `num / den`, normalised; None for a zero denominator or overflow.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num.unsigned_abs(), den.unsigned_abs());
        // g = 2^127 does not fit i128: then den is i128::MIN and num is 0 or i128::MIN.
        let Ok(g) = i128::try_from(g) else {
            return Some(Self {
                num: i128::from(num != 0),
                den: 1,
            });
        };
        let (mut n, mut d) = (num / g, den / g);
        if d < 0 {
            n = n.checked_neg()?;
            d = d.checked_neg()?;
        }
        Some(Self { num: n, den: d })
    }

    pub fn from_int(v: i64) -> Self {
        Self {
            num: v as i128,
            den: 1,
        }
    }

    pub fn numer(&self) -> i128 {
        self.num
    }

    pub fn denom(&self) -> i128 {
        self.den
    }

    pub fn is_integer(&self) -> bool {
        self.den == 1
    }

    pub fn is_zero(&self) -> bool {
        self.num == 0
    }

    pub fn is_negative(&self) -> bool {
        self.num < 0
    }

    pub fn to_integer(&self) -> Option<i64> {
        if self.den == 1 {
            i64::try_from(self.num).ok()
        } else {
            None
        }
    }

    pub fn to_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }

    pub fn checked_add(self, o: Self) -> Option<Self> {
        let n = self
            .num
            .checked_mul(o.den)?
            .checked_add(o.num.checked_mul(self.den)?)?;
        Self::new(n, self.den.checked_mul(o.den)?)
    }

    pub fn checked_sub(self, o: Self) -> Option<Self> {
        let n = self
            .num
            .checked_mul(o.den)?
            .checked_sub(o.num.checked_mul(self.den)?)?;
        Self::new(n, self.den.checked_mul(o.den)?)
    }

    pub fn checked_mul(self, o: Self) -> Option<Self> {
        Self::new(self.num.checked_mul(o.num)?, self.den.checked_mul(o.den)?)
    }

    /// None on division by zero or overflow.
    pub fn checked_div(self, o: Self) -> Option<Self> {
        if o.num == 0 {
            return None;
        }
        Self::new(self.num.checked_mul(o.den)?, self.den.checked_mul(o.num)?)
    }

    /// Applies `op` (one of `+ - * /`).
    pub fn apply(self, op: char, o: Self) -> Option<Self> {
        match op {
            '+' => self.checked_add(o),
            '-' => self.checked_sub(o),
            '*' => self.checked_mul(o),
            '/' => self.checked_div(o),
            _ => None,
        }
    }
}

impl fmt::Display for Rational {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 {
            write!(f, "{}", self.num)
        } else {
            write!(f, "{}/{}", self.num, self.den)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_normalises_and_overflow_is_none() {
        let a = Rational::new(6, -4).unwrap();
        assert_eq!((a.numer(), a.denom()), (-3, 2));
        let b = Rational::from_int(5)
            .checked_sub(Rational::new(1, 5).unwrap())
            .unwrap();
        assert_eq!(b.to_string(), "24/5");
        assert_eq!(
            b.checked_mul(Rational::from_int(5)).unwrap().to_integer(),
            Some(24)
        );
        assert!(Rational::from_int(3)
            .checked_div(Rational::from_int(0))
            .is_none());
        let big = Rational::new(i128::MAX, 1).unwrap();
        assert!(big.checked_add(Rational::from_int(1)).is_none());
        assert!(big.checked_mul(big).is_none());
        assert!(Rational::new(1, 0).is_none());
        assert_eq!(
            Rational::from_int(7).apply('?', Rational::from_int(1)),
            None
        );
    }

    /// Regression: `gcd` took `i128::MIN.abs()`, which panics with overflow checks on
    /// (tests, fuzzing). `(0-2^59)*2^59*512` in an answer tag reaches exactly -2^127.
    #[test]
    fn i128_min_is_normalised_without_panic() {
        let m = Rational::new(i128::MIN, 1).unwrap();
        assert_eq!((m.numer(), m.denom()), (i128::MIN, 1));
        let h = Rational::new(i128::MIN, 2).unwrap();
        assert_eq!((h.numer(), h.denom()), (i128::MIN / 2, 1));
        assert_eq!(Rational::new(i128::MIN, i128::MIN), Rational::new(1, 1));
        assert_eq!(Rational::new(0, i128::MIN), Rational::new(0, 1));
        assert_eq!(Rational::new(i128::MIN, -1), None);
        assert_eq!(Rational::new(1, i128::MIN), None);
        assert_eq!(Rational::new(-3, i128::MIN + 1).unwrap().denom(), i128::MAX);
        let p59 = Rational::from_int(1 << 59);
        let neg = Rational::from_int(0).checked_sub(p59).unwrap();
        let v = neg
            .checked_mul(p59)
            .and_then(|v| v.checked_mul(Rational::from_int(512)))
            .unwrap();
        assert_eq!(v.numer(), i128::MIN);
        assert!(v.checked_mul(Rational::from_int(-1)).is_none());
        assert!(v.checked_div(Rational::from_int(-1)).is_none());
        assert_eq!(v.checked_div(v), Rational::new(1, 1));
        assert_eq!(v.checked_sub(v), Rational::new(0, 1));
        // -1/2^127 has no positive i128 denominator: overflow, not a panic.
        assert!(Rational::from_int(1).checked_div(v).is_none());
    }
}
