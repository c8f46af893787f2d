//! [`SessionAggregates`]: release health in request mode, one count per minute and outcome, as
//! a `sessions` envelope item (develop.sentry.dev, telemetry/sessions; Relay's
//! `SessionAggregates`).

use serde::{Serialize, Serializer};

/// Sessions aggregated per minute bucket, sharing one release and environment.
///
/// ```
/// use isoscope::protocol::{SessionAggregate, SessionAggregates};
/// let mut sessions = SessionAggregates::new("shop@1.4.2", Some("production".into()));
/// let mut bucket = SessionAggregate::new(1_700_000_040.0);
/// bucket.exited = 98;
/// bucket.errored = 2;
/// sessions.aggregates.push(bucket);
/// let json = serde_json::to_value(&sessions).unwrap();
/// assert_eq!(json["attrs"]["release"], "shop@1.4.2");
/// assert_eq!(json["aggregates"][0]["started"], "2023-11-14T22:14:00.000Z");
/// assert_eq!(json["aggregates"][0]["exited"], 98);
/// assert!(json["aggregates"][0].get("crashed").is_none(), "zero counts are left out");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SessionAggregates {
    /// One entry per minute bucket (and distinct id).
    pub aggregates: Vec<SessionAggregate>,
    /// What every session shares.
    #[serde(rename = "attrs")]
    pub attributes: SessionAttributes,
}

/// The release and environment of aggregated sessions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SessionAttributes {
    /// The release (required: Sentry drops sessions without one).
    pub release: String,
    /// The environment.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub environment: Option<String>,
}

/// The sessions that started in one minute, by how they ended.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct SessionAggregate {
    /// The bucket's start, in seconds since the Unix epoch (rounded down to the minute).
    #[serde(serialize_with = "rfc3339")]
    pub started: f64,
    /// The user the sessions belong to, if known.
    #[serde(rename = "did", skip_serializing_if = "Option::is_none")]
    pub distinct_id: Option<String>,
    /// Ended normally.
    #[serde(skip_serializing_if = "is_zero")]
    pub exited: u32,
    /// Ended normally, with an error captured.
    #[serde(skip_serializing_if = "is_zero")]
    pub errored: u32,
    /// Ended abruptly, without crashing.
    #[serde(skip_serializing_if = "is_zero")]
    pub abnormal: u32,
    /// Crashed (an unhandled error, a panic).
    #[serde(skip_serializing_if = "is_zero")]
    pub crashed: u32,
}

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's signature
fn is_zero(n: &u32) -> bool {
    *n == 0
}

fn rfc3339<S: Serializer>(secs: &f64, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&crate::util::rfc3339(*secs))
}

impl SessionAggregates {
    /// No sessions yet, for `release` (and `environment`).
    pub fn new(release: impl Into<String>, environment: Option<String>) -> Self {
        Self { aggregates: Vec::new(), attributes: SessionAttributes { release: release.into(), environment } }
    }

    /// How many sessions it counts.
    pub fn total(&self) -> u64 {
        self.aggregates
            .iter()
            .map(|a| u64::from(a.exited) + u64::from(a.errored) + u64::from(a.abnormal) + u64::from(a.crashed))
            .sum()
    }
}

impl SessionAggregate {
    /// An empty bucket for sessions started at `started` (rounded down to the minute).
    pub fn new(started: f64) -> Self {
        Self {
            started: (started / 60.0).floor() * 60.0,
            distinct_id: None,
            exited: 0,
            errored: 0,
            abnormal: 0,
            crashed: 0,
        }
    }
}
