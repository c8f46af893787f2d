//! `HttpTransport` against our own loopback ingest server, with fault injection. Tests take
//! turns (`TURN`) so the process-wide `stats()` deltas each asserts are its own.

mod support;

use std::time::{Duration, Instant};

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use isoscope::{Breadcrumb, Envelope, Event, HttpTransport, IsolationLayer, Level, Options, Stats, Transport};
use support::ingest::{refused_dsn, Answer, Ingest, KEY};
use tower::ServiceExt;

static TURN: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn fast(dsn: &str) -> isoscope::HttpTransportBuilder {
    HttpTransport::builder(dsn)
        .unwrap()
        .backoff(Duration::from_millis(1), Duration::from_millis(5))
        .connect_timeout(Duration::from_secs(2))
        .timeout(Duration::from_secs(5))
}

fn envelope(msg: &str) -> Envelope {
    Envelope::from_event(Event::message(msg, Level::Error))
}

fn delta(before: Stats) -> Stats {
    let now = isoscope::stats();
    let d = |a: u64, b: u64| a - b;
    let mut s = Stats::default();
    s.events_sent = d(now.events_sent, before.events_sent);
    s.events_retried = d(now.events_retried, before.events_retried);
    s.events_dropped_queue_full = d(now.events_dropped_queue_full, before.events_dropped_queue_full);
    s.events_dropped_rate_limited = d(now.events_dropped_rate_limited, before.events_dropped_rate_limited);
    s.events_dropped_network = d(now.events_dropped_network, before.events_dropped_network);
    s.events_dropped_rejected = d(now.events_dropped_rejected, before.events_dropped_rejected);
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_app_delivers_its_events_with_auth_envelope_headers_and_request_data() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    let before = isoscope::stats();
    let guard = isoscope::init(Options::new().dsn(server.dsn()).release("app@2.0")).unwrap();
    let app = Router::new()
        .route(
            "/orders/{id}",
            get(|| async {
                isoscope::add_breadcrumb(Breadcrumb::new("loaded order").category("db"));
                isoscope::set_tag("tenant", "acme");
                let err = "x1".parse::<u8>().unwrap_err();
                isoscope::capture_error(&err);
                "ok"
            }),
        )
        .layer(IsolationLayer::new());
    let req = Request::get("/orders/9?page=2&token=s3cret")
        .header("host", "shop.test")
        .header("authorization", "Bearer hidden")
        .header("x-request-id", "req-123")
        .body(Body::empty())
        .unwrap();
    assert!(app.oneshot(req).await.unwrap().status().is_success());
    assert!(guard.flush(Duration::from_secs(10)));
    drop(guard);

    let received = server.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert!(r.auth.starts_with(&format!("Sentry sentry_key={KEY}, sentry_version=7, sentry_client=isoscope/")));
    assert_eq!(r.header["dsn"], server.dsn());
    assert!(r.header["sent_at"].as_str().unwrap().ends_with('Z'));
    let (item, event) = &r.items[0];
    assert_eq!(item["type"], "event");
    assert_eq!(r.header["event_id"], event["event_id"]);
    assert_eq!(event["tags"]["tenant"], "acme");
    assert_eq!(event["tags"]["request_id"], "req-123");
    assert_eq!(event["transaction"], "/orders/{id}");
    assert_eq!(event["release"], "app@2.0");
    assert_eq!(event["breadcrumbs"]["values"][0]["message"], "loaded order");
    assert_eq!(event["exception"]["values"][0]["type"], "ParseIntError");
    assert_eq!(event["request"]["url"], "http://shop.test/orders/9");
    assert_eq!(event["request"]["query_string"], "page=2&token=[Filtered]");
    assert!(event["request"]["headers"].get("authorization").is_none());
    assert!(event["contexts"]["os"]["name"].is_string());
    assert_eq!(event["sdk"]["name"], "sentry.rust.isoscope");
    assert_eq!(delta(before).events_sent, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_refused_is_retried_then_dropped() {
    let _turn = TURN.lock().await;
    let before = isoscope::stats();
    let transport = fast(&refused_dsn()).max_retries(2).build().unwrap();
    transport.send(envelope("nobody home"));
    assert!(!transport.flush(Duration::from_secs(10)), "handled by the deadline, but not delivered: false");
    let d = delta(before);
    assert_eq!((d.events_retried, d.events_dropped_network, d.events_sent), (2, 1, 0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_are_retried_and_delivery_recovers() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    server.script([Answer::Status(500), Answer::Status(503)]);
    let before = isoscope::stats();
    let transport = fast(&server.dsn()).max_retries(3).build().unwrap();
    transport.send(envelope("eventually"));
    assert!(transport.flush(Duration::from_secs(10)));
    let d = delta(before);
    assert_eq!((d.events_retried, d.events_sent, d.events_dropped_network), (2, 1, 0));
    assert_eq!(server.requests(), 3);
    assert_eq!(server.received()[0].event()["logentry"]["formatted"], "eventually");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_with_retry_after_stops_sending_until_it_expires() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    server.script([Answer::TooMany { retry_after: Some("60"), rate_limits: None }]);
    let before = isoscope::stats();
    let transport = fast(&server.dsn()).concurrency(1).build().unwrap();
    transport.send(envelope("first"));
    assert!(!transport.flush(Duration::from_secs(10)), "answered 429: not delivered");
    for i in 0..10 {
        transport.send(envelope(&format!("limited {i}")));
    }
    assert!(!transport.flush(Duration::from_secs(10)), "dropped for the limit: not delivered");
    assert_eq!(server.requests(), 1, "nothing is sent while limited");
    assert_eq!(delta(before).events_dropped_rate_limited, 11);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limit_headers_are_honoured_per_category_on_any_status() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    // Bugsink's header (transactions only) must not stop error events...
    server.script([Answer::AcceptWithRateLimits("86400:transaction;span:organization")]);
    let transport = fast(&server.dsn()).concurrency(1).build().unwrap();
    transport.send(envelope("a"));
    assert!(transport.flush(Duration::from_secs(10)));
    transport.send(envelope("b"));
    assert!(transport.flush(Duration::from_secs(10)));
    assert_eq!(server.received().len(), 2);

    // ...but an error limit on a 200 does, and a later shorter limit does not shorten it.
    server.script([Answer::AcceptWithRateLimits("3600.5:error:key")]);
    transport.send(envelope("c"));
    assert!(transport.flush(Duration::from_secs(10)));
    let before = isoscope::stats();
    transport.send(envelope("d"));
    assert!(!transport.flush(Duration::from_secs(10)), "dropped for the limit: not delivered");
    assert_eq!(server.received().len(), 3);
    assert_eq!(delta(before).events_dropped_rate_limited, 1);

    // A 429 carrying X-Sentry-Rate-Limits (as Bugsink's quota answer).
    let server = Ingest::start(Answer::Accept).await;
    server.script([Answer::TooMany {
        retry_after: None,
        rate_limits: Some("60::key, 86400:transaction;span:organization"),
    }]);
    let transport = fast(&server.dsn()).concurrency(1).build().unwrap();
    transport.send(envelope("e"));
    transport.send(envelope("f"));
    assert!(!transport.flush(Duration::from_secs(10)), "answered 429, then limited: not delivered");
    assert_eq!(server.requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rejected_envelopes_are_dropped_without_retry() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    server.script([Answer::Status(400), Answer::Status(413), Answer::Status(403)]);
    let before = isoscope::stats();
    let transport = fast(&server.dsn()).concurrency(1).build().unwrap();
    for i in 0..3 {
        transport.send(envelope(&i.to_string()));
    }
    assert!(!transport.flush(Duration::from_secs(10)), "rejected: not delivered");
    let d = delta(before);
    assert_eq!((d.events_dropped_rejected, d.events_retried), (3, 0));
    // A wrong key is rejected by the server itself (403).
    let wrong = server.dsn().replace(KEY, "ffffffffffffffffffffffffffffffff");
    let transport = fast(&wrong).build().unwrap();
    transport.send(envelope("wrong key"));
    assert!(!transport.flush(Duration::from_secs(10)), "rejected: not delivered");
    assert_eq!(delta(before).events_dropped_rejected, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_server_never_blocks_the_app_and_flush_honours_its_timeout() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Hang).await;
    let before = isoscope::stats();
    let transport =
        fast(&server.dsn()).concurrency(1).queue_size(5).timeout(Duration::from_secs(3600)).build().unwrap();
    let guard =
        isoscope::init(Options::new().transport(transport).shutdown_timeout(Duration::from_millis(100))).unwrap();
    let app = Router::new()
        .route(
            "/",
            get(|| async {
                for i in 0..20 {
                    isoscope::capture_message(format!("while hanging {i}"), Level::Error);
                }
                "answered"
            }),
        )
        .layer(IsolationLayer::new());
    // The handler answers although the ingest server never does.
    let res = app.oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    assert_eq!(axum::body::to_bytes(res.into_body(), 64).await.unwrap(), "answered");
    server.wait_requests(1).await;

    let started = Instant::now();
    assert!(!guard.flush(Duration::from_millis(200)), "flush reports the undelivered events");
    let waited = started.elapsed();
    assert!(waited >= Duration::from_millis(200));
    assert!(waited < Duration::from_secs(5), "flush returned {waited:?} after a 200 ms timeout");
    // 1 in flight + 1 waiting for a slot + 5 queued: the rest were dropped, not waited for.
    assert!(delta(before).events_dropped_queue_full >= 13);
    let started = Instant::now();
    drop(guard); // shutdown_timeout 100 ms
    assert!(started.elapsed() < Duration::from_secs(5));
    // Every event is accounted for: the ones being delivered or queued count as shutdown drops.
    let d = isoscope::stats().since(&before);
    assert_eq!(d.events_captured, 20);
    assert_eq!(d.events_sent, 0);
    assert_eq!(d.events_dropped_shutdown, 20 - d.events_dropped_queue_full, "{d:?}");
    assert_eq!(d.events_captured, d.events_sent + d.events_dropped(), "{d:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn at_shutdown_every_event_is_sent_or_counted_against_a_failing_server() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Status(500)).await;
    let before = isoscope::stats();
    // Retries far apart: at shutdown, deliveries are waiting to retry.
    let transport = HttpTransport::builder(&server.dsn())
        .unwrap()
        .backoff(Duration::from_secs(30), Duration::from_secs(30))
        .max_retries(5)
        .concurrency(4)
        .queue_size(10)
        .build()
        .unwrap();
    let guard =
        isoscope::init(Options::new().transport(transport).shutdown_timeout(Duration::from_millis(200))).unwrap();
    for i in 0..30 {
        isoscope::capture_message(format!("failing {i}"), Level::Error);
    }
    server.wait_requests(4).await;
    let started = Instant::now();
    drop(guard);
    assert!(started.elapsed() < Duration::from_secs(5));
    let d = isoscope::stats().since(&before);
    assert_eq!(d.events_captured, 30);
    assert!(d.events_dropped_shutdown >= 4, "the 4 in flight at least: {d:?}");
    assert_eq!(d.events_captured, d.events_sent + d.events_dropped(), "{d:?}");
    // Nothing counted later either: the worker was stopped, its deliveries cancelled.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let later = isoscope::stats().since(&before);
    assert_eq!((later.events_dropped(), later.events_sent), (d.events_dropped(), d.events_sent));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_sent_to_a_shut_down_transport_is_counted() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    let transport = fast(&server.dsn()).build().unwrap();
    assert!(transport.shutdown(Duration::from_secs(1)));
    let before = isoscope::stats();
    transport.send(envelope("too late"));
    assert_eq!(isoscope::stats().since(&before).events_dropped_shutdown, 1);
    assert!(!transport.flush(Duration::from_millis(10)), "sent after shutdown: not delivered");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_server_gets_everything_once_it_answers() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Gated).await;
    let before = isoscope::stats();
    let transport = fast(&server.dsn()).concurrency(2).queue_size(50).build().unwrap();
    for i in 0..20 {
        transport.send(envelope(&format!("slow {i}")));
    }
    server.wait_requests(2).await;
    assert!(!transport.flush(Duration::from_millis(50)));
    server.release(20);
    assert!(transport.flush(Duration::from_secs(20)));
    assert_eq!(server.received().len(), 20);
    assert_eq!(delta(before).events_sent, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_dsns_are_clear_errors_from_init() {
    let _turn = TURN.lock().await;
    for (dsn, needle) in [
        ("https://o0.ingest.example/1", "missing public key"),
        ("https://key@o0.ingest.example", "missing project id"),
        ("gopher://key@host/1", "unsupported scheme"),
        ("https://key@host:70000/1", "invalid port"),
        ("https://key@bad host/1", "is not a valid URL"),
    ] {
        let err = isoscope::init(Options::new().dsn(dsn)).unwrap_err();
        assert!(matches!(err, isoscope::Error::InvalidDsn(_)), "{dsn}: {err}");
        assert!(err.to_string().contains(needle), "{dsn}: {err}");
    }
}

/// `2026-12-02T05:10:00.123Z` as seconds since the Unix epoch.
fn epoch_of(rfc3339: &str) -> f64 {
    let n = |range: std::ops::Range<usize>| rfc3339[range].parse::<i64>().unwrap();
    let (y, m, d) = (n(0..4), n(5..7), n(8..10));
    // Howard Hinnant's days-from-civil.
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let days = era * 146_097 + yoe * 365 + yoe / 4 - yoe / 100 + doy - 719_468;
    let secs: f64 = rfc3339[17..rfc3339.len() - 1].parse().unwrap();
    (days * 86_400 + n(11..13) * 3600 + n(14..16) * 60) as f64 + secs
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sent_at_is_stamped_when_each_attempt_is_sent() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    server.script([Answer::Status(503)]);
    let transport = HttpTransport::builder(&server.dsn())
        .unwrap()
        .backoff(Duration::from_millis(400), Duration::from_millis(400))
        .build()
        .unwrap();
    let event = Event::message("retried", Level::Error);
    let captured = event.timestamp;
    transport.send(Envelope::from_event(event));
    assert!(transport.flush(Duration::from_secs(10)));
    let received = server.received();
    let sent_at = epoch_of(received[0].header["sent_at"].as_str().unwrap());
    assert!(sent_at - captured >= 0.35, "the retry's sent_at is its own: {:.3} s after capture", sent_at - captured);
    assert_eq!(server.requests(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bodies_above_a_kilobyte_are_gzipped() {
    let _turn = TURN.lock().await;
    let server = Ingest::start(Answer::Accept).await;
    let transport = fast(&server.dsn()).build().unwrap();
    let mut big = Event::message("big", Level::Error);
    big.breadcrumbs = (0..50).map(|i| Breadcrumb::new(format!("step {i} of the checkout")).into()).collect();
    transport.send(Envelope::from_event(big));
    transport.send(envelope("small"));
    assert!(transport.flush(Duration::from_secs(10)));
    let plain = fast(&server.dsn()).compression(false).build().unwrap();
    let mut big = Event::message("big, plain", Level::Error);
    big.breadcrumbs = (0..50).map(|i| Breadcrumb::new(format!("step {i} of the checkout")).into()).collect();
    plain.send(Envelope::from_event(big));
    assert!(plain.flush(Duration::from_secs(10)));

    let received = server.received();
    let by_message = |m: &str| {
        received.iter().find(|r| r.event()["logentry"]["formatted"] == m).unwrap_or_else(|| panic!("{m} arrived"))
    };
    let big = by_message("big");
    assert!(big.gzip, "a large body is compressed");
    let plain_len = serde_json::to_vec(big.event()).unwrap().len();
    assert!(big.wire_len * 3 < plain_len, "compressed {} bytes vs {plain_len} of event JSON", big.wire_len);
    assert_eq!(big.event()["breadcrumbs"]["values"].as_array().unwrap().len(), 50);
    assert!(!by_message("small").gzip, "a small body is sent as it is");
    assert!(!by_message("big, plain").gzip, "compression(false) turns it off");
}

/// The nice value of this process's thread named `name` (Linux `/proc`), if there is one.
#[cfg(target_os = "linux")]
fn nice_of_thread(name: &str) -> Option<i64> {
    for task in std::fs::read_dir("/proc/self/task").ok()? {
        let dir = task.ok()?.path();
        if std::fs::read_to_string(dir.join("comm")).ok()?.trim() == name {
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // Fields after the parenthesised name: state is the 3rd field, nice the 19th.
            let rest = &stat[stat.rfind(')')? + 2..];
            return rest.split(' ').nth(16)?.parse().ok();
        }
    }
    None
}

#[cfg(target_os = "linux")]
#[test]
fn the_delivery_thread_runs_at_a_reduced_cpu_priority() {
    // (Every test's transport has the default; any thread of that name will do.)
    let reduced = HttpTransport::builder("http://k@127.0.0.1:9/1").unwrap().build().unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(nice_of_thread("isoscope-http"), Some(10), "the default is CpuPriority::Reduced, nice 10");
    drop(reduced);
}

/// `flush` tells the truth: `true` only when every event sent since the last flush was
/// accepted by the server; `false` for a refused port, a server answering 500 or 403, a full
/// queue, or events still pending at the deadline.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn flush_is_true_only_when_everything_since_the_last_flush_was_accepted() {
    let _turn = TURN.lock().await;
    let flush_after = |transport: &HttpTransport, n: usize| {
        for i in 0..n {
            transport.send(envelope(&format!("e{i}")));
        }
        transport.flush(Duration::from_secs(10))
    };
    let refused = fast(&refused_dsn()).max_retries(0).build().unwrap();
    assert!(!flush_after(&refused, 2), "a refused port delivered nothing");
    for status in [500, 403] {
        let server = Ingest::start(Answer::Status(status)).await;
        let t = fast(&server.dsn()).max_retries(1).build().unwrap();
        assert!(!flush_after(&t, 2), "a server answering {status} accepted nothing");
        t.shutdown(Duration::from_secs(1));
    }
    let healthy = Ingest::start(Answer::Accept).await;
    let t = fast(&healthy.dsn()).build().unwrap();
    assert!(flush_after(&t, 5));
    // A burst into a queue of 2 while the server holds every answer: some are dropped.
    let slow = Ingest::start(Answer::Gated).await;
    let t = fast(&slow.dsn()).queue_size(2).concurrency(1).build().unwrap();
    for i in 0..20 {
        t.send(envelope(&format!("burst {i}")));
    }
    assert!(!t.flush(Duration::from_millis(300)), "dropped at the full queue, and pending at the deadline");
    slow.release(100);
    // Everything since that flush arrives: the next flush is true again.
    assert!(t.flush(Duration::from_secs(10)));
    // (Two: the queue holds two.)
    let before = isoscope::stats();
    assert!(flush_after(&t, 2), "{:?}", delta(before));
    t.shutdown(Duration::from_secs(1));
}
