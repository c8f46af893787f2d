//! A background thread fed by a bounded queue, with a flush that returns by its deadline.

use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::stats::{incr, Counter, COUNTERS};

thread_local! {
    static WORKER_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Marks the current thread as one of our transport threads (see [`on_worker_thread`]).
pub(crate) fn mark_worker_thread() {
    let _ = WORKER_THREAD.try_with(|w| w.set(true));
}

/// Lowers the calling transport thread's CPU priority to the least (nice 19 on Linux and other
/// Unixes): it runs on the CPU time request handling leaves. In an error storm that saturates
/// the CPU, requests keep the CPU and the bounded queue drops what the transport cannot keep up
/// with (counted in `events_dropped_queue_full`); with any CPU to spare it delivers at full
/// speed. A platform that refuses leaves the priority as it was.
pub(crate) fn lower_priority() {
    let _ = thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min);
}

/// Whether the current thread delivers events: integrations must not turn what happens there
/// (a connection error logged by hyper, say) into new events, or a failing server would feed
/// an endless loop.
#[cfg_attr(not(feature = "tracing"), allow(dead_code))]
pub(crate) fn on_worker_thread() -> bool {
    WORKER_THREAD.try_with(|w| w.get()).unwrap_or(false)
}

/// Counts items accepted but not yet handled, so `flush` can wait for zero, and accounts for
/// each of them exactly once: handled (its outcome counted by [`finish`](Self::finish)), or
/// dropped at shutdown ([`close`](Self::close) counts what is left in
/// `events_dropped_shutdown`). After `close`, nothing more is accepted and a late outcome is
/// not counted again.
///
/// It also keeps the count of items *lost* since the last [`flush`](Self::flush) — handled but
/// not delivered, refused at the queue, or dropped at shutdown — so that a flush tells the
/// truth: `true` only when nothing sent before it was lost and nothing is still pending.
#[derive(Default)]
pub(crate) struct Pending {
    state: Mutex<PendingState>,
    zero: Condvar,
}

#[derive(Default)]
struct PendingState {
    count: u64,
    closed: bool,
    /// Items lost since the last flush.
    lost: u64,
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, PendingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Accepts one more item; `false` once closed.
    pub(crate) fn add(&self) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        state.count += 1;
        true
    }

    /// Takes back an item accepted by [`add`](Self::add) that could not be queued after all (the
    /// caller counts why, and calls [`lose`](Self::lose)).
    pub(crate) fn undo(&self) {
        self.finish(None);
    }

    /// One item was not delivered, and never entered the queue (refused at it, rate limited
    /// before it, sent after shutdown): the next flush says `false`.
    pub(crate) fn lose(&self) {
        self.lock().lost += 1;
    }

    /// One item was handled: `outcome` is the counter of how (unless shutdown already counted
    /// it); anything but `events_sent` is a loss the next flush reports.
    pub(crate) fn finish(&self, outcome: Option<&'static Counter>) {
        let mut state = self.lock();
        if state.closed {
            return; // counted by `close`
        }
        if let Some(counter) = outcome {
            incr(counter);
            if !std::ptr::eq(counter, &COUNTERS.events_sent) {
                state.lost += 1;
            }
        }
        state.count = state.count.saturating_sub(1);
        if state.count == 0 {
            self.zero.notify_all();
        }
    }

    /// Whether [`close`](Self::close) has run: what is still queued must not be handled.
    pub(crate) fn is_closed(&self) -> bool {
        self.lock().closed
    }

    /// Stops accepting, and counts every item not yet handled as dropped at shutdown. Returns
    /// how many that was.
    pub(crate) fn close(&self) -> u64 {
        let mut state = self.lock();
        if state.closed {
            return 0;
        }
        state.closed = true;
        let left = std::mem::take(&mut state.count);
        state.lost += left;
        for _ in 0..left {
            incr(&COUNTERS.events_dropped_shutdown);
        }
        self.zero.notify_all();
        drop(state);
        if left > 0 {
            crate::debug::problem(crate::debug::Problem::Shutdown, || {
                format!("{left} events were still queued or being delivered at shutdown and were dropped")
            });
        }
        left
    }

    /// Waits until the count is zero or `timeout` passes; returns whether it reached zero.
    /// Returns by the deadline whatever the items being handled do.
    pub(crate) fn wait_zero(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut state = self.lock();
        while state.count > 0 {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            state = self.zero.wait_timeout(state, left).unwrap_or_else(PoisonError::into_inner).0;
        }
        true
    }

    /// Waits until nothing is pending or `timeout` passes; returns whether everything sent
    /// since the last flush was delivered: nothing pending, nothing lost. Says what was lost in
    /// the debug output.
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let drained = self.wait_zero(timeout);
        let lost = std::mem::take(&mut self.lock().lost);
        if lost > 0 || !drained {
            crate::debug::problem(crate::debug::Problem::FlushIncomplete, || {
                let pending = self.lock().count;
                format!(
                    "flush: {lost} events were not delivered since the last flush and {pending} are still pending \
                     (stats() says why: queue full, rate limited, network, rejected, shutdown)"
                )
            });
        }
        drained && lost == 0
    }

    /// Flushes until `timeout` (see [`flush`](Self::flush)), then closes (see
    /// [`close`](Self::close)). Returns whether everything was delivered in time.
    pub(crate) fn shut_down(&self, timeout: Duration) -> bool {
        let flushed = self.flush(timeout);
        self.close();
        flushed
    }
}

pub(crate) struct Worker<T> {
    tx: Mutex<Option<SyncSender<T>>>,
    pending: Arc<Pending>,
}

impl<T: Send + 'static> Worker<T> {
    /// Starts a thread named `name` that calls `handle` for each item, in order; `handle`
    /// returns the counter of the item's outcome, if it counts one.
    pub(crate) fn spawn<H>(name: &str, capacity: usize, mut handle: H) -> std::io::Result<Self>
    where
        H: FnMut(T) -> Option<&'static Counter> + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel::<T>(capacity);
        let pending = Arc::new(Pending::default());
        let p = pending.clone();
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            mark_worker_thread();
            lower_priority();
            loop {
                // Idle with the symbolizer's caches filled: they go after a while.
                let item = if crate::stack::symbols_cached() {
                    match rx.recv_timeout(crate::stack::KEEP_SYMBOLS) {
                        Ok(item) => item,
                        Err(mpsc::RecvTimeoutError::Timeout) => {
                            crate::stack::release_symbol_caches();
                            continue;
                        }
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                } else {
                    match rx.recv() {
                        Ok(item) => item,
                        Err(_) => break,
                    }
                };
                if p.is_closed() {
                    continue; // counted as dropped at shutdown
                }
                // A panicking handler must not stall `flush` forever nor kill the worker.
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(item)));
                p.finish(outcome.unwrap_or(Some(&COUNTERS.events_dropped_network)));
            }
        })?;
        Ok(Self { tx: Mutex::new(Some(tx)), pending })
    }

    /// Enqueues without blocking; gives the item back when the queue is full or closed (a loss
    /// the next flush reports; the caller counts why).
    pub(crate) fn try_send(&self, item: T) -> Result<(), T> {
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let refused = match tx.as_ref() {
            None => Err(item),
            Some(_) if !self.pending.add() => Err(item),
            Some(tx) => match tx.try_send(item) {
                Ok(()) => Ok(()),
                Err(TrySendError::Full(item) | TrySendError::Disconnected(item)) => {
                    self.pending.undo();
                    Err(item)
                }
            },
        };
        if refused.is_err() {
            self.pending.lose();
        }
        refused
    }

    /// Waits until every accepted item is handled, or `timeout` passes; `true` only if nothing
    /// sent since the last flush was lost (see [`Pending::flush`]).
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        self.pending.flush(timeout)
    }

    /// Flushes until `timeout`, then closes the queue, counting what was not handled as dropped
    /// at shutdown (the thread skips it and exits).
    pub(crate) fn shutdown(&self, timeout: Duration) -> bool {
        let flushed = self.pending.shut_down(timeout);
        self.tx.lock().unwrap_or_else(PoisonError::into_inner).take();
        flushed
    }
}
