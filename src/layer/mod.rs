//! The Tower layer: one isolation scope per request.
//!
//! [`IsolationLayer`] wraps any `Service<http::Request<B>>` (axum, hyper, tonic). For every
//! request, [`Isolation`] (its service):
//!
//! 1. forks a new isolation scope: from the enclosing layer's scope if layers are nested,
//!    else from the process default with no breadcrumbs (never from whatever the worker
//!    thread last ran: the sentry-tower / relay #6059 leak cannot happen);
//! 2. records the request in it: method, URL, query and headers (scrubbed at capture time
//!    unless `send_default_pii`; URL credentials always removed), the body as the handler
//!    reads it (an axum `Body`, up to `Options::max_request_body_size`: a tee, nothing read
//!    early; other body types are handed on untouched), the client's address with
//!    `send_default_pii`, the request id
//!    (`x-request-id`, else a generated one; events get it as tag `request_id`), and the
//!    transaction name (axum's `MatchedPath` when present, else the path). All of it is kept
//!    as received and only turned into strings if an event is captured;
//! 3. binds it (tokio task-local) while the inner service's `call` runs, on every poll of the
//!    response future and while it is dropped, and on every poll of the response body and
//!    while it is dropped — hyper streams bodies after the future completed;
//! 4. a panic in the handler or the body is captured by `init`'s panic hook, at the panic
//!    site, with the request's scope (with `Options::capture_panics(false)`, by the layer, as
//!    it unwinds through it), and re-raised so `CatchPanicLayer` or hyper still see it; with
//!    [`capture_server_errors()`](IsolationLayer::capture_server_errors) it also captures
//!    5xx responses, unless the request captured an event already (its error, its panic);
//! 5. records how the request ended ([`crate::Outcome`]) and purges any thread-local
//!    binding user code leaked, so nothing reaches the next request on the same thread.
//!
//! ```text
//!  IsolationLayer ─layer─▶ Isolation<S> ─call─▶ ResponseFuture<F> ─ready─▶ Response<ResponseBody<B>>
//!                          scope made, bound     bound on every poll       bound on every poll_frame
//!                          around inner.call     and on drop (cancel)      and on drop; request ends
//!                                     └── a panic in any of them: captured once, re-raised
//! ```
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
//! - One layer instead of `NewSentryLayer` + `SentryHttpLayer` (sentry-rust #695).
//! - The scope is forked from the process default, not from the worker thread's hub.
//! - The response body is bound too, and so is the drop of a cancelled future.
//! - Panics are captured with the request's scope by a panic hook, once each, wherever they are
//!   caught.
//!
//! # Where the tower-http layers may go
//!
//! | layer | inside `IsolationLayer` | outside it |
//! | --- | --- | --- |
//! | `CatchPanicLayer` | panic captured once (hook), request counted as panicked; the 500 it makes is not captured again | the same |
//! | `TimeoutLayer` | a timed-out handler is dropped with its scope bound; the request ends as completed (the 408 it answers) | the request is cancelled (its future is dropped with the scope bound) |
//! | `TraceLayer`, `CompressionLayer`, `CorsLayer`, ... | its code runs with the request's scope bound | its code runs outside the request's scope |
//!
//! Put `IsolationLayer` outermost (applied last) when tracing or other middleware should log
//! into the request's breadcrumbs.

mod body;
mod catch_panic;
pub mod future;
#[allow(clippy::module_inception)]
mod layer;
#[cfg(feature = "axum")]
mod request_body;
#[cfg(feature = "axum")]
mod route;
mod service;

pub use body::ResponseBody;
use catch_panic::{guarded, guarded_inline};
pub use layer::IsolationLayer;
#[cfg(feature = "axum")]
use request_body::RequestBody;
pub use service::Isolation;

pub use crate::scope::RequestInfo;
