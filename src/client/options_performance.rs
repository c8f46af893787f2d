//! The options of performance and release health: sampling (`traces_sample_rate`,
//! `traces_sampler`), transaction names, `before_send_transaction` and
//! `trace_ignore_status_codes`, sessions; trace propagation targets and continuation.

use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::Options;
use crate::event::Transaction;

/// What [`Options::traces_sampler`] decides a request's sampling from.
#[derive(Debug, Clone, Copy)]
#[non_exhaustive]
pub struct SamplingContext<'a> {
    /// The transaction name: the route template (`/orders/{id}`), else the path.
    pub transaction: &'a str,
    /// The request method.
    pub method: &'a http::Method,
    /// The caller's decision, from the incoming `sentry-trace` / `traceparent`.
    pub parent_sampled: Option<bool>,
}

/// How requests' transactions are named (see [`Options::transaction_style`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum TransactionStyle {
    /// The route template: `/users/{id}` (sentry-python's `url` style).
    #[default]
    Route,
    /// The method and the route template: `GET /users/{id}` (sentry-tower, sentry-actix).
    MethodAndRoute,
}

/// The status codes `IsolationLayer::capture_server_errors()` captures a response for, one
/// bit per code below 640 (set by `init`; 500–599 until then).
static FAILED: [AtomicU64; 10] = {
    let mut bits = [const { AtomicU64::new(0) }; 10];
    bits[7] = AtomicU64::new(u64::MAX << 52); // 500..=511
    bits[8] = AtomicU64::new(u64::MAX); // 512..=575
    bits[9] = AtomicU64::new(u64::MAX >> 40); // 576..=599
    bits
};

/// Whether a response with `status` is a failed request to capture (see
/// [`Options::failed_request_status_codes`]).
pub(crate) fn is_failed_status(status: u16) -> bool {
    let (word, bit) = (usize::from(status / 64), status % 64);
    FAILED.get(word).is_some_and(|w| w.load(Ordering::Relaxed) & (1 << bit) != 0)
}

/// Installs the codes (`init`).
pub(crate) fn set_failed_status_codes(codes: &[RangeInclusive<u16>]) {
    for (word, cell) in FAILED.iter().enumerate() {
        let mut bits = 0u64;
        for bit in 0..64u16 {
            let code = word as u16 * 64 + bit;
            if codes.iter().any(|r| r.contains(&code)) {
                bits |= 1 << bit;
            }
        }
        cell.store(bits, Ordering::Relaxed);
    }
}

impl Options {
    /// The response status codes a layer with
    /// [`capture_server_errors()`](crate::IsolationLayer::capture_server_errors) captures an
    /// event for (default `500..=599`, as sentry-python's `failed_request_status_codes`). Set
    /// process-wide by `init`.
    ///
    /// ```
    /// // 5xx, and 429 (a client being throttled is worth knowing about here).
    /// let options = isoscope::Options::new().failed_request_status_codes([500..=599, 429..=429]);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn failed_request_status_codes(mut self, codes: impl IntoIterator<Item = RangeInclusive<u16>>) -> Self {
        self.failed_request_status_codes = codes.into_iter().collect();
        self
    }

    /// Response status codes whose requests send no transaction (default none, as
    /// sentry-python's `trace_ignore_status_codes`): 404 scans and redirects kept out of
    /// performance data. Dropped transactions are counted as discarded by an event processor
    /// (`stats().items(..)`, client reports), with their spans. To keep a *route* out (a health
    /// check), return 0.0 for it from [`traces_sampler`](Self::traces_sampler): then nothing is
    /// recorded at all.
    ///
    /// ```
    /// let options = isoscope::Options::new().traces_sample_rate(1.0).trace_ignore_status_codes([404..=404, 301..=308]);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn trace_ignore_status_codes(mut self, codes: impl IntoIterator<Item = RangeInclusive<u16>>) -> Self {
        self.trace_ignore_status_codes = codes.into_iter().collect();
        self
    }

    /// Called with every transaction (a sampled request's, with its request data, tags and
    /// spans) before it is sent; return `None` to drop it (counted as discarded by
    /// `before_send` in `stats().items(..)` and the client reports), or edit it — a health
    /// check's transactions kept out, a span's description shortened. It runs where the
    /// request ends, outside every isoscope lock.
    ///
    /// ```
    /// let options = isoscope::Options::new()
    ///     .traces_sample_rate(1.0)
    ///     .before_send_transaction(|tx| (tx.name != "/health").then_some(tx));
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn before_send_transaction<F>(mut self, f: F) -> Self
    where
        F: Fn(Transaction) -> Option<Transaction> + Send + Sync + 'static,
    {
        self.before_send_transaction = Some(Arc::new(f));
        self
    }

    /// Release health in request mode (default `true`, as sentry-python's
    /// `auto_session_tracking`): every request `IsolationLayer` serves is a session — `crashed`
    /// when its handler panicked, `abnormal` when it was cancelled before its response ended,
    /// `errored` when an error event (an exception: `capture_error`, a captured `Err`, never
    /// `capture_message`) was captured in it, else `exited` (a 5xx without a captured error
    /// too). The HTTP transport sends them aggregated per minute as a `sessions` item (with the
    /// next envelope once a minute, after 10 s idle, at flush and shutdown), so Sentry shows
    /// crash-free sessions per release. Sessions need a release (`Options::release` or
    /// `SENTRY_RELEASE`): without one nothing is counted. Set process-wide by `init`.
    ///
    /// ```
    /// let options = isoscope::Options::new().auto_session_tracking(false);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn auto_session_tracking(mut self, on: bool) -> Self {
        self.auto_session_tracking = on;
        self
    }

    /// How a request's transaction is named when nothing set a name (events' `transaction`
    /// and the performance transaction): the route template, `/users/{id}` (the default, as
    /// sentry-python's `transaction_style="url"`), or with the method first, `GET /users/{id}`
    /// (as sentry-tower and sentry-actix name it: choose it when migrating from them, so
    /// dashboards and alerts keyed on names keep working). Set process-wide by `init`.
    ///
    /// ```
    /// let options = isoscope::Options::new().transaction_style(isoscope::TransactionStyle::MethodAndRoute);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn transaction_style(mut self, style: TransactionStyle) -> Self {
        self.transaction_style = style;
        self
    }

    /// Turns tracing on: the fraction of the requests that start a trace here which send a
    /// performance transaction, from 0.0 to 1.0. A request whose caller sent a sampling
    /// decision (`sentry-trace` `-1`/`-0`, `traceparent` flags) follows it — also at 0.0, as in
    /// sentry-rust and sentry-python: `traces_sample_rate(0.0)` starts no trace of its own but
    /// keeps a distributed trace whole. Unset (the default), tracing is off: no transactions,
    /// and nothing of them on the request path. Process-wide: the client
    /// [`init`](super::init) started decides.
    ///
    /// ```
    /// let transport = isoscope::MemoryTransport::new();
    /// let _guard = isoscope::init(isoscope::Options::new().traces_sample_rate(1.0).transport(transport.clone())).unwrap();
    /// ```
    #[must_use]
    pub fn traces_sample_rate(mut self, rate: f64) -> Self {
        self.traces_sample_rate = Some(rate);
        self
    }

    /// Decides each request's sample rate (0.0 to 1.0; out of range counts as 0) from its
    /// [`SamplingContext`]; wins over `traces_sample_rate` and over the caller's decision
    /// (which it is given). Called at the start of every request: keep it cheap.
    ///
    /// ```
    /// let options = isoscope::Options::new().traces_sampler(|ctx| match ctx.transaction {
    ///     "/health" => 0.0,
    ///     _ => ctx.parent_sampled.map_or(0.1, |s| if s { 1.0 } else { 0.0 }),
    /// });
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn traces_sampler<F>(mut self, sampler: F) -> Self
    where
        F: Fn(&SamplingContext<'_>) -> f64 + Send + Sync + 'static,
    {
        self.traces_sampler = Some(Arc::new(sampler));
        self
    }

    /// The outgoing calls that get trace headers: a URL gets them if it contains one of
    /// `targets` (plain substrings, as Sentry's JavaScript SDK matches strings: no regular
    /// expressions). Unset (the default), every call does, as in Sentry's SDKs; an empty list,
    /// none. It decides for [`send_traced`](crate::integrations::reqwest::TraceRequest) and
    /// [`trace_headers_for`](crate::trace_headers_for); a call made outside them
    /// ([`trace_headers`](crate::trace_headers)) is the caller's to decide. Keep third
    /// parties from learning your trace ids and release.
    ///
    /// ```
    /// let options = isoscope::Options::new().trace_propagation_targets(["://api.internal/", "://payments.example.com/"]);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn trace_propagation_targets<S: Into<String>>(mut self, targets: impl IntoIterator<Item = S>) -> Self {
        self.trace_propagation_targets = Some(targets.into_iter().map(Into::into).collect());
        self
    }

    /// Continue an incoming trace only if it comes from this service's Sentry organization
    /// for sure (default `false`, as sentry-python and sentry-rust 0.49). The organization is
    /// the caller's baggage `sentry-org_id` against [`org_id`](Self::org_id) (or the DSN's,
    /// `o{id}.ingest.sentry.io`). A trace whose org id differs is never continued; with this
    /// on, neither is one whose org id is unknown on one side. Not continued, a request starts
    /// a trace of its own (its caller's sampling decision and baggage are not used). Set
    /// process-wide by `init`.
    ///
    /// ```
    /// let options = isoscope::Options::new().org_id(1234).strict_trace_continuation(true);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn strict_trace_continuation(mut self, strict: bool) -> Self {
        self.strict_trace_continuation = strict;
        self
    }

    /// This service's Sentry organization id, for trace continuation (see
    /// [`strict_trace_continuation`](Self::strict_trace_continuation)) and the `sentry-org_id`
    /// of the traces it starts. Default: the DSN's (`o{id}.ingest.sentry.io`), else none.
    ///
    /// ```
    /// let options = isoscope::Options::new().org_id(1234);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn org_id(mut self, id: u64) -> Self {
        self.org_id = Some(id);
        self
    }
}
