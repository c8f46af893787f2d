//! [`EnvelopeItem`] and [`ItemType`]: every kind of item an envelope carries, its item-header
//! rules, its rate-limit category, and — in one place, [`ItemType::may_join`] — which kinds may
//! share an envelope.

use serde::Serialize;

use crate::event::{Attachment, CheckIn, ClientReport, DataCategory, Event, Log, SessionAggregates, Transaction};

/// One item of an [`Envelope`](super::Envelope).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
// Events are the common item and are moved into an envelope once per capture: boxing them to
// even out the sizes would add an allocation to every capture.
#[allow(clippy::large_enum_variant)]
pub enum EnvelopeItem {
    /// An error or message event.
    Event(Event),
    /// A performance transaction (a sampled request).
    Transaction(Transaction),
    /// A file sent with an event.
    Attachment(Attachment),
    /// Release health: sessions aggregated per minute.
    Sessions(SessionAggregates),
    /// What the SDK discarded.
    ClientReport(ClientReport),
    /// A batch of log records (one container per envelope).
    Logs(Vec<Log>),
    /// A cron monitor check-in.
    CheckIn(CheckIn),
}

/// The kind of an [`EnvelopeItem`] (the item header's `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ItemType {
    /// `event`.
    Event,
    /// `transaction`.
    Transaction,
    /// `attachment`.
    Attachment,
    /// `sessions`.
    Sessions,
    /// `client_report`.
    ClientReport,
    /// `log`.
    Log,
    /// `check_in`.
    CheckIn,
}

impl ItemType {
    /// The item header's `type`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Event => "event",
            Self::Transaction => "transaction",
            Self::Attachment => "attachment",
            Self::Sessions => "sessions",
            Self::ClientReport => "client_report",
            Self::Log => "log",
            Self::CheckIn => "check_in",
        }
    }

    /// The category rate limits apply to (`None`: never limited — a client report is the SDK's
    /// own bookkeeping).
    pub fn category(self) -> Option<DataCategory> {
        match self {
            Self::Event => Some(DataCategory::Error),
            Self::Transaction => Some(DataCategory::Transaction),
            Self::Attachment => Some(DataCategory::Attachment),
            Self::Sessions => Some(DataCategory::Session),
            Self::ClientReport => None,
            Self::Log => Some(DataCategory::LogItem),
            Self::CheckIn => Some(DataCategory::Monitor),
        }
    }

    /// The envelope's main kinds: at most one item of them per envelope, and the kinds that
    /// exclude each other (`event` and `transaction` share the slot).
    fn main_slot(self) -> Option<u8> {
        match self {
            Self::Event | Self::Transaction => Some(0),
            Self::Log => Some(1),
            Self::CheckIn => Some(2),
            Self::Attachment | Self::Sessions | Self::ClientReport => None,
        }
    }

    /// Whether an item of this kind may join an envelope holding items of kinds `present`:
    /// one main item at most (an event or a transaction, a log container, a check-in); any
    /// number of attachments, but only beside an event or a transaction (or alone); sessions
    /// and client reports beside anything.
    ///
    /// ```
    /// use isoscope::ItemType::*;
    /// assert!(Attachment.may_join(&[Event, Attachment]));
    /// assert!(ClientReport.may_join(&[Transaction]));
    /// assert!(!Transaction.may_join(&[Event]));
    /// assert!(!Log.may_join(&[Event]) && !Attachment.may_join(&[CheckIn]));
    /// ```
    pub fn may_join(self, present: &[Self]) -> bool {
        let main = present.iter().find_map(|t| t.main_slot());
        match (self, self.main_slot()) {
            (_, Some(_)) if main.is_some() => false,
            // A main kind may not come where attachments it cannot carry are.
            (Self::Log | Self::CheckIn, Some(_)) => !present.contains(&Self::Attachment),
            (Self::Attachment, _) => main.is_none_or(|slot| slot == 0),
            _ => true,
        }
    }
}

/// An item's header line: `type`, `length` and the kind's own fields.
#[derive(Serialize)]
pub(super) struct ItemHeader<'a> {
    #[serde(rename = "type")]
    ty: &'static str,
    length: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    item_count: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content_type: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attachment_type: Option<&'static str>,
}

/// What a log item's content type is.
const LOG_CONTENT_TYPE: &str = "application/vnd.sentry.items.log+json";

impl EnvelopeItem {
    /// Its kind.
    pub fn item_type(&self) -> ItemType {
        match self {
            Self::Event(_) => ItemType::Event,
            Self::Transaction(_) => ItemType::Transaction,
            Self::Attachment(_) => ItemType::Attachment,
            Self::Sessions(_) => ItemType::Sessions,
            Self::ClientReport(_) => ItemType::ClientReport,
            Self::Logs(_) => ItemType::Log,
            Self::CheckIn(_) => ItemType::CheckIn,
        }
    }

    /// What the item counts as, per data category (for stats and client reports): an event
    /// one `error`; a transaction one `transaction` and its spans plus one as `span`s; an
    /// attachment one `attachment_item` and its bytes as `attachment`; a log container its
    /// records as `log_item`s and about their bytes as `log_byte`; sessions one `session`; a check-in one `monitor`. A client
    /// report counts nothing: it is the SDK's own bookkeeping.
    pub fn quantities(&self) -> [(DataCategory, u64); 2] {
        let none = (DataCategory::Default, 0);
        let n = |len: usize| len as u64;
        match self {
            Self::Event(_) => [(DataCategory::Error, 1), none],
            Self::Transaction(t) => [(DataCategory::Transaction, 1), (DataCategory::Span, n(t.spans.len()) + 1)],
            Self::Attachment(a) => [(DataCategory::AttachmentItem, 1), (DataCategory::Attachment, n(a.len()))],
            Self::Sessions(_) => [(DataCategory::Session, 1), none],
            Self::ClientReport(_) => [none, none],
            Self::Logs(logs) => [(DataCategory::LogItem, n(logs.len())), (DataCategory::LogByte, log_bytes(logs))],
            Self::CheckIn(_) => [(DataCategory::Monitor, 1), none],
        }
    }

    /// Writes the payload into `out` (JSON, or an attachment's bytes as they are).
    pub(super) fn write_payload(&self, out: &mut Vec<u8>) -> serde_json::Result<()> {
        #[derive(Serialize)]
        struct Container<'a> {
            items: &'a [Log],
        }
        match self {
            Self::Event(e) => serde_json::to_writer(out, e),
            Self::Transaction(t) => serde_json::to_writer(out, t),
            Self::Attachment(a) => {
                out.extend_from_slice(a.bytes());
                Ok(())
            }
            Self::Sessions(s) => serde_json::to_writer(out, s),
            Self::ClientReport(r) => serde_json::to_writer(out, r),
            Self::Logs(logs) => serde_json::to_writer(out, &Container { items: logs }),
            Self::CheckIn(c) => serde_json::to_writer(out, c),
        }
    }

    /// The header line for a payload of `length` bytes.
    pub(super) fn header(&self, length: usize) -> ItemHeader<'_> {
        let mut header = ItemHeader {
            ty: self.item_type().name(),
            length,
            item_count: None,
            content_type: None,
            filename: None,
            attachment_type: None,
        };
        match self {
            Self::Attachment(a) => {
                header.filename = Some(a.filename());
                header.content_type = a.content_type();
                header.attachment_type = Some(a.kind().name());
            }
            Self::Logs(logs) => {
                header.item_count = Some(logs.len());
                header.content_type = Some(LOG_CONTENT_TYPE);
            }
            _ => {}
        }
        header
    }
}

/// About the bytes of log records on the wire (their `log_byte` quantity).
fn log_bytes(logs: &[Log]) -> u64 {
    logs.iter().map(Log::estimated_bytes).sum()
}
