//! Parity with the peers, stated per behaviour: what sentry-rust (sentry-core, sentry-tower)
//! and sentry-python 2.x do, and what isoscope does — the same, or a difference README's
//! "Differences worth knowing" names. A change to any of these must change this file.
//!
//! Elsewhere, for the same reason: a transaction takes the name its scope has at the request's
//! end (`transactions.rs`, `set_transaction_renames_the_transaction_as_well_as_its_events`);
//! the dynamic sampling context carries `sample_rate` when this service decided
//! (`trace.rs`); `traces_sample_rate(0.0)` turns tracing on and follows the caller's decision
//! (`sampling_zero.rs`); the default environment (`defaults.rs`).

use std::sync::OnceLock;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{Breadcrumb, Event, IsolationLayer, Level, MemoryTransport, Options, Transaction};
use tower::ServiceExt;

/// This binary's client: every request sampled, names with the method (`MethodAndRoute`).
fn transport() -> &'static MemoryTransport {
    static T: OnceLock<MemoryTransport> = OnceLock::new();
    T.get_or_init(|| {
        let transport = MemoryTransport::new();
        let options = Options::new()
            .transport(transport.clone())
            .traces_sample_rate(1.0)
            .transaction_style(isoscope::TransactionStyle::MethodAndRoute);
        static GUARD: OnceLock<isoscope::ClientGuard> = OnceLock::new();
        let _ = GUARD.set(isoscope::init(options).unwrap());
        transport
    })
}

/// Serves one request to `path` (marked `x-request-id: id`) with `handler`; returns the
/// events and the transaction it produced.
async fn serve<H, T>(id: &str, path: &str, route: &str, handler: H) -> (Vec<Event>, Transaction)
where
    H: axum::handler::Handler<T, ()>,
    T: 'static,
{
    let transport = transport();
    let app = Router::new().route(route, get(handler)).layer(IsolationLayer::new());
    let req = Request::get(path).header("x-request-id", id).body(Body::empty()).unwrap();
    let res = app.oneshot(req).await.unwrap();
    let _ = axum::body::to_bytes(res.into_body(), usize::MAX).await;
    let mine =
        |tags: &std::collections::BTreeMap<String, String>| tags.get("request_id").map(String::as_str) == Some(id);
    let events = transport.events().into_iter().filter(|e| mine(&e.tags)).collect();
    let tx = transport.transactions().into_iter().find(|t| mine(&t.tags)).expect("the request's transaction");
    (events, tx)
}

fn span_of(tx: &Transaction, op: &str) -> isoscope::Span {
    tx.spans.iter().find(|s| s.op == op).unwrap_or_else(|| panic!("no span {op}: {:?}", tx.spans)).clone()
}

/// Both peers: `start_span` parents to the span open in the scope (sentry-rust's
/// `Hub::start_span` under `configure_scope(|s| s.set_span(..))`, sentry-python's
/// `start_span` under the current span); the span open before is open again when it ends.
#[tokio::test]
async fn start_span_nests_under_the_open_span() {
    let (_, tx) = serve("nest", "/nest", "/nest", || async {
        let a = isoscope::start_span("a", "");
        {
            let _b = isoscope::start_span("b", "");
        }
        let _c = isoscope::start_span("c", "");
        drop(_c);
        drop(a);
        let _d = isoscope::start_span("d", "");
    })
    .await;
    let (a, b, c, d) = (span_of(&tx, "a"), span_of(&tx, "b"), span_of(&tx, "c"), span_of(&tx, "d"));
    assert_eq!(a.parent_span_id, tx.span_id);
    assert_eq!(b.parent_span_id, a.span_id, "b inside a");
    assert_eq!(c.parent_span_id, a.span_id, "a open again after b");
    assert_eq!(d.parent_span_id, tx.span_id, "the request's span open again after a");
}

/// Both peers: an event captured inside a span carries that span (sentry-rust's
/// `Scope::apply_to_event` with a span set; sentry-python's current span's trace context).
#[tokio::test]
async fn an_event_inside_a_span_carries_its_span_id() {
    let (events, tx) = serve("in-span", "/in-span", "/in-span", || async {
        let _q = isoscope::start_span("db.query", "SELECT 1");
        isoscope::capture_message("inside the query", Level::Warning);
    })
    .await;
    let span = span_of(&tx, "db.query");
    let trace = &events[0].contexts["trace"];
    assert_eq!(trace["span_id"], span.span_id.to_string());
    assert_eq!(trace["parent_span_id"], tx.span_id.to_string());
    assert_eq!(trace["trace_id"], tx.trace_id.to_string());
}

/// Both peers: work spawned inside a span nests its spans under it (sentry-rust binds a hub
/// forked with the span; sentry-python's context copy).
#[tokio::test]
async fn spawned_work_nests_under_the_span_open_at_spawn() {
    let (_, tx) = serve("spawned", "/spawned", "/spawned", || async {
        let _outer = isoscope::start_span("outer", "");
        isoscope::spawn(async {
            let _inner = isoscope::start_span("inner", "");
        })
        .await
        .unwrap();
    })
    .await;
    assert_eq!(span_of(&tx, "inner").parent_span_id, span_of(&tx, "outer").span_id);
}

/// Both peers: outgoing trace headers name the open span as the callee's parent.
#[tokio::test]
async fn trace_headers_inside_a_span_name_it_as_the_parent() {
    let (events, tx) = serve("headers", "/headers", "/headers", || async {
        let _call = isoscope::start_span("http.client", "GET /inventory");
        let headers = isoscope::trace_headers();
        isoscope::capture_message(headers.sentry_trace().to_owned(), Level::Info);
    })
    .await;
    let sent = events[0].message.clone().unwrap();
    assert_eq!(sent, format!("{}-{}-1", tx.trace_id, span_of(&tx, "http.client").span_id));
}

/// Both peers: the scope's level overrides the event's (sentry-core's own doc example).
#[tokio::test]
async fn the_scopes_level_overrides_the_events() {
    let (events, _) = serve("level", "/level", "/level", || async {
        isoscope::with_scope(|s| s.set_level(Some(Level::Warning)), || isoscope::capture_message("m", Level::Info));
    })
    .await;
    assert_eq!(events[0].level, Some(Level::Warning));
}

/// sentry-tower and sentry-actix name a request's transaction `GET /route`; sentry-python's
/// default (`transaction_style="url"`) `/route`. isoscope: `/route` by default,
/// `TransactionStyle::MethodAndRoute` for `GET /route` (this binary's setting).
#[tokio::test]
async fn transaction_names_follow_the_chosen_style() {
    let (events, tx) = serve("named", "/orders/7", "/orders/{id}", || async {
        isoscope::capture_message("named", Level::Info);
    })
    .await;
    assert_eq!(tx.name, "GET /orders/{id}");
    assert_eq!(events[0].transaction.as_deref(), Some("GET /orders/{id}"));
}

/// Nested `configure_scope`: isoscope applies each call's writes as it makes them, the inner
/// call's included; the last write wins (sentry-rust's nested call writes to a copy the outer
/// call then overwrites, so the outer's value survives).
#[tokio::test]
async fn nested_configure_scope_keeps_the_last_write() {
    let (events, _) = serve("nested", "/nested", "/nested", || async {
        isoscope::configure_scope(|outer| {
            outer.set_tag("who", "outer");
            isoscope::configure_scope(|inner| inner.set_tag("who", "inner"));
        });
        isoscope::capture_message("nested", Level::Info);
    })
    .await;
    assert_eq!(events[0].tags["who"], "inner");
}

/// Breadcrumbs keep the order they were recorded in, whatever timestamps they carry
/// (sentry-python sorts by timestamp; sentry-rust keeps the order, as isoscope).
#[tokio::test]
async fn breadcrumbs_keep_their_recording_order() {
    let (events, _) = serve("crumbs", "/crumbs", "/crumbs", || async {
        let mut late = Breadcrumb::new("recorded first, stamped later");
        late.timestamp += 60.0;
        isoscope::add_breadcrumb(late);
        isoscope::add_breadcrumb(Breadcrumb::new("recorded second"));
        isoscope::capture_message("crumbs", Level::Info);
    })
    .await;
    let order: Vec<_> =
        events[0].breadcrumbs.iter().map(|b| b.message.as_deref().unwrap_or_default().to_owned()).collect();
    assert_eq!(order, ["recorded first, stamped later", "recorded second"]);
}
