//! `IsolationLayer::capture_server_errors()` captures the responses whose status
//! `Options::failed_request_status_codes` names (500–599 by default), one event per failure,
//! with the response's status in `contexts.response` (and, without `send_default_pii`, no
//! response headers nor client IP: see `request_data.rs` for them).

use axum::body::Body;
use axum::http::StatusCode;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{IsolationLayer, MemoryTransport, Options};
use tower::ServiceExt;

fn app() -> Router {
    Router::new()
        .route("/throttled", get(|| async { StatusCode::TOO_MANY_REQUESTS }))
        .route("/broken", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/bad-gateway", get(|| async { StatusCode::BAD_GATEWAY }))
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .layer(IsolationLayer::new().capture_server_errors())
}

async fn messages_for(options: Options, paths: &[&str]) -> Vec<String> {
    let transport = MemoryTransport::new();
    let guard = isoscope::init(options.transport(transport.clone())).unwrap();
    for path in paths {
        let res = app().oneshot(Request::get(*path).body(Body::empty()).unwrap()).await.unwrap();
        let _ = axum::body::to_bytes(res.into_body(), usize::MAX).await;
    }
    drop(guard);
    transport.events().into_iter().filter_map(|e| e.message).collect()
}

// One test: `init` sets the codes process-wide.
#[tokio::test]
async fn the_configured_codes_are_captured_and_only_they() {
    let paths = ["/throttled", "/broken", "/bad-gateway", "/missing"];
    let default = messages_for(Options::new(), &paths).await;
    assert_eq!(default, ["GET /broken → 500", "GET /bad-gateway → 502"]);
    let chosen = messages_for(Options::new().failed_request_status_codes([429..=429, 502..=502]), &paths).await;
    assert_eq!(chosen, ["GET /throttled → 429", "GET /bad-gateway → 502"]);

    // Without `send_default_pii`: the response's status, none of its headers, no client IP.
    let transport = MemoryTransport::new();
    let guard = isoscope::init(Options::new().transport(transport.clone())).unwrap();
    let req = Request::get("/broken").header("x-forwarded-for", "203.0.113.7").body(Body::empty()).unwrap();
    let res = app().oneshot(req).await.unwrap();
    let _ = axum::body::to_bytes(res.into_body(), usize::MAX).await;
    drop(guard);
    let event = transport.events().pop().unwrap();
    assert_eq!(event.contexts["response"], serde_json::json!({"type": "response", "status_code": 500}));
    assert!(event.user.is_none_or(|u| u.ip_address.is_none()), "no client IP without send_default_pii");
}
