//! Exact decimal numbers as files write them, turned into `Points` without
//! ever passing through a float.
//!
//! A `Decimal` is `mantissa × 10^exponent`, read digit by digit from the text.
//! Amounts with more than two decimals (a decayed `12.3333333333`) are rounded
//! half away from zero to hundredths; the caller learns that it happened so
//! the import can warn once.

use dkp_core::{AmountError, Points};

/// Significant digits kept; later ones lie far below a hundredth for any
/// amount that fits in `Points`, so dropping them only marks the value inexact.
const MAX_DIGITS: usize = 36;

/// An exact decimal number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decimal {
    mantissa: i128,
    exponent: i32,
    /// Non-zero digits were dropped past `MAX_DIGITS`.
    inexact: bool,
}

/// An amount and whether it had to be rounded to hundredths.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Rounded {
    pub points: Points,
    pub rounded: bool,
}

impl Decimal {
    pub const ZERO: Decimal = Decimal { mantissa: 0, exponent: 0, inexact: false };

    /// An integer, exactly.
    pub fn from_int(value: i128) -> Decimal {
        Decimal { mantissa: value, exponent: 0, inexact: false }
    }

    /// Reads `[+-]digits[.digits][(e|E)[+-]digits]`; `.5` and `5.` are accepted
    /// as Lua writes them. Anything else (hex, words, blanks) is `None`.
    pub fn parse(text: &str) -> Option<Decimal> {
        let (negative, rest) = match text.as_bytes().first()? {
            b'-' => (true, &text[1..]),
            b'+' => (false, &text[1..]),
            _ => (false, text),
        };
        let (body, exponent) = match rest.find(['e', 'E']) {
            Some(at) => (&rest[..at], parse_exponent(&rest[at + 1..])?),
            None => (rest, 0),
        };
        let (whole, fraction) = body.split_once('.').unwrap_or((body, ""));
        let digit = |b: &u8| b.is_ascii_digit();
        if whole.len() + fraction.len() == 0
            || !whole.bytes().all(|b| digit(&b))
            || !fraction.bytes().all(|b| digit(&b))
        {
            return None;
        }
        let mut decimal = Decimal { mantissa: 0, exponent: 0, inexact: false };
        let mut kept = 0;
        for (index, byte) in whole.bytes().chain(fraction.bytes()).enumerate() {
            let value = i128::from(byte - b'0');
            let in_fraction = index >= whole.len();
            if kept < MAX_DIGITS {
                decimal.mantissa = decimal.mantissa * 10 + value;
                if decimal.mantissa != 0 {
                    kept += 1;
                }
                if in_fraction {
                    decimal.exponent -= 1;
                }
            } else {
                decimal.inexact |= value != 0;
                if !in_fraction {
                    decimal.exponent += 1;
                }
            }
        }
        decimal.exponent = decimal.exponent.checked_add(exponent)?;
        if negative {
            decimal.mantissa = -decimal.mantissa;
        }
        Some(decimal)
    }

    /// The value as hundredths of a point, rounded half away from zero.
    pub fn to_points(self) -> Result<Rounded, AmountError> {
        if self.mantissa == 0 {
            return Ok(Rounded { points: Points::ZERO, rounded: self.inexact });
        }
        let shift = self.exponent.saturating_add(2);
        if shift >= 0 {
            let factor = pow10(shift).ok_or(AmountError::OutOfRange)?;
            let hundredths = self.mantissa.checked_mul(factor).ok_or(AmountError::OutOfRange)?;
            let hundredths = i64::try_from(hundredths).map_err(|_| AmountError::OutOfRange)?;
            return Ok(Rounded { points: Points::from_hundredths(hundredths)?, rounded: self.inexact });
        }
        let Some(divisor) = pow10(-shift) else {
            return Ok(Rounded { points: Points::ZERO, rounded: true });
        };
        let (mut quotient, remainder) = (self.mantissa / divisor, self.mantissa % divisor);
        if remainder.unsigned_abs() * 2 >= divisor.unsigned_abs() {
            quotient += self.mantissa.signum();
        }
        let hundredths = i64::try_from(quotient).map_err(|_| AmountError::OutOfRange)?;
        Ok(Rounded { points: Points::from_hundredths(hundredths)?, rounded: remainder != 0 || self.inexact })
    }

    /// The value when it is a whole number that fits an `i64` (a unix time, an id).
    pub fn to_i64(self) -> Option<i64> {
        if self.inexact {
            return None;
        }
        if self.exponent >= 0 {
            let value = self.mantissa.checked_mul(pow10(self.exponent)?)?;
            return i64::try_from(value).ok();
        }
        let divisor = pow10(-self.exponent)?;
        if self.mantissa % divisor != 0 {
            return None;
        }
        i64::try_from(self.mantissa / divisor).ok()
    }

    pub fn negated(self) -> Decimal {
        Decimal { mantissa: -self.mantissa, ..self }
    }

    pub fn is_negative(self) -> bool {
        self.mantissa < 0
    }
}

/// The size of an amount without its sign (lifetime spent is kept positive).
pub(crate) fn magnitude(points: Points) -> Points {
    Points::from_stored(points.hundredths().abs())
}

impl std::fmt::Display for Decimal {
    /// The plain decimal text: `12`, `-0.25`, `1500`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let sign = if self.mantissa < 0 { "-" } else { "" };
        let digits = self.mantissa.unsigned_abs().to_string();
        if self.exponent >= 0 {
            return write!(f, "{sign}{digits}{}", "0".repeat(self.exponent.unsigned_abs() as usize));
        }
        let scale = self.exponent.unsigned_abs() as usize;
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, fraction) = padded.split_at(padded.len() - scale);
        write!(f, "{sign}{whole}.{fraction}")
    }
}

fn parse_exponent(text: &str) -> Option<i32> {
    let digits = text.strip_prefix(['+', '-']).unwrap_or(text);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    // Beyond a few thousand the value is zero or out of range either way.
    let significant = digits.trim_start_matches('0');
    let magnitude = if significant.len() > 4 { 9_999 } else { significant.parse().unwrap_or(0) };
    Some(if text.starts_with('-') { -magnitude } else { magnitude })
}

fn pow10(exponent: i32) -> Option<i128> {
    10i128.checked_pow(u32::try_from(exponent).ok()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hundredths(text: &str) -> (i64, bool) {
        let rounded = Decimal::parse(text).unwrap().to_points().unwrap();
        (rounded.points.hundredths(), rounded.rounded)
    }

    #[test]
    fn plain_amounts_are_exact() {
        assert_eq!(hundredths("12"), (1200, false));
        assert_eq!(hundredths("-12.5"), (-1250, false));
        assert_eq!(hundredths("0.05"), (5, false));
        assert_eq!(hundredths(".5"), (50, false));
        assert_eq!(hundredths("5."), (500, false));
        assert_eq!(hundredths("+3"), (300, false));
    }

    #[test]
    fn more_than_two_decimals_round_half_away_from_zero() {
        assert_eq!(hundredths("12.3333333333"), (1233, true));
        assert_eq!(hundredths("0.005"), (1, true));
        assert_eq!(hundredths("-0.005"), (-1, true));
        assert_eq!(hundredths("0.0049"), (0, true));
        assert_eq!(hundredths("-71.2099456787109"), (-7121, true));
    }

    #[test]
    fn exponents_are_exact_too() {
        assert_eq!(hundredths("1e3"), (100_000, false));
        assert_eq!(hundredths("2.5E-1"), (25, false));
        assert_eq!(hundredths("1e-300"), (0, true));
        assert_eq!(Decimal::parse("1e400").unwrap().to_points(), Err(AmountError::OutOfRange));
    }

    #[test]
    fn very_long_numbers_keep_their_leading_digits() {
        let long = format!("1.{}", "3".repeat(60));
        assert_eq!(hundredths(&long), (133, true));
        let long_whole = format!("1{}", "0".repeat(40));
        assert_eq!(Decimal::parse(&long_whole).unwrap().to_points(), Err(AmountError::OutOfRange));
    }

    #[test]
    fn words_and_hex_are_not_decimals() {
        for bad in ["", "-", ".", "abc", "0x10", "1e", "1e+", "1..2", "1,5", " 1", "NaN"] {
            assert_eq!(Decimal::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn decimals_print_as_plain_text() {
        for (text, shown) in [("12", "12"), ("-0.25", "-0.25"), ("1.5e3", "1500"), (".05", "0.05"), ("0", "0")] {
            assert_eq!(Decimal::parse(text).unwrap().to_string(), shown);
        }
    }

    #[test]
    fn whole_numbers_convert_to_integers() {
        assert_eq!(Decimal::parse("1588904304").unwrap().to_i64(), Some(1_588_904_304));
        assert_eq!(Decimal::parse("1.5e1").unwrap().to_i64(), Some(15));
        assert_eq!(Decimal::parse("1.5").unwrap().to_i64(), None);
        assert_eq!(Decimal::parse("-20.0").unwrap().to_i64(), Some(-20));
    }
}
