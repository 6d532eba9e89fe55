//! `Ts`: a point in time, kept to the microsecond (what both stores keep).

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// A point in time in UTC, to the microsecond; shown as RFC 3339.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Ts(pub OffsetDateTime);

impl Ts {
    /// Microseconds since 1970 (an i64 holds ±292,000 years of them).
    pub fn micros(self) -> i64 {
        (self.0.unix_timestamp_nanos() / 1_000) as i64
    }

    /// The time `micros` microseconds after 1970, if it is one `time` can hold.
    pub fn from_micros(micros: i64) -> Option<Ts> {
        OffsetDateTime::from_unix_timestamp_nanos(i128::from(micros) * 1_000).ok().map(Ts)
    }

    /// Reads an RFC 3339 time as given (`2026-11-26T18:00:00Z`), cut to the
    /// microsecond as the stores keep it.
    pub fn parse(text: &str) -> Option<Ts> {
        let time = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        Ts::from_micros((time.unix_timestamp_nanos() / 1_000) as i64)
    }

    /// This time moved by `by`.
    pub fn plus(self, by: std::time::Duration) -> Ts {
        Ts(self.0 + by)
    }
}

impl Serialize for Ts {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.0.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Ts {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Ts, D::Error> {
        let text = String::deserialize(deserializer)?;
        OffsetDateTime::parse(&text, &Rfc3339).map(Ts).map_err(serde::de::Error::custom)
    }
}
