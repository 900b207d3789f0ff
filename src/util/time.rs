//! UTC calendar arithmetic without a time crate: unix seconds to civil dates and back,
//! the `YYYYMMDD'T'HHMMSS'Z'` form SigV4 needs, and RFC 3339 for logs.

use std::time::{SystemTime, UNIX_EPOCH};

/// A UTC civil date and time, second resolution.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Civil {
    pub year: i32,
    pub month: u32,
    pub day: u32,
    pub hour: u32,
    pub minute: u32,
    pub second: u32,
}

/// Days since 1970-01-01 to (year, month, day); Howard Hinnant's algorithm.
pub(crate) fn civil_from_days(z: i64) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = (z - era * 146_097) as u64; // [0, 146096]
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let y = yoe as i64 + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11]
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32; // [1, 31]
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32; // [1, 12]
    ((if m <= 2 { y + 1 } else { y }) as i32, m, d)
}

/// (year, month, day) to days since 1970-01-01.
pub fn days_from_civil(y: i32, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y as i64 - 1 } else { y as i64 };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = (y - era * 400) as u64;
    let mp = if m > 2 { m - 3 } else { m + 9 } as u64;
    let doy = (153 * mp + 2) / 5 + d as u64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe as i64 - 719_468
}

impl Civil {
    /// Writes the year (4 digits, clamped to 0..=9999), month, day, hour, minute and
    /// second (2 digits each) into `out` at the offsets `at`, in that order.
    pub(crate) fn put_digits(&self, out: &mut [u8], at: [usize; 6]) {
        let year = self.year.clamp(0, 9999) as u32;
        let fields = [year, self.month, self.day, self.hour, self.minute, self.second];
        for (i, (at, v)) in at.into_iter().zip(fields).enumerate() {
            put_digits(out, at, if i == 0 { 4 } else { 2 }, v);
        }
    }

    /// Civil time of a unix timestamp in seconds.
    pub(crate) fn from_unix(secs: i64) -> Civil {
        let days = secs.div_euclid(86_400);
        let rem = secs.rem_euclid(86_400) as u32;
        let (year, month, day) = civil_from_days(days);
        Civil {
            year,
            month,
            day,
            hour: rem / 3600,
            minute: (rem % 3600) / 60,
            second: rem % 60,
        }
    }

    /// `YYYY-MM-DD`.
    pub(crate) fn date_dashed(&self) -> String {
        format!("{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// Now as unix seconds.
pub(crate) fn unix_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

/// Now as unix microseconds.
pub(crate) fn unix_now_micros() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

/// RFC 3339 UTC with milliseconds, for log lines.
pub(crate) fn rfc3339_millis(micros: i64) -> String {
    String::from_utf8_lossy(&rfc3339_millis_bytes(micros)).into_owned()
}

/// [`rfc3339_millis`] into a fixed buffer, digit by digit (years clamped to 0..=9999).
pub(crate) fn rfc3339_millis_bytes(micros: i64) -> [u8; 24] {
    let c = Civil::from_unix(micros.div_euclid(1_000_000));
    let ms = (micros.rem_euclid(1_000_000) / 1000) as u32;
    let mut out = *b"0000-00-00T00:00:00.000Z";
    c.put_digits(&mut out, [0, 5, 8, 11, 14, 17]);
    put_digits(&mut out, 20, 3, ms);
    out
}

/// Writes `v`'s last `width` decimal digits into `out[at..at + width]`, zero-padded.
pub(crate) fn put_digits(out: &mut [u8], at: usize, width: usize, mut v: u32) {
    for i in (at..at + width).rev() {
        out[i] = b'0' + (v % 10) as u8;
        v /= 10;
    }
}

/// Parses `YYYYMMDD'T'HHMMSS'Z'` (the `X-Amz-Date` form) into unix seconds.
pub fn parse_amz_date(s: &[u8]) -> Option<i64> {
    if s.len() != 16 || s[8] != b'T' || s[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let mut v = 0u32;
        for &b in &s[r] {
            if !b.is_ascii_digit() {
                return None;
            }
            v = v * 10 + (b - b'0') as u32;
        }
        Some(v)
    };
    let (y, mo, d) = (num(0..4)?, num(4..6)?, num(6..8)?);
    let (h, mi, se) = (num(9..11)?, num(11..13)?, num(13..15)?);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&d) || h > 23 || mi > 59 || se > 60 {
        return None;
    }
    Some(days_from_civil(y as i32, mo, d) * 86_400 + (h * 3600 + mi * 60 + se) as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        // 2015-08-30T12:36:00Z, the date of AWS's signing test suite.
        let c = Civil::from_unix(1_440_938_160);
        assert_eq!((c.year, c.month, c.day, c.hour, c.minute), (2015, 8, 30, 12, 36));
        assert_eq!(civil_from_days(days_from_civil(2024, 2, 29)), (2024, 2, 29));
        assert_eq!(parse_amz_date(b"20150830T123600Z"), Some(1_440_938_160));
        assert_eq!(parse_amz_date(b"20151330T123600Z"), None);
        assert_eq!(rfc3339_millis(1_440_938_160_123_456), "2015-08-30T12:36:00.123Z");
    }

    #[test]
    fn round_trip_many_days() {
        for d in (-800_000i64..800_000).step_by(997) {
            let (y, m, dd) = civil_from_days(d);
            assert_eq!(days_from_civil(y, m, dd), d);
        }
    }
}
