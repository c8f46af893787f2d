//! [`DataCategory`]: what a rate limit, a quota or a client report counts, named as Relay names
//! it.

use std::fmt;

use serde::{Serialize, Serializer};

/// A kind of data as Sentry counts it: the unit of rate limits (`X-Sentry-Rate-Limits`) and of
/// client reports. Names and meanings follow Relay's `DataCategory`.
///
/// ```
/// use isoscope::DataCategory;
/// assert_eq!(DataCategory::from_name("log_item"), Some(DataCategory::LogItem));
/// assert_eq!(DataCategory::Error.name(), "error");
/// assert_eq!(DataCategory::from_name("something_new"), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum DataCategory {
    /// Reserved: everything without a category of its own.
    Default,
    /// Error and message events.
    Error,
    /// Transactions.
    Transaction,
    /// Security reports (CSP and the like).
    Security,
    /// Attachments, counted in bytes.
    Attachment,
    /// Attachments, counted one by one.
    AttachmentItem,
    /// Session updates and aggregates (release health).
    Session,
    /// Profiles.
    Profile,
    /// Session replays.
    Replay,
    /// Cron monitor check-ins.
    Monitor,
    /// Spans (a transaction counts its spans and itself).
    Span,
    /// User feedback (Relay's `UserReportV2`).
    Feedback,
    /// Log records, counted one by one.
    LogItem,
    /// Log records, counted in bytes.
    LogByte,
}

impl DataCategory {
    /// Every category, in the order above.
    pub const ALL: [Self; 14] = [
        Self::Default,
        Self::Error,
        Self::Transaction,
        Self::Security,
        Self::Attachment,
        Self::AttachmentItem,
        Self::Session,
        Self::Profile,
        Self::Replay,
        Self::Monitor,
        Self::Span,
        Self::Feedback,
        Self::LogItem,
        Self::LogByte,
    ];

    /// The name on the wire (`error`, `log_item`, ...).
    pub fn name(self) -> &'static str {
        match self {
            Self::Default => "default",
            Self::Error => "error",
            Self::Transaction => "transaction",
            Self::Security => "security",
            Self::Attachment => "attachment",
            Self::AttachmentItem => "attachment_item",
            Self::Session => "session",
            Self::Profile => "profile",
            Self::Replay => "replay",
            Self::Monitor => "monitor",
            Self::Span => "span",
            Self::Feedback => "feedback",
            Self::LogItem => "log_item",
            Self::LogByte => "log_byte",
        }
    }

    /// The category with this wire name; `None` for one this SDK does not know.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Its position in [`ALL`](Self::ALL), for per-category tables.
    pub(crate) fn index(self) -> usize {
        self as usize
    }
}

impl fmt::Display for DataCategory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl Serialize for DataCategory {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_index_the_table() {
        for (i, c) in DataCategory::ALL.into_iter().enumerate() {
            assert_eq!(DataCategory::from_name(c.name()), Some(c));
            assert_eq!(c.index(), i);
        }
    }
}
