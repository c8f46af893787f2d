//! [`ScopeHandle`]: a shared, lockable scope with an id and an outcome, and the rules of
//! `configure` (short edits under one lock; re-entrant calls queued, see `reentrant`).

use std::fmt;
use std::sync::atomic::{AtomicU16, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::reentrant;
use crate::event::EventId;
use crate::outcome::sessions::SessionStatus;
use crate::scope::{RequestInfo, Scope};
use crate::stats::{incr, COUNTERS};

static NEXT_SCOPE_ID: AtomicU64 = AtomicU64::new(1);

/// Request scopes kept per thread for reuse (see [`ScopeHandle::recycle`]).
const POOLED: usize = 16;

thread_local! {
    /// Finished request scopes nothing else held, emptied, for this thread's next requests:
    /// a request then allocates no scope of its own (issue 28: −170 instructions a request).
    static POOL: std::cell::RefCell<Vec<Arc<Inner>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `Inner::outcome` of a request's scope before the request ended.
const IN_PROGRESS: u8 = 0;
/// `Inner::outcome` of a scope that serves no request: it never records one.
const NOT_A_REQUEST: u8 = 255;
/// Set in `Inner::outcome` of a request's scope once an error event was captured with it (its
/// session then ends `errored`, unless it crashed or was cancelled).
const ERRORED: u8 = 0x40;

/// A process-unique scope id. Threads take ids in blocks, so forking a scope per request does
/// not contend on one global counter.
fn next_scope_id() -> u64 {
    const BLOCK: u64 = 1024;
    thread_local! {
        static RANGE: std::cell::Cell<(u64, u64)> = const { std::cell::Cell::new((0, 0)) };
    }
    RANGE
        .try_with(|r| {
            let (mut next, end) = r.get();
            if next == end {
                next = NEXT_SCOPE_ID.fetch_add(BLOCK, Ordering::Relaxed);
                r.set((next + 1, next + BLOCK));
            } else {
                r.set((next + 1, end));
            }
            next
        })
        .unwrap_or_else(|_| NEXT_SCOPE_ID.fetch_add(1, Ordering::Relaxed))
}

/// How a request (or other unit of work bound by the layer) ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u8)] // kept in an `AtomicU8` beside the two states that are no outcome
pub enum Outcome {
    /// The response was produced and its body streamed to the end.
    Completed = 1,
    /// The response future or body was dropped first (client went away, timeout, ...).
    Cancelled = 2,
    /// The handler panicked.
    Panicked = 3,
}

impl Outcome {
    /// The outcome stored as `code`; `None` for the states that are no outcome
    /// ([`IN_PROGRESS`], [`NOT_A_REQUEST`]).
    fn from_code(code: u8) -> Option<Self> {
        let code = if code == NOT_A_REQUEST { code } else { code & !ERRORED };
        [Self::Completed, Self::Cancelled, Self::Panicked].into_iter().find(|o| *o as u8 == code)
    }
}

/// A cheap-to-clone shared handle to one lockable [`Scope`].
///
/// [`IsolationLayer`](crate::IsolationLayer) creates one per request and binds it to the
/// request's task; [`isolation_scope()`](crate::isolation_scope) returns the active one. Clones
/// share the scope; [`fork`](Self::fork) makes an independent copy in O(1).
///
/// ```
/// use isoscope::ScopeHandle;
///
/// let handle = isoscope::isolation_scope().fork();
/// handle.configure(|scope| scope.set_tag("job", "import"));
/// handle.run(|| isoscope::set_tag("step", "parse"));
/// let scope = handle.snapshot();
/// assert_eq!(scope.tag("job"), Some("import"));
/// assert_eq!(scope.tag("step"), Some("parse"));
/// ```
#[derive(Clone)]
pub struct ScopeHandle(Arc<Inner>);

struct Inner {
    id: u64,
    scope: Mutex<Scope>,
    outcome: AtomicU8,
    /// The status code of the request's response, once its head is out (0 before).
    response_status: AtomicU16,
    last_event_id: Mutex<Option<EventId>>,
    /// Bumped by every write, so readers can cache a snapshot and tell when it is stale.
    version: AtomicU64,
}

impl fmt::Debug for ScopeHandle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScopeHandle").field("id", &self.0.id).field("outcome", &self.outcome()).finish_non_exhaustive()
    }
}

impl PartialEq for ScopeHandle {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for ScopeHandle {}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic in user code while a scope was locked must not break every later request.
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ScopeHandle {
    /// A new handle owning `scope`.
    #[inline]
    pub fn new(scope: Scope) -> Self {
        Self(Arc::new(Inner {
            id: next_scope_id(),
            scope: Mutex::new(scope),
            outcome: AtomicU8::new(NOT_A_REQUEST),
            response_status: AtomicU16::new(0),
            last_event_id: Mutex::new(None),
            version: AtomicU64::new(0),
        }))
    }

    /// A new request's scope: empty but for the request; a pooled one when this thread has one
    /// (see [`recycle`](Self::recycle)). The `Inner` is spelled out here
    /// rather than built by [`new`](Self::new): passing the scope (request info inline, ~600
    /// bytes) through it copies it once more on every request (seen in callgrind's counts).
    #[inline(always)]
    pub(crate) fn for_request(request: RequestInfo) -> Self {
        incr(&COUNTERS.scopes_forked);
        if let Some(mut arc) = POOL.try_with(|p| p.borrow_mut().pop()).ok().flatten() {
            if let Some(inner) = Arc::get_mut(&mut arc) {
                inner.id = next_scope_id();
                inner.scope.get_mut().unwrap_or_else(PoisonError::into_inner).reuse_for_request(request);
                *inner.outcome.get_mut() = IN_PROGRESS;
                *inner.response_status.get_mut() = 0;
                *inner.last_event_id.get_mut().unwrap_or_else(PoisonError::into_inner) = None;
                *inner.version.get_mut() = 0;
                return Self(arc);
            }
        }
        Self(Arc::new(Inner {
            id: next_scope_id(),
            scope: Mutex::new(Scope::with_request(request)),
            outcome: AtomicU8::new(IN_PROGRESS),
            response_status: AtomicU16::new(0),
            last_event_id: Mutex::new(None),
            version: AtomicU64::new(0),
        }))
    }

    /// The end of a request's scope (its response body's drop): if nothing else holds it — no
    /// clone in a spawned task, a queued event, a user's hands — it is emptied (every field,
    /// the request's snapshot buffer going to the thread's next snapshot; the breadcrumb ring
    /// keeps its buffer, cleared) and kept for this thread's next request, which gets a new id
    /// and a fresh outcome. Shared, it is simply released.
    pub(crate) fn recycle(self) {
        let mut arc = self.0;
        let Some(inner) = Arc::get_mut(&mut arc) else { return };
        inner.scope.get_mut().unwrap_or_else(PoisonError::into_inner).clear_for_reuse();
        inner.scope.clear_poison();
        inner.last_event_id.clear_poison();
        let _ = POOL.try_with(move |p| {
            let mut p = p.borrow_mut();
            if p.len() < POOLED {
                p.push(arc);
            }
        });
    }

    #[inline]
    pub(crate) fn forked_from(scope: Scope) -> Self {
        incr(&COUNTERS.scopes_forked);
        Self::new(scope)
    }

    /// A request's scope forked from `scope` (nested layers, a configured default): its outcome
    /// is recorded, like [`for_request`](Self::for_request)'s.
    pub(crate) fn request_from(scope: Scope) -> Self {
        let handle = Self::forked_from(scope);
        handle.0.outcome.store(IN_PROGRESS, Ordering::Relaxed);
        handle
    }

    /// A process-unique id for this scope (clones share it; forks get a new one).
    pub fn id(&self) -> u64 {
        self.0.id
    }

    /// An independent copy: O(1) whatever the scope holds (fields are copy-on-write). Later
    /// changes to either side are not seen by the other.
    ///
    /// Called from inside a [`configure`](Self::configure) closure of this same scope, the
    /// fork is filled in when that closure returns.
    pub fn fork(&self) -> Self {
        if reentrant::holds(self.0.id) {
            let child = Self::forked_from(Scope::default());
            let (parent, c) = (self.clone(), child.clone());
            reentrant::defer(move || {
                let snap = parent.snapshot();
                let mut guard = lock(&c.0.scope);
                let own = std::mem::replace(&mut *guard, snap);
                guard.absorb(own);
            });
            return child;
        }
        Self::forked_from(self.snapshot())
    }

    /// An O(1) copy of the scope's current data, for reading.
    ///
    /// Called from inside a [`configure`](Self::configure) closure of this same scope (which
    /// holds it), this returns an empty scope rather than deadlock: read through the closure's
    /// `&mut Scope` instead.
    #[inline]
    pub fn snapshot(&self) -> Scope {
        if reentrant::holds(self.0.id) {
            return Scope::default();
        }
        lock(&self.0.scope).fork()
    }

    /// [`snapshot`](Self::snapshot) without the breadcrumbs, for readers that need none (a log
    /// record, a span, trace headers, a check-in): see `Scope::fork_without_breadcrumbs`.
    pub(crate) fn snapshot_without_breadcrumbs(&self) -> Scope {
        if reentrant::holds(self.0.id) {
            return Scope::default();
        }
        lock(&self.0.scope).fork_without_breadcrumbs()
    }

    /// Edits the scope in place under its lock, so concurrent writers never lose an update.
    ///
    /// The closure should be short. It may call back into isoscope: calls that would need a
    /// scope lock while this one is held (`set_tag`, `add_breadcrumb`, `capture_*`, `fork`, a
    /// nested `configure`, on any scope) are queued and run, in order, right after the
    /// outermost `configure` returns, so they can neither deadlock nor be lost. A nested
    /// `configure` is handed an empty scratch scope whose contents are then merged in.
    ///
    /// ```
    /// let handle = isoscope::isolation_scope().fork();
    /// handle.configure(|scope| {
    ///     scope.set_tag("a", "1");
    ///     handle.configure(|scratch| scratch.set_tag("b", "2")); // queued, not a deadlock
    /// });
    /// assert_eq!(handle.snapshot().tag("b"), Some("2"));
    /// ```
    pub fn configure<F>(&self, f: F)
    where
        F: FnOnce(&mut Scope),
    {
        let mut f = Some(f);
        self.configure_dyn(&mut |s| {
            if let Some(f) = f.take() {
                f(s);
            }
        });
    }

    fn configure_dyn(&self, f: &mut dyn FnMut(&mut Scope)) {
        if reentrant::any_held() {
            let mut scratch = Scope::default();
            f(&mut scratch);
            let this = self.clone();
            let mut scratch = Some(scratch);
            reentrant::defer(move || {
                this.configure_dyn(&mut |s| {
                    if let Some(scratch) = scratch.take() {
                        s.absorb(scratch);
                    }
                });
            });
            return;
        }
        {
            let _held = reentrant::Held::new(self.0.id);
            let mut guard = lock(&self.0.scope);
            f(&mut guard);
            self.bump_version(&guard);
        }
        reentrant::drain();
    }

    /// Applies an edit of ours that runs no user code, so it cannot call back into isoscope
    /// (tags, extra, contexts, user, breadcrumbs): no re-entrancy bookkeeping beyond the check
    /// that this thread holds no scope lock (if it does, the edit is queued like any other).
    pub(crate) fn write(&self, f: impl FnOnce(&mut Scope) + 'static) {
        let mut f = Some(f);
        if !self.write_now(&mut |s| {
            if let Some(f) = f.take() {
                f(s);
            }
        }) {
            if let Some(f) = f {
                self.write_later(f);
            }
        }
    }

    /// The lock-and-edit part of [`write`](Self::write), not generic: every edit runs through
    /// one copy of it (a copy per kind of edit is instruction cache taken on every request).
    /// `false` (and `edit` not run) inside a `configure` closure, where it must be queued.
    #[inline(never)]
    pub(crate) fn write_now(&self, edit: &mut dyn FnMut(&mut Scope)) -> bool {
        self.write_now_inline(edit)
    }

    /// [`write_now`](Self::write_now), inlined: for `active::edit_active`, itself the one copy
    /// every free function's edit (`set_tag`, `add_breadcrumb`, ...) runs through, where the
    /// call cost a tenth of a write.
    #[inline(always)]
    pub(crate) fn write_now_inline(&self, edit: &mut dyn FnMut(&mut Scope)) -> bool {
        if reentrant::any_held() {
            return false;
        }
        let mut guard = lock(&self.0.scope);
        edit(&mut guard);
        self.bump_version(&guard);
        true
    }

    /// [`write`](Self::write) from inside a `configure` closure: queued. Out of line.
    #[cold]
    #[inline(never)]
    pub(crate) fn write_later(&self, f: impl FnOnce(&mut Scope) + 'static) {
        let this = self.clone();
        reentrant::defer(move || this.write(f));
    }

    /// Marks a write; `_locked` proves the scope lock is held, so a plain store cannot lose a
    /// concurrent increment.
    fn bump_version(&self, _locked: &MutexGuard<'_, Scope>) {
        self.0.version.store(self.0.version.load(Ordering::Relaxed) + 1, Ordering::Release);
    }

    /// Changes whenever the scope is written (through `configure` and everything built on it).
    pub(crate) fn version(&self) -> u64 {
        self.0.version.load(Ordering::Acquire)
    }

    /// How the request bound to this scope ended, once it has (`None` for a scope that serves
    /// no request: forks, spawned children, scopes you made).
    pub fn outcome(&self) -> Option<Outcome> {
        Outcome::from_code(self.0.outcome.load(Ordering::Acquire))
    }

    /// Records a request's outcome once; later calls, and calls on a scope that serves no
    /// request, are ignored. Returns whether this call set it.
    pub(crate) fn end(&self, outcome: Outcome) -> bool {
        let (counter, session) = match outcome {
            Outcome::Completed => (&COUNTERS.requests_completed, SessionStatus::Exited),
            Outcome::Cancelled => (&COUNTERS.requests_cancelled, SessionStatus::Abnormal),
            Outcome::Panicked => (&COUNTERS.requests_panicked, SessionStatus::Crashed),
        };
        // In progress (with or without the mark of a captured error, which is kept): set it.
        let set = self.0.outcome.fetch_update(Ordering::AcqRel, Ordering::Acquire, |code| {
            (code & !ERRORED == IN_PROGRESS).then_some(code | outcome as u8)
        });
        if let Ok(before) = set {
            incr(counter);
            let errored = before == ERRORED && session == SessionStatus::Exited;
            crate::outcome::sessions::record(if errored { SessionStatus::Errored } else { session });
        }
        set.is_ok()
    }

    /// Marks a request's scope as having an error event captured with it (its session is
    /// `errored`); a no-op for a scope that serves no request or a request that ended.
    pub(crate) fn mark_errored(&self) {
        let _ = self.0.outcome.compare_exchange(IN_PROGRESS, ERRORED, Ordering::AcqRel, Ordering::Relaxed);
    }

    /// The status code of the response of the request this scope serves, once the layer has
    /// seen its head (events captured then carry it as `contexts.response`).
    pub(crate) fn response_status(&self) -> Option<u16> {
        Some(self.0.response_status.load(Ordering::Relaxed)).filter(|&s| s != 0)
    }

    /// Records the response's status code (the layer, at the response head).
    pub(crate) fn set_response_status(&self, status: u16) {
        self.0.response_status.store(status, Ordering::Relaxed);
    }

    /// The id of the last event captured with this scope.
    pub fn last_event_id(&self) -> Option<EventId> {
        *lock(&self.0.last_event_id)
    }

    pub(crate) fn set_last_event_id(&self, id: EventId) {
        *lock(&self.0.last_event_id) = Some(id);
    }
}
