//! `traces_sample_rate(0.0)` turns tracing on without starting traces here: a request whose
//! caller sampled its trace sends its transaction, one that starts a trace does not — as in
//! sentry-rust and sentry-python, so a distributed trace stays whole through this service.
//! (Its own binary: the rate is process-wide.)

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{IsolationLayer, MemoryTransport, Options};
use tower::ServiceExt;

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

#[tokio::test(flavor = "current_thread")]
async fn a_zero_rate_follows_the_callers_decision_and_starts_no_trace_of_its_own() {
    let transport = MemoryTransport::new();
    let _guard = isoscope::init(Options::new().traces_sample_rate(0.0).transport(transport.clone())).unwrap();
    let app = Router::new().route("/work", get(|| async { "ok" })).layer(IsolationLayer::new());
    let send = |trace_header: Option<String>| {
        let mut request = Request::get("/work");
        if let Some(value) = trace_header {
            request = request.header("sentry-trace", value);
        }
        app.clone().oneshot(request.body(Body::empty()).unwrap())
    };
    send(Some(format!("{TRACE}-00f067aa0ba902b7-1"))).await.unwrap();
    send(Some(format!("{TRACE}-00f067aa0ba902b7-0"))).await.unwrap();
    for _ in 0..20 {
        send(None).await.unwrap();
    }
    let transactions = transport.transactions();
    assert_eq!(transactions.len(), 1, "only the caller's sampled trace: {transactions:?}");
    assert_eq!(transactions[0].trace_id.to_string(), TRACE);
}
