//! The process-wide scopes — the global scope and the default isolation scope, the *base*
//! every request forks — and who may write the base: start-up code.
//!
//! Start-up code is code bound to nothing, outside any tokio task, on the thread that called
//! `init`, or on any thread before start-up ends: when the first unit of work forks the base
//! (a request, a test client's scope, an unbound task's scope). Everything else bound to
//! nothing writes to a scope of its own (`unbound.rs`).

use std::cell::Cell;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};

use super::handle::ScopeHandle;
use super::stack;
use crate::scope::Scope;

/// Whether start-up has ended (the first unit of work forked the base).
static STARTED: AtomicBool = AtomicBool::new(false);

thread_local! {
    /// Whether this thread called `init`: its code outside tasks stays start-up code.
    static CALLED_INIT: Cell<bool> = const { Cell::new(false) };
}

/// The process-wide default isolation scope: active where nothing else is bound (for start-up
/// code), and the base that request scopes are forked from.
#[inline]
pub(crate) fn default_isolation() -> &'static ScopeHandle {
    static DEFAULT: OnceLock<ScopeHandle> = OnceLock::new();
    DEFAULT.get_or_init(|| ScopeHandle::new(Scope::default()))
}

/// The process-wide global scope, applied to every event.
#[inline]
pub(crate) fn global() -> &'static ScopeHandle {
    static GLOBAL: OnceLock<ScopeHandle> = OnceLock::new();
    GLOBAL.get_or_init(|| ScopeHandle::new(Scope::default()))
}

/// This thread called `init`: its code outside tasks configures the base.
pub(super) fn mark_init_thread() {
    let _ = CALLED_INIT.try_with(|c| c.set(true));
}

/// Whether code bound to nothing, outside any task, on this thread is start-up code.
pub(super) fn is_start_up() -> bool {
    !STARTED.load(Ordering::Relaxed) || CALLED_INIT.try_with(Cell::get).unwrap_or(true)
}

/// The start of a new unit of work (a request, a `Propagation::None` child): the process
/// default isolation scope without its breadcrumbs.
///
/// Every request needs this, on every worker thread at once: each thread keeps its own copy
/// (in its binding state), refreshed when the default scope changes, so forking does not make
/// all threads lock one mutex and bump the same reference counts.
pub(crate) fn request_base() -> Scope {
    // Read the version first: a write racing with a refresh makes the cache look stale next
    // time, never fresh when it is not.
    let version = default_isolation().version();
    let base = stack::cached_base(version).unwrap_or_else(|| refresh_request_base(version));
    // The cached copy's fields are all shared: cloning it is O(1).
    base.as_deref().cloned().unwrap_or_default()
}

/// Whether this thread's copy of the request base is fresh and empty (a new request's scope can
/// then be built in place). `false` when not known (first request on this thread, or the
/// default scope changed): the general path finds out, and refreshes the copy.
#[inline]
pub(super) fn request_base_is_empty() -> bool {
    stack::base_is_empty(default_isolation().version()).unwrap_or(false)
}

/// Re-reads the default scope into this thread's copy. Out of line: it runs once per thread
/// and change of the default scope, not per request.
#[cold]
#[inline(never)]
fn refresh_request_base(version: u64) -> Option<Arc<Scope>> {
    // Forking the base for a unit of work: start-up has ended. (Here, not on every request:
    // each thread's first fork and every change of the default scope pass here, so no request
    // is served before it.)
    if !STARTED.load(Ordering::Relaxed) {
        STARTED.store(true, Ordering::Relaxed);
    }
    // Taken before the thread's state is borrowed: it locks the default scope.
    let mut scope = default_isolation().snapshot();
    scope.clear_breadcrumbs();
    let scope = scope.localized();
    let base = (!scope.is_empty()).then(|| Arc::new(scope));
    stack::store_base(version, base.clone());
    base
}
