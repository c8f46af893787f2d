//! Structured logs end to end, on a loopback ingest server: the `log` item as Relay's
//! `OurLog` container defines it, linked to the request's trace; batches of 100, the 5 s
//! timer, flush; `before_send_log`; a full buffer and a `log_item` rate limit drop and count
//! (stats and client reports); the `tracing` and `log` integrations; scrubbing and PII.
//!
//! Each test binds a client of its own to the scopes it logs in, so tests running in parallel
//! never share a server.

mod support;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::protocol::DiscardReason;
use isoscope::DataCategory;
use isoscope::{Client, IsolationLayer, Level, Options};
use serde_json::Value;
use support::ingest::{Answer, Ingest};
use tower::ServiceExt;

/// The process client: logs on (so the macros record), sending nowhere that matters.
fn process_client() {
    static GUARD: OnceLock<isoscope::ClientGuard> = OnceLock::new();
    GUARD.get_or_init(|| {
        isoscope::init(Options::new().enable_logs(true).transport(isoscope::MemoryTransport::new())).unwrap()
    });
}

/// Stats deltas are process-wide: the tests take turns (each logs).
static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// What Relay's `OurLog` admits (relay-event-schema `protocol/ourlog`): required `timestamp`,
/// `trace_id`, `level`, `body`; optional `span_id`, `attributes` of `{type, value}`;
/// `severity_number` is kept as an extra field. Returns what is wrong.
fn log_errors(log: &Value) -> Vec<String> {
    let mut errors = Vec::new();
    let Some(fields) = log.as_object() else { return vec!["not an object".into()] };
    for key in fields.keys() {
        if !["timestamp", "trace_id", "span_id", "level", "body", "attributes", "severity_number"]
            .contains(&key.as_str())
        {
            errors.push(format!("unknown field {key}"));
        }
    }
    let hex =
        |v: &Value, n: usize| v.as_str().is_some_and(|s| s.len() == n && s.bytes().all(|b| b.is_ascii_hexdigit()));
    if !log["timestamp"].is_f64() && !log["timestamp"].is_u64() {
        errors.push("timestamp".into());
    }
    if !hex(&log["trace_id"], 32) {
        errors.push("trace_id".into());
    }
    if fields.contains_key("span_id") && !hex(&log["span_id"], 16) {
        errors.push("span_id".into());
    }
    if !["trace", "debug", "info", "warn", "error", "fatal"].contains(&log["level"].as_str().unwrap_or("")) {
        errors.push("level".into());
    }
    if !log["body"].is_string() {
        errors.push("body".into());
    }
    for (key, attr) in log["attributes"].as_object().into_iter().flatten() {
        let ok = match attr["type"].as_str() {
            Some("string") => attr["value"].is_string(),
            Some("boolean") => attr["value"].is_boolean(),
            Some("integer") => attr["value"].is_i64() || attr["value"].is_u64(),
            Some("double") => attr["value"].is_number(),
            _ => false,
        };
        if !ok || attr.as_object().is_none_or(|o| o.len() != 2) {
            errors.push(format!("attribute {key}: {attr}"));
        }
    }
    errors
}

/// The log records the server received, each checked against `OurLog`, with their item
/// headers checked too.
fn received_logs(server: &Ingest) -> Vec<Value> {
    let mut logs = Vec::new();
    for envelope in server.received() {
        for (header, payload) in &envelope.items {
            if header["type"] != "log" {
                continue;
            }
            let items = payload["items"].as_array().expect("a container of items");
            assert_eq!(header["item_count"].as_u64(), Some(items.len() as u64));
            assert_eq!(header["content_type"], "application/vnd.sentry.items.log+json");
            assert!(items.len() <= 100, "at most 100 per envelope");
            for log in items {
                let errors = log_errors(log);
                assert!(errors.is_empty(), "{errors:?} in {log}");
                logs.push(log.clone());
            }
        }
    }
    logs
}

fn attr<'a>(log: &'a Value, key: &str) -> &'a Value {
    &log["attributes"][key]["value"]
}

#[test]
fn the_log_check_can_fail() {
    let good = serde_json::json!({"timestamp": 1.5, "trace_id": "4bf92f3577b34da6a3ce929d0e0e4736", "level": "info",
        "body": "b", "attributes": {"a": {"type": "integer", "value": 3}}});
    assert!(log_errors(&good).is_empty());
    let broken = |f: &dyn Fn(&mut Value)| {
        let mut json = good.clone();
        f(&mut json);
        log_errors(&json)
    };
    assert!(!broken(&|j| j["level"] = "warning".into()).is_empty(), "Sentry's levels say `warn`");
    assert!(!broken(&|j| j["attributes"]["a"]["type"] = "int".into()).is_empty());
    assert!(!broken(&|j| j["attributes"]["a"]["value"] = "3".into()).is_empty());
    assert!(!broken(&|j| j["trace_id"] = "xyz".into()).is_empty());
    assert!(!broken(&|j| j["message"] = "m".into()).is_empty());
    assert!(!broken(&|j| drop(j.as_object_mut().unwrap().remove("body"))).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_logs_in_its_own_trace_with_its_tags_and_typed_attributes() {
    let _turn = TURN.lock().await;
    process_client();
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn()).enable_logs(true).release("shop@2.0")).unwrap();
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                isoscope::set_tag("tenant", "acme");
                isoscope::logs::info!(order_id = 7, express = true, weight = 1.5; "order {} packed by {}", 7, "ada");
                isoscope::capture_message("packed", Level::Info);
                "ok"
            }),
        )
        .layer(IsolationLayer::new());
    let scope = client.new_scope();
    let req = Request::get("/orders/7").header("x-request-id", "log-1").body(Body::empty()).unwrap();
    scope.bind(app.oneshot(req)).await.unwrap();
    assert!(client.flush(Duration::from_secs(10)));

    let logs = received_logs(&server);
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = &logs[0];
    assert_eq!((log["level"].as_str(), log["severity_number"].as_u64()), (Some("info"), Some(9)));
    assert_eq!(log["body"], "order 7 packed by ada");
    assert_eq!(attr(log, "sentry.message.template"), "order {} packed by {}");
    assert_eq!(
        (attr(log, "sentry.message.parameter.0"), attr(log, "sentry.message.parameter.1")),
        (&"7".into(), &"ada".into())
    );
    assert_eq!(
        (attr(log, "order_id"), attr(log, "express"), attr(log, "weight")),
        (&7.into(), &true.into(), &1.5.into())
    );
    assert_eq!(log["attributes"]["order_id"]["type"], "integer");
    assert_eq!(attr(log, "tenant"), "acme");
    assert_eq!(attr(log, "request_id"), &Value::Null, "a tag of events only, not of the scope");
    assert_eq!(attr(log, "sentry.release"), "shop@2.0");
    assert_eq!(
        (attr(log, "sentry.sdk.name"), attr(log, "sentry.origin")),
        (&"sentry.rust.isoscope".into(), &"manual".into())
    );
    // The request's event and the log share the trace (and the request's span).
    let event = server.received().into_iter().find(|r| r.items.iter().any(|(h, _)| h["type"] == "event")).unwrap();
    let trace = &event.event()["contexts"]["trace"];
    assert_eq!(log["trace_id"], trace["trace_id"]);
    assert_eq!(log["span_id"], trace["span_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_go_in_batches_of_100_at_most_and_flush_sends_the_rest() {
    let _turn = TURN.lock().await;
    process_client();
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn()).enable_logs(true)).unwrap();
    client.new_scope().run(|| {
        for i in 0..250 {
            isoscope::logs::debug!("step {}", i);
        }
    });
    assert!(client.flush(Duration::from_secs(10)));
    let logs = received_logs(&server);
    assert_eq!(logs.len(), 250);
    // Batches may arrive in any order (the transport sends concurrently); each record once.
    let mut steps: Vec<u64> = logs.iter().map(|l| l["body"].as_str().unwrap()[5..].parse().unwrap()).collect();
    steps.sort_unstable();
    assert_eq!(steps, (0..250).collect::<Vec<u64>>());
    let per_envelope: Vec<usize> = server
        .received()
        .iter()
        .filter_map(|r| {
            r.items.iter().find(|(h, _)| h["type"] == "log").map(|(h, _)| h["item_count"].as_u64().unwrap() as usize)
        })
        .collect();
    assert!(per_envelope.iter().all(|&n| n <= 100) && per_envelope.len() >= 3, "{per_envelope:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lone_record_is_sent_after_5_seconds_without_a_flush() {
    let _turn = TURN.lock().await;
    process_client();
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn()).enable_logs(true)).unwrap();
    let started = Instant::now();
    client.new_scope().run(|| isoscope::logs::info!("lonely"));
    while received_logs(&server).is_empty() && started.elapsed() < Duration::from_secs(20) {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(received_logs(&server)[0]["body"], "lonely");
    assert!(started.elapsed() >= Duration::from_secs(4), "the batch waited for its interval");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_send_log_edits_or_drops_on_the_batching_thread_and_drops_are_counted() {
    let _turn = TURN.lock().await;
    process_client();
    let server = Ingest::start(Answer::Accept).await;
    let threads = Arc::new(Mutex::new(Vec::new()));
    let seen = threads.clone();
    let options = Options::new().dsn(server.dsn()).enable_logs(true).before_send_log(move |mut log| {
        seen.lock().unwrap().push(std::thread::current().id());
        if log.body.starts_with("healthcheck") {
            return None;
        }
        log.body.push_str(" (edited)");
        Some(log)
    });
    let client = Client::new(options).unwrap();
    let before = isoscope::stats();
    let scope = client.new_scope();
    let logger = std::thread::spawn(move || {
        scope.run(|| {
            isoscope::logs::info!("healthcheck ok");
            isoscope::logs::info!("real work");
        });
        std::thread::current().id()
    });
    let logging_thread = logger.join().unwrap();
    assert!(client.flush(Duration::from_secs(10)), "a drop by before_send_log is no loss");
    let logs = received_logs(&server);
    assert_eq!(logs.len(), 1);
    assert_eq!(logs[0]["body"], "real work (edited)");
    let delta = isoscope::stats().since(&before);
    assert_eq!(delta.items(DataCategory::LogItem).discarded(DiscardReason::BeforeSend), 1, "{delta:?}");
    assert!(threads.lock().unwrap().iter().all(|t| *t != logging_thread), "never in the log call");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_buffer_drops_and_counts_and_the_server_hears_of_it() {
    let _turn = TURN.lock().await;
    process_client();
    let server = Ingest::start(Answer::Accept).await;
    // The hook holds the batching thread on its first record until released: the buffer
    // fills behind it.
    // (entered, open)
    let gate = Arc::new((Mutex::new((false, false)), std::sync::Condvar::new()));
    let hook_gate = gate.clone();
    let options = Options::new().dsn(server.dsn()).enable_logs(true).before_send_log(move |log| {
        let (state, cv) = &*hook_gate;
        let mut state = state.lock().unwrap();
        state.0 = true;
        cv.notify_all();
        let _open = cv.wait_while(state, |s| !s.1).unwrap();
        Some(log)
    });
    let client = Client::new(options).unwrap();
    let before = isoscope::stats();
    let scope = client.new_scope();
    scope.run(|| {
        for i in 0..100 {
            isoscope::logs::info!("first {}", i); // a full batch: the thread takes it
        }
    });
    // Wait until the batching thread took the first batch (it is held in the hook).
    {
        let (state, cv) = &*gate;
        let entered = cv.wait_timeout_while(state.lock().unwrap(), Duration::from_secs(20), |s| !s.0).unwrap();
        assert!(entered.0 .0, "the batching thread took the first batch");
    }
    scope.run(|| {
        for i in 0..1_050 {
            isoscope::logs::info!("more {}", i);
        }
    });
    {
        let (state, cv) = &*gate;
        state.lock().unwrap().1 = true;
        cv.notify_all();
    }
    assert!(!client.flush(Duration::from_secs(20)), "records were lost: flush says so");
    let delta = isoscope::stats().since(&before);
    let items = delta.items(DataCategory::LogItem);
    assert_eq!(items.discarded(DiscardReason::BufferOverflow), 50, "{delta:?}");
    assert_eq!(received_logs(&server).len(), 1_100);
    assert_eq!(items.captured(), items.sent() + items.dropped(), "{items:?}");
    assert!(delta.items(DataCategory::LogByte).discarded(DiscardReason::BufferOverflow) > 50 * 100);
    // The next envelope tells the server (client reports ride along or go alone).
    client.new_scope().run(|| isoscope::logs::info!("after"));
    assert!(client.flush(Duration::from_secs(10)));
    let reports = server.client_reports();
    assert_eq!(reports.get(&("buffer_overflow".into(), "log_item".into())), Some(&50), "{reports:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_item_rate_limit_is_honoured_and_counted() {
    let _turn = TURN.lock().await;
    process_client();
    let server = Ingest::start(Answer::Accept).await;
    server.script([Answer::AcceptWithRateLimits("60:log_item:organization")]);
    let client = Client::new(Options::new().dsn(server.dsn()).enable_logs(true)).unwrap();
    let before = isoscope::stats();
    client.new_scope().run(|| isoscope::logs::info!("one"));
    assert!(client.flush(Duration::from_secs(10)));
    client.new_scope().run(|| {
        isoscope::logs::info!("two");
        isoscope::capture_message("errors still go", Level::Error);
    });
    assert!(!client.flush(Duration::from_secs(10)), "the second log was dropped for the limit");
    assert_eq!(received_logs(&server).len(), 1);
    let delta = isoscope::stats().since(&before);
    assert_eq!(delta.items(DataCategory::LogItem).discarded(DiscardReason::RatelimitBackoff), 1, "{delta:?}");
    assert!(server.received().iter().any(|r| r.items.iter().any(|(h, _)| h["type"] == "event")));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_are_scrubbed_and_the_user_is_sent_only_with_pii() {
    let _turn = TURN.lock().await;
    process_client();
    let server = Ingest::start(Answer::Accept).await;
    for pii in [false, true] {
        let client = Client::new(Options::new().dsn(server.dsn()).enable_logs(true).send_default_pii(pii)).unwrap();
        client.new_scope().run(|| {
            isoscope::set_user(Some(isoscope::User::with_id("42").with_email("ada@example.com")));
            isoscope::logs::warn!(api_key = "k-123", pii = pii; "login via https://ada:hunter2@auth.example/cb?token=t0k");
        });
        assert!(client.flush(Duration::from_secs(10)));
    }
    let logs = received_logs(&server);
    let by_pii = |pii: bool| logs.iter().find(|l| attr(l, "pii") == &Value::Bool(pii)).unwrap();
    let scrubbed = by_pii(false);
    assert_eq!(attr(scrubbed, "api_key"), "[Filtered]");
    assert!(!scrubbed["body"].as_str().unwrap().contains("hunter2"), "{}", scrubbed["body"]);
    assert!(!scrubbed["body"].as_str().unwrap().contains("t0k"), "{}", scrubbed["body"]);
    assert_eq!(attr(scrubbed, "user.id"), &Value::Null, "no user without send_default_pii");
    let raw = by_pii(true);
    assert_eq!(attr(raw, "api_key"), "k-123");
    assert_eq!((attr(raw, "user.id"), attr(raw, "user.email")), (&"42".into(), &"ada@example.com".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_without_logs_records_none() {
    let _turn = TURN.lock().await;
    process_client();
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn())).unwrap();
    client.new_scope().run(|| isoscope::logs::error!("not sent"));
    assert!(client.flush(Duration::from_secs(10)));
    assert!(received_logs(&server).is_empty());
}

// Multi-threaded: the ingest server must answer while this thread blocks in `flush`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tracing_records_become_logs_with_their_fields() {
    let _turn = TURN.lock().await;
    use tracing_subscriber::prelude::*;
    process_client();
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn()).enable_logs(true)).unwrap();
    let layer = isoscope::integrations::tracing::BreadcrumbLayer::new().logs_from(Some(tracing::Level::INFO));
    let _subscriber = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
    client.new_scope().run(|| {
        let span = tracing::info_span!("checkout", cart = 3);
        let _entered = span.enter();
        tracing::info!(user_id = 7, paid = true, "order paid");
        tracing::debug!("below the level: no log");
    });
    assert!(client.flush(Duration::from_secs(10)));
    let logs = received_logs(&server);
    assert_eq!(logs.len(), 1, "{logs:?}");
    let log = &logs[0];
    assert_eq!(log["body"], "order paid");
    assert_eq!((attr(log, "user_id"), attr(log, "paid")), (&7.into(), &true.into()));
    assert_eq!(attr(log, "checkout.cart"), 3, "the span's fields too");
    assert_eq!(attr(log, "logger.name"), "logs");
    assert_eq!(attr(log, "sentry.origin"), "auto.log.tracing");
    assert!(attr(log, "code.line.number").is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_crate_records_become_breadcrumbs_events_and_logs() {
    let _turn = TURN.lock().await;
    process_client();
    let server = Ingest::start(Answer::Accept).await;
    let client = Client::new(Options::new().dsn(server.dsn()).enable_logs(true)).unwrap();
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| isoscope::integrations::log::Logger::new().install().unwrap());
    client.new_scope().run(|| {
        log::info!(target: "billing", attempt = 2; "charging card");
        log::error!(target: "billing", "card declined");
    });
    assert!(client.flush(Duration::from_secs(10)));
    let logs = received_logs(&server);
    assert_eq!(logs.len(), 2);
    assert_eq!((logs[0]["body"].as_str(), attr(&logs[0], "attempt")), (Some("charging card"), &2.into()));
    assert_eq!(
        (attr(&logs[1], "logger.name"), attr(&logs[1], "sentry.origin")),
        (&"billing".into(), &"auto.log.log".into())
    );
    let event = server.received().into_iter().find(|r| r.items.iter().any(|(h, _)| h["type"] == "event")).unwrap();
    let event = event.event();
    assert_eq!(event["logentry"]["formatted"], "card declined");
    assert_eq!(event["breadcrumbs"]["values"][0]["message"], "charging card");
}
