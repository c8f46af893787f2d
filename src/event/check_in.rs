//! [`CheckIn`]: a cron monitor's check-in, as a `check_in` envelope item (Relay's
//! `relay-monitors` `CheckIn`).

use serde::Serialize;

use super::EventId;
use crate::trace::TraceId;

/// A job reporting to a cron monitor: started (`in_progress`), then `ok` or `error` with the
/// same id and its duration.
///
/// ```
/// use isoscope::protocol::{CheckIn, CheckInStatus};
/// let started = CheckIn::new("nightly-backup", CheckInStatus::InProgress);
/// let mut done = CheckIn::new("nightly-backup", CheckInStatus::Ok);
/// done.check_in_id = started.check_in_id;
/// done.duration = Some(12.5);
/// let json = serde_json::to_value(&done).unwrap();
/// assert_eq!((json["status"].as_str(), json["duration"].as_f64()), (Some("ok"), Some(12.5)));
/// assert_eq!(json["check_in_id"], started.check_in_id.to_string());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CheckIn {
    /// Shared by a job's `in_progress` and final check-ins.
    pub check_in_id: EventId,
    /// The monitor's slug.
    pub monitor_slug: String,
    /// Where the job is.
    pub status: CheckInStatus,
    /// How long the job ran, in seconds (on the final check-in).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration: Option<f64>,
    /// The environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
    /// The release.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub release: Option<String>,
    /// The trace the job ran in, linking the check-in to its errors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contexts: Option<CheckInContexts>,
    /// The monitor's configuration, for the server to create or update it (upsert).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub monitor_config: Option<super::MonitorConfig>,
}

/// A check-in's contexts: its trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CheckInContexts {
    /// `{"trace_id": ...}`.
    pub trace: CheckInTrace,
}

/// The trace of a check-in.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct CheckInTrace {
    /// The trace id.
    pub trace_id: TraceId,
}

/// Where a monitored job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CheckInStatus {
    /// Started.
    InProgress,
    /// Finished well.
    Ok,
    /// Failed.
    Error,
}

impl CheckIn {
    /// A check-in with a new id.
    pub fn new(monitor_slug: impl Into<String>, status: CheckInStatus) -> Self {
        Self {
            check_in_id: EventId::new(),
            monitor_slug: monitor_slug.into(),
            status,
            duration: None,
            environment: None,
            release: None,
            contexts: None,
            monitor_config: None,
        }
    }

    /// With the trace it ran in.
    #[must_use]
    pub fn in_trace(mut self, trace_id: TraceId) -> Self {
        self.contexts = Some(CheckInContexts { trace: CheckInTrace { trace_id } });
        self
    }
}
