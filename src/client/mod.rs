//! The client: [`init`] starts it from [`Options`], [`ClientGuard`] keeps it alive, and the
//! capture pipeline (`capture.rs`) turns an event and the scopes in force into an envelope for
//! its transport.
//!
//! ```text
//!  on the calling thread:
//!   capture_event(event) ─▶ capture(isolation, current, event) ─▶ sample ─▶ stack walk
//!        ─▶ O(1) snapshots of the scopes ─▶ [event processors ─▶ before_send, if any]
//!        ─▶ Envelope (deferred: a `Capture`) ─▶ Transport::send
//!  on the transport's thread, when it calls Envelope::finish:
//!        merge scopes (scope::apply_scopes) ─▶ release/environment/contexts ─▶ trace context
//!        ─▶ scrub (with the client's rules) ─▶ limits ─▶ dynamic sampling context
//! ```
//!
//! One client is in force per process (`init` replaces it); the capture pipeline reads it
//! under a read lock and calls user hooks outside every lock of ours.

mod capture;
pub(crate) mod check_ins;
mod defaults;
mod log_attrs;
pub(crate) mod logs;
mod options;
mod options_logs;
mod options_performance;
mod panic_hook;
mod performance;
mod scoped_client;
pub(crate) mod test_runtimes;
mod trace_headers;

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::{Duration, Instant};

#[cfg(any(feature = "tracing", feature = "log"))]
pub(crate) use capture::add_shared_breadcrumb;
#[cfg(feature = "anyhow")]
pub(crate) use capture::capture_with_backtrace;
pub(crate) use capture::{
    add_breadcrumb, capture, capture_at_site, capture_error_at_site, capture_event, capture_now, Stack,
};
pub use options::{Options, SamplingContext, TransactionStyle};
pub(crate) use options_performance::is_failed_status;
pub(crate) use panic_hook::{forget_hook_capture, hook_captured};
pub(crate) use performance::{finish_transaction, sample_request};
pub use performance::{start_span, SpanGuard};
pub use scoped_client::Client;
#[cfg(any(feature = "reqwest", feature = "reqwest012"))]
pub(crate) use trace_headers::propagates_to;
pub use trace_headers::{trace_headers, trace_headers_for, TraceHeaders};

use crate::bind;
use crate::dsn::DsnOrigin;
use crate::error::Error;
use crate::outcome::Recorder;
use crate::transport::{LocalTransport, Transport};

/// A client's settings and transport: installed process-wide by [`init`], or bound to scopes
/// through a [`Client`].
pub(crate) struct Core {
    pub(crate) options: Options,
    pub(crate) transport: Arc<dyn Transport>,
    /// The DSN's public key (for the dynamic sampling context), parsed once.
    pub(crate) public_key: Option<String>,
    /// Where what becomes of its items is recorded (stats, flush, client reports).
    pub(crate) recorder: Arc<Recorder>,
    /// Log records waiting for their batch.
    pub(crate) logs: Arc<logs::LogBuffer>,
}

impl Drop for Core {
    fn drop(&mut self) {
        self.logs.close(); // its batching thread ends
    }
}

static CLIENT: RwLock<Option<Arc<Core>>> = RwLock::new(None);
static SEND_DEFAULT_PII: AtomicBool = AtomicBool::new(false);
/// Whether the client in force has a `before_breadcrumb` hook: lets `add_breadcrumb` skip the
/// client lock when it has none (the common case).
static HAS_BEFORE_BREADCRUMB: AtomicBool = AtomicBool::new(false);

pub(crate) fn client() -> Option<Arc<Core>> {
    CLIENT.read().unwrap_or_else(PoisonError::into_inner).clone()
}

/// Whether a `before_breadcrumb` hook may be set (checked before a breadcrumb is recorded).
#[inline]
fn has_before_breadcrumb() -> bool {
    HAS_BEFORE_BREADCRUMB.load(Ordering::Relaxed)
}

pub(crate) fn send_default_pii() -> bool {
    SEND_DEFAULT_PII.load(Ordering::Relaxed)
}

/// Keeps the client alive; dropping it flushes queued events (up to `shutdown_timeout`) and
/// unbinds the client.
#[must_use = "dropping the guard shuts the client down"]
pub struct ClientGuard {
    client: Arc<Core>,
    started: Instant,
}

impl fmt::Debug for ClientGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientGuard").field("options", &self.client.options).finish()
    }
}

impl ClientGuard {
    /// Waits up to `timeout` for queued events to be delivered. `true` only if every event
    /// captured since the last flush was accepted by the server; `false` if any was dropped
    /// (queue full, rate limited, unreachable, rejected) or is still pending at the timeout —
    /// `stats()` says which, and `ISOSCOPE_DEBUG` prints a line. Events dropped on purpose
    /// (`sample_rate`, `before_send`) are not losses.
    pub fn flush(&self, timeout: Duration) -> bool {
        self.client.flush(timeout)
    }
}

impl Drop for ClientGuard {
    fn drop(&mut self) {
        if self.started.elapsed() < GUARD_DROPPED_AT_ONCE {
            crate::debug::once(crate::debug::Problem::GuardDroppedAtOnce);
        }
        self.client.logs.drain(&self.client);
        self.client.transport.shutdown(self.client.options.shutdown_timeout);
        let mut slot = CLIENT.write().unwrap_or_else(PoisonError::into_inner);
        if slot.as_ref().is_some_and(|c| Arc::ptr_eq(c, &self.client)) {
            *slot = None;
            panic_hook::set_capturing(false);
        }
    }
}

/// A guard dropped sooner than this after `init` was most likely never kept
/// (`let _ = isoscope::init(..)`): the debug output says so.
const GUARD_DROPPED_AT_ONCE: Duration = Duration::from_millis(1);

/// The DSN from the environment, and the variable it came from.
fn env_dsn() -> Option<(String, &'static str)> {
    ["ISOSCOPE_DSN", "SENTRY_DSN"]
        .into_iter()
        .filter_map(|k| Some((std::env::var(k).ok()?.trim().to_owned(), k)))
        .find(|(v, _)| !v.is_empty())
}

/// Whether `ISOSCOPE_DEBUG` asks for debug output (`1`, `true`, `yes`, `on`).
fn env_debug() -> bool {
    std::env::var("ISOSCOPE_DEBUG")
        .is_ok_and(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes" | "on"))
}

/// The debug line `init` prints: which transport, and for a DSN its host and project (never
/// its key).
fn describe_transport(options: &Options, dsn: Option<&crate::Dsn>, dsn_source: DsnOrigin) -> String {
    if options.transport.is_some() {
        return "init: events go to the transport given in Options::transport".to_owned();
    }
    match dsn {
        Some(dsn) => format!(
            "init: events go to {}://{}{} project {} over HTTP (DSN from {dsn_source})",
            dsn.scheme(),
            dsn.host(),
            dsn.port().map(|p| format!(":{p}")).unwrap_or_default(),
            dsn.project_id()
        ),
        None => match std::env::var_os("ISOSCOPE_OUTPUT").filter(|v| !v.is_empty()) {
            Some(path) => format!(
                "init: no DSN (Options::dsn, ISOSCOPE_DSN, SENTRY_DSN): events are JSON lines in {} \
                 (ISOSCOPE_OUTPUT)",
                crate::debug::Untrusted(std::path::Path::new(&path).display().to_string())
            ),
            None => "init: no DSN (Options::dsn, ISOSCOPE_DSN, SENTRY_DSN): events are JSON lines on stdout".to_owned(),
        },
    }
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
pub fn init(options: Options) -> Result<ClientGuard, Error> {
    crate::debug::set_enabled(options.debug || env_debug());
    let core = Core::new(options)?;
    let options = &core.options;
    crate::scope::set_max_breadcrumbs(options.max_breadcrumbs);
    crate::scope::set_method_in_names(options.transaction_style == TransactionStyle::MethodAndRoute);
    options_performance::set_failed_status_codes(&options.failed_request_status_codes);
    crate::trace::continuation::set(options.org_id, options.strict_trace_continuation);
    crate::scope::set_request_body_size(options.max_request_body_size);
    SEND_DEFAULT_PII.store(options.send_default_pii, Ordering::Relaxed);
    HAS_BEFORE_BREADCRUMB.store(options.before_breadcrumb.is_some(), Ordering::Relaxed);
    bind::set_policy(options.propagation);
    bind::called_init();
    panic_hook::set_capturing(options.capture_panics);
    performance::set_tracing(options);
    crate::outcome::sessions::set_tracking(core.recorder.sessions().is_some());
    if options.auto_session_tracking && options.release.is_none() && crate::debug::enabled() {
        crate::debug::line(format_args!(
            "release health is off: sessions need a release (Options::release or SENTRY_RELEASE)"
        ));
    }
    let client = Arc::new(core);
    let old = CLIENT.write().unwrap_or_else(PoisonError::into_inner).replace(client.clone());
    drop(old);
    Ok(ClientGuard { client, started: Instant::now() })
}

impl Core {
    /// Checks the options, finds the DSN, fills in the defaults (environment, release, host
    /// name) and makes the transport.
    pub(crate) fn new(mut options: Options) -> Result<Self, Error> {
        if let Some(rate) = options.traces_sample_rate.filter(|r| !(0.0..=1.0).contains(r)) {
            return Err(Error::InvalidOption(format!("traces_sample_rate must be between 0.0 and 1.0, got {rate}")));
        }
        if !(0.0..=1.0).contains(&options.sample_rate) {
            return Err(Error::InvalidOption(format!(
                "sample_rate must be between 0.0 and 1.0, got {}",
                options.sample_rate
            )));
        }
        defaults::warm();
        if options.environment.is_none() {
            options.environment = Some(defaults::environment().into());
        }
        if options.release.is_none() {
            options.release = defaults::release().map(Into::into);
        }
        if options.server_name.is_none() {
            options.server_name = defaults::server_name().map(Into::into);
        }
        let mut dsn_source = DsnOrigin::Options;
        if options.dsn.is_none() {
            if let Some((dsn, var)) = env_dsn() {
                dsn_source = DsnOrigin::Env(var);
                options.dsn = Some(dsn.parse::<crate::Dsn>().map_err(|e| e.with_origin(dsn_source)));
            }
        }
        // Parsed once (by `Options::dsn`, or just above); a bad DSN says where it came from.
        let dsn = match (&options.transport, &options.dsn) {
            (None, Some(Err(e))) => return Err(Error::InvalidDsn(e.clone())),
            (_, Some(Ok(dsn))) => Some(dsn.clone()),
            // A transport of the user's: the DSN only names the key for the sampling context.
            (Some(_), Some(Err(_))) | (_, None) => None,
        };
        if crate::debug::enabled() {
            crate::debug::line(format_args!("{}", describe_transport(&options, dsn.as_ref(), dsn_source)));
        }
        let mut recorder = Recorder::new(options.send_client_reports);
        if let (true, Some(release)) = (options.auto_session_tracking, &options.release) {
            recorder = recorder.with_sessions(release.to_string(), options.environment.as_deref().map(str::to_owned));
        }
        let recorder = Arc::new(recorder);
        let transport: Arc<dyn Transport> = match (&options.transport, &dsn) {
            (Some(t), _) => t.clone(),
            (None, Some(dsn)) => {
                let queue = (options.queue_size, options.max_queue_bytes);
                crate::transport::for_dsn(dsn.clone(), queue, recorder.clone())?
            }
            (None, None) => Arc::new(LocalTransport::from_env().map_err(Error::Transport)?),
        };
        if options.org_id.is_none() {
            options.org_id = dsn.as_ref().and_then(crate::Dsn::org_id);
        }
        let public_key = dsn.map(|d| d.public_key().to_owned());
        logs::note_enabled(options.enable_logs);
        Ok(Self { options, transport, public_key, recorder, logs: Arc::default() })
    }

    /// Waits up to `timeout` for the transport; `true` only if it delivered everything and
    /// nothing this client captured was lost since the last flush (at the capture, in the
    /// transport, or reported by a custom transport's `Delivery`).
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.logs.drain(self);
        let delivered = self.transport.flush(timeout);
        let lost = self.recorder.take_lost();
        if !lost.is_empty() || !delivered {
            crate::debug::problem(crate::debug::Problem::FlushIncomplete, || {
                let what: Vec<String> = lost.iter().map(|(reason, n)| format!("{n} {reason}")).collect();
                let what = if what.is_empty() { "nothing".to_owned() } else { what.join(", ") };
                let pending = if delivered { "" } else { "; some were still pending at the deadline" };
                format!("flush: lost since the last flush: {what}{pending} (stats().items(..) has them per kind)")
            });
        }
        delivered && lost.is_empty()
    }
}

/// Waits up to `timeout` for queued events to be delivered: `true` only if every event captured
/// since the last flush was accepted (see [`ClientGuard::flush`]); `true` when no client is
/// initialised (nothing to wait for).
pub fn flush(timeout: Duration) -> bool {
    client().is_none_or(|c| c.flush(timeout))
}
