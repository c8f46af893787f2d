//! Every kind of event isoscope produces is valid against Sentry's own published event schema
//! (`tests/schema/event.schema.json`, vendored with its provenance), not against our idea of it.

mod support;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{Breadcrumb, Event, IsolationLayer, Level, User};
use serde_json::Value;
use tower::ServiceExt;

use support::schema::assert_valid;

#[derive(Debug)]
struct Outer(std::num::ParseIntError);
impl std::fmt::Display for Outer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("config is invalid")
    }
}
impl std::error::Error for Outer {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_kind_of_event_is_valid_against_sentrys_schema() {
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                isoscope::set_tag("tenant", "acme");
                isoscope::set_extra("cart", serde_json::json!({"items": 3, "password": "x"}));
                isoscope::set_context("order", serde_json::json!({"id": 7}));
                isoscope::set_user(Some(
                    User::with_id("42").with_email("a@b.example").with_data("subscription", Value::from("gold")),
                ));
                isoscope::add_breadcrumb(
                    Breadcrumb::new("cart loaded").category("cart").data("n", 3).level(Level::Debug),
                );
                isoscope::capture_message("a message", Level::Warning);
                isoscope::capture_error(&Outer("x".parse::<u8>().unwrap_err()));
                if isoscope::isolation_scope().id() > 0 {
                    panic!("a panic");
                }
            }),
        )
        .layer(IsolationLayer::new().capture_server_errors())
        .layer(tower_http::catch_panic::CatchPanicLayer::new());
    let mut headers = http::HeaderMap::new();
    headers.insert("x-binary", http::HeaderValue::from_bytes(&[0xff, 0xfe, b'a']).unwrap());
    headers.insert("x-big", http::HeaderValue::from_bytes(&vec![b'a'; 100_000]).unwrap());
    for i in 0..10_000 {
        headers.append(http::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).unwrap(), "v".parse().unwrap());
    }
    let uri = format!("/orders/7?token=abc&page=2&q={}", "a".repeat(60_000));
    let mut request = Request::get(uri).body(Body::empty()).unwrap();
    *request.headers_mut() = headers;
    let events = isoscope::test::with_captured_events(async {
        app.oneshot(request).await.unwrap();
        isoscope::capture_event(Event::default());
    })
    .await;
    assert_eq!(events.len(), 4, "{events:?}");
    for event in &events {
        assert_valid("event", event);
        let json = serde_json::to_vec(event).unwrap();
        assert!(json.len() < 1024 * 1024, "bounded: {} bytes", json.len());
    }
    let panic = events.iter().find(|e| e.exception.iter().any(|x| x.ty == "panic")).expect("the panic event");
    assert!(panic.exception[0].stacktrace.as_ref().is_some_and(|t| !t.frames.is_empty()), "with its stack");
}

#[test]
fn a_message_template_is_valid_and_bounded() {
    let transport = isoscope::MemoryTransport::new();
    let client = isoscope::Client::new(isoscope::Options::new().transport(transport.clone())).unwrap();
    client.new_scope().run(|| {
        let event = Event::message_with_params(
            "order {} failed: {}",
            ["7".into(), serde_json::json!({"code": 3})],
            Level::Error,
        );
        isoscope::capture_event(event);
        let huge = Event::message_with_params("x {}".repeat(5_000), (0..1_000).map(Value::from), Level::Info);
        isoscope::capture_event(huge);
    });
    let events = transport.take_events();
    let json: Vec<Value> = events.iter().map(|e| serde_json::to_value(e).unwrap()).collect();
    for (i, event) in events.iter().enumerate() {
        assert_valid(&format!("template event {i}"), event);
    }
    assert_eq!(json[0]["logentry"]["formatted"], r#"order 7 failed: {"code":3}"#);
    assert_eq!(json[0]["logentry"]["message"], "order {} failed: {}");
    assert_eq!(json[0]["logentry"]["params"][1]["code"], 3);
    assert!(json[1]["logentry"]["message"].as_str().unwrap().chars().count() <= 8_192);
    assert_eq!(json[1]["logentry"]["params"].as_array().unwrap().len(), 100, "parameters are bounded");
}
