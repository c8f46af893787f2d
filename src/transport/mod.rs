//! Transports: where captured events go.
//!
//! - `HttpTransport` (feature `reqwest`, default): the default with a DSN; delivers to a
//!   Sentry-compatible server from a background thread.
//! - [`LocalTransport`]: the default without a DSN; one JSON event per line to stdout or to
//!   the file named by `ISOSCOPE_OUTPUT`, written by a background thread.
//! - [`MemoryTransport`]: keeps envelopes in memory, for your own tests.
//! - Your own: implement [`Transport`] and pass it to `Options::transport`.
//!
//! ```text
//!  Transport::send(envelope)      never blocks: a queue bounded in bytes, drop and count when full
//!    └▶ background thread
//!         HttpTransport   its own current-thread runtime, up to 8 deliveries at once,
//!                         rate limits (ratelimit.rs), retries with capped backoff
//!         LocalTransport  one JSON line per event (worker.rs: queue + flush deadline)
//!  flush / shutdown(timeout)      wait for what was accepted, return by the deadline
//! ```

use std::sync::Arc;
use std::time::Duration;

use crate::event::Envelope;

#[cfg(feature = "reqwest")]
mod address;
#[cfg(feature = "reqwest")]
mod client_reports;
#[cfg(feature = "reqwest")]
mod gzip;
#[cfg(feature = "reqwest")]
mod http;
mod local;
mod memory;
mod pretty;
mod priority;
#[cfg_attr(not(feature = "reqwest"), allow(dead_code))]
mod ratelimit;
mod worker;

#[cfg(feature = "reqwest")]
pub use http::{HttpTransport, HttpTransportBuilder};
pub use local::LocalTransport;
pub use memory::MemoryTransport;
pub use priority::CpuPriority;
#[cfg_attr(not(feature = "tracing"), allow(unused_imports))]
pub(crate) use worker::on_worker_thread;

/// Delivers envelopes. `send` must never block the caller: it runs on request paths, on tokio
/// worker threads and inside panic handling.
///
/// ```
/// use std::sync::{Arc, Mutex};
/// use isoscope::{Envelope, Transport};
///
/// #[derive(Default)]
/// struct CountOnly(Mutex<usize>);
///
/// impl Transport for CountOnly {
///     fn send(&self, _envelope: Envelope) {
///         *self.0.lock().unwrap() += 1;
///     }
/// }
///
/// let transport = Arc::new(CountOnly::default());
/// let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
/// isoscope::capture_message("one", isoscope::Level::Info);
/// assert_eq!(*transport.0.lock().unwrap(), 1);
/// ```
pub trait Transport: Send + Sync + 'static {
    /// Takes ownership of an envelope for delivery. Must not block.
    ///
    /// Say what became of its items with the [`Delivery`](crate::Delivery) it carries
    /// ([`Envelope::take_delivery`]): delivered, or discarded and why. A transport that says
    /// nothing has its envelopes counted as delivered when it lets go of them.
    fn send(&self, envelope: Envelope);

    /// Whether [`send`](Self::send) would take an envelope now. `false` (its queue is full, say)
    /// lets the capture pipeline skip building an event that would be dropped: it counts it as
    /// discarded for `queue_overflow` instead (and the client's next flush says `false`). A
    /// question only: must be cheap, must not block, and counts nothing. Default `true`.
    fn has_room(&self) -> bool {
        true
    }

    /// Waits up to `timeout` until everything sent so far is delivered. Returns `true` only if
    /// every envelope sent since the last flush was delivered — `false` if any was dropped or
    /// is still pending at the timeout. Must return by the timeout. (The default, for a
    /// transport that hands envelopes over synchronously, is `true`; the client's flush also
    /// says `false` when a [`Delivery`](crate::Delivery) reported a loss.)
    fn flush(&self, timeout: Duration) -> bool {
        let _ = timeout;
        true
    }

    /// Flushes and stops, by `timeout`. Called when the [`ClientGuard`](crate::ClientGuard)
    /// is dropped.
    fn shutdown(&self, timeout: Duration) -> bool {
        self.flush(timeout)
    }
}

impl<T: Transport + ?Sized> Transport for Arc<T> {
    fn send(&self, envelope: Envelope) {
        (**self).send(envelope);
    }
    fn has_room(&self) -> bool {
        (**self).has_room()
    }
    fn flush(&self, timeout: Duration) -> bool {
        (**self).flush(timeout)
    }
    fn shutdown(&self, timeout: Duration) -> bool {
        (**self).shutdown(timeout)
    }
}

/// The transport for a configured DSN.
pub(crate) fn for_dsn(
    dsn: crate::Dsn,
    queue: (usize, usize),
    recorder: Arc<crate::outcome::Recorder>,
) -> Result<Arc<dyn Transport>, crate::Error> {
    #[cfg(feature = "reqwest")]
    {
        let builder = HttpTransport::for_dsn(dsn).queue_size(queue.0).max_queue_bytes(queue.1);
        Ok(Arc::new(builder.build_for(Some(recorder))?))
    }
    #[cfg(not(feature = "reqwest"))]
    {
        let _ = (dsn, queue, recorder);
        Err(crate::Error::Transport(
            "a DSN is configured but isoscope was built without the `reqwest` feature; enable it, unset \
             ISOSCOPE_DSN/SENTRY_DSN to use the local JSON-lines sink, or pass Options::transport"
                .to_owned(),
        ))
    }
}
