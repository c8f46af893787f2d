//! The request body in events (`Options::max_request_body_size`, default 10,000 bytes): kept
//! as the handler reads it (a tee: the handler gets every byte unchanged), JSON parsed and
//! forms as objects, scrubbed by the secret-key rules; raw and oversized bodies as notes; a
//! body never read, never shown; bodies of other types than axum's are handed on untouched.

mod support;

use std::sync::OnceLock;

use axum::body::{Body, Bytes};
use axum::routing::post;
use axum::{Form, Json, Router};
use http::Request;
use isoscope::{Event, IsolationLayer, Level, MemoryTransport, Options};
use tower::ServiceExt;

fn transport() -> &'static MemoryTransport {
    static T: OnceLock<MemoryTransport> = OnceLock::new();
    T.get_or_init(|| {
        let transport = MemoryTransport::new();
        static GUARD: OnceLock<isoscope::ClientGuard> = OnceLock::new();
        let _ = GUARD.set(isoscope::init(Options::new().transport(transport.clone())).unwrap());
        transport
    })
}

fn app() -> Router {
    Router::new()
        .route(
            "/json",
            post(|Json(order): Json<serde_json::Value>| async move {
                isoscope::capture_message("order refused", Level::Warning);
                order["items"].as_array().map_or(0, Vec::len).to_string()
            }),
        )
        .route(
            "/form",
            post(|Form(fields): Form<Vec<(String, String)>>| async move {
                isoscope::capture_message("signup", Level::Info);
                fields.len().to_string()
            }),
        )
        .route(
            "/echo",
            post(|body: Bytes| async move {
                isoscope::capture_message("echo", Level::Info);
                body
            }),
        )
        .route(
            "/unread",
            post(|| async {
                isoscope::capture_message("never read the body", Level::Info);
                "ok"
            }),
        )
        .route(
            "/before-and-after",
            post(|req: Request<Body>| async move {
                isoscope::capture_message("before", Level::Info);
                let body = axum::body::to_bytes(req.into_body(), usize::MAX).await.unwrap();
                isoscope::capture_message("after", Level::Info);
                body
            }),
        )
        .layer(IsolationLayer::new())
}

fn events_of(id: &str) -> Vec<Event> {
    let events = transport().events().into_iter().filter(|e| e.tags.get("request_id").map(String::as_str) == Some(id));
    support::schema::valid(events.collect())
}

fn data_of(id: &str) -> Option<serde_json::Value> {
    let events = events_of(id);
    assert_eq!(events.len(), 1, "{id}");
    events[0].request.as_ref().unwrap().data.clone()
}

/// POSTs `body` and returns the response body.
async fn post_to(app: Router, path: &str, id: &str, content_type: &str, body: Body) -> Bytes {
    let req = Request::post(path).header("x-request-id", id).header("content-type", content_type);
    let res = app.oneshot(req.body(body).unwrap()).await.unwrap();
    axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap()
}

#[tokio::test]
async fn a_json_body_is_parsed_and_its_secrets_scrubbed() {
    transport();
    let body = r#"{"items": [1, 2], "card": {"number": "4111", "password": "hunter2"}, "api_key": "k"}"#;
    assert_eq!(post_to(app(), "/json", "json-1", "application/json", Body::from(body)).await, "2");
    let data = data_of("json-1").expect("the body");
    assert_eq!(data["items"], serde_json::json!([1, 2]));
    assert_eq!(data["card"]["number"], "4111");
    assert_eq!((data["card"]["password"].as_str(), data["api_key"].as_str()), (Some("[Filtered]"), Some("[Filtered]")));
}

#[tokio::test]
async fn a_form_is_an_object_of_its_fields() {
    transport();
    let body = "name=Ada+Lovelace&lang=en&lang=fr&password=p%40ss";
    assert_eq!(post_to(app(), "/form", "form-1", "application/x-www-form-urlencoded", Body::from(body)).await, "4");
    let want = serde_json::json!({"name": "Ada Lovelace", "lang": ["en", "fr"], "password": "[Filtered]"});
    assert_eq!(data_of("form-1"), Some(want));
}

#[tokio::test]
async fn raw_and_oversized_bodies_are_notes_and_the_handler_gets_every_byte() {
    transport();
    let png = vec![0x89u8; 300];
    assert_eq!(post_to(app(), "/echo", "raw-1", "image/png", Body::from(png.clone())).await, png);
    let note = data_of("raw-1").unwrap();
    assert_eq!(note, "[request body of 300 bytes (image/png): raw bodies are not sent]");

    // Declared larger than the limit (content-length): nothing kept.
    let big = "x".repeat(50_000);
    assert_eq!(post_to(app(), "/echo", "big-1", "text/plain", Body::from(big.clone())).await, big);
    let note = data_of("big-1").unwrap();
    assert!(note.as_str().unwrap().contains("50000 bytes left out"), "{note}");

    // Streamed (no length): kept until it passes the limit, then left out.
    let chunks = (0..20).map(|_| Ok::<_, std::io::Error>(Bytes::from(vec![b'{'; 1_000])));
    let streamed = Body::from_stream(futures_util::stream::iter(chunks));
    assert_eq!(post_to(app(), "/echo", "stream-1", "application/json", streamed).await.len(), 20_000);
    let note = data_of("stream-1").unwrap();
    assert!(note.as_str().unwrap().contains("over max_request_body_size (10000 bytes)"), "{note}");
}

#[tokio::test]
async fn a_body_is_shown_only_once_the_handler_has_read_it() {
    transport();
    post_to(app(), "/unread", "unread-1", "application/json", Body::from(r#"{"a": 1}"#)).await;
    assert_eq!(data_of("unread-1"), None, "never read: never shown");
    post_to(app(), "/before-and-after", "ba-1", "application/json", Body::from(r#"{"a": 1}"#)).await;
    let events = events_of("ba-1");
    let data = |m: &str| events.iter().find(|e| e.message.as_deref() == Some(m)).unwrap().request.clone().unwrap().data;
    assert_eq!(data("before"), None);
    assert_eq!(data("after"), Some(serde_json::json!({"a": 1})));
}

/// Bodies of other types than axum's (a plain `String`; hyper's `Incoming` when the layer
/// wraps the router from outside) are handed on untouched: the service's request type never
/// changes, and nothing of them is kept.
#[tokio::test]
async fn other_body_types_are_handed_on_untouched() {
    transport();
    let service =
        tower::ServiceBuilder::new().layer(IsolationLayer::new()).service_fn(|req: Request<String>| async move {
            isoscope::capture_message("raw", Level::Info);
            Ok::<_, std::convert::Infallible>(http::Response::new(req.into_body()))
        });
    let req = Request::post("/").header("x-request-id", "raw-type").header("content-type", "application/json");
    let res = service.oneshot(req.body(r#"{"a": 1}"#.to_owned()).unwrap()).await.unwrap();
    let echoed = http_body_util::BodyExt::collect(res.into_body()).await.unwrap().to_bytes();
    assert_eq!(echoed, r#"{"a": 1}"#.as_bytes());
    assert_eq!(data_of("raw-type"), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_a_real_connection_the_body_hyper_streams_is_kept() {
    transport();
    let addr = support::serve(app()).await;
    let res = support::http_client()
        .post(format!("http://{addr}/json"))
        .header("x-request-id", "real-1")
        .header("content-type", "application/json")
        .body(r#"{"items": [1, 2, 3]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(res.text().await.unwrap(), "3");
    assert_eq!(data_of("real-1"), Some(serde_json::json!({"items": [1, 2, 3]})));
}
