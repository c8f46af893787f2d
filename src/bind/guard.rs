//! [`EnterGuard`]: the thread-local binding for code that cannot pass a closure, on a stack
//! whose reset path never panics (out-of-order drops leave tombstones, stale guards are ignored).

use std::fmt;
use std::marker::PhantomData;
use std::sync::MutexGuard;

use super::context::{Entry, CTX, MAX_GUARDS};
use super::handle::ScopeHandle;
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

impl EnterGuard {
    pub(crate) fn push(handle: ScopeHandle) -> Self {
        let owner = tokio::task::try_id();
        let mut handle = Some(handle);
        let pushed = CTX
            .try_with(|ctx| {
                let mut ctx = ctx.try_borrow_mut().ok()?;
                if ctx.slots.len() >= MAX_GUARDS {
                    return None;
                }
                let id = ctx.next_id;
                ctx.next_id += 1;
                ctx.slots.push(Some(Entry { id, owner, handle: handle.take()? }));
                Some((ctx.slots.len() - 1, id))
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
        let removed = CTX
            .try_with(|ctx| {
                let mut ctx = ctx.try_borrow_mut().ok()?;
                let is_ours = matches!(ctx.slots.get(self.pos), Some(Some(e)) if e.id == self.id);
                if !is_ours {
                    return Some(Err(())); // stale: purged by a binding's end or a lookup
                }
                let entry = ctx.slots[self.pos].take();
                let on_top = self.pos + 1 == ctx.slots.len();
                ctx.pop_tombstones();
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
