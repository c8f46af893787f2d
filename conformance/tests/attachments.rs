//! Attachments on a loopback ingest server: a scope's files ride with every event captured in
//! it as `attachment` items (item headers as Relay's envelope parser wants them), never with
//! transactions; forks share them; an oversized file is left out and counted; an `attachment`
//! rate limit keeps the files out and lets the event through.

mod support;

use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::protocol::{Attachment, AttachmentType, DiscardReason};
use isoscope::{Client, DataCategory, IsolationLayer, Level, Options};
use serde_json::Value;
use support::ingest::{Answer, Ingest};
use tower::ServiceExt;

/// The process client: it decides tracing (process-wide); every request is sampled.
fn process_client() {
    static GUARD: std::sync::OnceLock<isoscope::ClientGuard> = std::sync::OnceLock::new();
    GUARD.get_or_init(|| {
        let options = Options::new().traces_sample_rate(1.0).transport(isoscope::MemoryTransport::new());
        isoscope::init(options).unwrap()
    });
}

/// Stats deltas are process-wide: the tests take turns (each sends attachments).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The attachment items of the envelope holding the event `message`: (header, payload).
fn attachments_beside(server: &Ingest, message: &str) -> Vec<(Value, Value)> {
    let envelope = server
        .received()
        .into_iter()
        .find(|r| r.items.iter().any(|(h, p)| h["type"] == "event" && p["logentry"]["formatted"] == message))
        .unwrap_or_else(|| panic!("no envelope for {message}"));
    envelope.event(); // checked against Sentry's schema
    envelope.items.into_iter().filter(|(h, _)| h["type"] == "attachment").collect()
}

/// What Relay's envelope parser requires of an attachment item header: `type`, `length` equal
/// to the payload's bytes, a `filename`; `attachment_type` and `content_type` optional, of
/// known values.
fn check_header(header: &Value, payload: &Value) {
    let known = ["type", "length", "filename", "content_type", "attachment_type"];
    assert!(header.as_object().unwrap().keys().all(|k| known.contains(&k.as_str())), "{header}");
    assert_eq!(header["length"].as_u64().unwrap() as usize, payload.as_str().unwrap().len(), "{header}");
    assert!(header["filename"].as_str().is_some_and(|f| !f.is_empty()));
    let kinds = ["event.attachment", "event.minidump", "event.view_hierarchy"];
    assert!(header.get("attachment_type").is_none_or(|t| kinds.contains(&t.as_str().unwrap())), "{header}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_requests_files_ride_with_its_events_but_not_its_transaction() {
    let _turn = TURN.lock().await;
    process_client();
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn())).unwrap();
    let app = Router::new()
        .route(
            "/checkout",
            get(|| async {
                let cart = Attachment::new("cart.json", r#"{"items": 3}"#).with_content_type("application/json");
                isoscope::add_attachment(cart);
                let dump = Attachment::new("state.txt", "step=pay").with_kind(AttachmentType::Attachment);
                isoscope::configure_scope(|s| s.add_attachment(dump));
                isoscope::capture_message("payment declined", Level::Error);
                "ok"
            }),
        )
        .layer(IsolationLayer::new());
    let scope = client.new_scope();
    let response = scope.bind(app.oneshot(Request::get("/checkout").body(Body::empty()).unwrap())).await.unwrap();
    axum::body::to_bytes(response.into_body(), usize::MAX).await.unwrap();
    assert!(client.flush(Duration::from_secs(10)));

    let files = attachments_beside(&server, "payment declined");
    assert_eq!(files.len(), 2, "{files:?}");
    for (header, payload) in &files {
        check_header(header, payload);
    }
    assert_eq!(files[0].0["filename"], "cart.json");
    assert_eq!(files[0].0["content_type"], "application/json");
    assert_eq!(files[0].0["attachment_type"], "event.attachment");
    assert_eq!(files[0].1, r#"{"items": 3}"#);
    assert_eq!((files[1].0["filename"].as_str(), files[1].1.as_str()), (Some("state.txt"), Some("step=pay")));
    let transaction = server.received().into_iter().find(|r| r.transaction().is_some()).expect("the transaction");
    assert!(transaction.items.iter().all(|(h, _)| h["type"] != "attachment"), "transactions carry none");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forks_share_their_parents_files_and_keep_their_own() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn())).unwrap();
    let parent = client.new_scope();
    parent.configure(|s| s.add_attachment(Attachment::new("config.toml", "port = 8080")));
    let child = parent.fork();
    child.configure(|s| s.add_attachment(Attachment::new("job.log", "started")));
    child.run(|| isoscope::capture_message("from the child", Level::Info));
    parent.run(|| isoscope::capture_message("from the parent", Level::Info));
    let cleared = parent.fork();
    cleared.configure(isoscope::Scope::clear_attachments);
    cleared.run(|| isoscope::capture_message("cleared", Level::Info));
    assert!(client.flush(Duration::from_secs(10)));
    let names = |m: &str| -> Vec<String> {
        attachments_beside(&server, m).iter().map(|(h, _)| h["filename"].as_str().unwrap().to_owned()).collect()
    };
    assert_eq!(names("from the child"), ["config.toml", "job.log"]);
    assert_eq!(names("from the parent"), ["config.toml"], "the child's file stays the child's");
    assert!(names("cleared").is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_oversized_file_is_left_out_and_counted() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn()).max_queue_bytes(64 << 20)).unwrap();
    let before = isoscope::stats();
    let scope = client.new_scope();
    scope.configure(|s| {
        s.add_attachment(Attachment::new("huge.bin", vec![0u8; 9 << 20]));
        s.add_attachment(Attachment::new("small.txt", "ok"));
    });
    scope.run(|| isoscope::capture_message("with a huge file", Level::Error));
    assert!(!client.flush(Duration::from_secs(30)), "a file was left out: flush says so");
    let names: Vec<Value> =
        attachments_beside(&server, "with a huge file").into_iter().map(|(h, _)| h["filename"].clone()).collect();
    assert_eq!(names, ["small.txt"]);
    let delta = isoscope::stats().since(&before);
    let items = delta.items(DataCategory::AttachmentItem);
    assert_eq!((items.captured(), items.sent(), items.discarded(DiscardReason::Invalid)), (2, 1, 1), "{delta:?}");
    assert_eq!(delta.items(DataCategory::Attachment).discarded(DiscardReason::Invalid), 9 << 20);
    assert_eq!(delta.items(DataCategory::Error).sent(), 1, "the event itself went");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attachment_rate_limit_keeps_the_files_out_and_lets_the_event_through() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    server.script([Answer::AcceptWithRateLimits("60:attachment:organization")]);
    let client = Client::new(Options::new().dsn(server.dsn())).unwrap();
    let before = isoscope::stats();
    let scope = client.new_scope();
    scope.configure(|s| s.add_attachment(Attachment::new("a.txt", "first")));
    scope.run(|| isoscope::capture_message("first", Level::Error));
    assert!(client.flush(Duration::from_secs(10)));
    scope.run(|| isoscope::capture_message("second", Level::Error));
    assert!(!client.flush(Duration::from_secs(10)), "the second file was dropped for the limit");
    assert_eq!(attachments_beside(&server, "first").len(), 1);
    assert!(attachments_beside(&server, "second").is_empty());
    let delta = isoscope::stats().since(&before);
    assert_eq!(delta.items(DataCategory::AttachmentItem).discarded(DiscardReason::RatelimitBackoff), 1, "{delta:?}");
}
