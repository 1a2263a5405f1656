//! Calendar arithmetic for version names and `updated` (no clock is read).

/// Days since 1970-01-01 of a proleptic Gregorian date.
#[must_use]
pub fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
#[must_use]
pub fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = u32::try_from(doy - (153 * mp + 2) / 5 + 1).unwrap_or(1);
    let month = u32::try_from(if mp < 10 { mp + 3 } else { mp - 9 }).unwrap_or(1);
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn days_in_month(year: i64, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        _ => 28,
    }
}

/// 9999-12-31 23:59:59 UTC, the last second a `YYYYMMDD` version name can
/// give.
pub const LAST_VERSION_SECOND: i64 = 253_402_300_799;

/// Whether `unix` (a `creation_date`) names a version the clients keep:
/// from 1970 to the end of 9999 (a later year has more than four digits,
/// so the name's `YYYYMMDD` prefix is no date).
#[must_use]
pub fn is_version_second(unix: i64) -> bool {
    (0..=LAST_VERSION_SECOND).contains(&unix)
}

/// Parses the `YYYYMMDD` prefix of a version name as the clients do (Go
/// layout `20060102`, `docs/protocol.md#version-names`): `None` when a client would drop the version.
#[must_use]
pub fn version_date(name: &str) -> Option<(i64, u32, u32)> {
    let digits = name.as_bytes().get(..8)?;
    if !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let num = |r: std::ops::Range<usize>| {
        digits[r]
            .iter()
            .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let (year, month, day) = (i64::from(num(0..4)), num(4..6), num(6..8));
    if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
        return None;
    }
    Some((year, month, day))
}

/// Formats Unix seconds as RFC 2822 in UTC, the form the simplestreams
/// reference uses for `updated`: `Sat, 01 Aug 2026 04:00:00 +0000`.
#[must_use]
pub fn rfc2822(unix: i64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    let weekday = DAYS[usize::try_from(days.rem_euclid(7)).unwrap_or(0)];
    let month = MONTHS[usize::try_from(month - 1).unwrap_or(0)];
    format!(
        "{weekday}, {day:02} {month} {year:04} {:02}:{:02}:{:02} +0000",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// Formats Unix seconds as a version name `YYYYMMDD_HHMM` in UTC.
#[must_use]
pub fn version_name(unix: i64) -> String {
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    let secs = unix.rem_euclid(86_400);
    format!(
        "{year:04}{month:02}{day:02}_{:02}{:02}",
        secs / 3600,
        secs % 3600 / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc2822_matches_known_dates() {
        assert_eq!(rfc2822(0), "Thu, 01 Jan 1970 00:00:00 +0000");
        // A Saturday in August 2026.
        assert_eq!(rfc2822(1_785_556_800), "Sat, 01 Aug 2026 04:00:00 +0000");
        assert_eq!(rfc2822(951_782_400), "Tue, 29 Feb 2000 00:00:00 +0000");
    }

    #[test]
    fn version_dates_follow_go_layout() {
        assert_eq!(version_date("20260801_0312"), Some((2026, 8, 1)));
        assert_eq!(version_date("20240229"), Some((2024, 2, 29)));
        assert_eq!(version_date("20230229"), None);
        assert_eq!(version_date("2026081"), None);
        assert_eq!(version_date("20261301_0000"), None);
        assert_eq!(version_date("v1.2.3-abc"), None);
        assert_eq!(version_name(1_785_556_800), "20260801_0400");
        assert_eq!(version_name(LAST_VERSION_SECOND), "99991231_2359");
        assert!(is_version_second(0) && is_version_second(LAST_VERSION_SECOND));
        assert!(!is_version_second(LAST_VERSION_SECOND + 1) && !is_version_second(-1));
    }

    #[test]
    fn civil_round_trip() {
        for days in [-1000, 0, 59, 60, 10_957, 20_000, 100_000] {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
