//! [`Recorder`]: a sampled request's child spans, collected until the request ends and its
//! transaction is sent.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use crate::event::Span;
use crate::stats::{incr, COUNTERS};

/// Most child spans per transaction; more are dropped and counted (`stats().spans_dropped`).
pub(crate) const MAX_SPANS: usize = 1000;

/// The performance data of one sampled request.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// Start, seconds since the Unix epoch.
    start: f64,
    /// The same instant, for monotonic durations.
    started: Instant,
    spans: Mutex<Vec<Span>>,
    finished: AtomicBool,
}

impl Recorder {
    pub(crate) fn new() -> Self {
        Self {
            start: crate::util::now_f64(),
            started: Instant::now(),
            spans: Mutex::new(Vec::new()),
            finished: AtomicBool::new(false),
        }
    }

    /// Now, on this recorder's clock (the start plus the monotonic time since).
    pub(crate) fn now(&self) -> f64 {
        self.start + self.started.elapsed().as_secs_f64()
    }

    /// Keeps a finished child span; dropped (and counted) past [`MAX_SPANS`] or once the
    /// transaction was sent.
    pub(crate) fn record(&self, span: Span) {
        if self.finished.load(Ordering::Acquire) {
            incr(&COUNTERS.spans_dropped);
            return;
        }
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        if spans.len() >= MAX_SPANS {
            incr(&COUNTERS.spans_dropped);
            return;
        }
        spans.push(span);
    }

    /// Ends the recording, once: start, end and the spans.
    pub(crate) fn finish(&self) -> Option<(f64, f64, Vec<Span>)> {
        if self.finished.swap(true, Ordering::AcqRel) {
            return None;
        }
        let spans = std::mem::take(&mut *self.spans.lock().unwrap_or_else(PoisonError::into_inner));
        Some((self.start, self.now(), spans))
    }
}
