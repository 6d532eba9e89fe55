//! Points: exact fixed-point amounts with two decimals, held as hundredths in an
//! `i64`. Parsing accepts only the plain decimal forms of the public contract;
//! every arithmetic step is checked, so overflow is an error, never a wrap.

use std::fmt;

/// The largest magnitude one amount may have: a trillion points. Far above any
/// guild's economy, and low enough that sums of many amounts stay inside `i64`.
const MAX_HUNDREDTHS: i64 = 100_000_000_000_000;

/// The largest magnitude a balance may reach through a request: a hundred
/// times the largest amount. What a request leaves inside it, every later
/// step (a decay's shares, a settlement, `balance - held`) computes inside
/// `i64` with room to spare, so nothing the ledger accepted fails later.
pub const MAX_BALANCE: Points = Points(100 * MAX_HUNDREDTHS);

/// An exact amount of DKP, in hundredths of a point.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Points(i64);

/// Why an amount was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("an amount is a decimal number with at most two fractional digits, like \"12.5\"")]
    Malformed,
    #[error("the amount is too large")]
    OutOfRange,
}

impl Points {
    pub const ZERO: Points = Points(0);

    /// Parses the text form: an optional `-`, digits, and at most two decimals.
    pub fn parse(text: &str) -> Result<Points, AmountError> {
        let (negative, rest) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = match rest.split_once('.') {
            Some((whole, fraction)) => (whole, fraction),
            None => (rest, ""),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if whole.is_empty() || !digits(whole) || !digits(fraction) || fraction.len() > 2 {
            return Err(AmountError::Malformed);
        }
        if rest.ends_with('.') {
            return Err(AmountError::Malformed);
        }
        let whole = whole.trim_start_matches('0');
        // More than 15 whole digits is out of range whatever the digits are.
        if whole.len() > 15 {
            return Err(AmountError::OutOfRange);
        }
        let whole: i64 = if whole.is_empty() { 0 } else { whole.parse().map_err(|_| AmountError::OutOfRange)? };
        let fraction: i64 = match fraction.len() {
            0 => 0,
            1 => fraction.parse::<i64>().map_err(|_| AmountError::Malformed)? * 10,
            _ => fraction.parse::<i64>().map_err(|_| AmountError::Malformed)?,
        };
        let magnitude = whole.checked_mul(100).and_then(|h| h.checked_add(fraction)).ok_or(AmountError::OutOfRange)?;
        Points::from_hundredths(if negative { -magnitude } else { magnitude })
    }

    /// A whole number of points, as a JSON integer gives it.
    pub fn from_whole(points: i64) -> Result<Points, AmountError> {
        points.checked_mul(100).ok_or(AmountError::OutOfRange).and_then(Points::from_hundredths)
    }

    /// An amount in hundredths, refused beyond the largest single amount.
    pub fn from_hundredths(hundredths: i64) -> Result<Points, AmountError> {
        if hundredths.unsigned_abs() > MAX_HUNDREDTHS as u64 {
            return Err(AmountError::OutOfRange);
        }
        Ok(Points(hundredths))
    }

    /// A stored value, which may be a sum beyond the single-amount bound.
    pub const fn from_stored(hundredths: i64) -> Points {
        Points(hundredths)
    }

    pub const fn hundredths(self) -> i64 {
        self.0
    }

    pub fn is_positive(self) -> bool {
        self.0 > 0
    }

    pub fn is_negative(self) -> bool {
        self.0 < 0
    }

    pub fn checked_add(self, other: Points) -> Result<Points, AmountError> {
        self.0.checked_add(other.0).map(Points).ok_or(AmountError::OutOfRange)
    }

    pub fn checked_sub(self, other: Points) -> Result<Points, AmountError> {
        self.0.checked_sub(other.0).map(Points).ok_or(AmountError::OutOfRange)
    }

    pub fn checked_neg(self) -> Result<Points, AmountError> {
        self.0.checked_neg().map(Points).ok_or(AmountError::OutOfRange)
    }

    pub fn checked_mul(self, factor: i64) -> Result<Points, AmountError> {
        self.0.checked_mul(factor).map(Points).ok_or(AmountError::OutOfRange)
    }
}

impl fmt::Display for Points {
    /// Always two decimals: `12.50`, `-0.05`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let magnitude = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", magnitude / 100, magnitude % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Result<i64, AmountError> {
        Points::parse(text).map(Points::hundredths)
    }

    #[test]
    fn plain_decimals_parse_to_hundredths() {
        assert_eq!(p("12"), Ok(1200));
        assert_eq!(p("12.5"), Ok(1250));
        assert_eq!(p("12.05"), Ok(1205));
        assert_eq!(p("0.01"), Ok(1));
        assert_eq!(p("-3.5"), Ok(-350));
        assert_eq!(p("007.10"), Ok(710));
    }

    #[test]
    fn an_amount_with_three_decimals_is_rejected() {
        assert_eq!(p("1.005"), Err(AmountError::Malformed));
    }

    #[test]
    fn exponents_words_and_blanks_are_rejected() {
        for bad in [
            "1e3",
            "NaN",
            "Infinity",
            "-Infinity",
            "",
            " 1",
            "1 ",
            "+1",
            ".5",
            "5.",
            "1.2.3",
            "--1",
            "-",
            "0x10",
            "1_000",
            "١٢",
        ] {
            assert_eq!(p(bad), Err(AmountError::Malformed), "{bad:?}");
        }
    }

    #[test]
    fn amounts_beyond_a_trillion_points_are_out_of_range() {
        assert_eq!(p("1000000000000"), Ok(100_000_000_000_000));
        assert_eq!(p("1000000000000.01"), Err(AmountError::OutOfRange));
        assert_eq!(p("99999999999999999999999999"), Err(AmountError::OutOfRange));
        assert_eq!(Points::from_whole(i64::MAX).map(Points::hundredths), Err(AmountError::OutOfRange));
        assert_eq!(Points::from_whole(1_000_000_000_001).map(Points::hundredths), Err(AmountError::OutOfRange));
    }

    #[test]
    fn display_always_shows_two_decimals() {
        assert_eq!(Points::from_stored(1250).to_string(), "12.50");
        assert_eq!(Points::from_stored(-5).to_string(), "-0.05");
        assert_eq!(Points::from_stored(0).to_string(), "0.00");
        assert_eq!(Points::from_stored(i64::MIN).to_string(), "-92233720368547758.08");
    }

    #[test]
    fn arithmetic_overflow_is_an_error() {
        let big = Points::from_stored(i64::MAX);
        assert_eq!(big.checked_add(Points::from_stored(1)), Err(AmountError::OutOfRange));
        assert_eq!(Points::from_stored(i64::MIN).checked_neg(), Err(AmountError::OutOfRange));
        assert_eq!(big.checked_mul(2), Err(AmountError::OutOfRange));
    }
}
