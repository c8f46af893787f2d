//! [`Options`]: the configuration [`init`](super::init) starts a client from.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::bind::Propagation;
use crate::dsn::{Dsn, DsnError, DsnOrigin};
use crate::event::scrub::Scrubber;
use crate::event::{Breadcrumb, Event, Transaction};

pub use super::options_performance::{SamplingContext, TransactionStyle};
use crate::stack::InApp;
use crate::transport::Transport;

type BeforeSend = Arc<dyn Fn(Event) -> Option<Event> + Send + Sync>;
type BeforeSendTransaction = Arc<dyn Fn(Transaction) -> Option<Transaction> + Send + Sync>;
type BeforeBreadcrumb = Arc<dyn Fn(Breadcrumb) -> Option<Breadcrumb> + Send + Sync>;
type BeforeSendLog = Arc<dyn Fn(crate::event::Log) -> Option<crate::event::Log> + Send + Sync>;
pub(crate) type TracesSampler = Arc<dyn Fn(&SamplingContext<'_>) -> f64 + Send + Sync>;

/// Configuration for [`init`](super::init). Build it with the setters:
///
/// ```
/// use std::time::Duration;
/// use isoscope::{MemoryTransport, Options, Propagation};
///
/// let options = Options::new()
///     .release("shop@1.4.2")
///     .environment("staging")
///     .max_breadcrumbs(50)
///     .sample_rate(1.0)
///     .propagation(Propagation::Fork)
///     .before_send(|event| Some(event))
///     .shutdown_timeout(Duration::from_secs(1))
///     .transport(MemoryTransport::new());
/// # drop(options);
/// ```
#[derive(Clone)]
pub struct Options {
    /// Parsed once, when set; an error is reported by `init`.
    pub(crate) dsn: Option<Result<Dsn, DsnError>>,
    pub(crate) release: Option<Cow<'static, str>>,
    pub(crate) environment: Option<Cow<'static, str>>,
    pub(crate) server_name: Option<Cow<'static, str>>,
    pub(crate) sample_rate: f64,
    pub(crate) max_breadcrumbs: usize,
    pub(crate) before_send: Option<BeforeSend>,
    pub(crate) before_send_transaction: Option<BeforeSendTransaction>,
    pub(crate) before_breadcrumb: Option<BeforeBreadcrumb>,
    pub(crate) send_default_pii: bool,
    pub(crate) scrubber: Arc<Scrubber>,
    pub(crate) propagation: Propagation,
    pub(crate) transport: Option<Arc<dyn Transport>>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) queue_size: usize,
    pub(crate) max_queue_bytes: usize,
    pub(crate) send_client_reports: bool,
    pub(crate) transaction_style: TransactionStyle,
    pub(crate) auto_session_tracking: bool,
    pub(crate) failed_request_status_codes: Vec<std::ops::RangeInclusive<u16>>,
    pub(crate) trace_ignore_status_codes: Vec<std::ops::RangeInclusive<u16>>,
    pub(crate) trust_proxy_headers: bool,
    pub(crate) enable_logs: bool,
    pub(crate) before_send_log: Option<BeforeSendLog>,
    pub(crate) max_request_body_size: crate::scope::RequestBodySize,
    pub(crate) trace_propagation_targets: Option<Vec<String>>,
    pub(crate) strict_trace_continuation: bool,
    pub(crate) org_id: Option<u64>,
    pub(crate) debug: bool,
    pub(crate) capture_panics: bool,
    pub(crate) attach_stacktrace: bool,
    pub(crate) in_app: Arc<InApp>,
    /// `None`: tracing off (the default); `Some(rate)`, even `Some(0.0)`: on.
    pub(crate) traces_sample_rate: Option<f64>,
    pub(crate) traces_sampler: Option<TracesSampler>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dsn: None,
            release: None,
            environment: None,
            server_name: None,
            sample_rate: 1.0,
            max_breadcrumbs: crate::scope::DEFAULT_MAX_BREADCRUMBS,
            before_send: None,
            before_send_transaction: None,
            before_breadcrumb: None,
            send_default_pii: false,
            scrubber: Arc::default(),
            propagation: Propagation::Fork,
            transport: None,
            shutdown_timeout: Duration::from_secs(2),
            queue_size: 10_000,
            max_queue_bytes: 8 << 20,
            send_client_reports: true,
            transaction_style: TransactionStyle::Route,
            auto_session_tracking: true,
            failed_request_status_codes: vec![500..=599],
            trace_ignore_status_codes: Vec::new(),
            trust_proxy_headers: true,
            enable_logs: false,
            before_send_log: None,
            max_request_body_size: crate::scope::RequestBodySize::Medium,
            trace_propagation_targets: None,
            strict_trace_continuation: false,
            org_id: None,
            debug: false,
            capture_panics: true,
            attach_stacktrace: false,
            in_app: Arc::default(),
            traces_sample_rate: None,
            traces_sampler: None,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            // The DSN's `Debug` shows no key.
            .field("dsn", &self.dsn)
            .field("release", &self.release)
            .field("environment", &self.environment)
            .field("server_name", &self.server_name)
            .field("sample_rate", &self.sample_rate)
            .field("max_breadcrumbs", &self.max_breadcrumbs)
            .field("before_send", &self.before_send.is_some())
            .field("before_send_transaction", &self.before_send_transaction.is_some())
            .field("before_breadcrumb", &self.before_breadcrumb.is_some())
            .field("send_default_pii", &self.send_default_pii)
            .field("scrubber", &self.scrubber)
            .field("propagation", &self.propagation)
            .field("transport", &self.transport.is_some())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("queue_size", &self.queue_size)
            .field("max_queue_bytes", &self.max_queue_bytes)
            .field("send_client_reports", &self.send_client_reports)
            .field("transaction_style", &self.transaction_style)
            .field("auto_session_tracking", &self.auto_session_tracking)
            .field("failed_request_status_codes", &self.failed_request_status_codes)
            .field("trace_ignore_status_codes", &self.trace_ignore_status_codes)
            .field("trust_proxy_headers", &self.trust_proxy_headers)
            .field("enable_logs", &self.enable_logs)
            .field("before_send_log", &self.before_send_log.is_some())
            .field("max_request_body_size", &self.max_request_body_size)
            .field("trace_propagation_targets", &self.trace_propagation_targets)
            .field("strict_trace_continuation", &self.strict_trace_continuation)
            .field("org_id", &self.org_id)
            .field("debug", &self.debug)
            .field("capture_panics", &self.capture_panics)
            .field("attach_stacktrace", &self.attach_stacktrace)
            .field("in_app_include", &self.in_app.include)
            .field("in_app_exclude", &self.in_app.exclude)
            .field("traces_sample_rate", &self.traces_sample_rate)
            .field("traces_sampler", &self.traces_sampler.is_some())
            .finish()
    }
}

impl Options {
    /// Defaults: no DSN (events go to the local JSON-lines sink), sample rate 1.0, 100
    /// breadcrumbs, no PII, [`Propagation::Fork`], 2 s shutdown timeout.
    pub fn new() -> Self {
        Self::default()
    }

    /// The DSN to send events to. Without one (and without `ISOSCOPE_DSN` / `SENTRY_DSN` in
    /// the environment) events go to the local JSON-lines sink. It is parsed here, once; an
    /// invalid one makes [`init`](super::init) fail with [`Error::InvalidDsn`](crate::Error),
    /// saying what is wrong and that it came from `Options::dsn`.
    ///
    /// ```
    /// let err = isoscope::init(isoscope::Options::new().dsn("https://key@sentry.example")).unwrap_err();
    /// assert!(err.to_string().contains("missing project id"), "{err}");
    /// ```
    #[must_use]
    pub fn dsn(mut self, dsn: impl AsRef<str>) -> Self {
        self.dsn = Some(dsn.as_ref().parse::<Dsn>().map_err(|e| e.with_origin(DsnOrigin::Options)));
        self
    }

    /// The release (`name@version`) attached to every event. Default: `SENTRY_RELEASE`, else
    /// none.
    #[must_use]
    pub fn release(mut self, release: impl Into<Cow<'static, str>>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// The environment (`production`, `staging`, ...) attached to every event. Default:
    /// `SENTRY_ENVIRONMENT`, else `development` in a debug build (`debug_assertions`) and
    /// `production` in a release build, as sentry-rust.
    #[must_use]
    pub fn environment(mut self, environment: impl Into<Cow<'static, str>>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The server name attached to every event. Default: the host name.
    #[must_use]
    pub fn server_name(mut self, server_name: impl Into<Cow<'static, str>>) -> Self {
        self.server_name = Some(server_name.into());
        self
    }

    /// Fraction of events to send, from 0.0 to 1.0 ([`init`](super::init) rejects anything else).
    #[must_use]
    pub fn sample_rate(mut self, rate: f64) -> Self {
        self.sample_rate = rate;
        self
    }

    /// Most breadcrumbs kept per scope and per event (default 100; the oldest are dropped).
    #[must_use]
    pub fn max_breadcrumbs(mut self, max: usize) -> Self {
        self.max_breadcrumbs = max;
        self
    }

    /// Called with every event before it is sent; return `None` to drop it. It runs outside
    /// every isoscope lock, so it may call back into the API.
    #[must_use]
    pub fn before_send<F>(mut self, f: F) -> Self
    where
        F: Fn(Event) -> Option<Event> + Send + Sync + 'static,
    {
        self.before_send = Some(Arc::new(f));
        self
    }

    /// Called with every breadcrumb before it is recorded; return `None` to drop it. It runs
    /// outside every isoscope lock, so it may call back into the API.
    #[must_use]
    pub fn before_breadcrumb<F>(mut self, f: F) -> Self
    where
        F: Fn(Breadcrumb) -> Option<Breadcrumb> + Send + Sync + 'static,
    {
        self.before_breadcrumb = Some(Arc::new(f));
        self
    }

    /// Send personally identifiable data (cookies, authorization headers, query values that
    /// look secret, the response's headers, and the client's IP address as `user.ip_address`).
    /// Off by default. Read per request, not when the layer is built.
    ///
    /// The client's IP comes from the first of `X-Forwarded-For`, `Forwarded` and `X-Real-IP`
    /// that names one, else from the connection's peer (axum's `ConnectInfo<SocketAddr>`, with
    /// `into_make_service_with_connect_info`, or a `SocketAddr` in the request's extensions).
    /// See [`trust_proxy_headers`](Self::trust_proxy_headers) when the service is reached
    /// without a proxy.
    ///
    /// ```
    /// let options = isoscope::Options::new().send_default_pii(true);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn send_default_pii(mut self, yes: bool) -> Self {
        self.send_default_pii = yes;
        self
    }

    /// How much of a request's body events carry as `request.data` (default
    /// [`Medium`](crate::RequestBodySize::Medium): bodies up to 10,000 bytes, as
    /// sentry-python's `max_request_body_size`). The layer keeps the first bytes of the body
    /// *as the handler reads it* (a tee: nothing is read early, nothing waits); a body read to
    /// its end goes in the request's events — JSON parsed, a form as an object of its fields
    /// (both scrubbed by the secret-key rules unless `send_default_pii`), other types as a note
    /// of their size — and a larger one as a note that it was left out. A body the handler
    /// never reads is never shown. Set process-wide by `init`.
    ///
    /// ```
    /// let options = isoscope::Options::new().max_request_body_size(isoscope::RequestBodySize::Small);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn max_request_body_size(mut self, size: crate::scope::RequestBodySize) -> Self {
        self.max_request_body_size = size;
        self
    }

    /// Whether the client's IP address may be taken from the proxy headers (`X-Forwarded-For`,
    /// `Forwarded`, `X-Real-IP`; default `true`, as sentry-python). Behind a reverse proxy or
    /// load balancer that sets them, they name the client; a service clients reach directly
    /// can be sent any address in them, so turn this off there: the connection's peer is used.
    /// Only matters with [`send_default_pii`](Self::send_default_pii).
    ///
    /// ```
    /// let options = isoscope::Options::new().send_default_pii(true).trust_proxy_headers(false);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn trust_proxy_headers(mut self, trust: bool) -> Self {
        self.trust_proxy_headers = trust;
        self
    }

    /// Also scrub values under keys that contain any of `substrings` (ASCII case-insensitive,
    /// `-` and `_` alike), in addition to the default rule: Relay's `@password` substrings
    /// (`password`, `passwd`, `secret`, `token`, `api_key`, `apikey`, `auth`, `credentials`,
    /// `mysql_pwd`, `privatekey`, `private_key`, `session`) and `cookie`. Keys are matched in
    /// extra, contexts, breadcrumb data, user attributes, tags, header names, query and path
    /// parameters and URLs inside values. Nothing is scrubbed with
    /// [`send_default_pii`](Self::send_default_pii) on.
    ///
    /// ```
    /// let transport = isoscope::MemoryTransport::new();
    /// let options = isoscope::Options::new().transport(transport.clone()).scrub_keys(["ssn"]).keep_keys(["author"]);
    /// let client = isoscope::Client::new(options)?;
    /// client.new_scope().run(|| {
    ///     isoscope::set_extra("customer_ssn", "078-05-1120");
    ///     isoscope::set_extra("author", "ada"); // kept, though it contains `auth`
    ///     isoscope::set_tag("x-session-token", "t0k3n");
    ///     isoscope::capture_message("signed up", isoscope::Level::Info);
    /// });
    /// let event = &transport.events()[0];
    /// assert_eq!(event.extra["customer_ssn"], "[Filtered]");
    /// assert_eq!(event.extra["author"], "ada");
    /// assert_eq!(event.tags["x-session-token"], "[Filtered]");
    /// # Ok::<(), isoscope::Error>(())
    /// ```
    #[must_use]
    pub fn scrub_keys<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, substrings: I) -> Self {
        Arc::make_mut(&mut self.scrubber).deny(substrings);
        self
    }

    /// Never scrub the values under exactly these keys (ASCII case-insensitive, `-` and `_`
    /// alike), though they contain a secret-looking substring: `keep_keys(["author"])` keeps an
    /// `author` field the default `auth` substring would scrub. Headers never recorded without
    /// `send_default_pii` (`authorization`, `cookie`, client addresses) stay unrecorded.
    #[must_use]
    pub fn keep_keys<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, keys: I) -> Self {
        Arc::make_mut(&mut self.scrubber).keep(keys);
        self
    }

    /// How spawned work inherits the active scope (default [`Propagation::Fork`]).
    #[must_use]
    pub fn propagation(mut self, propagation: Propagation) -> Self {
        self.propagation = propagation;
        self
    }

    /// Use this transport instead of the one the DSN (or its absence) selects.
    #[must_use]
    pub fn transport(mut self, transport: impl Transport) -> Self {
        self.transport = Some(Arc::new(transport));
        self
    }

    /// Envelopes the HTTP transport (made from the DSN) holds, waiting or in flight, before
    /// dropping more (default 10,000; see
    /// [`HttpTransportBuilder::queue_size`](crate::HttpTransportBuilder::queue_size)). The bound
    /// that matters is [`max_queue_bytes`](Self::max_queue_bytes).
    #[must_use]
    pub fn queue_size(mut self, n: usize) -> Self {
        self.queue_size = n;
        self
    }

    /// The memory the HTTP transport's waiting envelopes may hold (default 8 MiB; see
    /// [`HttpTransportBuilder::max_queue_bytes`](crate::HttpTransportBuilder::max_queue_bytes)).
    ///
    /// ```
    /// let options = isoscope::Options::new().max_queue_bytes(32 << 20);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn max_queue_bytes(mut self, bytes: usize) -> Self {
        self.max_queue_bytes = bytes;
        self
    }

    /// Tell the server what the SDK discarded (default `true`), as Sentry's client reports:
    /// counts per reason and category (`queue_overflow`, `ratelimit_backoff`,
    /// `network_error`, `send_error`, `sample_rate`, `before_send`, ... for `error`,
    /// `transaction`, `span`, ...), which Sentry shows in a project's stats. No event data,
    /// only counts; sent by the HTTP transport with the next envelope, after 30 s idle, and at
    /// flush and shutdown. Its own losses are not counted. `stats().items(..)` holds the same
    /// counts locally either way.
    ///
    /// ```
    /// let options = isoscope::Options::new().send_client_reports(false);
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn send_client_reports(mut self, on: bool) -> Self {
        self.send_client_reports = on;
        self
    }

    /// Capture every panic (default `true`): `init` installs a panic hook, chained to the one in
    /// place, that captures the panic with the scope active where it happened (a handler, a
    /// response body, an `isoscope::spawn` child, a `spawn_blocking` job, a thread), exactly
    /// once, whatever catches it afterwards (`CatchPanicLayer`, tokio, `catch_unwind`). With
    /// `false`, only panics that unwind through `IsolationLayer` are captured.
    ///
    /// The hook only enqueues the event; in a `panic = "abort"` build it also flushes, for at
    /// most 2 s. `before_send` and event processors run inside the hook: a panic there aborts.
    #[must_use]
    pub fn capture_panics(mut self, on: bool) -> Self {
        self.capture_panics = on;
        self
    }

    /// Attach the capture site's stack to `capture_error` and `capture_message` events too
    /// (default `false`; panic events always carry the panic site's stack). An error event gets
    /// it on its outermost exception, a message event on a current thread in `threads`.
    ///
    /// The capture walks the stack (a few microseconds per 50 frames) on the calling thread;
    /// names, files and lines are resolved later, on the transport's thread. Frames need debug
    /// info: in a release build, set `[profile.release] debug = "limited"` in your `Cargo.toml`
    /// for function names with their paths, files and lines (a release binary of 10.7 MB with
    /// `"line-tables-only"` was 12.7 MB with `"limited"`); `"line-tables-only"` gives files and
    /// lines but bare function names (`charge_card`, not `shop::charge_card`); with no debug
    /// info (the release default) frames have names from the symbol table and no lines.
    ///
    /// ```
    /// let transport = isoscope::MemoryTransport::new();
    /// let options = isoscope::Options::new().attach_stacktrace(true).transport(transport.clone());
    /// let _guard = isoscope::init(options).unwrap();
    /// isoscope::capture_message("slow path taken", isoscope::Level::Info);
    /// let event = &transport.events()[0];
    /// let frames = &event.threads[0].stacktrace.as_ref().unwrap().frames;
    /// assert!(!frames.is_empty());
    /// ```
    #[must_use]
    pub fn attach_stacktrace(mut self, on: bool) -> Self {
        self.attach_stacktrace = on;
        self
    }

    /// Frames whose function starts with `prefix` (a crate, `my_vendored_lib`, or a path,
    /// `tokio::task`) are the application's (`in_app: true`) even where the built-in list says
    /// otherwise. Wins over [`in_app_exclude`](Self::in_app_exclude).
    ///
    /// By default every frame is in-app except std, core, alloc, tokio, hyper, h2, http, axum,
    /// tower, tower-http, futures, tracing, reqwest, anyhow, backtrace, isoscope and the
    /// process and thread start-up code.
    #[must_use]
    pub fn in_app_include(mut self, prefix: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.in_app).include.push(prefix.into());
        self
    }

    /// Frames whose function starts with `prefix` are not the application's (`in_app: false`):
    /// for a dependency the built-in list does not know.
    ///
    /// ```
    /// let options = isoscope::Options::new().in_app_exclude("sqlx").in_app_include("sqlx::my_fork");
    /// # drop(options);
    /// ```
    #[must_use]
    pub fn in_app_exclude(mut self, prefix: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.in_app).exclude.push(prefix.into());
        self
    }

    /// Debug output on stderr (also turned on by `ISOSCOPE_DEBUG=1`): one line at `init` saying
    /// which transport is used (for a DSN its host and project, never its key), and one line per
    /// kind of problem as it happens: connection failures, answers the server rejected (with
    /// what it said), rate limits, full queues, events dropped at shutdown, writes from tasks
    /// bound to no scope, a guard dropped right after `init`. Each kind prints at most one line
    /// per 10 s. Off by default.
    #[must_use]
    pub fn debug(mut self, on: bool) -> Self {
        self.debug = on;
        self
    }

    /// How long dropping the [`ClientGuard`](super::ClientGuard) waits for queued events (default 2 s).
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}
