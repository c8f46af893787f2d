//! [`EnterGuard`]: the thread-local binding for code that cannot pass a closure, on a stack
//! whose reset path never panics (out-of-order drops leave tombstones, stale guards are ignored).

use std::fmt;
use std::marker::PhantomData;
use std::sync::MutexGuard;

use super::handle::ScopeHandle;
use super::stack::{self, Removal};
use crate::stats::{incr, COUNTERS};

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

impl ScopeHandle {
    /// Binds this scope to the current thread until the guard is dropped, for code that
    /// cannot pass a closure (prefer [`run`](Self::run) or [`bind`](Self::bind)).
    ///
    /// The guard is `!Send`: it cannot be held across an `.await` in a `Send` future. Guards
    /// may be dropped in any order, or leaked; see [`EnterGuard`](crate::EnterGuard).
    pub fn enter(&self) -> EnterGuard {
        match stack::push(self.clone()) {
            Some((pos, id)) => EnterGuard { pos, id, _not_send: PhantomData },
            None => EnterGuard { pos: 0, id: 0, _not_send: PhantomData },
        }
    }
}

impl Drop for EnterGuard {
    fn drop(&mut self) {
        if self.id == 0 {
            return;
        }
        // During thread-local destruction this is a no-op, not a panic (#1237).
        match stack::remove(self.pos, self.id) {
            Removal::Removed { on_top: false } => incr(&COUNTERS.bindings_out_of_order),
            Removal::Stale => incr(&COUNTERS.bindings_stale),
            Removal::Removed { on_top: true } | Removal::Unreachable => {}
        }
    }
}
