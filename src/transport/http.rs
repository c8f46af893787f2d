//! [`HttpTransport`]: envelopes to a Sentry-compatible server over HTTP(S), from a background
//! thread with its own small tokio runtime.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, watch, Semaphore};

use super::address::{is_loopback, redirect_target};
use super::ratelimit::RateLimits;
use super::worker::Pending;
use super::Transport;
use crate::debug::{self, Problem};
use crate::dsn::{Dsn, DsnOrigin};
use crate::event::{Envelope, FinishedEnvelope, ItemType};
use crate::stats::{incr, Counter, COUNTERS};

/// Most bytes of a rejection's answer shown in the debug output.
const SAID: usize = 512;
/// Most bytes of a response body read (to reuse the connection); the rest is ignored.
const MAX_RESPONSE_BODY: usize = 64 * 1024;
/// Bodies larger than this are gzip-compressed (smaller ones gain less than the header costs).
pub(crate) const GZIP_ABOVE: usize = 1024;

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
    low_priority: bool,
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
            .field("low_priority", &self.low_priority)
            .finish()
    }
}

impl HttpTransportBuilder {
    /// Events waiting to be sent; more are dropped (and counted). Default 100.
    pub fn queue_size(mut self, n: usize) -> Self {
        self.queue_size = n.max(1);
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

    /// Whether the background thread runs at the lowest CPU priority (nice 19). Default on: it
    /// then uses the CPU time request handling leaves, so that in an error storm that saturates
    /// the CPU requests keep it, and what the transport cannot deliver is dropped at the full
    /// queue and counted (`stats().events_dropped_queue_full`) instead of slowing every request.
    /// With CPU to spare, it delivers as fast either way. It is never starved: Linux's scheduler
    /// gives a nice-19 thread a weight of 15 against 1024 for each busy thread at the default
    /// priority, about 1.5 % of a CPU shared with one.
    ///
    /// Off: it competes for the CPU on equal terms with the threads serving requests, and
    /// delivers more of a storm at the requests' expense. README's performance section gives
    /// the measured trade-off (`benches/compare --bin http` and `--bin delivery`).
    ///
    /// ```
    /// let transport = isoscope::HttpTransport::builder("http://key@127.0.0.1:9/1")?.low_priority(false).build()?;
    /// # drop(transport);
    /// # Ok::<(), isoscope::Error>(())
    /// ```
    pub fn low_priority(mut self, on: bool) -> Self {
        self.low_priority = on;
        self
    }

    /// Starts the background thread.
    pub fn build(self) -> Result<HttpTransport, crate::Error> {
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
            settings: self,
        });
        let worker = shared.clone();
        let low_priority = shared.settings.low_priority;
        let (closed, closed_rx) = watch::channel(false);
        // The runtime is built, run and dropped on its own thread only: dropping a runtime where
        // the caller's (async) code runs would panic.
        let (started, start) = std::sync::mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("isoscope-http".into())
            .spawn(move || {
                super::worker::mark_worker_thread();
                if low_priority {
                    super::worker::lower_priority();
                }
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
/// - `send` only enqueues into a bounded queue (default 100); when it is full the event is
///   dropped and counted in `stats().events_dropped_queue_full`.
/// - A background thread with its own current-thread tokio runtime delivers them (default 8 at
///   a time), so it works from sync code, from any runtime and during shutdown. It finishes
///   each event there (merging the scopes in, scrubbing, size limits, serialization, gzip), at
///   the lowest CPU priority ([`low_priority`](HttpTransportBuilder::low_priority)).
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
///     .queue_size(500)
///     .timeout(Duration::from_secs(5))
///     .max_retries(2)
///     .build()?;
/// let _guard = isoscope::init(isoscope::Options::new().transport(transport))?;
/// # Ok::<(), isoscope::Error>(())
/// ```
pub struct HttpTransport {
    shared: Arc<Shared>,
    tx: Mutex<Option<mpsc::Sender<Envelope>>>,
    /// Set at shutdown: the worker stops taking envelopes and ends its runtime.
    closed: watch::Sender<bool>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport").field("url", &self.shared.url.as_str()).finish_non_exhaustive()
    }
}

struct Shared {
    /// Parsed once: reqwest would parse a `&str` (IDNA and all) on every request.
    url: reqwest::Url,
    auth: reqwest::header::HeaderValue,
    public_dsn: String,
    client: reqwest::Client,
    limits: Mutex<RateLimits>,
    pending: Pending,
    settings: HttpTransportBuilder,
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
            queue_size: 100,
            concurrency: 8,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_retries: 3,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
            compression: true,
            low_priority: true,
        }
    }
}

impl Shared {
    /// One attempt's body: the header line stamped now, the items, gzipped above
    /// [`GZIP_ABOVE`] (whether it is, second).
    fn body(&self, envelope: &FinishedEnvelope, items: &[u8]) -> (Bytes, bool) {
        let mut body = envelope.header_line(Some(&self.public_dsn), crate::util::now_f64());
        body.extend_from_slice(items);
        if self.settings.compression && body.len() > GZIP_ABOVE {
            if let Some(gzipped) = super::gzip::gzip(&body) {
                return (Bytes::from(gzipped), true);
            }
        }
        (Bytes::from(body), false)
    }

    /// Whether every item of kinds `types` is rate limited now.
    fn all_limited(&self, types: impl Iterator<Item = ItemType>) -> bool {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner).all_limited(types, Instant::now())
    }

    /// Drops the items that are rate limited now; whether the envelope is still worth sending.
    fn drop_limited(&self, envelope: &mut FinishedEnvelope) -> bool {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner).drop_limited(envelope, Instant::now())
    }

    fn backoff(&self, retry: u32) -> Duration {
        let s = &self.settings;
        s.backoff.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1))).min(s.max_backoff)
    }

    /// Delivers one envelope (with retries) and says how it ended: the counter to count.
    async fn deliver(&self, envelope: Envelope) -> &'static Counter {
        // The capture's deferred work (merge, scrub, limits), here on the transport's thread.
        let mut envelope = envelope.finish();
        let mut items = Vec::new();
        let mut retries = 0;
        loop {
            let kept = envelope.items().len();
            if !self.drop_limited(&mut envelope) {
                return &COUNTERS.events_dropped_rate_limited;
            }
            if envelope.items().len() != kept {
                // Items left out for a rate limit are lost: the next flush says so.
                self.pending.lose();
            }
            if items.is_empty() || envelope.items().len() != kept {
                items = envelope.items_bytes();
            }
            // Each attempt says when it was sent.
            let (body, gzipped) = self.body(&envelope, &items);
            let mut request = self
                .client
                .post(self.url.clone())
                .header("x-sentry-auth", self.auth.clone())
                .header("content-type", "application/x-sentry-envelope");
            if gzipped {
                request = request.header("content-encoding", "gzip");
            }
            let answer = request.body(body).send().await;
            let failure = match answer {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
                    self.limits.lock().unwrap_or_else(PoisonError::into_inner).update(
                        status,
                        header("x-sentry-rate-limits"),
                        header("retry-after"),
                        Instant::now(),
                    );
                    // Read (a bounded part of) the answer so the connection can be reused; its
                    // start is what the debug output shows of a rejection.
                    let mut read = 0;
                    // Kept only for the debug output (nothing copied when it is off).
                    let keep = if debug::enabled() { SAID } else { 0 };
                    let mut said = Vec::new();
                    while let Ok(Some(chunk)) = response.chunk().await {
                        said.extend_from_slice(&chunk[..chunk.len().min(keep.saturating_sub(said.len()))]);
                        read += chunk.len();
                        if read > MAX_RESPONSE_BODY {
                            break;
                        }
                    }
                    match status {
                        200..=299 => return &COUNTERS.events_sent,
                        429 => {
                            debug::problem(Problem::RateLimited, || {
                                format!("{} answered 429: rate limited, events are dropped until it ends", self.url)
                            });
                            return &COUNTERS.events_dropped_rate_limited;
                        }
                        500..=599 => format!("{} answered {status}", self.url),
                        300..=399 => {
                            debug::problem(Problem::Redirected, || {
                                let to = response.headers().get("location").map(|l| redirect_target(&self.url, l));
                                format!(
                                    "{} answered {status}: the server redirected to {}; isoscope does not follow \
                                     redirects (only the DSN's host may see its key), so the event was dropped: \
                                     use the DSN your server shows now",
                                    self.url,
                                    to.as_deref().unwrap_or("nowhere (no Location)")
                                )
                            });
                            return &COUNTERS.events_dropped_rejected;
                        }
                        _ => {
                            debug::problem(Problem::Rejected, || {
                                format!(
                                    "{} rejected an event with {status}: {}",
                                    self.url,
                                    debug::Untrusted(String::from_utf8_lossy(&said).trim())
                                )
                            });
                            return &COUNTERS.events_dropped_rejected;
                        }
                    }
                }
                // Connection refused or reset, timeout.
                Err(err) => format!("sending to {} failed: {}", self.url, debug::Untrusted(err.to_string())),
            };
            let gave_up = retries >= self.settings.max_retries;
            debug::problem(Problem::Network, || {
                let next = if gave_up {
                    "dropped".to_owned()
                } else {
                    format!("retry {} of {}", retries + 1, self.settings.max_retries)
                };
                format!("{failure} ({next})")
            });
            if gave_up {
                return &COUNTERS.events_dropped_network;
            }
            retries += 1;
            incr(&COUNTERS.events_retried);
            tokio::time::sleep(self.backoff(retries)).await;
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Envelope>, shared: Arc<Shared>, mut closed: watch::Receiver<bool>) {
    let slots = Arc::new(Semaphore::new(shared.settings.concurrency));
    loop {
        // Once shut down, nothing more is sent: what is left was counted as dropped.
        let envelope = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => break,
            envelope = rx.recv() => match envelope { Some(e) => e, None => break },
            // Idle for a while: the symbolizer's caches, if a delivery filled them, go.
            () = tokio::time::sleep(crate::stack::KEEP_SYMBOLS) => {
                crate::stack::release_symbol_caches();
                continue;
            }
        };
        let slot = tokio::select! {
            biased;
            _ = closed.wait_for(|c| *c) => break,
            slot = slots.clone().acquire_owned() => match slot { Ok(s) => s, Err(_) => break },
        };
        let shared = shared.clone();
        tokio::spawn(async move {
            let outcome = shared.deliver(envelope).await;
            shared.pending.finish(Some(outcome));
            drop(slot);
        });
    }
    // Returning ends the runtime, which cancels the deliveries still in flight (counted).
}

impl Transport for HttpTransport {
    fn send(&self, envelope: Envelope) {
        let pending = &self.shared.pending;
        if self.shared.all_limited(envelope.item_types()) {
            incr(&COUNTERS.events_dropped_rate_limited);
            pending.lose();
            return;
        }
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = tx.as_ref().filter(|_| pending.add()) else {
            incr(&COUNTERS.events_dropped_shutdown); // sent after shutdown
            pending.lose();
            return;
        };
        if tx.try_send(envelope).is_err() {
            pending.undo();
            pending.lose();
            super::count_queue_full();
        }
    }

    /// `false` while the queue is full (after shutdown, `send` counts the drop itself). The
    /// capture asks right before it builds an event and drops the event on `false`: that is a
    /// loss the next flush reports.
    fn has_room(&self) -> bool {
        let room = self.tx.lock().unwrap_or_else(PoisonError::into_inner).as_ref().is_none_or(|tx| tx.capacity() > 0);
        if !room {
            self.shared.pending.lose();
        }
        room
    }

    /// Waits until everything queued was answered, or `timeout` passes; `true` only if every
    /// event sent since the last flush was accepted by the server (none dropped, rejected,
    /// rate limited or still pending).
    fn flush(&self, timeout: Duration) -> bool {
        self.shared.pending.flush(timeout)
    }

    /// Waits for what was accepted until `timeout`; then counts what is still queued or in
    /// flight as dropped at shutdown, stops the worker (cancelling deliveries in flight) and
    /// refuses further events (counted likewise).
    fn shutdown(&self, timeout: Duration) -> bool {
        let flushed = self.shared.pending.shut_down(timeout);
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
