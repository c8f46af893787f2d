//! Client reports and sessions from the HTTP transport: the discards its client recorded, and
//! the requests' sessions (release health), taken as items to ride on the next envelope (the
//! sessions once a minute), or sent on their own when the transport is idle, at flush and at
//! shutdown; put back when they do not reach the server.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

use crate::event::{ClientReport, Delivery, Envelope, EnvelopeItem, SessionAggregate, SessionAggregates};
use crate::outcome::{sessions, DataCategory, DiscardReason, Recorder};

/// The client whose discards this transport reports: given at build (a transport `init` made
/// from the DSN) or learned from the first envelope it is handed (one built by the user); and
/// the transport's own record, for envelopes handed to it that no client made.
pub(crate) struct Reports {
    recorder: OnceLock<Arc<Recorder>>,
    own: Arc<Recorder>,
    /// When sessions were last sent (they ride along at most once a minute).
    sessions_sent: Mutex<Instant>,
}

/// How often sessions ride along with other envelopes.
const SESSIONS_EVERY: Duration = Duration::from_secs(60);

/// Discards taken for a report: put back unless the report reached the server.
pub(crate) struct Taken(Vec<(Arc<Recorder>, Counts)>);

/// `(reason, category, quantity)` triples.
type Counts = Vec<(DiscardReason, DataCategory, u64)>;

impl Reports {
    pub(crate) fn new(recorder: Option<Arc<Recorder>>) -> Self {
        let reports = Self {
            recorder: OnceLock::new(),
            own: Arc::new(Recorder::new(true)),
            sessions_sent: Mutex::new(Instant::now()),
        };
        if let Some(r) = recorder {
            let _ = reports.recorder.set(r);
        }
        reports
    }

    /// Learns the client from an envelope's accounting, if it does not know one yet.
    pub(crate) fn learn(&self, delivery: Option<&Delivery>) {
        if self.recorder.get().is_none() {
            if let Some(d) = delivery {
                let _ = self.recorder.set(d.recorder().clone());
            }
        }
    }

    /// The accounting of an envelope no client made (handed straight to the transport): it
    /// counts as captured here, and its outcome goes to the transport's own record.
    pub(crate) fn adopt(&self, envelope: &mut Envelope) -> Delivery {
        envelope.adopt(self.own.clone())
    }

    fn recorders(&self) -> impl Iterator<Item = &Arc<Recorder>> {
        self.recorder.get().into_iter().chain([&self.own])
    }

    /// Whether discards or sessions wait to be reported.
    pub(crate) fn waiting(&self) -> bool {
        self.recorders().any(|r| r.has_unreported()) || (self.tracks_sessions() && sessions::pending())
    }

    fn tracks_sessions(&self) -> bool {
        self.recorder.get().is_some_and(|r| r.sessions().is_some())
    }

    /// Takes the sessions counted so far as a `sessions` item (aggregated in the current
    /// minute) — if the client tracks them, and, unless `now`, once a minute at most.
    pub(crate) fn take_sessions(&self, now: bool) -> Option<(EnvelopeItem, [u64; 4])> {
        let (release, environment) = self.recorder.get()?.sessions()?;
        let mut sent = self.sessions_sent.lock().unwrap_or_else(PoisonError::into_inner);
        if !now && sent.elapsed() < SESSIONS_EVERY {
            return None;
        }
        let counts = sessions::take()?;
        *sent = Instant::now();
        let n = |i: usize| u32::try_from(counts[i]).unwrap_or(u32::MAX);
        let mut bucket = SessionAggregate::new(crate::util::now_f64());
        (bucket.exited, bucket.errored, bucket.abnormal, bucket.crashed) = (n(0), n(1), n(2), n(3));
        let mut aggregates = SessionAggregates::new(release.clone(), environment.clone());
        aggregates.aggregates.push(bucket);
        Some((EnvelopeItem::Sessions(aggregates), counts))
    }

    /// Takes what waits, as a report item; `None` when nothing does.
    pub(crate) fn take(&self) -> Option<(EnvelopeItem, Taken)> {
        let mut report = ClientReport::new(crate::util::now_f64());
        let mut taken = Vec::new();
        for recorder in self.recorders().filter(|r| r.has_unreported()) {
            let counts = recorder.take_unreported();
            for &(reason, category, n) in &counts {
                report.add(reason, category, n);
            }
            taken.push((recorder.clone(), counts));
        }
        if report.is_empty() {
            return None;
        }
        Some((EnvelopeItem::ClientReport(report), Taken(taken)))
    }
}

impl Taken {
    /// The report did not reach the server: its counts wait for the next one.
    pub(crate) fn put_back(self) {
        for (recorder, counts) in self.0 {
            recorder.restore(&counts);
        }
    }
}
