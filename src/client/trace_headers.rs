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
    /// `sentry-release`, `sentry-public_key`, `sentry-org_id` when known, `sentry-sampled`).
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
    if let Some(otel) = crate::trace::otel_span() {
        // An OpenTelemetry span is active: the callee continues its trace.
        return headers_for(&otel.to_propagation());
    }
    // No breadcrumbs: headers need none, and sharing the ring would make the next breadcrumb
    // (`send_traced` records one) a copy of it.
    let scope = bind::find(bind::Access::Read).snapshot_without_breadcrumbs();
    match (scope.request(), scope.active_span()) {
        // Inside a span `start_span` opened: that span is the callee's parent.
        (Some(request), Some((span, _))) => headers_for(&request.trace().with_span(span)),
        (Some(request), None) => headers_for(request.trace()),
        (None, _) => headers_for(crate::trace::process()),
    }
}

/// [`trace_headers`] for a call to `url`, if the client's
/// [`trace_propagation_targets`](crate::Options::trace_propagation_targets) allow it (all do
/// unless set).
///
/// ```
/// let _guard = isoscope::init(
///     isoscope::Options::new()
///         .transport(isoscope::MemoryTransport::new())
///         .trace_propagation_targets(["://api.internal/"]),
/// )
/// .unwrap();
/// assert!(isoscope::trace_headers_for("http://api.internal/orders").is_some());
/// assert!(isoscope::trace_headers_for("https://thirdparty.example/hook").is_none());
/// ```
pub fn trace_headers_for(url: &str) -> Option<TraceHeaders> {
    propagates_to(url).then(trace_headers)
}

/// Whether a call to `url` gets trace headers (see
/// [`Options::trace_propagation_targets`](crate::Options::trace_propagation_targets)).
pub(crate) fn propagates_to(url: &str) -> bool {
    // The client of the active scope (a scope's own, a test's), else the process's.
    let scope = bind::find(bind::Access::Read).snapshot_without_breadcrumbs();
    let Some(client) = super::capture::client_for(None, &scope) else { return true };
    match &client.options.trace_propagation_targets {
        None => true,
        Some(targets) => targets.iter().any(|t| url.contains(t.as_str())),
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

/// The dynamic sampling context of a trace that started here, as `(key, value)` pairs
/// (`trace_id`, `environment`, `release`, `public_key`, `org_id`, `sampled`, `sample_rate`).
fn own_entries(context: &PropagationContext, core: Option<&super::Core>) -> Vec<(&'static str, String)> {
    let mut entries = vec![("trace_id", context.trace_id().to_string())];
    if let Some(core) = core {
        if let Some(environment) = core.options.environment.as_deref() {
            entries.push(("environment", environment.to_owned()));
        }
        if let Some(release) = core.options.release.as_deref() {
            entries.push(("release", release.to_owned()));
        }
        if let Some(key) = &core.public_key {
            entries.push(("public_key", key.clone()));
        }
    }
    if let Some(org) = crate::trace::continuation::org_id() {
        entries.push(("org_id", org.to_string()));
    }
    if let Some(sampled) = context.sampled() {
        entries.push(("sampled", sampled.to_string()));
    }
    if let Some(rate) = context.sample_rate() {
        entries.push(("sample_rate", rate_text(rate)));
    }
    entries
}

/// `rate` as text. Formatting a float is the dearest step of a sampled request's sampling
/// context, and a service samples at one rate (or a few): the last one is kept per thread.
fn rate_text(rate: f64) -> String {
    thread_local! {
        static LAST: std::cell::RefCell<Option<(u64, String)>> = const { std::cell::RefCell::new(None) };
    }
    let bits = rate.to_bits();
    LAST.try_with(|last| {
        let mut last = last.try_borrow_mut().ok()?;
        match &*last {
            Some((b, text)) if *b == bits => Some(text.clone()),
            _ => {
                let text = rate.to_string();
                *last = Some((bits, text.clone()));
                Some(text)
            }
        }
    })
    .ok()
    .flatten()
    .unwrap_or_else(|| rate.to_string())
}

/// The `baggage` of a trace that started here.
fn own_baggage(context: &PropagationContext) -> String {
    let client = super::client();
    let entries = own_entries(context, client.as_deref());
    entries.iter().map(|(k, v)| format!("sentry-{k}={}", baggage_value(v))).collect::<Vec<_>>().join(",")
}

/// The dynamic sampling context for an envelope's `trace` header: the caller's `sentry-*`
/// baggage entries (percent-decoded), or this service's own.
pub(crate) fn dynamic_sampling_context(context: &PropagationContext, core: &super::Core) -> serde_json::Value {
    let mut dsc = serde_json::Map::new();
    match context.baggage() {
        Some(frozen) => {
            for entry in frozen.split(',') {
                if let Some((key, value)) = entry.trim().strip_prefix("sentry-").and_then(|e| e.split_once('=')) {
                    dsc.insert(key.to_owned(), crate::util::percent_decode(value).into_owned().into());
                }
            }
        }
        None => {
            for (key, value) in own_entries(context, Some(core)) {
                dsc.insert(key.to_owned(), value.into());
            }
        }
    }
    serde_json::Value::Object(dsc)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_rate_this_service_decided_with_is_in_its_sampling_context() {
        let mut context = crate::PropagationContext::new();
        context.set_sampled(true, Some(0.25));
        let entries = super::own_entries(&context, None);
        assert!(entries.contains(&("sample_rate", "0.25".to_owned())), "{entries:?}");
        // Following a caller's decision: the rate is the caller's to say.
        context.set_sampled(true, None);
        assert!(super::own_entries(&context, None).iter().all(|(k, _)| *k != "sample_rate"));
    }
}
