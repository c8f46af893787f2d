//! The process-wide tally of what became of captured items, per data category and outcome
//! (captured, sent, each discard reason, dropped at shutdown), sharded per thread like
//! `stats`' counters; and [`ItemStats`], one category's row as `stats()` shows it.

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

use super::{DataCategory, DiscardReason};
use crate::util::{shard, SHARDS};

const CATEGORIES: usize = DataCategory::ALL.len();
const REASONS: usize = DiscardReason::ALL.len();
/// Captured, sent, one per reason, shutdown.
const COLUMNS: usize = REASONS + 3;

/// An outcome column of the tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Column {
    /// Entered the capture pipeline with a client.
    Captured,
    /// Delivered (accepted by the server, written, kept in memory, handed on).
    Sent,
    /// Discarded, for this reason.
    Discarded(DiscardReason),
    /// Still queued or being delivered when the transport shut down.
    Shutdown,
}

impl Column {
    fn index(self) -> usize {
        match self {
            Self::Captured => 0,
            Self::Sent => 1,
            Self::Discarded(reason) => 2 + reason.index(),
            Self::Shutdown => 2 + REASONS,
        }
    }
}

#[repr(align(128))]
struct Shard([[AtomicU64; COLUMNS]; CATEGORIES]);

/// Each thread writes its own shard (its own cache lines); reads add the shards up.
static TABLE: [Shard; SHARDS] =
    [const { Shard([const { [const { AtomicU64::new(0) }; COLUMNS] }; CATEGORIES]) }; SHARDS];

/// Counts `quantity` items of `category` with this outcome.
pub(crate) fn tally(category: DataCategory, column: Column, quantity: u64) {
    if quantity > 0 {
        TABLE[shard()].0[category.index()][column.index()].fetch_add(quantity, Ordering::Relaxed);
    }
}

/// The whole tally, every shard added up (each cell read atomically; not one atomic snapshot).
pub(crate) fn read() -> Tallies {
    let mut out = Tallies::default();
    for shard in &TABLE {
        for (row, cells) in out.0.iter_mut().zip(&shard.0) {
            for (sum, cell) in row.iter_mut().zip(cells) {
                *sum += cell.load(Ordering::Relaxed);
            }
        }
    }
    out
}

/// A read of the tally.
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tallies([[u64; COLUMNS]; CATEGORIES]);

impl Tallies {
    /// Each cell's difference from `earlier`.
    pub(crate) fn since(&self, earlier: &Self) -> Self {
        let mut out = *self;
        for (row, old) in out.0.iter_mut().zip(&earlier.0) {
            for (cell, old) in row.iter_mut().zip(old) {
                *cell = cell.saturating_sub(*old);
            }
        }
        out
    }

    /// One category's row.
    pub(crate) fn row(&self, category: DataCategory) -> ItemStats {
        ItemStats(self.0[category.index()])
    }
}

impl fmt::Debug for Tallies {
    /// The categories that saw anything, each as its [`ItemStats`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for category in DataCategory::ALL {
            let row = self.row(category);
            if row != ItemStats::default() {
                map.entry(&category.name(), &row);
            }
        }
        map.finish()
    }
}

/// What became of the items of one data category (see
/// [`Stats::items`](crate::Stats::items)): every item captured is, in the end, either sent or
/// dropped for one reason, so once the `ClientGuard` is dropped
/// `captured() == sent() + dropped()` holds for each category.
///
/// ```
/// use isoscope::DataCategory;
/// let transport = isoscope::MemoryTransport::new();
/// let before = isoscope::stats();
/// {
///     let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone()).sample_rate(0.0)).unwrap();
///     isoscope::capture_message("sampled out", isoscope::Level::Error);
/// }
/// let errors = isoscope::stats().since(&before).items(DataCategory::Error);
/// assert_eq!((errors.captured(), errors.sent()), (1, 0));
/// assert_eq!(errors.discarded(isoscope::protocol::DiscardReason::SampleRate), 1);
/// assert_eq!(errors.captured(), errors.sent() + errors.dropped());
/// ```
#[derive(Clone, Copy, Default, PartialEq, Eq)]
pub struct ItemStats([u64; COLUMNS]);

impl ItemStats {
    /// Items that entered the capture pipeline with a client (for spans: a transaction's spans
    /// and the transaction itself).
    pub fn captured(&self) -> u64 {
        self.0[Column::Captured.index()]
    }

    /// Items delivered: accepted by the server, written by the local sink, kept by a memory
    /// transport, or handed on by a transport that reported no other outcome.
    pub fn sent(&self) -> u64 {
        self.0[Column::Sent.index()]
    }

    /// Items discarded for `reason`.
    pub fn discarded(&self, reason: DiscardReason) -> u64 {
        self.0[Column::Discarded(reason).index()]
    }

    /// Items still queued or being delivered when the transport shut down (its
    /// `shutdown_timeout` ran out). Client reports cannot tell the server about these.
    pub fn dropped_at_shutdown(&self) -> u64 {
        self.0[Column::Shutdown.index()]
    }

    /// Items not delivered, for every reason (shutdown included).
    pub fn dropped(&self) -> u64 {
        self.0[2..].iter().sum()
    }

    /// Items dropped for a [loss](DiscardReason::is_loss) (shutdown included): what a healthy
    /// pipeline keeps at zero.
    pub fn lost(&self) -> u64 {
        DiscardReason::ALL.into_iter().filter(|r| r.is_loss()).map(|r| self.discarded(r)).sum::<u64>()
            + self.dropped_at_shutdown()
    }
}

impl fmt::Debug for ItemStats {
    /// Captured and sent, then the reasons with a count.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("ItemStats");
        s.field("captured", &self.captured()).field("sent", &self.sent());
        for reason in DiscardReason::ALL {
            if self.discarded(reason) > 0 {
                s.field(reason.name(), &self.discarded(reason));
            }
        }
        if self.dropped_at_shutdown() > 0 {
            s.field("shutdown", &self.dropped_at_shutdown());
        }
        s.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_are_distinct_and_fill_the_row() {
        let mut seen = [false; COLUMNS];
        let columns = [Column::Captured, Column::Sent, Column::Shutdown]
            .into_iter()
            .chain(DiscardReason::ALL.into_iter().map(Column::Discarded));
        for c in columns {
            assert!(!std::mem::replace(&mut seen[c.index()], true), "{c:?}");
        }
        assert!(seen.iter().all(|s| *s));
    }

    #[test]
    fn a_tally_shows_in_its_row_only() {
        let before = read();
        tally(DataCategory::Feedback, Column::Discarded(DiscardReason::CacheOverflow), 3);
        tally(DataCategory::Feedback, Column::Captured, 3);
        let row = read().since(&before).row(DataCategory::Feedback);
        assert_eq!(
            (row.captured(), row.discarded(DiscardReason::CacheOverflow), row.dropped(), row.lost()),
            (3, 3, 3, 3)
        );
        assert_eq!(read().since(&before).row(DataCategory::Replay), ItemStats::default());
    }
}
