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
//! A plain `tokio::spawn` task carries no scope, so its tags and breadcrumbs are its own; the
//! events it captures go to the test's client when it runs on the test's tokio runtime (every
//! `#[tokio::test]` has its own), and never to a client another test installed with
//! [`init`](crate::init). (A plain `std::thread` is not on the runtime: its events go to the
//! process's client, if any; spawn it with [`thread`](crate::thread) to keep it in the test.)
//! Requests served by `axum::serve` run in such tasks: their events reach the test, but
//! without the request's scope — drive the router with `oneshot` (or serve connections from
//! tasks spawned with [`spawn`](crate::spawn)) to keep each request's data in its events. The global scope
//! ([`global_scope`](crate::global_scope)) is process-wide by definition: what one test writes
//! there, every test's events carry.
//!
//! [`assert_isolated`] goes further than Sentry's SDKs offer: it drives many concurrent
//! requests through your own router and fails with a precise report if any event carries
//! another request's data.

use std::future::Future;
use std::time::Duration;

use crate::{Client, Event, MemoryTransport, Options};

/// Runs `future` with a fresh client bound to a fresh scope, and returns every event captured
/// with that scope (or its forks) while it ran, oldest first. (The future's output is dropped:
/// use [`with_captured_output`] when it is a `Result` your test must see.)
pub async fn with_captured_events<F: Future>(future: F) -> Vec<Event> {
    with_captured_output(future).await.1
}

/// [`with_captured_events`], also returning the future's output, so that an error inside
/// (`?`) fails the test instead of being dropped.
///
/// ```
/// use axum::{routing::get, Router};
/// use tower::ServiceExt;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let app = Router::new()
///     .route("/", get(|| async { isoscope::capture_message("hi", isoscope::Level::Info); }))
///     .layer(isoscope::IsolationLayer::new());
/// let (served, events) = isoscope::test::with_captured_output(async {
///     let request = http::Request::get("/").body(axum::body::Body::empty())?;
///     let response = app.oneshot(request).await?;
///     Ok::<_, Box<dyn std::error::Error>>(response.status())
/// })
/// .await;
/// assert_eq!(served?, 200); // an error inside fails here
/// assert_eq!(events.len(), 1);
/// assert_eq!(events[0].message.as_deref(), Some("hi"));
/// # Ok(())
/// # }
/// ```
pub async fn with_captured_output<F: Future>(future: F) -> (F::Output, Vec<Event>) {
    let (client, transport) = test_client();
    let _runtime = crate::client::test_runtimes::register(client.core());
    let output = client.new_scope().bind(future).await;
    client.flush(Duration::from_secs(5));
    (output, transport.take_events())
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

/// How many [`EnterGuard`](crate::EnterGuard) bindings this thread holds now (live, or
/// tombstones of guards dropped out of order that a newer one still covers). Outside any
/// guard it is 0: a test can check that code it ran left nothing bound on the thread.
///
/// ```
/// let scope = isoscope::isolation_scope().fork();
/// let guard = scope.enter();
/// assert_eq!(isoscope::test::bindings_on_this_thread(), 1);
/// drop(guard);
/// assert_eq!(isoscope::test::bindings_on_this_thread(), 0);
/// ```
pub fn bindings_on_this_thread() -> usize {
    crate::bind::stack_depth()
}

fn test_client() -> (Client, MemoryTransport) {
    let transport = MemoryTransport::new();
    // Only a transport: nothing in these options can be invalid.
    let client = Client::new(Options::new().transport(transport.clone())).unwrap_or_else(|e| unreachable!("{e}"));
    (client, transport)
}

/// What [`assert_isolated`] saw: the events of each request, in the order they were sent.
#[derive(Debug, Clone)]
pub struct IsolationReport {
    /// `events[i]`: the events captured while request `i` was served.
    pub events: Vec<Vec<Event>>,
}

/// The marker of request `i`: its `x-request-id` header and an `isoscope_marker` query
/// parameter carry it, so the layer records it with the request and whatever your code takes
/// from the request (ids, URLs, headers) carries it too.
pub fn marker(i: usize) -> String {
    format!("isoscope-marker-{i:06}")
}

/// Drives `n` concurrent requests (`request(i)` makes request `i`) through `service` — your
/// router with its `IsolationLayer` — inside [`with_captured_events`], reads every response
/// body to the end, and panics with a precise report if any event carries another request's
/// data.
///
/// Each request is marked ([`marker`]): its `x-request-id` header is the marker (so the layer
/// tags its events `request_id = marker`) and its query gets `isoscope_marker=<marker>`. The
/// check: every event is attributed to exactly one request (by its `request_id` tag), and the
/// event's JSON — breadcrumbs, tags, extra, contexts, user, request — mentions no other
/// request's marker. Anything your handlers record from the request (a user id read from it,
/// the URL, a header) makes a leak between requests show up as a foreign marker. Returns the
/// events per request for checks of your own.
///
/// ```
/// use axum::{extract::Query, routing::get, Router};
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// async fn handler(Query(q): Query<std::collections::HashMap<String, String>>) {
///     isoscope::add_breadcrumb(isoscope::Breadcrumb::new(format!("serving {:?}", q.get("isoscope_marker"))));
///     tokio::task::yield_now().await;
///     isoscope::capture_message("done", isoscope::Level::Info);
/// }
/// let app = Router::new().route("/", get(handler)).layer(isoscope::IsolationLayer::new());
/// let report = isoscope::test::assert_isolated(app, 50, |_| {
///     http::Request::get("/").body(axum::body::Body::empty()).unwrap()
/// })
/// .await;
/// assert!(report.events.iter().all(|events| events.len() == 1));
/// # }
/// ```
///
/// # Panics
///
/// When an event carries another request's marker, or cannot be attributed to a request, or
/// `service` fails; the message lists every offending event.
pub async fn assert_isolated<S, B, RB>(
    service: S,
    n: usize,
    request: impl Fn(usize) -> http::Request<B>,
) -> IsolationReport
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>> + Clone,
    S::Error: std::fmt::Debug,
    RB: http_body::Body,
{
    let requests: Vec<_> = (0..n).map(|i| marked(request(i), &marker(i))).collect();
    let events = with_captured_events(async {
        let responses = requests.into_iter().map(|req| drive(service.clone(), req));
        let failures: Vec<String> = join_all(responses).await.into_iter().filter_map(Result::err).collect();
        assert!(failures.is_empty(), "isoscope::test::assert_isolated: the service failed: {failures:?}");
    })
    .await;
    let mut per_request = vec![Vec::new(); n];
    let mut problems = Vec::new();
    for event in events {
        let json = serde_json::to_string(&event).unwrap_or_default();
        let own = event.tags.get("request_id").and_then(|id| (0..n).find(|&i| *id == marker(i)));
        let foreign: Vec<String> =
            (0..n).filter(|&j| Some(j) != own && json.contains(&marker(j))).map(marker).collect();
        match own {
            None => problems.push(format!("event {} is attributed to no request: {json}", event.event_id)),
            Some(i) if !foreign.is_empty() => problems.push(format!(
                "event {} of request {} carries data of {}: {json}",
                event.event_id,
                marker(i),
                foreign.join(", ")
            )),
            Some(_) => {}
        }
        if let Some(i) = own {
            per_request[i].push(event);
        }
    }
    assert!(
        problems.is_empty(),
        "isoscope::test::assert_isolated: {} of the events break isolation:\n{}",
        problems.len(),
        problems.join("\n")
    );
    IsolationReport { events: per_request }
}

/// `req` with the marker in its `x-request-id` header and its query.
fn marked<B>(mut req: http::Request<B>, marker: &str) -> http::Request<B> {
    if let Ok(value) = http::HeaderValue::from_str(marker) {
        req.headers_mut().insert("x-request-id", value);
    }
    let uri = req.uri();
    let path = uri.path();
    let query = match uri.query() {
        Some(q) if !q.is_empty() => format!("{q}&isoscope_marker={marker}"),
        _ => format!("isoscope_marker={marker}"),
    };
    let mut parts = uri.clone().into_parts();
    parts.path_and_query = format!("{path}?{query}").parse().ok();
    if let Ok(uri) = http::Uri::from_parts(parts) {
        *req.uri_mut() = uri;
    }
    req
}

/// Calls `service` with `req` and reads the response body to its end.
async fn drive<S, B, RB>(mut service: S, req: http::Request<B>) -> Result<(), String>
where
    S: tower_service::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Error: std::fmt::Debug,
    RB: http_body::Body,
{
    std::future::poll_fn(|cx| service.poll_ready(cx)).await.map_err(|e| format!("{e:?}"))?;
    let response = service.call(req).await.map_err(|e| format!("{e:?}"))?;
    let mut body = std::pin::pin!(response.into_body());
    while let Some(frame) = std::future::poll_fn(|cx| body.as_mut().poll_frame(cx)).await {
        frame.map_err(|_| "the response body failed".to_owned())?;
    }
    Ok(())
}

/// Awaits every future, concurrently (on this task).
async fn join_all<F: Future>(futures: impl IntoIterator<Item = F>) -> Vec<F::Output> {
    let mut futures: Vec<_> = futures.into_iter().map(|f| Some(Box::pin(f))).collect();
    let mut outputs: Vec<Option<F::Output>> = futures.iter().map(|_| None).collect();
    std::future::poll_fn(|cx| {
        let mut pending = false;
        for (slot, output) in futures.iter_mut().zip(outputs.iter_mut()) {
            if let Some(future) = slot {
                match future.as_mut().poll(cx) {
                    std::task::Poll::Ready(value) => {
                        *output = Some(value);
                        *slot = None;
                    }
                    std::task::Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            std::task::Poll::Pending
        } else {
            std::task::Poll::Ready(())
        }
    })
    .await;
    outputs.into_iter().flatten().collect()
}
