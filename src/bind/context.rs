//! The thread's binding context: which isolation scope is active, how entry points bind one,
//! and the reset path that restores and purges what they leave, and can never panic or leak.
//!
//! Four places can hold "the active isolation scope", looked up in this order:
//!
//! 1. the thread-local guard stack (`EnterGuard`, in `guard.rs`): the newest live entry made
//!    by the *current task* (or, on a plain thread, by "no task") above the innermost binding;
//! 2. the tokio task-local [`ISOLATION`], bound with tokio's own API by every entry point we
//!    own: `LocalKey::scope` (a `TaskLocalFuture`) for the layer's response future and for
//!    [`ScopeHandle::bind`] / spawned children, `LocalKey::sync_scope` for the inner service's
//!    `call`, every poll and drop of the response body, [`ScopeHandle::run`] and blocking jobs;
//! 3. in a tokio task bound to nothing (a plain `tokio::spawn`), or on a plain thread that is
//!    not start-up code, its own scope (`unbound.rs`): its writes never reach the process
//!    default that requests fork;
//! 4. the process-wide default isolation scope (start-up code: outside any tokio task, on the
//!    thread that called `init` or before the first request).
//!
//! Every binding also opens a *mark* on this thread's context ([`Marks`]): the guard stack's
//! depth on entry, restored on exit (also on unwind), so whatever user code pushed and leaked
//! inside is purged before the thread serves the next request, and guard entries made outside
//! the binding are not seen inside it (the innermost binding wins).
//!
//! The guard stack follows opentelemetry-rust's `ContextStack` redesign (PR #2378): each
//! entry is a slot with a unique id, a guard remembers `(position, id)`, and dropping a guard
//! removes exactly its own entry wherever it is (a tombstone when it is not on top). A guard
//! whose entry is gone (purged, or the thread-local already destroyed) does nothing. Entries
//! are removed from the `RefCell` first and dropped after the borrow ends, so a `Drop` impl
//! that calls back into isoscope never meets a borrowed stack (otel #3262/#3738).
//!
//! tokio's `sync_scope` and `TaskLocalFuture::poll` panic when the task-local cannot be
//! accessed (during thread-local destruction). No entry point of ours calls them then: each
//! first opens its mark, and binds only if this thread's context is still alive.

use std::cell::RefCell;
use std::sync::{Arc, OnceLock};

use tokio::task::futures::TaskLocalFuture;

use super::handle::ScopeHandle;
use super::unbound;
use crate::scope::Scope;
use crate::stats::{incr, COUNTERS};

tokio::task_local! {
    /// The isolation scope of the request (or other unit of work) the running code serves.
    pub(crate) static ISOLATION: ScopeHandle;
    /// The current scope of `with_scope` blocks, if any (shared: spawned work carries it).
    pub(crate) static CURRENT: Option<Arc<Scope>>;
}

/// More nested guards than this on one thread are refused (the guard is a no-op).
pub(super) const MAX_GUARDS: usize = 1024;

thread_local! {
    /// Everything this thread knows about bindings, in one place so that entering and leaving a
    /// binding is one borrow each way.
    pub(super) static CTX: RefCell<Ctx> = const {
        RefCell::new(Ctx { slots: Vec::new(), next_id: 1, floor: 0, base: None })
    };
}

pub(super) struct Entry {
    pub(super) id: u64,
    pub(super) owner: Option<tokio::task::Id>,
    pub(super) handle: ScopeHandle,
}

pub(super) struct Ctx {
    /// The guard stack. `None` is a tombstone left by a guard dropped out of order.
    pub(super) slots: Vec<Option<Entry>>,
    /// Per-thread, never reused: a stale guard can never match a newer entry.
    pub(super) next_id: u64,
    /// Depth at the innermost open mark. Entries below the floor were made outside it and are
    /// not seen inside it: the innermost binding wins, whether it is a guard or a bind.
    floor: usize,
    /// This thread's copy of the request base: `(version of the default scope, its copy)`; a
    /// `None` copy stands for the empty scope (the usual case). Behind an `Arc` so that nothing
    /// large moves here. Kept with the binding so that a new request looks at one thread-local.
    base: Option<(u64, Option<Arc<Scope>>)>,
}

impl Ctx {
    /// This thread's copy of the request base if it was taken at `version` of the default
    /// scope (`Some(None)`: the empty scope).
    fn fresh_base(&self, version: u64) -> Option<&Option<Arc<Scope>>> {
        match &self.base {
            Some((v, base)) if *v == version => Some(base),
            _ => None,
        }
    }

    pub(super) fn pop_tombstones(&mut self) {
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        // Entries below the floor can be dropped from inside a binding (a guard moved into a
        // future): a floor above the stack would hide the next guard.
        self.floor = self.floor.min(self.slots.len());
    }
}

/// The process-wide default isolation scope: active where nothing else is bound, and the base
/// that request scopes are forked from.
pub(crate) fn default_isolation() -> &'static ScopeHandle {
    static DEFAULT: OnceLock<ScopeHandle> = OnceLock::new();
    DEFAULT.get_or_init(|| ScopeHandle::new(Scope::default()))
}

/// The start of a new unit of work (a request, a `Propagation::None` child): the process
/// default isolation scope without its breadcrumbs.
///
/// Every request needs this, on every worker thread at once: each thread keeps its own copy,
/// refreshed when the default scope changes, so forking does not make all threads lock one
/// mutex and bump the same reference counts.
pub(crate) fn request_base() -> Scope {
    // Read the version first: a write racing with a refresh makes the cache look stale next
    // time, never fresh when it is not.
    let version = default_isolation().version();
    let cached = CTX.try_with(|ctx| ctx.try_borrow().ok()?.fresh_base(version).cloned()).ok().flatten();
    let base = cached.unwrap_or_else(|| refresh_request_base(version));
    // The cached copy's fields are all shared: cloning it is O(1).
    base.as_deref().cloned().unwrap_or_default()
}

/// Whether a new request's scope starts empty: nothing bound (no enclosing layer) and an empty
/// [`request_base`] (the usual case; the scope is then built in place, with nothing to copy).
pub(crate) fn request_starts_empty() -> bool {
    let version = default_isolation().version();
    CTX.try_with(|ctx| {
        let ctx = ctx.try_borrow().ok()?;
        Some(matches!(ctx.fresh_base(version), Some(None)) && ISOLATION.try_with(|_| ()).is_err())
    })
    .ok()
    .flatten()
    // Not known (first request on this thread, or the default scope changed): the general
    // path finds out, and refreshes the copy.
    .unwrap_or(false)
}

/// Re-reads the default scope into this thread's cache. Out of line: it runs once per thread
/// and change of the default scope, not per request.
#[cold]
#[inline(never)]
fn refresh_request_base(version: u64) -> Option<Arc<Scope>> {
    // Forking the base for a unit of work (a request, a test client's scope, a task's own
    // scope): start-up has ended. (Here, not on every request: each thread's first fork and every
    // change of the default scope pass here, so no request is served before it.)
    unbound::end_start_up();
    // Taken outside the borrow: it locks the default scope.
    let mut scope = default_isolation().snapshot();
    scope.clear_breadcrumbs();
    let scope = scope.localized();
    let base = (!scope.is_empty()).then(|| Arc::new(scope));
    let replaced = CTX
        .try_with(|ctx| ctx.try_borrow_mut().ok().and_then(|mut ctx| ctx.base.replace((version, base.clone()))))
        .ok()
        .flatten();
    drop(replaced); // outside the borrow: a processor's Drop may call back into isoscope
    base
}

/// The process-wide global scope, applied to every event.
pub(crate) fn global() -> &'static ScopeHandle {
    static GLOBAL: OnceLock<ScopeHandle> = OnceLock::new();
    GLOBAL.get_or_init(|| ScopeHandle::new(Scope::default()))
}

/// The active isolation scope (see the module docs for the lookup order), for reading: in an
/// unbound tokio task that has written nothing, the process default.
pub(crate) fn active() -> ScopeHandle {
    lookup().or_else(unbound::existing).unwrap_or_else(|| default_isolation().clone())
}

/// The active isolation scope as a handle to hand out (`isolation_scope()`): in an unbound
/// tokio task, that task's own scope (made on first use), so writes through it stay there.
pub(crate) fn active_own() -> ScopeHandle {
    lookup().or_else(unbound::own).unwrap_or_else(|| default_isolation().clone())
}

/// The active isolation scope, for writing: in an unbound tokio task, that task's own scope
/// (made on first use, and the write counted in `writes_unbound`).
pub(crate) fn active_for_write() -> ScopeHandle {
    lookup().or_else(unbound::for_write).unwrap_or_else(|| default_isolation().clone())
}

/// Runs `edit` on the active isolation scope under its lock (see [`ScopeHandle::write_now`]),
/// without cloning the handle when it is the bound one (the usual case in a handler); `edit`'s
/// `bool` says whether that scope is the global one. Not generic: `set_tag`,
/// `add_breadcrumb` and the other free functions share this one copy of the lookup and
/// locking code. Returns the scope when `edit` could not run (inside a `configure` closure):
/// the caller queues it.
///
/// `edit` must not run user code: the task-local stays borrowed (shared) while it runs.
#[inline(never)]
pub(crate) fn edit_active(edit: &mut dyn FnMut(&mut Scope, bool)) -> Option<ScopeHandle> {
    let mut apply = |handle: &ScopeHandle| {
        let global = handle == global();
        (!handle.write_now(&mut |s| edit(s, global))).then(|| handle.clone())
    };
    // With guards on the stack, the general path below looks through them.
    if no_guards() {
        if let Ok(pending) = ISOLATION.try_with(&mut apply) {
            return pending;
        }
    }
    apply(&active_for_write())
}

/// Whether this thread's guard stack is empty (or unavailable).
#[inline]
fn no_guards() -> bool {
    CTX.try_with(|ctx| ctx.try_borrow().map_or(true, |ctx| ctx.slots.is_empty())).unwrap_or(true)
}

/// The isolation scope bound by the innermost entry point (not a guard), if any.
pub(crate) fn task_bound() -> Option<ScopeHandle> {
    ISOLATION.try_with(ScopeHandle::clone).ok()
}

/// The current scope of an enclosing `with_scope`, if any.
pub(crate) fn current() -> Option<Arc<Scope>> {
    CURRENT.try_get().ok().flatten()
}

/// The newest live guard entry owned by the running task, else the bound scope. Entries left by
/// *other* tasks are stale (their task leaked them on this reused thread) and are purged on the
/// way. One borrow; nothing is dropped while it is held.
fn lookup() -> Option<ScopeHandle> {
    let (found, purged) = CTX
        .try_with(|ctx| {
            let mut ctx = ctx.try_borrow_mut().ok()?;
            if ctx.slots.is_empty() {
                return Some((None, Vec::new()));
            }
            let me = tokio::task::try_id();
            let floor = ctx.floor;
            let mut purged = Vec::new();
            let mut found = None;
            for (i, slot) in ctx.slots.iter_mut().enumerate().rev() {
                match slot {
                    Some(entry) if entry.owner == me && i >= floor => {
                        found = Some(entry.handle.clone());
                        break;
                    }
                    // Made by another task that is not running here now: it leaked it.
                    Some(entry) if entry.owner.is_some() => purged.push(slot.take()),
                    // Ours but outside the innermost binding, or made by plain-thread code around
                    // a `block_on`: not what this code should see, but still live.
                    _ => {}
                }
            }
            ctx.pop_tombstones();
            Some((found, purged))
        })
        .ok()
        .flatten()
        .unwrap_or_default();
    count_purged(&purged);
    drop(purged); // outside the borrow: a handle's Drop may call back into isoscope
    found.or_else(task_bound)
}

/// A mark on this thread's binding context, open until dropped: opened by every entry point
/// we own (layer polls, `run`, `bind`, spawn helpers) around the code it runs.
///
/// Opening it records the guard stack's depth and makes guard entries made before it invisible
/// (the new binding wins). Closing it (also on unwind) restores the floor and purges the guard
/// entries user code pushed inside and never removed.
pub(crate) struct Marks {
    /// `(depth, previous floor)`; `None` when the thread-local is unavailable (thread teardown:
    /// then nothing may be bound either).
    saved: Option<(usize, usize)>,
}

impl Marks {
    /// Opens a mark.
    #[inline]
    pub(crate) fn open() -> Self {
        let saved = CTX
            .try_with(|ctx| {
                let mut ctx = ctx.try_borrow_mut().ok()?;
                let depth = ctx.slots.len();
                Some((depth, std::mem::replace(&mut ctx.floor, depth)))
            })
            .ok()
            .flatten();
        Self { saved }
    }

    /// Whether the thread's context is alive, so a tokio task-local may be bound (tokio panics
    /// on binding one during thread-local destruction).
    #[inline]
    pub(crate) fn can_bind(&self) -> bool {
        self.saved.is_some()
    }
}

impl Drop for Marks {
    fn drop(&mut self) {
        let Some((depth, floor)) = self.saved else { return };
        // Restore the floor in one borrow; what was pushed inside and left behind (rare) is cut
        // in a second one.
        let leaked = CTX
            .try_with(|ctx| {
                let mut ctx = ctx.try_borrow_mut().ok()?;
                let leaked = ctx.slots.len() > depth;
                if !leaked {
                    ctx.floor = floor.min(ctx.slots.len());
                }
                Some(leaked)
            })
            .ok()
            .flatten();
        if leaked == Some(true) {
            purge_above(depth, floor);
        }
    }
}

/// Removes the guard entries at `depth` and above (pushed inside a binding and never removed,
/// or left by earlier jobs on a pooled thread) and restores the floor. Out of line: bindings
/// almost never leak.
#[cold]
#[inline(never)]
fn purge_above(depth: usize, floor: usize) {
    let removed = CTX
        .try_with(|ctx| {
            let mut ctx = ctx.try_borrow_mut().ok()?;
            let removed = (ctx.slots.len() > depth).then(|| ctx.slots.split_off(depth));
            ctx.floor = floor.min(ctx.slots.len());
            removed
        })
        .ok()
        .flatten();
    if let Some(removed) = removed {
        count_purged(&removed);
        drop(removed); // outside the borrow
    }
}

/// Runs `f` with `handle` bound as the task-local isolation scope (`LocalKey::sync_scope`),
/// inside a mark.
#[inline]
pub(crate) fn with_bound<R>(handle: &ScopeHandle, f: impl FnOnce() -> R) -> R {
    let marks = Marks::open();
    if marks.can_bind() {
        ISOLATION.sync_scope(handle.clone(), f)
    } else {
        f()
    }
}

/// `future` with `handle` bound as the task-local isolation scope whenever it is polled or
/// dropped (`LocalKey::scope`); poll it inside [`marked`].
#[inline]
pub(crate) fn scoped<F: std::future::Future>(handle: ScopeHandle, future: F) -> TaskLocalFuture<ScopeHandle, F> {
    ISOLATION.scope(handle, future)
}

/// Runs `f` (a poll of a `TaskLocalFuture`, which binds its own value) inside a mark.
#[inline]
pub(crate) fn marked<R>(f: impl FnOnce() -> R) -> R {
    let _marks = Marks::open();
    f()
}

fn count_purged(removed: &[Option<Entry>]) {
    for _ in removed.iter().flatten() {
        incr(&COUNTERS.leaked_bindings_purged);
    }
}

/// Number of entries (live or tombstoned) on this thread's guard stack; for tests and stats.
pub(crate) fn stack_depth() -> usize {
    CTX.try_with(|s| s.try_borrow().map(|s| s.slots.len()).unwrap_or(0)).unwrap_or(0)
}

/// Runs `f` with `handle` bound. `current`: `Some(c)` also binds the current scope `c`;
/// `None` leaves the caller's. `clean` purges residue of earlier jobs on a pooled thread first.
pub(crate) fn run_bound<F, R>(handle: ScopeHandle, current: Option<Option<Arc<Scope>>>, clean: bool, f: F) -> R
where
    F: FnOnce() -> R,
{
    if clean {
        // The start of a job on a pooled thread: everything on the stack is residue.
        purge_above(0, 0);
    }
    let marks = Marks::open();
    if !marks.can_bind() {
        // During thread-local destruction (a TLS destructor called us) tokio would panic on
        // binding: run unbound.
        return f();
    }
    match current {
        Some(current) => ISOLATION.sync_scope(handle, || CURRENT.sync_scope(current, f)),
        None => ISOLATION.sync_scope(handle, f),
    }
}
