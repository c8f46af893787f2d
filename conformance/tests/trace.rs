//! Trace context: every event of a request carries `contexts.trace` with the request's trace
//! (continued from `sentry-trace`, else `traceparent`, else new), the same in its children and
//! blocking jobs; events outside requests carry the process's; malformed headers are ignored
//! and counted; `trace_headers()` passes the trace on, so service B's events name service A's
//! trace and span.

mod support;

use axum::body::Body;
use axum::extract::State;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::integrations::reqwest::TraceRequest;
use isoscope::{Event, IsolationLayer, Level};
use serde_json::Value;
use support::{events_tagged, http_client, serve, transport};
use tower::ServiceExt;

/// The tests that read `trace_headers_invalid` take turns: the counter is process-wide.
static COUNTING: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT: &str = "00f067aa0ba902b7";

fn trace_of(event: &Event) -> &Value {
    event.contexts.get("trace").expect("contexts.trace")
}

/// An app whose one route captures from the handler, an `isoscope::spawn` child and a
/// `spawn_blocking` job, all tagged `test` = the `t` query parameter.
fn app() -> Router {
    Router::new()
        .route(
            "/work",
            get(
                |axum::extract::Query(q): axum::extract::Query<std::collections::HashMap<String, String>>| async move {
                    let tag = q["t"].clone();
                    isoscope::set_tag("test", tag);
                    isoscope::capture_message("handler", Level::Info);
                    isoscope::spawn(async { isoscope::capture_message("child", Level::Info) }).await.unwrap();
                    isoscope::spawn_blocking(|| isoscope::capture_message("blocking", Level::Info)).await.unwrap();
                    "ok"
                },
            ),
        )
        .layer(IsolationLayer::new())
}

async fn get_with(path: &str, headers: &[(&str, &str)]) -> http::StatusCode {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    app().oneshot(req.body(Body::empty()).unwrap()).await.unwrap().status()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continued_trace_is_on_every_event_of_the_request() {
    transport();
    let header = format!("{TRACE}-{PARENT}-1");
    assert_eq!(
        get_with("/work?t=continued", &[("sentry-trace", &header), ("baggage", "sentry-release=a@1")]).await,
        200
    );
    let events = events_tagged("test", "continued");
    assert_eq!(events.len(), 3);
    let first = trace_of(&events[0]);
    for event in &events {
        let trace = trace_of(event);
        assert_eq!(trace["type"], "trace");
        assert_eq!(trace["trace_id"], TRACE, "{:?}", event.message);
        assert_eq!(trace["parent_span_id"], PARENT);
        assert_eq!(trace["sampled"], true);
        assert_eq!(trace["span_id"], first["span_id"], "one request, one span");
        assert_ne!(trace["span_id"], PARENT);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn traceparent_continues_and_sentry_trace_wins_when_both_disagree() {
    transport();
    let w3c = format!("00-{TRACE}-{PARENT}-01");
    get_with("/work?t=w3c", &[("traceparent", &w3c)]).await;
    let events = events_tagged("test", "w3c");
    assert_eq!(trace_of(&events[0])["trace_id"], TRACE);
    assert_eq!(trace_of(&events[0])["parent_span_id"], PARENT);

    let other = "11111111111111111111111111111111";
    get_with("/work?t=both", &[("traceparent", &w3c), ("sentry-trace", &format!("{other}-2222222222222222-0"))]).await;
    let events = events_tagged("test", "both");
    assert_eq!(trace_of(&events[0])["trace_id"], other, "sentry-trace wins");
    assert_eq!(trace_of(&events[0])["sampled"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_headers_each_request_starts_its_own_trace() {
    transport();
    get_with("/work?t=fresh-a", &[]).await;
    get_with("/work?t=fresh-b", &[]).await;
    let a = events_tagged("test", "fresh-a");
    let b = events_tagged("test", "fresh-b");
    assert!(a.iter().all(|e| trace_of(e)["trace_id"] == trace_of(&a[0])["trace_id"]), "one trace per request");
    assert_ne!(trace_of(&a[0])["trace_id"], trace_of(&b[0])["trace_id"]);
    assert!(trace_of(&a[0]).get("parent_span_id").is_none());
    assert_eq!(trace_of(&a[0])["trace_id"].as_str().unwrap().len(), 32);
}

#[test]
fn events_outside_requests_carry_the_process_trace() {
    transport();
    let mut ids = Vec::new();
    for i in 0..2 {
        let mut event = Event::message("outside", Level::Info);
        event.tags.insert("test".into(), format!("outside-{i}"));
        isoscope::capture_event(event);
        ids.push(trace_of(&events_tagged("test", &format!("outside-{i}"))[0])["trace_id"].clone());
    }
    assert_eq!(ids[0], ids[1]);
    let headers = isoscope::trace_headers();
    assert!(headers.sentry_trace().starts_with(ids[0].as_str().unwrap()), "trace_headers outside a request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_trace_headers_are_ignored_and_counted() {
    let _turn = COUNTING.lock().await;
    transport();
    let garbage = "x".repeat(10 * 1024);
    let cases: [(&str, String); 8] = [
        ("sentry-trace", format!("{}-{PARENT}", &TRACE[..31])),
        ("sentry-trace", format!("{TRACE}-{}", "0".repeat(16))),
        ("sentry-trace", format!("{}-{PARENT}", "0".repeat(32))),
        ("sentry-trace", format!("{}z-{PARENT}", &TRACE[..31])),
        ("sentry-trace", garbage.clone()),
        ("traceparent", format!("00-{TRACE}-{PARENT}")),
        ("traceparent", format!("ff-{TRACE}-{PARENT}-01")),
        ("traceparent", garbage),
    ];
    for (i, (name, value)) in cases.iter().enumerate() {
        let before = isoscope::stats();
        let tag = format!("malformed-{i}");
        assert_eq!(get_with(&format!("/work?t={tag}"), &[(name, value.as_str())]).await, 200, "{name}: {value:.40}");
        let events = events_tagged("test", &tag);
        assert_eq!(events.len(), 3);
        let trace = trace_of(&events[0]);
        assert!(trace.get("parent_span_id").is_none(), "{name}: {value:.40} was not continued");
        assert_ne!(trace["trace_id"], TRACE);
        assert!(isoscope::stats().since(&before).trace_headers_invalid >= 1, "{name}: {value:.40} counted");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn service_b_continues_service_a_trace_over_http() {
    transport();
    let b = Router::new()
        .route(
            "/b",
            get(|| async {
                isoscope::set_tag("test", "service-b");
                isoscope::capture_message("in B", Level::Info);
                "b"
            }),
        )
        .layer(IsolationLayer::new());
    let b_addr = serve(b).await;
    let a = Router::new()
        .route(
            "/a",
            get(|State(b_addr): State<std::net::SocketAddr>| async move {
                isoscope::set_tag("test", "service-a");
                isoscope::capture_message("in A", Level::Info);
                let mut req = http_client().get(format!("http://{b_addr}/b"));
                for (name, value) in isoscope::trace_headers().iter() {
                    req = req.header(name, value);
                }
                let text = req.send().await.unwrap().text().await.unwrap();
                // The integration: the same headers, and an `http` breadcrumb.
                let url = format!("http://user:pw@{b_addr}/b?token=s3cret&page=1");
                let res = http_client().get(url).send_traced().await.unwrap();
                assert_eq!(res.status(), 200);
                let refused = http_client().get("http://127.0.0.1:9/down").send_traced().await;
                assert!(refused.is_err());
                isoscope::capture_message("after B", Level::Info);
                text
            }),
        )
        .layer(IsolationLayer::new())
        .with_state(b_addr);
    let a_addr = serve(a).await;
    assert_eq!(http_client().get(format!("http://{a_addr}/a")).send().await.unwrap().text().await.unwrap(), "b");
    let in_a = events_tagged("test", "service-a");
    let in_b = events_tagged("test", "service-b");
    assert_eq!((in_a.len(), in_b.len()), (2, 2));
    let (ta, tb) = (trace_of(&in_a[0]), trace_of(&in_b[0]));
    assert_eq!(tb["trace_id"], ta["trace_id"], "B continues A's trace");
    assert_eq!(tb["parent_span_id"], ta["span_id"], "A's span is B's parent");
    assert_eq!(trace_of(&in_b[1])["trace_id"], ta["trace_id"], "send_traced passes it on too");
    assert_eq!(trace_of(&in_b[1])["parent_span_id"], ta["span_id"]);
    let after = in_a.iter().find(|e| e.message.as_deref() == Some("after B")).unwrap();
    let http: Vec<_> = after.breadcrumbs.iter().filter(|b| b.ty == "http").collect();
    assert_eq!(http.len(), 2, "{:#?}", after.breadcrumbs);
    assert_eq!(http[0].data["method"], "GET");
    assert_eq!(http[0].data["url"], format!("http://{b_addr}/b?token=[Filtered]&page=1"), "no credentials, no secret");
    assert_eq!(http[0].data["status_code"], 200);
    assert!(http[0].data["duration_ms"].as_f64().is_some_and(|d| d >= 0.0));
    assert_eq!(http[1].level, Level::Error, "a failed call");
    assert!(http[1].data.contains_key("reason"));
    assert_ne!(tb["span_id"], ta["span_id"]);
    // B received A's own baggage (a trace that started in A).
    let baggage = in_b[0].request.as_ref().unwrap().headers.get("baggage").expect("baggage sent");
    assert!(baggage.contains(&format!("sentry-trace_id={}", ta["trace_id"].as_str().unwrap())), "{baggage}");
}

/// A malformed trace header is counted when its request arrives, even when nothing (no event,
/// no outgoing call) ever reads the request's trace.
#[tokio::test(flavor = "current_thread")]
async fn a_malformed_trace_header_is_counted_when_the_request_arrives() {
    let _turn = COUNTING.lock().await;
    transport();
    let app = axum::Router::new()
        .route("/quiet", axum::routing::get(|| async { "nothing read" }))
        .layer(isoscope::IsolationLayer::new());
    let before = isoscope::stats();
    for _ in 0..7 {
        let request =
            http::Request::get("/quiet").header("sentry-trace", "not-a-trace").body(axum::body::Body::empty()).unwrap();
        assert_eq!(app.clone().oneshot(request).await.unwrap().status(), 200);
    }
    let plain = http::Request::get("/quiet").body(axum::body::Body::empty()).unwrap();
    app.oneshot(plain).await.unwrap();
    assert_eq!(isoscope::stats().since(&before).trace_headers_invalid, 7);
}

/// reqwest 0.12 (feature `reqwest012`): the same headers and breadcrumb as with 0.13.
#[cfg(feature = "reqwest012")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn send_traced_works_with_reqwest_0_12() {
    transport();
    let callee = Router::new()
        .route(
            "/callee",
            get(|| async {
                isoscope::capture_message("callee", Level::Info);
                "ok"
            }),
        )
        .layer(IsolationLayer::new());
    let callee_addr = serve(callee).await;
    let caller = Router::new()
        .route(
            "/caller",
            get(|State(callee): State<std::net::SocketAddr>| async move {
                isoscope::set_tag("test", "reqwest-0.12");
                let client = reqwest012::Client::new();
                let res = client.get(format!("http://{callee}/callee?token=s3cret")).send_traced().await.unwrap();
                assert_eq!(res.status().as_u16(), 200);
                isoscope::capture_message("caller", Level::Info);
            }),
        )
        .layer(IsolationLayer::new())
        .with_state(callee_addr);
    let caller_addr = serve(caller).await;
    http_client().get(format!("http://{caller_addr}/caller")).send().await.unwrap();
    let caller_event =
        events_tagged("test", "reqwest-0.12").into_iter().find(|e| e.message.as_deref() == Some("caller")).unwrap();
    let crumb = caller_event.breadcrumbs.iter().find(|b| b.ty == "http").expect("an http breadcrumb");
    assert_eq!(crumb.data["url"], format!("http://{callee_addr}/callee?token=[Filtered]"));
    assert_eq!(crumb.data["status_code"], 200);
    let callee_event = transport().events().into_iter().find(|e| {
        e.message.as_deref() == Some("callee") && trace_of(e)["trace_id"] == trace_of(&caller_event)["trace_id"]
    });
    let callee_event = callee_event.expect("the callee continued the caller's trace");
    assert_eq!(trace_of(&callee_event)["parent_span_id"], trace_of(&caller_event)["span_id"]);
}
