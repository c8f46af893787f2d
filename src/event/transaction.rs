//! [`Transaction`] and [`Span`]: a sampled request's performance data, as Sentry's
//! `transaction` event (sent in a `transaction` envelope item).

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::ser::SerializeMap;
use serde::{Serialize, Serializer};

use super::{EventId, Request, Sdk, SpanStatus};
use crate::trace::{SpanId, TraceId};

/// One timed operation inside a transaction (`isoscope::start_span`, or a `tracing` span).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct Span {
    /// The span's id.
    pub span_id: SpanId,
    /// The span it ran in: the request's, or an enclosing child span's.
    pub parent_span_id: SpanId,
    /// The trace.
    pub trace_id: TraceId,
    /// What kind of operation (`db.query`, `http.client`, ...).
    pub op: String,
    /// What it did (`SELECT * FROM orders WHERE id = ?`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Start, seconds since the Unix epoch.
    pub start_timestamp: f64,
    /// End, seconds since the Unix epoch.
    pub timestamp: f64,
    /// `ok`, or an error status (`internal_error`, ...).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<SpanStatus>,
}

/// What a transaction takes from its request's scope when it is serialized (on the
/// transport's thread), not when the request ends: implemented by the client.
pub(crate) trait DeferredParts: Send + Sync + 'static {
    /// The HTTP request, scrubbed and bounded.
    fn request(&self) -> Option<Request>;
    /// The request's tags (and its `request_id`).
    fn tags(&self) -> BTreeMap<String, String>;
}

/// The deferred parts of a [`Transaction`] (ignored by `==`).
#[derive(Clone, Default)]
pub(crate) struct Deferred(Option<Arc<dyn DeferredParts>>);

impl Deferred {
    pub(crate) fn new(parts: impl DeferredParts) -> Self {
        Self(Some(Arc::new(parts)))
    }
}

impl fmt::Debug for Deferred {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() { "Deferred(pending)" } else { "Deferred(none)" })
    }
}

impl PartialEq for Deferred {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

/// A sampled request's transaction: its route, start and end, status, request data and child
/// spans, sent as Sentry's `transaction` event.
///
/// Its `request` and `tags` are taken from the request's scope when the transaction is
/// serialized, on the transport's thread; until then they are empty unless
/// [`resolve`](Self::resolve) was called (`MemoryTransport` does it on `send`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Transaction {
    /// Unique id.
    pub event_id: EventId,
    /// The route template (`/orders/{id}`), else the path.
    pub name: String,
    /// `http.server` for a request.
    pub op: String,
    /// The trace.
    pub trace_id: TraceId,
    /// The request's own span (the root of this transaction).
    pub span_id: SpanId,
    /// The caller's span, when the trace was continued.
    pub parent_span_id: Option<SpanId>,
    /// Sentry's span status from the response (`ok`, `not_found`, `internal_error`, ...).
    pub status: SpanStatus,
    /// Start, seconds since the Unix epoch.
    pub start_timestamp: f64,
    /// End, seconds since the Unix epoch.
    pub timestamp: f64,
    /// The HTTP request.
    pub request: Option<Request>,
    /// The response status code.
    pub status_code: Option<u16>,
    /// Child spans, in the order they ended (at most 1,000; more are dropped and counted).
    pub spans: Vec<Span>,
    /// Tags (the request's, at its end).
    pub tags: BTreeMap<String, String>,
    /// Release.
    pub release: Option<String>,
    /// Environment.
    pub environment: Option<String>,
    /// Host name.
    pub server_name: Option<String>,
    /// The SDK.
    pub sdk: Sdk,
    pub(crate) deferred: Deferred,
}

impl Transaction {
    /// Fills `request` and `tags` from the request's scope now (see the type's docs).
    pub fn resolve(&mut self) {
        if let Some(parts) = self.deferred.0.take() {
            if self.request.is_none() {
                self.request = parts.request();
            }
            for (k, v) in parts.tags() {
                self.tags.entry(k).or_insert(v);
            }
        }
    }
}

impl Serialize for Transaction {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Trace<'a> {
            #[serde(rename = "type")]
            ty: &'static str,
            trace_id: TraceId,
            span_id: SpanId,
            #[serde(skip_serializing_if = "Option::is_none")]
            parent_span_id: Option<SpanId>,
            op: &'a str,
            status: SpanStatus,
        }
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("type", "transaction")?;
        map.serialize_entry("event_id", &self.event_id)?;
        map.serialize_entry("platform", "native")?;
        map.serialize_entry("transaction", &self.name)?;
        map.serialize_entry("transaction_info", &serde_json::json!({ "source": "route" }))?;
        map.serialize_entry("start_timestamp", &self.start_timestamp)?;
        map.serialize_entry("timestamp", &self.timestamp)?;
        let trace = Trace {
            ty: "trace",
            trace_id: self.trace_id,
            span_id: self.span_id,
            parent_span_id: self.parent_span_id,
            op: &self.op,
            status: self.status,
        };
        let mut contexts = BTreeMap::new();
        contexts.insert("trace", serde_json::to_value(&trace).unwrap_or_default());
        if let Some(code) = self.status_code {
            contexts.insert("response", serde_json::json!({ "type": "response", "status_code": code }));
        }
        map.serialize_entry("contexts", &contexts)?;
        map.serialize_entry("spans", &self.spans)?;
        match (&self.request, &self.deferred.0) {
            (Some(request), _) => map.serialize_entry("request", request)?,
            (None, Some(parts)) => {
                if let Some(request) = parts.request() {
                    map.serialize_entry("request", &request)?;
                }
            }
            (None, None) => {}
        }
        let mut tags = self.deferred.0.as_ref().map(|p| p.tags()).unwrap_or_default();
        tags.extend(self.tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        if !tags.is_empty() {
            map.serialize_entry("tags", &tags)?;
        }
        for (key, value) in
            [("release", &self.release), ("environment", &self.environment), ("server_name", &self.server_name)]
        {
            if let Some(value) = value {
                map.serialize_entry(key, value)?;
            }
        }
        map.serialize_entry("sdk", &self.sdk)?;
        map.end()
    }
}
