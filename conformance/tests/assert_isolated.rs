//! `isoscope::test::assert_isolated` passes an isolated router and fails, with a report naming
//! the offending events, for one that leaks a request's data into others.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::Query;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{Breadcrumb, IsolationLayer, Level};

fn request(_: usize) -> Request<Body> {
    Request::get("/work?page=1").body(Body::empty()).unwrap()
}

async fn isolated(Query(q): Query<HashMap<String, String>>) -> &'static str {
    let marker = q.get("isoscope_marker").cloned().unwrap_or_default();
    isoscope::set_tag("customer", marker.clone());
    isoscope::add_breadcrumb(Breadcrumb::new(format!("working for {marker}")));
    tokio::task::yield_now().await;
    isoscope::spawn(async { isoscope::capture_message("child", Level::Info) }).await.unwrap();
    isoscope::capture_message("done", Level::Info);
    "ok"
}

#[tokio::test]
async fn an_isolated_router_passes() {
    let app = Router::new().route("/work", get(isolated)).layer(IsolationLayer::new());
    let report = isoscope::test::assert_isolated(app, 100, request).await;
    assert_eq!(report.events.len(), 100);
    for (i, events) in report.events.iter().enumerate() {
        assert_eq!(events.len(), 2, "request {i}");
        assert!(events.iter().all(|e| e.tags["customer"] == isoscope::test::marker(i)));
    }
}

#[tokio::test]
async fn a_router_that_leaks_between_requests_fails_with_a_report() {
    // The leak: state kept across requests (a "last customer" cache) put into the next
    // request's scope. (Not the global scope: the other test of this binary runs alongside.)
    static LAST: std::sync::Mutex<String> = std::sync::Mutex::new(String::new());
    async fn leaky(Query(q): Query<HashMap<String, String>>) -> &'static str {
        let marker = q.get("isoscope_marker").cloned().unwrap_or_default();
        let last = std::mem::replace(&mut *LAST.lock().unwrap(), marker);
        isoscope::set_tag("last_customer", last);
        tokio::task::yield_now().await;
        isoscope::capture_message("done", Level::Info);
        "ok"
    }
    let app = Router::new().route("/work", get(leaky)).layer(IsolationLayer::new());
    let outcome = tokio::spawn(isoscope::test::assert_isolated(app, 20, request)).await;
    let panic = outcome.unwrap_err().into_panic();
    let message = panic.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(message.contains("break isolation"), "{message}");
    assert!(message.contains("carries data of isoscope-marker-"), "{message}");
}
