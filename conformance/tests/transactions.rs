//! Performance transactions: a sampled request sends one `transaction` (route name,
//! `http.server`, start and end, status from the response, the request's trace and data,
//! child spans from `start_span`), honouring an incoming sampling decision and the sampler;
//! spans are bounded; the `transaction` rate-limit category is respected.

mod support;

use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::{Request, StatusCode};
use isoscope::{IsolationLayer, Level, MemoryTransport, Options, Transaction};
use support::ingest::{Answer, Ingest};
use tower::ServiceExt;

/// This binary's client: every request sampled, except `/never` and where the caller decided.
fn transport() -> &'static MemoryTransport {
    static T: OnceLock<MemoryTransport> = OnceLock::new();
    T.get_or_init(|| {
        let transport = MemoryTransport::new();
        let options = Options::new()
            .transport(transport.clone())
            .traces_sampler(|ctx| {
                if ctx.transaction == "/never" {
                    return 0.0;
                }
                ctx.parent_sampled.map_or(1.0, |s| f64::from(u8::from(s)))
            })
            .trace_ignore_status_codes([418..=418]);
        // The client lives for the whole test binary: its guard is kept, never dropped.
        static GUARD: OnceLock<isoscope::ClientGuard> = OnceLock::new();
        let _ = GUARD.set(isoscope::init(options).unwrap());
        transport
    })
}

fn app() -> Router {
    Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                isoscope::set_tag("tenant", "acme");
                let outer = isoscope::start_span("db.query", "SELECT * FROM orders WHERE id = ?");
                {
                    let mut inner = outer.start_child("cache.get", "order:7");
                    inner.set_status(isoscope::SpanStatus::NotFound);
                }
                drop(outer);
                isoscope::capture_message("order loaded", Level::Info);
                "ok"
            }),
        )
        .route("/missing", get(|| async { StatusCode::NOT_FOUND }))
        .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
        .route("/never", get(|| async { "unsampled" }))
        .route("/teapot", get(|| async { StatusCode::IM_A_TEAPOT }))
        .route(
            "/stream",
            get(|| async {
                // Three chunks, 150 ms apart: the response head is out at once, the body
                // takes ~450 ms (Server-Sent Events, downloads).
                let chunks = futures_util::stream::unfold(0, |i| async move {
                    (i < 3).then_some(())?;
                    tokio::time::sleep(Duration::from_millis(150)).await;
                    Some((Ok::<_, std::io::Error>(bytes::Bytes::from(format!("chunk {i}\n"))), i + 1))
                });
                Body::from_stream(chunks)
            }),
        )
        .route(
            "/honk",
            get(|| async {
                isoscope::configure_scope(|s| s.set_transaction(Some("new name")));
                isoscope::capture_message("renamed", Level::Info);
                "honk"
            }),
        )
        .route(
            "/many",
            get(|| async {
                for i in 0..1_100 {
                    let _s = isoscope::start_span("work", format!("step {i}"));
                }
                "done"
            }),
        )
        .layer(IsolationLayer::new())
}

async fn call(path: &str, headers: &[(&str, &str)]) -> StatusCode {
    let mut req = Request::get(path);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let response = app().oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    // Read to the end, as a server does: the request (and its transaction) ends with its body.
    http_body_util::BodyExt::collect(response.into_body()).await.unwrap();
    status
}

/// The transactions whose request carried `x-request-id: id`.
/// Each checked against Sentry's transaction fields (`support::schema`).
fn transactions_of(id: &str) -> Vec<Transaction> {
    support::schema::valid_transactions(
        transport()
            .transactions()
            .into_iter()
            .filter(|t| t.tags.get("request_id").map(String::as_str) == Some(id))
            .collect(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sampled_request_sends_one_transaction_with_its_spans() {
    transport();
    assert_eq!(call("/orders/7", &[("x-request-id", "tx-1")]).await, 200);
    let txs = transactions_of("tx-1");
    assert_eq!(txs.len(), 1, "one transaction per request");
    let t = &txs[0];
    assert_eq!((t.name.as_str(), t.op.as_str(), t.status.as_str()), ("/orders/{id}", "http.server", "ok"));
    assert_eq!(t.status_code, Some(200));
    assert!(t.start_timestamp <= t.timestamp && t.timestamp - t.start_timestamp < 60.0);
    assert_eq!(t.tags["tenant"], "acme");
    assert_eq!(t.request.as_ref().unwrap().method.as_deref(), Some("GET"));
    // The error event of the same request is in the same trace and span.
    let event = transport()
        .events()
        .into_iter()
        .find(|e| e.tags.get("request_id").map(String::as_str) == Some("tx-1"))
        .unwrap();
    assert_eq!(event.contexts["trace"]["trace_id"], t.trace_id.to_string());
    assert_eq!(event.contexts["trace"]["span_id"], t.span_id.to_string());
    assert_eq!(event.contexts["trace"]["sampled"], true);
    // Spans: the query is a child of the request, the cache lookup of the query.
    assert_eq!(t.spans.len(), 2);
    let query = t.spans.iter().find(|s| s.op == "db.query").unwrap();
    let cache = t.spans.iter().find(|s| s.op == "cache.get").unwrap();
    assert_eq!(query.parent_span_id, t.span_id);
    assert_eq!(cache.parent_span_id, query.span_id);
    assert_eq!(cache.status, Some(isoscope::SpanStatus::NotFound));
    assert!(t.start_timestamp <= query.start_timestamp && query.timestamp <= t.timestamp);
    assert!(query.start_timestamp <= cache.start_timestamp && cache.timestamp <= query.timestamp);
    assert!(t.spans.iter().all(|s| s.trace_id == t.trace_id));

    // The wire form: a `transaction` item with the fields of Sentry's transaction events.
    let json = serde_json::to_value(t).unwrap();
    assert_eq!(json["type"], "transaction");
    assert_eq!(json["transaction"], "/orders/{id}");
    assert_eq!(json["contexts"]["trace"]["op"], "http.server");
    assert_eq!(json["contexts"]["trace"]["status"], "ok");
    assert_eq!(json["contexts"]["trace"]["type"], "trace");
    assert!(json["start_timestamp"].is_f64() && json["timestamp"].is_f64());
    assert_eq!(json["spans"].as_array().unwrap().len(), 2);
    assert_eq!(json["spans"][0]["trace_id"], t.trace_id.to_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_comes_from_the_response() {
    transport();
    call("/missing", &[("x-request-id", "tx-404")]).await;
    call("/boom", &[("x-request-id", "tx-500")]).await;
    assert_eq!(transactions_of("tx-404")[0].status, "not_found");
    assert_eq!(transactions_of("tx-500")[0].status, "internal_error");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_decision_and_the_sampler_are_honoured() {
    transport();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    call("/orders/1", &[("x-request-id", "tx-no"), ("sentry-trace", &format!("{trace}-00f067aa0ba902b7-0"))]).await;
    assert!(transactions_of("tx-no").is_empty(), "the caller said not sampled");
    call("/orders/1", &[("x-request-id", "tx-yes"), ("traceparent", &format!("00-{trace}-00f067aa0ba902b7-01"))]).await;
    let yes = transactions_of("tx-yes");
    assert_eq!(yes[0].trace_id.to_string(), trace);
    assert_eq!(yes[0].parent_span_id.unwrap().to_string(), "00f067aa0ba902b7");
    call("/never", &[("x-request-id", "tx-never")]).await;
    assert!(transactions_of("tx-never").is_empty(), "the sampler said 0");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_per_transaction_are_bounded_and_counted() {
    transport();
    let before = isoscope::stats();
    call("/many", &[("x-request-id", "tx-many")]).await;
    assert_eq!(transactions_of("tx-many")[0].spans.len(), 1_000);
    assert!(isoscope::stats().since(&before).spans_dropped >= 100);
}

#[test]
fn outside_a_sampled_request_spans_record_nothing() {
    transport();
    let span = isoscope::start_span("idle", "outside");
    assert_eq!(span.span_id(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_are_sent_as_their_own_item_and_rate_limited_by_category() {
    transport();
    let server = Ingest::start(Answer::Accept).await;
    // The first answer limits transactions for 60 s; errors go on.
    server.script([Answer::AcceptWithRateLimits("60:transaction:organization")]);
    let client = isoscope::Client::new(Options::new().dsn(server.dsn())).unwrap();
    for (id, all_delivered) in [("rl-1", true), ("rl-2", false)] {
        let scope = client.new_scope();
        scope.bind(call("/orders/3", &[("x-request-id", id)])).await;
        // The second request's transaction is dropped for the limit: flush says so.
        assert_eq!(client.flush(Duration::from_secs(10)), all_delivered, "{id}");
    }
    let received = server.received();
    let kinds: Vec<Vec<String>> = received
        .iter()
        .map(|r| r.items.iter().map(|(h, _)| h["type"].as_str().unwrap().to_owned()).collect())
        .collect();
    let transactions = kinds.iter().filter(|k| k.contains(&"transaction".to_owned())).count();
    let events = kinds.iter().filter(|k| k.contains(&"event".to_owned())).count();
    assert_eq!((events, transactions), (2, 1), "the second transaction was rate limited, not the events: {kinds:?}");
    let envelope = received.iter().find(|r| r.transaction().is_some()).unwrap();
    let payload = envelope.transaction().unwrap();
    let header = &envelope.items.iter().find(|(h, _)| h["type"] == "transaction").unwrap().0;
    assert_eq!(header["length"].as_u64().unwrap() as usize, serde_json::to_vec(payload).unwrap().len());
    assert_eq!(payload["transaction"], "/orders/{id}");
    assert!(payload["spans"].as_array().is_some_and(|s| s.len() == 2));
    // The envelope carries the dynamic sampling context Relay samples by.
    let dsc = &envelope.header["trace"];
    assert_eq!(dsc["trace_id"], payload["contexts"]["trace"]["trace_id"]);
    assert_eq!(dsc["public_key"], support::ingest::KEY);
    assert_eq!(dsc["sampled"], "true");
    // This service decided (its sampler said 1.0): Relay extrapolates by the rate.
    assert_eq!(dsc["sample_rate"], "1");
}

#[tokio::test(flavor = "current_thread")]
async fn tracing_spans_inside_a_sampled_request_become_child_spans() {
    use tracing_subscriber::prelude::*;
    transport();
    let _subscriber = tracing::subscriber::set_default(
        tracing_subscriber::registry().with(isoscope::integrations::tracing::BreadcrumbLayer::new()),
    );
    let app = Router::new()
        .route(
            "/traced",
            get(|| async {
                let outer = tracing::info_span!("load_user", user_id = 7);
                let _o = outer.enter();
                let inner = tracing::info_span!("db_query", message = "SELECT * FROM users");
                inner.in_scope(|| tracing::info!("row found"));
                "ok"
            }),
        )
        .layer(IsolationLayer::new());
    app.oneshot(Request::get("/traced").header("x-request-id", "tx-tracing").body(Body::empty()).unwrap())
        .await
        .unwrap();
    let t = &transactions_of("tx-tracing")[0];
    let outer = t.spans.iter().find(|s| s.op == "load_user").expect("the outer tracing span");
    let inner = t.spans.iter().find(|s| s.op == "db_query").expect("the inner tracing span");
    assert_eq!(outer.parent_span_id, t.span_id);
    assert_eq!(inner.parent_span_id, outer.span_id, "nested as the tracing spans are");
    assert_eq!(inner.description.as_deref(), Some("SELECT * FROM users"));
    assert_eq!(outer.description.as_deref(), Some("transactions::load_user"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outgoing_call_is_an_http_client_span_and_the_callees_parent() {
    use isoscope::integrations::reqwest::TraceRequest;
    transport();
    let b = Router::new().route("/b", get(|| async { StatusCode::NOT_FOUND })).layer(IsolationLayer::new());
    let b_addr = support::serve(b).await;
    let a = Router::new()
        .route(
            "/a",
            get(move || async move {
                let url = format!("http://{b_addr}/b");
                support::http_client().get(url).header("x-request-id", "tx-callee").send_traced().await.unwrap();
                "a"
            }),
        )
        .layer(IsolationLayer::new());
    a.oneshot(Request::get("/a").header("x-request-id", "tx-caller").body(Body::empty()).unwrap()).await.unwrap();
    let caller = &transactions_of("tx-caller")[0];
    let callee = &transactions_of("tx-callee")[0];
    let call = caller.spans.iter().find(|s| s.op == "http.client").expect("an http.client span");
    assert_eq!(call.description.as_deref(), Some(format!("GET http://{b_addr}/b").as_str()));
    assert_eq!(call.status, Some(isoscope::SpanStatus::NotFound));
    assert_eq!(callee.trace_id, caller.trace_id);
    assert_eq!(callee.parent_span_id, Some(call.span_id), "the call's span is the callee's parent");
    // The callee passes the caller's dynamic sampling context on (from its baggage).
    let envelope = transport()
        .envelopes()
        .into_iter()
        .find(|e| e.transaction().is_some_and(|t| t.tags.get("request_id").map(String::as_str) == Some("tx-callee")))
        .unwrap();
    let dsc = envelope.trace_header().expect("a trace header");
    assert_eq!(dsc["trace_id"], caller.trace_id.to_string());
    assert_eq!(dsc["sampled"], "true");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_transaction_schema_check_can_fail() {
    transport();
    assert_eq!(call("/orders/9", &[("x-request-id", "tx-schema")]).await, 200);
    let good = serde_json::to_value(&transactions_of("tx-schema")[0]).unwrap();
    assert!(support::schema::transaction_errors(&good).is_empty());
    let broken = |f: &dyn Fn(&mut serde_json::Value)| {
        let mut json = good.clone();
        f(&mut json);
        support::schema::transaction_errors(&json)
    };
    assert!(!broken(&|j| j["spans"][0]["span_idd"] = "x".into()).is_empty(), "unknown span field");
    assert!(!broken(&|j| j["spans"][0]["status"] = "fine".into()).is_empty(), "status outside SpanStatus");
    assert!(
        !broken(&|j| j["spans"][0].as_object_mut().unwrap().remove("start_timestamp").map(drop).unwrap()).is_empty()
    );
    assert!(!broken(&|j| j["contexts"]["trace"]["trace_id"] = "nothex".into()).is_empty(), "bad trace id");
    assert!(!broken(&|j| j["contexts"]["trace"]["parent_span"] = "1".into()).is_empty(), "misspelt trace field");
    assert!(!broken(&|j| j.as_object_mut().unwrap().remove("start_timestamp").map(drop).unwrap()).is_empty());
}

/// Renaming a request's transaction with `set_transaction` renames its events and the
/// transaction alike (sentry-rust's `test_set_transaction`, sentry-actix's
/// `test_override_transaction_name`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn set_transaction_renames_the_transaction_as_well_as_its_events() {
    transport();
    assert_eq!(call("/honk", &[("x-request-id", "tx-renamed")]).await, 200);
    let transactions = transactions_of("tx-renamed");
    assert_eq!(transactions.len(), 1);
    assert_eq!(transactions[0].name, "new name");
    let event = transport()
        .events()
        .into_iter()
        .find(|e| e.tags.get("request_id").map(String::as_str) == Some("tx-renamed"))
        .expect("the event");
    assert_eq!(event.transaction.as_deref(), Some("new name"), "event and transaction agree");
}

/// A streamed response's transaction ends with its body, not its head (sentry-rust #1053):
/// its duration covers the stream; a body dropped mid-stream ends it `cancelled`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_responses_transaction_lasts_as_long_as_its_body() {
    use http_body_util::BodyExt;
    transport();
    assert_eq!(call("/stream", &[("x-request-id", "tx-stream")]).await, 200);
    let t = &transactions_of("tx-stream")[0];
    // Three 150 ms sleeps happen before the body's end: at least 450 ms whatever the load.
    assert!(t.timestamp - t.start_timestamp >= 0.45, "{} s", t.timestamp - t.start_timestamp);
    assert_eq!((t.status.as_str(), t.status_code), ("ok", Some(200)));

    // The client goes away after the first chunk.
    let request = Request::get("/stream").header("x-request-id", "tx-gone").body(Body::empty()).unwrap();
    let mut body = app().oneshot(request).await.unwrap().into_body();
    body.frame().await.unwrap().unwrap();
    assert!(transactions_of("tx-gone").is_empty(), "still streaming: no transaction yet");
    drop(body);
    let t = &transactions_of("tx-gone")[0];
    assert_eq!((t.status.as_str(), t.status_code), ("cancelled", Some(200)));
    assert!(t.timestamp - t.start_timestamp >= 0.15);
}

/// `trace_ignore_status_codes`: no transaction for those responses, counted as discarded by
/// an event processor with its span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_of_ignored_status_codes_are_dropped_and_counted() {
    transport();
    let before = isoscope::stats();
    assert_eq!(call("/teapot", &[("x-request-id", "tx-teapot")]).await, 418);
    assert!(transactions_of("tx-teapot").is_empty());
    let delta = isoscope::stats().since(&before);
    let discarded =
        delta.items(isoscope::DataCategory::Transaction).discarded(isoscope::protocol::DiscardReason::EventProcessor);
    assert!(discarded >= 1, "{delta:?}");
    call("/missing", &[("x-request-id", "tx-404-kept")]).await;
    assert_eq!(transactions_of("tx-404-kept").len(), 1, "other codes are kept");
}
