//! What a `tracing::info!` with 3 fields costs the thread that logs, inside a request, when it
//! becomes a breadcrumb and a Sentry log: isoscope's `BreadcrumbLayer` next to sentry-rust's
//! tracing layer (`logs` feature, `enable_logs`), against a subscriber with no layer, in one
//! process, interleaved in rounds. Then the batching path's throughput: records per second
//! through attributes, serialization, gzip and HTTP to a loopback server.
//!
//! ```sh
//! cargo run --release --manifest-path benches/compare/Cargo.toml --bin logs [-- --rounds 21]
//! ```
//!
//! Both SDKs drop the envelopes where their transport gets them; their batching threads do the
//! rest on the other core. Reported: medians over rounds of ns per call, the cost each layer
//! adds to the bare subscriber's, and the ratio.
//!
//! `--profile <iso|sentry|bare|none> --logs N` logs N times (in chunks of 500, pausing for the
//! batching threads) and exits, for `valgrind --tool=callgrind --separate-threads=yes`
//! (`scripts/instructions.py` reads the calling thread's count).

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use isoscope_compare::{accept_all_ingest, arg, median, DropAll, SentryDropAll};
use tracing_subscriber::prelude::*;

const PER_SAMPLE: usize = 500;

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    Bare,
    Iso,
    Sentry,
    IsoCrumbOnly,
}

impl Kind {
    const ALL: [Kind; 4] = [Kind::Bare, Kind::Iso, Kind::Sentry, Kind::IsoCrumbOnly];

    fn name(self) -> &'static str {
        match self {
            Kind::Bare => "bare",
            Kind::Iso => "iso",
            Kind::Sentry => "sentry",
            Kind::IsoCrumbOnly => "iso-crumb",
        }
    }
}

/// The three subscribers, and the request scopes the calls are made in.
struct Setup {
    subscribers: [tracing::Dispatch; 4],
    iso: isoscope::ScopeHandle,
    sentry: Arc<sentry::Hub>,
}

fn setup() -> Setup {
    let bare = tracing::Dispatch::new(tracing_subscriber::registry());
    let iso_layer = isoscope::integrations::tracing::BreadcrumbLayer::new();
    let iso = tracing::Dispatch::new(tracing_subscriber::registry().with(iso_layer));
    // The combined layer: `INFO` as a breadcrumb and a log, as isoscope's layer does (0.49's
    // split layers would be two, `BreadcrumbLayer` and `LogLayer`).
    #[allow(deprecated)]
    let sentry_layer = sentry::integrations::tracing::layer();
    let sentry = tracing::Dispatch::new(tracing_subscriber::registry().with(sentry_layer));
    let crumb_only = isoscope::integrations::tracing::BreadcrumbLayer::new().logs_from(None);
    let crumb_only = tracing::Dispatch::new(tracing_subscriber::registry().with(crumb_only));
    let scope = isoscope::isolation_scope().fork();
    scope.configure(|s| s.set_tag("tenant", "acme"));
    let hub = Arc::new(sentry::Hub::new_from_top(sentry::Hub::main()));
    hub.configure_scope(|s| s.set_tag("tenant", "acme"));
    Setup { subscribers: [bare, iso, sentry, crumb_only], iso: scope, sentry: hub }
}

/// `n` calls under `kind`'s subscriber, in a request's scope; ns per call.
fn run(kind: Kind, setup: &Setup, n: usize) -> f64 {
    let dispatch = &setup.subscribers[kind as usize];
    let body = || {
        let start = Instant::now();
        for i in 0..n {
            tracing::info!(order_id = black_box(i as u64), tenant = "acme", express = true, "order packed");
        }
        start.elapsed().as_nanos() as f64 / n as f64
    };
    tracing::dispatcher::with_default(dispatch, || match kind {
        Kind::Sentry => sentry::Hub::run(setup.sentry.clone(), body),
        _ => {
            let _bound = setup.iso.enter();
            body()
        }
    })
}

/// Records per second through isoscope's batching path to a loopback server: logged in
/// bursts of 900 (under the 1,000-record buffer), each burst flushed.
fn throughput() -> (f64, u64) {
    let (dsn, _received) = accept_all_ingest();
    let client = isoscope::Client::new(isoscope::Options::new().dsn(dsn).enable_logs(true)).unwrap();
    let scope = client.new_scope();
    let before = isoscope::stats();
    let start = Instant::now();
    let bursts = 40;
    for _ in 0..bursts {
        scope.run(|| {
            for i in 0..900u64 {
                isoscope::logs::info!(order_id = i, tenant = "acme", express = true; "order {} packed", i);
            }
        });
        assert!(client.flush(Duration::from_secs(60)), "the loopback server took every record");
    }
    let secs = start.elapsed().as_secs_f64();
    let sent = isoscope::stats().since(&before).items(isoscope::DataCategory::LogItem).sent();
    (sent as f64 / secs, sent)
}

fn main() {
    let _iso = isoscope::init(isoscope::Options::new().enable_logs(true).transport(DropAll)).unwrap();
    let mut sentry_options = sentry::ClientOptions::default();
    sentry_options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
    #[allow(deprecated)] // still what sentry-tracing's automatic logs obey in 0.49
    {
        sentry_options.enable_logs = true;
    }
    sentry_options.transport =
        Some(Arc::new(|_: &sentry::ClientOptions| Arc::new(SentryDropAll) as Arc<dyn sentry::Transport>));
    let _sentry = sentry::init(sentry_options);
    let setup = setup();

    if let Some(name) = arg::<String>("--profile") {
        let n: usize = arg("--logs").unwrap_or(1_000);
        if name != "none" {
            let kind = *Kind::ALL.iter().find(|k| k.name() == name).expect("unknown kind");
            // In chunks the batching threads can take whole (under valgrind they run one at a
            // time): a full buffer would make the calling thread's count the cheaper drop's.
            for _ in 0..n / 500 {
                run(kind, &setup, 500);
                std::thread::sleep(Duration::from_millis(400));
            }
            let dropped = isoscope::stats().items(isoscope::DataCategory::LogItem).dropped();
            if dropped > 0 {
                eprintln!("logs: {dropped} records dropped (buffer full): the count is not the records'");
                std::process::exit(2);
            }
        }
        // Exit here: the clients' shutdown would turn pending records into envelopes on this
        // thread, which the per-call count must not include.
        std::process::exit(0);
    }

    let rounds: usize = arg("--rounds").unwrap_or(21);
    for kind in Kind::ALL {
        run(kind, &setup, PER_SAMPLE / 4); // warm up
    }
    let before = isoscope::stats();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); Kind::ALL.len()];
    for round in 0..rounds {
        for i in 0..Kind::ALL.len() {
            let k = (i + round) % Kind::ALL.len();
            samples[k].push(run(Kind::ALL[k], &setup, PER_SAMPLE));
            // Let both batching threads catch up between samples: a full buffer's drop is
            // cheaper than a record, and would flatter whoever drops.
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    let logs = isoscope::stats().since(&before).items(isoscope::DataCategory::LogItem);
    let m: Vec<f64> = samples.into_iter().map(median).collect();
    let (iso_added, sentry_added) = (m[1] - m[0], m[2] - m[0]);
    println!("tracing::info! with 3 fields in a request (breadcrumb + log): median ns per call over {rounds} rounds of {PER_SAMPLE}");
    println!("| subscriber | ns per call | added to bare |");
    println!("| --- | ---: | ---: |");
    println!("| registry only (bare) | {:.0} | |", m[0]);
    println!("| + isoscope BreadcrumbLayer | {:.0} | {iso_added:.0} |", m[1]);
    println!("| + sentry-tracing layer (logs) | {:.0} | {sentry_added:.0} |", m[2]);
    println!("| + isoscope BreadcrumbLayer, logs off (breadcrumb only) | {:.0} | {:.0} |", m[3], m[3] - m[0]);
    println!("isoscope added / sentry added: {:.3}", iso_added / sentry_added);
    println!("isoscope records: {} captured, {} dropped (buffer full)", logs.captured(), logs.dropped());
    let (per_sec, sent) = throughput();
    println!("batching path: {per_sec:.0} records/s delivered to a loopback server ({sent} records)");
    let json = serde_json::json!({
        "bare_ns": m[0], "iso_ns": m[1], "sentry_ns": m[2], "iso_added_ns": iso_added,
        "sentry_added_ns": sentry_added, "ratio": iso_added / sentry_added, "records_per_sec": per_sec,
        "iso_dropped": logs.dropped(), "iso_crumb_only_ns": m[3],
    });
    println!("{json}");
}
