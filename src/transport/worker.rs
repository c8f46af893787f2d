//! A background thread fed by a bounded queue, with a flush that returns by its deadline.

use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::event::{Delivery, Envelope, ItemType};
use crate::outcome::{tally, Column, DataCategory, DiscardReason, Recorder};

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

/// How the handling of an item ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Accepted by the server, written.
    Delivered,
    /// Discarded for this reason.
    Discarded(DiscardReason),
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // used by the HTTP transport
    /// The server answered 429: discarded (`ratelimit_backoff`), but not put in a client report
    /// — the server counted it itself.
    RateLimitedByServer,
}

const CATEGORIES: usize = DataCategory::ALL.len();

/// Counts items accepted but not yet handled, so `flush` can wait for zero, and accounts for
/// each of them exactly once: handled (its [`Delivery`] settled by [`finish`](Self::finish)),
/// or dropped at shutdown ([`close`](Self::close) counts what is left, per category, as
/// dropped at shutdown). After `close`, nothing more is accepted and a late outcome is not
/// counted again.
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
    /// The quantities of the accepted items not yet handled, per category.
    left: [u64; CATEGORIES],
}

/// Adds (`add`) or takes away a delivery's quantities.
fn account(left: &mut [u64; CATEGORIES], delivery: Option<&Delivery>, add: bool) {
    for (category, n) in delivery.into_iter().flat_map(Delivery::quantities) {
        let cell = &mut left[category.index()];
        *cell = if add { cell.saturating_add(n) } else { cell.saturating_sub(n) };
    }
}

impl Pending {
    fn lock(&self) -> std::sync::MutexGuard<'_, PendingState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Accepts one more item; `false` once closed.
    pub(crate) fn add(&self, delivery: Option<&Delivery>) -> bool {
        let mut state = self.lock();
        if state.closed {
            return false;
        }
        state.count += 1;
        account(&mut state.left, delivery, true);
        true
    }

    /// An item that never entered the queue (refused at it, rate limited before it, sent after
    /// shutdown): counted for `reason` (`None`: after shutdown), a loss the next flush reports.
    pub(crate) fn refuse(&self, delivery: Option<Delivery>, reason: Option<DiscardReason>) {
        self.lock().lost += 1;
        match (delivery, reason) {
            (Some(d), Some(reason)) => d.discarded(reason),
            (Some(d), None) => d.shut_down(),
            (None, _) => {}
        }
    }

    /// Takes back an item accepted by [`add`](Self::add) that could not be queued after all:
    /// handled at once, discarded for `reason`.
    pub(crate) fn undo(&self, delivery: Option<Delivery>, reason: DiscardReason) {
        self.finish(delivery, Verdict::Discarded(reason));
    }

    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // used by the HTTP transport
    /// Discards the items of kind `item` of an accepted envelope (a rate limit keeps them
    /// out); the rest still waits for its outcome. A loss the next flush reports.
    pub(crate) fn discard_part(&self, delivery: Option<&mut Delivery>, item: ItemType, reason: DiscardReason) {
        let mut state = self.lock();
        state.lost += 1;
        if state.closed {
            return;
        }
        if let Some(d) = delivery {
            account(&mut state.left, Some(d), false);
            d.discard(item, reason);
            account(&mut state.left, Some(d), true);
        }
    }

    /// One item was handled, with this verdict (unless shutdown already counted it); anything
    /// but delivered is a loss the next flush reports.
    pub(crate) fn finish(&self, delivery: Option<Delivery>, verdict: Verdict) {
        let mut state = self.lock();
        if state.closed {
            drop(state);
            if let Some(d) = delivery {
                d.forget(); // counted by `close`
            }
            return;
        }
        account(&mut state.left, delivery.as_ref(), false);
        if verdict != Verdict::Delivered {
            state.lost += 1;
        }
        // Counted before the count drops: a flush that returns sees the outcome in stats.
        if let Some(d) = delivery {
            match verdict {
                Verdict::Delivered => d.delivered(),
                Verdict::Discarded(reason) => d.discarded(reason),
                Verdict::RateLimitedByServer => d.discarded_unreported(DiscardReason::RatelimitBackoff),
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
        for category in DataCategory::ALL {
            tally(category, Column::Shutdown, std::mem::take(&mut state.left[category.index()]));
        }
        self.zero.notify_all();
        drop(state);
        if left > 0 {
            crate::debug::problem(crate::debug::Problem::Shutdown, || {
                format!("{left} envelopes were still queued or being delivered at shutdown and were dropped")
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
    /// since the last flush was delivered: nothing pending, nothing lost. (The client's flush
    /// says in the debug output what was lost.)
    pub(crate) fn flush(&self, timeout: Duration) -> bool {
        let drained = self.wait_zero(timeout);
        let lost = std::mem::take(&mut self.lock().lost);
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

/// A queue's bound in bytes (each envelope's [`estimated_size`](Envelope::estimated_size)):
/// taken when an envelope is queued, given back when its delivery ends. One envelope always
/// fits an empty queue, whatever its size.
#[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // used by the HTTP transport
pub(crate) struct Budget {
    used: AtomicUsize,
    max: usize,
}

#[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
impl Budget {
    pub(crate) fn new(max: usize) -> Self {
        Self { used: AtomicUsize::new(0), max }
    }

    /// Takes `bytes` if they fit (or nothing is queued); whether they did.
    pub(crate) fn take(&self, bytes: usize) -> bool {
        self.used
            .fetch_update(Relaxed, Relaxed, |used| {
                (used == 0 || used.saturating_add(bytes) <= self.max).then(|| used.saturating_add(bytes))
            })
            .is_ok()
    }

    /// Gives back what [`take`](Self::take) took.
    pub(crate) fn give_back(&self, bytes: usize) {
        let _ = self.used.fetch_update(Relaxed, Relaxed, |u| Some(u.saturating_sub(bytes)));
    }

    /// Whether anything more fits now.
    pub(crate) fn has_room(&self) -> bool {
        self.used.load(Relaxed) < self.max
    }
}

/// An envelope and the accounting of its items, on their way through a queue.
pub(crate) type Job = (Envelope, Option<Delivery>);

pub(crate) struct Worker {
    tx: Mutex<Option<SyncSender<Job>>>,
    pending: Arc<Pending>,
    /// The record of envelopes no client made (handed straight to the transport).
    own: Arc<Recorder>,
}

impl Worker {
    /// Starts a thread named `name` that calls `handle` for each envelope, in order; `handle`
    /// says how it ended.
    pub(crate) fn spawn<H>(name: &str, capacity: usize, mut handle: H) -> std::io::Result<Self>
    where
        H: FnMut(Envelope) -> Verdict + Send + 'static,
    {
        let (tx, rx) = mpsc::sync_channel::<Job>(capacity);
        let pending = Arc::new(Pending::default());
        let p = pending.clone();
        std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            mark_worker_thread();
            super::CpuPriority::default().apply();
            loop {
                let (envelope, delivery) = match rx.recv() {
                    Ok(job) => job,
                    Err(_) => break,
                };
                if p.is_closed() {
                    if let Some(d) = delivery {
                        d.forget(); // counted as dropped at shutdown
                    }
                    continue;
                }
                // A panicking handler must not stall `flush` forever nor kill the worker.
                let verdict = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handle(envelope)));
                p.finish(delivery, verdict.unwrap_or(Verdict::Discarded(DiscardReason::InternalSdkError)));
            }
        })?;
        Ok(Self { tx: Mutex::new(Some(tx)), pending, own: Arc::new(Recorder::new(false)) })
    }

    /// Enqueues without blocking; when the queue is full or closed the envelope is dropped and
    /// counted (queue overflow, or shutdown), a loss the next flush reports. Whether it was
    /// queued.
    pub(crate) fn try_send(&self, mut envelope: Envelope) -> bool {
        let delivery = Some(envelope.adopt(self.own.clone()));
        let tx = self.tx.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(tx) = tx.as_ref().filter(|_| self.pending.add(delivery.as_ref())) else {
            self.pending.refuse(delivery, None);
            return false;
        };
        match tx.try_send((envelope, delivery)) {
            Ok(()) => true,
            Err(TrySendError::Full((_, delivery)) | TrySendError::Disconnected((_, delivery))) => {
                self.pending.undo(delivery, DiscardReason::QueueOverflow);
                false
            }
        }
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
