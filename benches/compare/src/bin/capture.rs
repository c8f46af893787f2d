//! What a capture costs the thread that captures: isoscope's `capture_message` and
//! `capture_error` next to sentry-rust's, in one process, interleaved in rounds.
//!
//! ```sh
//! cargo run --release --manifest-path benches/compare/Cargo.toml --bin capture [-- --rounds 21]
//! ```
//!
//! Both SDKs capture inside a request-like scope holding 100 breadcrumbs and 10 tags, with a
//! transport that drops the envelope where it is handed over (isoscope's work that waits for
//! the transport thread is then never done: that is the point, it is not the caller's). A
//! third isoscope variant hands the events to a real `HttpTransport` delivering to a loopback
//! server that accepts everything: the calling thread's cost including the queue hand-off,
//! with the transport's thread busy on the other core. `capture_error` reports a 3-level
//! `source()` chain. A fourth reads the event in `send` (finishing it on the calling thread:
//! what one capture costs in all, before serialization). Reported: medians over rounds of ns per capture, and the ratios.
//!
//! `--profile <iso-message|iso-error|sentry-message|sentry-error|none> --captures N` runs one
//! of them N times and exits, for `valgrind --tool=callgrind` (`scripts/instructions.sh`).

use std::fmt;
use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use isoscope_compare::{accept_all_ingest, arg, fill_iso, filled_sentry_hub, median, DropAll, SentryDropAll};

const BREADCRUMBS: usize = 100;
const TAGS: usize = 10;
const PER_SAMPLE: usize = 1_000;

/// Reads the event (finishing it: the merge of the scopes, scrubbing, limits) and drops it: what
/// a capture costs in all before serialization, wherever that work runs.
struct FinishHere;

impl isoscope::Transport for FinishHere {
    fn send(&self, envelope: isoscope::Envelope) {
        black_box(envelope.finish());
    }
}

/// `checkout failed` ← `payment service unavailable` ← `connection refused`.
#[derive(Debug)]
struct Checkout(Payment);
#[derive(Debug)]
struct Payment(std::io::Error);

impl fmt::Display for Checkout {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("checkout failed")
    }
}
impl std::error::Error for Checkout {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}
impl fmt::Display for Payment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("payment service unavailable")
    }
}
impl std::error::Error for Payment {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

fn error() -> Checkout {
    Checkout(Payment(std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused")))
}

#[derive(Clone, Copy, PartialEq)]
enum Kind {
    IsoMessage,
    IsoError,
    IsoMessageHttp,
    IsoMessageFinished,
    SentryMessage,
    SentryError,
}

impl Kind {
    const ALL: [Kind; 6] = [
        Kind::IsoMessage,
        Kind::IsoError,
        Kind::IsoMessageHttp,
        Kind::IsoMessageFinished,
        Kind::SentryMessage,
        Kind::SentryError,
    ];

    fn name(self) -> &'static str {
        match self {
            Kind::IsoMessage => "iso-message",
            Kind::IsoError => "iso-error",
            Kind::IsoMessageHttp => "iso-message-http",
            Kind::IsoMessageFinished => "iso-message-finished",
            Kind::SentryMessage => "sentry-message",
            Kind::SentryError => "sentry-error",
        }
    }
}

/// The scopes both SDKs capture in: a request's, with 100 breadcrumbs and 10 tags.
struct Scopes {
    iso: isoscope::ScopeHandle,
    iso_http: isoscope::ScopeHandle,
    http: isoscope::Client,
    iso_finished: isoscope::ScopeHandle,
    _finished: isoscope::Client,
    sentry: Arc<sentry::Hub>,
}

fn setup(ingest: Option<String>) -> Scopes {
    let iso = isoscope::isolation_scope().fork();
    fill_iso(&iso, BREADCRUMBS, TAGS);
    let iso_http = isoscope::isolation_scope().fork();
    fill_iso(&iso_http, BREADCRUMBS, TAGS);
    let dsn = ingest.unwrap_or_else(|| "http://0123456789abcdef0123456789abcdef@127.0.0.1:9/1".to_owned());
    let transport = isoscope::HttpTransport::builder(&dsn).unwrap().queue_size(4 * PER_SAMPLE).build().unwrap();
    let http = isoscope::Client::new(isoscope::Options::new().transport(transport)).unwrap();
    http.bind_to(&iso_http);
    let iso_finished = isoscope::isolation_scope().fork();
    fill_iso(&iso_finished, BREADCRUMBS, TAGS);
    let finished = isoscope::Client::new(isoscope::Options::new().transport(FinishHere)).unwrap();
    finished.bind_to(&iso_finished);
    let sentry = filled_sentry_hub(BREADCRUMBS, TAGS);
    Scopes { iso, iso_http, http, iso_finished, _finished: finished, sentry }
}

/// Runs `n` captures of `kind`; ns per capture.
fn run(kind: Kind, scopes: &Scopes, n: usize) -> f64 {
    let err = error();
    let start = Instant::now();
    match kind {
        Kind::IsoMessage | Kind::IsoError | Kind::IsoMessageHttp | Kind::IsoMessageFinished => {
            let scope = match kind {
                Kind::IsoMessageHttp => &scopes.iso_http,
                Kind::IsoMessageFinished => &scopes.iso_finished,
                _ => &scopes.iso,
            };
            let _bound = scope.enter();
            for _ in 0..n {
                match kind {
                    Kind::IsoError => black_box(isoscope::capture_error(black_box(&err))),
                    _ => black_box(isoscope::capture_message(black_box("order failed"), isoscope::Level::Error)),
                };
            }
        }
        Kind::SentryMessage | Kind::SentryError => sentry::Hub::run(scopes.sentry.clone(), || {
            for _ in 0..n {
                match kind {
                    Kind::SentryError => black_box(sentry::capture_error(black_box(&err))),
                    _ => black_box(sentry::capture_message(black_box("order failed"), sentry::Level::Error)),
                };
            }
        }),
    }
    let ns = start.elapsed().as_nanos() as f64 / n as f64;
    if kind == Kind::IsoMessageHttp {
        assert!(scopes.http.flush(Duration::from_secs(60)), "the loopback server took every event");
    }
    ns
}

fn main() {
    let _iso = isoscope::init(isoscope::Options::new().transport(DropAll)).unwrap();
    let mut sentry_options = sentry::ClientOptions::default();
    sentry_options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
    sentry_options.transport =
        Some(Arc::new(|_: &sentry::ClientOptions| Arc::new(SentryDropAll) as Arc<dyn sentry::Transport>));
    let _sentry = sentry::init(sentry_options);

    if let Some(name) = arg::<String>("--profile") {
        let scopes = setup(None);
        let n = arg("--captures").unwrap_or(1_000);
        if name != "none" {
            let kind = *Kind::ALL.iter().find(|k| k.name() == name).expect("unknown kind");
            assert!(kind != Kind::IsoMessageHttp, "iso-message-http needs a server: not for profiling");
            run(kind, &scopes, n);
        }
        return;
    }

    let scopes = setup(Some(accept_all_ingest().0));
    let rounds: usize = arg("--rounds").unwrap_or(21);
    for kind in Kind::ALL {
        run(kind, &scopes, PER_SAMPLE / 4); // warm up
    }
    let before = isoscope::stats();
    let mut samples: Vec<Vec<f64>> = vec![Vec::new(); Kind::ALL.len()];
    for round in 0..rounds {
        // Rotate who goes first: the first of a round meets colder caches.
        for i in 0..Kind::ALL.len() {
            let k = (i + round) % Kind::ALL.len();
            samples[k].push(run(Kind::ALL[k], &scopes, PER_SAMPLE));
        }
    }
    let stats = isoscope::stats().since(&before);
    let m: Vec<f64> = samples.into_iter().map(median).collect();
    println!("capture with {BREADCRUMBS} breadcrumbs and {TAGS} tags in scope: median ns per capture over {rounds} rounds of {PER_SAMPLE}");
    println!(
        "| capture | isoscope (drop) | isoscope (HttpTransport) | isoscope (finished in send) | sentry-rust (drop) | \
         isoscope/sentry |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    println!("| capture_message | {:.0} | {:.0} | {:.0} | {:.0} | {:.2} |", m[0], m[2], m[3], m[4], m[0] / m[4]);
    println!("| capture_error (3 levels) | {:.0} | | | {:.0} | {:.2} |", m[1], m[5], m[1] / m[5]);
    println!(
        "HttpTransport: {} events sent, {} dropped (queue full {})",
        stats.events_sent,
        stats.events_dropped(),
        stats.events_dropped_queue_full
    );
    let json = serde_json::json!({
        "iso_message_ns": m[0], "iso_error_ns": m[1], "iso_message_http_ns": m[2],
        "iso_message_finished_ns": m[3], "sentry_message_ns": m[4], "sentry_error_ns": m[5],
        "message_ratio": m[0] / m[4], "error_ratio": m[1] / m[5],
    });
    println!("{json}");
}
