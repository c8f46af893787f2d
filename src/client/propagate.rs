//! [`trace_headers`]: the headers that continue the active request's trace in a call it makes.

use crate::bind;
use crate::trace::{baggage_value, PropagationContext};

/// `sentry-trace`, `traceparent` and `baggage` for an outgoing call: the active request's trace
/// with its span as the parent (outside a request, the process's trace).
///
/// ```
/// let headers = isoscope::trace_headers();
/// let (trace_id, span_id) = headers.sentry_trace().split_once('-').unwrap();
/// assert_eq!((trace_id.len(), span_id.len()), (32, 16));
/// assert!(headers.traceparent().starts_with(&format!("00-{trace_id}-{span_id}-")));
///
/// let mut map = http::HeaderMap::new();
/// headers.apply_to(&mut map);
/// assert!(map.contains_key("sentry-trace") && map.contains_key("traceparent"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceHeaders {
    sentry_trace: String,
    traceparent: String,
    baggage: String,
}

impl TraceHeaders {
    /// `sentry-trace`: `{trace_id}-{span_id}[-{sampled}]`.
    pub fn sentry_trace(&self) -> &str {
        &self.sentry_trace
    }

    /// W3C `traceparent`: `00-{trace_id}-{span_id}-{flags}`.
    pub fn traceparent(&self) -> &str {
        &self.traceparent
    }

    /// `baggage`: the caller's `sentry-*` entries passed on unchanged, or, for a trace that
    /// started here, this service's (`sentry-trace_id`, `sentry-environment`,
    /// `sentry-release`, `sentry-public_key`).
    pub fn baggage(&self) -> &str {
        &self.baggage
    }

    /// The three as `(name, value)` pairs.
    pub fn iter(&self) -> impl Iterator<Item = (&'static str, &str)> {
        [("sentry-trace", self.sentry_trace.as_str()), ("traceparent", &self.traceparent), ("baggage", &self.baggage)]
            .into_iter()
    }

    /// Inserts the three into `headers` (replacing any already there).
    pub fn apply_to(&self, headers: &mut http::HeaderMap) {
        for (name, value) in self.iter() {
            // Our own hex ids and percent-encoded baggage: always valid header values.
            if let Ok(value) = http::HeaderValue::from_str(value) {
                headers.insert(name, value);
            }
        }
    }
}

/// The headers that pass the active request's trace on to a call it makes (see
/// [`TraceHeaders`]); outside a request, those of the process's trace.
pub fn trace_headers() -> TraceHeaders {
    let scope = bind::active().snapshot();
    match scope.request() {
        Some(request) => headers_for(request.trace()),
        None => headers_for(crate::trace::process()),
    }
}

/// The headers that continue `context` (its span the parent).
pub(crate) fn headers_for(context: &PropagationContext) -> TraceHeaders {
    let baggage = match context.baggage() {
        Some(frozen) => frozen.to_owned(),
        None => own_baggage(context),
    };
    TraceHeaders { sentry_trace: context.sentry_trace(), traceparent: context.traceparent(), baggage }
}

/// The dynamic sampling context of a trace that started here.
fn own_baggage(context: &PropagationContext) -> String {
    let mut entries = vec![format!("sentry-trace_id={}", context.trace_id())];
    if let Some(client) = super::client() {
        let options = &client.options;
        if let Some(environment) = options.environment.as_deref() {
            entries.push(format!("sentry-environment={}", baggage_value(environment)));
        }
        if let Some(release) = options.release.as_deref() {
            entries.push(format!("sentry-release={}", baggage_value(release)));
        }
        if let Some(dsn) = options.dsn.as_deref().and_then(|d| d.parse::<crate::Dsn>().ok()) {
            entries.push(format!("sentry-public_key={}", baggage_value(dsn.public_key())));
        }
    }
    if let Some(sampled) = context.sampled() {
        entries.push(format!("sentry-sampled={sampled}"));
    }
    entries.join(",")
}
