//! Distributed tracing: trace and span ids, a request's propagation context (continued from
//! incoming `sentry-trace` / `traceparent` / `baggage` headers, or new), and the headers that
//! pass it on to the calls a request makes.
//!
//! ```text
//!  incoming headers ─▶ headers::{sentry_trace, traceparent, sentry_baggage}   (bounded, Err = counted)
//!                   ─▶ PropagationContext::from_headers   (lazily, the first time it is needed)
//!  capture          ─▶ contexts.trace = {trace_id, span_id, parent_span_id?, sampled?}
//!  trace_headers()  ─▶ sentry-trace, traceparent, baggage for an outgoing call
//! ```

mod context;
pub(crate) mod continuation;
mod headers;
mod ids;
#[cfg(feature = "opentelemetry")]
pub(crate) mod otel;

use std::sync::OnceLock;

pub(crate) use context::baggage_value;
pub use context::PropagationContext;
pub use ids::{InvalidId, SpanId, TraceId};

/// The propagation context of events captured outside any request: one trace per process.
pub(crate) fn process() -> &'static PropagationContext {
    static PROCESS: OnceLock<PropagationContext> = OnceLock::new();
    PROCESS.get_or_init(PropagationContext::new)
}

/// The active OpenTelemetry span: its trace, its id, and whether it is sampled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct OtelSpan {
    pub(crate) trace_id: TraceId,
    pub(crate) span_id: SpanId,
    pub(crate) sampled: bool,
}

/// The active OpenTelemetry span (feature `opentelemetry`), whose trace events, logs and
/// outgoing headers follow; never one without the feature.
#[inline]
pub(crate) fn otel_span() -> Option<OtelSpan> {
    #[cfg(feature = "opentelemetry")]
    return otel::active();
    #[cfg(not(feature = "opentelemetry"))]
    None
}

impl OtelSpan {
    /// `contexts.trace` of an event captured in it.
    pub(crate) fn to_context(self) -> serde_json::Value {
        serde_json::json!({
            "type": "trace",
            "trace_id": self.trace_id.to_string(),
            "span_id": self.span_id.to_string(),
            "sampled": self.sampled,
        })
    }

    /// Its place as a propagation context: what outgoing headers continue.
    pub(crate) fn to_propagation(self) -> PropagationContext {
        PropagationContext::continuing(self.trace_id, self.span_id, self.sampled)
    }
}
