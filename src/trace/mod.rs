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

use std::sync::OnceLock;

pub(crate) use context::baggage_value;
pub use context::PropagationContext;
pub use ids::{InvalidId, SpanId, TraceId};

/// The propagation context of events captured outside any request: one trace per process.
pub(crate) fn process() -> &'static PropagationContext {
    static PROCESS: OnceLock<PropagationContext> = OnceLock::new();
    PROCESS.get_or_init(PropagationContext::new)
}
