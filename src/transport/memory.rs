//! [`MemoryTransport`]: keeps envelopes in memory, for tests.

use std::sync::{Arc, Mutex, PoisonError};

use super::Transport;
use crate::event::{Envelope, Event, FinishedEnvelope};

/// Keeps every envelope it is sent in memory. Clones share the buffer, so keep one clone and
/// pass another to `Options::transport`.
///
/// ```
/// use isoscope::{Level, MemoryTransport, Options};
///
/// let transport = MemoryTransport::new();
/// let _guard = isoscope::init(Options::new().transport(transport.clone())).unwrap();
/// isoscope::add_breadcrumb(isoscope::Breadcrumb::new("step 1"));
/// isoscope::capture_message("done", Level::Info);
/// let events = transport.take_events();
/// assert_eq!(events.len(), 1);
/// assert!(events[0].breadcrumbs.iter().any(|b| b.message.as_deref() == Some("step 1")));
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryTransport {
    envelopes: Arc<Mutex<Vec<FinishedEnvelope>>>,
}

impl MemoryTransport {
    /// An empty buffer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every envelope received so far (finished).
    pub fn envelopes(&self) -> Vec<FinishedEnvelope> {
        self.envelopes.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Every event received so far, oldest first.
    pub fn events(&self) -> Vec<Event> {
        self.envelopes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|e| e.event().cloned())
            .collect()
    }

    /// Every transaction received so far, oldest first.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// use axum::{routing::get, Router};
    /// use tower::ServiceExt;
    ///
    /// let transport = isoscope::MemoryTransport::new();
    /// let options = isoscope::Options::new().traces_sample_rate(1.0).transport(transport.clone());
    /// let _guard = isoscope::init(options).unwrap();
    /// let app = Router::new()
    ///     .route("/orders/{id}", get(|| async {
    ///         let _query = isoscope::start_span("db.query", "SELECT * FROM orders WHERE id = ?");
    ///         "ok"
    ///     }))
    ///     .layer(isoscope::IsolationLayer::new());
    /// let req = http::Request::get("/orders/7").body(axum::body::Body::empty()).unwrap();
    /// let response = app.oneshot(req).await.unwrap();
    /// // The transaction ends with the response body, once read (as a server does); a body
    /// // dropped unread ends it `cancelled`.
    /// axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    ///
    /// let tx = &transport.transactions()[0];
    /// assert_eq!((tx.name.as_str(), tx.op.as_str(), tx.status.as_str()), ("/orders/{id}", "http.server", "ok"));
    /// assert_eq!(tx.spans[0].op, "db.query");
    /// assert_eq!(tx.spans[0].parent_span_id, tx.span_id);
    /// # }
    /// ```
    pub fn transactions(&self) -> Vec<crate::event::Transaction> {
        self.envelopes
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(|e| e.transaction().cloned())
            .collect()
    }

    /// Every log record received so far, oldest first (see [`crate::logs`]).
    ///
    /// ```
    /// let transport = isoscope::MemoryTransport::new();
    /// let guard = isoscope::init(isoscope::Options::new().enable_logs(true).transport(transport.clone())).unwrap();
    /// isoscope::logs::info!("started");
    /// guard.flush(std::time::Duration::from_secs(1));
    /// assert_eq!(transport.logs()[0].body, "started");
    /// ```
    pub fn logs(&self) -> Vec<crate::event::Log> {
        let envelopes = self.envelopes.lock().unwrap_or_else(PoisonError::into_inner);
        let items = envelopes.iter().flat_map(|e| e.items());
        items
            .filter_map(
                |i| if let crate::event::EnvelopeItem::Logs(logs) = i { Some(logs.iter().cloned()) } else { None },
            )
            .flatten()
            .collect()
    }

    /// Every cron check-in received so far, oldest first (see [`crate::Monitor`]).
    ///
    /// ```
    /// use isoscope::protocol::{CheckIn, CheckInStatus};
    /// let transport = isoscope::MemoryTransport::new();
    /// let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
    /// isoscope::capture_check_in(CheckIn::new("import", CheckInStatus::Ok)).unwrap();
    /// assert_eq!(transport.check_ins()[0].monitor_slug, "import");
    /// ```
    pub fn check_ins(&self) -> Vec<crate::event::CheckIn> {
        let envelopes = self.envelopes.lock().unwrap_or_else(PoisonError::into_inner);
        let items = envelopes.iter().flat_map(|e| e.items());
        items
            .filter_map(|i| if let crate::event::EnvelopeItem::CheckIn(c) = i { Some(c.clone()) } else { None })
            .collect()
    }

    /// Removes and returns every event received so far.
    pub fn take_events(&self) -> Vec<Event> {
        let taken = std::mem::take(&mut *self.envelopes.lock().unwrap_or_else(PoisonError::into_inner));
        taken.into_iter().filter_map(FinishedEnvelope::into_event).collect()
    }

    /// Forgets everything received.
    pub fn clear(&self) {
        self.envelopes.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

impl Transport for MemoryTransport {
    /// Keeps the envelope, finished and resolved (the capture's deferred work, captured
    /// stacks, transactions' request data: on the caller's thread, as this is a transport for
    /// tests, read right after the capture).
    fn send(&self, envelope: Envelope) {
        let mut envelope = envelope.finish();
        envelope.resolve_all();
        if let Some(delivery) = envelope.take_delivery() {
            delivery.delivered();
        }
        self.envelopes.lock().unwrap_or_else(PoisonError::into_inner).push(envelope);
    }
}
