//! OpenTelemetry interop (feature `opentelemetry`): inside a `tracing` span that
//! `tracing-opentelemetry` gave an OpenTelemetry span, events and logs carry that span's trace
//! id (and the span as theirs), and outgoing headers continue it; a caller's `traceparent`,
//! extracted by OpenTelemetry's propagator, is one trace on both sides.

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{IsolationLayer, Level, MemoryTransport, Options};
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use tower::ServiceExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::prelude::*;

/// This binary's client and its global subscriber with the OpenTelemetry layer (global: a
/// thread's own default races other threads' callsite interest in parallel tests).
fn transport() -> &'static MemoryTransport {
    static T: OnceLock<MemoryTransport> = OnceLock::new();
    T.get_or_init(|| {
        let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("isoscope-test"));
        tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer)).unwrap();
        let transport = MemoryTransport::new();
        static GUARD: OnceLock<isoscope::ClientGuard> = OnceLock::new();
        let options = Options::new().enable_logs(true).traces_sample_rate(1.0).transport(transport.clone());
        let _ = GUARD.set(isoscope::init(options).unwrap());
        transport
    })
}

/// The OpenTelemetry trace and span ids of a tracing span, as hex.
fn otel_ids(span: &tracing::Span) -> (String, String) {
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    (sc.trace_id().to_string(), sc.span_id().to_string())
}

/// Handles `/work` inside an OpenTelemetry-traced span (continuing the request's
/// `traceparent` through OpenTelemetry's propagator, as an OTel middleware does): captures an
/// event and a log, and answers with the span's ids and the headers an outgoing call would get.
async fn work(req: Request<Body>) -> String {
    let span = tracing::info_span!("work");
    let headers: HashMap<String, String> =
        req.headers().iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap().to_owned())).collect();
    let parent = opentelemetry_sdk::propagation::TraceContextPropagator::new().extract(&headers);
    if parent.span().span_context().is_valid() {
        // Fails (harmlessly) where no OpenTelemetry layer is installed.
        let _ = span.set_parent(parent);
    }
    let _entered = span.enter();
    isoscope::capture_message("inside an OTel span", Level::Info);
    isoscope::logs::info!("a log inside it");
    let (trace, id) = otel_ids(&span);
    let outgoing = isoscope::trace_headers();
    format!("{trace} {id} {}", outgoing.traceparent())
}

/// Handles `/plain` outside any span: captures an event, answers with the headers an
/// outgoing call would get.
async fn plain() -> String {
    isoscope::capture_message("outside any OTel span", Level::Info);
    format!("- - {}", isoscope::trace_headers().traceparent())
}

async fn call(path: &str, traceparent: Option<&str>, id: &str) -> Vec<String> {
    let app = Router::new().route("/work", get(work)).route("/plain", get(plain)).layer(IsolationLayer::new());
    let mut req = Request::get(path).header("x-request-id", id);
    if let Some(tp) = traceparent {
        req = req.header("traceparent", tp);
    }
    let res = app.oneshot(req.body(Body::empty()).unwrap()).await.unwrap();
    let body = axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();
    String::from_utf8(body.to_vec()).unwrap().split(' ').map(str::to_owned).collect()
}

#[tokio::test(flavor = "current_thread")]
async fn events_logs_and_outgoing_headers_follow_the_opentelemetry_span() {
    let transport = transport();
    // A new trace started by OpenTelemetry.
    let answer = call("/work", None, "otel-1").await;
    let (trace, span, traceparent) = (&answer[0], &answer[1], &answer[2]);
    let event = transport
        .events()
        .into_iter()
        .find(|e| e.tags.get("request_id").map(String::as_str) == Some("otel-1"))
        .unwrap();
    assert_eq!(event.contexts["trace"]["trace_id"], trace.as_str(), "the event is in the OTel trace");
    assert_eq!(event.contexts["trace"]["span_id"], span.as_str());
    assert!(traceparent.starts_with(&format!("00-{trace}-{span}-")), "the callee continues it: {traceparent}");
    isoscope::flush(Duration::from_secs(5));
    // (Both tests log the same line: this request's is the one in its trace.)
    let log =
        transport.logs().into_iter().find(|l| l.trace_id.to_string() == *trace).expect("the log, in the OTel trace");
    assert_eq!((log.body.as_str(), log.span_id.map(|s| s.to_string())), ("a log inside it", Some(span.clone())));

    // A caller's trace, extracted by OpenTelemetry's propagator: the same on both sides.
    let caller = "4bf92f3577b34da6a3ce929d0e0e4736";
    let answer = call("/work", Some(&format!("00-{caller}-00f067aa0ba902b7-01")), "otel-2").await;
    assert_eq!(answer[0], caller);
    let event = transport
        .events()
        .into_iter()
        .find(|e| e.tags.get("request_id").map(String::as_str) == Some("otel-2"))
        .unwrap();
    assert_eq!(event.contexts["trace"]["trace_id"], caller);
}

#[tokio::test(flavor = "current_thread")]
async fn outside_an_opentelemetry_span_the_requests_own_trace_stays() {
    let transport = transport();
    let caller = "0af7651916cd43dd8448eb211c80319c";
    let answer = call("/plain", Some(&format!("00-{caller}-b7ad6b7169203331-01")), "otel-none").await;
    assert!(answer[2].starts_with(&format!("00-{caller}-")), "the callee continues the request's trace: {}", answer[2]);
    let event = transport
        .events()
        .into_iter()
        .find(|e| e.tags.get("request_id").map(String::as_str) == Some("otel-none"))
        .unwrap();
    assert_eq!(event.contexts["trace"]["trace_id"], caller, "the layer's own continuation");
}

/// An OpenTelemetry layer outside `IsolationLayer` (an OTel middleware's request span): the
/// request joins that trace — its transaction is the OTel span's child, its events and logs in
/// the same trace.
#[tokio::test(flavor = "current_thread")]
async fn a_request_inside_an_opentelemetry_request_span_joins_its_trace() {
    use tracing::Instrument;
    let transport = transport();
    let outer = tracing::info_span!("http_request");
    let (trace, outer_id) = otel_ids(&outer);
    let app = Router::new().route("/plain", get(plain)).layer(IsolationLayer::new());
    let req = Request::get("/plain").header("x-request-id", "otel-outer").body(Body::empty()).unwrap();
    let res = app.oneshot(req).instrument(outer).await.unwrap();
    axum::body::to_bytes(res.into_body(), usize::MAX).await.unwrap();

    let tx = transport
        .transactions()
        .into_iter()
        .find(|t| t.tags.get("request_id").map(String::as_str) == Some("otel-outer"));
    let tx = tx.expect("the request's transaction");
    assert_eq!(tx.trace_id.to_string(), trace, "the transaction is in the OTel trace");
    assert_eq!(tx.parent_span_id.map(|s| s.to_string()), Some(outer_id), "a child of the OTel request span");
    let event = transport
        .events()
        .into_iter()
        .find(|e| e.tags.get("request_id").map(String::as_str) == Some("otel-outer"))
        .unwrap();
    assert_eq!(event.contexts["trace"]["trace_id"], trace.as_str());
}
