//! Instants and the date formats the Notary Project and notation use.
//!
//! The verifier never reads a clock: the verification time is an input. Envelope times
//! keep the UTC offset they were written with, because notation prints them that way
//! (`digital signature has expired on "Fri, 29 Jul 2022 23:59:00 +0000"`).

use core::cmp::Ordering;
use core::fmt;

use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

/// A point in time: seconds and nanoseconds since the Unix epoch, with the UTC offset it
/// was expressed in (zero for times that carry none, such as certificate validity).
#[derive(Clone, Copy, Debug, Eq, serde::Serialize, serde::Deserialize)]
pub struct Instant {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub seconds: i64,
    /// Nanoseconds within the second, `0..1_000_000_000`.
    pub nanos: u32,
    /// Offset from UTC in seconds, used only for display.
    #[serde(default)]
    pub offset_seconds: i32,
}

impl PartialEq for Instant {
    fn eq(&self, other: &Self) -> bool {
        self.seconds == other.seconds && self.nanos == other.nanos
    }
}

impl PartialOrd for Instant {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Instant {
    fn cmp(&self, other: &Self) -> Ordering {
        (self.seconds, self.nanos).cmp(&(other.seconds, other.nanos))
    }
}

/// Seconds between 0001-01-01 and 1970-01-01, the range of Go's `time.Time` that notation
/// can print; anything outside year 1..=9999 is rejected by the parsers here.
const MIN_SECONDS: i64 = -62_135_596_800;
const MAX_SECONDS: i64 = 253_402_300_799;

impl Instant {
    /// An instant in UTC.
    pub fn from_unix(seconds: i64, nanos: u32) -> Self {
        Self {
            seconds,
            nanos: nanos.min(999_999_999),
            offset_seconds: 0,
        }
    }

    /// Parse an RFC 3339 date-time (`2022-04-06T07:01:20Z`, `...+08:00`, fractions allowed),
    /// as notation's JWS headers carry.
    pub fn parse_rfc3339(text: &str) -> Option<Self> {
        let parsed = OffsetDateTime::parse(text, &Rfc3339).ok()?;
        Some(Self::from_offset_date_time(parsed))
    }

    fn from_offset_date_time(value: OffsetDateTime) -> Self {
        Self {
            seconds: value.unix_timestamp(),
            nanos: value.nanosecond(),
            offset_seconds: value.offset().whole_seconds(),
        }
    }

    fn to_offset_date_time(self) -> OffsetDateTime {
        let seconds = self.seconds.clamp(MIN_SECONDS, MAX_SECONDS);
        let utc = OffsetDateTime::from_unix_timestamp(seconds)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
            .replace_nanosecond(self.nanos)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH);
        match UtcOffset::from_whole_seconds(self.offset_seconds) {
            Ok(offset) => utc.to_offset(offset),
            Err(_) => utc,
        }
    }

    /// The same instant shown in UTC.
    pub fn utc(self) -> Self {
        Self {
            offset_seconds: 0,
            ..self
        }
    }

    /// This instant moved by a signed number of nanoseconds (saturating).
    pub fn add_nanos(self, delta: i128) -> Self {
        let total = i128::from(self.seconds) * 1_000_000_000 + i128::from(self.nanos) + delta;
        let seconds = total.div_euclid(1_000_000_000);
        let nanos = total.rem_euclid(1_000_000_000);
        Self {
            seconds: i64::try_from(seconds).unwrap_or(if seconds < 0 {
                i64::MIN
            } else {
                i64::MAX
            }),
            nanos: u32::try_from(nanos).unwrap_or(0),
            offset_seconds: self.offset_seconds,
        }
    }

    /// Go's `time.RFC1123Z` layout: `Tue, 27 Jun 2023 06:10:00 +0000`, in the instant's own
    /// offset. notation uses it in every validity and expiry message.
    pub fn rfc1123z(self) -> String {
        let t = self.to_offset_date_time();
        let offset = t.offset().whole_seconds();
        let sign = if offset < 0 { '-' } else { '+' };
        let abs = offset.unsigned_abs();
        format!(
            "{}, {:02} {} {:04} {:02}:{:02}:{:02} {}{:02}{:02}",
            weekday_abbrev(t.weekday()),
            t.day(),
            month_abbrev(t.month()),
            t.year(),
            t.hour(),
            t.minute(),
            t.second(),
            sign,
            abs / 3600,
            (abs % 3600) / 60
        )
    }

    /// Go's `time.ANSIC` layout in UTC: `Tue Jan  7 08:42:43 2025` (day padded with a
    /// space), as `notation inspect` prints its tree.
    pub fn ansic(self) -> String {
        let t = self.utc().to_offset_date_time();
        format!(
            "{} {} {:>2} {:02}:{:02}:{:02} {:04}",
            weekday_abbrev(t.weekday()),
            month_abbrev(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            t.year()
        )
    }

    /// RFC 3339 with whole seconds in the instant's own offset (`Z` for UTC), as Go's
    /// `time.RFC3339` prints.
    pub fn rfc3339(self) -> String {
        let t = self.to_offset_date_time();
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            offset_suffix(t.offset().whole_seconds())
        )
    }

    /// RFC 3339 with the fraction trimmed of trailing zeros, as Go's `time.RFC3339Nano`.
    pub fn rfc3339_nano(self) -> String {
        let t = self.to_offset_date_time();
        let mut fraction = String::new();
        if t.nanosecond() != 0 {
            let digits = format!("{:09}", t.nanosecond());
            fraction.push('.');
            fraction.push_str(digits.trim_end_matches('0'));
        }
        format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}{}{}",
            t.year(),
            t.month() as u8,
            t.day(),
            t.hour(),
            t.minute(),
            t.second(),
            fraction,
            offset_suffix(t.offset().whole_seconds())
        )
    }
}

impl fmt::Display for Instant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339_nano())
    }
}

impl From<der::DateTime> for Instant {
    fn from(value: der::DateTime) -> Self {
        let seconds = i64::try_from(value.unix_duration().as_secs()).unwrap_or(MAX_SECONDS);
        Self::from_unix(seconds, 0)
    }
}

fn offset_suffix(offset: i32) -> String {
    if offset == 0 {
        return "Z".to_owned();
    }
    let sign = if offset < 0 { '-' } else { '+' };
    let abs = offset.unsigned_abs();
    format!("{sign}{:02}:{:02}", abs / 3600, (abs % 3600) / 60)
}

fn weekday_abbrev(day: time::Weekday) -> &'static str {
    use time::Weekday::*;
    match day {
        Monday => "Mon",
        Tuesday => "Tue",
        Wednesday => "Wed",
        Thursday => "Thu",
        Friday => "Fri",
        Saturday => "Sat",
        Sunday => "Sun",
    }
}

fn month_abbrev(month: time::Month) -> &'static str {
    use time::Month::*;
    match month {
        January => "Jan",
        February => "Feb",
        March => "Mar",
        April => "Apr",
        May => "May",
        June => "Jun",
        July => "Jul",
        August => "Aug",
        September => "Sep",
        October => "Oct",
        November => "Nov",
        December => "Dec",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_go() {
        let t = Instant::from_unix(1_687_846_200, 0); // 2023-06-27T06:10:00Z
        assert_eq!(t.rfc1123z(), "Tue, 27 Jun 2023 06:10:00 +0000");
        assert_eq!(t.rfc3339(), "2023-06-27T06:10:00Z");
        let jan7 = Instant::from_unix(1_736_239_363, 0);
        assert_eq!(jan7.ansic(), "Tue Jan  7 08:42:43 2025");
        let frac = Instant::from_unix(1_737_451_066, 141_000_000);
        assert_eq!(frac.rfc3339_nano(), "2025-01-21T09:17:46.141Z");
    }

    #[test]
    fn keeps_the_written_offset() {
        let t = Instant::parse_rfc3339("2022-07-29T16:59:00-07:00").expect("valid");
        assert_eq!(t.rfc1123z(), "Fri, 29 Jul 2022 16:59:00 -0700");
        assert_eq!(t.utc().rfc1123z(), "Fri, 29 Jul 2022 23:59:00 +0000");
        assert!(Instant::parse_rfc3339("yesterday").is_none());
    }
}
