//! [`ClientReport`]: what the SDK discarded, by reason and category, as a `client_report`
//! envelope item (develop.sentry.dev, telemetry/client-reports; Relay's `ClientReport`).

use serde::{Serialize, Serializer};

use super::DataCategory;

/// Counts of what the SDK discarded since its last report.
///
/// ```
/// use isoscope::protocol::{ClientReport, DiscardReason};
/// use isoscope::DataCategory;
/// let mut report = ClientReport::new(1_700_000_000.0);
/// report.add(DiscardReason::QueueOverflow, DataCategory::Error, 12);
/// let json = serde_json::to_value(&report).unwrap();
/// assert_eq!(json["discarded_events"][0]["reason"], "queue_overflow");
/// assert_eq!(json["discarded_events"][0]["category"], "error");
/// assert_eq!(json["discarded_events"][0]["quantity"], 12);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ClientReport {
    /// When the report was made (seconds since the Unix epoch).
    pub timestamp: f64,
    /// What was discarded.
    pub discarded_events: Vec<DiscardedEvent>,
}

/// One count of a client report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DiscardedEvent {
    /// Why.
    pub reason: DiscardReason,
    /// What.
    pub category: DataCategory,
    /// How many (bytes for byte categories).
    pub quantity: u64,
}

/// Why the SDK discarded something (the spec's list).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DiscardReason {
    /// The transport's queue was full.
    QueueOverflow,
    /// An offline cache was full.
    CacheOverflow,
    /// A buffer (logs, spans) was full.
    BufferOverflow,
    /// A rate limit the server announced was in force.
    RatelimitBackoff,
    /// The server could not be reached.
    NetworkError,
    /// Sampled out.
    SampleRate,
    /// `before_send` (or `before_send_transaction`, `before_send_log`) dropped it.
    BeforeSend,
    /// An event processor dropped it.
    EventProcessor,
    /// The server answered with an error.
    SendError,
    /// The SDK failed on its own.
    InternalSdkError,
    /// Not enough data to send.
    InsufficientData,
    /// Sampled down because the transport was unhealthy.
    Backpressure,
}

impl DiscardReason {
    /// The name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Self::QueueOverflow => "queue_overflow",
            Self::CacheOverflow => "cache_overflow",
            Self::BufferOverflow => "buffer_overflow",
            Self::RatelimitBackoff => "ratelimit_backoff",
            Self::NetworkError => "network_error",
            Self::SampleRate => "sample_rate",
            Self::BeforeSend => "before_send",
            Self::EventProcessor => "event_processor",
            Self::SendError => "send_error",
            Self::InternalSdkError => "internal_sdk_error",
            Self::InsufficientData => "insufficient_data",
            Self::Backpressure => "backpressure",
        }
    }
}

impl Serialize for DiscardReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

impl ClientReport {
    /// An empty report made at `timestamp`.
    pub fn new(timestamp: f64) -> Self {
        Self { timestamp, discarded_events: Vec::new() }
    }

    /// Counts `quantity` more of `category` discarded for `reason` (merged with an existing
    /// count of the same pair).
    pub fn add(&mut self, reason: DiscardReason, category: DataCategory, quantity: u64) {
        if quantity == 0 {
            return;
        }
        match self.discarded_events.iter_mut().find(|d| d.reason == reason && d.category == category) {
            Some(d) => d.quantity = d.quantity.saturating_add(quantity),
            None => self.discarded_events.push(DiscardedEvent { reason, category, quantity }),
        }
    }

    /// Whether it counts nothing.
    pub fn is_empty(&self) -> bool {
        self.discarded_events.is_empty()
    }
}
