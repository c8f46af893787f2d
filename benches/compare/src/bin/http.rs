//! Requests per second over real HTTP, with and without an error storm: a bare axum router, the
//! hand-written floor, isoscope and sentry-tower, the SDKs also capturing an error on 1 % and on
//! 100 % of requests and delivering it to a loopback ingest server.
//!
//! ```sh
//! cargo run --release --manifest-path benches/compare/Cargo.toml --bin http [-- --rounds 5 --seconds 3]
//! ```
//!
//! Per configuration and round, a fresh server process (`axum::serve` on 127.0.0.1, a tokio
//! runtime with one worker; the SDK's transport thread in the same process) pinned to CPU 0,
//! and a load generator process of our own (hyper http1 client, 64 keep-alive connections, each
//! one request at a time) pinned to CPU 1, which also runs the ingest server (accepts every
//! envelope, counts them). isoscope sends through `HttpTransport`, sentry through its reqwest
//! transport, both to that server. Rounds are interleaved (every configuration once per round,
//! the order rotated). Reported: medians over rounds of requests per second, of the ratio to
//! `bare` in the same round, of p50 and p99 latency, and of the server's peak RSS; events
//! delivered and dropped.
//!
//! `--wrk`: `wrk` (Debian's package; one thread, the same 64 connections) is the load generator
//! instead, and every run reports how busy the server's process (all its threads) and wrk were:
//! a run is kept only if the server's CPU was ≥ 95 % busy and wrk's < 99 % (else the generator,
//! not the server, set the pace). Medians and ratios are over kept runs (ratios: rounds where
//! both were kept), with the server's CPU time per request beside them. `--only` lists which
//! configurations run (`--only bare,floor,isoscope,isoscope:1`); `base` is isoscope served by
//! another build of this binary, `--base-exe PATH`, to compare two builds in one run (A/B).
//!
//! `--serve <variant> --rate <per cent> --ingest <DSN>` serves one variant (`bare`, `noop` — a
//! pass-through layer —, `floor`, `floor+body+clock`, `isoscope`, `sentry`, ...) on a port it
//! prints until stdin closes: `scripts/instructions.py` counts its instructions per request
//! under callgrind.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::routing::get;
use axum::Router;
use isoscope_compare::{accept_all_ingest, arg, median, unavailable};

const CONNECTIONS: usize = 64;
const WARM_UP: Duration = Duration::from_millis(500);

#[derive(Clone, Copy, PartialEq, Debug)]
enum Sdk {
    Bare,
    /// A pass-through layer (`tower::layer::util::Identity`): what axum's re-boxing of a
    /// layered route costs any layer.
    Noop,
    Floor,
    /// The floor plus the response-body wrapper and the breadcrumb's clock (what the design
    /// requires of every request and the floor leaves out; `isoscope_compare::floor_plus`).
    FloorPlus,
    Isoscope,
    /// isoscope with `HttpTransportBuilder::low_priority(false)`: its transport thread competes
    /// for the CPU on equal terms.
    IsoscopeEqual,
    /// isoscope with `CpuPriority::Lowest` (nice 19, the default before 0.2).
    IsoscopeLowest,
    Sentry,
    /// isoscope served by another build of this binary (`--base-exe PATH`): A/B of two builds
    /// in one interleaved run (`--only base,isoscope`).
    Base,
}

impl Sdk {
    fn name(self) -> &'static str {
        match self {
            Sdk::Bare => "bare",
            Sdk::Noop => "noop",
            Sdk::Floor => "floor",
            Sdk::FloorPlus => "floor+body+clock",
            Sdk::Isoscope => "isoscope",
            Sdk::IsoscopeEqual => "isoscope-equal-priority",
            Sdk::IsoscopeLowest => "isoscope-lowest-priority",
            Sdk::Sentry => "sentry",
            Sdk::Base => "base",
        }
    }

    fn parse(s: &str) -> Sdk {
        [
            Sdk::Bare,
            Sdk::Noop,
            Sdk::Floor,
            Sdk::FloorPlus,
            Sdk::Isoscope,
            Sdk::IsoscopeEqual,
            Sdk::IsoscopeLowest,
            Sdk::Sentry,
            Sdk::Base,
        ]
        .into_iter()
        .find(|v| v.name() == s)
        .expect("unknown variant")
    }
}

/// A variant and the per cent of its requests that capture an error.
const CONFIGS: [(Sdk, u64); 12] = [
    (Sdk::Bare, 0),
    (Sdk::Floor, 0),
    (Sdk::Isoscope, 0),
    (Sdk::Isoscope, 1),
    (Sdk::Isoscope, 100),
    (Sdk::IsoscopeEqual, 1),
    (Sdk::IsoscopeEqual, 100),
    (Sdk::Sentry, 0),
    (Sdk::Sentry, 1),
    (Sdk::Sentry, 100),
    (Sdk::IsoscopeLowest, 1),
    (Sdk::IsoscopeLowest, 100),
];

fn label(sdk: Sdk, rate: u64) -> String {
    match sdk {
        Sdk::Bare | Sdk::Noop | Sdk::Floor => sdk.name().to_owned(),
        _ if rate == 0 => sdk.name().to_owned(),
        _ => format!("{}, capture on {rate}%", sdk.name()),
    }
}

/// Whether server and load generator can be pinned to CPUs of their own (two CPUs, `taskset`
/// installed). Decided once, before the coordinator pins itself: after that
/// `available_parallelism` would say 1, and nothing would be pinned apart.
static PIN: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
/// Whether wrk generates the load (`--wrk`).
static WRK: std::sync::OnceLock<bool> = std::sync::OnceLock::new();

fn main() {
    PIN.get_or_init(|| {
        std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
            && Command::new("taskset").arg("-V").output().is_ok_and(|o| o.status.success())
    });
    WRK.get_or_init(|| std::env::args().any(|a| a == "--wrk"));
    assert!(WRK.get() != Some(&true) || isoscope_compare::wrk::available(), "--wrk: wrk is not installed");
    if let Some(sdk) = arg::<String>("--serve") {
        serve(Sdk::parse(&sdk), arg("--rate").unwrap_or(0), &arg::<String>("--ingest").expect("--ingest DSN"));
    } else if let Some(addr) = arg::<SocketAddr>("--load") {
        load(addr, arg("--seconds").unwrap_or(3.0), arg("--connections").unwrap_or(CONNECTIONS));
    } else if let Some(only) = arg::<String>("--only").filter(|o| o.contains(',')) {
        let configs: Vec<(Sdk, u64)> = only
            .split(',')
            .map(|c| {
                let (sdk, rate) = c.split_once(':').unwrap_or((c, "0"));
                (Sdk::parse(sdk), rate.parse().unwrap())
            })
            .collect();
        coordinate(&configs, arg("--rounds").unwrap_or(5), arg("--seconds").unwrap_or(3.0));
    } else if let Some(only) = arg::<String>("--only") {
        // `--only isoscope:100`: one configuration, one run (to profile it).
        let (sdk, rate) = only.split_once(':').unwrap_or((&only, "0"));
        pin_ingest();
        let (dsn, received) = accept_all_ingest();
        let s = run_one(Sdk::parse(sdk), rate.parse().unwrap(), &dsn, &received, arg("--seconds").unwrap_or(3.0));
        println!("{only}: {:.0} requests/s, {} events delivered, {} dropped", s.rps, s.delivered, s.dropped);
    } else {
        coordinate(&CONFIGS, arg("--rounds").unwrap_or(5), arg("--seconds").unwrap_or(3.0));
    }
}

// ---- the server -------------------------------------------------------------------------------

static RATE: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);

/// Whether this request captures (`RATE` of every 100).
fn captures() -> bool {
    COUNT.fetch_add(1, Ordering::Relaxed) % 100 < RATE.load(Ordering::Relaxed)
}

async fn isoscope_handler() -> &'static str {
    isoscope::add_breadcrumb(isoscope::Breadcrumb::new("handled"));
    isoscope::set_tag("handler", "isoscope");
    if captures() {
        isoscope::capture_error(&unavailable());
    }
    "ok"
}

async fn sentry_handler() -> &'static str {
    sentry::add_breadcrumb(sentry::Breadcrumb { message: Some("handled".into()), ..Default::default() });
    sentry::configure_scope(|s| s.set_tag("handler", "sentry"));
    if captures() {
        sentry::capture_error(&unavailable());
    }
    "ok"
}

fn router(sdk: Sdk) -> Router {
    let route = "/items/{id}";
    match sdk {
        Sdk::Bare => Router::new().route(route, get(|| async { "ok" })),
        Sdk::Noop => Router::new().route(route, get(|| async { "ok" })).layer(tower::layer::util::Identity::new()),
        Sdk::Floor => Router::new()
            .route(
                route,
                get(|| async {
                    isoscope_compare::floor::breadcrumb_and_tag();
                    "ok"
                }),
            )
            .layer(isoscope_compare::floor::Layer),
        Sdk::FloorPlus => Router::new()
            .route(
                route,
                get(|| async {
                    isoscope_compare::floor_plus::breadcrumb_and_tag();
                    "ok"
                }),
            )
            .layer(isoscope_compare::floor_plus::Layer),
        // `Base` is served by another build, as `isoscope`.
        Sdk::Isoscope | Sdk::IsoscopeEqual | Sdk::IsoscopeLowest | Sdk::Base => {
            Router::new().route(route, get(isoscope_handler)).layer(isoscope::IsolationLayer::new())
        }
        Sdk::Sentry => Router::new().route(route, get(sentry_handler)).layer(
            tower::ServiceBuilder::new()
                .layer(sentry_tower::NewSentryLayer::<http::Request<axum::body::Body>>::new_from_top())
                .layer(sentry_tower::SentryHttpLayer::new()),
        ),
    }
}

/// Serves until stdin closes, then prints isoscope's delivery counts as a JSON line and exits.
fn serve(sdk: Sdk, rate: u64, ingest: &str) {
    RATE.store(rate, Ordering::Relaxed);
    let _iso = match sdk {
        // A release: sessions on, as in `isoscope-compare`.
        Sdk::Isoscope | Sdk::Base => {
            Some(isoscope::init(isoscope::Options::new().dsn(ingest).release("compare@1.0")).unwrap())
        }
        Sdk::IsoscopeEqual | Sdk::IsoscopeLowest => {
            use isoscope::transport::CpuPriority;
            let priority = if sdk == Sdk::IsoscopeEqual { CpuPriority::Normal } else { CpuPriority::Lowest };
            let transport = isoscope::HttpTransport::builder(ingest).unwrap().cpu_priority(priority).build().unwrap();
            Some(isoscope::init(isoscope::Options::new().transport(transport)).unwrap())
        }
        _ => None,
    };
    let _sentry = (sdk == Sdk::Sentry).then(|| {
        let mut options = sentry::ClientOptions::default();
        options.dsn = Some(ingest.parse().unwrap());
        // sentry's default reqwest transport (`new` is its deprecated but equivalent shorthand for
        // `ReqwestHttpTransportOptions::from(TransportOptions).build()`).
        #[allow(deprecated)]
        let factory = |o: &sentry::ClientOptions| {
            Arc::new(sentry::transports::ReqwestHttpTransport::new(o)) as Arc<dyn sentry::Transport>
        };
        options.transport = Some(Arc::new(factory));
        sentry::init(options)
    });
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    println!("listening {}", listener.local_addr().unwrap());
    std::io::stdout().flush().unwrap();
    rt.spawn(async move { axum::serve(listener, router(sdk)).await.unwrap() });
    let mut line = String::new();
    while std::io::stdin().read_line(&mut line).unwrap_or(0) > 0 {}
    let s = isoscope::stats();
    println!(
        "{}",
        serde_json::json!({
            "captured": s.events_captured, "sent": s.events_sent, "dropped": s.events_dropped(),
            "queue_full": s.events_dropped_queue_full,
        })
    );
    std::process::exit(0);
}

// ---- the load generator -----------------------------------------------------------------------

/// `connections` keep-alive connections, each sending one request at a time for `seconds` after
/// a warm-up; prints `{"requests", "rps", "p50_us", "p99_us"}`.
fn load(addr: SocketAddr, seconds: f64, connections: usize) {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let (requests, latencies, elapsed) = rt.block_on(async move {
        let start = Instant::now() + WARM_UP;
        let end = start + Duration::from_secs_f64(seconds);
        let tasks: Vec<_> = (0..connections).map(|_| tokio::spawn(connection(addr, start, end))).collect();
        let mut latencies = Vec::new();
        for t in tasks {
            latencies.extend(t.await.unwrap());
        }
        (latencies.len(), latencies, end - start)
    });
    let mut latencies = latencies;
    latencies.sort_unstable();
    let pct = |p: f64| latencies.get(((latencies.len() as f64 * p) as usize).min(latencies.len().saturating_sub(1)));
    println!(
        "{}",
        serde_json::json!({
            "requests": requests,
            "rps": requests as f64 / elapsed.as_secs_f64(),
            "p50_us": pct(0.50).copied().unwrap_or(0),
            "p99_us": pct(0.99).copied().unwrap_or(0),
        })
    );
}

/// One connection's loop; the latencies (µs) of the requests it completed in `[start, end)`.
async fn connection(addr: SocketAddr, start: Instant, end: Instant) -> Vec<u32> {
    use http_body_util::{BodyExt, Empty};
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.set_nodelay(true).unwrap();
    let (mut send, conn) =
        hyper::client::conn::http1::handshake::<_, Empty<bytes::Bytes>>(hyper_util::rt::TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut latencies = Vec::with_capacity(1 << 16);
    loop {
        let request = http::Request::get("/items/42?page=2")
            .header("host", "shop.example")
            .header("user-agent", "bench/1.0")
            .header("accept", "application/json")
            .header("accept-encoding", "gzip, br")
            .header("cookie", "session=abc")
            .body(Empty::new())
            .unwrap();
        let sent = Instant::now();
        if sent >= end {
            return latencies;
        }
        let response = send.send_request(request).await.unwrap();
        assert_eq!(response.status(), 200);
        let body = response.into_body().collect().await.unwrap().to_bytes();
        assert_eq!(&body[..], b"ok");
        if sent >= start {
            latencies.push(sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32);
        }
    }
}

// ---- the coordinator --------------------------------------------------------------------------

/// `cmd` pinned to `cpu` with `taskset`, when there are two CPUs to pin to.
fn pinned(cpu: usize) -> Command {
    pinned_exe(cpu, std::env::current_exe().unwrap())
}

/// [`pinned`] for another executable (the `base` configuration's build).
fn pinned_exe(cpu: usize, me: std::path::PathBuf) -> Command {
    if *PIN.get().expect("decided at start") {
        let mut c = Command::new("taskset");
        c.arg("-c").arg(cpu.to_string()).arg(me);
        c
    } else {
        Command::new(me)
    }
}

struct Sample {
    rps: f64,
    p50: f64,
    p99: f64,
    rss_kib: f64,
    delivered: u64,
    dropped: u64,
    /// Events captured (isoscope only).
    captured: u64,
    /// With `--wrk`: how busy the server and wrk were.
    wrk: Option<isoscope_compare::wrk::Run>,
}

impl Sample {
    /// Whether the run measured the server (always, without `--wrk`).
    fn kept(&self) -> bool {
        self.wrk.as_ref().is_none_or(|w| w.kept())
    }
}

fn run_one(sdk: Sdk, rate: u64, dsn: &str, received: &AtomicU64, seconds: f64) -> Sample {
    let (mut server, serve) = match sdk {
        Sdk::Base => {
            (pinned_exe(0, arg::<String>("--base-exe").expect("`base` needs --base-exe PATH").into()), "isoscope")
        }
        _ => (pinned(0), sdk.name()),
    };
    let mut server = server
        .args(["--serve", serve, "--rate", &rate.to_string(), "--ingest", dsn])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(server.stdout.take().unwrap());
    let mut line = String::new();
    out.read_line(&mut line).unwrap();
    let addr: SocketAddr = line.trim().strip_prefix("listening ").expect("the server's address").parse().unwrap();
    let before = received.load(Ordering::Relaxed);
    let (result, wrk) = if WRK.get() == Some(&true) {
        let pin = (PIN.get() == Some(&true)).then_some(1);
        let w = isoscope_compare::wrk::run(addr, server.id(), seconds, CONNECTIONS, pin);
        (serde_json::json!({"rps": w.rps, "p50_us": w.p50_us, "p99_us": w.p99_us}), Some(w))
    } else {
        let load = pinned(1).args(["--load", &addr.to_string(), "--seconds", &seconds.to_string()]).output().unwrap();
        assert!(load.status.success(), "load generator failed: {}", String::from_utf8_lossy(&load.stderr));
        (serde_json::from_slice(&load.stdout).unwrap(), None)
    };
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.id())).unwrap_or_default();
    let rss_kib = isoscope_compare::peak_rss_kib(&status).unwrap_or(0) as f64;
    drop(server.stdin.take()); // the server prints its counts and exits
    line.clear();
    out.read_line(&mut line).unwrap();
    let stats: serde_json::Value = serde_json::from_str(line.trim()).unwrap_or_default();
    server.wait().unwrap();
    Sample {
        rps: result["rps"].as_f64().unwrap(),
        p50: result["p50_us"].as_f64().unwrap(),
        p99: result["p99_us"].as_f64().unwrap(),
        rss_kib,
        delivered: received.load(Ordering::Relaxed) - before,
        dropped: stats["dropped"].as_u64().unwrap_or(0),
        captured: stats["captured"].as_u64().unwrap_or(0),
        wrk,
    }
}

/// The ingest server runs in this process: on the load generator's CPU.
fn pin_ingest() {
    if PIN.get() == Some(&true) {
        let _ = Command::new("taskset").args(["-p", "-c", "1", &std::process::id().to_string()]).output();
    }
}

fn coordinate(configs: &[(Sdk, u64)], rounds: usize, seconds: f64) {
    pin_ingest();
    let (dsn, received) = accept_all_ingest();
    let n = configs.len();
    let mut samples: Vec<Vec<Sample>> = configs.iter().map(|_| Vec::new()).collect();
    // Per round, each configuration's requests/s if its run was kept.
    let mut per_round: Vec<Vec<Option<f64>>> = Vec::new();
    for round in 0..rounds {
        let mut this_round: Vec<Option<f64>> = vec![None; n];
        for i in 0..n {
            let k = (i + round) % n;
            let (sdk, rate) = configs[k];
            let s = run_one(sdk, rate, &dsn, &received, seconds);
            let busy = s.wrk.as_ref().map_or(String::new(), |w| {
                format!(
                    "  server CPU {:.1} % ({:.2} µs/request), wrk {:.1} %{}",
                    100.0 * w.server_busy,
                    w.server_us_per_request,
                    100.0 * w.wrk_busy,
                    if w.kept() { "" } else { "  DROPPED (not saturated)" }
                )
            });
            eprintln!("round {round}: {:<28} {:>8.0} requests/s{busy}", label(sdk, rate), s.rps);
            this_round[k] = s.kept().then_some(s.rps);
            samples[k].push(s);
        }
        per_round.push(this_round);
    }
    let generator = if WRK.get() == Some(&true) { "wrk -t1" } else { "our hyper client" };
    println!(
        "\nreal HTTP, {CONNECTIONS} keep-alive connections ({generator}), server on CPU 0 (1 worker), load on CPU 1: \
         medians of the kept runs of {rounds} interleaved rounds of {seconds} s"
    );
    println!(
        "| variant | requests/s | vs bare | server CPU µs/request | p50 µs | p99 µs | peak RSS MiB | events delivered | \
         dropped | delivered during the run | runs kept |"
    );
    println!("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
    // Ratios of two configurations measured in the same round (both kept), median over rounds.
    let paired = |a: usize, b: usize| {
        let r: Vec<f64> = per_round.iter().filter_map(|r| Some(r[a]? / r[b]?)).collect();
        if r.is_empty() {
            f64::NAN
        } else {
            median(r)
        }
    };
    let find = |sdk: Sdk, rate: u64| configs.iter().position(|c| *c == (sdk, rate));
    let bare = find(Sdk::Bare, 0);
    for (k, (sdk, rate)) in configs.iter().enumerate() {
        let all = &samples[k];
        let s: Vec<&Sample> = all.iter().filter(|s| s.kept()).collect();
        let m = |f: fn(&Sample) -> f64| if s.is_empty() { f64::NAN } else { median(s.iter().map(|s| f(s)).collect()) };
        let delivered: u64 = all.iter().map(|s| s.delivered).sum();
        let dropped: u64 = all.iter().map(|s| s.dropped).sum();
        let captured: u64 = all.iter().map(|s| s.captured).sum();
        let share = if captured > 0 {
            format!("{:.1} %", 100.0 * delivered as f64 / captured as f64)
        } else {
            "–".to_owned()
        };
        println!(
            "| {} | {:.0} | {:.3} | {:.2} | {:.0} | {:.0} | {:.1} | {delivered} | {} | {share} | {}/{} |",
            label(*sdk, *rate),
            m(|s| s.rps),
            bare.map_or(f64::NAN, |b| paired(k, b)),
            m(|s| s.wrk.as_ref().map_or(f64::NAN, |w| w.server_us_per_request)),
            m(|s| s.p50),
            m(|s| s.p99),
            m(|s| s.rss_kib) / 1024.0,
            if matches!(sdk, Sdk::Isoscope | Sdk::IsoscopeEqual | Sdk::IsoscopeLowest | Sdk::Base) {
                dropped.to_string()
            } else {
                "–".to_owned()
            },
            s.len(),
            all.len(),
        );
    }
    println!("\nmedians of per-round ratios (rounds where both runs were kept):");
    let show = |what: &str, a: Option<usize>, b: Option<usize>, target: &str| {
        if let (Some(a), Some(b)) = (a, b) {
            println!("{what}: {:.3} ({target})", paired(a, b));
        }
    };
    let iso = find(Sdk::Isoscope, 0);
    show("isoscope / bare", iso, bare, "target >= 0.95");
    show("floor / bare", find(Sdk::Floor, 0), bare, "reference");
    show("floor+body+clock / bare", find(Sdk::FloorPlus, 0), bare, "reference");
    show("isoscope / base (this build against --base-exe's)", iso, find(Sdk::Base, 0), "A/B");
    show("isoscope capture on 1% / isoscope without captures", find(Sdk::Isoscope, 1), iso, "target >= 0.90");
    show("isoscope storm (100%) / isoscope without captures", find(Sdk::Isoscope, 100), iso, "target >= 0.8");
    show("isoscope storm / sentry-tower storm", find(Sdk::Isoscope, 100), find(Sdk::Sentry, 100), "target >= 2");
    show("sentry-tower / bare", find(Sdk::Sentry, 0), bare, "reference");
}
