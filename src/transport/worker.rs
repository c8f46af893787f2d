//! A background thread fed by a bounded queue, with a flush that returns by its deadline.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

thread_local! {
    static WORKER_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the current thread as one of our transport threads (see [`on_worker_thread`]).
pub(crate) fn mark_worker_thread() {
    let _ = WORKER_THREAD.try_with(|w| w.set(true));
}

/// Whether the current thread delivers events: integrations must not turn what happens there
/// (a connection error logged by hyper, say) into new events, or a failing server would feed
/// an endless loop.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn on_worker_thread() -> bool {
    WORKER_THREAD.try_with(|w| w.get()).unwrap_or(false)
}

/// Counts items accepted but not yet handled, so `flush` can wait for zero.
#[derive(Default)]
pub(crate) struct Pending {
    count: Mutex<u64>,
    zero: Condvar,
}

impl Pending {
    pub(crate) fn add(&self) {
        *self.count.lock().unwrap_or_else(PoisonError::into_inner) += 1;
    }

    pub(crate) fn done(&self) {
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        *count = count.saturating_sub(1);
        if *count == 0 {
            self.zero.notify_all();
        }
    }

    /// Waits until the count is zero or `timeout` passes; returns whether it reached zero.
    /// Returns by the deadline whatever the items being handled do.
    pub(crate) fn wait_zero(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut count = self.count.lock().unwrap_or_else(PoisonError::into_inner);
        while *count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            count = self.zero.wait_timeout(count, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }
}

pub(crate) struct Worker<T> {
    tx: Mutex<Option<SyncSender<T>>>,
    pending: Arc<Pending>,
}

impl<T: Send + 'static> Worker<T> {
    /// Starts a thread named `name` that calls `handle` for each item, in order.
    pub(crate) fn spawn<H>(name: &str, capacity: usize, mut handle: H) -> std::io::Result<Self>
    where
        H: FnMut(T) + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel::<T>(capacity);
        let pending = Arc::new(Pending::default());
        let p = pending.clone();
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            mark_worker_thread();
            for item in rx {
                // A panicking handler must not stall `flush` forever nor kill the worker.
                let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(item)));
                p.done();
            }
        })?;
        Ok(Self { tx: Mutex::new(Some(tx)), pending })
    }

    /// Enqueues without blocking; gives the item back when the queue is full or closed.
    pub(crate) fn try_send(&self, item: T) -> Result<(), T> {
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = tx.as_ref() else { return Err(item) };
        self.pending.add();
        match tx.try_send(item) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(item) | TrySendError::Disconnected(item)) => {
                self.pending.done();
                Err(item)
            }
        }
    }

    /// Waits until every accepted item is handled, or `timeout` passes.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.pending.wait_zero(timeout)
    }

    /// Flushes, then closes the queue (the thread exits once it is drained).
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        self.tx.lock().unwrap_or_else(PoisonError::into_inner).take();
        flushed
    }
}
