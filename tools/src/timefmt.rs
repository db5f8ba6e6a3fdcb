//! Timestamps as operators type them (`--to-datetime`, `--from-timestamp`) and as the tool prints
//! them: epoch milliseconds, or ISO-8601 in Kafka's `YYYY-MM-DDTHH:mm:SS.sss` form with an
//! optional zone. A small civil-calendar conversion rather than a date crate: this is all the tool
//! needs of dates.

use crate::error::{AdminError, Result};

const MS_PER_DAY: i64 = 86_400_000;

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
fn days_from_civil(y: i64, m: i64, d: i64) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The date of a day count since 1970-01-01 (Hinnant's `civil_from_days`).
fn civil_from_days(z: i64) -> (i64, i64, i64) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (
        if m <= 2 {
            yoe + era * 400 + 1
        } else {
            yoe + era * 400
        },
        m,
        d,
    )
}

/// `2024-03-01T12:00:00.250Z` for epoch milliseconds.
pub fn format_ms(ms: i64) -> String {
    let days = ms.div_euclid(MS_PER_DAY);
    let rest = ms.rem_euclid(MS_PER_DAY);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000
    )
}

fn bad(s: &str) -> AdminError {
    AdminError::Invalid(format!(
        "'{s}' is not a time: use epoch milliseconds or YYYY-MM-DDTHH:MM:SS[.sss][Z|+HH:MM]"
    ))
}

fn num(s: &str, part: &str) -> Result<i64> {
    if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad(s));
    }
    part.parse().map_err(|_| bad(s))
}

/// Epoch milliseconds of `s`: a plain integer is taken as milliseconds already; otherwise
/// `YYYY-MM-DD[THH:MM[:SS[.sss]]][Z|±HH:MM|±HHMM]`, UTC when no zone is given.
pub fn parse_time(s: &str) -> Result<i64> {
    let t = s.trim();
    if !t.is_empty() && t.bytes().all(|b| b.is_ascii_digit()) {
        return t.parse().map_err(|_| bad(s));
    }
    let (date, time) = t.split_once(['T', ' ']).unwrap_or((t, ""));
    let mut dp = date.split('-');
    let (y, m, d) = match (dp.next(), dp.next(), dp.next(), dp.next()) {
        (Some(y), Some(m), Some(d), None) if y.len() == 4 => (num(s, y)?, num(s, m)?, num(s, d)?),
        _ => return Err(bad(s)),
    };
    if !(1..=12).contains(&m) || !(1..=31).contains(&d) {
        return Err(bad(s));
    }
    // Split off the zone: `Z`, or the last `+`/`-` in the time part.
    let (clock, offset_ms) = if let Some(c) = time.strip_suffix('Z') {
        (c, 0)
    } else if let Some(i) = time.rfind(['+', '-']) {
        let (c, z) = time.split_at(i);
        let sign = if z.starts_with('-') { -1 } else { 1 };
        let z = z[1..].replace(':', "");
        if z.len() != 4 {
            return Err(bad(s));
        }
        let (hh, mm) = (num(s, &z[..2])?, num(s, &z[2..])?);
        (c, sign * (hh * 3_600_000 + mm * 60_000))
    } else {
        (time, 0)
    };
    let mut ms_of_day = 0;
    if !clock.is_empty() {
        let (hms, frac) = clock.split_once('.').unwrap_or((clock, ""));
        let mut parts = hms.split(':');
        let h = num(s, parts.next().unwrap_or(""))?;
        let mi = num(s, parts.next().ok_or_else(|| bad(s))?)?;
        let sec = parts.next().map_or(Ok(0), |p| num(s, p))?;
        if parts.next().is_some() || h > 23 || mi > 59 || sec > 60 {
            return Err(bad(s));
        }
        let millis = if frac.is_empty() {
            0
        } else {
            // Milliseconds: the first three digits of the fraction.
            let f = format!("{:0<3}", &frac[..frac.len().min(3)]);
            num(s, frac)?;
            num(s, &f)?
        };
        ms_of_day = h * 3_600_000 + mi * 60_000 + sec * 1000 + millis;
    }
    Ok(days_from_civil(y, m, d) * MS_PER_DAY + ms_of_day - offset_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_and_parses_round_trip() {
        for ms in [
            0i64,
            1_700_000_000_123,
            951_782_400_000,
            -1000,
            4_102_444_800_000,
        ] {
            assert_eq!(parse_time(&format_ms(ms)).unwrap(), ms, "{}", format_ms(ms));
        }
        assert_eq!(format_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(format_ms(951_782_400_000), "2000-02-29T00:00:00.000Z");
    }

    #[test]
    fn accepts_kafka_forms_and_zones() {
        assert_eq!(parse_time("1700000000123").unwrap(), 1_700_000_000_123);
        assert_eq!(
            parse_time("2023-11-14T22:13:20.123").unwrap(),
            1_700_000_000_123
        );
        assert_eq!(
            parse_time("2023-11-14T22:13:20.1Z").unwrap(),
            1_700_000_000_100
        );
        assert_eq!(
            parse_time("2023-11-15T00:13:20.123+02:00").unwrap(),
            1_700_000_000_123
        );
        assert_eq!(
            parse_time("2023-11-14T21:13:20-0100").unwrap(),
            1_700_000_000_000
        );
        assert_eq!(parse_time("2023-11-14").unwrap(), 1_699_920_000_000);
        assert_eq!(parse_time("2023-11-14T22:13").unwrap(), 1_699_999_980_000);
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for s in [
            "",
            "yesterday",
            "2023-13-01",
            "2023-11-14T25:00",
            "2023-11-14T10:00+5",
            "12:00",
        ] {
            assert!(parse_time(s).is_err(), "{s}");
        }
    }
}
