//! Helpers for your own tests: capture the events of a block of code, in isolation from every
//! other test running at the same time.
//!
//! `cargo test` runs the tests of a binary on parallel threads, and [`init`](crate::init) is
//! process-wide: two tests that each `init` their own [`MemoryTransport`] see each other's
//! events. [`with_captured_events`] binds a fresh [`Client`] to a fresh scope for the future it
//! runs instead, so everything captured inside — by the future itself, by requests driven
//! through a router with `oneshot` (the layer forks the request's scope from the bound one), by
//! children spawned with [`spawn`](crate::spawn) — reports to that test only.
//!
//! ```
//! use axum::{routing::get, Router};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let app = Router::new()
//!     .route("/", get(|| async { isoscope::capture_message("hi", isoscope::Level::Info); }))
//!     .layer(isoscope::IsolationLayer::new());
//! let events = isoscope::test::with_captured_events(async {
//!     let request = http::Request::get("/").body(axum::body::Body::empty()).unwrap();
//!     app.oneshot(request).await.unwrap();
//! })
//! .await;
//! assert_eq!(events.len(), 1);
//! assert!(events[0].request.is_some());
//! # }
//! ```
//!
//! Requests served by `axum::serve` run in tasks it spawns with plain `tokio::spawn`, which
//! carry no scope: drive the router with `oneshot` (or serve connections from tasks spawned with
//! [`spawn`](crate::spawn)) to keep their events in the test.

use std::future::Future;
use std::time::Duration;

use crate::{Client, Event, MemoryTransport, Options};

/// Runs `future` with a fresh client bound to a fresh scope, and returns every event captured
/// with that scope (or its forks) while it ran, oldest first.
pub async fn with_captured_events<F: Future>(future: F) -> Vec<Event> {
    let (client, transport) = test_client();
    client.new_scope().bind(future).await;
    client.flush(Duration::from_secs(5));
    transport.take_events()
}

/// [`with_captured_events`] for synchronous code.
///
/// ```
/// let events = isoscope::test::with_captured_events_sync(|| {
///     isoscope::set_tag("step", "one");
///     isoscope::capture_message("hi", isoscope::Level::Info);
/// });
/// assert_eq!(events[0].tags["step"], "one");
/// ```
pub fn with_captured_events_sync<F: FnOnce()>(f: F) -> Vec<Event> {
    let (client, transport) = test_client();
    client.new_scope().run(f);
    client.flush(Duration::from_secs(5));
    transport.take_events()
}

fn test_client() -> (Client, MemoryTransport) {
    let transport = MemoryTransport::new();
    // Only a transport: nothing in these options can be invalid.
    let client = Client::new(Options::new().transport(transport.clone())).unwrap_or_else(|e| unreachable!("{e}"));
    (client, transport)
}
