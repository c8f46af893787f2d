//! Trace policy (this binary's client: org 7, `strict_trace_continuation`, propagation only to
//! URLs containing `/allowed/`): which incoming traces are continued, and which outgoing calls
//! get trace headers.

mod support;

use std::sync::OnceLock;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{HeaderMap, Request};
use isoscope::integrations::reqwest::TraceRequest;
use isoscope::{Event, IsolationLayer, Level, MemoryTransport, Options};
use tower::ServiceExt;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

fn transport() -> &'static MemoryTransport {
    static T: OnceLock<MemoryTransport> = OnceLock::new();
    T.get_or_init(|| {
        let transport = MemoryTransport::new();
        let options = Options::new()
            .transport(transport.clone())
            .org_id(7)
            .strict_trace_continuation(true)
            .trace_propagation_targets(["/allowed/"]);
        static GUARD: OnceLock<isoscope::ClientGuard> = OnceLock::new();
        let _ = GUARD.set(isoscope::init(options).unwrap());
        transport
    })
}

/// The event captured by a request carrying `baggage` (and a `sentry-trace` of [`TRACE`]).
async fn event_with_baggage(id: &str, baggage: Option<&str>) -> Event {
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                isoscope::capture_message("here", Level::Info);
                "ok"
            }),
        )
        .layer(IsolationLayer::new());
    let mut req =
        Request::get("/").header("x-request-id", id).header("sentry-trace", format!("{TRACE}-00f067aa0ba902b7-1"));
    if let Some(baggage) = baggage {
        req = req.header("baggage", baggage);
    }
    app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let events = transport().events();
    events.into_iter().find(|e| e.tags.get("request_id").map(String::as_str) == Some(id)).unwrap()
}

#[tokio::test]
async fn only_traces_of_this_organization_are_continued() {
    transport();
    let ours =
        event_with_baggage("org-7", Some("sentry-trace_id=4bf92f3577b34da6a3ce929d0e0e4736,sentry-org_id=7")).await;
    assert_eq!(ours.contexts["trace"]["trace_id"], TRACE);
    assert_eq!(ours.contexts["trace"]["parent_span_id"], "00f067aa0ba902b7");
    for (id, baggage) in
        [("org-8", Some("sentry-org_id=8")), ("org-unknown", Some("sentry-release=1")), ("no-baggage", None)]
    {
        let theirs = event_with_baggage(id, baggage).await;
        assert_ne!(theirs.contexts["trace"]["trace_id"], TRACE, "{id}: a new trace starts here");
        assert!(theirs.contexts["trace"].get("parent_span_id").is_none(), "{id}");
    }
}

#[tokio::test]
async fn traces_started_here_name_the_organization() {
    transport();
    let headers = isoscope::trace_headers_for("http://127.0.0.1/allowed/x").expect("allowed");
    assert!(headers.baggage().split(',').any(|e| e == "sentry-org_id=7"), "{}", headers.baggage());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outgoing_calls_get_trace_headers_only_where_the_targets_allow() {
    transport();
    assert!(isoscope::trace_headers_for("https://thirdparty.example/hook").is_none());
    // A loopback server answering with the trace headers it was sent.
    let echo = Router::new().fallback(|headers: HeaderMap| async move {
        let traced = ["sentry-trace", "traceparent", "baggage"].iter().filter(|h| headers.contains_key(**h)).count();
        traced.to_string()
    });
    let addr = support::serve(echo).await;
    let client = support::http_client();
    for (path, want) in [("/allowed/a", "3"), ("/elsewhere", "0")] {
        let url = format!("http://{addr}{path}");
        let sent = client.get(&url).send_traced().await.unwrap().text().await.unwrap();
        assert_eq!(sent, want, "send_traced to {path}");
        let with = client.get(&url).with_trace().send().await.unwrap().text().await.unwrap();
        assert_eq!(with, want, "with_trace to {path}");
    }
}
