//! Event times and wall-clock times as UTC date-times for people (the progress line, the
//! run manifest): `2017-11-25 08:00:00`. Written here rather than taken from a date
//! crate because it must print every `u64` timestamp a file may hold (the warning about
//! a watermark jump quotes them), while the common crates stop at the year 9999.

/// `ms` since the Unix epoch as `YYYY-MM-DD HH:MM:SS` (UTC).
pub fn date_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02} {:02}:{:02}:{:02}", rest / 3600, rest % 3600 / 60, rest % 60)
}

/// The wall clock now, in ms since the Unix epoch.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// (year, month, day) of the day `days` after 1970-01-01 (proleptic Gregorian; Howard
/// Hinnant's `civil_from_days`).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    (yoe + era * 400 + (m <= 2) as u64, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(date_time(0), "1970-01-01 00:00:00");
        assert_eq!(date_time(1_511_596_800_000), "2017-11-25 08:00:00");
        assert_eq!(date_time(951_782_400_000), "2000-02-29 00:00:00");
        assert_eq!(date_time(4_102_444_799_999), "2099-12-31 23:59:59");
        assert_eq!(date_time(u64::MAX).len(), date_time(u64::MAX).trim().len());
    }
}
