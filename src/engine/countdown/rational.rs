//! Exact rationals over i128 with checked arithmetic: overflow is `None`, never a panic.
use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Rational {
    num: i128,
    den: i128,
}

fn gcd(mut a: i128, mut b: i128) -> i128 {
    a = a.abs();
    b = b.abs();
    while b != 0 {
        let t = a % b;
        a = b;
        b = t;
    }
    a
}

impl Rational {
    /// `num / den`, normalised; None for a zero denominator or overflow.
    pub fn new(num: i128, den: i128) -> Option<Self> {
        if den == 0 {
            return None;
        }
        let g = gcd(num, den).max(1);
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
}
