//! Moments as files write them, each read by one explicit format.
//!
//! A unix time is a moment in UTC. A date and time without a zone (WebDKP's
//! `YYYY-MM-DD HH:MM:SS`, RCLootCouncil's `M/D/YY` and `HH:MM:SS`) is kept as
//! written, a `Local` value: the import says so in its `time_zone` and never
//! guesses an offset. Calendar dates are checked (no 31 April, no 29 February
//! outside leap years).

/// When something happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    /// Seconds since 1970-01-01T00:00:00Z.
    Unix(i64),
    /// A wall-clock time in a zone the file does not state.
    Local(LocalTime),
}

/// A calendar date and time of day, without a zone.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct LocalTime {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

/// In which zone an import's times are.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeZone {
    /// Every time is a unix time, so UTC.
    Utc,
    /// Times are wall-clock times of the game client that wrote the file; its zone is not stated.
    Unstated,
}

impl TimeZone {
    pub fn as_str(self) -> &'static str {
        match self {
            TimeZone::Utc => "UTC",
            TimeZone::Unstated => "unstated: local time of the client that wrote the file",
        }
    }
}

impl At {
    /// Seconds for ordering: a `Local` time counts as if it were UTC.
    pub fn sort_key(self) -> i64 {
        match self {
            At::Unix(seconds) => seconds,
            At::Local(local) => local.seconds_as_if_utc(),
        }
    }
}

impl LocalTime {
    /// A checked date and time.
    pub fn new(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Option<LocalTime> {
        let valid = (1..=12).contains(&month)
            && day >= 1
            && day <= days_in_month(year, month)
            && hour < 24
            && minute < 60
            && second < 60;
        valid.then_some(LocalTime { year, month, day, hour, minute, second })
    }

    /// The UTC date and time of a unix time.
    pub fn from_unix(seconds: i64) -> LocalTime {
        let (days, second_of_day) = (seconds.div_euclid(86_400), seconds.rem_euclid(86_400));
        let (year, month, day) = civil_from_days(days);
        let (hour, minute, second) = (second_of_day / 3_600, second_of_day / 60 % 60, second_of_day % 60);
        LocalTime { year, month, day, hour: hour as u8, minute: minute as u8, second: second as u8 }
    }

    fn seconds_as_if_utc(self) -> i64 {
        let days = days_from_civil(self.year, self.month, self.day);
        days * 86_400 + i64::from(self.hour) * 3_600 + i64::from(self.minute) * 60 + i64::from(self.second)
    }
}

/// `YYYY-MM-DD HH:MM:SS` (WebDKP), or `YYYY-MM-DD` alone (midnight).
pub fn parse_iso_local(text: &str) -> Option<LocalTime> {
    let (date, time) = match text.split_once([' ', 'T']) {
        Some((date, time)) => (date, Some(time)),
        None => (text, None),
    };
    let mut parts = date.split('-');
    let year = fixed_digits(parts.next()?, 4)?;
    let month = fixed_digits(parts.next()?, 2)?;
    let day = fixed_digits(parts.next()?, 2)?;
    if parts.next().is_some() {
        return None;
    }
    let (hour, minute, second) = match time {
        Some(time) => parse_clock(time)?,
        None => (0, 0, 0),
    };
    LocalTime::new(year as i32, month as u8, day as u8, hour, minute, second)
}

/// RFC 3339 with `Z` or an offset: `2026-11-26T18:00:00Z`, `...+02:00`.
pub fn parse_rfc3339(text: &str) -> Option<i64> {
    let (body, offset) = if let Some(body) = text.strip_suffix(['Z', 'z']) {
        (body, 0)
    } else {
        let at = text.len().checked_sub(6)?;
        let (body, zone) = text.split_at_checked(at)?;
        let sign = match zone.as_bytes().first()? {
            b'+' => 1,
            b'-' => -1,
            _ => return None,
        };
        let (hours, minutes) = zone[1..].split_once(':')?;
        let minutes = i64::from(fixed_digits(hours, 2)?) * 60 + i64::from(fixed_digits(minutes, 2)?);
        (body, sign * minutes * 60)
    };
    if body.as_bytes().get(10).is_none_or(|b| !matches!(b, b'T' | b't')) {
        return None;
    }
    let local = parse_iso_local(body)?;
    Some(local.seconds_as_if_utc() - offset)
}

/// `M/D/YY` (RCLootCouncil), a two-digit year taken as 20YY.
pub fn parse_us_date(text: &str) -> Option<(i32, u8, u8)> {
    let mut parts = text.split('/');
    let month = short_digits(parts.next()?)?;
    let day = short_digits(parts.next()?)?;
    let year = parts.next()?;
    if parts.next().is_some() {
        return None;
    }
    let year = match year.len() {
        2 => 2000 + fixed_digits(year, 2)? as i32,
        4 => fixed_digits(year, 4)? as i32,
        _ => return None,
    };
    Some((year, month, day))
}

/// `dd.mm.yy` (EQdkp Plus), a two-digit year taken as 20YY.
pub fn parse_dotted_date(text: &str) -> Option<(i32, u8, u8)> {
    let mut parts = text.split('.');
    let day = short_digits(parts.next()?)?;
    let month = short_digits(parts.next()?)?;
    let year = 2000 + fixed_digits(parts.next()?, 2)? as i32;
    if parts.next().is_some() {
        return None;
    }
    Some((year, month, day))
}

/// `H:MM:SS` or `HH:MM:SS` (or `HH:MM`).
pub fn parse_clock(text: &str) -> Option<(u8, u8, u8)> {
    let mut parts = text.split(':');
    let hour = short_digits(parts.next()?)?;
    let minute = fixed_digits(parts.next()?, 2)? as u8;
    let second = match parts.next() {
        Some(second) => fixed_digits(second, 2)? as u8,
        None => 0,
    };
    if parts.next().is_some() {
        return None;
    }
    Some((hour, minute, second))
}

fn fixed_digits(text: &str, count: usize) -> Option<u32> {
    if text.len() != count || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn short_digits(text: &str) -> Option<u8> {
    if !(1..=2).contains(&text.len()) || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

fn days_in_month(year: i32, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i32, month: u8, day: u8) -> i64 {
    let year = i64::from(year) - i64::from(month <= 2);
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// The proleptic Gregorian date `days` after 1970-01-01 (the inverse of `days_from_civil`).
fn civil_from_days(days: i64) -> (i32, u8, u8) {
    let days = days + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let shifted_month = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * shifted_month + 2) / 5 + 1;
    let month = if shifted_month < 10 { shifted_month + 3 } else { shifted_month - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year as i32, month as u8, day as u8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn webdkp_dates_are_local_times() {
        let at = parse_iso_local("2012-12-13 23:08:42").unwrap();
        assert_eq!(at, LocalTime { year: 2012, month: 12, day: 13, hour: 23, minute: 8, second: 42 });
        assert_eq!(parse_iso_local("2012-02-30 00:00:00"), None);
        assert_eq!(parse_iso_local("2012-12-13 24:00:00"), None);
        assert!(parse_iso_local("2012-02-29").is_some());
        assert_eq!(parse_iso_local("2013-02-29"), None);
    }

    #[test]
    fn rfc3339_times_become_unix_seconds() {
        assert_eq!(parse_rfc3339("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339("2020-05-08T02:18:24Z"), Some(1_588_904_304));
        assert_eq!(parse_rfc3339("2020-05-08T04:18:24+02:00"), Some(1_588_904_304));
        assert_eq!(parse_rfc3339("2020-05-08 02:18:24Z"), None);
        assert_eq!(parse_rfc3339("2020-05-08"), None);
    }

    #[test]
    fn rclc_dates_are_month_first_with_two_digit_years() {
        assert_eq!(parse_us_date("3/23/20"), Some((2020, 3, 23)));
        assert_eq!(parse_us_date("1/03/21"), Some((2021, 1, 3)));
        assert_eq!(parse_us_date("3/23"), None);
        assert_eq!(parse_clock("02:17:50"), Some((2, 17, 50)));
        assert_eq!(parse_clock("2:17"), Some((2, 17, 0)));
    }

    #[test]
    fn eqdkp_dates_are_day_first() {
        assert_eq!(parse_dotted_date("21.01.20"), Some((2020, 1, 21)));
        assert_eq!(parse_dotted_date("2020-01-21"), None);
    }

    #[test]
    fn unix_times_give_their_utc_date_and_time_back() {
        for seconds in [0, -1, 1_588_904_304, 951_782_400, 4_102_444_799, -2_208_988_800] {
            let local = LocalTime::from_unix(seconds);
            assert_eq!(At::Local(local).sort_key(), seconds, "{local:?}");
        }
        let leap_day = LocalTime::from_unix(951_782_400);
        assert_eq!(leap_day, LocalTime::new(2000, 2, 29, 0, 0, 0).unwrap());
    }

    #[test]
    fn local_times_sort_as_if_utc() {
        let local = At::Local(parse_iso_local("2020-05-08 02:18:24").unwrap());
        assert_eq!(local.sort_key(), 1_588_904_304);
        let before_epoch = At::Local(parse_iso_local("1969-12-31 23:59:59").unwrap());
        assert_eq!(before_epoch.sort_key(), -1);
    }
}
