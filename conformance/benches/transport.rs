//! Capture and delivery costs.
//!
//! ```sh
//! cargo bench --bench transport
//! ```
//!
//! - `capture_message` on a request path with 100 breadcrumbs in scope, with a transport
//!   that only enqueues (baseline: building the same event without capturing it); the same
//!   with `attach_stacktrace` (the stack walk), and with the stack also resolved.
//! - Events per second delivered by `HttpTransport` to a loopback ingest server (an axum app
//!   that reads the envelope and answers 200), median of several rounds.

use std::hint::black_box;
use std::time::{Duration, Instant};

use axum::routing::post;
use axum::Router;
use criterion::{criterion_group, Criterion};
use isoscope::{Breadcrumb, Envelope, Event, HttpTransport, Level, Options, Transport};

/// Enqueues and forgets, like a transport whose worker keeps up.
struct EnqueueOnly(std::sync::mpsc::SyncSender<Envelope>);

impl Transport for EnqueueOnly {
    fn send(&self, envelope: Envelope) {
        let _ = self.0.try_send(envelope);
    }
}

fn capture(c: &mut Criterion) {
    let (tx, rx) = std::sync::mpsc::sync_channel(1024);
    std::thread::spawn(move || for _ in rx {});
    let _guard = isoscope::init(Options::new().transport(EnqueueOnly(tx))).unwrap();
    let request = isoscope::isolation_scope().fork();
    let _bound = request.enter();
    for i in 0..100 {
        isoscope::add_breadcrumb(Breadcrumb::new(format!("step {i}")).category("app"));
    }
    isoscope::set_tag("tenant", "acme");
    c.bench_function("event_message_baseline", |b| b.iter(|| black_box(Event::message("failed", Level::Error))));
    c.bench_function("capture_message_100_breadcrumbs", |b| {
        b.iter(|| black_box(isoscope::capture_message("failed", Level::Error)))
    });

    // The same with the capture site's stack: the walk on the calling thread (addresses only)...
    let (tx2, rx2) = std::sync::mpsc::sync_channel(1024);
    std::thread::spawn(move || for _ in rx2 {});
    let attaching = isoscope::Client::new(Options::new().attach_stacktrace(true).transport(EnqueueOnly(tx2))).unwrap();
    attaching.bind_to(&request);
    c.bench_function("capture_message_100_breadcrumbs_with_stack", |b| {
        b.iter(|| black_box(isoscope::capture_message("failed", Level::Error)))
    });
    // ...and what symbolication adds, on whichever thread resolves it (here the caller's:
    // `MemoryTransport` resolves on `send`).
    let memory = isoscope::MemoryTransport::new();
    let resolving = isoscope::Client::new(Options::new().attach_stacktrace(true).transport(memory.clone())).unwrap();
    resolving.bind_to(&request);
    c.bench_function("capture_message_100_breadcrumbs_with_stack_resolved", |b| {
        b.iter(|| {
            black_box(isoscope::capture_message("failed", Level::Error));
            memory.clear();
        })
    });
}

/// A typical error event: a message, 20 breadcrumbs, tags, an HTTP request (about 3 KB of JSON).
fn typical_event(i: usize) -> Event {
    let mut event = Event::message(format!("event {i}: upstream timed out"), Level::Error);
    event.breadcrumbs =
        (0..20).map(|j| Breadcrumb::new(format!("GET /api/items/{j} -> 200")).category("http").into()).collect();
    for (k, v) in [("tenant", "acme"), ("region", "eu-west-1"), ("route", "/orders/{id}")] {
        event.tags.insert(k.into(), v.into());
    }
    event.transaction = Some("/orders/{id}".into());
    event.server_name = Some("web-7".into());
    event.contexts.insert("os".into(), serde_json::json!({"type": "os", "name": "Linux", "version": "6.1.0"}));
    event
}

/// Events per second `HttpTransport` delivers to a loopback server, gzip on and off in
/// interleaved rounds; prints the medians and their ratio.
fn throughput() {
    const EVENTS: usize = 5_000;
    const ROUNDS: usize = 7;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let addr = rt.block_on(async {
        let app = Router::new().route(
            "/api/{project}/envelope/",
            post(|body: axum::body::Bytes| async move { format!("{{\"len\":{}}}", body.len()) }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        addr
    });
    let dsn = format!("http://0123456789abcdef0123456789abcdef@{addr}/1");
    let plain_bytes = Envelope::from_event(typical_event(0)).finish().to_bytes(None);
    let size = plain_bytes.len();
    let gzipped = {
        use std::io::Write;
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(&plain_bytes).unwrap();
        e.finish().unwrap().len()
    };
    let mut rates = [Vec::new(), Vec::new()]; // [gzip, plain]
    for round in 0..ROUNDS {
        // Alternate which goes first: the first of a pair meets a colder server.
        for (slot, compression) in if round % 2 == 0 { [(0, true), (1, false)] } else { [(1, false), (0, true)] } {
            let transport =
                HttpTransport::builder(&dsn).unwrap().queue_size(EVENTS).compression(compression).build().unwrap();
            let before = isoscope::stats().events_sent;
            let start = Instant::now();
            for i in 0..EVENTS {
                transport.send(Envelope::from_event(typical_event(i)));
            }
            assert!(transport.flush(Duration::from_secs(120)), "delivery did not finish");
            let elapsed = start.elapsed();
            assert_eq!(isoscope::stats().events_sent - before, EVENTS as u64, "every event delivered");
            rates[slot].push(EVENTS as f64 / elapsed.as_secs_f64());
        }
    }
    let median = |r: &mut Vec<f64>| {
        r.sort_by(f64::total_cmp);
        r[ROUNDS / 2]
    };
    let (gzip, plain) = (median(&mut rates[0]), median(&mut rates[1]));
    println!(
        "http_transport_loopback ({size}-byte envelopes, {gzipped} gzipped): gzip median {gzip:.0} events/s, plain {plain:.0} \
         events/s, gzip/plain {:.2}, {ROUNDS} interleaved rounds of {EVENTS}",
        gzip / plain
    );
}

criterion_group!(benches, capture);

fn main() {
    benches();
    throughput();
    Criterion::default().configure_from_args().final_summary();
}
