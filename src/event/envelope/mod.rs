//! Sentry envelopes, what a transport is handed: a header line, then typed items (item header
//! line + payload). An [`Envelope`] made by a capture still has its deferred work to do;
//! [`Envelope::finish`] — an explicit step, run by the transport on its own thread — does it and
//! gives the [`FinishedEnvelope`] whose items can be read and written out.

mod delivery;
mod item;

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use serde::Serialize;

pub use delivery::Delivery;
pub use item::{EnvelopeItem, ItemType};

use super::{Attachment, Event, EventId, Transaction};

/// The largest attachment an event carries (bytes): Relay's limits are far above, but the
/// transport's queue is 8 MiB by default, and a larger file is better sent another way.
pub(crate) const MAX_ATTACHMENT_BYTES: usize = 8 << 20;
use crate::outcome::Recorder;

/// The size of the last item payload serialized: the next one's first allocation.
static LAST_PAYLOAD: AtomicUsize = AtomicUsize::new(0);

/// The part of an event's processing that can wait for the transport's thread: merging the
/// scopes in, defaults, scrubbing, size limits (`client::capture` implements it).
pub(crate) trait Finish: Send {
    /// The finished event and the envelope's `trace` header (dynamic sampling context).
    fn finish(self: Box<Self>) -> (Event, Option<serde_json::Value>);

    /// About how many bytes of memory it holds (the event, the scopes' data), for a queue's
    /// bound; cheap, never the serialization.
    fn size_hint(&self) -> usize;
}

/// About how many bytes an event holds in memory: a fixed part for its ids, contexts, SDK and
/// what a capture keeps beside it (the scopes' snapshots, the request's data), its strings, and
/// per tag, extra value, breadcrumb and frame a typical size. A queue's bound counts by it; it
/// never serializes. Calibrated with `benches/compare --bin memory -- --queue` (a queued
/// request error with 10 breadcrumbs: 5.1 KB of heap each).
pub(crate) fn event_size_hint(event: &Event) -> usize {
    const FIXED: usize = 2560;
    let frames = |e: &super::Exception| e.stacktrace.as_ref().map_or(0, super::Stacktrace::frame_count);
    FIXED
        + event.message.as_ref().map_or(0, String::len)
        + event.exception.iter().map(|e| 256 + e.value.as_ref().map_or(0, String::len) + 64 * frames(e)).sum::<usize>()
        + 64 * (event.tags.len() + event.extra.len() + event.contexts.len())
        + 160 * event.breadcrumbs.len()
}

/// What a [`Transport`](crate::Transport) is given to deliver.
///
/// Its item kinds (and so its rate-limit categories) are known at once; an envelope made by a
/// capture still has work to do before its event can be read (the scopes to merge in,
/// scrubbing, size limits). [`finish`](Self::finish) does that work — call it on the
/// transport's own thread, never on the request path — and returns what can be read and
/// serialized. `Debug` shows the header and the item kinds only: it never does that work.
///
/// ```
/// let event = isoscope::Event::message("hi", isoscope::Level::Info);
/// let id = event.event_id;
/// let envelope = isoscope::Envelope::from_event(event);
/// assert_eq!(envelope.item_types().collect::<Vec<_>>(), [isoscope::ItemType::Event]);
/// let text = String::from_utf8(envelope.finish().to_bytes(None)).unwrap();
/// let mut lines = text.lines();
/// let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
/// assert_eq!(header["event_id"], id.to_string());
/// let item: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
/// assert_eq!(item["type"], "event");
/// assert_eq!(item["length"].as_u64().unwrap() as usize, lines.next().unwrap().len());
/// ```
pub struct Envelope {
    event_id: Option<EventId>,
    items: Vec<EnvelopeItem>,
    trace: Option<serde_json::Value>,
    /// A capture's deferred work: makes the envelope's event (and its `trace` header).
    pending: Option<Box<dyn Finish>>,
    /// The accounting of its items, if a client made it.
    delivery: Option<Delivery>,
}

/// An envelope whose deferred work is done: its items can be read and serialized.
///
/// A clone carries no [`Delivery`] (its items are accounted for once); equality compares the
/// contents only.
#[derive(Debug, Default)]
pub struct FinishedEnvelope {
    event_id: Option<EventId>,
    items: Vec<EnvelopeItem>,
    /// The dynamic sampling context (`trace` header).
    trace: Option<serde_json::Value>,
    delivery: Option<Delivery>,
}

impl Clone for FinishedEnvelope {
    fn clone(&self) -> Self {
        Self { event_id: self.event_id, items: self.items.clone(), trace: self.trace.clone(), delivery: None }
    }
}

impl PartialEq for FinishedEnvelope {
    fn eq(&self, other: &Self) -> bool {
        (self.event_id, &self.items, &self.trace) == (other.event_id, &other.items, &other.trace)
    }
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("event_id", &self.event_id)
            .field("items", &self.item_types().collect::<Vec<_>>())
            .field("finished", &self.is_finished())
            .field("delivery", &self.delivery)
            .finish_non_exhaustive()
    }
}

impl Default for Envelope {
    fn default() -> Self {
        Self::new()
    }
}

impl Envelope {
    /// An empty envelope, to [`push`](Self::push) items into.
    ///
    /// ```
    /// use isoscope::protocol::{ClientReport, DiscardReason};
    /// use isoscope::{DataCategory, Envelope, EnvelopeItem, Event, Level};
    /// let mut envelope = Envelope::from_event(Event::message("hi", Level::Info));
    /// let mut report = ClientReport::new(1_700_000_000.0);
    /// report.add(DiscardReason::SampleRate, DataCategory::Transaction, 3);
    /// assert!(envelope.push(EnvelopeItem::ClientReport(report)).is_ok());
    /// // Two events never share an envelope: the item comes back.
    /// assert!(envelope.push(EnvelopeItem::Event(Event::message("two", Level::Info))).is_err());
    /// ```
    pub fn new() -> Self {
        Self { event_id: None, items: Vec::new(), trace: None, pending: None, delivery: None }
    }

    /// An envelope holding one event.
    pub fn from_event(event: Event) -> Self {
        Self { event_id: Some(event.event_id), items: vec![EnvelopeItem::Event(event)], ..Self::new() }
    }

    /// An envelope holding one transaction.
    pub fn from_transaction(transaction: Transaction) -> Self {
        Self {
            event_id: Some(transaction.event_id),
            items: vec![EnvelopeItem::Transaction(transaction)],
            ..Self::new()
        }
    }

    /// An envelope for the event with id `event_id` that `finish` will make, accounted for
    /// by `recorder`.
    pub(crate) fn deferred(event_id: EventId, finish: Box<dyn Finish>, recorder: Arc<Recorder>) -> Self {
        Self {
            event_id: Some(event_id),
            pending: Some(finish),
            delivery: Some(Delivery::new(recorder, true, &[])),
            ..Self::new()
        }
    }

    /// Accounts for its items (as they are now) with `recorder`, counting them as captured: a
    /// client made it.
    pub(crate) fn accounted(mut self, recorder: Arc<Recorder>) -> Self {
        self.delivery = Some(self.captured_by(recorder));
        self
    }

    /// Takes its accounting; an envelope no client made gets one from `recorder`, its items
    /// counted as captured now (handed straight to a transport).
    pub(crate) fn adopt(&mut self, recorder: Arc<Recorder>) -> Delivery {
        self.delivery.take().unwrap_or_else(|| self.captured_by(recorder))
    }

    /// A new accounting of its items with `recorder`, which counts them as captured.
    fn captured_by(&self, recorder: Arc<Recorder>) -> Delivery {
        let delivery = Delivery::new(recorder, self.pending.is_some(), &self.items);
        for (category, n) in delivery.quantities() {
            delivery.recorder().captured(category, n);
        }
        delivery
    }

    /// Takes the accounting of its items, for the transport to say what became of them
    /// ([`Delivery`]); `None` if no client made the envelope or it was taken already.
    pub fn take_delivery(&mut self) -> Option<Delivery> {
        self.delivery.take()
    }

    /// Adds an item, if its kind may join the ones already here ([`ItemType::may_join`]);
    /// otherwise gives it back. An event or transaction sets the envelope's `event_id`.
    // The refused item comes back as it was (boxing it would allocate to say no).
    #[allow(clippy::result_large_err)]
    pub fn push(&mut self, item: EnvelopeItem) -> Result<(), EnvelopeItem> {
        let present: Vec<ItemType> = self.item_types().collect();
        if !item.item_type().may_join(&present) {
            return Err(item);
        }
        match &item {
            EnvelopeItem::Event(e) => self.event_id = Some(e.event_id),
            EnvelopeItem::Transaction(t) => self.event_id = Some(t.event_id),
            _ => {}
        }
        self.items.push(item);
        Ok(())
    }

    /// Adds the attachments of the scopes an event was captured in, each counted as captured
    /// by the envelope's accounting; one over [`MAX_ATTACHMENT_BYTES`] is left out and counted
    /// (`invalid`).
    pub(crate) fn attach(&mut self, attachments: impl IntoIterator<Item = Attachment>) {
        for attachment in attachments {
            let oversize = attachment.len() > MAX_ATTACHMENT_BYTES;
            let item = EnvelopeItem::Attachment(attachment);
            if let Some(delivery) = &mut self.delivery {
                if oversize {
                    let reason = crate::outcome::DiscardReason::Invalid;
                    delivery.recorder().dropped_unsent(&item.quantities(), reason);
                } else {
                    delivery.add(&item);
                }
            }
            if !oversize {
                self.items.push(item);
            }
        }
    }

    /// Sets the `trace` header: the dynamic sampling context Relay samples by.
    pub(crate) fn with_trace_header(mut self, dsc: serde_json::Value) -> Self {
        self.trace = Some(dsc);
        self
    }

    /// The id in the envelope header.
    pub fn event_id(&self) -> Option<EventId> {
        self.event_id
    }

    /// The kinds of its items (a capture's event included before it is finished).
    pub fn item_types(&self) -> impl Iterator<Item = ItemType> + '_ {
        self.pending.as_ref().map(|_| ItemType::Event).into_iter().chain(self.items.iter().map(EnvelopeItem::item_type))
    }

    /// About how many bytes of memory it holds: what a transport's queue bound counts (the
    /// default `HttpTransport` queue holds 8 MiB of them). Cheap: it never serializes.
    ///
    /// ```
    /// let small = isoscope::Envelope::from_event(isoscope::Event::message("hi", isoscope::Level::Info));
    /// let big = isoscope::Envelope::from_event(isoscope::Event::message("x".repeat(100_000), isoscope::Level::Info));
    /// assert!(small.estimated_size() < 4096 && big.estimated_size() > 100_000);
    /// ```
    pub fn estimated_size(&self) -> usize {
        self.pending.as_ref().map_or(0, |p| p.size_hint())
            + self
                .items
                .iter()
                .map(|item| match item {
                    EnvelopeItem::Event(e) => event_size_hint(e),
                    EnvelopeItem::Transaction(t) => 1024 + 256 * t.spans.len(),
                    EnvelopeItem::Attachment(a) => 256 + a.len(),
                    EnvelopeItem::Logs(logs) => 256 * logs.len(),
                    _ => 512,
                })
                .sum::<usize>()
    }

    /// Whether its deferred work is done (or there was none).
    pub fn is_finished(&self) -> bool {
        self.pending.is_none()
    }

    /// Does the deferred work of a capture (merging the scopes in, defaults, scrubbing, size
    /// limits), if any, and returns the envelope's contents. Call it where the work should be
    /// paid for: a transport's own thread.
    pub fn finish(self) -> FinishedEnvelope {
        let Self { event_id, mut items, mut trace, pending, delivery } = self;
        if let Some(pending) = pending {
            let (event, dsc) = pending.finish();
            items.insert(0, EnvelopeItem::Event(event));
            trace = trace.or(dsc);
        }
        FinishedEnvelope { event_id, items, trace, delivery }
    }
}

impl From<FinishedEnvelope> for Envelope {
    fn from(f: FinishedEnvelope) -> Self {
        Self { event_id: f.event_id, items: f.items, trace: f.trace, pending: None, delivery: f.delivery }
    }
}

impl FinishedEnvelope {
    /// Takes the accounting of its items (see [`Envelope::take_delivery`]).
    pub fn take_delivery(&mut self) -> Option<Delivery> {
        self.delivery.take()
    }

    /// The `trace` header (dynamic sampling context), if the envelope has one.
    pub fn trace_header(&self) -> Option<&serde_json::Value> {
        self.trace.as_ref()
    }

    /// The id in the envelope header.
    pub fn event_id(&self) -> Option<EventId> {
        self.event_id
    }

    /// The items.
    pub fn items(&self) -> &[EnvelopeItem] {
        &self.items
    }

    /// The attachments beside its event.
    pub fn attachments(&self) -> impl Iterator<Item = &Attachment> {
        self.items.iter().filter_map(|i| if let EnvelopeItem::Attachment(a) = i { Some(a) } else { None })
    }

    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // used by the HTTP transport
    /// Adds an item without the checks of [`Envelope::push`] (a client report riding along).
    pub(crate) fn push_unchecked(&mut self, item: EnvelopeItem) {
        self.items.push(item);
    }

    /// Keeps the items `keep` says yes to (a transport drops the rate-limited ones).
    pub fn retain(&mut self, keep: impl FnMut(&EnvelopeItem) -> bool) {
        self.items.retain(keep);
    }

    /// The event, if the envelope holds one.
    pub fn event(&self) -> Option<&Event> {
        self.items.iter().find_map(|i| match i {
            EnvelopeItem::Event(e) => Some(e),
            _ => None,
        })
    }

    /// The transaction, if the envelope holds one.
    pub fn transaction(&self) -> Option<&Transaction> {
        self.items.iter().find_map(|i| match i {
            EnvelopeItem::Transaction(t) => Some(t),
            _ => None,
        })
    }

    /// Consumes the envelope, returning its event if it holds one.
    pub fn into_event(self) -> Option<Event> {
        self.items.into_iter().find_map(|i| match i {
            EnvelopeItem::Event(e) => Some(e),
            _ => None,
        })
    }

    /// Resolves the captured stacks of its events now (see [`Event::resolve_stacktraces`]).
    pub fn resolve_stacktraces(&mut self) {
        for item in &mut self.items {
            if let EnvelopeItem::Event(event) = item {
                event.resolve_stacktraces();
            }
        }
    }

    /// Resolves everything deferred to serialization: captured stacks, transactions' request
    /// data and tags (what a transport that keeps envelopes in memory does on `send`).
    pub(crate) fn resolve_all(&mut self) {
        for item in &mut self.items {
            match item {
                EnvelopeItem::Event(event) => event.resolve_stacktraces(),
                EnvelopeItem::Transaction(t) => t.resolve(),
                _ => {}
            }
        }
    }

    /// Encodes the envelope: header line (`event_id`, `sent_at`, `trace`, and `dsn` when
    /// given), then per item a header line (`type`, `length` and the kind's own fields) and
    /// the payload.
    pub fn to_bytes(&self, dsn: Option<&str>) -> Vec<u8> {
        let mut out = self.header_line(dsn, crate::util::now_f64());
        out.extend(self.items_bytes());
        out
    }

    /// The header line, with `sent_at` as given (a transport stamps each attempt), no newline.
    pub(crate) fn header_line(&self, dsn: Option<&str>, sent_at: f64) -> Vec<u8> {
        #[derive(Serialize)]
        struct Header<'a> {
            #[serde(skip_serializing_if = "Option::is_none")]
            event_id: Option<EventId>,
            #[serde(skip_serializing_if = "Option::is_none")]
            dsn: Option<&'a str>,
            sent_at: String,
            #[serde(skip_serializing_if = "Option::is_none")]
            trace: Option<&'a serde_json::Value>,
        }
        let header =
            Header { event_id: self.event_id, dsn, sent_at: crate::util::rfc3339(sent_at), trace: self.trace.as_ref() };
        serde_json::to_vec(&header).unwrap_or_default()
    }

    /// Everything after the header line: per item `\n` + item header + `\n` + payload, then
    /// the final `\n`. Resolves captured stacks (this runs on the transport's thread).
    pub(crate) fn items_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        for item in &self.items {
            // Room for a typical event at once (growing from empty reallocates eight times): the
            // size of the last one serialized, at least 4 KiB.
            let mut payload = Vec::with_capacity(LAST_PAYLOAD.load(Ordering::Relaxed).clamp(4096, 1 << 20));
            // Serializing our own types into memory cannot fail (string keys, finite data).
            if item.write_payload(&mut payload).is_err() {
                payload.clear();
            }
            LAST_PAYLOAD.store(payload.len(), Ordering::Relaxed);
            out.reserve(payload.len() + 64);
            out.push(b'\n');
            let _ = serde_json::to_writer(&mut out, &item.header(payload.len()));
            out.push(b'\n');
            out.extend(payload);
        }
        out.push(b'\n');
        out
    }
}
