//! OpenTelemetry interop (feature `opentelemetry`): the active OpenTelemetry span — the
//! current `tracing` span's, through `tracing-opentelemetry`, else OpenTelemetry's own current
//! context — whose trace events, logs and outgoing headers then carry, ahead of the request's
//! own (the layer's `sentry-trace`/`traceparent` continuation), so Sentry and the OpenTelemetry
//! backend show one trace.

use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use super::{OtelSpan, SpanId, TraceId};

/// The active OpenTelemetry span, if one is (a valid span context).
pub(crate) fn active() -> Option<OtelSpan> {
    let from_tracing = tracing::Span::current().context();
    of(&from_tracing).or_else(|| of(&opentelemetry::Context::current()))
}

fn of(cx: &opentelemetry::Context) -> Option<OtelSpan> {
    let span = cx.span();
    let sc = span.span_context();
    if !sc.is_valid() {
        return None;
    }
    Some(OtelSpan {
        trace_id: TraceId::from_bytes(sc.trace_id().to_bytes())?,
        span_id: SpanId::from_bytes(sc.span_id().to_bytes())?,
        sampled: sc.is_sampled(),
    })
}
