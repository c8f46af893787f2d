//! What delivering one event costs the sending machine: CPU time of the SDK's transport thread
//! per event sent over real HTTP to a loopback ingest server that accepts everything.
//!
//! ```sh
//! cargo run --release --manifest-path benches/compare/Cargo.toml --bin delivery [-- --events 4000 --rounds 5]
//! ```
//!
//! The storm bench (`--bin http`) shows what this costs a saturated server; this measures it
//! alone. Each SDK captures `capture_error` (a 2-level chain) in a scope holding 100
//! breadcrumbs and 10 tags, in batches the queue takes whole (`--batch`, default 20; sentry's
//! queue holds 30), flushing after each batch so that nothing is dropped. The figure is the CPU time of the
//! transport thread (its `/proc/self/task/<tid>/schedstat`, nanosecond resolution) divided
//! by the events the server received: everything that thread does for an event (isoscope:
//! the deferred merge, scrubbing, serialization, gzip, the HTTP request; sentry: serialization
//! and the request; the capture itself ran on the calling thread for both). The ingest server
//! runs on its own thread and is not counted. Also reported: how often the transport thread
//! was woken after blocking (voluntary context switches), per event: a burst of captures
//! handed over while it waits should wake it once, not once per event (`--batch 1` for the
//! other extreme). `--no-gzip` turns isoscope's compression off (sentry-rust's transport does
//! not compress). Medians of interleaved rounds.

use std::sync::atomic::Ordering;
use std::time::Duration;

use isoscope_compare::{accept_all_ingest, arg, fill_iso, filled_sentry_hub, median, unavailable};

const BREADCRUMBS: usize = 100;
const TAGS: usize = 10;

/// CPU nanoseconds the threads of this process named `name` have run so far, and how often
/// they were woken after blocking (voluntary context switches).
fn thread_counters(name: &str) -> (u64, u64) {
    let (mut cpu, mut woken) = (0, 0);
    for task in std::fs::read_dir("/proc/self/task").expect("/proc/self/task (Linux only)").flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim_end() == name {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            cpu += stat.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
            let status = std::fs::read_to_string(task.path().join("status")).unwrap_or_default();
            woken += status
                .lines()
                .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|v| v.trim().parse::<u64>().ok())
                .unwrap_or(0);
        }
    }
    (cpu, woken)
}

/// The names of this process's threads (to find the transport thread's).
fn thread_names() -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir("/proc/self/task")
        .map(|d| d.flatten().map(|t| std::fs::read_to_string(t.path().join("comm")).unwrap_or_default()))
        .into_iter()
        .flatten()
        .map(|n| n.trim_end().to_owned())
        .collect();
    names.sort();
    names.dedup();
    names
}

/// Sends `events` in flushed batches; CPU µs of the thread `thread` per event received, and
/// its wake-ups per event.
fn measure(
    thread: &str,
    events: usize,
    batch_size: usize,
    received: &std::sync::atomic::AtomicU64,
    batch: &dyn Fn(),
) -> (f64, f64) {
    let (cpu, woken) = thread_counters(thread);
    let got = received.load(Ordering::Relaxed);
    for _ in 0..events / batch_size {
        batch();
    }
    let delivered = received.load(Ordering::Relaxed) - got;
    assert_eq!(delivered as usize, events / batch_size * batch_size, "every event reached the server");
    let (cpu_after, woken_after) = thread_counters(thread);
    ((cpu_after - cpu) as f64 / 1e3 / delivered as f64, (woken_after - woken) as f64 / delivered as f64)
}

fn main() {
    let events: usize = arg("--events").unwrap_or(4_000);
    let rounds: usize = arg("--rounds").unwrap_or(5);
    // Sentry's queue holds 30: a batch it takes whole.
    let batch: usize = arg::<usize>("--batch").unwrap_or(20).clamp(1, 30);
    let (dsn, received) = accept_all_ingest();

    let gzip = !std::env::args().any(|a| a == "--no-gzip");
    let transport = isoscope::HttpTransport::builder(&dsn).unwrap().compression(gzip).build().unwrap();
    let iso = isoscope::init(isoscope::Options::new().transport(transport)).unwrap();
    let scope = isoscope::isolation_scope().fork();
    fill_iso(&scope, BREADCRUMBS, TAGS);
    let iso_batch = || {
        let _bound = scope.enter();
        for _ in 0..batch {
            isoscope::capture_error(&unavailable());
        }
        assert!(iso.flush(Duration::from_secs(30)), "isoscope delivered the batch");
    };

    let mut options = sentry::ClientOptions::default();
    options.dsn = Some(dsn.parse().unwrap());
    let sentry_guard = sentry::init(options);
    let hub = filled_sentry_hub(BREADCRUMBS, TAGS);
    let sentry_batch = || {
        sentry::Hub::run(hub.clone(), || {
            for _ in 0..batch {
                sentry::capture_error(&unavailable());
            }
        });
        assert!(sentry_guard.flush(Some(Duration::from_secs(30))), "sentry delivered the batch");
    };

    // Warm up (connections, buffers) and find the transport threads.
    iso_batch();
    sentry_batch();
    let names = thread_names();
    let sentry_thread = names
        .iter()
        .find(|n| n.starts_with("sentry-transpor"))
        .unwrap_or_else(|| panic!("sentry's transport thread among {names:?}"))
        .clone();

    let (mut iso, mut sentry) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let run_iso = || measure("isoscope-http", events, batch, &received, &iso_batch);
        let run_sentry = || measure(&sentry_thread, events, batch, &received, &sentry_batch);
        if round % 2 == 0 {
            iso.push(run_iso());
            sentry.push(run_sentry());
        } else {
            sentry.push(run_sentry());
            iso.push(run_iso());
        }
    }
    let cpu = |v: &[(f64, f64)]| v.iter().map(|s| s.0).collect::<Vec<_>>();
    let wakes = |v: &[(f64, f64)]| median(v.iter().map(|s| s.1).collect());
    let (iso_m, sentry_m) = (median(cpu(&iso)), median(cpu(&sentry)));
    println!("the transport thread per delivered event, {events} events x {rounds} rounds, batches of {batch}");
    println!("                          CPU µs  wake-ups  CPU µs of each round");
    println!("  isoscope HttpTransport: {iso_m:6.1}  {:8.2}  {:.1?}", wakes(&iso), cpu(&iso));
    println!("  sentry reqwest:         {sentry_m:6.1}  {:8.2}  {:.1?}", wakes(&sentry), cpu(&sentry));
    println!("  isoscope / sentry CPU:  {:6.2}", iso_m / sentry_m);
}
