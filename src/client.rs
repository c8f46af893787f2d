//! [`Options`], [`init`], [`ClientGuard`] and the capture pipeline.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use crate::binding;
use crate::breadcrumb::Breadcrumb;
use crate::envelope::Envelope;
use crate::event::{Event, EventId};
use crate::handle::{reentrant, ScopeHandle};
use crate::propagate::{self, Propagation};
use crate::scope::{self, apply_scopes, Scope};
use crate::stats::{incr, COUNTERS};
use crate::transport::{LocalTransport, Transport};

type BeforeSend = Arc<dyn Fn(Event) -> Option<Event> + Send + Sync>;
type BeforeBreadcrumb = Arc<dyn Fn(Breadcrumb) -> Option<Breadcrumb> + Send + Sync>;

/// Configuration for [`init`]. Build it with the setters:
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
    pub(crate) dsn: Option<String>,
    pub(crate) release: Option<Cow<'static, str>>,
    pub(crate) environment: Option<Cow<'static, str>>,
    pub(crate) server_name: Option<Cow<'static, str>>,
    pub(crate) sample_rate: f64,
    pub(crate) max_breadcrumbs: usize,
    pub(crate) before_send: Option<BeforeSend>,
    pub(crate) before_breadcrumb: Option<BeforeBreadcrumb>,
    pub(crate) send_default_pii: bool,
    pub(crate) propagation: Propagation,
    pub(crate) transport: Option<Arc<dyn Transport>>,
    pub(crate) shutdown_timeout: Duration,
    pub(crate) queue_size: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            dsn: None,
            release: None,
            environment: None,
            server_name: None,
            sample_rate: 1.0,
            max_breadcrumbs: scope::DEFAULT_MAX_BREADCRUMBS,
            before_send: None,
            before_breadcrumb: None,
            send_default_pii: false,
            propagation: Propagation::Fork,
            transport: None,
            shutdown_timeout: Duration::from_secs(2),
            queue_size: 100,
        }
    }
}

impl fmt::Debug for Options {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Options")
            .field("dsn", &self.dsn.as_ref().map(|_| "<set>"))
            .field("release", &self.release)
            .field("environment", &self.environment)
            .field("server_name", &self.server_name)
            .field("sample_rate", &self.sample_rate)
            .field("max_breadcrumbs", &self.max_breadcrumbs)
            .field("before_send", &self.before_send.is_some())
            .field("before_breadcrumb", &self.before_breadcrumb.is_some())
            .field("send_default_pii", &self.send_default_pii)
            .field("propagation", &self.propagation)
            .field("transport", &self.transport.is_some())
            .field("shutdown_timeout", &self.shutdown_timeout)
            .field("queue_size", &self.queue_size)
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
    /// the environment) events go to the local JSON-lines sink.
    #[must_use]
    pub fn dsn(mut self, dsn: impl Into<String>) -> Self {
        self.dsn = Some(dsn.into());
        self
    }

    /// The release (`name@version`) attached to every event.
    #[must_use]
    pub fn release(mut self, release: impl Into<Cow<'static, str>>) -> Self {
        self.release = Some(release.into());
        self
    }

    /// The environment (`production`, `staging`, ...) attached to every event.
    #[must_use]
    pub fn environment(mut self, environment: impl Into<Cow<'static, str>>) -> Self {
        self.environment = Some(environment.into());
        self
    }

    /// The server name attached to every event.
    #[must_use]
    pub fn server_name(mut self, server_name: impl Into<Cow<'static, str>>) -> Self {
        self.server_name = Some(server_name.into());
        self
    }

    /// Fraction of events to send, from 0.0 to 1.0 ([`init`] rejects anything else).
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

    /// Send personally identifiable data (cookies, authorization headers, client IPs, query
    /// values that look secret). Off by default. Read per request, not when the layer is built.
    #[must_use]
    pub fn send_default_pii(mut self, yes: bool) -> Self {
        self.send_default_pii = yes;
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

    /// Events the HTTP transport (made from the DSN) queues before dropping more (default 100).
    #[must_use]
    pub fn queue_size(mut self, n: usize) -> Self {
        self.queue_size = n;
        self
    }

    /// How long dropping the [`ClientGuard`] waits for queued events (default 2 s).
    #[must_use]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
}

/// Why [`init`] failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Error {
    /// The DSN could not be used; the message says what is wrong with it.
    InvalidDsn(String),
    /// An option is out of range; the message names it.
    InvalidOption(String),
    /// The transport could not be set up.
    Transport(String),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidDsn(m) => write!(f, "invalid DSN: {m}"),
            Self::InvalidOption(m) => write!(f, "invalid option: {m}"),
            Self::Transport(m) => write!(f, "transport error: {m}"),
        }
    }
}

impl std::error::Error for Error {}

pub(crate) struct Client {
    pub(crate) options: Options,
    pub(crate) transport: Arc<dyn Transport>,
}

static CLIENT: RwLock<Option<Arc<Client>>> = RwLock::new(None);
static SEND_DEFAULT_PII: AtomicBool = AtomicBool::new(false);
/// Whether the client in force has a `before_breadcrumb` hook: lets `add_breadcrumb` skip the
/// client lock when it has none (the common case).
static HAS_BEFORE_BREADCRUMB: AtomicBool = AtomicBool::new(false);

pub(crate) fn client() -> Option<Arc<Client>> {
    CLIENT.read().unwrap_or_else(PoisonError::into_inner).clone()
}

pub(crate) fn send_default_pii() -> bool {
    SEND_DEFAULT_PII.load(Ordering::Relaxed)
}

/// Keeps the client alive; dropping it flushes queued events (up to `shutdown_timeout`) and
/// unbinds the client.
#[must_use = "dropping the guard shuts the client down"]
pub struct ClientGuard {
    client: Arc<Client>,
}

impl fmt::Debug for ClientGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientGuard").field("options", &self.client.options).finish()
    }
}

impl ClientGuard {
    /// Waits up to `timeout` for queued events to be delivered; `false` if some were not.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.client.transport.flush(timeout)
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        self.client.transport.shutdown(self.client.options.shutdown_timeout);
        let mut slot = CLIENT.write().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, &self.client)) {
            *slot = None;
        }
    }
}

fn env_dsn() -> Option<String> {
    ["ISOSCOPE_DSN", "SENTRY_DSN"]
        .iter()
        .filter_map(|k| std::env::var(k).ok())
        .map(|v| v.trim().to_owned())
        .find(|v| !v.is_empty())
}

/// Starts the client: from now on captured events are sent.
///
/// The transport is, in order: `Options::transport`; an HTTP transport to the DSN from
/// `Options::dsn`, `ISOSCOPE_DSN` or `SENTRY_DSN`; else the local sink, which writes one JSON
/// event per line to stdout, or to the file named by `ISOSCOPE_OUTPUT`.
///
/// Calling `init` again replaces the client.
///
/// ```
/// let transport = isoscope::MemoryTransport::new();
/// let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone()))?;
/// isoscope::capture_message("hello", isoscope::Level::Info);
/// assert_eq!(transport.events()[0].message.as_deref(), Some("hello"));
///
/// let err = isoscope::init(isoscope::Options::new().sample_rate(2.0)).unwrap_err();
/// assert!(err.to_string().contains("sample_rate"));
/// # Ok::<(), isoscope::Error>(())
/// ```
pub fn init(mut options: Options) -> Result<ClientGuard, Error> {
    if !(0.0..=1.0).contains(&options.sample_rate) {
        return Err(Error::InvalidOption(format!(
            "sample_rate must be between 0.0 and 1.0, got {}",
            options.sample_rate
        )));
    }
    if options.dsn.is_none() {
        options.dsn = env_dsn();
    }
    let transport: Arc<dyn Transport> = match (&options.transport, &options.dsn) {
        (Some(t), _) => t.clone(),
        (None, Some(dsn)) => crate::transport::for_dsn(dsn, options.queue_size)?,
        (None, None) => Arc::new(LocalTransport::from_env().map_err(Error::Transport)?),
    };
    scope::set_max_breadcrumbs(options.max_breadcrumbs);
    SEND_DEFAULT_PII.store(options.send_default_pii, Ordering::Relaxed);
    HAS_BEFORE_BREADCRUMB.store(options.before_breadcrumb.is_some(), Ordering::Relaxed);
    propagate::set_policy(options.propagation);
    let client = Arc::new(Client { options, transport });
    let old = CLIENT.write().unwrap_or_else(PoisonError::into_inner).replace(client.clone());
    drop(old);
    Ok(ClientGuard { client })
}

/// Waits up to `timeout` for queued events to be delivered; `false` if some were not (or no
/// client is initialised... in which case there is nothing to wait for and it returns `true`).
pub fn flush(timeout: Duration) -> bool {
    client().is_none_or(|c| c.transport.flush(timeout))
}

/// The `os` and `runtime` contexts, unless the event or a scope set them.
fn default_contexts(event: &mut Event) {
    event
        .contexts
        .entry("os".into())
        .or_insert_with(|| serde_json::json!({ "type": "os", "name": std::env::consts::OS }));
    event
        .contexts
        .entry("runtime".into())
        .or_insert_with(|| serde_json::json!({ "type": "runtime", "name": "rust", "arch": std::env::consts::ARCH }));
}

/// Whether a `before_breadcrumb` hook may be set (checked before a breadcrumb is recorded).
#[inline]
pub(crate) fn has_before_breadcrumb() -> bool {
    HAS_BEFORE_BREADCRUMB.load(Ordering::Relaxed)
}

/// Runs the `before_breadcrumb` hook, if one is set (user code: call it with no lock or
/// borrow of ours held); `None` when it dropped the breadcrumb.
pub(crate) fn run_before_breadcrumb(breadcrumb: Breadcrumb) -> Option<Breadcrumb> {
    let Some(hook) = client().and_then(|c| c.options.before_breadcrumb.clone()) else { return Some(breadcrumb) };
    let kept = hook(breadcrumb);
    if kept.is_none() {
        incr(&COUNTERS.breadcrumbs_dropped);
    }
    kept
}

/// The capture pipeline: merge scopes, sample, run processors and `before_send` (outside every
/// lock), hand the envelope to the transport.
pub(crate) fn capture(isolation: ScopeHandle, current: Option<Arc<Scope>>, mut event: Event) -> Option<EventId> {
    if reentrant::any_held() {
        // Called from inside a `configure` closure: capture once the scope is released.
        let id = event.event_id;
        reentrant::defer(move || {
            capture(isolation, current, event);
        });
        return Some(id);
    }
    let Some(client) = client() else {
        incr(&COUNTERS.events_dropped_no_client);
        return None;
    };
    incr(&COUNTERS.events_captured);
    let options = &client.options;
    if options.sample_rate < 1.0 && crate::util::random_f64() >= options.sample_rate {
        incr(&COUNTERS.events_dropped_sampled);
        return None;
    }
    let global = binding::global().snapshot();
    let iso = isolation.snapshot();
    let mut scopes: Vec<&Scope> = Vec::with_capacity(3);
    scopes.extend(current.as_deref());
    scopes.push(&iso);
    scopes.push(&global);
    apply_scopes(&mut event, &scopes, options.max_breadcrumbs);
    if event.release.is_none() {
        event.release = options.release.as_deref().map(str::to_owned);
    }
    if event.environment.is_none() {
        event.environment = options.environment.as_deref().map(str::to_owned);
    }
    if event.server_name.is_none() {
        event.server_name = options.server_name.as_deref().map(str::to_owned);
    }
    default_contexts(&mut event);
    // Processors: global first, then isolation, then current (each may drop the event).
    let processors =
        global.processors().iter().chain(iso.processors()).chain(current.iter().flat_map(|c| c.processors()));
    let mut event = Some(event);
    for p in processors {
        event = event.and_then(|e| p(e));
    }
    if let Some(hook) = &options.before_send {
        event = event.and_then(|e| hook(e));
    }
    let Some(mut event) = event else {
        incr(&COUNTERS.events_dropped_before_send);
        return None;
    };
    if !options.send_default_pii {
        crate::event::limits::scrub(&mut event);
    }
    crate::event::limits::apply(&mut event);
    let id = event.event_id;
    isolation.set_last_event_id(id);
    client.transport.send(Envelope::from_event(event));
    Some(id)
}
