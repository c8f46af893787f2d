//! [`ClientReport`]: what the SDK discarded, by reason and category, as a `client_report`
//! envelope item (develop.sentry.dev, telemetry/client-reports; Relay's `ClientReport`).

use serde::Serialize;

use crate::outcome::{DataCategory, DiscardReason};

/// Counts of what the SDK discarded since its last report.
///
/// ```
/// use isoscope::protocol::{ClientReport, DiscardReason};
/// use isoscope::DataCategory;
/// let mut report = ClientReport::new(1_700_000_000.0);
/// report.add(DiscardReason::QueueOverflow, DataCategory::Error, 12);
/// let json = serde_json::to_value(&report).unwrap();
/// assert_eq!(json["discarded_events"][0]["reason"], "queue_overflow");
/// assert_eq!(json["discarded_events"][0]["category"], "error");
/// assert_eq!(json["discarded_events"][0]["quantity"], 12);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[non_exhaustive]
pub struct ClientReport {
    /// When the report was made (seconds since the Unix epoch).
    pub timestamp: f64,
    /// What was discarded.
    pub discarded_events: Vec<DiscardedEvent>,
}

/// One count of a client report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DiscardedEvent {
    /// Why.
    pub reason: DiscardReason,
    /// What.
    pub category: DataCategory,
    /// How many (bytes for byte categories).
    pub quantity: u64,
}

impl ClientReport {
    /// An empty report made at `timestamp`.
    pub fn new(timestamp: f64) -> Self {
        Self { timestamp, discarded_events: Vec::new() }
    }

    /// Counts `quantity` more of `category` discarded for `reason` (merged with an existing
    /// count of the same pair).
    pub fn add(&mut self, reason: DiscardReason, category: DataCategory, quantity: u64) {
        if quantity == 0 {
            return;
        }
        match self.discarded_events.iter_mut().find(|d| d.reason == reason && d.category == category) {
            Some(d) => d.quantity = d.quantity.saturating_add(quantity),
            None => self.discarded_events.push(DiscardedEvent { reason, category, quantity }),
        }
    }

    /// Whether it counts nothing.
    pub fn is_empty(&self) -> bool {
        self.discarded_events.is_empty()
    }
}
