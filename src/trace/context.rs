//! [`PropagationContext`]: where a request (or the process) is in a distributed trace, and the
//! headers that pass it on.

use std::sync::Arc;

use serde_json::{json, Value};

use super::headers::{self, Parent};
use super::{SpanId, TraceId};
use crate::stats::{incr, COUNTERS};

/// A request's place in a distributed trace: the trace it belongs to, its own span, the span
/// of the caller that it continues (if any), the caller's sampling decision, and the caller's
/// `sentry-*` baggage (its dynamic sampling context, passed on unchanged).
///
/// The layer continues the trace of the incoming `sentry-trace` header, else of W3C
/// `traceparent` (`sentry-trace` wins when both are present and disagree: it is the one
/// Sentry's SDKs set, and carries Sentry's own sampling decision), else starts a new one.
/// Every event captured in the request carries it as `contexts.trace`.
///
/// ```
/// let mut headers = http::HeaderMap::new();
/// headers.insert("sentry-trace", "4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-1".parse().unwrap());
/// let info = isoscope::RequestInfo::new(http::Method::GET, "/".parse().unwrap(), headers, false);
/// let trace = info.trace();
/// assert_eq!(trace.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
/// assert_eq!(trace.parent_span_id().unwrap().to_string(), "00f067aa0ba902b7");
/// assert_eq!(trace.sampled(), Some(true));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropagationContext {
    trace_id: TraceId,
    span_id: SpanId,
    parent_span_id: Option<SpanId>,
    sampled: Option<bool>,
    /// The rate this service decided `sampled` with (not when it followed its caller), as
    /// `f64::to_bits` (so the context stays `Eq`).
    sample_rate: Option<u64>,
    baggage: Option<Arc<str>>,
}

impl Default for PropagationContext {
    fn default() -> Self {
        Self::new()
    }
}

impl PropagationContext {
    /// The start of a new trace: fresh trace and span ids, no parent, no sampling decision.
    pub fn new() -> Self {
        Self {
            trace_id: TraceId::new(),
            span_id: SpanId::new(),
            parent_span_id: None,
            sampled: None,
            sample_rate: None,
            baggage: None,
        }
    }

    /// Continues the trace of the incoming headers (`get` looks one up by its lowercase name),
    /// else starts one. A malformed header is ignored and counted in
    /// `stats().trace_headers_invalid`.
    pub(crate) fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a [u8]>) -> Self {
        let parsed = |name: &str, parse: fn(&[u8]) -> Result<Parent, headers::Malformed>| {
            let value = get(name)?;
            let parent = parse(value).ok();
            if parent.is_none() {
                incr(&COUNTERS.trace_headers_invalid);
            }
            parent
        };
        // Both are looked at (a malformed one is counted even when the other is good).
        let sentry = parsed("sentry-trace", headers::sentry_trace);
        let w3c = parsed("traceparent", headers::traceparent);
        let Some(parent) = sentry.or(w3c) else { return Self::new() };
        let baggage = get("baggage").and_then(|v| match headers::sentry_baggage(v) {
            Ok(b) => b.map(Arc::from),
            Err(_) => {
                incr(&COUNTERS.trace_headers_invalid);
                None
            }
        });
        if !super::continuation::continues(super::continuation::org_id_in(baggage.as_deref())) {
            // Another organization's trace (or, with `strict_trace_continuation`, one whose
            // organization is unknown): a new trace starts here.
            crate::debug::once(crate::debug::Problem::TraceNotContinued);
            return Self::new();
        }
        Self {
            trace_id: parent.trace_id,
            span_id: SpanId::new(),
            parent_span_id: Some(parent.span_id),
            sampled: parent.sampled,
            sample_rate: None,
            baggage,
        }
    }

    /// The context of a span that is not ours (an OpenTelemetry span): its trace, itself as
    /// the parent of what it calls, its sampling decision.
    pub(crate) fn continuing(trace_id: TraceId, span_id: SpanId, sampled: bool) -> Self {
        Self { trace_id, span_id, parent_span_id: None, sampled: Some(sampled), sample_rate: None, baggage: None }
    }

    /// A new span of its own, child of `parent` in `trace_id`, with the parent's decision.
    #[cfg_attr(not(feature = "opentelemetry"), allow(dead_code))]
    pub(crate) fn child_of(trace_id: TraceId, parent: SpanId, sampled: bool) -> Self {
        Self {
            trace_id,
            span_id: SpanId::new(),
            parent_span_id: Some(parent),
            sampled: Some(sampled),
            sample_rate: None,
            baggage: None,
        }
    }

    /// The trace id.
    pub fn trace_id(&self) -> TraceId {
        self.trace_id
    }

    /// This request's own span id (the parent of the calls it makes).
    pub fn span_id(&self) -> SpanId {
        self.span_id
    }

    /// The caller's span, when the trace was continued.
    pub fn parent_span_id(&self) -> Option<SpanId> {
        self.parent_span_id
    }

    /// Records this service's sampling decision (passed on to the calls it makes) and, when
    /// this service decided it (rather than following its caller), the rate it applied: the
    /// dynamic sampling context's `sample_rate`, by which Relay extrapolates.
    pub(crate) fn set_sampled(&mut self, sampled: bool, sample_rate: Option<f64>) {
        self.sampled = Some(sampled);
        self.sample_rate = sample_rate.map(f64::to_bits);
    }

    /// The sample rate this service decided the trace with, if it did.
    pub fn sample_rate(&self) -> Option<f64> {
        self.sample_rate.map(f64::from_bits)
    }

    /// The sampling decision: the caller's, or this service's once it made one.
    pub fn sampled(&self) -> Option<bool> {
        self.sampled
    }

    /// The caller's `sentry-*` baggage entries, if any (`sentry-trace_id=..,sentry-..`).
    pub fn baggage(&self) -> Option<&str> {
        self.baggage.as_deref()
    }

    /// `contexts.trace` of an event captured here.
    pub(crate) fn to_context(&self) -> Value {
        let mut trace = json!({
            "type": "trace",
            "trace_id": self.trace_id,
            "span_id": self.span_id,
        });
        if let Some(parent) = self.parent_span_id {
            trace["parent_span_id"] = json!(parent);
        }
        if let Some(sampled) = self.sampled {
            trace["sampled"] = sampled.into();
        }
        trace
    }

    /// `contexts.trace` of an event captured inside the child span `span` (of parent `parent`).
    pub(crate) fn to_span_context(&self, span: SpanId, parent: SpanId) -> Value {
        let mut trace = self.to_context();
        trace["span_id"] = json!(span);
        trace["parent_span_id"] = json!(parent);
        trace
    }

    /// `sentry-trace` for a call made from here: this trace, this span as the parent.
    pub fn sentry_trace(&self) -> String {
        match self.sampled {
            Some(s) => format!("{}-{}-{}", self.trace_id, self.span_id, u8::from(s)),
            None => format!("{}-{}", self.trace_id, self.span_id),
        }
    }

    /// The same trace seen from one of its child spans: calls made inside that span name it
    /// as their parent.
    pub(crate) fn with_span(&self, span_id: SpanId) -> Self {
        Self { span_id, ..self.clone() }
    }

    /// W3C `traceparent` for a call made from here (flags `01` only when sampled).
    pub fn traceparent(&self) -> String {
        format!("00-{}-{}-{:02x}", self.trace_id, self.span_id, u8::from(self.sampled == Some(true)))
    }
}

/// Percent-encodes what a W3C baggage value may not hold (controls, space, `"`, `,`, `;`,
/// `\`, `%` and non-ASCII).
pub(crate) fn baggage_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            0x21 | 0x23..=0x24 | 0x26..=0x2B | 0x2D..=0x3A | 0x3C..=0x5B | 0x5D..=0x7E => out.push(char::from(b)),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(headers: &[(&str, &str)]) -> PropagationContext {
        PropagationContext::from_headers(|name| headers.iter().find(|(n, _)| *n == name).map(|(_, v)| v.as_bytes()))
    }

    const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

    #[test]
    fn sentry_trace_wins_over_traceparent() {
        let c = ctx(&[
            ("sentry-trace", &format!("{TRACE}-00f067aa0ba902b7-0")),
            ("traceparent", "00-11111111111111111111111111111111-2222222222222222-01"),
        ]);
        assert_eq!(c.trace_id().to_string(), TRACE);
        assert_eq!(c.sampled(), Some(false));
        let w3c = ctx(&[("traceparent", &format!("00-{TRACE}-2222222222222222-01"))]);
        assert_eq!((w3c.trace_id().to_string(), w3c.sampled()), (TRACE.to_owned(), Some(true)));
        assert_eq!(w3c.parent_span_id().unwrap().to_string(), "2222222222222222");
        assert_ne!(w3c.span_id(), w3c.parent_span_id().unwrap(), "its own span");
    }

    #[test]
    fn malformed_headers_start_a_new_trace_and_are_counted() {
        let before = crate::stats::stats().trace_headers_invalid;
        let c = ctx(&[("sentry-trace", "garbage"), ("traceparent", "00-zz"), ("baggage", "sentry-a=1")]);
        assert_eq!(c.parent_span_id(), None);
        assert_eq!(c.baggage(), None, "baggage only goes with a continued trace");
        assert!(crate::stats::stats().trace_headers_invalid >= before + 2);
    }

    #[test]
    fn outgoing_headers() {
        let c = ctx(&[("sentry-trace", &format!("{TRACE}-00f067aa0ba902b7-1")), ("baggage", "sentry-release=a@1,x=y")]);
        let span = c.span_id().to_string();
        assert_eq!(c.sentry_trace(), format!("{TRACE}-{span}-1"));
        assert_eq!(c.traceparent(), format!("00-{TRACE}-{span}-01"));
        assert_eq!(c.baggage(), Some("sentry-release=a@1"));
        let fresh = PropagationContext::new();
        assert_eq!(fresh.sentry_trace().len(), 49);
        assert!(fresh.traceparent().ends_with("-00"));
        assert_eq!(baggage_value("shop@1.0 beta,x;y%"), "shop@1.0%20beta%2Cx%3By%25");
    }
}
