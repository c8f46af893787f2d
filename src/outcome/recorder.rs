//! [`Recorder`]: one client's outcomes — each counted in the process-wide tally, the discards
//! also kept for the client's next client report, the losses for its next flush.

use std::sync::atomic::{AtomicU64, Ordering};

use super::tally::{tally, Column};
use super::{DataCategory, DiscardReason};

const CATEGORIES: usize = DataCategory::ALL.len();
const REASONS: usize = DiscardReason::ALL.len();

/// Where a client's outcomes are recorded. Shared (`Arc`) by the client and by every envelope
/// it made (their `Delivery`), so a transport's verdicts reach the client that captured.
pub(crate) struct Recorder {
    /// Whether discards are kept for client reports (`Options::send_client_reports`).
    reports: bool,
    /// Discards not yet in a client report, per category and reason. Bounded by construction:
    /// counts, not items.
    unreported: [[AtomicU64; REASONS]; CATEGORIES],
    /// Items lost (see [`DiscardReason::is_loss`]) since the last flush, per reason; the last
    /// cell counts shutdown drops.
    lost: [AtomicU64; REASONS + 1],
    /// The release and environment its requests' sessions are reported for, when it tracks
    /// sessions (`Options::auto_session_tracking` with a release).
    sessions: Option<(String, Option<String>)>,
}

impl std::fmt::Debug for Recorder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Recorder").field("reports", &self.reports).finish_non_exhaustive()
    }
}

impl Recorder {
    /// A recorder that keeps discards for client reports if `reports`.
    pub(crate) fn new(reports: bool) -> Self {
        Self {
            reports,
            unreported: [const { [const { AtomicU64::new(0) }; REASONS] }; CATEGORIES],
            lost: [const { AtomicU64::new(0) }; REASONS + 1],
            sessions: None,
        }
    }

    /// Reports requests' sessions for `release` (and `environment`).
    pub(crate) fn with_sessions(mut self, release: String, environment: Option<String>) -> Self {
        self.sessions = Some((release, environment));
        self
    }

    /// The release and environment of the sessions it reports, if it does.
    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // read by the HTTP transport
    pub(crate) fn sessions(&self) -> Option<&(String, Option<String>)> {
        self.sessions.as_ref()
    }

    /// `quantity` items of `category` entered the capture pipeline.
    pub(crate) fn captured(&self, category: DataCategory, quantity: u64) {
        tally(category, Column::Captured, quantity);
    }

    /// `quantity` items of `category` were delivered.
    pub(crate) fn sent(&self, category: DataCategory, quantity: u64) {
        tally(category, Column::Sent, quantity);
    }

    /// `quantity` items of `category` were discarded for `reason`.
    pub(crate) fn discarded(&self, category: DataCategory, reason: DiscardReason, quantity: u64) {
        self.discard(category, reason, quantity, true);
    }

    /// Items that never reached an envelope (sampled out, refused by a hook, no room in a
    /// buffer): each `(category, quantity)` counted as captured and discarded for `reason`.
    pub(crate) fn dropped_unsent(&self, items: &[(DataCategory, u64)], reason: DiscardReason) {
        for &(category, quantity) in items {
            self.captured(category, quantity);
            self.discarded(category, reason, quantity);
        }
    }

    /// Like [`discarded`](Self::discarded), but never in a client report (the server counted
    /// these itself).
    pub(crate) fn discarded_unreported(&self, category: DataCategory, reason: DiscardReason, quantity: u64) {
        self.discard(category, reason, quantity, false);
    }

    fn discard(&self, category: DataCategory, reason: DiscardReason, quantity: u64, report: bool) {
        if quantity == 0 {
            return;
        }
        tally(category, Column::Discarded(reason), quantity);
        if self.reports && report {
            self.unreported[category.index()][reason.index()].fetch_add(quantity, Ordering::Relaxed);
        }
        if reason.is_loss() {
            self.lost[reason.index()].fetch_add(quantity, Ordering::Relaxed);
        }
    }

    /// `quantity` items of `category` were still queued or in flight at shutdown (a client
    /// report can no longer tell the server).
    pub(crate) fn shutdown(&self, category: DataCategory, quantity: u64) {
        tally(category, Column::Shutdown, quantity);
        self.lost[REASONS].fetch_add(quantity, Ordering::Relaxed);
    }

    /// What was lost since the last call (the flush's question): `(reason, quantity)` with
    /// quantities > 0, `"shutdown"` for shutdown drops.
    pub(crate) fn take_lost(&self) -> Vec<(&'static str, u64)> {
        let names = DiscardReason::ALL.iter().map(|r| r.name()).chain(["shutdown"]);
        names
            .zip(&self.lost)
            .filter(|(_, cell)| cell.load(Ordering::Relaxed) > 0)
            .map(|(name, cell)| (name, cell.swap(0, Ordering::Relaxed)))
            .filter(|(_, n)| *n > 0)
            .collect()
    }

    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // used by the HTTP transport
    /// Whether discards wait for a client report.
    pub(crate) fn has_unreported(&self) -> bool {
        self.reports && self.unreported.iter().flatten().any(|c| c.load(Ordering::Relaxed) > 0)
    }

    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // used by the HTTP transport
    /// Takes the discards not yet reported: `(reason, category, quantity)`, quantities > 0.
    pub(crate) fn take_unreported(&self) -> Vec<(DiscardReason, DataCategory, u64)> {
        let mut out = Vec::new();
        if !self.reports {
            return out;
        }
        for category in DataCategory::ALL {
            for reason in DiscardReason::ALL {
                let cell = &self.unreported[category.index()][reason.index()];
                // A load first: most cells are zero, and a swap is a locked write.
                let n = if cell.load(Ordering::Relaxed) > 0 { cell.swap(0, Ordering::Relaxed) } else { 0 };
                if n > 0 {
                    out.push((reason, category, n));
                }
            }
        }
        out
    }

    #[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // used by the HTTP transport
    /// Puts back discards taken for a report that did not reach the server, for the next one.
    pub(crate) fn restore(&self, taken: &[(DiscardReason, DataCategory, u64)]) {
        for &(reason, category, n) in taken {
            self.unreported[category.index()][reason.index()].fetch_add(n, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn discards_wait_for_a_report_and_losses_for_a_flush() {
        let r = Recorder::new(true);
        r.discarded(DataCategory::Error, DiscardReason::QueueOverflow, 2);
        r.discarded(DataCategory::Span, DiscardReason::SampleRate, 5);
        assert_eq!(r.take_lost(), [("queue_overflow", 2)], "sampling is a decision, not a loss");
        assert!(r.take_lost().is_empty());
        let taken = r.take_unreported();
        assert_eq!(
            taken,
            [
                (DiscardReason::QueueOverflow, DataCategory::Error, 2),
                (DiscardReason::SampleRate, DataCategory::Span, 5)
            ]
        );
        assert!(!r.has_unreported());
        r.restore(&taken);
        assert_eq!(r.take_unreported(), taken);
    }

    #[test]
    fn without_reports_nothing_waits() {
        let r = Recorder::new(false);
        r.discarded(DataCategory::Error, DiscardReason::NetworkError, 1);
        assert!(!r.has_unreported() && r.take_unreported().is_empty());
        assert_eq!(r.take_lost(), [("network_error", 1)]);
    }
}
