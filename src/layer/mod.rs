//! The Tower layer: one isolation scope per request.
//!
//! [`IsolationLayer`] wraps any `Service<http::Request<B>>` (axum, hyper, tonic). For every
//! request, [`Isolation`] (its service):
//!
//! 1. forks a new isolation scope: from the enclosing layer's scope if layers are nested,
//!    else from the process default with no breadcrumbs (never from whatever the worker
//!    thread last ran: the sentry-tower / relay #6059 leak cannot happen);
//! 2. records the request in it: method, URL, query and headers (scrubbed at capture time
//!    unless `send_default_pii`; URL credentials always removed; no bodies), the request id
//!    (`x-request-id`, else a generated one; events get it as tag `request_id`), and the
//!    transaction name (axum's `MatchedPath` when present, else the path). All of it is kept
//!    as received and only turned into strings if an event is captured;
//! 3. binds it (tokio task-local) while the inner service's `call` runs, on every poll of the
//!    response future and while it is dropped, and on every poll of the response body and
//!    while it is dropped — hyper streams bodies after the future completed;
//! 4. captures a panic raised by the handler as a fatal event with the request's scope, then
//!    re-raises it so `CatchPanicLayer` or hyper still see it; with
//!    [`capture_server_errors()`](IsolationLayer::capture_server_errors) it also captures
//!    5xx responses;
//! 5. records how the request ended ([`crate::Outcome`]) and purges any thread-local
//!    binding user code leaked, so nothing reaches the next request on the same thread.
//!
//! # Example
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let transport = isoscope::MemoryTransport::new();
//! let _guard = isoscope::init(isoscope::Options::new().transport(transport.clone())).unwrap();
//!
//! async fn checkout() -> &'static str {
//!     isoscope::add_breadcrumb(isoscope::Breadcrumb::new("cart loaded"));
//!     isoscope::set_tag("tenant", "acme");
//!     isoscope::capture_message("payment declined", isoscope::Level::Warning);
//!     "ok"
//! }
//!
//! let app = Router::new()
//!     .route("/checkout/{id}", get(checkout))
//!     .layer(isoscope::IsolationLayer::new());
//! let request = http::Request::get("/checkout/7").body(axum::body::Body::empty()).unwrap();
//! let response = app.oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//!
//! let event = &transport.events()[0];
//! assert_eq!(event.tags["tenant"], "acme");
//! assert_eq!(event.transaction.as_deref(), Some("/checkout/{id}"));
//! assert_eq!(event.request.as_ref().unwrap().method.as_deref(), Some("GET"));
//! assert_eq!(event.breadcrumbs[0].message.as_deref(), Some("cart loaded"));
//! # }
//! ```
//!
//! # Differences from sentry-tower
//!
//! - One layer instead of `NewSentryLayer` + `SentryHttpLayer`, so there is no layer order to
//!   get wrong (sentry-rust #695).
//! - The scope is forked from the process default, not from the worker thread's hub.
//! - The response body is bound too, and so is the drop of a cancelled future.
//! - Handler panics are captured with the request's scope.

mod body;
pub mod future;
#[allow(clippy::module_inception)]
mod layer;
mod request;
mod service;
mod snapshot;

use std::any::Any;
use std::cell::Cell;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};

pub use body::ResponseBody;
pub use layer::IsolationLayer;
pub use request::RequestInfo;
pub use service::Isolation;

pub(crate) use request::{is_secret_key, FILTERED};

use crate::handle::{Outcome, ScopeHandle};

thread_local! {
    /// Address of the panic payload this thread's innermost `guarded` call captured, so nested
    /// layers (each of which catches and re-raises) capture a panic once. Cleared whenever a
    /// `guarded` call starts: a new panic can only be raised after that, so an allocator reusing
    /// the address of an earlier payload can never make a new panic look already captured.
    static LAST_CAPTURED: Cell<usize> = const { Cell::new(0) };
}

fn payload_addr(payload: &(dyn Any + Send)) -> usize {
    payload as *const (dyn Any + Send) as *const () as usize
}

/// Runs `f` with the scope in `slot` bound; if it panics, captures the panic with that scope
/// (once), marks the request as panicked, and re-raises the panic.
///
/// `f` returns nothing: callers write its result into a local of theirs, because futures and
/// responses are large and a value returned through `catch_unwind` is copied in and out of its
/// unwinding slot.
pub(crate) fn guarded(slot: &mut Option<ScopeHandle>, f: impl FnOnce()) {
    let _ = LAST_CAPTURED.try_with(|c| c.set(0));
    if let Err(payload) = crate::binding::with_bound(slot, || catch_unwind(AssertUnwindSafe(f))) {
        panicked(slot, payload);
    }
}

/// Out of line (and out of the instruction cache of every request that does not panic).
#[cold]
#[inline(never)]
fn panicked(slot: &Option<ScopeHandle>, payload: Box<dyn Any + Send>) -> ! {
    let addr = payload_addr(&*payload);
    let seen = LAST_CAPTURED.try_with(|c| c.replace(addr) == addr).unwrap_or(false);
    if let Some(handle) = slot {
        if !seen {
            // Only enqueues: never flushes on a tokio worker thread.
            crate::client::capture(handle.clone(), None, crate::Event::from_panic(&*payload));
        }
        handle.end(Outcome::Panicked);
    }
    resume_unwind(payload)
}

/// The handle in a layer's slot: always there except while it is bound (when its owner is
/// borrowed by the binding and cannot be asked).
fn slot_handle(slot: &Option<ScopeHandle>) -> &ScopeHandle {
    slot.as_ref().unwrap_or_else(|| crate::binding::default_isolation())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captures() -> u64 {
        let s = crate::stats();
        s.events_captured + s.events_dropped_no_client
    }

    #[test]
    fn each_panic_is_captured_once_even_when_its_payload_address_repeats() {
        let handle = ScopeHandle::new(crate::Scope::default());
        let mut slot = Some(handle.clone());
        let before = captures();
        let mut payload: Box<dyn Any + Send> = Box::new(String::from("boom"));
        // The same allocation raised twice: exactly what an allocator reusing an address does.
        for _ in 0..2 {
            payload = catch_unwind(AssertUnwindSafe(|| guarded(&mut slot, || resume_unwind(payload)))).unwrap_err();
        }
        assert_eq!(captures() - before, 2);

        // Nested guards (nested layers) capture one panic once.
        let before = captures();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            let mut inner = slot.clone();
            guarded(&mut slot, || guarded(&mut inner, || std::panic::panic_any(String::from("inner"))))
        }));
        assert!(caught.is_err());
        assert_eq!(captures() - before, 1);
        assert_eq!(handle.outcome(), Some(Outcome::Panicked));
    }
}
