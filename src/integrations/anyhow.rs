//! [`capture_anyhow`]: an `anyhow::Error` as an event, with its own backtrace as the stack.

use crate::event::{Event, EventId};

/// Captures an `anyhow::Error` with the active scopes: one exception per error of its chain
/// (its context messages included), the outermost last, as [`capture_error`](crate::capture_error).
///
/// The outermost exception's stack is the backtrace the error captured where it was created
/// (anyhow captures one when `RUST_BACKTRACE=1` or `RUST_LIB_BACKTRACE=1` is set): the place
/// that failed, not the place that reported it. Without one, it is the capture site's with
/// `Options::attach_stacktrace`, else none.
///
/// ```
/// let transport = isoscope::MemoryTransport::new();
/// let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
///
/// let err = anyhow::anyhow!("connection refused").context("loading order 7");
/// isoscope::capture_anyhow(&err);
/// let event = &transport.events()[0];
/// assert_eq!(event.exception.len(), 2);
/// assert_eq!(event.exception[1].value.as_deref(), Some("loading order 7"));
/// ```
pub fn capture_anyhow(error: &anyhow::Error) -> Option<EventId> {
    crate::sdk::note(crate::sdk::Integration::Anyhow);
    let event = Event::from_error(error.as_ref());
    let backtrace = error.backtrace();
    let text = (backtrace.status() == std::backtrace::BacktraceStatus::Captured).then(|| format!("{backtrace:?}"));
    crate::client::capture_with_backtrace(event, text)
}
