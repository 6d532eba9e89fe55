//! A member's balance over time as the numbers of an inline SVG line: one
//! point per entry, oldest on the left, scaled into a fixed box. Drawn by
//! the page with no script.

use dkp_core::Points;
use serde_json::{Value, json};

const WIDTH: i64 = 600;
const HEIGHT: i64 = 160;
/// Room above and below the line, so its ends are not cut by the frame.
const MARGIN: i64 = 8;

/// The balances after each entry, oldest first, from the balance now and
/// the member's change in each entry, newest first.
pub fn balances(now: Points, changes_newest_first: &[Points]) -> Vec<Points> {
    let mut after = Vec::with_capacity(changes_newest_first.len() + 1);
    let mut balance = now;
    after.push(balance);
    for change in changes_newest_first {
        balance = balance.checked_sub(*change).unwrap_or(balance);
        after.push(balance);
    }
    after.reverse();
    after
}

/// The chart of `balances` (oldest first); none for fewer than two.
pub fn chart(balances: &[Points]) -> Option<Value> {
    if balances.len() < 2 {
        return None;
    }
    let values: Vec<i64> = balances.iter().map(|p| p.hundredths()).collect();
    let low = values.iter().copied().min().unwrap_or(0).min(0);
    let high = values.iter().copied().max().unwrap_or(0).max(0);
    let span = (high - low).max(1);
    let last = (values.len() - 1) as i64;
    let y = |v: i64| MARGIN + (high - v) * (HEIGHT - 2 * MARGIN) / span;
    let points: Vec<String> =
        values.iter().enumerate().map(|(i, v)| format!("{},{}", i as i64 * WIDTH / last, y(*v))).collect();
    let text = |hundredths: i64| Points::from_stored(hundredths).to_string();
    Some(json!({
        "width": WIDTH,
        "height": HEIGHT,
        "points": points.join(" "),
        "zero": y(0),
        "low": text(low),
        "high": text(high),
        "first": text(values[0]),
        "last": text(values[values.len() - 1]),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pts(whole: i64) -> Points {
        Points::from_whole(whole).unwrap()
    }

    #[test]
    fn balances_run_back_from_the_balance_now() {
        // Now 30, after +50 then -20 (newest first: -20, +50) from 0.
        assert_eq!(balances(pts(30), &[pts(-20), pts(50)]), vec![pts(0), pts(50), pts(30)]);
    }

    #[test]
    fn the_line_spans_the_box_and_marks_zero() {
        let drawn = chart(&[pts(0), pts(100), pts(50)]).unwrap();
        assert_eq!(drawn["points"], "0,152 300,8 600,80");
        assert_eq!(drawn["zero"], 152);
        assert_eq!(drawn["high"], "100.00");
        assert_eq!(drawn["low"], "0.00");
    }

    #[test]
    fn a_negative_balance_sits_below_zero() {
        let drawn = chart(&[pts(-10), pts(10)]).unwrap();
        assert_eq!(drawn["points"], "0,152 600,8");
        assert_eq!(drawn["zero"], 80);
    }

    #[test]
    fn one_point_is_no_line() {
        assert!(chart(&[pts(5)]).is_none());
        assert!(chart(&[]).is_none());
    }
}
