//! Wall-clock time as Unix seconds (`f64`, like SkyPilot's job table) and
//! the few ways it is printed. UTC throughout: no time-zone database.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix seconds.
pub fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// (year, month, day, hour, minute, second, microsecond) in UTC.
fn civil(ts: f64) -> (i64, u32, u32, u32, u32, u32, u32) {
    let micros_total = (ts * 1e6).round() as i64;
    let secs = micros_total.div_euclid(1_000_000);
    let micros = micros_total.rem_euclid(1_000_000) as u32;
    let days = secs.div_euclid(86_400);
    let sod = secs.rem_euclid(86_400) as u32;
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (
        year,
        month,
        day,
        sod / 3600,
        sod / 60 % 60,
        sod % 60,
        micros,
    )
}

/// `YYYY-MM-DD-HH-MM-SS-micros` with `sep` between fields (task ids).
pub fn stamp(ts: f64, sep: char) -> String {
    let (y, mo, d, h, mi, s, us) = civil(ts);
    format!("{y:04}{sep}{mo:02}{sep}{d:02}{sep}{h:02}{sep}{mi:02}{sep}{s:02}{sep}{us:06}")
}

/// `YYYY-MM-DDTHH:MM:SSZ` (the daemon's log).
pub fn iso(ts: f64) -> String {
    let (y, mo, d, h, mi, s, _) = civil(ts);
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}Z")
}

/// `sky queue`'s "2 mins ago".
pub fn ago(ts: f64, now: f64) -> String {
    let s = (now - ts).max(0.0) as u64;
    let (n, unit) = match s {
        0..=59 => (s, "sec"),
        60..=3599 => (s / 60, "min"),
        3600..=86_399 => (s / 3600, "hr"),
        _ => (s / 86_400, "day"),
    };
    if n == 1 {
        format!("1 {unit} ago")
    } else {
        format!("{n} {unit}s ago")
    }
}

/// A duration as `1h 2m 3s` / `2m 3s` / `3s`.
pub fn duration(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}h {m}m {s}s")
    } else if m > 0 {
        format!("{m}m {s}s")
    } else {
        format!("{s}s")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        // 2024-02-29T12:34:56.5Z
        let ts = 1_709_210_096.5;
        assert_eq!(iso(ts), "2024-02-29T12:34:56Z");
        assert_eq!(stamp(ts, '-'), "2024-02-29-12-34-56-500000");
        assert_eq!(ago(ts, ts + 125.0), "2 mins ago");
        assert_eq!(ago(ts, ts + 1.0), "1 sec ago");
        assert_eq!(duration(3725.0), "1h 2m 5s");
        assert_eq!(duration(65.0), "1m 5s");
    }
}
