//! [`HttpTransport`]: envelopes to a Sentry-compatible server over HTTP(S), from a background
//! thread with its own small tokio runtime.

use std::fmt;
use std::net::IpAddr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{mpsc, Semaphore};

use super::ratelimit::RateLimits;
use super::worker::Pending;
use super::Transport;
use crate::dsn::Dsn;
use crate::event::Envelope;
use crate::stats::{incr, COUNTERS};

/// Every event is an `error`-category item for rate limiting.
const CATEGORY: &str = "error";
/// Most bytes of a response body read (to reuse the connection); the rest is ignored.
const MAX_RESPONSE_BODY: usize = 64 * 1024;

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

    /// Starts the background thread.
    pub fn build(self) -> Result<HttpTransport, crate::Error> {
        let transport_err = |e: &dyn fmt::Display| crate::Error::Transport(e.to_string());
        let mut client = reqwest::Client::builder()
            .connect_timeout(self.connect_timeout)
            .timeout(self.timeout)
            .user_agent(concat!("isoscope/", env!("CARGO_PKG_VERSION")));
        if is_loopback(self.dsn.host()) {
            client = client.no_proxy(); // a proxy can never reach our own machine's server
        }
        let client = client.build().map_err(|e| transport_err(&e))?;
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(|e| transport_err(&e))?;
        let (tx, rx) = mpsc::channel(self.queue_size);
        let shared = Arc::new(Shared {
            url: self.dsn.envelope_url(),
            auth: self.dsn.auth_header(),
            public_dsn: self.dsn.to_string(),
            client,
            limits: Mutex::new(RateLimits::default()),
            pending: Pending::default(),
            settings: self,
        });
        let worker = shared.clone();
        std::thread::Builder::new()
            .name("isoscope-http".into())
            .spawn(move || {
                super::worker::mark_worker_thread();
                runtime.block_on(run(rx, worker));
            })
            .map_err(|e| transport_err(&e))?;
        Ok(HttpTransport { shared, tx: Mutex::new(Some(tx)) })
    }
}

fn is_loopback(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost") || host.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// Sends envelopes to the DSN's server, never blocking the caller.
///
/// - `send` only enqueues into a bounded queue (default 100); when it is full the event is
///   dropped and counted in `stats().events_dropped_queue_full`.
/// - A background thread with its own current-thread tokio runtime delivers them (default 8 at
///   a time), so it works from sync code, from any runtime and during shutdown.
/// - It honours `X-Sentry-Rate-Limits` on every answer (float seconds, per category, the longer
///   limit kept, unknown categories ignored) and `429` with or without `Retry-After`; while
///   limited, events are dropped locally without a request (`events_dropped_rate_limited`).
/// - Connection failures, timeouts and 5xx answers are retried with capped exponential backoff
///   (`events_retried`), then dropped (`events_dropped_network`); other 4xx answers are dropped
///   as rejected (`events_dropped_rejected`). Delivered events count in `events_sent`.
/// - [`flush`](Transport::flush) returns `true` once everything queued was answered by the
///   server, `false` at its timeout, and really returns by then, even while a request hangs.
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
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport").field("url", &self.shared.url).finish_non_exhaustive()
    }
}

struct Shared {
    url: String,
    auth: String,
    public_dsn: String,
    client: reqwest::Client,
    limits: Mutex<RateLimits>,
    pending: Pending,
    settings: HttpTransportBuilder,
}

impl HttpTransport {
    /// Settings for a transport to `dsn`, with the defaults described on the setters.
    pub fn builder(dsn: &str) -> Result<HttpTransportBuilder, crate::Error> {
        let dsn: Dsn = dsn.parse().map_err(|e: crate::dsn::DsnError| crate::Error::InvalidDsn(e.to_string()))?;
        Ok(HttpTransportBuilder {
            dsn,
            queue_size: 100,
            concurrency: 8,
            connect_timeout: Duration::from_secs(5),
            timeout: Duration::from_secs(30),
            max_retries: 3,
            backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(5),
        })
    }
}

impl Shared {
    fn limited(&self) -> bool {
        self.limits.lock().unwrap_or_else(PoisonError::into_inner).is_limited(CATEGORY, Instant::now())
    }

    fn backoff(&self, retry: u32) -> Duration {
        let s = &self.settings;
        s.backoff.saturating_mul(2u32.saturating_pow(retry.saturating_sub(1))).min(s.max_backoff)
    }

    async fn deliver(&self, envelope: Envelope) {
        let body = Bytes::from(envelope.to_bytes(Some(&self.public_dsn)));
        drop(envelope);
        let mut retries = 0;
        loop {
            if self.limited() {
                incr(&COUNTERS.events_dropped_rate_limited);
                return;
            }
            let answer = self
                .client
                .post(&self.url)
                .header("x-sentry-auth", &self.auth)
                .header("content-type", "application/x-sentry-envelope")
                .body(body.clone())
                .send()
                .await;
            let retryable = match answer {
                Ok(mut response) => {
                    let status = response.status().as_u16();
                    let header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
                    self.limits.lock().unwrap_or_else(PoisonError::into_inner).update(
                        status,
                        header("x-sentry-rate-limits"),
                        header("retry-after"),
                        Instant::now(),
                    );
                    // Read (a bounded part of) the answer so the connection can be reused.
                    let mut read = 0;
                    while let Ok(Some(chunk)) = response.chunk().await {
                        read += chunk.len();
                        if read > MAX_RESPONSE_BODY {
                            break;
                        }
                    }
                    match status {
                        200..=299 => {
                            incr(&COUNTERS.events_sent);
                            return;
                        }
                        429 => {
                            incr(&COUNTERS.events_dropped_rate_limited);
                            return;
                        }
                        500..=599 => true,
                        _ => {
                            incr(&COUNTERS.events_dropped_rejected);
                            return;
                        }
                    }
                }
                Err(_) => true, // connection refused or reset, timeout
            };
            debug_assert!(retryable);
            if retries >= self.settings.max_retries {
                incr(&COUNTERS.events_dropped_network);
                return;
            }
            retries += 1;
            incr(&COUNTERS.events_retried);
            tokio::time::sleep(self.backoff(retries)).await;
        }
    }
}

async fn run(mut rx: mpsc::Receiver<Envelope>, shared: Arc<Shared>) {
    let slots = Arc::new(Semaphore::new(shared.settings.concurrency));
    while let Some(envelope) = rx.recv().await {
        let Ok(slot) = slots.clone().acquire_owned().await else { break };
        let shared = shared.clone();
        tokio::spawn(async move {
            shared.deliver(envelope).await;
            shared.pending.done();
            drop(slot);
        });
    }
}

impl Transport for HttpTransport {
    fn send(&self, envelope: Envelope) {
        if self.shared.limited() {
            incr(&COUNTERS.events_dropped_rate_limited);
            return;
        }
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = tx.as_ref() else {
            incr(&COUNTERS.events_dropped_queue_full); // shut down
            return;
        };
        self.shared.pending.add();
        if tx.try_send(envelope).is_err() {
            self.shared.pending.done();
            incr(&COUNTERS.events_dropped_queue_full);
        }
    }

    fn flush(&self, timeout: Duration) -> bool {
        self.shared.pending.wait_zero(timeout)
    }

    fn shutdown(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        self.tx.lock().unwrap_or_else(PoisonError::into_inner).take();
        flushed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_detection() {
        assert!(is_loopback("127.0.0.1"));
        assert!(is_loopback("127.1.2.3"));
        assert!(is_loopback("[::1]"));
        assert!(is_loopback("LOCALHOST"));
        assert!(!is_loopback("sentry.io"));
        assert!(!is_loopback("10.0.0.1"));
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
