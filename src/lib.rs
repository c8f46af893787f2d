//! Per-request isolation scopes for Tower/Axum services, and Sentry-compatible error reporting.
//!
//! Error reports are only useful with the context of the request that failed: what it logged
//! on the way (breadcrumbs), who it was for (user), tags, the request itself. In an async
//! server that context must follow the *request*, not the thread: one worker thread
//! interleaves hundreds of requests, and blocking-pool threads are reused. isoscope gives each
//! request its own isolation scope, bound to the request's task, and reachable from any code
//! under the handler through free functions.
//!
//! ```
//! use axum::{routing::get, Router};
//!
//! # fn main() -> Result<(), isoscope::Error> {
//! let _guard = isoscope::init(isoscope::Options::new())?; // no DSN: JSON lines on stdout
//!
//! async fn handler() -> &'static str {
//!     isoscope::add_breadcrumb(isoscope::Breadcrumb::new("loading cart"));
//!     isoscope::set_tag("tenant", "acme");
//!     if let Err(err) = "x".parse::<u32>() {
//!         isoscope::capture_error(&err); // carries this request's breadcrumbs and tags only
//!     }
//!     "ok"
//! }
//!
//! let app: Router = Router::new().route("/", get(handler)).layer(isoscope::IsolationLayer::new());
//! # Ok(()) }
//! ```
//!
//! # Scopes
//!
//! ```text
//!   global scope ─────────────── process-wide: release, server tags; applied to every event
//!     └─ default isolation ───── what code outside any request writes to; requests fork it
//!          ├─ request 1 isolation scope ─── forked by IsolationLayer, bound to the request
//!          │    ├─ current scope ────────── with_scope(..) / with_scope_async(..) blocks
//!          │    └─ fork ─────────────────── isoscope::spawn / spawn_blocking children
//!          └─ request 2 isolation scope
//! ```
//!
//! At capture the scopes are merged with precedence event > current > isolation > global: a
//! value set on the event wins, then the current scope's, and so on. Breadcrumbs of all of
//! them are merged in recording order (a process-wide sequence number, not timestamps: request
//! breadcrumbs read it, global and current-scope breadcrumbs advance it, so the hot path never
//! writes a shared cache line) and trimmed to `max_breadcrumbs`. The free functions
//! ([`add_breadcrumb`], [`set_tag`], [`configure_scope`], ...) write to the active isolation
//! scope; [`with_scope`] adds a current scope for a block. A [`Scope`] forks in O(1)
//! ([`Scope::fork`], [`ScopeHandle::fork`]): its fields are owned and written in place until
//! the first fork, copy-on-write after it.
//!
//! # What is bound where
//!
//! | code running in | sees |
//! | --- | --- |
//! | a handler under [`IsolationLayer`], sync or async, and its `Drop` impls | the request's scope |
//! | the response body while hyper streams it (after the handler returned) | the request's scope |
//! | [`spawn`], [`spawn_blocking`], [`thread::spawn`], `.bind_scope()` | a fork (per [`Propagation`]) |
//! | [`ScopeHandle::run`], [`ScopeHandle::bind`] | that handle's scope |
//! | while an [`EnterGuard`] lives (same task) | that guard's scope (the newest wins) |
//! | a plain `tokio::spawn` task (bound to nothing) | its own scope: its writes never reach a request ([`Stats::writes_unbound`]) |
//! | a plain thread other than `init`'s (a worker pool, a sync library), once the first request (or other unit of work) has forked the base | its own scope, kept with the thread: its writes never reach a request ([`Stats::writes_unbound`]) |
//! | start-up code: outside any tokio task, on the thread that called [`init`], or on any thread before the first request | the process default isolation scope, the base every request forks |
//!
//! # Reused worker threads: why nothing leaks
//!
//! One tokio worker thread polls hundreds of requests in turn, and blocking-pool threads run
//! one job after another. isoscope never derives a request's scope from what a thread last
//! held (the sentry-tower leak): the layer forks from the process default, with no
//! breadcrumbs. The request's scope is held by a tokio task-local, bound with tokio's own API
//! (`LocalKey::scope` for the response future, `sync_scope` for the inner `call` and each poll
//! and drop of the response body), which restores the previous value after every poll, also on
//! panic. The thread-local guard stack of [`ScopeHandle::enter`] is defended three ways: a
//! guard removes exactly its own entry, whatever the drop order; every poll and job that
//! isoscope runs restores the stack's depth when it ends (so a `mem::forget`-ed guard or a
//! panic mid-way is purged, and counted in [`Stats::bindings`]); and an entry
//! left by another task (say a raw `spawn_blocking` job that leaked its guard) is ignored and
//! purged by the next lookup. The reset path never panics, not even during thread-local
//! destruction.
//!
//! Code bound to no scope cannot leak into requests either: a write from a plain
//! `tokio::spawn` task goes to a scope of that task (bounded: at most 1,024 such tasks' scopes
//! are kept), and a write from a plain thread that is not start-up code (a handler handed work
//! to a pool thread, which set the user) goes to a scope of that thread (dropped with it); both
//! are counted in [`Stats::writes_unbound`]. Only start-up code — outside any tokio task, on the
//! thread that called [`init`], or on any thread before the first request forks the base —
//! writes to the process default that requests fork. To report from a pool job with the
//! request's data, bind its scope to the job: `let scope = isoscope::isolation_scope();` in the
//! handler, `scope.run(|| ..)` in the job.
//!
//! # Panics
//!
//! [`init`] installs a panic hook (chained to the one in place; [`Options::capture_panics`]
//! opts out) that captures every panic once, with the scope active where it happened: a
//! handler, a response body, an [`spawn`]ed child, a [`spawn_blocking`] job, a
//! [`thread::spawn`] thread, a plain task or thread. Where `CatchPanicLayer` or `TimeoutLayer`
//! sit around [`IsolationLayer`] does not matter.
//!
//! # Spawned work
//!
//! tokio does not propagate task-locals to spawned work. Use [`spawn`], [`spawn_blocking`],
//! [`thread::spawn`] or [`ScopeFutureExt::bind_scope`]: they carry the active scope into the
//! child according to [`Propagation`] (`Fork` by default: the child sees the request's data,
//! and its own writes never flow back).
//!
//! # Testing your app
//!
//! [`test::with_captured_events`] runs a future with a fresh client bound to a fresh scope and
//! returns what was captured inside, requests driven through your router with `oneshot`
//! included; tests running in parallel each see only their own events:
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new()
//!     .route("/", get(|| async {
//!         isoscope::add_breadcrumb(isoscope::Breadcrumb::new("step 1"));
//!         isoscope::capture_message("oops", isoscope::Level::Warning);
//!     }))
//!     .layer(isoscope::IsolationLayer::new());
//! let events = isoscope::test::with_captured_events(async {
//!     app.oneshot(http::Request::get("/").body(axum::body::Body::empty()).unwrap()).await.unwrap();
//! })
//! .await;
//! assert_eq!(events.len(), 1);
//! assert_eq!(events[0].breadcrumbs[0].message.as_deref(), Some("step 1"));
//! assert!(events[0].tags.contains_key("request_id"));
//! # }
//! ```
//!
//! A [`MemoryTransport`] passed to [`init`] works too, for a test binary with one test.
//!
//! # Where things are
//!
//! The crate root holds what most code names: the free functions, [`init`] and [`Options`],
//! the scope types, the common wire types ([`Event`], [`Breadcrumb`], [`User`], [`Level`]),
//! [`Envelope`] and the transports. The root's re-exports of [`layer`] and [`transport`] items
//! (`IsolationLayer`, `Isolation`, `ResponseBody`, `RequestInfo`, `HttpTransport`,
//! `MemoryTransport`, ...) are deliberate shortcuts; [`protocol`] holds the payloads of the
//! other envelope items (attachments, sessions, client reports, logs, check-ins).
//!
//! # Features
//!
//! - `axum` (default): the [`RequestScope`] extractor and route templates (`MatchedPath`) as
//!   transaction names.
//! - `reqwest` (default): `HttpTransport`, used when a DSN is configured.
//! - `tracing`: `integrations::tracing::BreadcrumbLayer`, which turns tracing events into
//!   breadcrumbs, events and logs of the active request.
//! - `log`: `integrations::log::Logger`, the same for `log` records.
//! - `opentelemetry`: events, logs and outgoing trace headers follow the active OpenTelemetry
//!   span (`tracing-opentelemetry`), so Sentry and an OpenTelemetry backend show one trace.

#![cfg_attr(docsrs, feature(doc_cfg))]

mod bind;
mod client;
mod debug;
mod dsn;
mod error;
mod event;
pub mod integrations;
pub mod layer;
pub mod logs;
mod monitor;
mod outcome;
pub mod protocol;
mod scope;
mod sdk;
mod stack;
mod stats;
pub mod test;
mod trace;
pub mod transport;
mod util;

/// README's Rust blocks, compiled as doctests so that they never rot.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
mod readme {}

use std::borrow::Cow;
use std::future::Future;

pub use bind::{spawn, spawn_blocking, thread, Bound, EnterGuard, Outcome, Propagation, ScopeFutureExt, ScopeHandle};
pub use client::{
    flush, init, start_span, trace_headers, trace_headers_for, Client, ClientGuard, Options, SamplingContext,
    SpanGuard, TraceHeaders, TransactionStyle,
};
pub use dsn::{Dsn, DsnError, DsnOrigin};
pub use error::Error;
#[doc(no_inline)] // documented at `protocol::Attachment`; here as Sentry's unified API names it
pub use event::Attachment;
pub use event::{
    Breadcrumb, DataCategory, Delivery, Envelope, EnvelopeItem, Event, EventId, Exception, FinishedEnvelope, Frame,
    ItemType, Level, Mechanism, Package, Request, Sdk, Span, SpanStatus, Stacktrace, Template, Thread, Transaction,
    UnknownSpanStatus, User,
};
#[cfg(feature = "anyhow")]
#[cfg_attr(docsrs, doc(cfg(feature = "anyhow")))]
pub use integrations::anyhow::capture_anyhow;
#[cfg(feature = "axum")]
pub use integrations::axum::RequestScope;
pub use layer::{Isolation, IsolationLayer, ResponseBody};
pub use monitor::{capture_check_in, monitor, monitor_sync, JobOutcome, Monitor};
pub use outcome::ItemStats;
#[doc(no_inline)] // documented at its public module path, `layer::RequestInfo`
pub use scope::RequestInfo;
pub use scope::{RequestBodySize, Scope, Tags, TagsIter};
pub use stats::{stats, BindingCounters, Stats};
pub use trace::{InvalidId, PropagationContext, SpanId, TraceId};
#[cfg(feature = "reqwest")]
pub use transport::{HttpTransport, HttpTransportBuilder};
pub use transport::{LocalTransport, MemoryTransport, Transport};

/// The active isolation scope: the request's inside a handler (or whatever a guard or
/// [`ScopeHandle::run`] bound); in a tokio task bound to nothing, a scope of that task's own;
/// else (outside any tokio task) the process default.
///
/// ```
/// let request = isoscope::isolation_scope().fork();
/// assert_eq!(request.run(isoscope::isolation_scope), request);
/// ```
pub fn isolation_scope() -> ScopeHandle {
    bind::find(bind::Access::Own)
}

/// The global scope: applied to every event of the process, below every other scope.
///
/// ```
/// isoscope::global_scope().configure(|s| s.set_tag("service", "checkout"));
/// ```
pub fn global_scope() -> ScopeHandle {
    bind::global().clone()
}

/// Edits the active isolation scope in place (see [`ScopeHandle::configure`]).
///
/// ```
/// isoscope::configure_scope(|scope| {
///     scope.set_tag("tenant", "acme");
///     scope.set_level(Some(isoscope::Level::Warning));
/// });
/// ```
pub fn configure_scope<F: FnOnce(&mut Scope)>(f: F) {
    bind::find(bind::Access::Write).configure(f);
}

/// Records a breadcrumb in the active isolation scope, after `before_breadcrumb`.
///
/// ```
/// isoscope::add_breadcrumb(isoscope::Breadcrumb::new("user logged in").category("auth"));
/// ```
pub fn add_breadcrumb(breadcrumb: Breadcrumb) {
    client::add_breadcrumb(breadcrumb);
}

// The generic free functions only convert their arguments: the rest is compiled once, in
// `bind`, not once per argument type in every caller's crate.

/// Sets a tag on the active isolation scope. A `&'static str` key or value is kept as is:
/// setting a tag from literals copies nothing.
///
/// ```
/// let tenant = String::from("acme");
/// isoscope::set_tag("tier", "gold"); // literals are not copied
/// isoscope::set_tag("tenant", tenant.as_str().to_owned()); // borrowed text: make it owned
/// isoscope::set_tag("tenant", tenant); // a `String` moves in
/// ```
pub fn set_tag(key: impl Into<Cow<'static, str>>, value: impl Into<Cow<'static, str>>) {
    bind::set_tag(key.into(), value.into());
}

/// Sets an extra value on the active isolation scope.
pub fn set_extra(key: impl Into<String>, value: impl Into<serde_json::Value>) {
    bind::set_extra(key.into(), value.into());
}

/// Adds a file to the active isolation scope: every event captured in it from now on (in a
/// request: the request's events) carries it, in the same envelope (see
/// [`Scope::add_attachment`]).
///
/// ```
/// use isoscope::protocol::Attachment;
/// let transport = isoscope::MemoryTransport::new();
/// let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
/// isoscope::isolation_scope().fork().run(|| {
///     isoscope::add_attachment(Attachment::new("payload.json", r#"{"order": 7}"#).with_content_type("application/json"));
///     isoscope::capture_message("order refused", isoscope::Level::Warning);
/// });
/// let envelope = &transport.envelopes()[0];
/// assert_eq!(envelope.attachments().next().unwrap().bytes().as_ref(), br#"{"order": 7}"#);
/// ```
pub fn add_attachment(attachment: Attachment) {
    bind::add_attachment(attachment);
}

/// Sets or clears the user on the active isolation scope.
pub fn set_user(user: Option<User>) {
    bind::set_user(user);
}

/// Sets a context on the active isolation scope.
pub fn set_context(key: impl Into<String>, value: impl Into<serde_json::Value>) {
    bind::set_context(key.into(), value.into());
}
/// Runs `f` with a current scope: a fork of the enclosing current scope (if any) edited by
/// `configure`. Events captured inside carry it on top of the isolation scope; writes through
/// the free functions still go to the isolation scope.
///
/// ```
/// let transport = isoscope::MemoryTransport::new();
/// let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
/// isoscope::with_scope(
///     |scope| scope.set_tag("phase", "import"),
///     || isoscope::capture_message("inside", isoscope::Level::Info),
/// );
/// isoscope::capture_message("outside", isoscope::Level::Info);
/// let events = transport.events();
/// assert_eq!(events[0].tags.get("phase").map(String::as_str), Some("import"));
/// assert_eq!(events[1].tags.get("phase"), None);
/// ```
pub fn with_scope<C, F, R>(configure: C, f: F) -> R
where
    C: FnOnce(&mut Scope),
    F: FnOnce() -> R,
{
    bind::with_scope(configure, f)
}

/// The async twin of [`with_scope`]: the current scope is bound whenever the future is polled.
///
/// ```
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// let transport = isoscope::MemoryTransport::new();
/// let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
/// isoscope::with_scope_async(|s| s.set_tag("phase", "async"), async {
///     tokio::task::yield_now().await;
///     isoscope::capture_message("inside", isoscope::Level::Info);
/// })
/// .await;
/// assert_eq!(transport.events()[0].tags["phase"], "async");
/// # }
/// ```
pub fn with_scope_async<C, F>(configure: C, future: F) -> impl Future<Output = F::Output>
where
    C: FnOnce(&mut Scope),
    F: Future,
{
    bind::with_scope_async(configure, future)
}

/// Captures a message event with the active scopes. Returns its id, or `None` if no client is
/// initialised, or the event was sampled out or dropped by `before_send`.
///
/// ```
/// let transport = isoscope::MemoryTransport::new();
/// let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
/// let id = isoscope::capture_message("low disk", isoscope::Level::Warning).unwrap();
/// assert_eq!(transport.events()[0].event_id, id);
/// assert_eq!(isoscope::last_event_id(), Some(id));
/// ```
pub fn capture_message(message: impl Into<String>, level: Level) -> Option<EventId> {
    let message = message.into();
    client::capture_at_site(move || Event::message(message, level))
}

/// Captures an error event with the active scopes: one exception per error in its `source()`
/// chain, the outermost last.
pub fn capture_error(error: &(dyn std::error::Error + 'static)) -> Option<EventId> {
    client::capture_error_at_site(|| Event::from_error(error))
}

/// Captures an event with the active scopes (values set on the event win).
pub fn capture_event(event: Event) -> Option<EventId> {
    client::capture_event(event)
}

/// The id of the last event captured with the active isolation scope.
pub fn last_event_id() -> Option<EventId> {
    bind::find(bind::Access::Read).last_event_id()
}
