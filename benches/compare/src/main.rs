//! Per-request cost of `IsolationLayer` next to a bare router, a pass-through layer ("noop": what
//! axum's re-boxing of a layered route costs any layer), a hand-written minimal layer ("floor")
//! and sentry-tower, in one process, interleaved in rounds.
//!
//! ```sh
//! cargo run --release --manifest-path benches/compare/Cargo.toml [-- --rounds 15 --processes 5]
//! ```
//!
//! Every variant drives the same axum router in process (tower `oneshot`, no network) on a
//! multi-thread runtime with 2 workers: "concurrent" runs 64 client tasks at once,
//! "sequential" one request at a time. Handlers of the scoped variants push one breadcrumb and
//! set one tag; the `+capture` variants also capture a message on every 100th request (each
//! SDK with a transport that drops the event). Reported: medians over the rounds of ns per
//! request, and of the difference and ratio to `bare` measured right next to each sample (in
//! every round, each variant is paired with a `bare` run just before or just after it). The
//! rounds run in several fresh processes one after another (`--processes`, default 5) and the
//! medians are over the samples of all of them: how a variant's code and data fall into the
//! caches changes with the addresses a process gets, and one process can favour one variant by
//! more than the differences being measured.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Body;
use axum::routing::get;
use axum::Router;
use http::Request;
use tower::ServiceExt;

const CONCURRENCY: usize = 64;

use isoscope_compare::{arg, floor, floor_plus, median, DropAll, SentryDropAll};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    Bare,
    Noop,
    Floor,
    FloorPlus,
    Isoscope,
    Sentry,
    IsoscopeCapture,
    SentryCapture,
}

impl Variant {
    const ALL: [Self; 8] = [
        Self::Bare,
        Self::Noop,
        Self::Floor,
        Self::FloorPlus,
        Self::Isoscope,
        Self::Sentry,
        Self::IsoscopeCapture,
        Self::SentryCapture,
    ];

    fn name(self) -> &'static str {
        match self {
            Self::Bare => "bare",
            Self::Noop => "noop",
            Self::Floor => "floor",
            Self::FloorPlus => "floor+body+clock",
            Self::Isoscope => "isoscope",
            Self::Sentry => "sentry",
            Self::IsoscopeCapture => "isoscope+capture",
            Self::SentryCapture => "sentry+capture",
        }
    }

    fn router(self) -> Router {
        let route = "/items/{id}";
        match self {
            Self::Bare => Router::new().route(route, get(|| async { "ok" })),
            Self::Noop => Router::new().route(route, get(|| async { "ok" })).layer(tower::layer::util::Identity::new()),
            Self::Floor => Router::new()
                .route(
                    route,
                    get(|| async {
                        floor::breadcrumb_and_tag();
                        "ok"
                    }),
                )
                .layer(floor::Layer),
            Self::FloorPlus => Router::new()
                .route(
                    route,
                    get(|| async {
                        floor_plus::breadcrumb_and_tag();
                        "ok"
                    }),
                )
                .layer(floor_plus::Layer),
            // Handlers are plain fn items (zero-sized, like the floor's closures): a handler that
            // captured a flag would cost axum an allocation per request in these variants only.
            Self::Isoscope => {
                Router::new().route(route, get(isoscope_handler::<false>)).layer(isoscope::IsolationLayer::new())
            }
            Self::IsoscopeCapture => {
                Router::new().route(route, get(isoscope_handler::<true>)).layer(isoscope::IsolationLayer::new())
            }
            Self::Sentry => sentry_router(route, sentry_handler::<false>),
            Self::SentryCapture => sentry_router(route, sentry_handler::<true>),
        }
    }
}

/// One capture every 100 requests (across all variants that capture).
fn every_100th() -> bool {
    static COUNT: AtomicU64 = AtomicU64::new(0);
    COUNT.fetch_add(1, Ordering::Relaxed).is_multiple_of(100)
}

async fn isoscope_handler<const CAPTURE: bool>() -> &'static str {
    isoscope::add_breadcrumb(isoscope::Breadcrumb::new("handled"));
    isoscope::set_tag("handler", "isoscope");
    if CAPTURE && every_100th() {
        isoscope::capture_message("every 100th", isoscope::Level::Info);
    }
    "ok"
}

async fn sentry_handler<const CAPTURE: bool>() -> &'static str {
    sentry::add_breadcrumb(sentry::Breadcrumb { message: Some("handled".into()), ..Default::default() });
    sentry::configure_scope(|s| s.set_tag("handler", "sentry"));
    if CAPTURE && every_100th() {
        sentry::capture_message("every 100th", sentry::Level::Info);
    }
    "ok"
}

fn sentry_router<H: axum::handler::Handler<T, ()>, T: 'static>(route: &str, handler: H) -> Router {
    Router::new().route(route, get(handler)).layer(
        tower::ServiceBuilder::new()
            .layer(sentry_tower::NewSentryLayer::<Request<Body>>::new_from_top())
            .layer(sentry_tower::SentryHttpLayer::new()),
    )
}

/// sentry with every request sampled (and a transport that drops everything).
fn sentry_traced_init() -> sentry::ClientInitGuard {
    let mut traced = sentry::ClientOptions::default().traces_sample_rate(1.0);
    traced.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
    traced.transport =
        Some(Arc::new(|_: &sentry::ClientOptions| Arc::new(SentryDropAll) as Arc<dyn sentry::Transport>));
    sentry::init(traced)
}

/// sentry-tower with `enable_transaction()`: a transaction per request.
fn sentry_traced_router() -> Router {
    Router::new().route("/items/{id}", get(sentry_handler::<false>)).layer(
        tower::ServiceBuilder::new()
            .layer(sentry_tower::NewSentryLayer::<Request<Body>>::new_from_top())
            .layer(sentry_tower::SentryHttpLayer::new().enable_transaction()),
    )
}

/// The request as hyper hands it to a service: its target and every header value slices of
/// one shared read buffer, so cloning one bumps a reference count. (Built from `&str`s, each
/// value would own its bytes, and a layer's first clone of it would allocate: the floor's
/// `HeaderMap` clone then cost some 1,900 instructions a request more than over HTTP, where
/// `scripts/instructions.py` measures the same request too.)
fn request() -> Request<Body> {
    const HEAD: &[u8] = b"/items/42?page=2shop.examplebench/1.0application/jsongzip, brsession=abc";
    let read = bytes::Bytes::from(HEAD.to_vec());
    let mut at = 0;
    let mut next = |len: usize| {
        at += len;
        read.slice(at - len..at)
    };
    let uri = http::Uri::from_maybe_shared(next(16)).unwrap();
    let mut request = Request::get(uri).body(Body::empty()).unwrap();
    for (name, len) in [("host", 12), ("user-agent", 9), ("accept", 16), ("accept-encoding", 8), ("cookie", 11)] {
        let value = http::HeaderValue::from_maybe_shared(next(len)).unwrap();
        request.headers_mut().append(http::HeaderName::from_static(name), value);
    }
    request
}

async fn one(app: &Router) {
    let res = app.clone().oneshot(request()).await.unwrap();
    let body = axum::body::to_bytes(res.into_body(), 1024).await.unwrap();
    assert_eq!(&body[..], b"ok");
}

/// Wall-clock and CPU (all threads of the process) ns per request for `n` requests, `tasks`
/// client tasks at once.
async fn measure(app: &Router, n: usize, tasks: usize) -> (f64, f64) {
    let cpu = cpu_time::ProcessTime::now();
    let start = Instant::now();
    let handles: Vec<_> = (0..tasks)
        .map(|_| {
            let app = app.clone();
            tokio::spawn(async move {
                for _ in 0..n / tasks {
                    one(&app).await;
                }
            })
        })
        .collect();
    for h in handles {
        h.await.unwrap();
    }
    let done = (n / tasks * tasks) as f64;
    (start.elapsed().as_nanos() as f64 / done, cpu.elapsed().as_nanos() as f64 / done)
}

fn peak_rss_kib() -> Option<u64> {
    isoscope_compare::peak_rss_kib(&std::fs::read_to_string("/proc/self/status").ok()?)
}

struct Row {
    variant: Variant,
    ns: f64,
    added: f64,
    ratio: f64,
    cpu: f64,
    cpu_added: f64,
}

/// One measurement of a variant and the `bare` measurement taken right next to it:
/// `((wall, cpu), (bare wall, bare cpu))` in ns per request.
type Pair = ((f64, f64), (f64, f64));

fn report(mode: &str, samples: &[(Variant, Vec<Pair>)]) -> Vec<Row> {
    let rows: Vec<Row> = samples
        .iter()
        .map(|(variant, s)| Row {
            variant: *variant,
            ns: median(s.iter().map(|(x, _)| x.0).collect()),
            added: median(s.iter().map(|(x, b)| x.0 - b.0).collect()),
            ratio: median(s.iter().map(|(x, b)| x.0 / b.0).collect()),
            cpu: median(s.iter().map(|(x, _)| x.1).collect()),
            cpu_added: median(s.iter().map(|(x, b)| x.1 - b.1).collect()),
        })
        .collect();
    println!("\n{mode}: median over rounds (wall clock; CPU time of all threads alongside)");
    println!("| variant | ns/request | added vs bare (ns) | ratio vs bare | CPU ns/request | CPU added (ns) |");
    println!("| --- | ---: | ---: | ---: | ---: | ---: |");
    for r in &rows {
        println!(
            "| {} | {:.0} | {:+.0} | {:.2}x | {:.0} | {:+.0} |",
            r.variant.name(),
            r.ns,
            r.added,
            r.ratio,
            r.cpu,
            r.cpu_added
        );
    }
    rows
}

fn main() {
    let rounds: usize = arg("--rounds").unwrap_or(15);
    let _iso = isoscope::init(isoscope::Options::new().release("compare@1.0").transport(DropAll)).unwrap(); // a release: sessions on
    let mut sentry_options = sentry::ClientOptions::default();
    sentry_options.dsn = Some("https://public@sentry.invalid/1".parse().unwrap());
    sentry_options.transport =
        Some(Arc::new(|_: &sentry::ClientOptions| Arc::new(SentryDropAll) as Arc<dyn sentry::Transport>));
    let _sentry = sentry::init(sentry_options);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let apps: Vec<(Variant, Router)> = Variant::ALL.iter().map(|v| (*v, v.router())).collect();
    if std::env::args().any(|a| a == "--sizes") {
        for (v, app) in &apps {
            let fut = app.clone().oneshot(request());
            println!("{}: oneshot future {} bytes", v.name(), std::mem::size_of_val(&fut));
        }
        return;
    }
    // `--added <variant> [--tasks T]`: that variant and `bare`, alternated for 31 rounds; prints
    // the median added CPU and wall-clock ns per request (to compare two builds quickly).
    if let Some(name) = arg::<String>("--added") {
        let tasks = arg("--tasks").unwrap_or(CONCURRENCY);
        let (_, bare) = apps.iter().find(|(v, _)| *v == Variant::Bare).unwrap();
        let (_, app) = apps.iter().find(|(v, _)| v.name() == name).expect("unknown variant");
        let (wall, cpu) = rt.block_on(async {
            let (mut wall, mut cpu) = (Vec::new(), Vec::new());
            for _ in 0..31 {
                let b = measure(bare, 16_000, tasks).await;
                let x = measure(app, 16_000, tasks).await;
                wall.push(x.0 - b.0);
                cpu.push(x.1 - b.1);
            }
            (median(wall), median(cpu))
        });
        println!("{name}: added {wall:.0} ns/request wall clock, {cpu:.0} CPU ns/request");
        return;
    }
    // `--traced [--tasks T]`: every request sampled in both SDKs (isoscope
    // `traces_sample_rate(1.0)`, sentry `traces_sample_rate = 1.0` with
    // `SentryHttpLayer::enable_transaction()`), each alternated with `bare` for 31 rounds; prints
    // the median added ns per request of each and their ratio.
    if std::env::args().any(|a| a == "--traced") {
        drop(_iso);
        let _iso =
            isoscope::init(isoscope::Options::new().release("compare@1.0").traces_sample_rate(1.0).transport(DropAll))
                .unwrap();
        let _sentry = sentry_traced_init();
        let tasks = arg("--tasks").unwrap_or(CONCURRENCY);
        let bare = Variant::Bare.router();
        let iso = Variant::Isoscope.router();
        let sen = sentry_traced_router();
        let (i, s) = rt.block_on(async {
            let (mut i, mut s) = (Vec::new(), Vec::new());
            for _ in 0..31 {
                let b = measure(&bare, 8_000, tasks).await;
                i.push(measure(&iso, 8_000, tasks).await.0 - b.0);
                let b = measure(&bare, 8_000, tasks).await;
                s.push(measure(&sen, 8_000, tasks).await.0 - b.0);
            }
            (median(i), median(s))
        });
        println!(
            "traced (every request sampled, {tasks} tasks): isoscope added {i:.0} ns/request, sentry-tower \
             enable_transaction added {s:.0} ns/request, isoscope/sentry {:.2} (target <= 0.5)",
            i / s
        );
        return;
    }
    // `--profile <variant> [--requests N] [--tasks T]`: run one variant for a while, for
    // `perf record` or `valgrind --tool=callgrind`.
    if let Some(name) = arg::<String>("--profile") {
        // `--with-traces`: both SDKs sample every request (`sentry` then runs with
        // `enable_transaction()`), to profile or count the traced paths.
        let traced = std::env::args().any(|a| a == "--with-traces");
        let _traced = traced.then(|| {
            (
                isoscope::init(
                    isoscope::Options::new().release("compare@1.0").traces_sample_rate(1.0).transport(DropAll),
                )
                .unwrap(),
                sentry_traced_init(),
            )
        });
        let sentry_traced = sentry_traced_router();
        let app = match apps.iter().find(|(v, _)| v.name() == name).expect("unknown variant") {
            (Variant::Sentry, _) if traced => &sentry_traced,
            (_, app) => app,
        };
        let n = arg("--requests").unwrap_or(400_000);
        let tasks = arg("--tasks").unwrap_or(CONCURRENCY);
        let (ns, cpu) = rt.block_on(measure(app, n, tasks));
        println!("{name}: {ns:.0} ns/request, {cpu:.0} CPU ns/request");
        return;
    }

    // `--per-sample N`: requests per concurrent sample (a sequential sample is a quarter).
    let per_sample: usize = arg("--per-sample").unwrap_or(32_000);
    // `--raw`: a worker process of the run below; prints its samples as one JSON line.
    if std::env::args().any(|a| a == "--raw") {
        let data = collect(&rt, &apps, rounds, per_sample);
        println!("{}", raw_json(&data));
        return;
    }
    // `--processes P` (default 5): the rounds run in P fresh processes one after another, and
    // the medians are over the samples of all of them. Heap, stack and code addresses differ
    // from process to process, and with them how each variant's memory falls into the caches:
    // one process can be lucky or unlucky for one variant by more than the differences being
    // measured, so no single process decides.
    let processes: usize = arg("--processes").unwrap_or(5);
    let (data, peak_rss) = if processes <= 1 {
        (collect(&rt, &apps, rounds, per_sample), peak_rss_kib().unwrap_or(0))
    } else {
        run_processes(processes, rounds, per_sample)
    };

    let mut json = serde_json::Map::new();
    println!("{processes} process(es) x {rounds} rounds; medians over all of their samples");
    for (mode, samples) in data {
        let rows = report(mode, &samples);
        let get = |v: Variant| rows.iter().find(|r| r.variant == v).unwrap();
        let (iso, sen, flo) = (get(Variant::Isoscope).added, get(Variant::Sentry).added, get(Variant::Floor).added);
        let (isoc, senc) = (get(Variant::IsoscopeCapture).added, get(Variant::SentryCapture).added);
        println!(
            "targets: isoscope/sentry added = {:.2} (<= 0.33), isoscope/floor added = {:.2} (<= 1.20); with capture: isoscope/sentry = {:.2}",
            iso / sen,
            iso / flo,
            isoc / senc
        );
        let cpu = |v: Variant| get(v).cpu_added;
        println!(
            "CPU time: isoscope/sentry added = {:.2}, isoscope/floor added = {:.2}",
            cpu(Variant::Isoscope) / cpu(Variant::Sentry),
            cpu(Variant::Isoscope) / cpu(Variant::Floor)
        );
        let mut m = serde_json::Map::new();
        for r in &rows {
            m.insert(
                r.variant.name().into(),
                serde_json::json!({
                    "ns": r.ns.round(),
                    "added_ns": r.added.round(),
                    "ratio": (r.ratio * 1000.0).round() / 1000.0,
                    "cpu_ns": r.cpu.round(),
                    "cpu_added_ns": r.cpu_added.round(),
                }),
            );
        }
        m.insert("isoscope_vs_sentry_added".into(), ((iso / sen * 1000.0).round() / 1000.0).into());
        m.insert("isoscope_vs_floor_added".into(), ((iso / flo * 1000.0).round() / 1000.0).into());
        json.insert(mode.into(), m.into());
    }
    json.insert("rounds".into(), rounds.into());
    json.insert("processes".into(), processes.into());
    json.insert("peak_rss_kib".into(), peak_rss.into());
    println!("\npeak RSS: {peak_rss} KiB");
    println!("{}", serde_json::Value::Object(json));
}

/// Paired samples per variant, for each mode.
type Samples = Vec<(Variant, Vec<Pair>)>;

/// Runs `rounds` rounds of every mode in this process.
fn collect(
    rt: &tokio::runtime::Runtime,
    apps: &[(Variant, Router)],
    rounds: usize,
    per_sample: usize,
) -> Vec<(&'static str, Samples)> {
    let mut data = Vec::new();
    for (mode, n, tasks) in [("concurrent", per_sample, CONCURRENCY), ("sequential", per_sample / 4, 1)] {
        let samples = rt.block_on(async {
            // Warm up every variant (allocator, code paths).
            for (_, app) in apps {
                measure(app, n / 4, tasks).await;
            }
            let mut samples: Samples = apps.iter().map(|(v, _)| (*v, Vec::new())).collect();
            let b = apps.iter().position(|(v, _)| *v == Variant::Bare).unwrap();
            for round in 0..rounds {
                // Interleave: rotate the order every round. Each variant is measured next to a
                // `bare` run of its own (before it in one round, after it in the next), so a
                // slow stretch of a shared machine shifts both sides of a difference alike.
                for k in 0..apps.len() {
                    let i = (k + round) % apps.len();
                    if i == b {
                        continue;
                    }
                    let (x, bare) = if (k + round) % 2 == 0 {
                        let bare = measure(&apps[b].1, n, tasks).await;
                        (measure(&apps[i].1, n, tasks).await, bare)
                    } else {
                        let x = measure(&apps[i].1, n, tasks).await;
                        (x, measure(&apps[b].1, n, tasks).await)
                    };
                    samples[i].1.push((x, bare));
                    samples[b].1.push((bare, bare));
                }
            }
            samples
        });
        data.push((mode, samples));
    }
    data
}

/// A worker process's samples: `{mode: {variant: [[wall, cpu, bare wall, bare cpu], ...]}}`.
fn raw_json(data: &[(&'static str, Samples)]) -> serde_json::Value {
    let mut out = serde_json::Map::new();
    for (mode, samples) in data {
        let variants: serde_json::Map<String, serde_json::Value> = samples
            .iter()
            .map(|(v, pairs)| {
                let pairs: Vec<[f64; 4]> = pairs.iter().map(|(x, b)| [x.0, x.1, b.0, b.1]).collect();
                (v.name().to_owned(), serde_json::json!(pairs))
            })
            .collect();
        out.insert((*mode).to_owned(), variants.into());
    }
    out.insert("peak_rss_kib".into(), peak_rss_kib().into());
    out.into()
}

/// Runs the rounds in `processes` fresh copies of this binary, one after another, and pools
/// their samples; returns them with the largest peak RSS of the processes.
fn run_processes(processes: usize, rounds: usize, per_sample: usize) -> (Vec<(&'static str, Samples)>, u64) {
    let exe = std::env::current_exe().expect("path of this binary");
    let mut data: Vec<(&'static str, Samples)> = ["concurrent", "sequential"]
        .into_iter()
        .map(|mode| (mode, Variant::ALL.iter().map(|v| (*v, Vec::new())).collect()))
        .collect();
    let mut peak = 0;
    for p in 0..processes {
        eprintln!("process {}/{processes} ...", p + 1);
        let out = std::process::Command::new(&exe)
            .args(["--raw", "--rounds", &rounds.to_string(), "--per-sample", &per_sample.to_string()])
            .output()
            .expect("run a worker process");
        assert!(out.status.success(), "worker process failed: {}", String::from_utf8_lossy(&out.stderr));
        let line = String::from_utf8_lossy(&out.stdout);
        let raw: serde_json::Value = serde_json::from_str(line.lines().last().unwrap_or("")).expect("worker output");
        peak = peak.max(raw["peak_rss_kib"].as_u64().unwrap_or(0));
        for (mode, samples) in &mut data {
            for (variant, pairs) in samples.iter_mut() {
                for s in raw[*mode][variant.name()].as_array().expect("samples") {
                    let f = |i: usize| s[i].as_f64().unwrap_or(f64::NAN);
                    pairs.push(((f(0), f(1)), (f(2), f(3))));
                }
            }
        }
    }
    (data, peak)
}
