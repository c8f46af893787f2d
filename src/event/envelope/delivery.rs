//! [`Delivery`]: the accounting an envelope made by a capture carries to its transport, which
//! says what became of its items — delivered, or discarded and why — so that stats, `flush` and
//! client reports tell the truth for every transport, custom ones included.

use std::fmt;
use std::sync::Arc;

use super::item::{EnvelopeItem, ItemType};
use crate::outcome::{DataCategory, DiscardReason, Recorder};

/// One item's quantities.
#[derive(Debug, Clone, Copy)]
struct Entry {
    item: ItemType,
    counts: [(DataCategory, u64); 2],
}

/// What became of an envelope's items, to be said once by the transport that handles it.
///
/// Every envelope a client makes (an event, a transaction) carries one; take it with
/// [`Envelope::take_delivery`](super::Envelope::take_delivery), and say
/// [`delivered`](Self::delivered) or [`discarded`](Self::discarded) when you know. That keeps
/// the promise of [`stats()`](crate::stats()) (`captured == sent + dropped` per category),
/// makes `flush` return `false` after a loss, and puts your drops in the client reports the
/// server is sent.
///
/// A `Delivery` dropped without a word — or an envelope dropped with its `Delivery` still
/// inside — counts as delivered: the envelope was handed to a transport that reported no
/// other outcome.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use isoscope::protocol::DiscardReason;
/// use isoscope::{DataCategory, Envelope, Transport};
///
/// /// Keeps two envelopes, discards the rest.
/// #[derive(Default)]
/// struct KeepTwo(Mutex<Vec<Envelope>>);
///
/// impl Transport for KeepTwo {
///     fn send(&self, mut envelope: Envelope) {
///         let mut kept = self.0.lock().unwrap();
///         let delivery = envelope.take_delivery();
///         if kept.len() < 2 {
///             kept.push(envelope);
///             delivery.map(|d| d.delivered());
///         } else {
///             delivery.map(|d| d.discarded(DiscardReason::QueueOverflow));
///         }
///     }
/// }
///
/// let before = isoscope::stats();
/// let guard = isoscope::init(isoscope::Options::new().transport(Arc::new(KeepTwo::default()))).unwrap();
/// for _ in 0..3 {
///     isoscope::capture_message("hi", isoscope::Level::Info);
/// }
/// assert!(!guard.flush(std::time::Duration::from_secs(1)), "a discard is a loss: flush says so");
/// drop(guard);
/// let errors = isoscope::stats().since(&before).items(DataCategory::Error);
/// assert_eq!((errors.captured(), errors.sent(), errors.discarded(DiscardReason::QueueOverflow)), (3, 2, 1));
/// ```
#[must_use = "say what became of the items: `delivered()` or `discarded(reason)`"]
pub struct Delivery {
    recorder: Arc<Recorder>,
    /// The first item's entry inline (most envelopes hold one item: no allocation).
    first: Option<Entry>,
    rest: Vec<Entry>,
}

impl fmt::Debug for Delivery {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.quantities()).finish()
    }
}

impl Delivery {
    /// The accounting of an envelope with an event still to be made (one `error`) and `items`.
    pub(crate) fn new(recorder: Arc<Recorder>, event: bool, items: &[EnvelopeItem]) -> Self {
        let event = event
            .then_some(Entry { item: ItemType::Event, counts: [(DataCategory::Error, 1), (DataCategory::Default, 0)] });
        let mut entries =
            event.into_iter().chain(items.iter().map(|i| Entry { item: i.item_type(), counts: i.quantities() }));
        let first = entries.next();
        Self { recorder, first, rest: entries.collect() }
    }

    /// Accounts for one more item, counted as captured now (attachments joining an event).
    pub(crate) fn add(&mut self, item: &EnvelopeItem) {
        let entry = Entry { item: item.item_type(), counts: item.quantities() };
        for (category, n) in entry.counts.into_iter().filter(|(_, n)| *n > 0) {
            self.recorder.captured(category, n);
        }
        if self.first.is_none() {
            self.first = Some(entry);
        } else {
            self.rest.push(entry);
        }
    }

    /// The client's recorder this accounting reports to.
    pub(crate) fn recorder(&self) -> &Arc<Recorder> {
        &self.recorder
    }

    fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.first.iter().chain(&self.rest)
    }

    /// What the items still accounted for count, per data category (quantities > 0; the
    /// items of an [`ItemType`] already discarded with [`discard`](Self::discard) are gone).
    pub fn quantities(&self) -> impl Iterator<Item = (DataCategory, u64)> + '_ {
        self.entries().flat_map(|e| e.counts).filter(|(_, n)| *n > 0)
    }

    /// The items were delivered (accepted by the server, written, kept).
    pub fn delivered(mut self) {
        self.settle(|recorder, c, n| recorder.sent(c, n));
    }

    /// The items were discarded, for `reason`. A [loss](DiscardReason::is_loss) makes the
    /// client's next flush return `false`; with client reports on, the server hears of it.
    pub fn discarded(mut self, reason: DiscardReason) {
        self.settle(|recorder, c, n| recorder.discarded(c, reason, n));
    }

    /// Discarded for `reason`, counted in stats and for the flush but left out of client
    /// reports (the server counted these itself: a 429 answer).
    pub(crate) fn discarded_unreported(mut self, reason: DiscardReason) {
        self.settle(|recorder, c, n| recorder.discarded_unreported(c, reason, n));
    }

    /// Discards the items of kind `item` only (an attachment a rate limit keeps out, say); the
    /// others still wait for their outcome.
    pub fn discard(&mut self, item: ItemType, reason: DiscardReason) {
        let matches = |e: &Entry| e.item == item;
        for e in self.entries().filter(|e| matches(e)) {
            for (c, n) in e.counts {
                self.recorder.discarded(c, reason, n);
            }
        }
        if self.first.as_ref().is_some_and(matches) {
            self.first = None;
        }
        self.rest.retain(|e| !matches(e));
    }

    /// The items were still queued or in flight when the transport shut down, or came after.
    pub(crate) fn shut_down(mut self) {
        self.settle(|recorder, c, n| recorder.shutdown(c, n));
    }

    /// Ends the accounting without counting anything: the items were counted already (at
    /// shutdown, by what they were left over in).
    pub(crate) fn forget(mut self) {
        self.settle(|_, _, _| {});
    }

    /// Takes every remaining quantity out, once, handing each to `count` with the recorder;
    /// nothing is left for `Drop` to count. Plain loops: the chained iterator this was cost
    /// ~95 instructions more per capture (callgrind), on the capturing thread.
    fn settle(&mut self, mut count: impl FnMut(&Recorder, DataCategory, u64)) {
        if let Some(first) = self.first.take() {
            for (c, n) in first.counts {
                if n > 0 {
                    count(&self.recorder, c, n);
                }
            }
        }
        if !self.rest.is_empty() {
            for entry in std::mem::take(&mut self.rest) {
                for (c, n) in entry.counts {
                    if n > 0 {
                        count(&self.recorder, c, n);
                    }
                }
            }
        }
    }
}

impl Drop for Delivery {
    /// Not settled: handed to a transport that reported no other outcome.
    fn drop(&mut self) {
        self.settle(|recorder, c, n| recorder.sent(c, n));
    }
}
