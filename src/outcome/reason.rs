//! [`DiscardReason`]: why the SDK discarded something, as client reports name it
//! (develop.sentry.dev, telemetry/client-reports).

use serde::{Serialize, Serializer};

/// Why the SDK discarded something (the spec's list).
///
/// ```
/// use isoscope::protocol::DiscardReason;
/// assert_eq!(DiscardReason::QueueOverflow.name(), "queue_overflow");
/// assert!(DiscardReason::NetworkError.is_loss() && !DiscardReason::SampleRate.is_loss());
/// ```
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
    /// Failed validation: an attachment over the size limit.
    Invalid,
}

impl DiscardReason {
    /// Every reason, in the order above.
    pub const ALL: [Self; 13] = [
        Self::QueueOverflow,
        Self::CacheOverflow,
        Self::BufferOverflow,
        Self::RatelimitBackoff,
        Self::NetworkError,
        Self::SampleRate,
        Self::BeforeSend,
        Self::EventProcessor,
        Self::SendError,
        Self::InternalSdkError,
        Self::InsufficientData,
        Self::Backpressure,
        Self::Invalid,
    ];

    /// Its position in [`ALL`](Self::ALL), for per-reason tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }

    /// Whether it is a loss — something the application wanted sent and the SDK or the server
    /// failed to deliver — rather than a decision (sampling, `before_send`, an event
    /// processor): a loss makes the next `flush` return `false`.
    pub fn is_loss(self) -> bool {
        !matches!(self, Self::SampleRate | Self::BeforeSend | Self::EventProcessor | Self::InsufficientData)
    }

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
            Self::Invalid => "invalid",
        }
    }
}

impl Serialize for DiscardReason {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_follows_all() {
        for (i, r) in DiscardReason::ALL.into_iter().enumerate() {
            assert_eq!(r.index(), i);
        }
    }
}
