//! [`MonitorConfig`]: a cron monitor's schedule and tolerances, sent with a check-in so the
//! server creates or updates the monitor (Relay's `relay-monitors` `MonitorConfig`), checked
//! before it is sent.

use std::fmt;

use serde::Serialize;

/// A monitor's schedule, margins and time zone.
///
/// ```
/// use isoscope::protocol::{MonitorConfig, MonitorSchedule};
/// let config = MonitorConfig::new(MonitorSchedule::crontab("0 3 * * *")).checkin_margin(5).max_runtime(30).timezone("Europe/Paris");
/// assert!(config.validate().is_ok());
/// let json = serde_json::to_value(&config).unwrap();
/// assert_eq!(json["schedule"], serde_json::json!({"type": "crontab", "value": "0 3 * * *"}));
///
/// let bad = MonitorConfig::new(MonitorSchedule::crontab("61 * * * *"));
/// assert_eq!(bad.validate().unwrap_err().to_string(), "crontab `61 * * * *`: minute 61 is not in 0-59");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct MonitorConfig {
    /// When the job is expected to run.
    pub schedule: MonitorSchedule,
    /// Minutes after the expected time before a check-in counts as missed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkin_margin: Option<u64>,
    /// Minutes a job may stay `in_progress` before it counts as failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_runtime: Option<u64>,
    /// The schedule's time zone (tz database name, `Europe/Paris`; default UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timezone: Option<String>,
}

/// When a monitored job runs: a crontab line or a fixed interval.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum MonitorSchedule {
    /// Five fields: minute, hour, day of month, month, day of week.
    Crontab {
        /// The crontab line.
        value: String,
    },
    /// Every `value` `unit`s.
    Interval {
        /// How many units.
        value: u64,
        /// The unit.
        unit: IntervalUnit,
    },
}

/// The unit of an interval schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum IntervalUnit {
    /// Minutes.
    Minute,
    /// Hours.
    Hour,
    /// Days.
    Day,
    /// Weeks.
    Week,
    /// Months.
    Month,
    /// Years.
    Year,
}

impl MonitorSchedule {
    /// A crontab schedule (`"*/15 * * * *"`).
    pub fn crontab(line: impl Into<String>) -> Self {
        Self::Crontab { value: line.into() }
    }

    /// Every `value` `unit`s.
    pub fn interval(value: u64, unit: IntervalUnit) -> Self {
        Self::Interval { value, unit }
    }
}

/// Why a check-in or its monitor configuration was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckInError(String);

impl fmt::Display for CheckInError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CheckInError {}

impl CheckInError {
    pub(crate) fn new(reason: impl Into<String>) -> Self {
        Self(reason.into())
    }
}

/// Names a crontab's fields may use, per field (month and day-of-week names, as cron takes).
const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];
const DAYS: [&str; 7] = ["sun", "mon", "tue", "wed", "thu", "fri", "sat"];

impl MonitorConfig {
    /// A configuration with this schedule and the server's default margins, in UTC.
    pub fn new(schedule: MonitorSchedule) -> Self {
        Self { schedule, checkin_margin: None, max_runtime: None, timezone: None }
    }

    /// Minutes of grace after the expected time (at least 1).
    #[must_use]
    pub fn checkin_margin(mut self, minutes: u64) -> Self {
        self.checkin_margin = Some(minutes);
        self
    }

    /// Minutes a run may take (at least 1).
    #[must_use]
    pub fn max_runtime(mut self, minutes: u64) -> Self {
        self.max_runtime = Some(minutes);
        self
    }

    /// The schedule's time zone, a tz database name (`America/New_York`, `UTC`).
    #[must_use]
    pub fn timezone(mut self, tz: impl Into<String>) -> Self {
        self.timezone = Some(tz.into());
        self
    }

    /// Checks it as the server would: a crontab of five fields within their ranges (numbers,
    /// `*`, ranges, lists, steps, month and day names), an interval above 0, margins of at
    /// least a minute, a time zone shaped like a tz database name.
    pub fn validate(&self) -> Result<(), CheckInError> {
        match &self.schedule {
            MonitorSchedule::Crontab { value } => validate_crontab(value)?,
            MonitorSchedule::Interval { value: 0, .. } => return Err(CheckInError::new("interval: 0 is not a period")),
            MonitorSchedule::Interval { .. } => {}
        }
        for (name, minutes) in [("checkin_margin", self.checkin_margin), ("max_runtime", self.max_runtime)] {
            if minutes == Some(0) {
                return Err(CheckInError::new(format!("{name}: must be at least 1 minute")));
            }
        }
        if let Some(tz) = &self.timezone {
            let shaped = !tz.is_empty()
                && tz.len() <= 64
                && tz.split('/').all(|part| !part.is_empty())
                && tz.bytes().all(|b| b.is_ascii_alphanumeric() || b"/_+-".contains(&b));
            if !shaped {
                return Err(CheckInError::new(format!("timezone `{tz}`: not a tz database name")));
            }
        }
        Ok(())
    }
}

fn validate_crontab(line: &str) -> Result<(), CheckInError> {
    let bad = |why: String| CheckInError::new(format!("crontab `{line}`: {why}"));
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() != 5 {
        return Err(bad(format!("{} fields, expected 5 (minute hour day month weekday)", fields.len())));
    }
    let specs: [(&str, u32, u32, &[&str]); 5] = [
        ("minute", 0, 59, &[]),
        ("hour", 0, 23, &[]),
        ("day", 1, 31, &[]),
        ("month", 1, 12, &MONTHS),
        ("weekday", 0, 7, &DAYS),
    ];
    for (field, (name, lo, hi, names)) in fields.iter().zip(specs) {
        for item in field.split(',') {
            let (range, step) = match item.split_once('/') {
                Some((range, step)) => (range, Some(step)),
                None => (item, None),
            };
            if let Some(step) = step {
                if !step.parse::<u32>().is_ok_and(|s| s >= 1) {
                    return Err(bad(format!("{name} step `{step}` is not a number above 0")));
                }
            }
            if range == "*" {
                continue;
            }
            let value = |v: &str| -> Result<u32, CheckInError> {
                let lower = v.to_ascii_lowercase();
                let n = match names.iter().position(|n| *n == lower) {
                    Some(i) => i as u32 + u32::from(name == "month"),
                    None => v.parse().map_err(|_| bad(format!("{name} `{v}` is not a number")))?,
                };
                if (lo..=hi).contains(&n) {
                    Ok(n)
                } else {
                    Err(bad(format!("{name} {n} is not in {lo}-{hi}")))
                }
            };
            match range.split_once('-') {
                Some((a, b)) if value(a)? > value(b)? => {
                    return Err(bad(format!("{name} range `{range}` runs backwards")))
                }
                Some(_) => {}
                None => {
                    value(range)?;
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crontab(line: &str) -> Result<(), CheckInError> {
        MonitorConfig::new(MonitorSchedule::crontab(line)).validate()
    }

    #[test]
    fn crontabs_as_cron_takes_them() {
        for ok in
            ["* * * * *", "*/15 * * * *", "0 3 * * 1-5", "0,30 8-18/2 1 jan-jun MON", "0 0 31 12 7", "5 4 * * sun"]
        {
            assert!(crontab(ok).is_ok(), "{ok}: {:?}", crontab(ok));
        }
        for (bad, why) in [
            ("* * * *", "4 fields"),
            ("60 * * * *", "minute 60"),
            ("* 24 * * *", "hour 24"),
            ("* * 0 * *", "day 0"),
            ("* * * 13 *", "month 13"),
            ("* * * * 8", "weekday 8"),
            ("*/0 * * * *", "step `0`"),
            ("5-1 * * * *", "runs backwards"),
            ("x * * * *", "`x` is not a number"),
        ] {
            let err = crontab(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn intervals_margins_and_time_zones() {
        let every = |n| MonitorConfig::new(MonitorSchedule::interval(n, IntervalUnit::Hour));
        assert!(every(2).validate().is_ok());
        assert!(every(0).validate().is_err());
        assert!(every(1).checkin_margin(0).validate().unwrap_err().to_string().contains("checkin_margin"));
        assert!(every(1).max_runtime(0).validate().is_err());
        for tz in ["UTC", "Europe/Paris", "America/Argentina/Buenos_Aires", "Etc/GMT+5"] {
            assert!(every(1).timezone(tz).validate().is_ok(), "{tz}");
        }
        for tz in ["", "Europe/", "Paris time", "a\"b"] {
            assert!(every(1).timezone(tz).validate().is_err(), "{tz}");
        }
        let json = serde_json::to_value(every(5)).unwrap();
        assert_eq!(json, serde_json::json!({"schedule": {"type": "interval", "value": 5, "unit": "hour"}}));
    }
}
