//! Scope memory of an in-flight request: heap bytes still held while N requests, whose handler
//! has added 10 breadcrumbs and a tag, wait mid-flight, minus the same with a bare router.
//!
//! ```sh
//! cargo run --release --manifest-path benches/compare/Cargo.toml --bin memory
//! ```
//!
//! `--panic-rss`: resident memory (`VmRSS`) before the first panic event, right after it was
//! delivered (the local sink, to /dev/null: symbolized and serialized on the transport's
//! thread), and once the symbolizer's thread, idle for 10 s, has exited — what stays after a panic. This
//! binary has line tables and function names (`debug = 1`), like a server built as the docs
//! recommend.

use std::alloc::System;
use std::sync::Arc;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use stats_alloc::{Region, StatsAlloc, INSTRUMENTED_SYSTEM};
use tokio::sync::{Barrier, Semaphore};
use tower::ServiceExt;

#[global_allocator]
static GLOBAL: &StatsAlloc<System> = &INSTRUMENTED_SYSTEM;

const IN_FLIGHT: usize = 1000;

use isoscope_compare::DropAll;

fn router(layer: bool, arrived: Arc<Barrier>, release: Arc<Semaphore>) -> Router {
    let handler = move || {
        let (arrived, release) = (arrived.clone(), release.clone());
        async move {
            if layer {
                for i in 0..10 {
                    isoscope::add_breadcrumb(isoscope::Breadcrumb::new(format!("step {i} of the request")));
                }
                isoscope::set_tag("handler", "memory");
            }
            arrived.wait().await;
            release.acquire().await.unwrap().forget();
            "ok"
        }
    };
    let app = Router::new().route("/items/{id}", get(handler));
    if layer {
        app.layer(isoscope::IsolationLayer::new())
    } else {
        app
    }
}

/// Net heap bytes held while `IN_FLIGHT` requests are parked mid-handler.
async fn held_bytes(layer: bool) -> isize {
    let arrived = Arc::new(Barrier::new(IN_FLIGHT + 1));
    let release = Arc::new(Semaphore::new(0));
    let app = router(layer, arrived.clone(), release.clone());
    // Warm up (lazy statics, thread-local caches, allocator pools).
    let warm = Arc::new(Barrier::new(2));
    let warm_app = router(layer, warm.clone(), release.clone());
    let w = tokio::spawn(warm_app.oneshot(Request::get("/items/1").body(Body::empty()).unwrap()));
    warm.wait().await;
    release.add_permits(1);
    w.await.unwrap().unwrap();

    let region = Region::new(GLOBAL);
    let tasks: Vec<_> = (0..IN_FLIGHT)
        .map(|i| {
            let req = Request::get(format!("/items/{i}"))
                .header("host", "shop.example")
                .header("user-agent", "bench/1.0")
                .header("accept", "application/json")
                .body(Body::empty())
                .unwrap();
            tokio::spawn(app.clone().oneshot(req))
        })
        .collect();
    arrived.wait().await;
    let stats = region.change();
    let held = stats.bytes_allocated as isize - stats.bytes_deallocated as isize;
    release.add_permits(IN_FLIGHT);
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    held
}

/// `VmRSS` of this process, KiB.
fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap_or_default();
    line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0)
}

#[inline(never)]
fn charge_card(amount: &str) -> u64 {
    amount.parse().expect("amount is a number")
}

/// Whether the symbolizer's thread (`isoscope-syms`) runs.
fn symbolizer_running() -> bool {
    std::fs::read_dir("/proc/self/task")
        .into_iter()
        .flatten()
        .flatten()
        .any(|task| std::fs::read_to_string(task.path().join("comm")).is_ok_and(|name| name.trim() == "isoscope-syms"))
}

/// Prints RSS before and after the first panic event (see the module docs).
fn panic_rss() {
    std::panic::set_hook(Box::new(|_| {}));
    let transport = isoscope::LocalTransport::to_file("/dev/null").unwrap();
    let guard = isoscope::init(isoscope::Options::new().transport(transport)).unwrap();
    // Warm: a first capture and delivery without a stack (threads, buffers, lazy statics).
    isoscope::capture_message("warm", isoscope::Level::Info);
    guard.flush(std::time::Duration::from_secs(10));
    let before = rss_kib();
    for round in 0..3 {
        let started = std::time::Instant::now();
        assert!(std::thread::spawn(|| charge_card("twelve")).join().is_err());
        guard.flush(std::time::Duration::from_secs(30));
        let took = started.elapsed();
        let delivered = rss_kib();
        // The symbolizer keeps the parsed debug info 10 s after the last stack it resolved,
        // then frees it and exits.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(40);
        std::thread::sleep(std::time::Duration::from_secs(9));
        while symbolizer_running() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(100));
        }
        let idle = rss_kib();
        if std::env::var_os("SMAPS").is_some() {
            print_big_mappings();
        }
        println!(
            "panic {} (captured and delivered in {:.0?}): RSS before the first panic {} KiB; after delivery {} KiB \
             (+{:.1} MiB); idle {} KiB (+{:.1} MiB)",
            round + 1,
            took,
            before,
            delivered,
            (delivered as f64 - before as f64) / 1024.0,
            idle,
            (idle as f64 - before as f64) / 1024.0
        );
    }
}

/// The mappings with more than 1 MiB resident (`SMAPS=1`), to see what the RSS is.
fn print_big_mappings() {
    let smaps = std::fs::read_to_string("/proc/self/smaps").unwrap_or_default();
    let mut name = String::new();
    for line in smaps.lines() {
        if line.chars().next().is_some_and(|c| c.is_ascii_hexdigit()) && line.contains('-') {
            name = line.to_owned();
        } else if let Some(rss) = line.strip_prefix("Rss:") {
            let kib: u64 = rss.trim().trim_end_matches("kB").trim().parse().unwrap_or(0);
            if kib > 1024 {
                println!("  {kib:>8} KiB  {name}");
            }
        }
    }
}

/// The `--queue` app: each request adds 10 breadcrumbs and a tag and captures one error.
fn queue_app() -> Router {
    let handler = || async {
        for i in 0..10 {
            isoscope::add_breadcrumb(isoscope::Breadcrumb::new(format!("step {i} of the request")));
        }
        isoscope::set_tag("handler", "memory");
        let err = "x".parse::<u32>().unwrap_err();
        isoscope::capture_error(&err);
    };
    Router::new().route("/", get(handler)).layer(isoscope::IsolationLayer::new())
}

/// `--queue`: the heap the HTTP transport's queue really holds against its estimate
/// (`Envelope::estimated_size`, what `max_queue_bytes` bounds): a server that accepts
/// connections and never answers, and 2,000 requests that each add 10 breadcrumbs and capture
/// one error, then end (their scopes live on in the queued events only).
async fn queue_bytes() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for conn in listener.incoming() {
            held.push(conn); // accepted, never answered
        }
    });
    let guard = isoscope::init(
        isoscope::Options::new()
            .dsn(format!("http://0123456789abcdef0123456789abcdef@{addr}/1"))
            .max_queue_bytes(64 << 20),
    )
    .unwrap();
    let app = queue_app();
    const N: usize = 2000;
    let region = Region::new(GLOBAL);
    for _ in 0..N {
        let _ = app.clone().oneshot(Request::get("/").body(Body::empty()).unwrap()).await.unwrap();
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let change = region.change();
    let held = change.bytes_allocated as i64 - change.bytes_deallocated as i64;
    // The estimate of one such envelope, as the queue counts it.
    struct Measure(Arc<std::sync::Mutex<usize>>);
    impl isoscope::Transport for Measure {
        fn send(&self, envelope: isoscope::Envelope) {
            *self.0.lock().unwrap() = envelope.estimated_size();
        }
    }
    let measured = Arc::new(std::sync::Mutex::new(0usize));
    let measuring = isoscope::Client::new(isoscope::Options::new().transport(Measure(measured.clone()))).unwrap();
    let request = queue_app().oneshot(Request::get("/").body(Body::empty()).unwrap());
    measuring.new_scope().bind(request).await.unwrap();
    let estimate = *measured.lock().unwrap();
    let s = isoscope::stats();
    println!(
        "queue: {N} events captured, {} dropped; heap held {:.0} bytes per queued event, estimated {estimate} (held / estimate {:.2})",
        s.events_dropped(),
        held as f64 / N as f64,
        held as f64 / N as f64 / estimate as f64
    );
    drop(guard);
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    if std::env::args().any(|a| a == "--panic-rss") {
        return panic_rss();
    }
    if std::env::args().any(|a| a == "--queue") {
        return queue_bytes().await;
    }
    let _guard = isoscope::init(isoscope::Options::new().transport(DropAll)).unwrap();
    let mut per_request = Vec::new();
    for _ in 0..5 {
        let bare = held_bytes(false).await;
        let layered = held_bytes(true).await;
        per_request.push((layered - bare) as f64 / IN_FLIGHT as f64);
    }
    per_request.sort_by(f64::total_cmp);
    println!(
        "scope memory per in-flight request (10 breadcrumbs + 1 tag, {IN_FLIGHT} in flight): median {:.0} bytes over 5 runs {:?}",
        per_request[2],
        per_request.iter().map(|b| b.round() as i64).collect::<Vec<_>>()
    );
}
