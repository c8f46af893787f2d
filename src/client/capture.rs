//! The capture pipeline: an event and the scopes in force become an envelope for the client's
//! transport (merge, sample, defaults, processors, `before_send`, scrub, limits), and the
//! `before_breadcrumb` path of breadcrumbs.

use std::sync::Arc;

use super::{client, has_before_breadcrumb, Core};
use crate::bind::{self, reentrant, ScopeHandle};
use crate::event::{limits, scrub, Breadcrumb, Envelope, Event, EventId};
use crate::scope::{apply_scopes, Scope};
use crate::stats::{incr, COUNTERS};

/// Records a breadcrumb in the active isolation scope, after `before_breadcrumb`.
#[inline]
pub(crate) fn add_breadcrumb(breadcrumb: Breadcrumb) {
    if has_before_breadcrumb() {
        return add_breadcrumb_hooked(breadcrumb);
    }
    bind::record_breadcrumb(breadcrumb);
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
    capture_with(isolation, current, event, Stack::Never)
}

fn capture_with(isolation: ScopeHandle, current: Option<Arc<Scope>>, event: Event, stack: Stack) -> Option<EventId> {
    if reentrant::any_held() {
        // Called from inside a `configure` closure: capture once the scope is released (a stack
        // attached then is the deferred call's, whose innermost frames are trimmed anyway).
        let id = event.event_id;
        reentrant::defer(move || {
            capture_now(isolation, current, event, stack);
        });
        return Some(id);
    }
    capture_now(isolation, current, event, stack)
}

/// `capture_message` / `capture_error`: the capture site's stack with `attach_stacktrace`.
pub(crate) fn capture_at_site(event: Event) -> Option<EventId> {
    capture_with(bind::active(), bind::current(), event, Stack::IfAttach)
}

/// [`capture`] without waiting for this thread's scope lock to be released: for the panic
/// hook, where queued work would be dropped by the unwinding (a scope this thread holds reads
/// as empty, see `ScopeHandle::snapshot`; no lock is waited for while another is held).
pub(crate) fn capture_now(
    isolation: ScopeHandle,
    current: Option<Arc<Scope>>,
    mut event: Event,
    stack: Stack,
) -> Option<EventId> {
    let iso = isolation.snapshot();
    let Some(client) = client_for(current.as_deref(), &iso) else {
        incr(&COUNTERS.events_dropped_no_client);
        return None;
    };
    incr(&COUNTERS.events_captured);
    let options = &client.options;
    if options.sample_rate < 1.0 && crate::util::random_f64() >= options.sample_rate {
        incr(&COUNTERS.events_dropped_sampled);
        return None;
    }
    attach_stack(&mut event, stack, options);
    let global = bind::global().snapshot();
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
    super::defaults::add_contexts(&mut event);
    if !event.contexts.contains_key("trace") {
        // The request's trace (its forks, children and blocking jobs share it), else the process's.
        let trace = match iso.request() {
            Some(request) => request.trace().to_context(),
            None => crate::trace::process().to_context(),
        };
        event.contexts.insert("trace".to_owned(), trace);
    }
    if event.sdk.integrations.is_empty() {
        event.sdk.integrations = crate::sdk::integrations(options.capture_panics);
    }
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
        scrub::scrub(&mut event);
    }
    limits::apply(&mut event);
    let id = event.event_id;
    isolation.set_last_event_id(id);
    client.transport.send(Envelope::from_event(event));
    Some(id)
}

/// The client events captured with these scopes go to: one bound to the current or isolation
/// scope wins over the process-wide one.
pub(super) fn client_for(current: Option<&Scope>, iso: &Scope) -> Option<Arc<Core>> {
    let bound = current.and_then(Scope::client).or_else(|| iso.client()).cloned();
    bound.and_then(|c| c.downcast::<Core>().ok()).or_else(client)
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
    capture_with(bind::active(), bind::current(), event, stack)
}

/// Captures `event` with the active scopes (values set on the event win).
pub(crate) fn capture_event(event: Event) -> Option<EventId> {
    capture(bind::active(), bind::current(), event)
}
