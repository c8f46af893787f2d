//! Sentry envelopes, what a transport is handed: a header line, then items (item header line +
//! payload).

use serde::Serialize;

use super::{Event, EventId, Transaction};

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

/// What a [`Transport`](crate::Transport) is given to deliver.
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
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    event_id: Option<EventId>,
    /// The dynamic sampling context (`trace` header) of a transaction envelope.
    trace: Option<serde_json::Value>,
    items: Vec<EnvelopeItem>,
}

impl Envelope {
    /// An envelope holding one event.
    pub fn from_event(event: Event) -> Self {
        Self { event_id: Some(event.event_id), trace: None, items: vec![EnvelopeItem::Event(event)] }
    }

    /// An envelope holding one transaction.
    pub fn from_transaction(transaction: Transaction) -> Self {
        Self { event_id: Some(transaction.event_id), trace: None, items: vec![EnvelopeItem::Transaction(transaction)] }
    }

    /// Sets the `trace` header: the dynamic sampling context Relay samples by.
    pub(crate) fn with_trace_header(mut self, dsc: serde_json::Value) -> Self {
        self.trace = Some(dsc);
        self
    }

    /// The `trace` header (dynamic sampling context), if the envelope has one.
    pub fn trace_header(&self) -> Option<&serde_json::Value> {
        self.trace.as_ref()
    }

    /// The transaction, if the envelope holds one.
    pub fn transaction(&self) -> Option<&Transaction> {
        self.items.iter().find_map(|i| match i {
            EnvelopeItem::Transaction(t) => Some(t),
            EnvelopeItem::Event(_) => None,
        })
    }

    /// The rate-limit category of the envelope (`error` or `transaction`).
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
    pub(crate) fn category(&self) -> &'static str {
        match self.items.first() {
            Some(EnvelopeItem::Transaction(_)) => "transaction",
            _ => "error",
        }
    }

    /// The id in the envelope header.
    pub fn event_id(&self) -> Option<EventId> {
        self.event_id
    }

    /// The items.
    pub fn items(&self) -> &[EnvelopeItem] {
        &self.items
    }

    /// The event, if the envelope holds one.
    pub fn event(&self) -> Option<&Event> {
        self.items.iter().find_map(|i| match i {
            EnvelopeItem::Event(e) => Some(e),
            EnvelopeItem::Transaction(_) => None,
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
            }
        }
    }

    /// Consumes the envelope, returning its event if it holds one.
    pub fn into_event(self) -> Option<Event> {
        self.items.into_iter().find_map(|i| match i {
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
        let header =
            Header { event_id: self.event_id, dsn, sent_at: crate::util::rfc3339(sent_at), trace: self.trace.as_ref() };
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
        for item in &self.items {
            // Serializing our own types into memory cannot fail (string keys, finite data).
            let (ty, payload) = match item {
                EnvelopeItem::Event(event) => ("event", serde_json::to_vec(event)),
                EnvelopeItem::Transaction(t) => ("transaction", serde_json::to_vec(t)),
            };
            let payload = payload.unwrap_or_default();
            out.push(b'\n');
            out.extend(serde_json::to_vec(&ItemHeader { ty, length: payload.len() }).unwrap_or_default());
            out.push(b'\n');
            out.extend(payload);
        }
        out.push(b'\n');
        out
    }
}
