//! The payloads of envelope items besides events and transactions: attachments, release-health
//! sessions, client reports, logs and cron check-ins, as Sentry's protocol (and Relay's
//! definitions) shape them. An [`Envelope`](crate::Envelope) carries them as
//! [`EnvelopeItem`](crate::EnvelopeItem)s.

pub use crate::event::{
    Attachment, AttachmentType, CheckIn, CheckInContexts, CheckInError, CheckInStatus, CheckInTrace, ClientReport,
    DiscardReason, DiscardedEvent, IntervalUnit, Log, LogAttribute, LogLevel, MonitorConfig, MonitorSchedule,
    SessionAggregate, SessionAggregates, SessionAttributes,
};
