//! Every panic is captured exactly once, with the scope active where it happened, whatever the
//! order of `CatchPanicLayer` / `TimeoutLayer` around `IsolationLayer` and wherever it happens:
//! a handler, a response body, an `isoscope::spawn` child, a `spawn_blocking` job, an
//! `isoscope::thread::spawn` thread, a plain tokio task or thread.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use isoscope::{Event, IsolationLayer};
use support::{events_tagged, transport};
use tower::ServiceExt;
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::timeout::TimeoutLayer;

fn get_req(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

/// Events whose panic message is `message`.
fn panics(message: &str) -> Vec<Event> {
    support::schema::valid(
        transport()
            .events()
            .into_iter()
            .filter(|e| e.exception.last().and_then(|x| x.value.as_deref()) == Some(message))
            .collect(),
    )
}

/// A panic the optimiser cannot see through (so the code after it is not "unreachable").
fn boom(message: &str) {
    if isoscope::isolation_scope().id() > 0 {
        std::panic::panic_any(message.to_owned());
    }
}

async fn handler_that_panics(case: &'static str) -> &'static str {
    isoscope::set_tag("case", case);
    boom(case);
    "unreachable"
}

/// One router per layer order; the handler panics; the answer is a 500 from `CatchPanicLayer`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handler_panic_is_one_event_in_every_layer_order() {
    transport();
    let orders: Vec<(&'static str, Router)> = vec![
        (
            "isolation outside catch-panic",
            Router::new()
                .route("/", get(|| handler_that_panics("isolation outside catch-panic")))
                .layer(CatchPanicLayer::new())
                .layer(IsolationLayer::new()),
        ),
        (
            "catch-panic outside isolation",
            Router::new()
                .route("/", get(|| handler_that_panics("catch-panic outside isolation")))
                .layer(IsolationLayer::new())
                .layer(CatchPanicLayer::new()),
        ),
        (
            "isolation outside timeout outside catch-panic",
            Router::new()
                .route("/", get(|| handler_that_panics("isolation outside timeout outside catch-panic")))
                .layer(CatchPanicLayer::new())
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
                .layer(IsolationLayer::new()),
        ),
        (
            "catch-panic outside timeout outside isolation",
            Router::new()
                .route("/", get(|| handler_that_panics("catch-panic outside timeout outside isolation")))
                .layer(IsolationLayer::new())
                .layer(TimeoutLayer::with_status_code(StatusCode::REQUEST_TIMEOUT, Duration::from_secs(30)))
                .layer(CatchPanicLayer::new()),
        ),
        (
            "isolation and capture_server_errors outside catch-panic",
            Router::new()
                .route("/", get(|| handler_that_panics("isolation and capture_server_errors outside catch-panic")))
                .layer(CatchPanicLayer::new())
                .layer(IsolationLayer::new().capture_server_errors()),
        ),
    ];
    for (case, app) in orders {
        let before = isoscope::stats();
        let res = app.oneshot(get_req("/")).await.unwrap();
        assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR, "{case}");
        let events = events_tagged("case", case);
        assert_eq!(events.len(), 1, "{case}: one event per panic, got {events:?}");
        let exception = &events[0].exception[0];
        assert_eq!(exception.value.as_deref(), Some(case), "{case}: the panic message is kept");
        assert_eq!(exception.mechanism.as_ref().map(|m| (m.ty.as_str(), m.handled)), Some(("panic", false)));
        assert!(events[0].request.is_some(), "{case}: captured with the request's scope");
        assert!(isoscope::stats().since(&before).requests_panicked >= 1, "{case}: counted as a panicked request");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_panic_while_the_body_streams_is_captured_with_the_request_scope() {
    transport();
    let app = Router::new()
        .route(
            "/stream",
            get(|| async {
                isoscope::set_tag("case", "body");
                let stream =
                    futures_util::stream::poll_fn(|_| -> std::task::Poll<Option<Result<Vec<u8>, std::io::Error>>> {
                        boom("panic in the body");
                        std::task::Poll::Ready(None)
                    });
                Body::from_stream(stream)
            }),
        )
        .layer(IsolationLayer::new());
    let res = app.oneshot(get_req("/stream")).await.unwrap();
    // hyper would poll the body after the handler returned: so does this task.
    let polled = tokio::spawn(axum::body::to_bytes(res.into_body(), 1024)).await;
    assert!(polled.unwrap_err().is_panic());
    let events = panics("panic in the body");
    assert_eq!(events.len(), 1);
    assert_eq!(events[0].tags["case"], "body");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_in_spawned_work_are_captured_with_the_childs_scope() {
    transport();
    let request = isoscope::isolation_scope().fork();
    request.configure(|s| s.set_tag("case", "children"));
    request
        .bind(async {
            let task = isoscope::spawn(async { boom("panic in an isoscope::spawn child") }).await;
            assert!(task.unwrap_err().is_panic());
            let job = isoscope::spawn_blocking(|| boom("panic in a spawn_blocking job")).await;
            assert!(job.unwrap_err().is_panic());
            let thread = isoscope::thread::spawn(|| boom("panic in an isoscope thread")).join();
            assert!(thread.is_err());
        })
        .await;
    for message in ["panic in an isoscope::spawn child", "panic in a spawn_blocking job", "panic in an isoscope thread"]
    {
        let events = panics(message);
        assert_eq!(events.len(), 1, "{message}");
        assert_eq!(events[0].tags.get("case").map(String::as_str), Some("children"), "{message}: the child's fork");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn panics_in_plain_tasks_and_threads_are_captured_with_their_own_scope() {
    transport();
    let task = tokio::spawn(async {
        isoscope::set_tag("case", "plain task");
        boom("panic in a plain tokio task");
    })
    .await;
    assert!(task.unwrap_err().is_panic());
    let thread = std::thread::spawn(|| boom("panic in a plain thread")).join();
    assert!(thread.is_err());
    let task_events = panics("panic in a plain tokio task");
    assert_eq!(task_events.len(), 1);
    assert_eq!(task_events[0].tags.get("case").map(String::as_str), Some("plain task"));
    assert_eq!(panics("panic in a plain thread").len(), 1);
}
