//! What became of every item, told truthfully: per-kind accounting (`stats().items`), client
//! reports that reach the server with the same counts, custom transports that report their
//! outcomes, and flushes that say `false` after any loss. Tests take turns (`TURN`) so the
//! process-wide `stats()` deltas each asserts are its own.

mod support;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::protocol::DiscardReason;
use isoscope::{
    DataCategory, Envelope, HttpTransport, IsolationLayer, Level, MemoryTransport, Options, Stats, Transport,
};
use support::ingest::{Answer, Ingest};
use tower::ServiceExt;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const CATEGORIES: [DataCategory; 3] = [DataCategory::Error, DataCategory::Transaction, DataCategory::Span];

/// Every category's books balance: captured = sent + dropped.
fn assert_balanced(d: &Stats) {
    for c in DataCategory::ALL {
        let row = d.items(c);
        assert_eq!(row.captured(), row.sent() + row.dropped(), "{c}: {row:?}");
    }
    assert_eq!(d.events_captured, d.events_sent + d.events_dropped(), "{d:?}");
}

/// The discards stats counted, as client reports name them.
fn discards(d: &Stats) -> BTreeMap<(String, String), u64> {
    let mut out = BTreeMap::new();
    for c in CATEGORIES {
        for r in DiscardReason::ALL {
            let n = d.items(c).discarded(r);
            if n > 0 {
                out.insert((r.name().to_owned(), c.name().to_owned()), n);
            }
        }
    }
    out
}

fn key(reason: &str, category: &str) -> (String, String) {
    (reason.to_owned(), category.to_owned())
}

async fn get_path(app: &Router, path: &str) {
    let res = app.clone().oneshot(Request::get(path).body(Body::empty()).unwrap()).await.unwrap();
    let _ = axum::body::to_bytes(res.into_body(), usize::MAX).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_reports_reach_the_server_with_the_counts_stats_holds() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    // Answers in the order the events are sent (one delivery at a time).
    server.script([Answer::Status(400), Answer::Status(500), Answer::Accept]);
    let transport = HttpTransport::builder(&server.dsn()).unwrap().concurrency(1).max_retries(0).build().unwrap();
    let before = isoscope::stats();
    let guard = isoscope::init(
        Options::new()
            .transport(transport)
            .before_send(|e| (e.message.as_deref() != Some("drop me")).then_some(e))
            // Requests to /skip are left out of tracing; the others are sampled.
            .traces_sampler(|ctx| if ctx.transaction == "/skip" { 0.0 } else { 1.0 }),
    )
    .unwrap();
    let app = Router::new()
        .route("/skip", get(|| async { "skipped" }))
        .route("/traced", get(|| async { "traced" }))
        .layer(IsolationLayer::new());
    isoscope::capture_message("drop me", Level::Error);
    isoscope::capture_message("drop me", Level::Error);
    isoscope::capture_message("rejected with 400", Level::Error);
    assert!(!guard.flush(Duration::from_secs(10)), "a rejection is a loss");
    isoscope::capture_message("answered 500", Level::Error);
    isoscope::capture_message("accepted", Level::Error);
    for _ in 0..3 {
        get_path(&app, "/skip").await;
    }
    get_path(&app, "/traced").await;
    assert!(!guard.flush(Duration::from_secs(10)), "a network error is a loss");
    assert!(guard.flush(Duration::from_secs(10)), "nothing since: delivered");
    drop(guard);

    let d = isoscope::stats().since(&before);
    assert_balanced(&d);
    let expected = BTreeMap::from([
        (key("before_send", "error"), 2),
        (key("send_error", "error"), 1),
        (key("network_error", "error"), 1),
        (key("sample_rate", "transaction"), 3),
        (key("sample_rate", "span"), 3),
    ]);
    assert_eq!(discards(&d), expected, "{d:?}");
    assert_eq!(server.client_reports(), expected, "the server heard of every discard, once");
    let traced = d.items(DataCategory::Transaction);
    assert_eq!((traced.captured(), traced.sent()), (4, 1));
    assert_eq!((d.events_captured, d.events_sent), (5, 1), "transactions are not events");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_is_left_to_the_server_but_later_drops_for_its_limit_are_reported() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    server.script([Answer::TooMany { retry_after: None, rate_limits: Some("60:error:key") }]);
    let transport = HttpTransport::builder(&server.dsn()).unwrap().concurrency(1).build().unwrap();
    let before = isoscope::stats();
    let guard = isoscope::init(Options::new().transport(transport)).unwrap();
    isoscope::capture_message("answered 429", Level::Error);
    assert!(!guard.flush(Duration::from_secs(10)));
    for _ in 0..4 {
        isoscope::capture_message("limited", Level::Error);
    }
    assert!(!guard.flush(Duration::from_secs(10)));
    drop(guard);
    let d = isoscope::stats().since(&before);
    assert_balanced(&d);
    assert_eq!(d.items(DataCategory::Error).discarded(DiscardReason::RatelimitBackoff), 5, "{d:?}");
    assert_eq!(server.client_reports(), BTreeMap::from([(key("ratelimit_backoff", "error"), 4)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_client_reports_nothing_is_sent_but_stats_still_count() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Status(400)).await;
    let transport = HttpTransport::builder(&server.dsn()).unwrap().build().unwrap();
    let before = isoscope::stats();
    let guard = isoscope::init(Options::new().transport(transport).send_client_reports(false)).unwrap();
    isoscope::capture_message("rejected", Level::Error);
    assert!(!guard.flush(Duration::from_secs(10)));
    drop(guard);
    assert_eq!(isoscope::stats().since(&before).items(DataCategory::Error).discarded(DiscardReason::SendError), 1);
    assert!(server.client_reports().is_empty() && server.report_envelopes() == 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transactions_keep_their_own_books_with_their_spans() {
    let _turn = TURN.lock().await;
    let transport = MemoryTransport::new();
    let before = isoscope::stats();
    let guard = isoscope::init(Options::new().transport(transport.clone()).traces_sample_rate(1.0)).unwrap();
    let app = Router::new()
        .route(
            "/work",
            get(|| async {
                let _a = isoscope::start_span("db", "one");
                let _b = isoscope::start_span("db", "two");
                "done"
            }),
        )
        .layer(IsolationLayer::new());
    get_path(&app, "/work").await;
    drop(guard);
    let d = isoscope::stats().since(&before);
    assert_balanced(&d);
    let (tx, spans) = (d.items(DataCategory::Transaction), d.items(DataCategory::Span));
    assert_eq!((tx.captured(), tx.sent()), (1, 1));
    assert_eq!((spans.captured(), spans.sent()), (3, 3), "two spans and the transaction's own");
    assert_eq!((d.events_captured, d.events_sent, d.transactions_captured), (0, 0, 1));
    assert_eq!(transport.transactions().len(), 1);
}

/// Refuses every envelope it is asked about: the capture then counts a queue overflow.
struct Full;

impl Transport for Full {
    fn send(&self, _envelope: Envelope) {
        unreachable!("has_room said no");
    }
    fn has_room(&self) -> bool {
        false
    }
}

#[test]
fn an_event_the_capture_skips_for_a_full_queue_is_a_loss_the_flush_reports() {
    let _turn = TURN.blocking_lock();
    let before = isoscope::stats();
    let guard = isoscope::init(Options::new().transport(Full)).unwrap();
    isoscope::capture_message("no room", Level::Error);
    assert!(!guard.flush(Duration::from_secs(1)), "queue overflow: not delivered");
    assert!(guard.flush(Duration::from_secs(1)), "told once");
    drop(guard);
    let d = isoscope::stats().since(&before);
    assert_eq!(d.items(DataCategory::Error).discarded(DiscardReason::QueueOverflow), 1);
    assert_balanced(&d);
}

/// Delivers in the background and reports each outcome later, from its own thread.
#[derive(Default)]
struct Later(Mutex<Vec<isoscope::Delivery>>);

impl Transport for Later {
    fn send(&self, mut envelope: Envelope) {
        self.0.lock().unwrap().extend(envelope.take_delivery());
    }
}

#[test]
fn a_custom_transport_reports_outcomes_from_its_own_thread() {
    let _turn = TURN.blocking_lock();
    let transport = Arc::new(Later::default());
    let before = isoscope::stats();
    let guard = isoscope::init(Options::new().transport(transport.clone())).unwrap();
    for i in 0..4 {
        isoscope::capture_message(format!("n{i}"), Level::Error);
    }
    let deliveries = std::mem::take(&mut *transport.0.lock().unwrap());
    assert_eq!(deliveries.len(), 4);
    std::thread::spawn(move || {
        for (i, d) in deliveries.into_iter().enumerate() {
            assert_eq!(d.quantities().collect::<Vec<_>>(), [(DataCategory::Error, 1)]);
            match i {
                0 => d.discarded(DiscardReason::NetworkError),
                1 => d.delivered(),
                _ => drop(d), // said nothing: handed on
            }
        }
    })
    .join()
    .unwrap();
    assert!(!guard.flush(Duration::from_secs(1)));
    drop(guard);
    let d = isoscope::stats().since(&before);
    assert_eq!((d.events_sent, d.events_dropped_network), (3, 1));
    assert_balanced(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn envelopes_handed_straight_to_a_transport_are_accounted_and_reported() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Status(413)).await;
    let transport = HttpTransport::builder(&server.dsn()).unwrap().build().unwrap();
    let before = isoscope::stats();
    transport.send(Envelope::from_event(isoscope::Event::message("too big", Level::Error)));
    assert!(!transport.flush(Duration::from_secs(10)));
    let d = isoscope::stats().since(&before);
    assert_eq!((d.events_captured, d.events_dropped_rejected), (1, 1));
    assert_balanced(&d);
    assert_eq!(server.client_reports(), BTreeMap::from([(key("send_error", "error"), 1)]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_events_on_a_busy_host_reaches_a_healthy_server_whole() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    let before = isoscope::stats();
    // Default settings: the queue, its bound and the thread's priority as a new user has them.
    let guard = isoscope::init(Options::new().dsn(server.dsn())).unwrap();
    // Every core busy at the requests' priority while the burst is captured and for a second
    // after: the transport gets little CPU then, and the queue must hold what it cannot send yet.
    let busy = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let spinners: Vec<_> = (0..2)
        .map(|_| {
            let busy = busy.clone();
            std::thread::spawn(move || {
                while busy.load(std::sync::atomic::Ordering::Relaxed) {
                    std::hint::spin_loop();
                }
            })
        })
        .collect();
    for i in 0..1000 {
        isoscope::add_breadcrumb(isoscope::Breadcrumb::new(format!("step {i}")));
        isoscope::capture_message(format!("burst {i}"), Level::Error);
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let dropped_while_busy = isoscope::stats().since(&before).events_dropped();
    busy.store(false, std::sync::atomic::Ordering::Relaxed);
    spinners.into_iter().for_each(|s| s.join().unwrap());
    assert_eq!(dropped_while_busy, 0, "the queue held the burst while the host was busy");
    let delivered = guard.flush(Duration::from_secs(60));
    drop(guard);
    let d = isoscope::stats().since(&before);
    assert!(delivered, "a healthy server took everything: {d:?}");
    assert_eq!((d.events_captured, d.events_sent, d.events_dropped()), (1000, 1000, 0), "{d:?}");
    assert_eq!(server.received().len(), 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_is_bounded_by_the_memory_its_envelopes_hold() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Hang).await;
    let transport =
        HttpTransport::builder(&server.dsn()).unwrap().concurrency(1).max_queue_bytes(64 * 1024).build().unwrap();
    let before = isoscope::stats();
    let guard =
        isoscope::init(Options::new().transport(transport).shutdown_timeout(Duration::from_millis(100))).unwrap();
    let big = "x".repeat(10_000); // ~11 KB each by its estimate
    for _ in 0..40 {
        isoscope::capture_message(big.clone(), Level::Error);
    }
    let d = isoscope::stats().since(&before);
    let held = d.events_captured - d.events_dropped_queue_full;
    assert!((1..=6).contains(&held), "64 KiB hold five or six such envelopes, not {held}: {d:?}");
    drop(guard);
    assert_balanced(&isoscope::stats().since(&before));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_of_1000_events_fits_the_default_queue_even_when_nothing_drains() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Hang).await;
    let before = isoscope::stats();
    let guard = isoscope::init(Options::new().dsn(server.dsn()).shutdown_timeout(Duration::from_millis(100))).unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                // A request's own breadcrumbs, and events that share them.
                for step in 0..20 {
                    isoscope::add_breadcrumb(isoscope::Breadcrumb::new(format!("step {step} of the order")));
                }
                for n in 0..10 {
                    isoscope::capture_message(format!("event {n}"), Level::Error);
                }
            }),
        )
        .layer(IsolationLayer::new());
    for _ in 0..100 {
        get_path(&app, "/").await;
    }
    let d = isoscope::stats().since(&before);
    assert_eq!((d.events_captured, d.events_dropped_queue_full), (1000, 0), "{d:?}");
    drop(guard); // the server never answers: every event is dropped at shutdown, and counted
    let d = isoscope::stats().since(&before);
    assert_eq!(d.events_dropped_shutdown, 1000, "{d:?}");
    assert_balanced(&d);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn before_send_transaction_edits_or_drops_transactions_and_drops_are_counted() {
    let _turn = TURN.lock().await;
    let transport = MemoryTransport::new();
    let before = isoscope::stats();
    let guard = isoscope::init(
        Options::new().transport(transport.clone()).traces_sample_rate(1.0).before_send_transaction(|mut tx| {
            if tx.name == "/health" {
                return None;
            }
            tx.tags.insert("seen_by".to_owned(), "hook".to_owned());
            Some(tx)
        }),
    )
    .unwrap();
    let app = Router::new()
        .route("/health", get(|| async { "up" }))
        .route(
            "/work",
            get(|| async {
                let _s = isoscope::start_span("db", "one");
                "done"
            }),
        )
        .layer(IsolationLayer::new());
    get_path(&app, "/health").await;
    get_path(&app, "/work").await;
    drop(guard);
    let sent = transport.transactions();
    assert_eq!(sent.len(), 1);
    assert_eq!((sent[0].name.as_str(), sent[0].tags["seen_by"].as_str()), ("/work", "hook"));
    assert!(sent[0].tags.contains_key("request_id"), "the hook saw (and kept) the request's tags");
    let d = isoscope::stats().since(&before);
    assert_eq!(d.items(DataCategory::Transaction).discarded(DiscardReason::BeforeSend), 1);
    assert_eq!(
        d.items(DataCategory::Span).discarded(DiscardReason::BeforeSend),
        1,
        "the dropped one had no child span"
    );
    assert_balanced(&d);
}
