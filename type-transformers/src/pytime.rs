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

/// How finely [`seconds_to_duration`] keeps a fraction of a second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Resolution {
    /// Nanoseconds, protobuf Duration's own resolution (text and JSON a user typed).
    Nanos,
    /// Microseconds, as Python's `timedelta(seconds=x)` keeps them (msgpack written by flytekit).
    Micros,
}

impl Resolution {
    fn units_per_second(self) -> i64 {
        match self {
            Resolution::Nanos => 1_000_000_000,
            Resolution::Micros => 1_000_000,
        }
    }
}

/// The one seconds → protobuf Duration conversion: the fraction is rounded to `resolution`
/// half to even (as Python's timedelta does), and a fraction that rounds to a whole second
/// carries into `seconds` — the result is always a valid Duration (|nanos| < 1e9, nanos
/// with the sign of seconds).
pub fn seconds_to_duration(seconds: f64, resolution: Resolution) -> Result<Duration, String> {
    // Python's timedelta range is ±999999999 days; protobuf's Duration is ±10,000 years.
    const MAX_SECONDS: f64 = 315_576_000_000.0;
    if !seconds.is_finite() || seconds.abs() > MAX_SECONDS {
        return Err(format!("{seconds} seconds is not a valid duration"));
    }
    // Whole seconds and the fraction apart: the fraction is exact in f64, whereas
    // `seconds * 1e9` loses nanoseconds beyond ~104 days.
    let whole = seconds.trunc();
    let per_second = resolution.units_per_second();
    let units = (seconds - whole) * per_second as f64;
    let mut units = units.round_ties_even() as i64;
    let mut whole = whole as i64;
    if units.abs() == per_second {
        whole += units.signum();
        units = 0;
    }
    let nanos = units * (1_000_000_000 / per_second);
    Ok(Duration { seconds: whole, nanos: nanos as i32 })
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
    use proptest::prelude::Strategy as _;

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
        assert_eq!(seconds_to_duration(1.000_000_4, Resolution::Micros).unwrap(), Duration { seconds: 1, nanos: 0 });
        // python: timedelta(days=-1, microseconds=7).total_seconds() == -86399.999993
        let d = seconds_to_duration(-86_399.999_993, Resolution::Micros).unwrap();
        assert_eq!(d, Duration { seconds: -86_399, nanos: -999_993_000 });
        assert_eq!(total_seconds(&d), -86_399.999_993);
        assert!(seconds_to_duration(f64::NAN, Resolution::Micros).is_err());
        assert!(check_duration(&Duration { seconds: 1, nanos: -1 }).is_err());
    }

    /// Rounding a fraction up to a whole second carries: every resolution, both signs.
    #[test]
    fn fractions_that_round_to_a_second_carry() {
        for (secs, res, want) in [
            (1.999_999_999_9, Resolution::Nanos, (2, 0)),
            (-1.999_999_999_9, Resolution::Nanos, (-2, 0)),
            (0.999_999_5, Resolution::Micros, (1, 0)),
            (-0.999_999_5, Resolution::Micros, (-1, 0)),
            (0.999_999_4, Resolution::Micros, (0, 999_999_000)),
            (315_575_999_999.999_99, Resolution::Nanos, (315_576_000_000, 0)),
            (-0.0, Resolution::Nanos, (0, 0)),
            (1e-10, Resolution::Nanos, (0, 0)),
        ] {
            let d = seconds_to_duration(secs, res).unwrap();
            assert_eq!((d.seconds, d.nanos), want, "{secs} at {res:?}");
        }
        for bad in [f64::INFINITY, f64::NEG_INFINITY, 315_576_000_001.0, -315_576_000_001.0] {
            assert!(seconds_to_duration(bad, Resolution::Nanos).is_err(), "{bad}");
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4096, failure_persistence: None, ..Default::default() })]

        /// Always a valid Duration, within half a unit of the input's fraction (exact in f64).
        #[test]
        fn every_conversion_is_valid_and_rounds_to_the_nearest_unit(
            secs in proptest::prop_oneof![
                -315_576_000_000.0f64..315_576_000_000.0,
                -10.0f64..10.0,
                // Just below and above whole seconds, where the carry happens.
                (-1000i64..1000, 0.0f64..1e-6).prop_map(|(s, e)| s as f64 + 1.0 - e),
                (-1000i64..1000, 0.0f64..1e-6).prop_map(|(s, e)| s as f64 - 1.0 + e),
            ],
            micros in proptest::bool::ANY,
        ) {
            let res = if micros { Resolution::Micros } else { Resolution::Nanos };
            let d = seconds_to_duration(secs, res).unwrap();
            proptest::prop_assert!(check_duration(&d).is_ok(), "{secs} -> {d:?}");
            let per_second = res.units_per_second();
            let unit_nanos = 1_000_000_000 / per_second;
            proptest::prop_assert_eq!(i64::from(d.nanos) % unit_nanos, 0);
            let whole = secs.trunc();
            let frac_units = (secs - whole) * per_second as f64;
            let got_units = (d.seconds - whole as i64) * per_second + i64::from(d.nanos) / unit_nanos;
            proptest::prop_assert!((got_units as f64 - frac_units).abs() <= 0.5, "{secs} -> {d:?}");
        }
    }
}
