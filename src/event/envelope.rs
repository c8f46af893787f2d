//! Sentry envelopes, what a transport is handed: a header line, then items (item header line +
//! payload).

use std::fmt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, PoisonError};

use serde::Serialize;

use super::{Event, EventId, Transaction};

/// The size of the last item payload serialized: the next one's first allocation.
static LAST_PAYLOAD: AtomicUsize = AtomicUsize::new(0);

/// One item of an [`Envelope`].
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
}

/// The part of an event's processing that can wait for the transport's thread: merging the
/// scopes in, defaults, scrubbing, size limits (`client::capture` implements it). It is run
/// once, by whichever thread first reads the envelope's items.
pub(crate) trait Finish: Send {
    /// The finished event and the envelope's `trace` header (dynamic sampling context).
    fn finish(self: Box<Self>) -> (Event, Option<serde_json::Value>);
}

/// The items and `trace` header of an envelope.
#[derive(Debug, Clone, PartialEq, Default)]
struct Body {
    items: Vec<EnvelopeItem>,
    /// The dynamic sampling context (`trace` header).
    trace: Option<serde_json::Value>,
}

/// What a [`Transport`](crate::Transport) is given to deliver.
///
/// An envelope made by a capture may still have work to do (the scopes to merge in, scrubbing,
/// size limits): it is done when its contents are first read (`event`, `items`, `to_bytes`,
/// ...), which for isoscope's own transports is on their thread, never on the request path.
///
/// ```
/// let event = isoscope::Event::message("hi", isoscope::Level::Info);
/// let id = event.event_id;
/// let envelope = isoscope::Envelope::from_event(event);
/// let bytes = envelope.to_bytes(None);
/// let text = String::from_utf8(bytes).unwrap();
/// let mut lines = text.lines();
/// let header: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
/// assert_eq!(header["event_id"], id.to_string());
/// let item: serde_json::Value = serde_json::from_str(lines.next().unwrap()).unwrap();
/// assert_eq!(item["type"], "event");
/// assert_eq!(item["length"].as_u64().unwrap() as usize, lines.next().unwrap().len());
/// ```
pub struct Envelope {
    event_id: Option<EventId>,
    /// The rate-limit category, known before the body is finished.
    category: &'static str,
    body: OnceLock<Body>,
    /// Work left before `body` can be read (see [`Finish`]).
    unfinished: Mutex<Option<Box<dyn Finish>>>,
}

impl fmt::Debug for Envelope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Envelope")
            .field("event_id", &self.event_id)
            .field("trace", &self.body().trace)
            .field("items", &self.body().items)
            .finish()
    }
}

impl Clone for Envelope {
    fn clone(&self) -> Self {
        Self::ready(self.event_id, self.category, self.body().clone())
    }
}

impl PartialEq for Envelope {
    fn eq(&self, other: &Self) -> bool {
        self.event_id == other.event_id && self.body() == other.body()
    }
}

impl Envelope {
    fn ready(event_id: Option<EventId>, category: &'static str, body: Body) -> Self {
        Self { event_id, category, body: OnceLock::from(body), unfinished: Mutex::new(None) }
    }

    /// An envelope holding one event.
    pub fn from_event(event: Event) -> Self {
        Self::ready(Some(event.event_id), "error", Body { items: vec![EnvelopeItem::Event(event)], trace: None })
    }

    /// An envelope for the event with id `event_id` that `finish` will make (on first read).
    pub(crate) fn deferred(event_id: EventId, finish: Box<dyn Finish>) -> Self {
        Self {
            event_id: Some(event_id),
            category: "error",
            body: OnceLock::new(),
            unfinished: Mutex::new(Some(finish)),
        }
    }

    /// An envelope holding one transaction.
    pub fn from_transaction(transaction: Transaction) -> Self {
        let event_id = Some(transaction.event_id);
        Self::ready(event_id, "transaction", Body { items: vec![EnvelopeItem::Transaction(transaction)], trace: None })
    }

    /// Sets the `trace` header: the dynamic sampling context Relay samples by.
    pub(crate) fn with_trace_header(mut self, dsc: serde_json::Value) -> Self {
        self.body_mut().trace = Some(dsc);
        self
    }

    /// The body, finished first if it was not yet.
    fn body(&self) -> &Body {
        self.body.get_or_init(|| {
            let finish = self.unfinished.lock().unwrap_or_else(PoisonError::into_inner).take();
            finish.map_or_else(Body::default, |f| {
                let (event, trace) = f.finish();
                Body { items: vec![EnvelopeItem::Event(event)], trace }
            })
        })
    }

    fn body_mut(&mut self) -> &mut Body {
        self.body();
        self.body.get_mut().expect("finished just above")
    }

    /// The `trace` header (dynamic sampling context), if the envelope has one.
    pub fn trace_header(&self) -> Option<&serde_json::Value> {
        self.body().trace.as_ref()
    }

    /// The transaction, if the envelope holds one.
    pub fn transaction(&self) -> Option<&Transaction> {
        self.body().items.iter().find_map(|i| match i {
            EnvelopeItem::Transaction(t) => Some(t),
            EnvelopeItem::Event(_) => None,
        })
    }

    /// The rate-limit category of the envelope (`error` or `transaction`).
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn category(&self) -> &'static str {
        self.category
    }

    /// The id in the envelope header.
    pub fn event_id(&self) -> Option<EventId> {
        self.event_id
    }

    /// The items.
    pub fn items(&self) -> &[EnvelopeItem] {
        &self.body().items
    }

    /// The event, if the envelope holds one.
    pub fn event(&self) -> Option<&Event> {
        self.body().items.iter().find_map(|i| match i {
            EnvelopeItem::Event(e) => Some(e),
            EnvelopeItem::Transaction(_) => None,
        })
    }

    /// Resolves the captured stacks of its events now (see [`Event::resolve_stacktraces`]).
    pub fn resolve_stacktraces(&mut self) {
        for item in &mut self.body_mut().items {
            if let EnvelopeItem::Event(event) = item {
                event.resolve_stacktraces();
            }
        }
    }

    /// Resolves everything deferred to serialization: the event's processing, captured stacks,
    /// transactions' request data and tags (what a transport that keeps envelopes in memory
    /// does on `send`).
    pub(crate) fn resolve_all(&mut self) {
        for item in &mut self.body_mut().items {
            match item {
                EnvelopeItem::Event(event) => event.resolve_stacktraces(),
                EnvelopeItem::Transaction(t) => t.resolve(),
            }
        }
    }

    /// Consumes the envelope, returning its event if it holds one.
    pub fn into_event(mut self) -> Option<Event> {
        std::mem::take(&mut self.body_mut().items).into_iter().find_map(|i| match i {
            EnvelopeItem::Event(e) => Some(e),
            EnvelopeItem::Transaction(_) => None,
        })
    }

    /// Encodes the envelope: header line (`event_id`, `sent_at`, and `dsn` when given), then
    /// per item a header line with `type` and `length` and the JSON payload.
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
        let header = Header {
            event_id: self.event_id,
            dsn,
            sent_at: crate::util::rfc3339(sent_at),
            trace: self.body().trace.as_ref(),
        };
        serde_json::to_vec(&header).unwrap_or_default()
    }

    /// Everything after the header line: per item `\n` + item header + `\n` + payload, then
    /// the final `\n`. Resolves captured stacks (this runs on the transport's thread).
    pub(crate) fn items_bytes(&self) -> Vec<u8> {
        #[derive(Serialize)]
        struct ItemHeader {
            #[serde(rename = "type")]
            ty: &'static str,
            length: usize,
        }
        let mut out = Vec::new();
        for item in &self.body().items {
            // Room for a typical event at once (growing from empty reallocates eight times): the
            // size of the last one serialized, at least 4 KiB.
            let mut payload = Vec::with_capacity(LAST_PAYLOAD.load(Ordering::Relaxed).clamp(4096, 1 << 20));
            // Serializing our own types into memory cannot fail (string keys, finite data).
            let (ty, written) = match item {
                EnvelopeItem::Event(event) => ("event", serde_json::to_writer(&mut payload, event)),
                EnvelopeItem::Transaction(t) => ("transaction", serde_json::to_writer(&mut payload, t)),
            };
            if written.is_err() {
                payload.clear();
            }
            LAST_PAYLOAD.store(payload.len(), Ordering::Relaxed);
            out.reserve(payload.len() + 48);
            out.push(b'\n');
            let _ = serde_json::to_writer(&mut out, &ItemHeader { ty, length: payload.len() });
            out.push(b'\n');
            out.extend(payload);
        }
        out.push(b'\n');
        out
    }
}
