//! Time as the rest of git2fa sees it: whole Unix seconds, durations written
//! like `90s`, `15m`, `1h`, `7d`, and UTC timestamps for people to read.

use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch, from the system clock.
///
/// A clock before 1970 reads as 0, which makes every session and token look
/// expired: the safe direction.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// Parses a duration such as `90s`, `15m`, `1h` or `7d` into seconds.
///
/// A bare number, a sign, a fraction or an unknown unit is an error: a
/// config value that reads ambiguously must not be guessed at.
pub fn parse_duration(text: &str) -> Result<i64, String> {
    let text = text.trim();
    let unit_at = text
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("`{text}` has no unit; write it like 90s, 15m, 1h or 7d"))?;
    let (digits, unit) = text.split_at(unit_at);
    if digits.is_empty() {
        return Err(format!(
            "`{text}` is not a duration; write a whole number and a unit, like 90s, 15m, 1h or 7d"
        ));
    }
    let count: i64 = digits
        .parse()
        .map_err(|_| format!("`{text}` is too large"))?;
    let scale = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => {
            return Err(format!(
                "`{text}` has an unknown unit `{unit}`; use s, m, h or d"
            ));
        }
    };
    count
        .checked_mul(scale)
        .ok_or_else(|| format!("`{text}` is too large"))
}

/// Writes seconds back in the largest unit that divides them evenly.
pub fn format_duration(seconds: i64) -> String {
    for (scale, unit) in [(86_400, "d"), (3600, "h"), (60, "m")] {
        if seconds != 0 && seconds % scale == 0 {
            return format!("{}{unit}", seconds / scale);
        }
    }
    format!("{seconds}s")
}

/// Formats Unix seconds as `YYYY-MM-DD HH:MM:SS UTC`.
pub fn format_utc(unix: i64) -> String {
    let (date, time) = date_and_time(unix);
    format!("{date} {time} UTC")
}

/// RFC 3339 in UTC, one word: `2026-11-27T11:12:10Z` (what the admin CLI
/// prints in its one-line-per-row listings).
pub fn format_rfc3339(unix: i64) -> String {
    let (date, time) = date_and_time(unix);
    format!("{date}T{time}Z")
}

/// Reads `YYYY-MM-DD` (midnight UTC) or `YYYY-MM-DDTHH:MM:SSZ`, as
/// `format_rfc3339` writes it, into Unix seconds.
pub fn parse_rfc3339(text: &str) -> Result<i64, String> {
    let bad = || format!("`{text}` is not a time: write 2026-12-01 or 2026-12-01T08:00:00Z");
    let (date, time) = match text.split_once('T') {
        Some((date, time)) => (date, Some(time.strip_suffix('Z').ok_or_else(bad)?)),
        None => (text, None),
    };
    let number = |part: &str, len: usize| -> Result<i64, String> {
        if part.len() != len || !part.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad());
        }
        part.parse().map_err(|_| bad())
    };
    let fields: Vec<&str> = date.split('-').collect();
    let [year, month, day] = fields[..] else {
        return Err(bad());
    };
    let (year, month, day) = (number(year, 4)?, number(month, 2)?, number(day, 2)?);
    if !(1..=12).contains(&month) || !(1..=days_in_month(year, month)).contains(&day) {
        return Err(bad());
    }
    let seconds = match time {
        None => 0,
        Some(time) => {
            let fields: Vec<&str> = time.split(':').collect();
            let [h, m, s] = fields[..] else {
                return Err(bad());
            };
            let (h, m, s) = (number(h, 2)?, number(m, 2)?, number(s, 2)?);
            if h > 23 || m > 59 || s > 59 {
                return Err(bad());
            }
            h * 3600 + m * 60 + s
        }
    };
    Ok(days_from_civil(year, month, day) * 86_400 + seconds)
}

fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (the inverse of
/// `civil_from_days`, from the same paper).
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let yoe = year.rem_euclid(400);
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `YYYY-MM-DD` and `HH:MM:SS` in UTC.
fn date_and_time(unix: i64) -> (String, String) {
    let secs = unix.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(unix.div_euclid(86_400));
    (
        format!("{year:04}-{month:02}-{day:02}"),
        format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60),
    )
}

/// Converts days since 1970-01-01 to a proleptic Gregorian (year, month, day).
///
/// The era-based method from Howard Hinnant's "chrono-Compatible Low-Level
/// Date Algorithms" (days_from_civil / civil_from_days).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests;
