//! The capture pipeline: an event and the scopes in force become an envelope for the client's
//! transport — sampled, with O(1) snapshots of the scopes, through the event processors and
//! `before_send` if there are any — whose deferred `Capture` step (merge, defaults, scrub,
//! limits) runs when the transport calls `Envelope::finish`; and the `before_breadcrumb` path
//! of breadcrumbs.

use std::sync::Arc;

use super::{client, has_before_breadcrumb, Core};
use crate::bind::{self, reentrant, ScopeHandle};
use crate::event::{limits, scrub, Breadcrumb, Envelope, Event, EventId, Finish};
use crate::outcome::{DataCategory, DiscardReason};
use crate::scope::{apply_scopes, Scope};
use crate::stats::{incr, COUNTERS};
use crate::trace::PropagationContext;

/// Records a breadcrumb in the active isolation scope, after `before_breadcrumb`.
#[inline]
pub(crate) fn add_breadcrumb(breadcrumb: Breadcrumb) {
    if has_before_breadcrumb() {
        return add_breadcrumb_hooked(breadcrumb);
    }
    bind::record_breadcrumb(breadcrumb);
}

/// [`add_breadcrumb`], returning the breadcrumb as made, for a log made of the same record:
/// shared with the scope (nothing copied), or, when a `before_breadcrumb` hook is set (it may
/// edit or drop the breadcrumb, not the log), a copy.
#[cfg_attr(not(any(feature = "tracing", feature = "log")), allow(dead_code))]
pub(crate) fn add_shared_breadcrumb(breadcrumb: Breadcrumb) -> Arc<Breadcrumb> {
    if has_before_breadcrumb() {
        let copy = Arc::new(breadcrumb.clone());
        add_breadcrumb_hooked(breadcrumb);
        return copy;
    }
    let shared = bind::share_breadcrumb(breadcrumb);
    bind::record_shared_breadcrumb(shared.clone());
    shared
}

/// [`add_breadcrumb`] through the `before_breadcrumb` hook. Out of line: most apps set none.
#[cold]
#[inline(never)]
fn add_breadcrumb_hooked(breadcrumb: Breadcrumb) {
    if let Some(breadcrumb) = run_before_breadcrumb(breadcrumb) {
        bind::record_breadcrumb(breadcrumb);
    }
}

/// Runs the `before_breadcrumb` hook, if one is set (user code: call it with no lock or
/// borrow of ours held); `None` when it dropped the breadcrumb.
fn run_before_breadcrumb(breadcrumb: Breadcrumb) -> Option<Breadcrumb> {
    let Some(hook) = client().and_then(|c| c.options.before_breadcrumb.clone()) else { return Some(breadcrumb) };
    let kept = hook(breadcrumb);
    if kept.is_none() {
        incr(&COUNTERS.breadcrumbs_dropped);
    }
    kept
}

/// Which stack an event without one gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Stack {
    /// None (an event made elsewhere: a 5xx response, a tracing event, `capture_event`).
    Never,
    /// The capture site's, with `Options::attach_stacktrace` (`capture_message`/`_error`).
    IfAttach,
    /// The panic hook, on the panicking thread: the current stack, always (the hook captures
    /// only for a client that wants panics, see [`wants_panic`]).
    Panic,
    /// The error's own: a std `Backtrace`'s `Debug` text (`capture_anyhow`); if it has no
    /// frames, as `IfAttach`.
    #[cfg_attr(not(feature = "anyhow"), allow(dead_code))]
    StdText(String),
}

/// The capture pipeline: merge scopes, sample, run processors and `before_send` (outside every
/// lock), hand the envelope to the transport.
pub(crate) fn capture(isolation: ScopeHandle, current: Option<Arc<Scope>>, event: Event) -> Option<EventId> {
    let error = is_error(&event);
    capture_with(isolation, current, || event, Stack::Never, error)
}

/// Whether an event is an error event (an exception, level error or above): captured in a
/// request, it makes the request's session `errored`, also when sampling or a rate limit then
/// drops it — not when `before_send` or an event processor does (the sessions spec's rule). A
/// message never is one.
fn is_error(event: &Event) -> bool {
    !event.exception.is_empty() && event.level.is_none_or(|l| l >= crate::Level::Error)
}

/// `build` makes the event only once it is known to be wanted (see [`capture_now`]).
fn capture_with(
    isolation: ScopeHandle,
    current: Option<Arc<Scope>>,
    build: impl FnOnce() -> Event,
    stack: Stack,
    error: bool,
) -> Option<EventId> {
    if reentrant::any_held() {
        // Called from inside a `configure` closure: capture once the scope is released (a stack
        // attached then is the deferred call's, whose innermost frames are trimmed anyway).
        let event = build();
        let id = event.event_id;
        reentrant::defer(move || {
            capture_now(isolation, current, || event, stack, error);
        });
        return Some(id);
    }
    capture_now(isolation, current, build, stack, error)
}

/// `capture_message` / `capture_error`: the capture site's stack with `attach_stacktrace`.
/// The event is built only if it is wanted: not for a sampled-out capture, nor for one the
/// transport has no room for.
pub(crate) fn capture_at_site(build: impl FnOnce() -> Event) -> Option<EventId> {
    capture_with(bind::find(bind::Access::Read), bind::current(), build, Stack::IfAttach, false)
}

/// `capture_error`: [`capture_at_site`] for an error event (see [`is_error`]).
pub(crate) fn capture_error_at_site(build: impl FnOnce() -> Event) -> Option<EventId> {
    capture_with(bind::find(bind::Access::Read), bind::current(), build, Stack::IfAttach, true)
}

/// [`capture`] without waiting for this thread's scope lock to be released: for the panic
/// hook, where queued work would be dropped by the unwinding (a scope this thread holds reads
/// as empty, see `ScopeHandle::snapshot`; no lock is waited for while another is held).
///
/// On the calling thread: the client, sampling, the stack walk (addresses only), snapshots of
/// the scopes (O(1): their fields are shared, not copied) and, when the scopes or the client
/// have them, the event processors and `before_send` (user code runs in the capture call, on
/// the capturing thread, and may drop the event). Everything else — merging the scopes in,
/// defaults, the trace context, scrubbing, size limits — is [`Capture::finish`], run when the
/// envelope is first read: on the transport's thread.
///
/// When the transport has no room ([`Transport::has_room`](crate::Transport::has_room): its
/// queue is full, as in an error storm) and no hook would see the event, the event is not even
/// built: counted in `events_dropped_queue_full`, as `send` would have.
pub(crate) fn capture_now(
    isolation: ScopeHandle,
    current: Option<Arc<Scope>>,
    build: impl FnOnce() -> Event,
    stack: Stack,
    error: bool,
) -> Option<EventId> {
    let iso = isolation.snapshot();
    let Some(client) = client_for(current.as_deref(), &iso) else {
        incr(&COUNTERS.events_dropped_no_client);
        return None;
    };
    let recorder = &client.recorder;
    recorder.captured(DataCategory::Error, 1);
    let options = &client.options;
    // An error event makes its request's session `errored`, unless a hook drops it.
    let mark = || {
        if error {
            isolation.mark_errored();
        }
    };
    if options.sample_rate < 1.0 && crate::util::random_f64() >= options.sample_rate {
        recorder.discarded(DataCategory::Error, DiscardReason::SampleRate, 1);
        mark();
        return None;
    }
    let global = bind::global().snapshot();
    let hooked = has_hooks(&client, current.as_deref(), &iso, &global);
    if !hooked && !client.transport.has_room() {
        recorder.discarded(DataCategory::Error, DiscardReason::QueueOverflow, 1);
        crate::debug::once(crate::debug::Problem::QueueFull);
        mark();
        let id = EventId::new();
        isolation.set_last_event_id(id);
        return Some(id);
    }
    let mut event = build();
    attach_stack(&mut event, stack, options);
    let id = event.event_id;
    let response = isolation.response_status();
    let otel = crate::trace::otel_span();
    let mut capture = Capture { core: client.clone(), event, current, iso, global, response, otel, merged: false };
    if hooked {
        let hooked = match capture.run_hooks() {
            Ok(hooked) => hooked,
            Err(reason) => {
                client.recorder.discarded(DataCategory::Error, reason, 1);
                return None;
            }
        };
        capture = hooked;
    }
    mark();
    isolation.set_last_event_id(id);
    let attachments = capture.attachments();
    let mut envelope = Envelope::deferred(id, Box::new(capture), client.recorder.clone());
    if !attachments.is_empty() {
        envelope.attach(attachments);
    }
    client.transport.send(envelope);
    Some(id)
}

/// A captured event and what it is still to be merged with (see [`capture_now`]).
struct Capture {
    core: Arc<Core>,
    event: Event,
    current: Option<Arc<Scope>>,
    iso: Scope,
    global: Scope,
    /// The status code of the response of the request the event was captured in, if its head
    /// was out by then (`contexts.response`).
    response: Option<u16>,
    /// The OpenTelemetry span active at the capture: its trace wins over the request's.
    otel: Option<crate::trace::OtelSpan>,
    /// Whether the scopes are merged in already (they are before the hooks run).
    merged: bool,
}

/// Whether user code (event processors, `before_send`) must see an event captured with these.
fn has_hooks(core: &Core, current: Option<&Scope>, iso: &Scope, global: &Scope) -> bool {
    core.options.before_send.is_some()
        || !global.processors().is_empty()
        || !iso.processors().is_empty()
        || current.is_some_and(|c| !c.processors().is_empty())
}

impl Capture {
    /// The attachments of its scopes, the global scope's first (none: no allocation).
    fn attachments(&self) -> Vec<crate::event::Attachment> {
        let scopes = [Some(&self.global), Some(&self.iso), self.current.as_deref()];
        if scopes.iter().flatten().all(|s| s.attachments().is_empty()) {
            return Vec::new();
        }
        scopes.iter().flatten().flat_map(|s| s.attachments()).cloned().collect()
    }

    /// Merges the scopes in and runs the processors (global, isolation, current) and
    /// `before_send`, outside every lock; the reason when one of them dropped the event.
    fn run_hooks(mut self) -> Result<Self, DiscardReason> {
        self.merge();
        let Self { core, event, current, iso, global, response, otel, merged } = self;
        let processors =
            global.processors().iter().chain(iso.processors()).chain(current.iter().flat_map(|c| c.processors()));
        let mut event = event;
        for p in processors {
            event = p(event).ok_or(DiscardReason::EventProcessor)?;
        }
        if let Some(hook) = &core.options.before_send {
            event = hook(event).ok_or(DiscardReason::BeforeSend)?;
        }
        Ok(Self { event, core, current, iso, global, response, otel, merged })
    }

    /// The scopes (current, isolation, global), the client's release, environment and host
    /// name, the process's contexts, the trace context and the SDK's integrations.
    fn merge(&mut self) {
        if std::mem::replace(&mut self.merged, true) {
            return;
        }
        let options = &self.core.options;
        let event = &mut self.event;
        let mut scopes: Vec<&Scope> = Vec::with_capacity(3);
        scopes.extend(self.current.as_deref());
        scopes.push(&self.iso);
        scopes.push(&self.global);
        apply_scopes(event, &scopes, options.max_breadcrumbs);
        if event.release.is_none() {
            event.release = options.release.as_deref().map(str::to_owned);
        }
        if event.environment.is_none() {
            event.environment = options.environment.as_deref().map(str::to_owned);
        }
        if event.server_name.is_none() {
            event.server_name = options.server_name.as_deref().map(str::to_owned);
        }
        super::defaults::add_contexts(event);
        if options.send_default_pii {
            let ip = self.iso.request().and_then(|r| r.client_ip(options.trust_proxy_headers));
            if let Some(ip) = ip {
                let user = event.user.get_or_insert_with(crate::User::new);
                if user.ip_address.is_none() {
                    user.ip_address = Some(ip.to_string());
                }
            }
        }
        if let Some(status) = self.response {
            let response = serde_json::json!({"type": "response", "status_code": status});
            event.contexts.entry("response".to_owned()).or_insert(response);
        }
        if let (false, Some(otel)) = (event.contexts.contains_key("trace"), self.otel) {
            event.contexts.insert("trace".to_owned(), otel.to_context());
        }
        if !event.contexts.contains_key("trace") {
            // The request's trace (its forks, children and blocking jobs share it), else the process's.
            let trace = trace_of(&self.iso);
            let context = match self.iso.active_span() {
                Some((span, parent)) => trace.to_span_context(span, parent),
                None => trace.to_context(),
            };
            event.contexts.insert("trace".to_owned(), context);
        }
        if event.sdk.integrations.is_empty() {
            event.sdk.integrations = crate::sdk::integrations(options.capture_panics);
        }
    }
}

/// The propagation context of the request an isolation scope serves, else the process's.
pub(super) fn trace_of(iso: &Scope) -> &PropagationContext {
    match iso.request() {
        Some(request) => request.trace(),
        None => crate::trace::process(),
    }
}

impl Finish for Capture {
    /// The event, and the scopes' breadcrumbs, tags and extra it will be merged with (shared
    /// with live scopes until their requests end; then this capture keeps them alive).
    fn size_hint(&self) -> usize {
        let scope = |s: &Scope| s.breadcrumb_bytes() + 64 * (s.tags().len() + s.extra().len());
        crate::event::event_size_hint(&self.event)
            + scope(&self.iso)
            + scope(&self.global)
            + self.current.as_deref().map_or(0, scope)
    }

    /// On the transport's thread: merge (unless the hooks did), scrub, apply size limits, and
    /// the dynamic sampling context of the event's trace for the envelope's `trace` header.
    fn finish(mut self: Box<Self>) -> (Event, Option<serde_json::Value>) {
        self.merge();
        let Self { core, mut event, iso, .. } = *self;
        if !core.options.send_default_pii {
            scrub::scrub(&mut event, &core.options.scrubber);
        }
        limits::apply(&mut event);
        let trace = trace_of(&iso);
        let own_trace = event
            .contexts
            .get("trace")
            .and_then(|t| t.get("trace_id"))
            .and_then(|t| t.as_str())
            .is_some_and(|id| id.parse().ok() == Some(trace.trace_id()));
        // A trace context set by hand (another trace) gets no sampling context of ours.
        let dsc = own_trace.then(|| super::trace_headers::dynamic_sampling_context(trace, &core));
        (event, dsc)
    }
}

/// The client for an event captured with these scopes: the one bound to them; else, on the
/// runtime of a running `test::with_captured_events`, that test's; else the process's.
pub(super) fn client_for(current: Option<&Scope>, iso: &Scope) -> Option<Arc<Core>> {
    let bound = current.and_then(Scope::client).or_else(|| iso.client()).cloned();
    bound.and_then(|c| c.downcast::<Core>().ok()).or_else(super::test_runtimes::client_of_this_runtime).or_else(client)
}

/// Whether a panic with these scopes goes to a client that captures panics.
pub(crate) fn wants_panic(isolation: &ScopeHandle, current: Option<&Scope>) -> bool {
    client_for(current, &isolation.snapshot()).is_some_and(|c| c.options.capture_panics)
}

/// Gives an event without a stack the one `stack` asks for.
fn attach_stack(event: &mut Event, stack: Stack, options: &super::Options) {
    let own = match &stack {
        Stack::StdText(text) => crate::stack::from_std_text(text, &options.in_app),
        _ => None,
    };
    let walk = match stack {
        Stack::Never => false,
        Stack::Panic => true,
        Stack::IfAttach | Stack::StdText(_) => options.attach_stacktrace,
    };
    if own.is_none() && !walk {
        return;
    }
    let slot = event.stacktrace_slot();
    if slot.is_none() {
        *slot = own.or_else(|| Some(crate::stack::capture(&options.in_app)));
    }
}

/// Captures an error with its own std backtrace's text (`capture_anyhow`).
#[cfg(feature = "anyhow")]
pub(crate) fn capture_with_backtrace(event: Event, backtrace: Option<String>) -> Option<EventId> {
    let stack = backtrace.map_or(Stack::IfAttach, Stack::StdText);
    let error = is_error(&event);
    capture_with(bind::find(bind::Access::Read), bind::current(), || event, stack, error)
}

/// Captures `event` with the active scopes (values set on the event win).
pub(crate) fn capture_event(event: Event) -> Option<EventId> {
    capture(bind::find(bind::Access::Read), bind::current(), event)
}
