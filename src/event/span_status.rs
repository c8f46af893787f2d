//! [`SpanStatus`]: how a span or transaction ended, as Sentry's protocol names it.

use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

macro_rules! span_statuses {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// How a span or transaction ended: Sentry's span statuses (OpenTelemetry's gRPC codes).
        ///
        /// ```
        /// use isoscope::SpanStatus;
        /// assert_eq!(SpanStatus::from_http(404), SpanStatus::NotFound);
        /// assert_eq!(SpanStatus::from_http(302).as_str(), "ok");
        /// assert_eq!("deadline_exceeded".parse(), Ok(SpanStatus::DeadlineExceeded));
        /// assert!("fine".parse::<SpanStatus>().is_err());
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum SpanStatus {
            $($(#[$doc])* $variant,)*
        }

        impl SpanStatus {
            /// The name on the wire.
            pub fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $name,)*
                }
            }
        }

        impl FromStr for SpanStatus {
            type Err = UnknownSpanStatus;

            fn from_str(s: &str) -> Result<Self, UnknownSpanStatus> {
                match s {
                    $($name => Ok(Self::$variant),)*
                    _ => Err(UnknownSpanStatus),
                }
            }
        }
    };
}

span_statuses! {
    /// Finished well.
    Ok = "ok",
    /// Cancelled, usually by the caller.
    Cancelled = "cancelled",
    /// An unknown error.
    Unknown = "unknown",
    /// The client sent invalid arguments (HTTP 400).
    InvalidArgument = "invalid_argument",
    /// A deadline passed first (HTTP 504).
    DeadlineExceeded = "deadline_exceeded",
    /// Not found (HTTP 404).
    NotFound = "not_found",
    /// Already exists (HTTP 409).
    AlreadyExists = "already_exists",
    /// Not allowed (HTTP 403).
    PermissionDenied = "permission_denied",
    /// A quota or rate limit (HTTP 429).
    ResourceExhausted = "resource_exhausted",
    /// The system is not in a state for the operation (other 4xx).
    FailedPrecondition = "failed_precondition",
    /// Aborted (a concurrency conflict).
    Aborted = "aborted",
    /// Out of the valid range.
    OutOfRange = "out_of_range",
    /// Not implemented (HTTP 501).
    Unimplemented = "unimplemented",
    /// An internal error (other 5xx, a panic).
    InternalError = "internal_error",
    /// Unavailable (HTTP 503).
    Unavailable = "unavailable",
    /// Data was lost or corrupted.
    DataLoss = "data_loss",
    /// No valid credentials (HTTP 401).
    Unauthenticated = "unauthenticated",
}

/// A span status name Sentry's protocol does not have.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct UnknownSpanStatus;

impl fmt::Display for UnknownSpanStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not one of Sentry's span statuses")
    }
}

impl std::error::Error for UnknownSpanStatus {}

impl SpanStatus {
    /// The status for an HTTP response's status code (Sentry's mapping).
    pub fn from_http(code: u16) -> Self {
        let exact = match code {
            400 => Some(Self::InvalidArgument),
            401 => Some(Self::Unauthenticated),
            403 => Some(Self::PermissionDenied),
            404 => Some(Self::NotFound),
            409 => Some(Self::AlreadyExists),
            429 => Some(Self::ResourceExhausted),
            499 => Some(Self::Cancelled),
            501 => Some(Self::Unimplemented),
            503 => Some(Self::Unavailable),
            504 => Some(Self::DeadlineExceeded),
            _ => None,
        };
        exact.unwrap_or(match code {
            0..400 => Self::Ok,
            400..500 => Self::FailedPrecondition,
            _ => Self::InternalError,
        })
    }
}

impl fmt::Display for SpanStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for SpanStatus {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl PartialEq<str> for SpanStatus {
    fn eq(&self, other: &str) -> bool {
        self.as_str() == other
    }
}

impl PartialEq<&str> for SpanStatus {
    fn eq(&self, other: &&str) -> bool {
        self.as_str() == *other
    }
}
