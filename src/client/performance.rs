//! Performance transactions: the sampling decision at a request's start, the `transaction`
//! event at its end, and [`start_span`] / [`SpanGuard`] for child spans.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use super::client;
use super::options::SamplingContext;
use crate::bind::{self, ScopeHandle};
use std::collections::BTreeMap;

use crate::event::scrub::{self, Scrubber};
use crate::event::{Deferred, DeferredParts, Envelope, EventId, Sdk, Span, SpanStatus, Transaction};
use crate::outcome::{DataCategory, DiscardReason};
use crate::scope::{Recorder, RequestInfo, Scope};
use crate::trace::{PropagationContext, SpanId};

/// Whether the client in force may sample requests (`traces_sample_rate` > 0 or a sampler):
/// one relaxed load per request when it does not.
static TRACING: AtomicBool = AtomicBool::new(false);

pub(super) fn set_tracing(options: &super::Options) {
    TRACING.store(options.traces_sample_rate.is_some() || options.traces_sampler.is_some(), Ordering::Relaxed);
}

/// Decides whether the request is sampled (only called when tracing is on), and records the
/// decision on its info.
#[inline]
pub(crate) fn sample_request(info: &mut RequestInfo) {
    if !TRACING.load(Ordering::Relaxed) {
        return;
    }
    sample_request_slow(info);
}

#[cold]
#[inline(never)]
fn sample_request_slow(info: &mut RequestInfo) {
    let Some(core) = client() else { return };
    let options = &core.options;
    let parent_sampled = info.trace().sampled();
    // The rate, and whether this service chose it (then it goes in the sampling context).
    let (rate, own) = match &options.traces_sampler {
        Some(sampler) => {
            let ctx = SamplingContext { transaction: info.transaction(), method: info.method(), parent_sampled };
            let rate = sampler(&ctx);
            (if (0.0..=1.0).contains(&rate) { rate } else { 0.0 }, true)
        }
        None => match parent_sampled {
            Some(true) => (1.0, false),
            Some(false) => (0.0, false),
            None => (options.traces_sample_rate.unwrap_or(0.0), true),
        },
    };
    let sampled = rate >= 1.0 || (rate > 0.0 && crate::util::random_f64() < rate);
    if !sampled {
        // A transaction (and its span) sampling left out: captured, and discarded for it.
        let items = [(DataCategory::Transaction, 1), (DataCategory::Span, 1)];
        core.recorder.dropped_unsent(&items, DiscardReason::SampleRate);
    }
    info.set_sampled(sampled, own.then_some(rate));
}

/// Sends the transaction of a sampled request that ended, once (later calls are no-ops, as
/// are calls for other requests). `status` `ok` means "as the response's status code says";
/// `internal_error` and `cancelled` override it.
#[inline]
pub(crate) fn finish_transaction(handle: &ScopeHandle, status: SpanStatus) {
    if TRACING.load(Ordering::Relaxed) {
        finish_transaction_slow(handle, status);
    }
}

#[cold]
#[inline(never)]
fn finish_transaction_slow(handle: &ScopeHandle, status: SpanStatus) {
    let scope = handle.snapshot();
    let Some(request) = scope.request() else { return };
    let Some((start, end, spans)) = request.recorder().and_then(|r| r.finish()) else { return };
    let Some(core) = super::capture::client_for(None, &scope) else { return };
    let status_code = handle.response_status();
    let status = match (status, status_code) {
        (SpanStatus::Ok, Some(code)) => SpanStatus::from_http(code),
        (status, _) => status,
    };
    if status_code.is_some_and(|code| core.options.trace_ignore_status_codes.iter().any(|r| r.contains(&code))) {
        // `trace_ignore_status_codes` (health checks, 404 scans): the transaction and its spans.
        let items = [(DataCategory::Transaction, 1), (DataCategory::Span, spans.len() as u64 + 1)];
        core.recorder.dropped_unsent(&items, DiscardReason::EventProcessor);
        return;
    }
    let trace = request.trace();
    let transaction = Transaction {
        event_id: EventId::new(),
        // The name the scope has when the request ends (`set_transaction` renames it), as its
        // events say; else the route.
        name: scope.transaction_name().unwrap_or_else(|| request.transaction().to_owned()),
        op: "http.server".to_owned(),
        trace_id: trace.trace_id(),
        span_id: trace.span_id(),
        parent_span_id: trace.parent_span_id(),
        status,
        start_timestamp: start,
        timestamp: end,
        request: None,
        status_code,
        spans,
        tags: BTreeMap::new(),
        release: core.options.release.as_deref().map(str::to_owned),
        environment: core.options.environment.as_deref().map(str::to_owned),
        server_name: core.options.server_name.as_deref().map(str::to_owned),
        sdk: Sdk::default(),
        // The request data and tags are built on the transport's thread, from this snapshot.
        deferred: Deferred::new(FromScope {
            scope: scope.clone(),
            scrubber: (!core.options.send_default_pii).then(|| core.options.scrubber.clone()),
        }),
    };
    let transaction = match &core.options.before_send_transaction {
        None => transaction,
        Some(hook) => {
            let mut transaction = transaction;
            transaction.resolve(); // the hook sees the request data and tags
            let items = [(DataCategory::Transaction, 1), (DataCategory::Span, transaction.spans.len() as u64 + 1)];
            let Some(kept) = hook(transaction) else {
                core.recorder.dropped_unsent(&items, DiscardReason::BeforeSend);
                return;
            };
            kept
        }
    };
    let dsc = super::trace_headers::dynamic_sampling_context(trace, &core);
    let envelope = Envelope::from_transaction(transaction).with_trace_header(dsc).accounted(core.recorder.clone());
    core.transport.send(envelope);
}

/// A transaction's request data and tags, from the snapshot of its request's scope, scrubbed
/// by the client's rules (unless `send_default_pii`).
struct FromScope {
    scope: Scope,
    scrubber: Option<Arc<Scrubber>>,
}

impl DeferredParts for FromScope {
    fn request(&self) -> Option<crate::event::Request> {
        let mut request = self.scope.request().map(RequestInfo::event_request)?;
        if let Some(rules) = &self.scrubber {
            scrub::scrub_request(&mut request, rules);
        }
        Some(request)
    }

    fn tags(&self) -> BTreeMap<String, String> {
        let mut tags: BTreeMap<String, String> =
            self.scope.tags().iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        if let Some(request) = self.scope.request() {
            tags.entry("request_id".to_owned()).or_insert_with(|| request.request_id());
        }
        if let Some(rules) = &self.scrubber {
            scrub::scrub_tags(&mut tags, rules);
        }
        tags
    }
}

/// A child span of the active request's transaction, ended (and recorded) when dropped.
/// Outside a sampled request it records nothing and costs a scope lookup.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// async fn load_order(id: u64) -> u64 {
///     let _span = isoscope::start_span("db.query", "SELECT * FROM orders WHERE id = ?");
///     id // the query
/// }
/// load_order(7).await;
/// # }
/// ```
#[must_use = "the span ends when the guard is dropped"]
#[derive(Debug)]
pub struct SpanGuard {
    /// `None` outside a sampled request.
    open: Option<Open>,
}

#[derive(Debug)]
struct Open {
    recorder: Arc<Recorder>,
    /// The request's trace, for the headers of calls made inside this span.
    context: PropagationContext,
    span: Span,
    /// Where `start_span` made this span the open one, and what was open before.
    ambient: Option<(ScopeHandle, Option<(SpanId, SpanId)>)>,
}

/// Starts a child span of the active request's transaction: `op` the kind of operation
/// (`db.query`, `http.client`, `cache.get`), `description` what it did. The span ends when the
/// guard drops; outside a sampled request the guard records nothing.
///
/// The span is the *open span* of the active scope until the guard drops, as in both Sentry
/// SDKs: a span started meanwhile — here, or in work spawned from here with
/// [`spawn`](crate::spawn) — is its child; events captured meanwhile carry its span id (and it
/// is the parent in [`trace_headers`](crate::trace_headers)); when it ends, the span open
/// before it is open again.
///
/// ```
/// let outside = isoscope::start_span("cache.get", "order:7");
/// assert_eq!(outside.span_id(), None, "no sampled request here");
/// ```
///
/// See [`MemoryTransport::transactions`](crate::MemoryTransport::transactions) for a sampled
/// request's spans.
pub fn start_span(op: impl Into<String>, description: impl Into<String>) -> SpanGuard {
    if !TRACING.load(Ordering::Relaxed) {
        return SpanGuard { open: None };
    }
    // No breadcrumbs: a span needs none, and sharing the ring would make the next breadcrumb
    // a copy of it.
    let scope = bind::find(bind::Access::Read).snapshot_without_breadcrumbs();
    let Some(request) = scope.request() else { return SpanGuard { open: None } };
    let Some(recorder) = request.recorder() else { return SpanGuard { open: None } };
    let trace = request.trace();
    let previous = scope.active_span();
    let parent = previous.map_or(trace.span_id(), |(open, _)| open);
    let mut guard = SpanGuard::open(recorder.clone(), trace.clone(), parent, op.into(), description.into());
    if let Some(o) = &mut guard.open {
        let handle = bind::find(bind::Access::Write);
        let mine = (o.span.span_id, parent);
        handle.configure(|s| s.set_active_span(Some(mine)));
        o.ambient = Some((handle, previous));
    }
    guard
}

impl SpanGuard {
    fn open(
        recorder: Arc<Recorder>,
        context: PropagationContext,
        parent: SpanId,
        op: String,
        description: String,
    ) -> Self {
        let span = Span {
            span_id: SpanId::new(),
            parent_span_id: parent,
            trace_id: context.trace_id(),
            op,
            description: (!description.is_empty()).then_some(description),
            start_timestamp: recorder.now(),
            timestamp: 0.0,
            status: None,
        };
        Self { open: Some(Open { recorder, context, span, ambient: None }) }
    }

    /// A span inside this one (it does not become the open span: see [`start_span`]).
    pub fn start_child(&self, op: impl Into<String>, description: impl Into<String>) -> Self {
        match &self.open {
            Some(o) => Self::open(o.recorder.clone(), o.context.clone(), o.span.span_id, op.into(), description.into()),
            None => Self { open: None },
        }
    }

    /// The headers for a call made inside this span: this span is the callee's parent.
    /// Outside a sampled request, [`trace_headers`](crate::trace_headers).
    pub fn trace_headers(&self) -> super::TraceHeaders {
        match (&self.open, crate::trace::otel_span()) {
            // An OpenTelemetry span is active: the callee continues its trace (feature
            // `opentelemetry`).
            (_, Some(otel)) => super::trace_headers::headers_for(&otel.to_propagation()),
            (Some(o), None) => super::trace_headers::headers_for(&o.context.with_span(o.span.span_id)),
            (None, None) => crate::trace_headers(),
        }
    }

    /// Sets the span's status.
    ///
    /// ```
    /// let mut span = isoscope::start_span("cache.get", "GET user:7");
    /// span.set_status(isoscope::SpanStatus::NotFound);
    /// ```
    pub fn set_status(&mut self, status: SpanStatus) {
        if let Some(o) = &mut self.open {
            o.span.status = Some(status);
        }
    }

    /// The span's id, if it is recorded (inside a sampled request).
    pub fn span_id(&self) -> Option<SpanId> {
        self.open.as_ref().map(|o| o.span.span_id)
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        if let Some(mut o) = self.open.take() {
            if let Some((handle, previous)) = o.ambient.take() {
                let mine = Some((o.span.span_id, o.span.parent_span_id));
                // Unless a span started later is still open there (guards dropped out of order).
                handle.configure(|s| {
                    if s.active_span() == mine {
                        s.set_active_span(previous);
                    }
                });
            }
            o.span.timestamp = o.recorder.now();
            o.recorder.record(o.span);
        }
    }
}
