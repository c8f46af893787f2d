//! Which isolation scope is active where: the one lookup ([`find`]) and the two entry points
//! that bind a scope — [`bind_sync`] for a closure, [`Binding`] for a future — each of which
//! opens a mark on the thread's binding state and restores it, also on unwind.
//!
//! The lookup order:
//!
//! 1. the thread's guard stack (`EnterGuard`, `stack.rs`): the newest live entry made by the
//!    *current task* (or, on a plain thread, by no task) above the innermost binding;
//! 2. the tokio task-local [`ISOLATION`], bound with tokio's own API by every entry point:
//!    `LocalKey::scope` (a `TaskLocalFuture`) for futures, `LocalKey::sync_scope` for closures;
//! 3. code bound to nothing that is not start-up code — a plain `tokio::spawn` task, a plain
//!    thread other than `init`'s after start-up — reads and writes a scope of its own
//!    (`unbound.rs`), never the base requests fork;
//! 4. the process default isolation scope (start-up code, `base.rs`).
//!
//! tokio's `sync_scope` and `TaskLocalFuture::poll` panic when the task-local cannot be
//! accessed (during thread-local destruction). No entry point here calls them then: each
//! first opens its mark, and binds only if the thread's state is still alive.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use pin_project_lite::pin_project;
use tokio::task::futures::TaskLocalFuture;

use super::base::{self, default_isolation, global};
use super::handle::ScopeHandle;
use super::stack::{self, Mark};
use super::unbound;
use crate::scope::Scope;

tokio::task_local! {
    /// The isolation scope of the request (or other unit of work) the running code serves.
    static ISOLATION: ScopeHandle;
    /// The current scope of `with_scope` blocks, if any (shared: spawned work carries it).
    static CURRENT: Option<Arc<Scope>>;
}

/// What the caller of [`find`] will do with the scope, which decides what code bound to
/// nothing gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read it: its own scope if it has one, else the process default.
    Read,
    /// Hand it out (`isolation_scope()`): its own scope, made on first use, so writes through
    /// the handle stay there.
    Own,
    /// Write to it: like `Own`, and the write is counted in `writes_unbound`.
    Write,
}

/// The active isolation scope (see the module docs for the lookup order).
pub(crate) fn find(access: Access) -> ScopeHandle {
    let found = stack::find().or_else(bound);
    found
        .or_else(|| match access {
            Access::Read => unbound::existing(),
            Access::Own => unbound::own(),
            Access::Write => unbound::for_write(),
        })
        .unwrap_or_else(|| default_isolation().clone())
}

/// The isolation scope bound by the innermost entry point (not a guard), if any.
pub(crate) fn bound() -> Option<ScopeHandle> {
    ISOLATION.try_with(ScopeHandle::clone).ok()
}

/// The current scope of an enclosing `with_scope`, if any.
pub(crate) fn current() -> Option<Arc<Scope>> {
    CURRENT.try_get().ok().flatten()
}

/// Runs `edit` on the active isolation scope under its lock (see `ScopeHandle::write_now`),
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
        let is_global = handle == global();
        (!handle.write_now_inline(&mut |s| edit(s, is_global))).then(|| handle.clone())
    };
    // With guards on the stack, the general lookup looks through them.
    if stack::is_empty() {
        if let Ok(pending) = ISOLATION.try_with(&mut apply) {
            return pending;
        }
    }
    apply(&find(Access::Write))
}

/// Whether a new request's scope starts empty: nothing bound (no enclosing layer) and an empty
/// request base (the usual case; the scope is then built in place, with nothing to copy).
#[inline]
pub(crate) fn request_starts_empty() -> bool {
    base::request_base_is_empty() && ISOLATION.try_with(|_| ()).is_err()
}

/// How [`bind_sync`] enters.
pub(crate) enum Enter {
    /// Inside whatever runs here (the layer's `call`, a body's poll, `ScopeHandle::run`): binds
    /// the isolation scope, keeps the caller's current scope.
    Nested,
    /// The start of a job on a pooled thread (`spawn_blocking`, `thread::spawn`): purges
    /// whatever earlier jobs left on the thread, then binds the isolation scope and this
    /// current scope.
    Job(Option<Arc<Scope>>),
}

/// The sync entry point: runs `f` with `handle` bound as the task-local isolation scope
/// (`LocalKey::sync_scope`), inside a mark that restores the thread's binding state when `f`
/// returns or unwinds.
#[inline]
pub(crate) fn bind_sync<R>(handle: &ScopeHandle, enter: Enter, f: impl FnOnce() -> R) -> R {
    if let Enter::Job(_) = enter {
        // Everything on the stack of a pooled thread at a job's start is residue.
        stack::purge_above(0, 0);
    }
    let mark = Mark::open();
    if !mark.can_bind() {
        // During thread-local destruction (a TLS destructor called us) tokio would panic on
        // binding: run unbound.
        return f();
    }
    match enter {
        Enter::Nested => ISOLATION.sync_scope(handle.clone(), f),
        Enter::Job(current) => ISOLATION.sync_scope(handle.clone(), || CURRENT.sync_scope(current, f)),
    }
}

pin_project! {
    /// The future entry point: `F` with an isolation scope bound whenever it is polled or
    /// dropped (tokio's `TaskLocalFuture`), each poll and the drop inside a mark of the
    /// thread's binding state. The future is dropped as soon as it is ready, still bound.
    pub(crate) struct Binding<F> {
        #[pin]
        inner: Option<TaskLocalFuture<ScopeHandle, F>>,
    }

    impl<F> PinnedDrop for Binding<F> {
        fn drop(this: Pin<&mut Self>) {
            this.drop_now();
        }
    }
}

impl<F: Future> Binding<F> {
    /// `future` with `handle` bound.
    #[inline]
    pub(crate) fn new(handle: ScopeHandle, future: F) -> Self {
        Self { inner: Some(ISOLATION.scope(handle, future)) }
    }

    /// Polls the future, bound; `None` once it is done.
    #[inline(always)]
    pub(crate) fn poll_bound(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Option<Poll<F::Output>> {
        let mut inner = self.project().inner;
        // One mark covers the poll and, once it is ready, the drop of the future.
        let _mark = Mark::open();
        let polled = inner.as_mut().as_pin_mut()?.poll(cx);
        if polled.is_ready() {
            inner.set(None);
        }
        Some(polled)
    }
}

impl<F> Binding<F> {
    /// Whether the future completed or was dropped.
    pub(crate) fn is_done(&self) -> bool {
        self.inner.is_none()
    }

    /// Drops the future now (if it is still there), with its scope bound, inside a mark that
    /// purges what its `Drop` impls leaked.
    pub(crate) fn drop_now(self: Pin<&mut Self>) {
        let mut inner = self.project().inner;
        if inner.is_some() {
            let _mark = Mark::open();
            inner.set(None);
        }
    }
}

/// `future` with the current scope `current` bound whenever it is polled or dropped (to be
/// wrapped in a [`Binding`], which marks).
pub(crate) fn with_current<F: Future>(
    current: Option<Arc<Scope>>,
    future: F,
) -> TaskLocalFuture<Option<Arc<Scope>>, F> {
    CURRENT.scope(current, future)
}

/// Runs `f` with a current scope bound (`with_scope`).
pub(crate) fn sync_with_current<R>(current: Option<Arc<Scope>>, f: impl FnOnce() -> R) -> R {
    CURRENT.sync_scope(current, f)
}

impl ScopeHandle {
    /// Runs `f` with this scope bound as the active isolation scope (on any thread, sync
    /// code). The binding is undone when `f` returns or panics.
    ///
    /// ```
    /// let handle = isoscope::isolation_scope().fork();
    /// let seen = handle.run(|| isoscope::isolation_scope());
    /// assert_eq!(seen, handle);
    /// ```
    pub fn run<F, R>(&self, f: F) -> R
    where
        F: FnOnce() -> R,
    {
        bind_sync(self, Enter::Nested, f)
    }
}
