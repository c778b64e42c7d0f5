//! Datetimes and durations the way Python writes them inside msgpack (mashumaro):
//! a `datetime` is its `isoformat()` text, a `timedelta` its `total_seconds()` float.
use prost_types::{Duration, Timestamp};

pub use crate::render::{python_isoformat as isoformat, total_seconds};

/// Reads the text Python's `datetime.fromisoformat` reads for the forms Python writes:
/// `2024-01-02T03:04:05[.ffffff][+00:00|Z]` (or a space instead of `T`), and a bare date.
/// A datetime without an offset is taken as UTC (flytekit's Timestamp has no zone either).
pub fn parse_isoformat(text: &str) -> Result<Timestamp, String> {
    use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime};
    let to_ts =
        |dt: DateTime<chrono::Utc>| Timestamp { seconds: dt.timestamp(), nanos: dt.timestamp_subsec_nanos() as i32 };
    let t = text.trim();
    let with_t = t.replacen(' ', "T", 1);
    if let Ok(dt) = DateTime::parse_from_rfc3339(&with_t) {
        return Ok(to_ts(dt.to_utc()));
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%dT%H:%M%z"] {
        if let Ok(dt) = DateTime::parse_from_str(&with_t, fmt) {
            return Ok(to_ts(dt.to_utc()));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M"] {
        if let Ok(dt) = NaiveDateTime::parse_from_str(&with_t, fmt) {
            return Ok(to_ts(dt.and_utc()));
        }
    }
    if let Ok(d) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        return Ok(to_ts(d.and_time(NaiveTime::MIN).and_utc()));
    }
    Err(format!("{text:?} is not an ISO 8601 datetime (e.g. 2024-01-02T03:04:05.123456+00:00)"))
}

/// `timedelta(seconds=x)`: rounded to whole microseconds (half to even, as Python does).
pub fn seconds_to_duration(seconds: f64) -> Result<Duration, String> {
    // Python's timedelta range is ±999999999 days; protobuf's Duration is ±10,000 years.
    const MAX_SECONDS: f64 = 315_576_000_000.0;
    if !seconds.is_finite() || seconds.abs() > MAX_SECONDS {
        return Err(format!("{seconds} seconds is not a valid duration"));
    }
    let micros = (seconds * 1e6).round_ties_even() as i64;
    Ok(micros_to_duration(micros))
}

/// A protobuf Duration of `micros` microseconds (seconds and nanos of the same sign).
pub fn micros_to_duration(micros: i64) -> Duration {
    Duration { seconds: micros / 1_000_000, nanos: ((micros % 1_000_000) * 1_000) as i32 }
}

/// A protobuf Timestamp's validity (nanos in range) and conversion to chrono.
pub fn timestamp_to_chrono(t: &Timestamp) -> Result<chrono::DateTime<chrono::Utc>, String> {
    if !(0..1_000_000_000).contains(&t.nanos) {
        return Err(format!("timestamp nanos {} is outside 0..1e9", t.nanos));
    }
    chrono::DateTime::from_timestamp(t.seconds, t.nanos as u32)
        .ok_or_else(|| format!("timestamp {}s is outside the representable range", t.seconds))
}

/// Checks a protobuf Duration's invariants (nanos within ±1e9 with the sign of seconds).
pub fn check_duration(d: &Duration) -> Result<(), String> {
    let sign_ok = (d.seconds >= 0 && d.nanos >= 0) || (d.seconds <= 0 && d.nanos <= 0);
    if d.nanos.abs() >= 1_000_000_000 || !sign_ok {
        return Err(format!("duration {}s {}ns is not normalized", d.seconds, d.nanos));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_python_writes() {
        let t = parse_isoformat("2024-01-02T03:04:05.123456+00:00").unwrap();
        assert_eq!((t.seconds, t.nanos), (1_704_164_645, 123_456_000));
        assert_eq!(isoformat(&t), "2024-01-02T03:04:05.123456+00:00");
        let naive = parse_isoformat("2024-01-02T03:04:05").unwrap();
        assert_eq!((naive.seconds, naive.nanos), (1_704_164_645, 0));
        let shifted = parse_isoformat("2024-01-02T05:04:05.5+02:00").unwrap();
        assert_eq!((shifted.seconds, shifted.nanos), (1_704_164_645, 500_000_000));
        assert_eq!(parse_isoformat("2024-01-02 03:04:05Z").unwrap().seconds, 1_704_164_645);
        assert_eq!(parse_isoformat("2024-01-02").unwrap().seconds, 1_704_153_600);
        assert!(parse_isoformat("yesterday").is_err());
    }

    #[test]
    fn durations_round_like_timedelta() {
        // python: timedelta(seconds=1.0000004) == timedelta(seconds=1)
        assert_eq!(seconds_to_duration(1.000_000_4).unwrap(), Duration { seconds: 1, nanos: 0 });
        // python: timedelta(days=-1, microseconds=7).total_seconds() == -86399.999993
        let d = seconds_to_duration(-86_399.999_993).unwrap();
        assert_eq!(d, Duration { seconds: -86_399, nanos: -999_993_000 });
        assert_eq!(total_seconds(&d), -86_399.999_993);
        assert!(seconds_to_duration(f64::NAN).is_err());
        assert!(check_duration(&Duration { seconds: 1, nanos: -1 }).is_err());
    }
}
