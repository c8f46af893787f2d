//! Binding scopes to tasks and threads, and the reset path that can never panic or leak.
//!
//! Three places can hold "the active isolation scope", looked up in this order:
//!
//! 1. the thread-local guard stack ([`EnterGuard`]): the newest live entry made by the
//!    *current task* (or, on a plain thread, by "no task");
//! 2. the tokio task-local `ACTIVE`, set by the layer, [`ScopeHandle::run`] and
//!    [`ScopeHandle::bind`] (tokio restores it after every poll and closure, even on panic);
//! 3. the process-wide default isolation scope.
//!
//! The guard stack follows opentelemetry-rust's `ContextStack` redesign (PR #2378): each
//! entry is a slot with a unique id, a guard remembers `(position, id)`, and dropping a guard
//! removes exactly its own entry wherever it is (a tombstone when it is not on top). A guard
//! whose entry is gone (purged, or the thread-local already destroyed) does nothing. Entries
//! are removed from the `RefCell` first and dropped after the borrow ends, so a `Drop` impl
//! that calls back into isoscope never meets a borrowed stack (otel #3262/#3738).
//!
//! Every entry point we own opens a [`Boundary`] that restores the stack's depth when it
//! ends, also on unwind: whatever user code pushed and leaked (a `mem::forget`, a panic, a
//! guard stored in a static) is purged before the thread serves the next request.

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{MutexGuard, OnceLock};

use crate::handle::ScopeHandle;
use crate::scope::Scope;
use crate::stats::{incr, COUNTERS};

tokio::task_local! {
    /// The isolation scope bound to the running task (or closure).
    pub(crate) static ACTIVE: ScopeHandle;
    /// The current scope of `with_scope` blocks, if any.
    pub(crate) static CURRENT: Option<Scope>;
}

/// More nested guards than this on one thread are refused (the guard is a no-op).
pub(crate) const MAX_GUARDS: usize = 1024;

thread_local! {
    static STACK: RefCell<Stack> = const { RefCell::new(Stack { slots: Vec::new(), next_id: 1, floor: 0 }) };
}

struct Entry {
    id: u64,
    owner: Option<tokio::task::Id>,
    handle: ScopeHandle,
}

struct Stack {
    /// `None` is a tombstone left by a guard dropped out of order.
    slots: Vec<Option<Entry>>,
    /// Per-thread, never reused: a stale guard can never match a newer entry.
    next_id: u64,
    /// Depth at the innermost open [`Boundary`]. Every boundary comes with a binding of its
    /// own, so entries below the floor were made outside it and are not seen inside it: the
    /// innermost binding wins, whether it is a guard or a `run`/`bind`.
    floor: usize,
}

impl Stack {
    fn pop_tombstones(&mut self) {
        while matches!(self.slots.last(), Some(None)) {
            self.slots.pop();
        }
        // Entries below the floor can be dropped from inside a boundary (a guard moved into a
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
    thread_local! {
        static CACHE: RefCell<Option<(u64, Scope)>> = const { RefCell::new(None) };
    }
    let default = default_isolation();
    let fresh = || {
        let mut scope = default.snapshot();
        scope.clear_breadcrumbs();
        scope
    };
    // Read the version first: a write racing with the snapshot below makes the cache look
    // stale next time, never fresh when it is not.
    let version = default.version();
    let (base, replaced) = CACHE
        .try_with(|cache| {
            let Ok(mut cache) = cache.try_borrow_mut() else { return (fresh(), None) };
            if let Some((v, scope)) = cache.as_ref() {
                if *v == version {
                    return (scope.clone(), None);
                }
            }
            let scope = fresh().localized();
            let old = cache.replace((version, scope.clone()));
            (scope, old)
        })
        .unwrap_or_else(|_| (fresh(), None));
    drop(replaced); // outside the borrow: a processor's Drop may call back into isoscope
    base
}

/// The process-wide global scope, applied to every event.
pub(crate) fn global() -> &'static ScopeHandle {
    static GLOBAL: OnceLock<ScopeHandle> = OnceLock::new();
    GLOBAL.get_or_init(|| ScopeHandle::new(Scope::default()))
}

/// The active isolation scope (see the module docs for the lookup order).
pub(crate) fn active() -> ScopeHandle {
    if let Some(handle) = stack_lookup() {
        return handle;
    }
    // `try_get` clones the handle out; no user code runs while the task-local is borrowed.
    ACTIVE.try_get().unwrap_or_else(|_| default_isolation().clone())
}

/// The isolation scope bound to the task (not the thread-local stack), if any.
pub(crate) fn task_bound() -> Option<ScopeHandle> {
    ACTIVE.try_get().ok()
}

/// The current scope of an enclosing `with_scope`, if any.
pub(crate) fn current() -> Option<Scope> {
    CURRENT.try_get().ok().flatten()
}

/// Newest live stack entry owned by the running task. Entries left by *other* tasks are
/// stale (their task leaked them on this reused thread) and are purged on the way.
fn stack_lookup() -> Option<ScopeHandle> {
    let (found, purged) = STACK
        .try_with(|stack| {
            let mut stack = stack.try_borrow_mut().ok()?;
            if stack.slots.is_empty() {
                return None;
            }
            let me = tokio::task::try_id();
            let floor = stack.floor;
            let mut purged = Vec::new();
            let mut found = None;
            for (i, slot) in stack.slots.iter_mut().enumerate().rev() {
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
            stack.pop_tombstones();
            Some((found, purged))
        })
        .ok()
        .flatten()?;
    count_purged(&purged);
    drop(purged); // outside the borrow: a handle's Drop may call back into isoscope
    found
}

/// A thread-local binding of a [`ScopeHandle`], returned by [`ScopeHandle::enter`].
///
/// While it lives, [`isolation_scope()`](crate::isolation_scope) on this thread (in the task
/// that entered it) returns its scope. Dropping it removes exactly its own binding, wherever
/// it is on the stack: guards may be dropped out of order, twice-nested guards are fine, and a
/// guard whose binding was already purged (leaked past a request boundary) or that is dropped
/// during thread-local destruction does nothing. The drop path never panics.
///
/// The guard is `!Send`, so it cannot be held across an `.await` in a future that must be
/// `Send` (such as one passed to `tokio::spawn`):
///
/// ```compile_fail
/// # async fn demo() {
/// let handle = isoscope::isolation_scope().fork();
/// tokio::spawn(async move {
///     let _guard = handle.enter();
///     tokio::task::yield_now().await; // error: `EnterGuard` cannot be sent between threads
/// });
/// # }
/// ```
///
/// Prefer [`ScopeHandle::run`] and [`ScopeHandle::bind`]; add
/// `await-holding-invalid-types = ["isoscope::EnterGuard"]` to your `clippy.toml`.
///
/// ```
/// let a = isoscope::isolation_scope().fork();
/// let b = isoscope::isolation_scope().fork();
/// let guard_a = a.enter();
/// let guard_b = b.enter();
/// drop(guard_a); // out of order: b stays active
/// assert_eq!(isoscope::isolation_scope(), b);
/// drop(guard_b);
/// assert_ne!(isoscope::isolation_scope(), a);
/// ```
#[must_use = "the scope is unbound as soon as the guard is dropped"]
pub struct EnterGuard {
    pos: usize,
    /// 0: refused (stack full or unavailable); the guard does nothing.
    id: u64,
    /// `!Send` (but `Sync`), like tracing's `EnteredSpan` and sentry's `SwitchGuard`.
    _not_send: PhantomData<MutexGuard<'static, ()>>,
}

impl fmt::Debug for EnterGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnterGuard").field("pos", &self.pos).field("id", &self.id).finish()
    }
}

impl EnterGuard {
    pub(crate) fn push(handle: ScopeHandle) -> Self {
        let owner = tokio::task::try_id();
        let mut handle = Some(handle);
        let pushed = STACK
            .try_with(|stack| {
                let mut stack = stack.try_borrow_mut().ok()?;
                if stack.slots.len() >= MAX_GUARDS {
                    return None;
                }
                let id = stack.next_id;
                stack.next_id += 1;
                stack.slots.push(Some(Entry { id, owner, handle: handle.take()? }));
                Some((stack.slots.len() - 1, id))
            })
            .ok()
            .flatten();
        match pushed {
            Some((pos, id)) => Self { pos, id, _not_send: PhantomData },
            None => {
                incr(&COUNTERS.bindings_refused);
                drop(handle); // outside the borrow
                Self { pos: 0, id: 0, _not_send: PhantomData }
            }
        }
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        if self.id == 0 {
            return;
        }
        // `try_with`: during thread-local destruction this is a no-op, not a panic (#1237).
        let removed = STACK
            .try_with(|stack| {
                let mut stack = stack.try_borrow_mut().ok()?;
                let is_ours = matches!(stack.slots.get(self.pos), Some(Some(e)) if e.id == self.id);
                if !is_ours {
                    return Some(Err(())); // stale: purged by a boundary or a lookup
                }
                let entry = stack.slots[self.pos].take();
                let on_top = self.pos + 1 == stack.slots.len();
                stack.pop_tombstones();
                Some(Ok((entry, on_top)))
            })
            .ok()
            .flatten();
        match removed {
            Some(Ok((entry, on_top))) => {
                if !on_top {
                    incr(&COUNTERS.bindings_out_of_order);
                }
                drop(entry); // outside the borrow
            }
            Some(Err(())) => incr(&COUNTERS.bindings_stale),
            None => {}
        }
    }
}

/// Opened by every entry point that binds a scope (layer polls, `run`, `bind`, spawn
/// helpers). While open, guard entries made before it are not seen (the new binding wins).
/// When dropped (also on unwind) it restores the stack to its depth at creation: entries that
/// user code pushed inside and never removed are purged.
pub(crate) struct Boundary {
    /// `(depth, previous floor)`; `None` when the thread-local is unavailable.
    saved: Option<(usize, usize)>,
}

impl Boundary {
    pub(crate) fn enter() -> Self {
        let saved = STACK
            .try_with(|s| {
                s.try_borrow_mut().ok().map(|mut s| {
                    let depth = s.slots.len();
                    (depth, std::mem::replace(&mut s.floor, depth))
                })
            })
            .ok()
            .flatten();
        Self { saved }
    }

    /// Like [`enter`](Self::enter), for the start of a job on a pooled thread: anything still
    /// on the stack was left by earlier jobs on this thread and is purged first.
    pub(crate) fn enter_clean() -> Self {
        truncate(0);
        Self::enter()
    }
}

impl Drop for Boundary {
    fn drop(&mut self) {
        let Some((depth, floor)) = self.saved else { return };
        // One borrow: cut what was pushed inside and left behind, restore the floor.
        let removed = STACK
            .try_with(|stack| {
                let mut stack = stack.try_borrow_mut().ok()?;
                let removed = (stack.slots.len() > depth).then(|| stack.slots.split_off(depth));
                stack.floor = floor.min(stack.slots.len());
                removed
            })
            .ok()
            .flatten();
        if let Some(removed) = removed {
            count_purged(&removed);
            drop(removed); // outside the borrow
        }
    }
}

fn count_purged(removed: &[Option<Entry>]) {
    for _ in removed.iter().flatten() {
        incr(&COUNTERS.leaked_bindings_purged);
    }
}

fn truncate(depth: usize) {
    let removed = STACK
        .try_with(|stack| {
            let mut stack = stack.try_borrow_mut().ok()?;
            if stack.slots.len() <= depth {
                return None;
            }
            Some(stack.slots.split_off(depth))
        })
        .ok()
        .flatten();
    if let Some(removed) = removed {
        count_purged(&removed);
        drop(removed); // outside the borrow
    }
}

/// Number of entries (live or tombstoned) on this thread's guard stack; for tests and stats.
pub(crate) fn stack_depth() -> usize {
    STACK.try_with(|s| s.try_borrow().map(|s| s.slots.len()).unwrap_or(0)).unwrap_or(0)
}

/// Runs `f` with `handle` bound, inside a boundary. `current`: `Some(c)` also binds the current
/// scope `c`; `None` leaves the caller's. `clean` purges residue of earlier jobs on a pooled
/// thread first.
pub(crate) fn run_bound<F, R>(handle: ScopeHandle, current: Option<Option<Scope>>, clean: bool, f: F) -> R
where
    F: FnOnce() -> R,
{
    let _boundary = if clean { Boundary::enter_clean() } else { Boundary::enter() };
    if STACK.try_with(|_| ()).is_err() {
        // Thread-locals are being destroyed (a TLS destructor called us): tokio would panic on
        // binding, so run unbound instead.
        return f();
    }
    match current {
        Some(current) => ACTIVE.sync_scope(handle, || CURRENT.sync_scope(current, f)),
        None => ACTIVE.sync_scope(handle, f),
    }
}
