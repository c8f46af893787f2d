//! The panic hook: every panic is captured, once, with the scope active where it happened (a
//! handler, a response body, a spawned child, a blocking job, a thread), whatever the order of
//! the Tower layers around the service and whoever catches the panic afterwards.
//!
//! `init` installs the hook once per process, chained to the hook in place then (which still
//! runs, after ours). It captures only while a client started with `capture_panics(true)` (the
//! default) is in force; when that client's guard drops, the hook goes back to only calling the
//! previous one. (A hook cannot be taken out of the middle of a chain without dropping hooks
//! installed after it, so "restored" is behaviour, not the hook object.)
//!
//! The hook only enqueues (the transport's `send` never blocks), so a panic on a tokio worker
//! never waits for the network; in a build with `panic = "abort"`, where the process ends right
//! after the hook, it also flushes, for at most [`ABORT_FLUSH`].

use std::cell::Cell;
use std::panic::PanicHookInfo;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Once;
use std::time::Duration;

use crate::bind::{self, Outcome};
use crate::event::{Event, Level};

/// Longest flush in the hook of a `panic = "abort"` build.
pub(crate) const ABORT_FLUSH: Duration = Duration::from_secs(2);

static INSTALLED: Once = Once::new();
/// Whether the client in force captures panics.
static ACTIVE: AtomicBool = AtomicBool::new(false);
/// Whether a [`Client`](super::Client) that captures panics was made: a panic in a scope it is
/// bound to is captured for it (by the client the scope resolves to, if that one wants panics).
static BOUND: AtomicBool = AtomicBool::new(false);

fn install() {
    INSTALLED.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if ACTIVE.load(Ordering::Acquire) || BOUND.load(Ordering::Acquire) {
                on_panic(info);
            }
            previous(info);
        }));
    });
}

/// Installs the hook (once per process) and sets whether it captures for the process-wide
/// client.
pub(crate) fn set_capturing(on: bool) {
    if on {
        install();
    }
    ACTIVE.store(on, Ordering::Release);
}

/// A [`Client`](super::Client) that captures panics was made: installs the hook, which from
/// now on looks at every panic (and captures it where the scope resolves to a client that
/// wants panics).
pub(crate) fn bound_client_captures() {
    install();
    BOUND.store(true, Ordering::Release);
}

thread_local! {
    /// Set by the hook on the panicking thread once it captured the panic, taken by the layer
    /// as the panic unwinds through it: the layer captures only a panic the hook did not (the
    /// hook is off, or a hook set after `init` replaced ours).
    static HOOK_CAPTURED: Cell<bool> = const { Cell::new(false) };
}

/// Forgets a capture by the hook on this thread (the start of a layer's guarded poll: a panic
/// the hook saw earlier was caught somewhere else).
pub(crate) fn forget_hook_capture() {
    let _ = HOOK_CAPTURED.try_with(|c| c.set(false));
}

/// Whether the hook captured the panic now unwinding on this thread (and forgets it).
pub(crate) fn hook_captured() -> bool {
    HOOK_CAPTURED.try_with(|c| c.replace(false)).unwrap_or(false)
}

/// The hook's work. It must not panic: a panic inside a panic hook aborts the process. Nothing
/// here unwraps; user code that runs (`before_send`, event processors) must not panic either.
fn on_panic(info: &PanicHookInfo<'_>) {
    if crate::transport::on_worker_thread() {
        return; // a panic inside our own delivery code must not feed itself
    }
    let handle = bind::find(bind::Access::Read);
    let current = bind::current();
    if !super::capture::wants_panic(&handle, current.as_deref()) {
        return; // no client in force here captures panics (the layer's fallback may, if its does)
    }
    let mut event = Event::from_panic(info.payload());
    if let Some(location) = info.location() {
        event.extra.insert(
            "panic.location".to_owned(),
            format!("{}:{}:{}", location.file(), location.line(), location.column()).into(),
        );
    }
    event.level = Some(Level::Fatal);
    super::capture_now(handle.clone(), current, || event, super::Stack::Panic, true);
    let _ = HOOK_CAPTURED.try_with(|c| c.set(true));
    // A no-op unless `handle` is a request's own scope.
    handle.end(Outcome::Panicked);
    if cfg!(panic = "abort") {
        super::flush(ABORT_FLUSH);
    }
}
