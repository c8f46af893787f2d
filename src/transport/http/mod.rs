//! [`HttpTransport`]: envelopes to a Sentry-compatible server over HTTP(S), from a background
//! thread with its own small tokio runtime.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};

mod deliver;

use deliver::{run, Job, Shared};

use super::address::is_loopback;
use super::client_reports::Reports;
use super::ratelimit::RateLimits;
use super::worker::{Budget, Pending, Verdict};
use super::{CpuPriority, Transport};
use crate::debug::{self, Problem};
use crate::dsn::{Dsn, DsnOrigin};
use crate::event::Envelope;
use crate::outcome::{DiscardReason, Recorder};

/// Settings for an [`HttpTransport`]; start with [`HttpTransport::builder`].
#[derive(Clone)]
#[must_use]
pub struct HttpTransportBuilder {
    dsn: Dsn,
    queue_size: usize,
    concurrency: usize,
    connect_timeout: Duration,
    timeout: Duration,
    max_retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    compression: bool,
    priority: CpuPriority,
    max_queue_bytes: usize,
}

impl fmt::Debug for HttpTransportBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransportBuilder")
            .field("dsn", &self.dsn)
            .field("queue_size", &self.queue_size)
            .field("concurrency", &self.concurrency)
            .field("connect_timeout", &self.connect_timeout)
            .field("timeout", &self.timeout)
            .field("max_retries", &self.max_retries)
            .field("backoff", &self.backoff)
            .field("max_backoff", &self.max_backoff)
            .field("compression", &self.compression)
            .field("priority", &self.priority)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .finish()
    }
}

impl HttpTransportBuilder {
    /// Envelopes waiting to be sent or in flight, at most; more are dropped (and counted as
    /// `queue_overflow`). Default 10,000: the bound that matters is
    /// [`max_queue_bytes`](Self::max_queue_bytes).
    pub fn queue_size(mut self, n: usize) -> Self {
        self.queue_size = n.max(1);
        self
    }

    /// The memory the envelopes waiting or in flight may hold, by their
    /// [`estimated_size`](Envelope::estimated_size); more are dropped (and counted as
    /// `queue_overflow`). Default 8 MiB: about 1,700 request errors with 10 breadcrumbs each
    /// (4.9 KB apiece by the estimate; 5.1 KB of heap measured, `benches/compare --bin memory
    /// -- --queue`), and a server that cannot be reached costs at most that much.
    /// One envelope always fits an empty queue, whatever its size.
    ///
    /// ```
    /// let transport = isoscope::HttpTransport::builder("http://key@127.0.0.1:9/1")?.max_queue_bytes(32 << 20).build()?;
    /// # drop(transport);
    /// # Ok::<(), isoscope::Error>(())
    /// ```
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// Requests in flight at once. Default 8.
    pub fn concurrency(mut self, n: usize) -> Self {
        self.concurrency = n.max(1);
        self
    }

    /// Time allowed to connect. Default 5 s.
    pub fn connect_timeout(mut self, t: Duration) -> Self {
        self.connect_timeout = t;
        self
    }

    /// Time allowed for a whole request, answer included. Default 30 s.
    pub fn timeout(mut self, t: Duration) -> Self {
        self.timeout = t;
        self
    }

    /// Retries after a connection failure, a timeout or a 5xx answer. Default 3.
    pub fn max_retries(mut self, n: u32) -> Self {
        self.max_retries = n;
        self
    }

    /// First retry delay, doubled per retry up to `max`. Default 200 ms up to 5 s.
    pub fn backoff(mut self, first: Duration, max: Duration) -> Self {
        self.backoff = first;
        self.max_backoff = max.max(first);
        self
    }

    /// Gzip-compress envelope bodies above 1 KiB (`Content-Encoding: gzip`, which Sentry,
    /// Relay, GlitchTip and Bugsink accept). Default `true`; compression runs on the
    /// transport's thread.
    ///
    /// ```
    /// let transport = isoscope::HttpTransport::builder("http://key@127.0.0.1:9/1")?.compression(false).build()?;
    /// # drop(transport);
    /// # Ok::<(), isoscope::Error>(())
    /// ```
    pub fn compression(mut self, on: bool) -> Self {
        self.compression = on;
        self
    }

    /// The background thread's CPU priority (default [`CpuPriority::Reduced`], nice 10): how
    /// much of a saturated CPU it may take from requests to deliver events.
    pub fn cpu_priority(mut self, priority: CpuPriority) -> Self {
        self.priority = priority;
        self
    }

    /// `true`: [`CpuPriority::Lowest`]; `false`: [`CpuPriority::Normal`].
    #[deprecated(since = "0.2.0", note = "use `cpu_priority(CpuPriority::Lowest)` or `CpuPriority::Normal`")]
    pub fn low_priority(self, on: bool) -> Self {
        self.cpu_priority(if on { CpuPriority::Lowest } else { CpuPriority::Normal })
    }

    /// Starts the background thread.
    pub fn build(self) -> Result<HttpTransport, crate::Error> {
        self.build_for(None)
    }

    /// Starts the background thread of a transport that reports `recorder`'s discards (the
    /// client's; else it learns it from the first envelope).
    pub(crate) fn build_for(self, recorder: Option<Arc<Recorder>>) -> Result<HttpTransport, crate::Error> {
        let transport_err = |e: &dyn fmt::Display| crate::Error::Transport(e.to_string());
        // The DSN parser checked that its envelope URL parses, and that its key and secret are
        // valid in a header: these errors are unreachable, and never quote the key.
        let url = reqwest::Url::parse(&self.dsn.envelope_url())
            .map_err(|e| transport_err(&format_args!("the envelope URL for {} does not parse: {e}", self.dsn)))?;
        let mut auth = reqwest::header::HeaderValue::try_from(self.dsn.auth_header())
            .map_err(|_| transport_err(&format_args!("the key of {} is not valid in a header", self.dsn)))?;
        auth.set_sensitive(true);
        let mut client = reqwest::Client::builder()
            // Only the DSN's server may see the key and the envelope: a redirect is an answer
            // like any other (a rejection), never followed.
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(concat!("isoscope/", env!("CARGO_PKG_VERSION")));
        if is_loopback(self.dsn.host()) {
            client = client.no_proxy(); // a proxy can never reach our own machine's server
        }
        let client = client.build().map_err(|e| transport_err(&e))?;
        let (tx, rx) = mpsc::channel(self.queue_size);
        let shared = Arc::new(Shared {
            url,
            auth,
            public_dsn: self.dsn.public_dsn(),
            client,
            limits: Mutex::new(RateLimits::default()),
            pending: Pending::default(),
            reports: Reports::new(recorder),
            budget: Budget::new(self.max_queue_bytes),
            settings: self,
        });
        let worker = shared.clone();
        let priority = shared.settings.priority;
        let (closed, closed_rx) = watch::channel(false);
        // The runtime is built, run and dropped on its own thread only: dropping a runtime where
        // the caller's (async) code runs would panic.
        let (started, start) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("isoscope-http".into())
            .spawn(move || {
                super::worker::mark_worker_thread();
                priority.apply();
                match tokio::runtime::Builder::new_current_thread().enable_all().build() {
                    Ok(runtime) => {
                        let _ = started.send(Ok(()));
                        runtime.block_on(run(rx, worker, closed_rx));
                    }
                    Err(e) => drop(started.send(Err(transport_err(&e)))),
                }
            })
            .map_err(|e| transport_err(&e))?;
        start.recv().unwrap_or_else(|_| Err(transport_err(&"the transport's thread ended at its start")))?;
        Ok(HttpTransport { shared, tx: Mutex::new(Some(tx)), closed })
    }
}

/// Sends envelopes to the DSN's server, never blocking the caller.
///
/// - `send` only enqueues into a queue bounded by memory (default 8 MiB of envelopes,
///   [`max_queue_bytes`](HttpTransportBuilder::max_queue_bytes)); when it is full the event is
///   dropped and counted (`queue_overflow`, `stats().events_dropped_queue_full`).
/// - A background thread with its own current-thread tokio runtime delivers them (default 8 at
///   a time), so it works from sync code, from any runtime and during shutdown. It finishes
///   each event there (merging the scopes in, scrubbing, size limits, serialization, gzip), at
///   a reduced CPU priority ([`cpu_priority`](HttpTransportBuilder::cpu_priority)).
/// - It honours `X-Sentry-Rate-Limits` on every answer (float seconds, per category, the longer
///   limit kept, unknown categories ignored) and `429` with or without `Retry-After`; while
///   limited, events are dropped locally without a request (`events_dropped_rate_limited`).
/// - Connection failures, timeouts and 5xx answers are retried with capped exponential backoff
///   (`events_retried`), then dropped (`events_dropped_network`); other 4xx answers are dropped
///   as rejected (`events_dropped_rejected`). Delivered events count in `events_sent`.
/// - [`flush`](Transport::flush) returns `true` only when every event sent since the last
///   flush was accepted by the server — `false` if any was dropped (queue full, rate limited,
///   network, rejected, a redirect) or is still pending at the timeout — and really returns by
///   then, even while a request hangs.
///
/// `init` builds one from the DSN; build one yourself to change its settings:
///
/// ```
/// use std::time::Duration;
/// let transport = isoscope::HttpTransport::builder("http://key@127.0.0.1:9/1")?
///     .max_queue_bytes(16 << 20)
///     .timeout(Duration::from_secs(5))
///     .max_retries(2)
///     .build()?;
/// let _guard = isoscope::init(isoscope::Options::new().transport(transport))?;
/// # Ok::<(), isoscope::Error>(())
/// ```
pub struct HttpTransport {
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    /// Set at shutdown: the worker stops taking envelopes and ends its runtime.
    closed: watch::Sender<bool>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport").field("url", &self.shared.url.as_str()).finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// Settings for a transport to `dsn`, with the defaults described on the setters.
    pub fn builder(dsn: &str) -> Result<HttpTransportBuilder, crate::Error> {
        let dsn: Dsn = dsn.parse().map_err(|e: crate::dsn::DsnError| e.with_origin(DsnOrigin::TransportBuilder))?;
        Ok(Self::for_dsn(dsn))
    }

    /// Settings for a transport to a parsed DSN.
    pub(crate) fn for_dsn(dsn: Dsn) -> HttpTransportBuilder {
        HttpTransportBuilder {
            dsn,
            queue_size: 10_000,
            max_queue_bytes: 8 << 20,
            concurrency: 8,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_retries: 3,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            compression: true,
            priority: CpuPriority::Reduced,
        }
    }
}

impl HttpTransport {
    /// Queues a client report of what waits, if anything does (at flush and shutdown): an
    /// empty envelope the report rides on (`deliver`), its counts put back if it fails.
    fn queue_report(&self) {
        if !self.shared.reports.waiting() {
            return;
        }
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(tx) = tx.as_ref().filter(|_| self.shared.pending.add(None)) {
            if tx.try_send((Envelope::new(), None, 0)).is_err() {
                self.shared.pending.finish(None, Verdict::Delivered); // not queued: not a loss
            }
        }
    }
}

impl Transport for HttpTransport {
    fn send(&self, mut envelope: Envelope) {
        let pending = &self.shared.pending;
        let delivery = envelope.take_delivery();
        self.shared.reports.learn(delivery.as_ref());
        let delivery = Some(delivery.unwrap_or_else(|| self.shared.reports.adopt(&mut envelope)));
        if self.shared.all_limited(envelope.item_types()) {
            pending.refuse(delivery, Some(DiscardReason::RatelimitBackoff));
            return;
        }
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = tx.as_ref().filter(|_| pending.add(delivery.as_ref())) else {
            pending.refuse(delivery, None); // sent after shutdown
            return;
        };
        let bytes = envelope.estimated_size();
        if !self.shared.budget.take(bytes) {
            pending.undo(delivery, DiscardReason::QueueOverflow);
            debug::once(Problem::QueueFull);
            return;
        }
        if let Err(refused) = tx.try_send((envelope, delivery, bytes)) {
            let (_, delivery, bytes) = refused.into_inner();
            self.shared.budget.give_back(bytes);
            pending.undo(delivery, DiscardReason::QueueOverflow);
            debug::once(Problem::QueueFull);
        }
    }

    /// `false` while the queue is full — its bytes or its count — (after shutdown, `send`
    /// counts the drop itself). The capture asks right before it builds an event, and counts
    /// the event it then does not build.
    fn has_room(&self) -> bool {
        self.shared.budget.has_room()
            && self.tx.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_none_or(|tx| tx.capacity() > 0)
    }

    /// Waits until everything queued was answered, then sends a client report of what waits
    /// for one, until `timeout` passes; `true` only if every envelope sent since the last flush
    /// was accepted by the server (none dropped, rejected, rate limited or still pending).
    fn flush(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        self.shared.pending.wait_zero(timeout);
        self.queue_report();
        self.shared.pending.flush(deadline.saturating_duration_since(Instant::now()))
    }

    /// Waits for what was accepted until `timeout`; then counts what is still queued or in
    /// flight as dropped at shutdown, stops the worker (cancelling deliveries in flight) and
    /// refuses further events (counted likewise).
    fn shutdown(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        self.shared.pending.close();
        let _ = self.closed.send(true);
        self.tx.lock().unwrap_or_else(PoisonError::into_inner).take();
        flushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_only_idna_rejects_is_an_invalid_dsn() {
        // Past the DSN parser's character check: only the URL parser's IDNA step rejects it.
        let err = HttpTransport::builder("https://key@xn--/1").and_then(HttpTransportBuilder::build).unwrap_err();
        assert!(matches!(err, crate::Error::InvalidDsn(_)), "{err}");
        assert!(err.to_string().contains("the host `xn--` is not a valid URL host"), "{err}");
        assert!(err.to_string().contains("(the DSN came from HttpTransport::builder)"), "{err}");
    }

    #[test]
    fn backoff_doubles_and_is_capped() {
        let b = HttpTransport::builder("http://k@127.0.0.1:9/1")
            .unwrap()
            .backoff(Duration::from_millis(100), Duration::from_millis(350))
            .build()
            .unwrap();
        let s = &b.shared;
        assert_eq!(s.backoff(1), Duration::from_millis(100));
        assert_eq!(s.backoff(2), Duration::from_millis(200));
        assert_eq!(s.backoff(3), Duration::from_millis(350));
        assert_eq!(s.backoff(40), Duration::from_millis(350));
    }
}
