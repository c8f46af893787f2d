//! Release health in request mode: how each request the layer served ended, counted per
//! status until the HTTP transport sends them as a `sessions` aggregate (develop.sentry.dev,
//! telemetry/sessions: every request is a session, aggregated per minute).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::util::{shard, SHARDS};

/// How a request's session ended (Sentry's precedence when several apply: crashed, abnormal,
/// errored, exited).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SessionStatus {
    /// Ended normally, no error captured (a 5xx without a captured error included).
    Exited = 0,
    /// Ended normally, with an error event (an exception) captured in it.
    Errored = 1,
    /// Cancelled before its response ended (the client went away, a timeout).
    Abnormal = 2,
    /// The handler panicked.
    Crashed = 3,
}

/// Whether requests' sessions are counted (`Options::auto_session_tracking` and a release, set
/// by `init`): one relaxed load per request when they are not.
static TRACKING: AtomicBool = AtomicBool::new(false);

#[repr(align(128))]
struct Shard([AtomicU64; 4]);

static COUNTS: [Shard; SHARDS] = [const { Shard([const { AtomicU64::new(0) }; 4]) }; SHARDS];

/// Turns the counting on or off (`init`).
pub(crate) fn set_tracking(on: bool) {
    TRACKING.store(on, Ordering::Relaxed);
}

/// Counts one request's session, when tracking is on.
#[inline]
pub(crate) fn record(status: SessionStatus) {
    if TRACKING.load(Ordering::Relaxed) {
        COUNTS[shard()].0[status as usize].fetch_add(1, Ordering::Relaxed);
    }
}

#[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // the HTTP transport sends them
/// Whether any session waits to be reported.
pub(crate) fn pending() -> bool {
    COUNTS.iter().flat_map(|s| &s.0).any(|c| c.load(Ordering::Relaxed) > 0)
}

#[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // the HTTP transport sends them
/// Takes the counts so far (exited, errored, abnormal, crashed); `None` when there are none.
pub(crate) fn take() -> Option<[u64; 4]> {
    let mut out = [0u64; 4];
    for shard in &COUNTS {
        for (sum, cell) in out.iter_mut().zip(&shard.0) {
            if cell.load(Ordering::Relaxed) > 0 {
                *sum += cell.swap(0, Ordering::Relaxed);
            }
        }
    }
    (out != [0; 4]).then_some(out)
}

#[cfg_attr(not(feature = "reqwest"), allow(dead_code))] // the HTTP transport sends them
/// Puts counts taken for a sessions item that did not reach the server back, for the next.
pub(crate) fn restore(counts: [u64; 4]) {
    for (cell, n) in COUNTS[shard()].0.iter().zip(counts) {
        cell.fetch_add(n, Ordering::Relaxed);
    }
}
