//! Re-entrancy bookkeeping for `ScopeHandle::configure`: which scope locks this thread holds,
//! and the work queued until it holds none. No thread ever waits for a second scope lock while
//! holding one, which is what rules out deadlocks between scopes.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;

type Deferred = Box<dyn FnOnce()>;

thread_local! {
    /// The id of the scope whose lock this thread holds (0: none). Only the outermost
    /// `configure` locks (a nested one works on a scratch scope), so one id is enough.
    static HELD: Cell<u64> = const { Cell::new(0) };
    /// Whether `QUEUE` may be non-empty: lets the common path skip it.
    static QUEUED: Cell<bool> = const { Cell::new(false) };
    static QUEUE: RefCell<VecDeque<Deferred>> = const { RefCell::new(VecDeque::new()) };
}

fn held() -> u64 {
    HELD.try_with(Cell::get).unwrap_or(0)
}

pub(crate) fn holds(id: u64) -> bool {
    held() == id
}

pub(crate) fn any_held() -> bool {
    held() != 0
}

/// Queues `f` to run once this thread holds no scope lock.
pub(crate) fn defer(f: impl FnOnce() + 'static) {
    let mut f: Option<Deferred> = Some(Box::new(f));
    let _ = QUEUE.try_with(|q| {
        if let Ok(mut q) = q.try_borrow_mut() {
            q.extend(f.take());
            let _ = QUEUED.try_with(|b| b.set(true));
        }
    });
    // Thread-locals unavailable (thread teardown): drop the work rather than deadlock.
    drop(f);
}

/// Runs queued work until the queue is empty (work may queue more work).
pub(crate) fn drain() {
    if !QUEUED.try_with(Cell::get).unwrap_or(false) {
        return;
    }
    loop {
        if any_held() {
            return;
        }
        let next = QUEUE.try_with(|q| {
            let mut q = q.try_borrow_mut().ok()?;
            let next = q.pop_front();
            if q.is_empty() {
                let _ = QUEUED.try_with(|b| b.set(false));
            }
            next
        });
        match next {
            Ok(Some(f)) => f(),
            _ => return,
        }
    }
}

/// Marks a scope lock as held by this thread for the guard's lifetime.
pub(crate) struct Held(());

impl Held {
    pub(crate) fn new(id: u64) -> Self {
        let _ = HELD.try_with(|h| h.set(id));
        Self(())
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        let _ = HELD.try_with(|h| h.set(0));
        if QUEUED.try_with(Cell::get).unwrap_or(false) && std::thread::panicking() {
            // The closure panicked: queued work may depend on state it never finished.
            // Drop it (outside the borrow) instead of running user callbacks mid-unwind.
            let dropped = QUEUE.try_with(|q| q.try_borrow_mut().map(|mut q| std::mem::take(&mut *q)).ok());
            let _ = QUEUED.try_with(|b| b.set(false));
            drop(dropped);
        }
    }
}
