//! Time, as the host supplies it.
//!
//! The engine never reads a clock itself: a [`Clock`] is handed in, so tests
//! and the cross-host vectors run at a fixed instant. Timestamps are UTC
//! milliseconds since the Unix epoch and print as fixed-width RFC 3339
//! (`2026-11-24T13:08:01.123Z`), which the ledger's format relies on.

/// A source of the current time.
pub trait Clock {
    /// Milliseconds since 1970-01-01T00:00:00Z.
    fn now_ms(&self) -> u64;
}

/// A clock that always answers the same instant (tests, vectors).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedClock(pub u64);

impl Clock for FixedClock {
    fn now_ms(&self) -> u64 {
        self.0
    }
}

/// A clock that advances by `step_ms` each time it is read, starting at
/// `start_ms` (vectors that cross rate-limit windows).
#[derive(Debug)]
pub struct SteppingClock {
    next: std::cell::Cell<u64>,
    step_ms: u64,
}

impl SteppingClock {
    /// Starts at `start_ms`, then `start_ms + step_ms`, …
    pub fn new(start_ms: u64, step_ms: u64) -> Self {
        Self {
            next: std::cell::Cell::new(start_ms),
            step_ms,
        }
    }
}

impl Clock for SteppingClock {
    fn now_ms(&self) -> u64 {
        let now = self.next.get();
        self.next.set(now.saturating_add(self.step_ms));
        now
    }
}

/// The calendar fields that constraint expressions can read (`time.hour`…).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CivilTime {
    /// Year, e.g. 2026.
    pub year: i64,
    /// Month 1–12.
    pub month: u32,
    /// Day of month 1–31.
    pub day: u32,
    /// Hour 0–23 (UTC).
    pub hour: u32,
    /// Minute 0–59.
    pub minute: u32,
    /// Second 0–59.
    pub second: u32,
    /// Millisecond 0–999.
    pub millis: u32,
    /// Day of week, Monday = 0 … Sunday = 6 (as Python's `weekday()`).
    pub weekday: u32,
}

impl CivilTime {
    /// Splits a Unix millisecond timestamp into UTC calendar fields.
    pub fn from_unix_ms(ms: u64) -> Self {
        let secs = ms / 1000;
        let days = (secs / 86_400) as i64;
        let rem = secs % 86_400;
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z.rem_euclid(146_097);
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
        let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
        let year = yoe + era * 400 + i64::from(month <= 2);
        Self {
            year,
            month,
            day,
            hour: (rem / 3600) as u32,
            minute: ((rem % 3600) / 60) as u32,
            second: (rem % 60) as u32,
            millis: (ms % 1000) as u32,
            // 1970-01-01 was a Thursday (= 3).
            weekday: ((days + 3).rem_euclid(7)) as u32,
        }
    }
}

/// Formats a Unix millisecond timestamp as `YYYY-MM-DDTHH:MM:SS.mmmZ`
/// (always 24 characters for years 0–9999).
pub fn format_rfc3339_ms(ms: u64) -> String {
    let t = CivilTime::from_unix_ms(ms);
    let year = u32::try_from(t.year.clamp(0, 9999)).unwrap_or(0);
    let mut out = *b"0000-00-00T00:00:00.000Z";
    // (value, offset of its last digit, width), written right to left.
    let fields = [
        (year, 3, 4),
        (t.month, 6, 2),
        (t.day, 9, 2),
        (t.hour, 12, 2),
        (t.minute, 15, 2),
        (t.second, 18, 2),
        (t.millis, 22, 3),
    ];
    for (mut value, last, width) in fields {
        for at in (last + 1 - width..=last).rev() {
            if let Some(d) = out.get_mut(at) {
                *d = b'0' + (value % 10) as u8;
            }
            value /= 10;
        }
    }
    // ASCII digits and separators are always UTF-8.
    String::from_utf8(out.to_vec()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(format_rfc3339_ms(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(
            format_rfc3339_ms(1_795_525_681_123),
            "2026-11-24T13:08:01.123Z"
        );
        assert_eq!(
            format_rfc3339_ms(951_782_400_000),
            "2000-02-29T00:00:00.000Z"
        );
    }

    proptest::proptest! {
        #[test]
        fn hand_written_format_is_what_format_writes(ms in 0u64..253_402_300_800_000) {
            let t = CivilTime::from_unix_ms(ms);
            let expected = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:03}Z",
                t.year, t.month, t.day, t.hour, t.minute, t.second, t.millis
            );
            proptest::prop_assert_eq!(format_rfc3339_ms(ms), expected);
        }
    }

    #[test]
    fn years_past_9999_are_clamped() {
        assert_eq!(format_rfc3339_ms(u64::MAX).get(..5), Some("9999-"));
    }

    #[test]
    fn weekday_is_monday_zero() {
        // 2026-11-24 is a Tuesday.
        assert_eq!(CivilTime::from_unix_ms(1_795_525_681_123).weekday, 1);
        assert_eq!(CivilTime::from_unix_ms(0).weekday, 3);
    }

    #[test]
    fn stepping_clock_advances() {
        let c = SteppingClock::new(10, 5);
        assert_eq!((c.now_ms(), c.now_ms(), c.now_ms()), (10, 15, 20));
    }
}
