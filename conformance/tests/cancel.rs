//! Cancelled and panicking requests: the scope stays bound while the handler is dropped, the
//! outcome is recorded once, panics are captured once, and the next request starts clean.

#![allow(clippy::mem_forget)] // leaking a guard on purpose

mod support;

use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use isoscope::{Breadcrumb, IsolationLayer, Outcome, ScopeHandle};
use support::{crumbs, events_tagged, transport};
use tokio::sync::oneshot;
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;

/// Reports, from its `Drop`, which request scope was active when the handler was dropped.
struct DropProbe(Option<oneshot::Sender<Option<String>>>);

impl Drop for DropProbe {
    fn drop(&mut self) {
        let tag = isoscope::isolation_scope().snapshot().tag("cancel_case").map(str::to_owned);
        if let Some(tx) = self.0.take() {
            let _ = tx.send(tag);
        }
    }
}

type Slot<T> = Arc<Mutex<Option<T>>>;

#[tokio::test(flavor = "current_thread")]
async fn a_request_dropped_mid_flight_is_cancelled_and_leaves_no_residue() {
    transport();
    let started: Slot<oneshot::Sender<ScopeHandle>> = Arc::default();
    let dropped: Slot<oneshot::Sender<Option<String>>> = Arc::default();
    let (s, d) = (started.clone(), dropped.clone());
    let app = Router::new()
        .route(
            "/hang",
            get(move || {
                let (s, d) = (s.clone(), d.clone());
                async move {
                    isoscope::set_tag("cancel_case", "hang");
                    isoscope::add_breadcrumb(Breadcrumb::new("before hang"));
                    let _probe = DropProbe(d.lock().unwrap().take());
                    let _ = s.lock().unwrap().take().unwrap().send(isoscope::isolation_scope());
                    std::future::pending::<()>().await;
                }
            }),
        )
        .route(
            "/next",
            get(|| async {
                let scope = isoscope::isolation_scope().snapshot();
                format!("{:?} {}", scope.tag("cancel_case"), scope.breadcrumbs().len())
            }),
        )
        .layer(IsolationLayer::new());

    let before = isoscope::stats().requests_cancelled;
    let (started_tx, started_rx) = oneshot::channel();
    let (dropped_tx, dropped_rx) = oneshot::channel();
    *started.lock().unwrap() = Some(started_tx);
    *dropped.lock().unwrap() = Some(dropped_tx);
    // The client goes away: the task serving the request is aborted mid-handler.
    let task = tokio::spawn(app.clone().oneshot(Request::get("/hang").body(Body::empty()).unwrap()));
    let scope = started_rx.await.unwrap();
    task.abort();
    assert!(task.await.unwrap_err().is_cancelled());

    assert_eq!(dropped_rx.await.unwrap().as_deref(), Some("hang"), "the handler's Drop saw its request scope");
    assert_eq!(scope.outcome(), Some(Outcome::Cancelled));
    assert!(isoscope::stats().requests_cancelled > before);
    assert_eq!(isoscope::test::bindings_on_this_thread(), 0);

    // The next request on this (only) thread starts clean.
    let res = app.oneshot(Request::get("/next").body(Body::empty()).unwrap()).await.unwrap();
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"None 0");
}

#[tokio::test(flavor = "current_thread")]
async fn a_timeout_layer_cancels_and_the_scope_ends_once() {
    transport();
    let (tx, rx) = oneshot::channel::<ScopeHandle>();
    let tx = Arc::new(Mutex::new(Some(tx)));
    let app = Router::new()
        .route(
            "/slow",
            get(move || {
                let tx = tx.clone();
                async move {
                    let _ = tx.lock().unwrap().take().unwrap().send(isoscope::isolation_scope());
                    std::future::pending::<()>().await;
                }
            }),
        )
        .layer(IsolationLayer::new());
    let service = tower::ServiceBuilder::new().timeout(std::time::Duration::from_secs(3600)).service(app);
    let mut fut = Box::pin(service.oneshot(Request::get("/slow").body(Body::empty()).unwrap()));
    // Poll until the handler runs, then drop it, as a fired timeout would.
    let scope = tokio::select! {
        biased;
        scope = rx => scope.unwrap(),
        _ = &mut fut => unreachable!("the handler never completes"),
    };
    assert_eq!(scope.outcome(), None, "still in flight");
    drop(fut);
    assert_eq!(scope.outcome(), Some(Outcome::Cancelled));
}

async fn panicking_handler() -> &'static str {
    isoscope::set_tag("panic_case", "outer-catch");
    isoscope::add_breadcrumb(Breadcrumb::new("about to panic"));
    tokio::task::yield_now().await;
    // Leave a binding behind, as a panic mid-way through sync code would: the layer's boundary
    // must purge it (all requests here run in the test's task, so a residue would be "ours").
    let leaked = isoscope::isolation_scope();
    std::mem::forget(leaked.enter());
    panic!("handler exploded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_panic_is_captured_once_with_the_request_scope() {
    transport();
    let before = isoscope::stats().requests_panicked;
    // CatchPanicLayer outside our layer (and a second, nested IsolationLayer): the panic is
    // captured once, re-raised, and turned into a 500 by CatchPanicLayer.
    let app = Router::new()
        .route("/panic", get(panicking_handler).layer(IsolationLayer::new()))
        .route(
            "/after",
            get(|| async {
                let scope = isoscope::isolation_scope().snapshot();
                format!("{:?} {}", scope.tag("panic_case"), scope.breadcrumbs().len())
            }),
        )
        .layer(IsolationLayer::new())
        .layer(CatchPanicLayer::new());
    let res = app.clone().oneshot(Request::get("/panic").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);

    let events = events_tagged("panic_case", "outer-catch");
    assert_eq!(events.len(), 1, "captured exactly once");
    let event = &events[0];
    assert_eq!(event.level, Some(isoscope::Level::Fatal));
    assert_eq!(event.exception[0].value.as_deref(), Some("handler exploded"));
    assert_eq!(event.exception[0].mechanism.as_ref().map(|m| m.handled), Some(false));
    assert_eq!(crumbs(event), ["about to panic"]);
    assert!(isoscope::stats().requests_panicked > before);

    for _ in 0..10 {
        let res = app.clone().oneshot(Request::get("/after").body(Body::empty()).unwrap()).await.unwrap();
        let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
        assert_eq!(&body[..], b"None 0", "the next request is clean");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_caught_inside_the_layer_are_captured_once_and_5xx_with_capture_server_errors() {
    transport();
    let app = Router::new()
        .route(
            "/inner-catch",
            get(|| async {
                isoscope::set_tag("panic_case", "inner-catch");
                if isoscope::isolation_scope().id() > 0 {
                    panic!("caught by the inner CatchPanicLayer");
                }
                "unreachable"
            })
            .layer(CatchPanicLayer::new()),
        )
        .route(
            "/fail/{id}",
            get(|| async {
                isoscope::set_tag("panic_case", "5xx");
                isoscope::add_breadcrumb(Breadcrumb::new("db down"));
                StatusCode::SERVICE_UNAVAILABLE
            }),
        )
        .route(
            "/reported",
            get(|| async {
                isoscope::set_tag("panic_case", "reported");
                isoscope::capture_error(&"x".parse::<u8>().unwrap_err());
                StatusCode::INTERNAL_SERVER_ERROR
            }),
        )
        .layer(IsolationLayer::new().capture_server_errors());
    let res = app.clone().oneshot(Request::get("/reported").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let reported = events_tagged("panic_case", "reported");
    assert_eq!(reported.len(), 1, "one failure, one issue: the handler's error, no 5xx message: {reported:#?}");
    assert_eq!(reported[0].exception[0].ty, "ParseIntError");
    let res = app.clone().oneshot(Request::get("/inner-catch").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let res = app.oneshot(Request::get("/fail/42").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);

    // One event: the panic itself, with its message (captured by the panic hook at the panic
    // site), not a second "HTTP 500" for the response the inner CatchPanicLayer made of it.
    let inner = events_tagged("panic_case", "inner-catch");
    assert_eq!(inner.len(), 1, "{inner:?}");
    assert_eq!(inner[0].exception[0].value.as_deref(), Some("caught by the inner CatchPanicLayer"));
    assert_eq!(inner[0].exception[0].mechanism.as_ref().map(|m| m.ty.as_str()), Some("panic"));
    let failed = events_tagged("panic_case", "5xx");
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0].message.as_deref(), Some("GET /fail/{id} → 503"), "method and route template");
    assert_eq!(failed[0].tags["http.status_code"], "503");
    assert_eq!(crumbs(&failed[0]), ["db down"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panic_on_a_reused_thread_is_captured() {
    transport();
    // Sequential panics on one thread: their payloads may reuse the same address, and each must
    // still be captured exactly once.
    let app = Router::new()
        .route(
            "/again",
            get(|| async {
                isoscope::set_tag("panic_case", "again");
                let id = isoscope::isolation_scope().id();
                if id > 0 {
                    panic!("formatted payload {}", id % 10);
                }
                "unreachable"
            }),
        )
        .layer(IsolationLayer::new())
        .layer(CatchPanicLayer::new());
    for _ in 0..100 {
        let res = app.clone().oneshot(Request::get("/again").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    }
    assert_eq!(events_tagged("panic_case", "again").len(), 100);
}

/// `TimeoutLayer` inside `IsolationLayer`: the timed-out handler is dropped with the scope
/// bound and the request completes with the 408 it answers; outside: the request is cancelled.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_timeout_inside_completes_the_request_and_outside_cancels_it() {
    use tower_http::timeout::TimeoutLayer;
    transport();
    for (inside, expected) in [(true, Outcome::Completed), (false, Outcome::Cancelled)] {
        let seen: Arc<Mutex<Option<ScopeHandle>>> = Arc::default();
        let dropped_with: Arc<Mutex<Option<ScopeHandle>>> = Arc::default();
        let (s, d) = (seen.clone(), dropped_with.clone());
        let handler = get(move || {
            let (s, d) = (s.clone(), d.clone());
            async move {
                struct OnDrop(Arc<Mutex<Option<ScopeHandle>>>);
                impl Drop for OnDrop {
                    fn drop(&mut self) {
                        *self.0.lock().unwrap() = Some(isoscope::isolation_scope());
                    }
                }
                *s.lock().unwrap() = Some(isoscope::isolation_scope());
                let _on_drop = OnDrop(d);
                tokio::time::sleep(std::time::Duration::from_secs(30)).await;
            }
        });
        let timeout = TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, std::time::Duration::from_millis(50));
        let app = if inside {
            Router::new().route("/", handler).layer(timeout).layer(IsolationLayer::new())
        } else {
            Router::new().route("/", handler).layer(IsolationLayer::new()).layer(timeout)
        };
        let res = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
        assert_eq!(res.status(), StatusCode::REQUEST_TIMEOUT);
        drop(res);
        let request = seen.lock().unwrap().clone().unwrap();
        assert_eq!(request.outcome(), Some(expected), "timeout inside: {inside}");
        assert_eq!(dropped_with.lock().unwrap().clone(), Some(request), "the handler is dropped with its scope");
    }
}
